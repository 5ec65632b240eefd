"""An independent NumPy (float64) oracle of the StyleGAN3 generator forward pass.

It works directly on the torch-layout state dict (OIkk weights, NCHW activations) and is written to differ from
``lsd_jax.stylegan3`` on purpose, so that layout and convention errors in either show up as a mismatch:

* per-sample **weight** modulation (``W'[n,o,i] = Ŵ[o,i]·ŝ[n,i]``, demodulated, times the input gain) and a
  per-sample (grouped) convolution with padding ``k − 1``; the style pre-normalisation uses the mean over the
  whole batch exactly as NVIDIA's ``modulated_conv2d`` (``s.square().mean()``);
* ``upfirdn2d`` as zero insertion, pad/crop, then ONE full 2-D correlation with the flipped filter (a 1-D filter
  becomes its outer product; ``gain`` multiplies the 2-D filter), then ``[::down, ::down]``: no separability,
  no polyphase;
* the Fourier-feature grid built like ``torch.nn.functional.affine_grid(align_corners=False)``: base coordinates
  ``(2i + 1)/size − 1`` mapped by ``θ = diag(½·size/sampling_rate)``; the learned rotation and translation as
  explicit 3×3 matrices;
* each layer's padding recomputed from its sizes, factors and tap counts with NVIDIA's formula and checked
  against the attribute the config carries.

Facts (not code) from the public NVlabs/stylegan3: ``training/networks_stylegan3.py`` (MappingNetwork,
SynthesisInput, SynthesisLayer, SynthesisNetwork, modulated_conv2d), ``torch_utils/ops/filtered_lrelu.py``
(``_filtered_lrelu_ref``: bias → upfirdn2d(up, gain up²) → lrelu·gain → clamp → upfirdn2d(down)) and
``torch_utils/ops/upfirdn2d.py`` (``_upfirdn2d_ref``).
"""

from __future__ import annotations

import numpy as np
from reference_stylegan2 import fully_connected, normalize_2nd_moment


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def num_ws(config: dict) -> int:
    return len(config["synthesis_layers"]) + 1


# ---------------------------------------------------------------------------------------------------------------
# mapping


def mapping(
    config: dict, state: dict, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
) -> np.ndarray:
    mk = config["mapping_kwargs"]
    x = normalize_2nd_moment(_f64(z)) if config["z_dim"] > 0 else np.zeros((len(c), 0))
    if config["c_dim"] > 0:
        y = normalize_2nd_moment(fully_connected(_f64(c), state["mapping.embed.weight"], state["mapping.embed.bias"]))
        x = np.concatenate([x, y], axis=1)
    for i in range(mk["num_layers"]):
        x = fully_connected(
            x, state[f"mapping.fc{i}.weight"], state[f"mapping.fc{i}.bias"], lr=mk["lr_multiplier"], act="lrelu"
        )
    ws = np.repeat(x[:, None, :], num_ws(config), axis=1)
    if truncation_psi != 1:
        cut = ws.shape[1] if truncation_cutoff is None else truncation_cutoff
        w_avg = _f64(state["mapping.w_avg"])
        ws[:, :cut] = w_avg + truncation_psi * (ws[:, :cut] - w_avg)
    return ws


# ---------------------------------------------------------------------------------------------------------------
# Fourier-feature input


def synthesis_input(config: dict, state: dict, w: np.ndarray, transform=None) -> np.ndarray:
    """w: [N, w_dim] → [N, C, H, W]. ``transform``: [N, 3, 3] (or [3, 3]) replacing the stored buffer."""
    inp = config["synthesis_input"]
    n = w.shape[0]
    user = _f64(state["synthesis.input.transform"] if transform is None else transform)
    user = np.broadcast_to(user, (n, 3, 3))
    freqs0, phases0 = _f64(state["synthesis.input.freqs"]), _f64(state["synthesis.input.phases"])
    t = fully_connected(_f64(w), state["synthesis.input.affine.weight"], state["synthesis.input.affine.bias"])
    t = t / np.linalg.norm(t[:, :2], axis=1, keepdims=True)
    width, height = inp["size"]
    sr, bw = float(inp["sampling_rate"]), float(inp["bandwidth"])
    # affine_grid(theta, [1, 1, H, W], align_corners=False): base (x, y, 1), x_i = (2i + 1)/W − 1
    bx = (2 * np.arange(width) + 1) / width - 1
    by = (2 * np.arange(height) + 1) / height - 1
    theta = np.array([[0.5 * width / sr, 0, 0], [0, 0.5 * height / sr, 0]])
    base = np.stack(np.broadcast_arrays(bx[None, :], by[:, None], np.ones((1, 1))), axis=-1)  # [H, W, 3]
    grid = base @ theta.T  # [H, W, 2] = (x, y)
    out = np.zeros((n, len(phases0), height, width))
    for b in range(n):
        m_r = np.array([[t[b, 0], -t[b, 1], 0], [t[b, 1], t[b, 0], 0], [0, 0, 1]])
        m_t = np.array([[1, 0, -t[b, 2]], [0, 1, -t[b, 3]], [0, 0, 1]])
        T = m_r @ m_t @ user[b]
        phases = phases0 + freqs0 @ T[:2, 2]
        freqs = freqs0 @ T[:2, :2]
        amp = np.clip(1 - (np.linalg.norm(freqs, axis=1) - bw) / (sr / 2 - bw), 0, 1)
        x = grid @ freqs.T + phases  # [H, W, C]
        x = np.sin(2 * np.pi * x) * amp
        weight = _f64(state["synthesis.input.weight"]) / np.sqrt(len(phases0))
        out[b] = (x @ weight.T).transpose(2, 0, 1)
    return out


