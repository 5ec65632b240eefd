"""StyleGAN2 / StyleGAN2-ADA generator as a Flax NNX module (NHWC, float32).

Module tree and parameter paths are those of NVIDIA's ``G_ema`` (torch ``state_dict()`` keys, original values and
layouts: ``[out, in]`` dense weights, OIHW conv weights, equalized-lr gains applied in the forward)::

    mapping.fc{i}.weight / .bias, mapping.embed.weight / .bias (conditional), mapping.w_avg
    synthesis.b4.const, synthesis.b{R}.resample_filter
    synthesis.b{R}.conv0 / conv1: weight, bias, noise_strength, noise_const, resample_filter, affine.weight / .bias
    synthesis.b{R}.torgb: weight, bias, affine.weight / .bias;  synthesis.b{R}.skip: weight, resample_filter (resnet)

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

Implementation choices for XLA on CPU (measured; ``python -m lsd_jax.bench`` shows the result):

* modulation/demodulation scale the activations around ONE shared-weight convolution (``x·s → conv → ·d``), so a
  batch is a single ordinary conv; ``d`` uses ``Σ_k W²`` per (in, out);
* the 2× up-conv is a transposed conv (or its polyphase form for inputs ≥ 128 px) followed by the FIR as separable
  shifted-slice sums; ``upsample2d`` of images / resnet skips is a polyphase separable filter;
* the FIR uses the config's separable taps (the ``resample_filter`` buffers are kept and checked against them);
* :meth:`StyleGAN2.constants` gives the weight-only subexpressions of the forward (HWIO kernels, flipped for the up
  layers, and ``Σ_k W²``): the render step computes them once per render and passes them in, because redoing
  them per batch costs ~20% at batch 1 on CPU (measured); called without them, the forward computes them itself;
* fp16 paths are not reproduced (``conv_clamp`` still applies, as in NVIDIA's code with ``force_fp32``).

Noise modes: ``"const"`` (the ``noise_const`` buffers), ``"random"`` (needs a PRNG key, or one key per sample),
``"none"``; a string selects at trace time, an int array (:data:`NOISE_MODES` index) at run time (so the render
step never recompiles for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from .ops import NOISE_MODES as NOISE_MODES  # re-exported: the modes' names and their traced indices
from .ops import (
    SQRT2,
    Buffer,
    FullyConnected,
    MappedGenerator,
    MappingNetwork,
    conv_same,
    dense,
    load_module,
    lrelu,
    map_shape,
    noise_inputs,
    trim_centre,
    up_conv,
    upsample2d,
    widen,
    widening_plan,
    zeros,
)

Array = jax.Array
_SQRT_HALF = math.sqrt(0.5)
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
        return tuple(2**i for i in range(2, self.log2_resolution + 1))

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
    channels = tuple((2**i, int(min(base // 2**i, cmax))) for i in range(1, log2 + 1))
    clamp = sk.get("conv_clamp")
    return SG2Spec(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=res,
        img_channels=int(config.get("img_channels", 3)),
        mapping_layers=int(mk.get("num_layers", 8)),
        embed_features=embed,
        layer_features=layer_features,
        lr_multiplier=float(mk.get("lr_multiplier", 0.01)),
        architecture=arch,
        conv_clamp=None if clamp is None else float(clamp),
        resample_taps=tuple(float(t) for t in taps),
        channels=channels,
    )


def filter_shape(taps: tuple[float, ...]) -> tuple[int, ...]:
    """Shape of NVIDIA's ``resample_filter`` buffer (``setup_filter``: outer product below 8 taps)."""
    return (len(taps), len(taps)) if len(taps) < 8 else (len(taps),)


# ---------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------


