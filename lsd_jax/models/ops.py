"""Operations shared by the generators (NHWC activations, float32 unless the state is cast).

* :class:`Buffer` — the NNX variable type of a network's non-trainable tensors (torch buffers such as
  ``noise_const``, ``resample_filter``, ``w_avg``, ``magnitude_ema``); trainable tensors are ``nnx.Param``.
* :class:`FullyConnected` — NVIDIA's ``FullyConnectedLayer``: weight ``[out, in]`` as stored, equalized-lr gains
  (``lr/√in`` on the weight, ``lr`` on the bias) applied in the forward on the activation side (free).
* :class:`MappingNetwork` — the z (+ c) → ws network of StyleGAN2 and StyleGAN3, with truncation whose ψ and
  cutoff may be traced arrays (a new ψ never recompiles).
* FIR resampling as shifted-slice sums (never a depthwise convolution, which XLA's CPU backend runs ~5× slower):
  :func:`fir_axis`, :func:`upsample2d` (polyphase), :func:`up_fir_axis`, :func:`down_fir_axis`,
  :func:`down_fir_2d`; :func:`up_conv` (NVIDIA's ``conv2d_resample(up=2)``: transposed conv + FIR, with a
  polyphase form for large inputs); :func:`filtered_lrelu`; :func:`bias_act`.
* :func:`load_module` — build a module from ``(abstract module, flat state)``, checking every name and shape
  (every family is built through it).
* :func:`noise_inputs` — every noise layer's input (stored, random or none; a name or a traced
  :data:`NOISE_MODES` index) from :func:`unit_noise`: StyleGAN 1's and StyleGAN2's noise, one implementation.

Facts (not code) from NVIDIA's public ``torch_utils/ops`` (``upfirdn2d``, ``conv2d_resample``, ``bias_act``,
``filtered_lrelu``) and ``training/networks.py``. The implementation choices are measured on XLA's CPU backend
(a depthwise convolution there runs ~5× slower than shifted-slice sums); ``python -m lsd_jax.bench`` shows the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from ..params import NOISE_MODES  # the render settings' noise-mode indices: the models read the same table

Array = jax.Array
SQRT2 = math.sqrt(2.0)
DN = ("NHWC", "HWIO", "NHWC")


class Buffer(nnx.Variable):
    """A non-trainable tensor of the original network (a torch buffer): kept with its original name and value."""


def zeros(*shape: int) -> Array:
    """A float32 placeholder (modules are built abstractly with ``nnx.eval_shape`` and then filled)."""
    return jnp.zeros(shape, jnp.float32)


# ---------------------------------------------------------------------------------------------------------------
# Activations and dense layers
# ---------------------------------------------------------------------------------------------------------------


def lrelu(x: Array, gain: float = SQRT2, slope: float = 0.2) -> Array:
    return jnp.where(x >= 0, x, slope * x) * gain


def bias_act(x: Array, b: Array, act: str = "linear", gain: float | None = None, clamp: float | None = None) -> Array:
    """NVIDIA ``bias_act`` on the last axis: ``+b → act → ·gain → clamp`` (lrelu: slope 0.2, default gain √2)."""
    x = x + b
    if act == "lrelu":
        x = lrelu(x, SQRT2 if gain is None else gain)
    elif act != "linear":
        raise ValueError(f"unsupported activation {act!r}")
    elif gain is not None and gain != 1:
        x = x * gain
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    return x


def normalize_2nd_moment(x: Array) -> Array:
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=1, keepdims=True) + 1e-8)


def dense(x: Array, weight: Array) -> Array:
    """``x @ weightᵀ`` for a torch-layout ``[out, in]`` weight, without materialising the transpose."""
    return lax.dot_general(x, weight.astype(x.dtype), (((x.ndim - 1,), (1,)), ((), ())))


class FullyConnected(nnx.Module):
    """NVIDIA ``FullyConnectedLayer``: ``act(x @ (weight·lr/√in)ᵀ + bias·lr)``; (N, in) → (N, out)."""

    def __init__(self, in_features: int, out_features: int, *, lr_multiplier: float = 1.0, activation: str = "linear"):
        self.weight = nnx.Param(zeros(out_features, in_features))
        self.bias = nnx.Param(zeros(out_features))
        self.in_features, self.out_features = in_features, out_features
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = float(lr_multiplier)
        self.activation = activation

    def __call__(self, x: Array) -> Array:
        y = dense(x, self.weight[...]) * self.weight_gain + self.bias[...] * self.bias_gain
        return lrelu(y) if self.activation == "lrelu" else y


# ---------------------------------------------------------------------------------------------------------------
# Mapping network (StyleGAN2 and StyleGAN3)
# ---------------------------------------------------------------------------------------------------------------


def truncation_args(num_ws: int, truncation_psi: Any, truncation_cutoff: Any) -> tuple[Array, Array]:
    """(ψ as a float32 array, cutoff as an int32 array; None → ``num_ws``, i.e. every layer)."""
    psi = jnp.asarray(truncation_psi, jnp.float32)
    cutoff = jnp.asarray(num_ws if truncation_cutoff is None else truncation_cutoff, jnp.int32)
    return psi, cutoff


class MappingNetwork(nnx.Module):
    """NVIDIA ``MappingNetwork``: normalize_2nd_moment(z) [‖ normalize_2nd_moment(embed(c))] → ``num_layers``
    lrelu fc layers → broadcast to ``num_ws`` → truncation towards ``w_avg``.

    Paths: ``embed.{weight,bias}`` (conditional only), ``fc{i}.{weight,bias}``, ``w_avg`` (a :class:`Buffer`)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        *,
        num_layers: int,
        embed_features: int,
        layer_features: int,
        lr_multiplier: float,
        has_w_avg: bool = True,
    ):
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        if c_dim > 0:
            self.embed = FullyConnected(c_dim, embed_features)
        feats = [z_dim + (embed_features if c_dim > 0 else 0)] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(
                self, f"fc{i}", FullyConnected(feats[i], feats[i + 1], lr_multiplier=lr_multiplier, activation="lrelu")
            )
        self.has_w_avg = has_w_avg
        if has_w_avg:
            self.w_avg = Buffer(zeros(w_dim))

    def __call__(
        self, z: Array | None, c: Array | None = None, truncation_psi: Any = 1.0, truncation_cutoff: Any = None
    ) -> Array:
        """z (N, z_dim), c (N, c_dim) or None → ws (N, num_ws, w_dim). ``truncation_psi`` (float) and
        ``truncation_cutoff`` (int: the first that many ws are truncated; None: all) may be traced arrays; ψ
        exactly 1 leaves ws untouched."""
        parts = []
        if self.z_dim > 0:
            z = jnp.asarray(z, jnp.float32)
            if z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape (N, {self.z_dim}), got {z.shape}")
            parts.append(normalize_2nd_moment(z))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this generator is conditional: pass c with shape (N, {self.c_dim})")
            c = jnp.asarray(c, jnp.float32)
            if c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"c must have shape (N, {self.c_dim}), got {c.shape}")
            parts.append(normalize_2nd_moment(self.embed(c)))
        x = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws
        psi, cutoff = truncation_args(self.num_ws, truncation_psi, truncation_cutoff)
        w_avg = self.w_avg[...] if self.has_w_avg else jnp.zeros((self.w_dim,), ws.dtype)
        trunc = w_avg + psi.astype(ws.dtype) * (ws - w_avg)
        keep = (jnp.arange(self.num_ws) < cutoff)[None, :, None]
        return jnp.where((psi != 1) & keep, trunc, ws)


