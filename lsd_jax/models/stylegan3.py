"""StyleGAN3 (config-t and config-r) generator as a Flax NNX module (NHWC, float32).

Module tree and parameter paths are those of NVIDIA's ``G_ema`` (torch ``state_dict()`` keys, original values and
layouts)::

    mapping.fc{i}.weight / .bias, mapping.embed.weight / .bias (conditional), mapping.w_avg
    synthesis.input: weight, affine.weight / .bias, transform, freqs, phases
    synthesis.L{i}_{size}_{channels}: weight, bias, magnitude_ema, up_filter, down_filter, affine.weight / .bias

The math follows NVIDIA's public StyleGAN3 code and paper (facts only; this code is independent):

* ``training/networks_stylegan3.py`` (NVlabs/stylegan3):

  - ``MappingNetwork``: ``normalize_2nd_moment(z)``; when conditional, ``normalize_2nd_moment(embed(c))`` with the
    embedding to ``w_dim``; concatenate; ``num_layers`` (default 2) fully connected lrelu layers of width ``w_dim``
    with lr multiplier 0.01 (weight gain ``lr/√in``, bias gain ``lr``); broadcast to ``num_ws = num_layers + 2``
    (synthesis layers + 2); truncation ``w_avg + ψ(w − w_avg)`` on the first ``truncation_cutoff`` ws (all when
    None).
  - ``SynthesisInput``: ``t = affine(w₀)`` (w → 4), ``t /= |t[:2]|``; ``T = R·Tr·U`` with ``R = [[t₀, −t₁],
    [t₁, t₀]]``, ``Tr`` the translation by ``−t[2:]`` and ``U`` the user's inverse transform (the ``transform``
    buffer, identity by default); ``phases += freqs @ T[:2, 2]``, ``freqs = freqs @ T[:2, :2]``; amplitudes
    ``clamp(1 − (|f| − bandwidth)/(sampling_rate/2 − bandwidth), 0, 1)``; features
    ``sin(2π(grid·f + φ))·amp`` on the ``affine_grid`` (``align_corners=False``) of ``size`` pixels whose pixel
    centres sit at ``(i + ½ − size/2)/sampling_rate``; then ``x @ (weight/√C)ᵀ``.
  - ``SynthesisLayer``: ``input_gain = rsqrt(magnitude_ema)``; ``s = affine(w)`` (bias init 1; ToRGB multiplies
    by ``1/√(I·k²)``); ``modulated_conv2d``: when demodulating, pre-normalise ``W·rsqrt(mean_{I,k,k} W²)`` and
    ``s·rsqrt(mean s²)``, modulate, demodulate ``rsqrt(Σ_{I,k,k} W'² + 1e-8)``, then scale the weights by the
    input gain; convolution with padding ``k − 1``; then ``filtered_lrelu`` with the layer's ``up_factor``,
    ``down_factor``, ``padding``, ``up_filter``/``down_filter`` buffers, gain √2 and slope 0.2 (ToRGB: 1 and 1),
    clamp ``conv_clamp``.
  - ``SynthesisNetwork``: input with ``ws[0]``, layer ``i`` with ``ws[i + 1]``, output ``· output_scale``.

* ``torch_utils/ops/filtered_lrelu.py`` (reference path) and ``torch_utils/ops/upfirdn2d.py``: ``+bias`` →
  ``upfirdn2d(up, fu, padding, gain=up²)`` → lrelu(slope)·gain → clamp → ``upfirdn2d(down, fd)``. ``upfirdn2d``
  inserts ``up − 1`` zeros after each pixel, pads (negative = crop), *convolves* with the filter (a 1-D filter is
  applied along x and y, each with ``√gain``; a 2-D one once with ``gain``), and keeps every ``down``-th pixel.

Implementation choices for XLA on CPU (measured; ``python -m lsd_jax.bench`` shows the result):

* modulation/demodulation scale the activations around ONE shared-weight convolution (``x·s → conv → ·d``);
  the style pre-normalisation uses each sample's own RMS (NVIDIA takes the mean over the whole batch; the two
  differ only through the ``1e-8`` of the demodulation, a relative effect below 1e-9, and per-sample keeps every
  image a function of its own latent only);
* :meth:`StyleGAN3.constants` gives the weight-only subexpressions (the pre-normalised, input-gained HWIO kernel
  and ``Σ_k Ŵ²``), which the render step computes once per render (see :mod:`lsd_jax.models.stylegan2`);
* the separable up-filter is a polyphase FIR, the separable down-filter a strided shifted-slice sum, and
  config-r's radial 2-D down-filter a direct strided 2-D FIR (shifted-slice sums too): never a depthwise conv;
* everything is float32 (NVIDIA's fp16 layers are not reproduced; ``conv_clamp`` still applies).

``config`` is the dict described in :mod:`converters.sg3` (NVIDIA's ``Generator`` kwargs with defaults filled in,
plus ``synthesis_input`` and ``synthesis_layers``: the per-layer attributes read from the pickle), or the hashable
:class:`SG3Spec` derived from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from .ops import (
    Buffer,
    FullyConnected,
    MappedGenerator,
    MappingNetwork,
    dense,
    filtered_lrelu,
    load_module,
    noise_mode_index,
    trim_centre,
    zeros,
)

Array = jax.Array
_DN = ("NHWC", "HWIO", "NHWC")


# ---------------------------------------------------------------------------------------------------------------
# Static description of the network
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SG3InputSpec:
    channels: int
    size: tuple[int, int]  # (width, height)
    sampling_rate: float
    bandwidth: float


@dataclass(frozen=True)
class SG3LayerSpec:
    name: str
    is_torgb: bool
    in_channels: int
    out_channels: int
    in_size: tuple[int, int]  # (width, height)
    out_size: tuple[int, int]
    conv_kernel: int
    up: int
    down: int
    padding: tuple[int, int, int, int]  # (x0, x1, y0, y1), w.r.t. the upsampled image
    up_taps: int
    down_taps: int
    down_radial: bool
    conv_clamp: float | None

    @property
    def tmp_size(self) -> tuple[int, int]:
        """(width, height) after the conv and the upsampling filter, before the downsampling filter."""
        k = self.conv_kernel
        x0, x1, y0, y1 = self.padding
        return (
            (self.in_size[0] + k - 1) * self.up + x0 + x1 - (self.up_taps - 1),
            (self.in_size[1] + k - 1) * self.up + y0 + y1 - (self.up_taps - 1),
        )


@dataclass(frozen=True)
class SG3Spec:
    """Everything about a StyleGAN3 config that shapes the computation (hashable: usable as a jit static arg)."""

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_layers: int
    lr_multiplier: float
    output_scale: float
    input: SG3InputSpec
    layers: tuple[SG3LayerSpec, ...]

    @property
    def num_ws(self) -> int:
        return len(self.layers) + 1

    @property
    def family(self) -> str:
        return "stylegan3"

    @property
    def kind(self) -> str:
        """'r' when the layers use 1×1 convolutions (config-r), else 't'."""
        return "r" if all(L.conv_kernel == 1 for L in self.layers) else "t"


def _pair(value: Any, what: str) -> tuple[int, int]:
    a = np.broadcast_to(np.asarray(value), [2])
    if a.dtype.kind not in "iuf" or not np.all(a == np.round(a)):
        raise ValueError(f"{what} must be one or two integers, got {value!r}")
    return int(a[0]), int(a[1])


def _layer_spec(d: dict, i: int) -> SG3LayerSpec:
    name = str(d.get("name", f"L{i}"))
    try:
        clamp = d.get("conv_clamp")
        L = SG3LayerSpec(
            name=name,
            is_torgb=bool(d["is_torgb"]),
            in_channels=int(d["in_channels"]),
            out_channels=int(d["out_channels"]),
            in_size=_pair(d["in_size"], f"{name}.in_size"),
            out_size=_pair(d["out_size"], f"{name}.out_size"),
            conv_kernel=int(d["conv_kernel"]),
            up=int(d["up_factor"]),
            down=int(d["down_factor"]),
            padding=tuple(int(p) for p in d["padding"]),  # type: ignore[arg-type]
            up_taps=int(d["up_taps"]),
            down_taps=int(d["down_taps"]),
            down_radial=bool(d["down_radial"]),
            conv_clamp=None if clamp is None else float(clamp),
        )
    except KeyError as e:
        raise ValueError(f"StyleGAN3 layer {name} lacks attribute {e.args[0]!r}") from None
    if len(L.padding) != 4:
        raise ValueError(f"{name}.padding must have 4 entries (x0, x1, y0, y1), got {L.padding}")
    if min(L.in_channels, L.out_channels, L.conv_kernel, L.up, L.down, L.up_taps, L.down_taps) < 1:
        raise ValueError(f"{name}: channels, kernel, up/down factors and tap counts must be >= 1")
    for axis in (0, 1):
        tmp = L.tmp_size[axis]
        out = (tmp - (L.down_taps - 1) + L.down - 1) // L.down
        if tmp < max(L.down_taps, 1) or out != L.out_size[axis]:
            raise ValueError(
                f"{name}: its padding {list(L.padding)}, factors and taps give a {'xy'[axis]} size "
                f"of {out}, not its out_size {L.out_size[axis]}"
            )
    return L


def spec_from_config(config: dict | SG3Spec) -> SG3Spec:
    """Validate a StyleGAN3 config dict and derive its hashable :class:`SG3Spec` (an ``SG3Spec`` passes through)."""
    if isinstance(config, SG3Spec):
        return config
    family = config.get("family")
    if family != "stylegan3":
        raise ValueError(f"not a StyleGAN3 config (family={family!r})")
    mk = dict(config.get("mapping_kwargs") or {})
    sk = dict(config.get("synthesis_kwargs") or {})
    z_dim, c_dim, w_dim = int(config["z_dim"]), int(config["c_dim"]), int(config["w_dim"])
    res, img_channels = int(config["img_resolution"]), int(config.get("img_channels", 3))
    if z_dim <= 0 and c_dim <= 0:
        raise ValueError("z_dim and c_dim cannot both be 0")
    inp = config.get("synthesis_input")
    layer_dicts = config.get("synthesis_layers")
    if not isinstance(inp, dict) or not isinstance(layer_dicts, (list, tuple)) or not layer_dicts:
        raise ValueError(
            "a StyleGAN3 config needs 'synthesis_input' and 'synthesis_layers' (the per-layer "
            "attributes read from the pickle)"
        )
    try:
        ispec = SG3InputSpec(
            channels=int(inp["channels"]),
            size=_pair(inp["size"], "synthesis_input.size"),
            sampling_rate=float(inp["sampling_rate"]),
            bandwidth=float(inp["bandwidth"]),
        )
    except KeyError as e:
        raise ValueError(f"synthesis_input lacks attribute {e.args[0]!r}") from None
    layers = tuple(_layer_spec(d, i) for i, d in enumerate(layer_dicts))
    prev_c, prev_size = ispec.channels, ispec.size
    for L in layers:
        if (L.in_channels, L.in_size) != (prev_c, prev_size):
            raise ValueError(
                f"{L.name} expects {L.in_channels} channels of {list(L.in_size)}, but its input has "
                f"{prev_c} of {list(prev_size)}"
            )
        prev_c, prev_size = L.out_channels, L.out_size
    last = layers[-1]
    if not last.is_torgb or any(L.is_torgb for L in layers[:-1]):
        raise ValueError("the last StyleGAN3 layer (and only it) must be the ToRGB layer")
    if (last.out_channels, last.out_size) != (img_channels, (res, res)):
        raise ValueError(
            f"the ToRGB layer outputs {last.out_channels} channels of {list(last.out_size)}, not "
            f"{img_channels} of [{res}, {res}]"
        )
    n_syn = sk.get("num_layers")
    if n_syn is not None and int(n_syn) + 1 != len(layers):
        raise ValueError(f"synthesis num_layers={n_syn} but the config lists {len(layers)} layers (incl. ToRGB)")
    return SG3Spec(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=res,
        img_channels=img_channels,
        mapping_layers=int(mk.get("num_layers", 2)),
        lr_multiplier=float(mk.get("lr_multiplier", 0.01)),
        output_scale=float(sk.get("output_scale", 0.25)),
        input=ispec,
        layers=layers,
    )


# ---------------------------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------------------------


def transform_matrix(angle: Any = 0.0, tx: Any = 0.0, ty: Any = 0.0) -> Array:
    """The ``synthesis.input.transform`` that rotates the image by ``angle`` radians and then translates it by
    ``(tx, ty)``: (N, 3, 3) float32, N the broadcast length of the arguments (1 for scalars).

    Conventions (those of NVIDIA's ``gen_images.py`` / visualizer, which store the *inverse* of
    ``[[cos, sin, tx], [−sin, cos, ty], [0, 0, 1]]``): a positive angle turns the picture counter-clockwise as
    displayed (rows downwards), about the image centre; ``tx`` moves it right and ``ty`` down, in units of the
    image width/height (the output image spans 1.0 in these coordinates). Jittable; the arguments may be traced.
    """
    a, x, y = jnp.broadcast_arrays(*(jnp.atleast_1d(jnp.asarray(v, jnp.float32)) for v in (angle, tx, ty)))
    c, s = jnp.cos(a), jnp.sin(a)
    zero, one = jnp.zeros_like(a), jnp.ones_like(a)
    # inverse of [[R, t], [0, 1]] with R = [[c, s], [-s, c]]: [[Rᵀ, −Rᵀt], [0, 1]]
    rows = [
        jnp.stack([c, -s, -(c * x - s * y)], -1),
        jnp.stack([s, c, -(s * x + c * y)], -1),
        jnp.stack([zero, zero, one], -1),
    ]
    return jnp.stack(rows, axis=1)


def _batch_transform(transform: Array | None, default: Array, n: int) -> Array:
    if transform is None:
        return jnp.broadcast_to(default, (n, 3, 3))
    t = jnp.asarray(transform, jnp.float32)
    if t.shape == (3, 3):
        t = t[None]
    if t.ndim != 3 or t.shape[1:] != (3, 3) or t.shape[0] not in (1, n):
        raise ValueError(f"transform must have shape (3, 3), (1, 3, 3) or ({n}, 3, 3), got {t.shape}")
    return jnp.broadcast_to(t, (n, 3, 3))


# ---------------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------------


class SynthesisInput(nnx.Module):
    """NVIDIA ``SynthesisInput``: Fourier features rotated/translated by ``affine(w₀)`` and the user transform."""

    def __init__(self, spec: SG3InputSpec, w_dim: int):
        C = spec.channels
        self.affine = FullyConnected(w_dim, 4)
        self.weight = nnx.Param(zeros(C, C))
        self.transform = Buffer(zeros(3, 3))
        self.freqs = Buffer(zeros(C, 2))
        self.phases = Buffer(zeros(C))
        self.spec = spec

    def __call__(self, w: Array, transform: Array | None = None, extra: tuple[int, int] = (0, 0)) -> Array:
        """w (N, w_dim) → (N, H, W, C). ``transform``: per-sample (N, 3, 3) (or one (3, 3)) replacing the stored
        ``transform`` buffer (NVIDIA's user-specified inverse transform). ``extra``: (x, y) samples more on each
        side, on the same grid (same sampling rate): a wider view of the same features."""
        n = w.shape[0]
        t = self.affine(w)  # (N, 4) = (r_c, r_s, t_x, t_y)
        t = t * lax.rsqrt(jnp.sum(jnp.square(t[:, :2]), axis=1, keepdims=True))
        rc, rs, tx, ty = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
        zero, one = jnp.zeros_like(rc), jnp.ones_like(rc)
        # m_r @ m_t = [[rc, -rs, -(rc·tx - rs·ty)], [rs, rc, -(rs·tx + rc·ty)], [0, 0, 1]]
        m = jnp.stack(
            [
                jnp.stack([rc, -rs, -(rc * tx - rs * ty)], -1),
                jnp.stack([rs, rc, -(rs * tx + rc * ty)], -1),
                jnp.stack([zero, zero, one], -1),
            ],
            axis=1,
        )
        T = m @ _batch_transform(transform, self.transform[...], n).astype(m.dtype)
        freqs0 = self.freqs[...]  # (C, 2)
        phases = self.phases[...][None, :] + jnp.einsum("ck,nk->nc", freqs0, T[:, :2, 2])
        freqs = jnp.einsum("ck,nkj->ncj", freqs0, T[:, :2, :2])  # (N, C, 2)
        sr, bw = self.spec.sampling_rate, self.spec.bandwidth
        amp = jnp.clip(1 - (jnp.sqrt(jnp.sum(jnp.square(freqs), axis=2)) - bw) / (sr / 2 - bw), 0, 1)
        W, H = self.spec.size[0] + 2 * extra[0], self.spec.size[1] + 2 * extra[1]
        gx = jnp.asarray((np.arange(W) + 0.5 - W / 2) / sr, jnp.float32)
        gy = jnp.asarray((np.arange(H) + 0.5 - H / 2) / sr, jnp.float32)
        arg = (
            gx[None, None, :, None] * freqs[:, None, None, :, 0]
            + gy[None, :, None, None] * freqs[:, None, None, :, 1]
            + phases[:, None, None, :]
        )
        x = jnp.sin(arg * (2 * np.pi)) * amp[:, None, None, :]
        return dense(x, self.weight[...]) * (1.0 / math.sqrt(self.spec.channels))


class SynthesisLayer(nnx.Module):
    """NVIDIA StyleGAN3 ``SynthesisLayer`` (also the ToRGB layer): modulated conv + filtered lrelu."""

    def __init__(self, L: SG3LayerSpec, w_dim: int):
        self.affine = FullyConnected(w_dim, L.in_channels)
        k = L.conv_kernel
        self.weight = nnx.Param(zeros(L.out_channels, L.in_channels, k, k))
        self.bias = nnx.Param(zeros(L.out_channels))
        self.magnitude_ema = Buffer(zeros())
        if L.up_taps > 1:
            self.up_filter = Buffer(zeros(L.up_taps))
        if L.down_taps > 1:
            self.down_filter = Buffer(zeros(*((L.down_taps,) * (2 if L.down_radial else 1))))
        self.spec = L

    def constants(self) -> dict[str, Array]:
        """``kernel``: HWIO ``Ŵ·rsqrt(magnitude_ema)`` (``Ŵ`` pre-normalised per output channel when demodulating);
        ``wsq`` (I, O) = ``Σ_k Ŵ²`` (demodulating layers)."""
        w = self.weight[...]
        gain = lax.rsqrt(self.magnitude_ema[...].astype(jnp.float32)).astype(w.dtype)
        out = {}
        if not self.spec.is_torgb:
            w = w * lax.rsqrt(jnp.mean(jnp.square(w), axis=(1, 2, 3), keepdims=True))
            out["wsq"] = jnp.sum(jnp.square(w), axis=(2, 3)).T
        out["kernel"] = jnp.transpose(w * gain, (2, 3, 1, 0))
        return out

    def __call__(
        self, x: Array, w: Array, consts: dict[str, Array] | None = None, extra: tuple[int, int] = (0, 0)
    ) -> Array:
        """x (N, h, w, I) → (N, h', w', O); ``extra``: (x, y) pixels more on each side of ``x`` than the layer's
        ``in_size`` (its output then has ``extra·up/down`` more on each side)."""
        L = self.spec
        c = self.constants() if consts is None else consts
        s = self.affine(w)
        if L.is_torgb:
            s = s * (1.0 / math.sqrt(L.in_channels * L.conv_kernel**2))
        else:
            s = s * lax.rsqrt(jnp.mean(jnp.square(s), axis=1, keepdims=True))
        kernel = c["kernel"]
        x = (x * s[:, None, None, :]).astype(kernel.dtype)  # the state's dtype (bfloat16 under compute_dtype)
        k = L.conv_kernel
        if k == 1:
            x = jnp.einsum("nhwi,io->nhwo", x, kernel[0, 0])
        else:
            x = lax.conv_general_dilated(x, kernel, (1, 1), ((k - 1, k - 1), (k - 1, k - 1)), dimension_numbers=_DN)
        if not L.is_torgb:
            d = lax.rsqrt(jnp.square(s) @ c["wsq"] + 1e-8)  # (N, O)
            x = x * d[:, None, None, :]
        fu = (self.up_filter[...][::-1] if L.up_taps > 1 else jnp.ones((1,), x.dtype)) * L.up
        fd = None
        if L.down_taps > 1:
            fd = self.down_filter[...]
            fd = fd[::-1, ::-1] if L.down_radial else fd[::-1]
        return filtered_lrelu(
            x,
            self.bias[...],
            fu.astype(x.dtype),
            None if fd is None else fd.astype(x.dtype),
            up=L.up,
            down=L.down,
            padding=L.padding,
            tmp_size=(L.tmp_size[0] + 2 * extra[0] * L.up, L.tmp_size[1] + 2 * extra[1] * L.up),
            down_radial=L.down_radial,
            linear=L.is_torgb,
            clamp=L.conv_clamp,
        )


class SynthesisNetwork(nnx.Module):
    """NVIDIA StyleGAN3 ``SynthesisNetwork``: ``input`` and the layers ``L{i}_{size}_{channels}``."""

    def __init__(self, spec: SG3Spec):
        self.spec = spec
        self.input = SynthesisInput(spec.input, spec.w_dim)
        for L in spec.layers:
            setattr(self, L.name, SynthesisLayer(L, spec.w_dim))

    def constants(self) -> dict[str, Any]:
        return {L.name: getattr(self, L.name).constants() for L in self.spec.layers}

    def margins(self, size: tuple[int, int]) -> tuple[int, int]:
        """(x, y) input samples to add on each side so the output covers ``size`` (H, W): the smallest counts
        whose growth ``extra·Π up/down`` is whole at every layer."""
        ratios, r = [], Fraction(1)
        for L in self.spec.layers:
            r *= Fraction(L.up, L.down)
            ratios.append(r)
        unit = math.lcm(*(q.denominator for q in ratios))
        res = self.spec.img_resolution

        def side(n: int) -> int:
            need = max(0, -(-(n - res) // 2))  # output pixels per side
            return unit * math.ceil(Fraction(need) / (unit * r))

        return side(size[1]), side(size[0])

    def __call__(
        self,
        ws: Array,
        transform: Array | None = None,
        consts: dict[str, Any] | None = None,
        size: tuple[int, int] | None = None,
    ) -> Array:
        """ws (N, num_ws, w_dim) → images (N, R, R, img_channels), times ``output_scale`` (≈[-1, 1]).
        ``transform``: optional per-sample (N, 3, 3) (or one (3, 3)) inverse transform replacing the stored
        ``synthesis.input.transform`` buffer (see :func:`transform_matrix`); it may be traced. ``size`` (H, W):
        images (N, H, W, img_channels) from the input's Fourier features sampled on a wider grid (same sampling
        rate, bandwidth and transform), the excess trimmed evenly; the network is translation-equivariant, so
        the centre is the square frame (the infinite canvas)."""
        spec = self.spec
        ws = jnp.asarray(ws, self.input.weight.dtype)  # float32; bfloat16 when the state is (compute_dtype)
        if ws.ndim != 3 or ws.shape[1:] != (spec.num_ws, spec.w_dim):
            raise ValueError(f"ws must have shape (N, {spec.num_ws}, {spec.w_dim}), got {ws.shape}")
        consts = self.constants() if consts is None else consts
        ex, ey = (0, 0) if size is None else self.margins(size)
        x = self.input(ws[:, 0], transform, (ex, ey))
        for i, L in enumerate(spec.layers):
            x = getattr(self, L.name)(x, ws[:, i + 1], consts[L.name], (ex, ey))
            ex, ey = ex * L.up // L.down, ey * L.up // L.down
        if spec.output_scale != 1:
            x = x * spec.output_scale
        return x if size is None else trim_centre(x, size)


class StyleGAN3(MappedGenerator, nnx.Module):
    """NVIDIA's StyleGAN3 ``Generator``: ``mapping`` and ``synthesis``. Build with :func:`from_state`."""

    family = "stylegan3"
    has_noise = False
    supports_transform = True

    def __init__(self, spec: SG3Spec, has_w_avg: bool = True):
        self.spec = spec
        self.mapping = MappingNetwork(
            spec.z_dim,
            spec.c_dim,
            spec.w_dim,
            spec.num_ws,
            num_layers=spec.mapping_layers,
            embed_features=spec.w_dim,
            layer_features=spec.w_dim,
            lr_multiplier=spec.lr_multiplier,
            has_w_avg=has_w_avg,
        )
        self.synthesis = SynthesisNetwork(spec)

    def synthesize(
        self,
        ws: Array,
        *,
        noise_mode: Any = "const",
        key: Array | None = None,
        noise_gain: Array | None = None,
        transform: Array | None = None,
        consts: dict[str, Any] | None = None,
        size: tuple[int, int] | None = None,
        widen_mode: str = "reflect",
    ) -> Array:
        """StyleGAN3 has no noise inputs: ``noise_mode`` (checked when a name), ``key`` and ``noise_gain`` are
        ignored. ``size`` (H, W): a wider view of the same canvas (see :meth:`SynthesisNetwork.__call__`); every
        ``widen_mode`` gives it (the Fourier grid is StyleGAN3's own way to widen)."""
        noise_mode_index(noise_mode)
        return self.synthesis(ws, transform, consts, size=size)

    def __call__(
        self,
        z: Array,
        c: Array | None = None,
        truncation_psi: Any = 1.0,
        truncation_cutoff: Any = None,
        noise_mode: Any = "const",
        key: Array | None = None,
        noise_gain: Array | None = None,
        transform: Array | None = None,
        consts: dict[str, Any] | None = None,
    ) -> Array:
        """mapping then synthesis: z (N, z_dim) → images (N, R, R, img_channels)."""
        ws = self.map_latents(z, c, truncation_psi, truncation_cutoff)
        return self.synthesize(
            ws, noise_mode=noise_mode, key=key, noise_gain=noise_gain, transform=transform, consts=consts
        )


