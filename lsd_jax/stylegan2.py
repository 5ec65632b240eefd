"""StyleGAN2 / StyleGAN2-ADA generator as pure functions over a params pytree (NHWC, float32).

The math follows NVIDIA's public StyleGAN2-ADA PyTorch generator (facts only; this code is independent):

* ``training/networks.py`` — ``normalize_2nd_moment`` (``x·rsqrt(mean x² + 1e-8)``), ``FullyConnectedLayer``
  (weight gain ``lr/√in``, bias gain ``lr``), ``MappingNetwork`` (embed → normalise → concat, fc layers with lrelu,
  broadcast to ``num_ws``, truncation ``w_avg + ψ(w − w_avg)`` on all or the first ``truncation_cutoff`` ws),
  ``SynthesisLayer`` (affine with bias init 1; modulate, 3×3 conv, demodulate ``rsqrt(Σ(W·s)² + 1e-8)``;
  ``+ noise·noise_strength``; ``+bias``, lrelu, ``·√2·gain``, clamp at ``conv_clamp·gain``), ``ToRGBLayer``
  (styles ``·1/√I``, 1×1 modconv without demodulation, ``+bias``, clamp at ``conv_clamp``), ``SynthesisBlock``
  (const input at 4×4; ``orig``/``skip``/``resnet``; resnet skip = bias-free 1×1 up-conv with gain √0.5 and
  conv1 with gain √0.5; ``img = upsample2d(img) + torgb(x)``), ``SynthesisNetwork`` (``ch(res) =
  min(channel_base // res, channel_max)``; block ``b{res}`` reads ws ``[i, i+1, i+2]`` with
  ``i = 2·log2(res) − 5``; ``num_ws = 2·log2(R) − 2``).
* ``torch_utils/ops/conv2d_resample.py`` — ``up=2`` with ``flip_weight=False``: a stride-2 transposed conv with
  the (in,out)-transposed, *unflipped* weight, then ``upfirdn2d`` with gain ``up²`` and pads
  ``p + (fw+up−1)//2 − (k−1)`` / ``p + (fw−up)//2 − (k−up)`` (1, 1 for k=3, fw=4), which gives exactly 2×.
* ``torch_utils/ops/upfirdn2d.py`` — ``setup_filter`` (outer product of the 1-D taps, normalised to sum 1),
  ``upfirdn2d`` (zero insertion, pad, *convolution* with the filter, i.e. flipped taps, times gain) and
  ``upsample2d`` (up 2, pads ``[(fw+1)//2, (fw−2)//2]`` per axis, gain 4).
* ``torch_utils/ops/bias_act.py`` — order ``+bias → act → ·gain → clamp``; lrelu slope 0.2, default gain √2.

Implementation choices for XLA on CPU (measured; ``python -m lsd_jax.bench`` shows the result):

* modulation/demodulation scale the activations around ONE shared-weight convolution
  (``x·s → conv → ·d``), so a batch is a single ordinary conv; ``d`` uses precomputed ``Σ_k W²`` per (in, out);
* the 2× up-conv is ``lax.conv_general_dilated`` with ``lhs_dilation=(2, 2)`` (the transposed conv; kernel flipped
  to turn XLA's correlation into the scatter form) followed by the FIR as separable shifted-slice sums;
  ``upsample2d`` of images / resnet skips is a polyphase (two taps per output phase) separable filter;
* fp16 paths are not reproduced: everything is float32 (``conv_clamp`` still applies, as it does in NVIDIA's
  code with ``force_fp32``).

``config`` is the dict described in the project contract (NVIDIA ``Generator`` kwargs, defaults filled in) or the
hashable :class:`SG2Spec` derived from it; all functions are jittable with the config closed over or passed as a
static argument (use :func:`spec_from_config` to get a hashable one) and ``params`` as a pytree argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array
_SQRT2 = math.sqrt(2.0)
_SQRT_HALF = math.sqrt(0.5)
_DN = ("NHWC", "HWIO", "NHWC")
NOISE_MODES = ("const", "random", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


# ---------------------------------------------------------------------------------------------------------------
# Static description of the network
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SG2Spec:
    """Everything about a StyleGAN2 config that shapes the computation (hashable: usable as a jit static arg)."""

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_layers: int
    embed_features: int
    layer_features: int
    lr_multiplier: float
    architecture: str
    conv_clamp: float | None
    resample_taps: tuple[float, ...]  # 1-D, normalised to sum 1
    channels: tuple[tuple[int, int], ...]  # (resolution, channels) per block

    @property
    def log2_resolution(self) -> int:
        return int(round(math.log2(self.img_resolution)))

    @property
    def num_ws(self) -> int:
        return 2 * self.log2_resolution - 2

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2 ** i for i in range(2, self.log2_resolution + 1))

    def ch(self, res: int) -> int:
        return dict(self.channels)[res]

    def has_torgb(self, res: int) -> bool:
        return self.architecture == "skip" or res == self.img_resolution


def spec_from_config(config: dict | SG2Spec) -> SG2Spec:
    """Validate a config dict and derive its hashable :class:`SG2Spec` (an ``SG2Spec`` is returned unchanged)."""
    if isinstance(config, SG2Spec):
        return config
    family = config.get("family", "stylegan2")
    if family != "stylegan2":
        raise ValueError(f"not a StyleGAN2 config (family={family!r})")
    mk = dict(config.get("mapping_kwargs") or {})
    sk = dict(config.get("synthesis_kwargs") or {})
    z_dim, c_dim, w_dim = int(config["z_dim"]), int(config["c_dim"]), int(config["w_dim"])
    res = int(config["img_resolution"])
    if res < 4 or res & (res - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")
    if z_dim <= 0 and c_dim <= 0:
        raise ValueError("z_dim and c_dim cannot both be 0")
    activation = mk.get("activation", "lrelu")
    if activation != "lrelu":
        raise ValueError(f"only lrelu mapping layers are supported, got {activation!r}")
    arch = sk.get("architecture", "skip")
    if arch not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {arch!r}")
    taps = np.asarray(sk.get("resample_filter", [1, 3, 3, 1]), dtype=np.float64)
    if taps.ndim == 0:
        taps = taps[None]
    if taps.ndim != 1:
        raise ValueError("resample_filter must be a 1-D list of taps")
    taps = taps / taps.sum()
    embed = mk.get("embed_features")
    embed = w_dim if embed is None else int(embed)
    if c_dim == 0:
        embed = 0
    layer_features = mk.get("layer_features")
    layer_features = w_dim if layer_features is None else int(layer_features)
    base, cmax = int(sk.get("channel_base", 32768)), int(sk.get("channel_max", 512))
    log2 = int(round(math.log2(res)))
    channels = tuple((2 ** i, int(min(base // 2 ** i, cmax))) for i in range(1, log2 + 1))
    clamp = sk.get("conv_clamp")
    return SG2Spec(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=int(config.get("img_channels", 3)),
        mapping_layers=int(mk.get("num_layers", 8)), embed_features=embed, layer_features=layer_features,
        lr_multiplier=float(mk.get("lr_multiplier", 0.01)), architecture=arch,
        conv_clamp=None if clamp is None else float(clamp), resample_taps=tuple(float(t) for t in taps),
        channels=channels,
    )


def num_ws(config: dict | SG2Spec) -> int:
    return spec_from_config(config).num_ws


# ---------------------------------------------------------------------------------------------------------------
# torch state dict → params pytree (host side, once)
# ---------------------------------------------------------------------------------------------------------------


def _get(state: dict, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if key not in state:
        raise KeyError(f"StyleGAN2 state is missing {key!r}")
    a = np.asarray(state[key], dtype=np.float32)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{key}: expected shape {tuple(shape)}, got {a.shape}")
    return a


def _check_filter(state: dict, key: str, spec: SG2Spec) -> None:
    if key not in state:
        return
    f = np.asarray(state[key], np.float64)
    t = np.asarray(spec.resample_taps)
    want = np.outer(t, t) if f.ndim == 2 else t
    if f.shape != want.shape or not np.allclose(f, want, atol=1e-6):
        raise ValueError(f"{key} does not match the config's resample_filter {list(spec.resample_taps)}")


def prepare_params(config: dict | SG2Spec, state: dict) -> dict[str, Any]:
    """Convert a torch-layout ``G_ema`` state dict to this module's params pytree (NumPy float32, on the host).

    Layout: dense weights as ``[in, out]`` with NVIDIA's weight gains folded in (bias gains too); conv weights HWIO
    (spatially flipped for the 2× up layers, see :func:`_up_conv`); ``wsq[i, o] = Σ_k W[o, i, k]²`` for
    demodulation; ToRGB's ``1/√I`` style gain folded into its affine; resnet skip weights ``[in, out]·1/√in``.
    """
    spec = spec_from_config(config)
    wd = spec.w_dim
    lr = spec.lr_multiplier

    def fc(prefix: str, n_in: int, n_out: int, lr_mul: float, extra_gain: float = 1.0) -> dict[str, np.ndarray]:
        w = _get(state, f"{prefix}.weight", (n_out, n_in)).astype(np.float64)
        b = _get(state, f"{prefix}.bias", (n_out,)).astype(np.float64)
        return {"w": (w.T * (lr_mul / math.sqrt(n_in) * extra_gain)).astype(np.float32),
                "b": (b * (lr_mul * extra_gain)).astype(np.float32)}

    mapping: dict[str, Any] = {}
    if spec.c_dim > 0:
        mapping["embed"] = fc("mapping.embed", spec.c_dim, spec.embed_features, 1.0)
    feats = [spec.z_dim + spec.embed_features] + [spec.layer_features] * (spec.mapping_layers - 1) + [wd]
    mapping["fc"] = [fc(f"mapping.fc{i}", feats[i], feats[i + 1], lr) for i in range(spec.mapping_layers)]
    mapping["w_avg"] = (_get(state, "mapping.w_avg", (wd,)) if "mapping.w_avg" in state
                        else np.zeros((wd,), np.float32))

    def layer(prefix: str, cin: int, cout: int, res: int, up: bool) -> dict[str, np.ndarray]:
        w = _get(state, f"{prefix}.weight")
        if w.ndim != 4 or w.shape[:2] != (cout, cin) or w.shape[2] != w.shape[3]:
            raise ValueError(f"{prefix}.weight: expected [{cout}, {cin}, k, k], got {w.shape}")
        if up:
            w = w[:, :, ::-1, ::-1]  # XLA correlation over the dilated input == torch conv_transpose2d scatter
        aff = fc(f"{prefix}.affine", wd, cin, 1.0)
        _check_filter(state, f"{prefix}.resample_filter", spec)
        out = {
            "aw": aff["w"], "ab": aff["b"],
            "w": np.ascontiguousarray(w.transpose(2, 3, 1, 0)),
            "wsq": np.square(w.astype(np.float64)).sum(axis=(2, 3)).T.astype(np.float32),
            "b": _get(state, f"{prefix}.bias", (cout,)),
        }
        if f"{prefix}.noise_const" in state:  # use_noise=True (always, in NVIDIA's configs)
            out["ns"] = _get(state, f"{prefix}.noise_strength").reshape(())
            out["nc"] = _get(state, f"{prefix}.noise_const", (res, res))
        return out

    synthesis: dict[str, Any] = {}
    for res in spec.block_resolutions:
        p = f"synthesis.b{res}"
        cout = spec.ch(res)
        cin = spec.ch(res // 2) if res > 4 else 0
        _check_filter(state, f"{p}.resample_filter", spec)
        blk: dict[str, Any] = {}
        if res == 4:
            blk["const"] = np.ascontiguousarray(_get(state, f"{p}.const", (cout, 4, 4)).transpose(1, 2, 0))
        else:
            blk["conv0"] = layer(f"{p}.conv0", cin, cout, res, up=True)
        blk["conv1"] = layer(f"{p}.conv1", cout, cout, res, up=False)
        if spec.has_torgb(res):
            tw = _get(state, f"{p}.torgb.weight")
            if tw.shape[:2] != (spec.img_channels, cout) or tw.shape[2:] != (1, 1):
                raise ValueError(f"{p}.torgb.weight: expected [{spec.img_channels}, {cout}, 1, 1], got {tw.shape}")
            aff = fc(f"{p}.torgb.affine", wd, cout, 1.0, extra_gain=1.0 / math.sqrt(cout))
            blk["torgb"] = {"aw": aff["w"], "ab": aff["b"], "w": np.ascontiguousarray(tw[:, :, 0, 0].T),
                            "b": _get(state, f"{p}.torgb.bias", (spec.img_channels,))}
        if res > 4 and spec.architecture == "resnet":
            sw = _get(state, f"{p}.skip.weight", (cout, cin, 1, 1))
            _check_filter(state, f"{p}.skip.resample_filter", spec)
            blk["skip"] = {"w": np.ascontiguousarray((sw[:, :, 0, 0].T / math.sqrt(cin)).astype(np.float32))}
        synthesis[f"b{res}"] = blk
    return {"mapping": mapping, "synthesis": synthesis}


# ---------------------------------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------------------------------


def _normalize_2nd_moment(x: Array) -> Array:
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=1, keepdims=True) + 1e-8)


def _lrelu(x: Array, gain: float) -> Array:
    return jnp.where(x >= 0, x, 0.2 * x) * gain


def mapping(params: dict, config: dict | SG2Spec, z: Array, c: Array | None = None,
            truncation_psi: float | Array = 1.0, truncation_cutoff: int | None = None) -> Array:
    """z: (N, z_dim), c: (N, c_dim) or None → ws (N, num_ws, w_dim) float32.

    ``truncation_psi`` may be traced (exactly 1 leaves ws untouched); ``truncation_cutoff`` (a Python int or None
    for all layers) is static.
    """
    return mapping_network(params["mapping"], spec_from_config(config), z, c, truncation_psi, truncation_cutoff)


def mapping_network(mp: dict, spec: Any, z: Array, c: Array | None, truncation_psi: float | Array,
                    truncation_cutoff: int | None) -> Array:
    """The mapping network shared by StyleGAN2 and StyleGAN3 (``spec`` has z_dim, c_dim, num_ws,
    w_dim): normalize_2nd_moment(z) [+ normalised embed(c)] -> fc layers -> ws, then truncation."""
    parts = []
    if spec.z_dim > 0:
        z = jnp.asarray(z, jnp.float32)
        if z.ndim != 2 or z.shape[1] != spec.z_dim:
            raise ValueError(f"z must have shape (N, {spec.z_dim}), got {z.shape}")
        parts.append(_normalize_2nd_moment(z))
    if spec.c_dim > 0:
        if c is None:
            raise ValueError(f"this generator is conditional: pass c with shape (N, {spec.c_dim})")
        c = jnp.asarray(c, jnp.float32)
        if c.ndim != 2 or c.shape[1] != spec.c_dim:
            raise ValueError(f"c must have shape (N, {spec.c_dim}), got {c.shape}")
        parts.append(_normalize_2nd_moment(c @ mp["embed"]["w"] + mp["embed"]["b"]))
    x = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)
    for layer in mp["fc"]:
        x = _lrelu(x @ layer["w"] + layer["b"], _SQRT2)
    ws = jnp.broadcast_to(x[:, None, :], (x.shape[0], spec.num_ws, spec.w_dim))
    if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
        return ws
    psi = jnp.asarray(truncation_psi, jnp.float32)
    w_avg = mp["w_avg"]
    trunc = w_avg + psi * (ws - w_avg)
    if truncation_cutoff is not None:
        keep = (jnp.arange(spec.num_ws) < int(truncation_cutoff))[None, :, None]
        trunc = jnp.where(keep, trunc, ws)
    return jnp.where(psi == 1, ws, trunc)


# ---------------------------------------------------------------------------------------------------------------
# Resampling helpers (separable shifted-slice sums; never a depthwise conv)
# ---------------------------------------------------------------------------------------------------------------


def _pad_axis(x: Array, axis: int, lo: int, hi: int) -> Array:
    cfg = [(0, 0, 0)] * x.ndim
    cfg[axis] = (lo, hi, 0)
    return lax.pad(x, jnp.zeros((), x.dtype), cfg)  # negative pads crop


def _fir_axis(x: Array, taps: tuple[float, ...], gain: float, pad0: int, pad1: int, axis: int) -> Array:
    """upfirdn2d along one axis with up=down=1: pad (or crop), then *convolve* with the taps (flipped), ·gain."""
    xp = _pad_axis(x, axis, pad0, pad1)
    g = [t * gain for t in reversed(taps)]
    n = xp.shape[axis] - len(g) + 1
    out = None
    for k, gk in enumerate(g):
        term = lax.slice_in_dim(xp, k, k + n, axis=axis) * gk
        out = term if out is None else out + term
    return out


def _upsample2x_axis(x: Array, taps: tuple[float, ...], axis: int) -> Array:
    """upfirdn2d along one axis with up=2, pads ((fw+1)//2, (fw-2)//2), gain 2 (per axis), as two polyphase FIRs.

    With zero insertion u[2j] = x[j] and pad p0, output ``out[2m + r] = Σ_k g[k]·x[m + (r + k − p0)/2]`` over the
    taps k with ``r + k − p0`` even (g = flipped taps · 2); x is zero outside its range.
    """
    fw = len(taps)
    p0 = (fw + 1) // 2
    g = [t * 2.0 for t in reversed(taps)]
    phases = [[(g[k], (r + k - p0) // 2) for k in range(fw) if (r + k - p0) % 2 == 0] for r in (0, 1)]
    offs = [o for ph in phases for _, o in ph]
    lo, hi = max(0, -min(offs)), max(0, max(offs))
    n = x.shape[axis]
    xp = _pad_axis(x, axis, lo, hi)
    outs = []
    for ph in phases:
        acc = None
        for gk, o in ph:
            term = lax.slice_in_dim(xp, o + lo, o + lo + n, axis=axis) * gk
            acc = term if acc is None else acc + term
        outs.append(acc if acc is not None else jnp.zeros_like(x))
    y = jnp.stack(outs, axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return y.reshape(shape)


def upsample2d(x: Array, taps: tuple[float, ...]) -> Array:
    """NVIDIA ``upsample2d`` (NHWC): exactly 2× with the normalised separable FIR and gain 4."""
    return _upsample2x_axis(_upsample2x_axis(x, taps, 1), taps, 2)


# XLA's CPU convolution with lhs_dilation is slow for large, thin activations (measured at 128->256,
# 128->64 channels: 27 ms against 13 ms for the polyphase form below); below this input size it wins.
POLYPHASE_MIN_SIZE = 128


def _transposed_conv3_polyphase(x: Array, w: Array) -> Array:
    """Exactly ``conv(dilate2(x), w, padding 2)`` for a 3x3 HWIO ``w`` (output 2H+1 x 2W+1), as ONE
    2x2 convolution at the input resolution with the four output phases stacked on the channel axis.

    Even output rows take taps w[0], w[2] of two neighbouring input rows; odd rows take w[1] of one
    (so their other tap is zero); likewise for columns.
    """
    n, h, wd, _ = x.shape
    co = w.shape[3]
    zero = jnp.zeros_like(w[0, 0])
    tap = {(0, 0): 0, (0, 1): 2, (1, 1): 1}  # (phase, window position) -> kernel index
    rows = []
    for a in (0, 1):
        cols = []
        for b in (0, 1):
            phases = []
            for r in (0, 1):
                for s_ in (0, 1):
                    ky, kx = tap.get((r, a)), tap.get((s_, b))
                    phases.append(zero if ky is None or kx is None else w[ky, kx])
            cols.append(jnp.concatenate(phases, axis=-1))
        rows.append(jnp.stack(cols))
    kernel = jnp.stack(rows)  # (2, 2, I, 4·O)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = lax.conv_general_dilated(xp, kernel, (1, 1), "VALID", dimension_numbers=_DN)  # (N, H+1, W+1, 4·O)
    y = y.reshape(n, h + 1, wd + 1, 2, 2, co).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h + 2, 2 * wd + 2, co)
    return y[:, : 2 * h + 1, : 2 * wd + 1]


def _up_conv(x: Array, w_hwio_flipped: Array, taps: tuple[float, ...]) -> Array:
    """``conv2d_resample(up=2, padding=k//2, flip_weight=False)`` on NHWC: stride-2 transposed conv + FIR."""
    k = w_hwio_flipped.shape[0]
    fw = len(taps)
    pad = k // 2
    p0 = pad + (fw + 1) // 2 - (k - 1)
    p1 = pad + (fw - 2) // 2 - (k - 2)
    pt = max(min(-p0, -p1), 0)  # NVIDIA's transposed-conv padding (crop); 0 for k=3, fw=4
    if k == 3 and pt == 0 and x.shape[1] >= POLYPHASE_MIN_SIZE:
        y = _transposed_conv3_polyphase(x, w_hwio_flipped)
    else:
        y = lax.conv_general_dilated(x, w_hwio_flipped, window_strides=(1, 1),
                                     padding=((k - 1 - pt, k - 1 - pt), (k - 1 - pt, k - 1 - pt)),
                                     lhs_dilation=(2, 2), dimension_numbers=_DN)
    y = _fir_axis(y, taps, 2.0, p0 + pt, p1 + pt, axis=1)
    return _fir_axis(y, taps, 2.0, p0 + pt, p1 + pt, axis=2)


# ---------------------------------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------------------------------


def _is_typed_key(key: Array) -> bool:
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def _noise_layers(spec: SG2Spec) -> list[int]:
    """Resolution of each noise input, in layer order (b4.conv1, b8.conv0, b8.conv1, ...)."""
    return [r for r in spec.block_resolutions for _ in range(1 if r == 4 else 2)]


def _all_noise(key: Array, spec: SG2Spec, n: int) -> list[Array]:
    """Unit normal noise (n, res, res, 1) for every layer, drawn in ONE random call (fast to compile and run).

    ``key`` is one PRNG key (the whole batch drawn from it) or one key per sample (a sample's noise then depends
    only on its own key)."""
    sizes = [r * r for r in _noise_layers(spec)]
    total = sum(sizes)
    batched = key.ndim == (1 if _is_typed_key(key) else 2)
    if batched:
        if key.shape[0] != n:
            raise ValueError(f"got {key.shape[0]} noise keys for a batch of {n}")
        flat = jax.vmap(lambda k: jax.random.normal(k, (total,)))(key)
    else:
        flat = jax.random.normal(key, (n, total))
    out, start = [], 0
    for r, size in zip(_noise_layers(spec), sizes):
        out.append(flat[:, start:start + size].reshape(n, r, r, 1))
        start += size
    return out


def _synthesis_layer(p: dict, x: Array, w: Array, spec: SG2Spec, up: bool, noise: Array | None,
                     gain: float = 1.0) -> Array:
    s = w @ p["aw"] + p["ab"]  # (N, I)
    x = x * s[:, None, None, :]
    if up:
        x = _up_conv(x, p["w"], spec.resample_taps)
    else:
        k = p["w"].shape[0]
        x = lax.conv_general_dilated(x, p["w"], (1, 1), ((k // 2, k // 2), (k // 2, k // 2)), dimension_numbers=_DN)
    d = lax.rsqrt(jnp.square(s) @ p["wsq"] + 1e-8)  # (N, O) = rsqrt(Σ_{i,k} (W[o,i,k]·s[i])² + 1e-8)
    x = x * d[:, None, None, :]
    if noise is not None:
        x = x + noise
    x = _lrelu(x + p["b"], _SQRT2 * gain)
    if spec.conv_clamp is not None:
        c = spec.conv_clamp * gain
        x = jnp.clip(x, -c, c)
    return x


def _torgb(p: dict, x: Array, w: Array, spec: SG2Spec) -> Array:
    s = w @ p["aw"] + p["ab"]  # affine · 1/√I, folded in prepare_params
    y = jnp.einsum("nhwi,io->nhwo", x * s[:, None, None, :], p["w"]) + p["b"]
    if spec.conv_clamp is not None:
        y = jnp.clip(y, -spec.conv_clamp, spec.conv_clamp)
    return y


def synthesis(params: dict, config: dict | SG2Spec, ws: Array, noise_mode: str = "const",
              key: Array | None = None, noise_gain: Array | None = None) -> Array:
    """ws (N, num_ws, w_dim) → images (N, R, R, img_channels) float32, NHWC, no output scaling (≈[-1, 1]).

    noise_mode: "const" (the stored ``noise_const`` buffers), "random" (needs ``key``: one PRNG key, or one key
    per sample for noise that depends only on that sample's key) or "none". Noise is scaled by noise_strength.

    noise_gain: None (the default; the traced program is exactly the one without it) or a per-sample (N,) (or
    scalar, broadcast) factor on every layer's noise input, const or random: 0 gives the image of
    ``noise_mode="none"``, 1 the default image, 2 twice the noise (noise reactivity: the percussive envelope
    scales the noise). Ignored with ``noise_mode="none"``. It may be traced.
    """
    spec = spec_from_config(config)
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise_mode == "random":
        if key is None:
            raise ValueError('noise_mode="random" needs a PRNG key')
        key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    ws = jnp.asarray(ws, params["synthesis"]["b4"]["const"].dtype)  # float32; bfloat16 when the params are (compute_dtype)
    if ws.ndim != 3 or ws.shape[1:] != (spec.num_ws, spec.w_dim):
        raise ValueError(f"ws must have shape (N, {spec.num_ws}, {spec.w_dim}), got {ws.shape}")
    n = ws.shape[0]
    sp = params["synthesis"]
    layer_index = 0
    unit_noise = _all_noise(key, spec, n) if noise_mode == "random" else None
    gain = None
    if noise_gain is not None and noise_mode != "none":
        g = jnp.asarray(noise_gain, jnp.float32)
        if g.ndim > 1 or (g.ndim == 1 and g.shape[0] not in (1, n)):
            raise ValueError(f"noise_gain must be a scalar or have shape ({n},), got {g.shape}")
        gain = jnp.broadcast_to(g.reshape(-1), (n,))[:, None, None, None]

    def noise_for(p: dict, res: int) -> Array | None:
        nonlocal layer_index
        idx = layer_index
        layer_index += 1
        if noise_mode == "none" or "nc" not in p:
            return None
        if noise_mode == "const":
            noise = (p["nc"] * p["ns"])[None, :, :, None]
        else:
            noise = unit_noise[idx] * p["ns"]
        return noise if gain is None else noise * gain

    x = img = None
    for res in spec.block_resolutions:
        blk = sp[f"b{res}"]
        if res == 4:
            x = jnp.broadcast_to(blk["const"][None], (n,) + blk["const"].shape)
            x = _synthesis_layer(blk["conv1"], x, ws[:, 0], spec, False, noise_for(blk["conv1"], res))
            i_rgb = 1
        else:
            i = 2 * int(round(math.log2(res))) - 5
            if spec.architecture == "resnet":
                y = upsample2d(jnp.einsum("nhwi,io->nhwo", x, blk["skip"]["w"]), spec.resample_taps) * _SQRT_HALF
                x = _synthesis_layer(blk["conv0"], x, ws[:, i], spec, True, noise_for(blk["conv0"], res))
                x = _synthesis_layer(blk["conv1"], x, ws[:, i + 1], spec, False, noise_for(blk["conv1"], res),
                                     gain=_SQRT_HALF)
                x = y + x
            else:
                x = _synthesis_layer(blk["conv0"], x, ws[:, i], spec, True, noise_for(blk["conv0"], res))
                x = _synthesis_layer(blk["conv1"], x, ws[:, i + 1], spec, False, noise_for(blk["conv1"], res))
            i_rgb = i + 2
        if img is not None:
            img = upsample2d(img, spec.resample_taps)
        if spec.has_torgb(res):
            y = _torgb(blk["torgb"], x, ws[:, i_rgb], spec)
            img = y if img is None else img + y
    return img


def generate(params: dict, config: dict | SG2Spec, z: Array, c: Array | None = None,
             truncation_psi: float | Array = 1.0, truncation_cutoff: int | None = None,
             noise_mode: str = "const", key: Array | None = None, noise_gain: Array | None = None) -> Array:
    """mapping then synthesis: z (N, z_dim) → images (N, R, R, 3) (``noise_gain``: see :func:`synthesis`)."""
    ws = mapping(params, config, z, c, truncation_psi, truncation_cutoff)
    return synthesis(params, config, ws, noise_mode, key, noise_gain)