# ---------------------------------------------------------------------------------------------------------------
# FIR resampling (separable shifted-slice sums; never a depthwise conv)
# ---------------------------------------------------------------------------------------------------------------


class MappedGenerator:
    """What StyleGAN2 and StyleGAN3 generators share (mixed into their NNX modules): sizes read from ``spec``,
    the synthesis network's precomputed ``constants`` and ``map_latents`` through their ``mapping``
    (:class:`MappingNetwork`), the w-space model protocol's first half."""

    z_dim = property(lambda self: self.spec.z_dim)
    c_dim = property(lambda self: self.spec.c_dim)
    w_dim = property(lambda self: self.spec.w_dim)
    num_ws = property(lambda self: self.spec.num_ws)
    img_resolution = property(lambda self: self.spec.img_resolution)

    def constants(self) -> dict[str, Any]:
        return self.synthesis.constants()

    def map_latents(self, z: Array, c: Array | None, truncation_psi: Any = 1.0, truncation_cutoff: Any = None) -> Array:
        return self.mapping(z, c, truncation_psi, truncation_cutoff)


def pad_axis(x: Array, axis: int, lo: int, hi: int) -> Array:
    cfg = [(0, 0, 0)] * x.ndim
    cfg[axis] = (lo, hi, 0)
    return lax.pad(x, jnp.zeros((), x.dtype), cfg)  # negative pads crop


