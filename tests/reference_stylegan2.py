"""An independent NumPy (float64) oracle of the StyleGAN2-ADA generator forward pass.

It works directly on the torch-layout state dict (OIkk weights, NCHW activations) and is written to differ from
``lsd_jax.stylegan2`` on purpose, so that layout and convention errors in either show up as a mismatch:

* per-sample **weight** modulation/demodulation (``W'[n,o,i] = W[o,i]·s[n,i]``, ``d = rsqrt(Σ W'² + 1e-8)``) as in
  the StyleGAN2 paper, instead of scaling activations around one shared conv;
* the stride-2 transposed convolution written out as a scatter-add (``out[2h+ky, 2w+kx] += x[h, w]·W[ky, kx]``),
  i.e. torch ``conv_transpose2d`` with the unflipped, (0,1)-transposed weight, which is what
  ``conv2d_resample(up=2, flip_weight=False)`` runs;
* ``upfirdn2d`` written out as zero insertion, pad/crop, a flipped 2-D filter scaled by ``gain`` and a 2-D
  correlation over all taps (no separability assumed);
* conv padding / FIR pads derived with the same arithmetic as ``conv2d_resample``/``upsample2d``.

Facts (not code) from the public NVlabs/stylegan2-ada-pytorch: ``training/networks.py`` (MappingNetwork,
SynthesisLayer, ToRGBLayer, SynthesisBlock incl. resnet skip with gain √0.5, SynthesisNetwork ws windows),
``torch_utils/ops/conv2d_resample.py`` (pad bookkeeping for up=2), ``torch_utils/ops/upfirdn2d.py``
(upfirdn2d reference semantics, upsample2d pads), ``torch_utils/ops/bias_act.py`` (bias → act → ·gain → clamp).
"""

from __future__ import annotations

import numpy as np

SQRT2 = np.sqrt(2.0)


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def bias_act(
    x: np.ndarray, b: np.ndarray | None, act: str, gain: float | None = None, clamp: float | None = None, axis: int = 1
) -> np.ndarray:
    """bias → activation → ·gain → clamp (bias along ``axis``)."""
    if b is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = np.where(x >= 0, x, 0.2 * x)
        gain = SQRT2 if gain is None else gain
    elif act == "linear":
        gain = 1.0 if gain is None else gain
    else:
        raise ValueError(act)
    x = x * gain
    if clamp is not None:
        x = np.clip(x, -clamp, clamp)
    return x


def fully_connected(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, lr: float = 1.0, act: str = "linear"
) -> np.ndarray:
    weight, x = _f64(weight), _f64(x)
    y = x @ (weight * (lr / np.sqrt(weight.shape[1]))).T
    return bias_act(y, None if bias is None else _f64(bias) * lr, act)


def normalize_2nd_moment(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + 1e-8)


def upfirdn2d(x: np.ndarray, f: np.ndarray, up: int = 1, pad=(0, 0, 0, 0), gain: float = 1.0) -> np.ndarray:
    """x: NCHW. f: 2-D (or 1-D, applied to both axes) filter as stored in the state. pad = (x0, x1, y0, y1)."""
    n, c, h, w = x.shape
    f = _f64(f)
    if f.ndim == 1:
        f = np.outer(f, f)
    # zero insertion
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0) : u.shape[2] - max(-py1, 0), max(-px0, 0) : u.shape[3] - max(-px1, 0)]
    # filter: scaled by gain, flipped (convolution, flip_filter=False), then correlated
    g = (f * gain)[::-1, ::-1]
    fh, fw = g.shape
    oh, ow = u.shape[2] - fh + 1, u.shape[3] - fw + 1
    out = np.zeros((n, c, oh, ow))
    for ky in range(fh):
        for kx in range(fw):
            out += u[:, :, ky : ky + oh, kx : kx + ow] * g[ky, kx]
    return out