def abstract(config: dict | SG3Spec, has_w_avg: bool = True) -> StyleGAN3:
    spec = spec_from_config(config)
    return nnx.eval_shape(lambda: StyleGAN3(spec, has_w_avg))


def from_state(config: dict | SG3Spec, state: dict[str, Any]) -> StyleGAN3:
    """The module for ``config`` holding ``state`` (torch ``state_dict()`` keys → arrays). Missing, unexpected or
    misshapen tensors raise ``KeyError`` / ``ValueError`` naming them, as does a non-positive ``magnitude_ema``."""
    spec = spec_from_config(config)
    state = dict(state)
    if "synthesis.input.transform" not in state:
        state["synthesis.input.transform"] = np.eye(3, dtype=np.float32)
    for L in spec.layers:
        p = f"synthesis.{L.name}"
        if f"{p}.magnitude_ema" in state:
            mag = float(np.asarray(state[f"{p}.magnitude_ema"]).reshape(()))
            if not mag > 0:
                raise ValueError(f"{p}.magnitude_ema must be positive, got {mag}")
        if L.up_taps == 1 and f"{p}.up_filter" in state:
            raise ValueError(f"{p}.up_filter is present but the layer has up_taps=1")
        if L.down_taps == 1 and f"{p}.down_filter" in state:
            raise ValueError(f"{p}.down_filter is present but the layer has down_taps=1")
    return load_module(abstract(spec, "mapping.w_avg" in state), state, "StyleGAN3 state")