# ---------------------------------------------------------------------------------------------------------------
# layers


def upfirdn2d(x: np.ndarray, f, up: int = 1, down: int = 1, pad=(0, 0, 0, 0), gain: float = 1.0) -> np.ndarray:
    """x: NCHW; f: 1-D (separable) or 2-D filter, or None (identity). pad = (x0, x1, y0, y1)."""
    n, c, h, w = x.shape
    f = np.ones((1, 1)) if f is None else _f64(f)
    if f.ndim == 1:
        f = np.outer(f, f)
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0) : u.shape[2] - max(-py1, 0), max(-px0, 0) : u.shape[3] - max(-px1, 0)]
    g = (f * gain)[::-1, ::-1]  # convolution = correlation with the flipped filter
    fh, fw = g.shape
    oh, ow = u.shape[2] - fh + 1, u.shape[3] - fw + 1
    out = np.zeros((n, c, oh, ow))
    for ky in range(fh):
        for kx in range(fw):
            if g[ky, kx] != 0:
                out += u[:, :, ky : ky + oh, kx : kx + ow] * g[ky, kx]
    return out[:, :, ::down, ::down]


def filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp) -> np.ndarray:
    x = x + _f64(b)[None, :, None, None]
    x = upfirdn2d(x, fu, up=up, pad=padding, gain=up**2)
    x = np.where(x >= 0, x, x * slope) * gain
    if clamp is not None:
        x = np.clip(x, -clamp, clamp)
    return upfirdn2d(x, fd, down=down)


def modulated_conv2d(x, weight, styles, demodulate: bool, padding: int, input_gain: float) -> np.ndarray:
    w = _f64(weight)
    s = _f64(styles)
    if demodulate:
        w = w / np.sqrt(np.mean(w * w, axis=(1, 2, 3), keepdims=True))
        s = s / np.sqrt(np.mean(s * s))  # over the whole batch, as NVIDIA
    wn = w[None] * s[:, None, :, None, None]  # [N, O, I, k, k]
    if demodulate:
        wn = wn / np.sqrt(np.sum(wn * wn, axis=(2, 3, 4), keepdims=True) + 1e-8)
    wn = wn * input_gain
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = xp.shape[2] - k + 1, xp.shape[3] - k + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for ky in range(k):
        for kx in range(k):
            out += np.einsum("nihw,noi->nohw", xp[:, :, ky : ky + oh, kx : kx + ow], wn[:, :, :, ky, kx])
    return out


def nvidia_padding(layer: dict) -> list[int]:
    """NVIDIA's SynthesisLayer padding from the layer's sizes, kernel, factors and tap counts."""
    out_size, in_size = np.asarray(layer["out_size"]), np.asarray(layer["in_size"])
    total = (out_size - 1) * layer["down_factor"] + 1
    total = total - (in_size + layer["conv_kernel"] - 1) * layer["up_factor"]
    total = total + layer["up_taps"] + layer["down_taps"] - 2
    lo = (total + layer["up_factor"]) // 2
    hi = total - lo
    return [int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1])]


def synthesis_layer(layer: dict, state: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    p = f"synthesis.{layer['name']}"
    assert nvidia_padding(layer) == list(layer["padding"]), (layer["name"], layer["padding"])
    torgb = layer["is_torgb"]
    styles = fully_connected(w, state[f"{p}.affine.weight"], state[f"{p}.affine.bias"])
    weight = _f64(state[f"{p}.weight"])
    if torgb:
        styles = styles / np.sqrt(weight.shape[1] * weight.shape[2] * weight.shape[3])
    gain_in = 1.0 / np.sqrt(float(state[f"{p}.magnitude_ema"]))
    x = modulated_conv2d(x, weight, styles, not torgb, weight.shape[-1] - 1, gain_in)
    return filtered_lrelu(
        x,
        state.get(f"{p}.up_filter"),
        state.get(f"{p}.down_filter"),
        state[f"{p}.bias"],
        layer["up_factor"],
        layer["down_factor"],
        layer["padding"],
        gain=1.0 if torgb else np.sqrt(2),
        slope=1.0 if torgb else 0.2,
        clamp=layer["conv_clamp"],
    )


def synthesis(config: dict, state: dict, ws, transform=None) -> np.ndarray:
    """ws: [N, num_ws, w_dim] → NCHW float64 images (times output_scale)."""
    ws = _f64(ws)
    x = synthesis_input(config, state, ws[:, 0], transform)
    for i, layer in enumerate(config["synthesis_layers"]):
        x = synthesis_layer(layer, state, x, ws[:, i + 1])
    scale = config["synthesis_kwargs"]["output_scale"]
    return x * scale if scale != 1 else x


def generate(
    config: dict,
    state: dict,
    z,
    c=None,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    transform=None,
) -> np.ndarray:
    """NHWC float64 images, for direct comparison with ``lsd_jax``."""
    ws = mapping(config, state, z, c, truncation_psi, truncation_cutoff)
    return synthesis(config, state, ws, transform).transpose(0, 2, 3, 1)