def fir_axis(x: Array, taps: tuple[float, ...], gain: float, pad0: int, pad1: int, axis: int) -> Array:
    """upfirdn2d along one axis with up=down=1: pad (or crop), then *convolve* with the taps (flipped), ·gain."""
    xp = pad_axis(x, axis, pad0, pad1)
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
    xp = pad_axis(x, axis, lo, hi)
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


def transposed_conv3_polyphase(x: Array, w: Array) -> Array:
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
    y = lax.conv_general_dilated(xp, kernel, (1, 1), "VALID", dimension_numbers=DN)  # (N, H+1, W+1, 4·O)
    y = y.reshape(n, h + 1, wd + 1, 2, 2, co).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h + 2, 2 * wd + 2, co)
    return y[:, : 2 * h + 1, : 2 * wd + 1]


def up_conv(x: Array, w_hwio_flipped: Array, taps: tuple[float, ...]) -> Array:
    """``conv2d_resample(up=2, padding=k//2, flip_weight=False)`` on NHWC: stride-2 transposed conv + FIR.
    ``w_hwio_flipped``: the torch weight as HWIO, spatially flipped (XLA's correlation over the dilated input is
    then torch's ``conv_transpose2d`` scatter)."""
    k = w_hwio_flipped.shape[0]
    fw = len(taps)
    pad = k // 2
    p0 = pad + (fw + 1) // 2 - (k - 1)
    p1 = pad + (fw - 2) // 2 - (k - 2)
    pt = max(min(-p0, -p1), 0)  # NVIDIA's transposed-conv padding (crop); 0 for k=3, fw=4
    if k == 3 and pt == 0 and x.shape[1] >= POLYPHASE_MIN_SIZE:
        y = transposed_conv3_polyphase(x, w_hwio_flipped)
    else:
        y = lax.conv_general_dilated(
            x,
            w_hwio_flipped,
            window_strides=(1, 1),
            padding=((k - 1 - pt, k - 1 - pt), (k - 1 - pt, k - 1 - pt)),
            lhs_dilation=(2, 2),
            dimension_numbers=DN,
        )
    y = fir_axis(y, taps, 2.0, p0 + pt, p1 + pt, axis=1)
    return fir_axis(y, taps, 2.0, p0 + pt, p1 + pt, axis=2)