class SynthesisLayer(nnx.Module):
    """NVIDIA ``SynthesisLayer`` (3×3 modulated conv, optional 2× up, noise, bias, lrelu, clamp)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: bool,
        taps: tuple[float, ...],
        conv_clamp: float | None,
        kernel_size: int = 3,
    ):
        self.affine = FullyConnected(w_dim, in_channels)
        self.weight = nnx.Param(zeros(out_channels, in_channels, kernel_size, kernel_size))
        self.noise_strength = nnx.Param(zeros())
        self.bias = nnx.Param(zeros(out_channels))
        self.resample_filter = Buffer(zeros(*filter_shape(taps)))
        self.noise_const = Buffer(zeros(resolution, resolution))
        self.up, self.taps, self.conv_clamp, self.resolution = up, taps, conv_clamp, resolution

    def constants(self) -> dict[str, Array]:
        """The weight-only subexpressions: ``kernel`` (HWIO; flipped for the up-conv) and ``wsq`` (I, O) =
        ``Σ_k W[o, i, k]²``."""
        w = self.weight[...]
        k = w[:, :, ::-1, ::-1] if self.up else w
        return {"kernel": jnp.transpose(k, (2, 3, 1, 0)), "wsq": jnp.sum(jnp.square(w), axis=(2, 3)).T}

    def __call__(
        self, x: Array, w: Array, noise: Array | None, gain: float = 1.0, consts: dict[str, Array] | None = None
    ) -> Array:
        """x (N, H, W, I) [(N, H/2, W/2, I) when up], w (N, w_dim), noise (N or 1, H, W, 1) before the strength, or
        None → (N, H, W, O)."""
        c = self.constants() if consts is None else consts
        s = self.affine(w)  # (N, I)
        x = x * s[:, None, None, :]
        x = up_conv(x, c["kernel"], self.taps) if self.up else conv_same(x, c["kernel"])
        d = lax.rsqrt(jnp.square(s) @ c["wsq"] + 1e-8)  # (N, O) = rsqrt(Σ_{i,k} (W[o,i,k]·s[i])² + 1e-8)
        x = x * d[:, None, None, :]
        if noise is not None:  # (N or 1, H, W, 1) from ops.noise_inputs
            x = x + noise * self.noise_strength[...]
        x = lrelu(x + self.bias[...], SQRT2 * gain)
        if self.conv_clamp is not None:
            x = jnp.clip(x, -self.conv_clamp * gain, self.conv_clamp * gain)
        return x


class ToRGB(nnx.Module):
    """NVIDIA ``ToRGBLayer``: styles ``·1/√I``, 1×1 modulated conv without demodulation, bias, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None):
        self.affine = FullyConnected(w_dim, in_channels)
        self.weight = nnx.Param(zeros(out_channels, in_channels, 1, 1))
        self.bias = nnx.Param(zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)
        self.conv_clamp = conv_clamp

    def __call__(self, x: Array, w: Array) -> Array:
        s = self.affine(w) * self.weight_gain
        y = dense(x * s[:, None, None, :], self.weight[...][:, :, 0, 0]) + self.bias[...]
        if self.conv_clamp is not None:
            y = jnp.clip(y, -self.conv_clamp, self.conv_clamp)
        return y


class Skip(nnx.Module):
    """The resnet skip: NVIDIA ``Conv2dLayer`` (1×1, bias-free, up 2, weight gain ``1/√in``)."""

    def __init__(self, in_channels: int, out_channels: int, taps: tuple[float, ...]):
        self.weight = nnx.Param(zeros(out_channels, in_channels, 1, 1))
        self.resample_filter = Buffer(zeros(*filter_shape(taps)))
        self.weight_gain = 1.0 / math.sqrt(in_channels)
        self.taps = taps

    def __call__(self, x: Array, gain: float) -> Array:
        return upsample2d(dense(x, self.weight[...][:, :, 0, 0]) * self.weight_gain, self.taps) * gain