def upsample2d(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    fh = _f64(f).shape[0]
    p0, p1 = (fh + 1) // 2, (fh - 2) // 2
    return upfirdn2d(x, f, up=2, pad=(p0, p1, p0, p1), gain=4.0)


def _per_sample_conv(x: np.ndarray, wn: np.ndarray, pad: int) -> np.ndarray:
    """Correlation with per-sample weights. x: [N,I,H,W], wn: [N,O,I,k,k]."""
    n, i, h, w = x.shape
    k = wn.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    out = np.zeros((n, wn.shape[1], oh, ow))
    for ky in range(k):
        for kx in range(k):
            out += np.einsum("nihw,noi->nohw", xp[:, :, ky : ky + oh, kx : kx + ow], wn[:, :, :, ky, kx])
    return out


def _per_sample_conv_transpose_s2(x: np.ndarray, wn: np.ndarray) -> np.ndarray:
    """Stride-2 transposed conv, no padding, scatter form. x: [N,I,H,W], wn: [N,O,I,k,k] → [N,O,2H+k-2,2W+k-2]."""
    n, i, h, w = x.shape
    k = wn.shape[-1]
    out = np.zeros((n, wn.shape[1], 2 * (h - 1) + k, 2 * (w - 1) + k))
    for ky in range(k):
        for kx in range(k):
            out[:, :, ky : ky + 2 * h : 2, kx : kx + 2 * w : 2] += np.einsum("nihw,noi->nohw", x, wn[:, :, :, ky, kx])
    return out


def modulated_conv(
    x: np.ndarray,
    weight: np.ndarray,
    styles: np.ndarray,
    demodulate: bool,
    up: bool,
    resample_filter: np.ndarray | None,
) -> np.ndarray:
    weight = _f64(weight)
    wn = weight[None] * styles[:, None, :, None, None]  # [N,O,I,k,k]
    if demodulate:
        d = 1.0 / np.sqrt(np.sum(wn * wn, axis=(2, 3, 4)) + 1e-8)
        wn = wn * d[:, :, None, None, None]
    k = weight.shape[-1]
    pad = k // 2
    if not up:
        return _per_sample_conv(x, wn, pad)
    y = _per_sample_conv_transpose_s2(x, wn)  # torch conv_transpose2d, weight not flipped
    fw = _f64(resample_filter).shape[-1]
    p0 = pad + (fw + 1) // 2 - (k - 1)
    p1 = pad + (fw - 2) // 2 - (k - 2)
    return upfirdn2d(y, resample_filter, up=1, pad=(p0, p1, p0, p1), gain=4.0)


def synthesis_layer(
    state: dict, prefix: str, x: np.ndarray, w: np.ndarray, up: bool, conv_clamp, noise_mode: str, gain: float = 1.0
) -> np.ndarray:
    styles = fully_connected(w, state[f"{prefix}.affine.weight"], state[f"{prefix}.affine.bias"])
    y = modulated_conv(x, state[f"{prefix}.weight"], styles, True, up, state.get(f"{prefix}.resample_filter"))
    if noise_mode == "const":
        y = y + _f64(state[f"{prefix}.noise_const"])[None, None] * float(state[f"{prefix}.noise_strength"])
    elif noise_mode != "none":
        raise ValueError(noise_mode)
    clamp = None if conv_clamp is None else conv_clamp * gain
    return bias_act(y, _f64(state[f"{prefix}.bias"]), "lrelu", gain=SQRT2 * gain, clamp=clamp)


def torgb(state: dict, prefix: str, x: np.ndarray, w: np.ndarray, conv_clamp) -> np.ndarray:
    weight = _f64(state[f"{prefix}.weight"])
    styles = fully_connected(w, state[f"{prefix}.affine.weight"], state[f"{prefix}.affine.bias"])
    styles = styles / np.sqrt(weight.shape[1] * weight.shape[2] * weight.shape[3])
    y = modulated_conv(x, weight, styles, False, False, None)
    return bias_act(y, _f64(state[f"{prefix}.bias"]), "linear", clamp=conv_clamp)


def num_ws(config: dict) -> int:
    return 2 * int(np.log2(config["img_resolution"])) - 2


def mapping(
    config: dict, state: dict, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
) -> np.ndarray:
    mk = config["mapping_kwargs"]
    lr = mk["lr_multiplier"]
    parts = []
    if config["z_dim"] > 0:
        parts.append(normalize_2nd_moment(_f64(z)))
    if config["c_dim"] > 0:
        e = fully_connected(_f64(c), state["mapping.embed.weight"], state["mapping.embed.bias"])
        parts.append(normalize_2nd_moment(e))
    x = np.concatenate(parts, axis=1)
    for i in range(mk["num_layers"]):
        x = fully_connected(
            x, state[f"mapping.fc{i}.weight"], state[f"mapping.fc{i}.bias"], lr=lr, act=mk.get("activation", "lrelu")
        )
    ws = np.repeat(x[:, None, :], num_ws(config), axis=1)
    if truncation_psi != 1:
        w_avg = _f64(state["mapping.w_avg"])
        cut = ws.shape[1] if truncation_cutoff is None else truncation_cutoff
        ws[:, :cut] = w_avg + truncation_psi * (ws[:, :cut] - w_avg)
    return ws


def synthesis(config: dict, state: dict, ws, noise_mode: str = "const") -> np.ndarray:
    """ws: [N, num_ws, w_dim]. Returns NCHW float64 images."""
    ws = _f64(ws)
    sk = config["synthesis_kwargs"]
    arch = sk.get("architecture", "skip")
    clamp = sk.get("conv_clamp")
    res_log2 = int(np.log2(config["img_resolution"]))
    x = img = None
    w_idx = 0
    for r in range(2, res_log2 + 1):
        res = 2**r
        p = f"synthesis.b{res}"
        is_last = res == config["img_resolution"]
        has_rgb = is_last or arch == "skip"
        if res == 4:
            cur = ws[:, w_idx : w_idx + 1 + has_rgb]
            w_idx += 1
            const = _f64(state[f"{p}.const"])
            x = np.broadcast_to(const[None], (ws.shape[0],) + const.shape).copy()
            x = synthesis_layer(state, f"{p}.conv1", x, cur[:, 0], False, clamp, noise_mode)
            rgb_w = cur[:, 1] if has_rgb else None
        else:
            cur = ws[:, w_idx : w_idx + 2 + has_rgb]
            w_idx += 2
            if arch == "resnet":
                sw = _f64(state[f"{p}.skip.weight"])
                y = modulated_conv(x, sw / np.sqrt(sw.shape[1]), np.ones((x.shape[0], sw.shape[1])), False, False, None)
                y = upsample2d(y, state[f"{p}.skip.resample_filter"]) * np.sqrt(0.5)
                x = synthesis_layer(state, f"{p}.conv0", x, cur[:, 0], True, clamp, noise_mode)
                x = synthesis_layer(state, f"{p}.conv1", x, cur[:, 1], False, clamp, noise_mode, gain=np.sqrt(0.5))
                x = x + y
            else:
                x = synthesis_layer(state, f"{p}.conv0", x, cur[:, 0], True, clamp, noise_mode)
                x = synthesis_layer(state, f"{p}.conv1", x, cur[:, 1], False, clamp, noise_mode)
            rgb_w = cur[:, 2] if has_rgb else None
        if img is not None:
            img = upsample2d(img, state[f"{p}.resample_filter"])
        if has_rgb:
            y = torgb(state, f"{p}.torgb", x, rgb_w, clamp)
            img = y if img is None else img + y
    return img


def generate(
    config: dict,
    state: dict,
    z,
    c=None,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
) -> np.ndarray:
    """NHWC float64 images, for direct comparison with ``lsd_jax``."""
    ws = mapping(config, state, z, c, truncation_psi, truncation_cutoff)
    return synthesis(config, state, ws, noise_mode).transpose(0, 2, 3, 1)