def conv_same(x: Array, w_hwio: Array) -> Array:
    """A stride-1 convolution with ``k//2`` padding (NHWC, HWIO)."""
    k = w_hwio.shape[0]
    return lax.conv_general_dilated(x, w_hwio, (1, 1), ((k // 2, k // 2), (k // 2, k // 2)), dimension_numbers=DN)


def up_fir_axis(x: Array, g: Array, up: int, pad0: int, out_len: int, axis: int) -> Array:
    """upfirdn2d along one axis: zero insertion (×up), pad ``pad0`` in front, convolve with taps (``g`` is the
    flipped, gain-scaled filter), keeping ``out_len`` outputs; as ``up`` polyphase FIRs over ``x`` itself.

    Output ``m = up·q + r`` reads ``Σ_k g[k]·u[m + k − pad0]`` with ``u[up·j] = x[j]``, i.e. the taps with
    ``r + k − pad0 ≡ 0 (mod up)`` at offsets ``(r + k − pad0)/up`` into ``x`` (zero outside)."""
    n_taps, n = g.shape[0], x.shape[axis]
    q = -(-out_len // up)
    phases = [[(k, (r + k - pad0) // up) for k in range(n_taps) if (r + k - pad0) % up == 0] for r in range(up)]
    offs = [o for ph in phases for _, o in ph] or [0]
    lo, hi = max(0, -min(offs)), max(0, q - 1 + max(offs) - (n - 1))
    xp = pad_axis(x, axis, lo, hi)
    outs = []
    for ph in phases:
        acc = None
        for k, o in ph:
            term = lax.slice_in_dim(xp, o + lo, o + lo + q, axis=axis) * g[k]
            acc = term if acc is None else acc + term
        if acc is None:
            shape = list(x.shape)
            shape[axis] = q
            acc = jnp.zeros(shape, x.dtype)
        outs.append(acc)
    if up == 1:
        y = outs[0]
    else:
        y = jnp.stack(outs, axis=axis + 1)
        shape = list(y.shape)
        shape[axis : axis + 2] = [q * up]
        y = y.reshape(shape)
    return lax.slice_in_dim(y, 0, out_len, axis=axis)


def down_fir_axis(x: Array, g: Array, down: int, axis: int) -> Array:
    """upfirdn2d along one axis with no padding: convolve (``g`` flipped) and keep every ``down``-th output."""
    n_taps, n = g.shape[0], x.shape[axis]
    q = (n - n_taps) // down + 1
    acc = None
    for k in range(n_taps):
        term = lax.slice_in_dim(x, k, k + down * (q - 1) + 1, stride=down, axis=axis) * g[k]
        acc = term if acc is None else acc + term
    return acc


def down_fir_2d(x: Array, g: Array, down: int) -> Array:
    """Non-separable (radial) 2-D FIR + ``down``× decimation on NHWC, as strided shifted-slice sums."""
    kh, kw = g.shape
    n, h, w, c = x.shape
    qh, qw = (h - kh) // down + 1, (w - kw) // down + 1
    acc = None
    for ky in range(kh):
        for kx in range(kw):
            term = (
                lax.slice(
                    x, (0, ky, kx, 0), (n, ky + down * (qh - 1) + 1, kx + down * (qw - 1) + 1, c), (1, down, down, 1)
                )
                * g[ky, kx]
            )
            acc = term if acc is None else acc + term
    return acc


def filtered_lrelu(
    x: Array,
    b: Array,
    fu: Array,
    fd: Array | None,
    *,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    tmp_size: tuple[int, int],
    down_radial: bool,
    linear: bool,
    clamp: float | None,
) -> Array:
    """NVIDIA ``filtered_lrelu`` (reference path) on NHWC: ``+b → upfirdn(up, fu, padding, gain up²) →
    lrelu·√2 (or linear) → clamp → upfirdn(down, fd)``. ``fu``/``fd`` are the flipped taps with the upsampling
    gain folded into ``fu`` (``up`` per axis); ``fd`` is None when there is no down filter."""
    x = x + b
    x0, _, y0, _ = padding
    if not (up == 1 and fu.shape[0] == 1 and tuple(padding) == (0, 0, 0, 0)):
        tw, th = tmp_size
        x = up_fir_axis(x, fu, up, y0, th, axis=1)
        x = up_fir_axis(x, fu, up, x0, tw, axis=2)
    if not linear:
        x = lrelu(x, SQRT2)
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    if fd is not None:
        if down_radial:
            x = down_fir_2d(x, fd, down)
        else:
            x = down_fir_axis(x, fd, down, axis=1)
            x = down_fir_axis(x, fd, down, axis=2)
    elif down > 1:
        x = x[:, ::down, ::down, :]
    return x


# ---------------------------------------------------------------------------------------------------------------
# Building a module from a flat state
# ---------------------------------------------------------------------------------------------------------------


def flat_shapes(module: nnx.Module) -> dict[str, tuple[int, ...]]:
    """Every variable of ``module`` (abstract or concrete): dotted path → shape."""
    return {".".join(str(p) for p in path): tuple(v.shape) for path, v in nnx.to_flat_state(nnx.state(module))}


def load_module(abstract: nnx.Module, state: Mapping[str, Any], what: str, dtype: Any = jnp.float32) -> nnx.Module:
    """Fill an abstract module (from ``nnx.eval_shape``) with the tensors of ``state`` (dotted path → array).
    Every path must be present with its shape, and no other: a missing, unexpected or misshapen tensor raises
    ``KeyError`` / ``ValueError`` naming it."""
    graphdef, abstract_state = nnx.split(abstract)
    wanted = {".".join(str(p) for p in path): tuple(v.shape) for path, v in nnx.to_flat_state(abstract_state)}
    for key in state:
        if key not in wanted:
            raise ValueError(f"{what}: unexpected tensor {key!r}")
    pure: dict[str, Any] = {}
    for key, shape in wanted.items():
        if key not in state:
            raise KeyError(f"{what} is missing tensor {key!r} (shape {shape})")
        a = np.asarray(state[key])
        if a.shape != shape:
            raise ValueError(f"{key}: expected shape {shape}, got {a.shape}")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{key}: expected a float tensor, got {a.dtype}")
        node = pure
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = jnp.asarray(a, dtype)
    nnx.replace_by_pure_dict(abstract_state, pure)
    return nnx.merge(graphdef, abstract_state)


def flat_state(module: nnx.Module) -> dict[str, np.ndarray]:
    """The module's tensors as ``{dotted path: numpy array}`` (the inverse of :func:`load_module`)."""
    return {".".join(str(p) for p in path): np.asarray(v[...]) for path, v in nnx.to_flat_state(nnx.state(module))}


def _is_typed_key(key: Array) -> bool:
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def unit_noise(key: Array, sizes: list[Any], n: int) -> list[Array]:
    """Unit normal noise (n, h, w, 1) for every layer (``sizes``: ``res`` for res×res, or (h, w)), drawn in ONE
    random call (fast to compile and run).

    ``key`` is one PRNG key (the whole batch drawn from it) or one key per sample (a sample's noise then depends
    only on its own key)."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    shapes = [(s, s) if isinstance(s, int) else tuple(s) for s in sizes]
    total = sum(h * w for h, w in shapes)
    batched = key.ndim == (1 if _is_typed_key(key) else 2)
    if batched:
        if key.shape[0] != n:
            raise ValueError(f"got {key.shape[0]} noise keys for a batch of {n}")
        flat = jax.vmap(lambda k: jax.random.normal(k, (total,)))(key)
    else:
        flat = jax.random.normal(key, (n, total))
    out, start = [], 0
    for h, w in shapes:
        out.append(flat[:, start : start + h * w].reshape(n, h, w, 1))
        start += h * w
    return out


def noise_mode_index(noise_mode: Any) -> Any:
    """A noise mode name → its index in :data:`NOISE_MODES` (an int array passes through)."""
    if isinstance(noise_mode, str):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return NOISE_MODES.index(noise_mode)
    return noise_mode


def noise_inputs(
    noise_mode: Any, key: Array | None, noise_gain: Array | None, stored: list[Array], n: int
) -> list[Array | None]:
    """Every noise layer's input before its learned strength: (1 or N, r, r, 1) per layer, or None (no noise).

    ``stored``: the layers' stored noise as (1, r, r, 1) (``noise_mode="const"``). ``noise_mode``: a name, or a
    traced :data:`NOISE_MODES` index (0 const, 1 random, 2 none; the random draw only runs when selected, so the
    render step never recompiles for it). ``key``: one PRNG key or one per sample (:func:`unit_noise`).
    ``noise_gain``: None, or a per-sample (N,) (or scalar) factor (0: no noise, 1: the default, 2: twice)."""
    static = isinstance(noise_mode, str)
    noise_mode_index(noise_mode)
    if static and noise_mode == "none":
        return [None] * len(stored)
    sizes = [(int(s.shape[1]), int(s.shape[2])) for s in stored]
    if static and noise_mode == "const":
        noises = list(stored)
    elif static:  # random
        if key is None:
            raise ValueError('noise_mode="random" needs a PRNG key')
        noises = [u.astype(s.dtype) for s, u in zip(stored, unit_noise(key, sizes, n), strict=True)]
    else:
        if key is None:
            raise ValueError("a traced noise_mode needs a PRNG key (used when it selects random noise)")
        mode = jnp.asarray(noise_mode, jnp.int32)
        unit = lax.cond(
            mode == 1,
            lambda k: unit_noise(k, sizes, n),
            lambda k: [jnp.zeros((n, h, w, 1), jnp.float32) for h, w in sizes],
            key,
        )
        noises = [
            jnp.where(mode == 0, s, u.astype(s.dtype)) * (mode != 2).astype(s.dtype)
            for s, u in zip(stored, unit, strict=True)
        ]
    if noise_gain is None:
        return noises
    g = jnp.asarray(noise_gain, jnp.float32)
    if g.ndim > 1 or (g.ndim == 1 and g.shape[0] not in (1, n)):
        raise ValueError(f"noise_gain must be a scalar or have shape ({n},), got {g.shape}")
    g = jnp.broadcast_to(g.reshape(-1), (n,))[:, None, None, None]
    return [z * g.astype(z.dtype) for z in noises]


# ---------------------------------------------------------------------------------------------------------------
# Frames of another shape than the square (widened feature maps, see the issue "native widescreen")
# ---------------------------------------------------------------------------------------------------------------

#: How a feature map is widened: padding as ``jnp.pad`` names it, or a resize.
WIDEN_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "stretch": None}


def widen(x: Array, shape: tuple[int, int], mode: str) -> Array:
    """A feature map (N, h, w, C) widened to (N, H, W, C) (H ≥ h, W ≥ w), the original in the centre: padded
    evenly (``reflect``/``replicate``/``circular``) or resized (``stretch``). Unchanged at its own shape."""
    if mode not in WIDEN_MODES:
        raise ValueError(f"widen mode must be one of {tuple(WIDEN_MODES)}, got {mode!r}")
    h, w = int(x.shape[1]), int(x.shape[2])
    H, W = shape
    if (H, W) == (h, w):
        return x
    if H < h or W < w:
        raise ValueError(f"cannot widen a {h}x{w} feature map to the smaller {H}x{W}")
    if WIDEN_MODES[mode] is None:
        return jax.image.resize(x, (x.shape[0], H, W, x.shape[3]), method="linear").astype(x.dtype)
    pads = ((0, 0), ((H - h) // 2, H - h - (H - h) // 2), ((W - w) // 2, W - w - (W - w) // 2), (0, 0))
    return jnp.pad(x, pads, mode=WIDEN_MODES[mode])


def widened_grid(base: int, res: int, size: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) to widen a ``base``×``base`` feature map to, for an image of at least ``size`` (H, W) where the
    square network makes ``res``×``res``: each side the next that covers it, widened by an even number of cells
    (so the square sits exactly in the centre and trimming the excess evenly never cuts into it)."""
    scale = res // base

    def side(n: int) -> int:
        cells = max(base, -(-n // scale))
        return cells + (cells - base) % 2

    return side(size[0]), side(size[1])


def widening_plan(layer: int, res: int, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """``(base, grid)`` for a frame of ``size`` (H, W) widened at block ``layer`` (``frame_layer``) of a StyleGAN 2/1
    synthesis of ``res``: ``base`` is the side of the map widened (4: the const, at layer 4; else the ``layer``/2
    map entering block ``layer``), ``grid`` the (h, w) it is widened to (:func:`widened_grid`)."""
    if layer < 4 or layer > res or layer & (layer - 1):
        raise ValueError(f"frame_layer must be a block resolution of this network (4, 8, … {res}), got {layer}")
    base = 4 if layer == 4 else layer // 2
    return base, widened_grid(base, res, size)


def map_shape(side: int, layer: int, base: int, grid: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) of a ``side``×``side`` map of the square network (a block's output, a noise input) in a frame
    widened at ``layer`` from ``base`` to ``grid`` (:func:`widening_plan`): square before that block, wide from it."""
    if side < layer:
        return side, side
    s = side // base
    return grid[0] * s, grid[1] * s


def trim_centre(x: Array, size: tuple[int, int]) -> Array:
    """The centre (N, H, W, C) of x (N, h, w, C), the excess trimmed evenly."""
    H, W = size
    top, left = (x.shape[1] - H) // 2, (x.shape[2] - W) // 2
    return x[:, top : top + H, left : left + W]