class SynthesisBlock(nnx.Module):
    """NVIDIA ``SynthesisBlock`` ``b{res}``: const (4×4) or conv0 (up), conv1, torgb, resnet skip."""

    def __init__(self, spec: SG2Spec, res: int):
        cout = spec.ch(res)
        cin = spec.ch(res // 2) if res > 4 else 0
        wd, taps, clamp = spec.w_dim, spec.resample_taps, spec.conv_clamp
        if res == 4:
            self.const = nnx.Param(zeros(cout, res, res))
        else:
            self.conv0 = SynthesisLayer(cin, cout, wd, res, up=True, taps=taps, conv_clamp=clamp)
        self.conv1 = SynthesisLayer(cout, cout, wd, res, up=False, taps=taps, conv_clamp=clamp)
        self.resample_filter = Buffer(zeros(*filter_shape(taps)))
        self.has_torgb = spec.has_torgb(res)
        if self.has_torgb:
            self.torgb = ToRGB(cout, spec.img_channels, wd, clamp)
        self.resnet = res > 4 and spec.architecture == "resnet"
        if self.resnet:
            self.skip = Skip(cin, cout, taps)
        self.res, self.taps = res, taps
        self.num_conv = 1 if res == 4 else 2
        self.num_torgb = int(self.has_torgb)

    def layers(self) -> tuple[str, ...]:
        return ("conv1",) if self.res == 4 else ("conv0", "conv1")

    def __call__(
        self,
        x: Array | None,
        img: Array | None,
        ws: Array,
        noises: list[Array | None],
        consts: dict[str, Any] | None = None,
        grid: tuple[int, int] = (4, 4),
        widen_mode: str = "reflect",
    ) -> tuple[Array, Array | None]:
        """NVIDIA's ``SynthesisBlock.forward``: x (N, res/2, res/2, cin) (None at 4×4), img (N, res/2, res/2, C) or
        None, ws (N, num_conv + num_torgb, w_dim) this block's ws, noises one per :meth:`layers` entry →
        (x (N, res, res, cout), img (N, res, res, C) or None). ``grid``: the const widened to it (``widen_mode``);
        every later map is that much wider."""
        consts = {name: getattr(self, name).constants() for name in self.layers()} if consts is None else consts
        w_iter = iter([ws[:, i] for i in range(ws.shape[1])])  # NVIDIA's ws.unbind(dim=1)
        if self.res == 4:
            const = jnp.transpose(self.const[...], (1, 2, 0))
            x = widen(const[None], grid, widen_mode)
            x = jnp.broadcast_to(x, (ws.shape[0],) + x.shape[1:])
            x = self.conv1(x, next(w_iter), noises[0], consts=consts["conv1"])
        elif self.resnet:
            y = self.skip(x, _SQRT_HALF)
            x = self.conv0(x, next(w_iter), noises[0], consts=consts["conv0"])
            x = self.conv1(x, next(w_iter), noises[1], gain=_SQRT_HALF, consts=consts["conv1"])
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noises[0], consts=consts["conv0"])
            x = self.conv1(x, next(w_iter), noises[1], consts=consts["conv1"])
        if img is not None:
            img = upsample2d(img, self.taps)
        if self.has_torgb:
            y = self.torgb(x, next(w_iter))
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nnx.Module):
    """NVIDIA ``SynthesisNetwork``: blocks ``b4 … b{R}``."""

    def __init__(self, spec: SG2Spec):
        self.spec = spec
        for res in spec.block_resolutions:
            setattr(self, f"b{res}", SynthesisBlock(spec, res))

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.spec.block_resolutions]

    def constants(self) -> dict[str, Any]:
        """Every layer's :meth:`SynthesisLayer.constants`, as ``{"b8": {"conv0": {...}, ...}, ...}``."""
        return {f"b{b.res}": {name: getattr(b, name).constants() for name in b.layers()} for b in self.blocks()}

    def _noise(
        self,
        noise_mode: Any,
        key: Array | None,
        noise_gain: Array | None,
        n: int,
        grid: tuple[int, int] = (4, 4),
        mode: str = "reflect",
        layer: int = 4,
    ) -> list[Array | None]:
        """The noise input of every layer in order (b4.conv1, b8.conv0, b8.conv1, ...), before its strength; on a
        ``grid`` wider than the map widened at block ``layer`` (:func:`.ops.widening_plan`) the stored noise of
        that block on is widened the same way as the map (random noise is drawn at the wider shape)."""
        stored = []
        base = 4 if layer == 4 else layer // 2
        for b in self.blocks():
            for name in b.layers():
                noise = getattr(b, name).noise_const[...][None, :, :, None]
                stored.append(widen(noise, map_shape(b.res, layer, base, grid), mode))
        return noise_inputs(noise_mode, key, noise_gain, stored, n)

    def __call__(
        self,
        ws: Array,
        noise_mode: Any = "const",
        key: Array | None = None,
        noise_gain: Array | None = None,
        consts: dict[str, Any] | None = None,
        size: tuple[int, int] | None = None,
        widen_mode: str = "reflect",
        frame_layer: int = 4,
    ) -> Array:
        """ws (N, num_ws, w_dim) → images (N, R, R, img_channels), NHWC, no output scaling (≈[-1, 1]); with
        ``size`` (H, W): images (N, H, W, img_channels), the 4×4 const widened by ``widen_mode``
        (:data:`.ops.WIDEN_MODES`) to the next grid that covers it, the excess trimmed evenly. ``frame_layer``: the
        block (by resolution) from which the frame is wide: 4 widens the const; a larger one runs the blocks
        before it square and widens the map entering it (and the running image) instead.

        ``noise_mode``: a name or a traced :data:`NOISE_MODES` index (see the module docstring); ``key``: one PRNG
        key or one per sample. ``noise_gain``: None, or a per-sample (N,) (or scalar) factor on every layer's noise
        (0: no noise, 1: the default, 2: twice; ignored with ``"none"``). ``consts``: :meth:`constants`
        precomputed (the render step's speed-up), or None to compute them here."""
        spec = self.spec
        ws = jnp.asarray(ws, self.b4.const.dtype)  # float32; bfloat16 when the state is (compute_dtype)
        if ws.ndim != 3 or ws.shape[1:] != (spec.num_ws, spec.w_dim):
            raise ValueError(f"ws must have shape (N, {spec.num_ws}, {spec.w_dim}), got {ws.shape}")
        n = ws.shape[0]
        consts = self.constants() if consts is None else consts
        layer = 4 if size is None else frame_layer
        grid = (4, 4) if size is None else widening_plan(layer, spec.img_resolution, size)[1]
        noises = self._noise(noise_mode, key, noise_gain, n, grid, widen_mode, layer)
        x = img = None
        w_idx = 0
        for blk in self.blocks():  # a block reads num_conv + num_torgb ws; the next starts num_conv further
            k = blk.num_conv
            blk_ws = ws[:, w_idx : w_idx + k + blk.num_torgb]
            if blk.res == layer > 4:  # the square map entering this block (and the image so far) made wide
                x = widen(x, grid, widen_mode)
                img = None if img is None else widen(img, grid, widen_mode)
            const_grid = grid if layer == 4 else (4, 4)
            x, img = blk(x, img, blk_ws, noises[:k], consts[f"b{blk.res}"], grid=const_grid, widen_mode=widen_mode)
            w_idx, noises = w_idx + k, noises[k:]
        return img if size is None else trim_centre(img, size)


# ---------------------------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------------------------


class StyleGAN2(MappedGenerator, nnx.Module):
    """NVIDIA's StyleGAN2(-ADA) ``Generator``: ``mapping`` (:class:`~lsd_jax.models.ops.MappingNetwork`) and
    ``synthesis`` (:class:`SynthesisNetwork`). Build with :func:`from_state`."""

    family = "stylegan2"
    has_noise = True
    supports_transform = False

    def __init__(self, spec: SG2Spec, has_w_avg: bool = True):
        self.spec = spec
        self.mapping = MappingNetwork(
            spec.z_dim,
            spec.c_dim,
            spec.w_dim,
            spec.num_ws,
            num_layers=spec.mapping_layers,
            embed_features=spec.embed_features,
            layer_features=spec.layer_features,
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
        frame_layer: int = 4,
    ) -> Array:
        """ws → images (N, R, R, 3), or (N, H, W, 3) for ``size`` (see :meth:`SynthesisNetwork.__call__`)."""
        if transform is not None:
            raise ValueError("transform is only supported by StyleGAN3 generators")
        return self.synthesis(
            ws, noise_mode, key, noise_gain, consts, size=size, widen_mode=widen_mode, frame_layer=frame_layer
        )

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


def _check_filters(spec: SG2Spec, state: dict[str, Any]) -> None:
    t = np.asarray(spec.resample_taps)
    for key, f in state.items():
        if key.endswith("resample_filter"):
            f = np.asarray(f, np.float64)
            want = np.outer(t, t) if f.ndim == 2 else t
            if f.shape != want.shape or not np.allclose(f, want, atol=1e-6):
                raise ValueError(f"{key} does not match the config's resample_filter {list(spec.resample_taps)}")


def abstract(config: dict | SG2Spec, has_w_avg: bool = True) -> StyleGAN2:
    """The module for ``config`` with abstract (shape-only) variables."""
    spec = spec_from_config(config)
    return nnx.eval_shape(lambda: StyleGAN2(spec, has_w_avg))


def from_state(config: dict | SG2Spec, state: dict[str, Any]) -> StyleGAN2:
    """The module for ``config`` holding ``state`` (torch ``state_dict()`` keys → arrays). A missing, unexpected
    or misshapen tensor raises ``KeyError`` / ``ValueError`` naming it; so does a ``resample_filter`` that is not
    the config's. A state without ``mapping.w_avg`` (``w_avg_beta=None``) truncates towards zero."""
    spec = spec_from_config(config)
    _check_filters(spec, state)
    return load_module(abstract(spec, "mapping.w_avg" in state), state, "StyleGAN2 state")
