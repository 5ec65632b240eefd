"""BigGAN-deep (the ``pytorch-pretrained-biggan`` generator, 128/256/512 px) as a Flax NNX module, NHWC float32.

Facts from the package's ``model.py`` (the code here is independent):

* condition vector: ``cond = concat(z, c @ embeddings.weightᵀ)`` with ``c`` an ``(N, num_classes)`` class mixture
  (one-hot or soft); ``(N, 2·z_dim)``.
* ``gen_z``: ``cond @ Wᵀ + b`` viewed as ``(N, 4, 4, 16·ch)`` (the TF layout: already NHWC here).
* ``GenBlock(in, out)``: ``bn_0 → relu → conv_0 (1×1, in→in/4) → bn_1 → relu → [2× nearest up-sample] → conv_1
  (3×3) → bn_2 → relu → conv_2 (3×3) → bn_3 → relu → conv_3 (1×1, →out)``, plus the skip path: the first
  ``in/2`` channels when ``in ≠ out``, up-sampled likewise.
* conditional batch norm: ``(x − mean) / sqrt(var + eps) · (1 + scale(cond)) + offset(cond)`` with ``scale`` and
  ``offset`` bias-free linears; ``generator.bn`` is the unconditional form ``· weight + bias``.
* batch-norm statistics: ``running_means``/``running_vars`` hold ``n_stats`` rows for truncation values on a grid
  of step ``1/(n_stats − 1)``. The package computes ``coef, i = math.modf(truncation / step)`` (float64) and uses
  row ``i`` alone when ``coef == 0``, else ``row[i]·coef + row[i+1]·(1 − coef)`` — note the weight order: ``coef``
  goes to the LOWER row. :func:`bn_stats_weights` reproduces this exactly as an ``(n_stats,)`` weight vector.
* ``SelfAttn(C)`` (before the block at ``attention_layer_position``): ``θ = conv(x)`` (C/8), ``φ = maxpool2(conv(x))``
  (C/8), ``g = maxpool2(conv(x))`` (C/2), ``attn = softmax(θ φᵀ)`` over the pooled positions,
  ``x + γ · o_conv(attn g)``.
* output: ``bn → relu → conv_to_rgb (3×3) → first 3 channels → tanh``.
* spectral norm is folded into the weights by :mod:`converters.biggan` (the eval-time ``W / (u·W v)``).

Parameter paths are the package's ``state_dict()`` keys (spectral-norm triplets become ``….weight``; see
:mod:`converters.biggan`), holding the original layouts: linear ``(out, in)``, conv ``OIHW``. Weights are
``nnx.Param``; the batch-norm statistics are :class:`Buffer` variables.

Truncation: ``model(z, c, truncation)``. A concrete truncation (a Python or NumPy number) gets the package's float64
rule; a traced one the same rule in float32 (which can differ right next to a grid value, e.g. 0.3). Jitted code
should take the weights from :func:`bn_stats_weights` as an input (see :func:`generate`): changing the truncation
then never recompiles and stays exact.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from ..errors import ConversionError, ParamError
from .ops import Buffer, load_module, trim_centre, widen, widened_grid

__all__ = [
    "BigGAN",
    "BigGANSpec",
    "Buffer",
    "abstract",
    "bn_stats_weights",
    "from_state",
    "generate",
    "truncated_noise",
]

Array = jax.Array
FAMILY = "biggan-deep"
_DN = ("NHWC", "HWIO", "NHWC")


@dataclass(frozen=True)
class BigGANSpec:
    """The static shape of a BigGAN-deep network (hashable; lives in the graphdef)."""

    z_dim: int
    num_classes: int
    channel_width: int
    layers: tuple[tuple[bool, int, int], ...]
    attention_layer_position: int
    eps: float
    n_stats: int

    @classmethod
    def from_config(cls, config: dict) -> BigGANSpec:
        return cls(
            int(config["z_dim"]),
            int(config["num_classes"]),
            int(config["channel_width"]),
            tuple((bool(u), int(a), int(b)) for u, a, b in config["layers"]),
            int(config["attention_layer_position"]),
            float(config["eps"]),
            int(config["n_stats"]),
        )

    @property
    def img_resolution(self) -> int:
        return 4 * 2 ** sum(1 for up, _, _ in self.layers if up)


# --------------------------------------------------------------------------------------------------------------
# Truncation → batch-norm statistics weights.


def bn_stats_weights(truncation: Any, n_stats: int = 51) -> Array:
    """``(n_stats,)`` float32 weights ``w`` with ``mean = w @ running_means`` exactly as the package interpolates.

    Concrete ``truncation`` (Python/NumPy number, 0-d array): float64 ``math.modf(truncation / (1/(n_stats-1)))``
    like the package, checked ``0 < truncation <= 1``. Traced: the same formula in float32 (clipped to the grid)."""
    if isinstance(truncation, jax.core.Tracer):
        t = jnp.asarray(truncation, jnp.float32)
        q = jnp.clip(t / jnp.float32(1.0 / (n_stats - 1)), 0.0, n_stats - 1)
        start = jnp.floor(q)
        coef = q - start
        i = start.astype(jnp.int32)
        lo = jnp.where(coef != 0, coef, 1.0)
        hi = jnp.where(coef != 0, 1.0 - coef, 0.0)
        return lo * jax.nn.one_hot(i, n_stats, dtype=jnp.float32) + hi * jax.nn.one_hot(
            jnp.minimum(i + 1, n_stats - 1), n_stats, dtype=jnp.float32
        )
    try:
        t = float(np.asarray(truncation, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise ParamError(f"truncation must be one number in (0, 1], not {truncation!r}") from None
    if not 0.0 < t <= 1.0:
        raise ParamError(f"truncation must be in (0, 1] (BigGAN has batch-norm statistics for that range), not {t}")
    coef, start = math.modf(t / (1.0 / (n_stats - 1)))
    w = np.zeros(n_stats, np.float64)
    i = int(start)
    if coef != 0.0:
        w[i], w[i + 1] = coef, 1.0 - coef  # the package's order: coef weighs the lower row
    else:
        w[i] = 1.0
    return jnp.asarray(w, jnp.float32)


def truncated_noise(key: Array, n: int, z_dim: int = 128, truncation: float | Array = 1.0) -> Array:
    """BigGAN's noise: ``truncation × truncnorm(−2, 2)``, ``(n, z_dim)`` float32 (``truncated_noise_sample``)."""
    return jnp.asarray(truncation, jnp.float32) * jax.random.truncated_normal(key, -2.0, 2.0, (n, z_dim), jnp.float32)


# --------------------------------------------------------------------------------------------------------------
# Layers.


def _relu(x: Array) -> Array:
    return jnp.maximum(x, 0.0)


def _up2(x: Array) -> Array:
    """Nearest-neighbour 2× up-sampling, (N, H, W, C) → (N, 2H, 2W, C)."""
    n, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c)).reshape(n, 2 * h, 2 * w, c)


def _maxpool2(x: Array) -> Array:
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Linear(nnx.Module):
    """``y = x Wᵀ (+ b)``; weight ``(out, in)``."""

    def __init__(self, c_in: int, c_out: int, bias: bool):
        self.weight = nnx.Param(jnp.zeros((c_out, c_in), jnp.float32))
        if bias:
            self.bias = nnx.Param(jnp.zeros((c_out,), jnp.float32))
        self.has_bias = bias

    def __call__(self, x: Array) -> Array:
        y = x @ self.weight[...].T
        return y + self.bias[...] if self.has_bias else y


class Conv(nnx.Module):
    """1×1 or 3×3 (padding 1) convolution; weight ``(out, in, k, k)``."""

    def __init__(self, c_in: int, c_out: int, k: int, bias: bool = True):
        self.weight = nnx.Param(jnp.zeros((c_out, c_in, k, k), jnp.float32))
        if bias:
            self.bias = nnx.Param(jnp.zeros((c_out,), jnp.float32))
        self.has_bias = bias
        self.k = k

    def __call__(self, x: Array, out_channels: int | None = None) -> Array:
        w = self.weight[...]
        b = self.bias[...] if self.has_bias else None
        if out_channels is not None:  # only the channels that are used (conv_to_rgb keeps 3)
            w = w[:out_channels]
            b = None if b is None else b[:out_channels]
        if self.k == 1:
            y = jnp.einsum("nhwc,oc->nhwo", x, w[:, :, 0, 0])
        else:
            y = lax.conv_general_dilated(
                x, jnp.transpose(w, (2, 3, 1, 0)), (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DN
            )
        return y if b is None else y + b


class BatchNorm(nnx.Module):
    """The package's ``BigGANBatchNorm``: statistics per truncation, conditional (scale/offset from the condition
    vector) or not (weight/bias)."""

    def __init__(self, c: int, n_stats: int, eps: float, cond_dim: int | None):
        self.conditional = cond_dim is not None
        if not self.conditional:
            self.weight = nnx.Param(jnp.ones((c,), jnp.float32))
            self.bias = nnx.Param(jnp.zeros((c,), jnp.float32))
        self.running_means = Buffer(jnp.zeros((n_stats, c), jnp.float32))
        self.running_vars = Buffer(jnp.ones((n_stats, c), jnp.float32))
        if self.conditional:
            self.scale = Linear(cond_dim, c, bias=False)
            self.offset = Linear(cond_dim, c, bias=False)
        self.eps = eps

    def __call__(self, x: Array, stats_w: Array, cond: Array | None = None) -> Array:
        mean = stats_w @ self.running_means[...]
        inv = lax.rsqrt(stats_w @ self.running_vars[...] + self.eps)
        if self.conditional:
            gain = (1.0 + self.scale(cond)) * inv  # (N, C)
            shift = self.offset(cond) - mean * gain
            return x * gain[:, None, None, :] + shift[:, None, None, :]
        gain = self.weight[...] * inv
        return x * gain + (self.bias[...] - mean * gain)


class GenBlock(nnx.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, up: bool, n_stats: int, eps: float):
        mid = c_in // 4
        self.bn_0 = BatchNorm(c_in, n_stats, eps, cond_dim)
        self.conv_0 = Conv(c_in, mid, 1)
        self.bn_1 = BatchNorm(mid, n_stats, eps, cond_dim)
        self.conv_1 = Conv(mid, mid, 3)
        self.bn_2 = BatchNorm(mid, n_stats, eps, cond_dim)
        self.conv_2 = Conv(mid, mid, 3)
        self.bn_3 = BatchNorm(mid, n_stats, eps, cond_dim)
        self.conv_3 = Conv(mid, c_out, 1)
        self.up = up
        self.keep = c_in // 2 if c_in != c_out else c_in

    def __call__(self, x: Array, cond: Array, stats_w: Array) -> Array:
        h = self.conv_0(_relu(self.bn_0(x, stats_w, cond)))
        h = _relu(self.bn_1(h, stats_w, cond))
        if self.up:
            h = _up2(h)
        h = self.conv_1(h)
        h = self.conv_2(_relu(self.bn_2(h, stats_w, cond)))
        h = self.conv_3(_relu(self.bn_3(h, stats_w, cond)))
        skip = x[..., : self.keep]
        return h + (_up2(skip) if self.up else skip)


class SelfAttn(nnx.Module):
    def __init__(self, c: int):
        self.snconv1x1_theta = Conv(c, c // 8, 1, bias=False)
        self.snconv1x1_phi = Conv(c, c // 8, 1, bias=False)
        self.snconv1x1_g = Conv(c, c // 2, 1, bias=False)
        self.snconv1x1_o_conv = Conv(c // 2, c, 1, bias=False)
        self.gamma = nnx.Param(jnp.zeros((1,), jnp.float32))

    def __call__(self, x: Array) -> Array:
        n, h, w, _ = x.shape
        theta = self.snconv1x1_theta(x).reshape(n, h * w, -1)
        phi = _maxpool2(self.snconv1x1_phi(x)).reshape(n, h * w // 4, -1)
        attn = jax.nn.softmax(jnp.einsum("nqc,nkc->nqk", theta, phi), axis=-1)
        g = _maxpool2(self.snconv1x1_g(x)).reshape(n, h * w // 4, -1)
        o = jnp.einsum("nqk,nkc->nqc", attn, g).reshape(n, h, w, -1)
        return x + self.gamma[...] * self.snconv1x1_o_conv(o)


class Generator(nnx.Module):
    def __init__(self, spec: BigGANSpec):
        ch, cond = spec.channel_width, 2 * spec.z_dim
        self.gen_z = Linear(cond, 4 * 4 * 16 * ch, bias=True)
        layers: list[nnx.Module] = []
        for i, (up, a, b) in enumerate(spec.layers):
            if i == spec.attention_layer_position:
                layers.append(SelfAttn(ch * a))
            layers.append(GenBlock(ch * a, ch * b, cond, up, spec.n_stats, spec.eps))
        self.layers = nnx.List(layers)
        self.bn = BatchNorm(ch, spec.n_stats, spec.eps, None)
        self.conv_to_rgb = Conv(ch, ch, 3)
        self.width = ch

    def __call__(
        self,
        cond: Array,
        stats_w: Array,
        frame: tuple[int, int, int] | None = None,
        widen_mode: str = "reflect",
    ) -> Array:
        """cond (N, 2·z_dim) → (N, R, R, 3); ``frame`` (R, H, W): (N, H, W, 3), the first block's output widened
        by ``widen_mode`` (:data:`.ops.WIDEN_MODES`) to the next grid that covers it, the excess trimmed evenly."""
        x = self.gen_z(cond).reshape(cond.shape[0], 4, 4, 16 * self.width)
        for i, layer in enumerate(self.layers):
            x = layer(x, cond, stats_w) if isinstance(layer, GenBlock) else layer(x)
            if i == 0 and frame is not None:
                x = widen(x, widened_grid(int(x.shape[1]), frame[0], frame[1:]), widen_mode)
        x = _relu(self.bn(x, stats_w))
        x = jnp.tanh(self.conv_to_rgb(x, out_channels=3))
        return x if frame is None else trim_centre(x, frame[1:])


class BigGAN(nnx.Module):
    """``BigGAN(spec)(z, c, truncation)`` → ``(N, R, R, 3)`` float32 in [−1, 1]; ``z`` ``(N, z_dim)``, ``c``
    ``(N, num_classes)`` (a class mixture: one-hot or soft weights)."""

    family = FAMILY
    has_noise = False  # no noise inputs: noise_mode does nothing
    supports_transform = False

    def __init__(self, spec: BigGANSpec):
        self.embeddings = Linear(spec.num_classes, spec.z_dim, bias=False)
        self.generator = Generator(spec)
        self.spec = spec

    @property
    def z_dim(self) -> int:
        return self.spec.z_dim

    @property
    def c_dim(self) -> int:
        return self.spec.num_classes

    @property
    def img_resolution(self) -> int:
        return self.spec.img_resolution

    def __call__(self, z: Array, c: Array, truncation: Any = 1.0) -> Array:
        return self.generate(z, c, bn_stats_weights(truncation, self.spec.n_stats))

    def generate(
        self,
        z: Array,
        c: Array,
        stats_w: Array,
        size: tuple[int, int] | None = None,
        widen_mode: str = "reflect",
    ) -> Array:
        """As ``__call__`` with the batch-norm statistics weights (:func:`bn_stats_weights`) given. Computes in the
        weights' dtype (float32; bfloat16 when the state was cast). ``size`` (H, W): (N, H, W, 3), the feature
        map widened after the first block (``widen_mode``: :data:`.ops.WIDEN_MODES`)."""
        dt = self.embeddings.weight[...].dtype
        z, c, stats_w = (jnp.asarray(a, dt) for a in (z, c, stats_w))
        cond = jnp.concatenate([z, self.embeddings(c)], axis=1)
        frame = None if size is None else (self.spec.img_resolution, *size)
        return self.generator(cond, stats_w, frame, widen_mode)

    def frame_images(
        self,
        inputs: dict[str, Array],
        settings: dict[str, Array],
        *,
        size: tuple[int, int] | None = None,
        widen_mode: str = "reflect",
        consts: Any = None,
    ) -> Array:
        """The render step's entry (see :mod:`lsd_jax.models`): ``inputs["z"]`` (B, z_dim), ``inputs["c"]``
        (B, num_classes) and ``settings["bn_stats_weights"]`` (n_stats,) from :func:`bn_stats_weights` (computed on
        the host by the style, so the package's float64 rule holds and a new truncation never recompiles). ``size``
        (H, W) in the model's pixels, or None for the native square (the step resizes either)."""
        if "bn_stats_weights" not in settings:
            raise ParamError(
                "a BigGAN step needs settings['bn_stats_weights'] (lsd_jax.styles.style.render_settings(params, "
                "style) computes it from the truncation)"
            )
        return self.generate(inputs["z"], inputs["c"], settings["bn_stats_weights"], size, widen_mode)


# --------------------------------------------------------------------------------------------------------------
# Building from converted weights, and the jitted entry point.


def abstract(config: dict) -> BigGAN:
    """The model for ``config`` with shape-only variables (``nnx.eval_shape``)."""
    spec = BigGANSpec.from_config(config)
    return nnx.eval_shape(lambda: BigGAN(spec))


def from_state(config: dict, state: dict[str, np.ndarray]) -> BigGAN:
    """The model for a converted ``(config, state)`` (:func:`converters.biggan.parse_biggan`): built abstractly,
    then filled (:func:`.ops.load_module`: every tensor checked by name and shape)."""
    try:
        return load_module(abstract(config), state, "BigGAN weights")
    except (KeyError, ValueError) as e:
        raise ConversionError(f"BigGAN weights do not match the model: {e.args[0] if e.args else e}") from None


@functools.partial(jax.jit, static_argnums=0)
def generate(graphdef: Any, state: Any, z: Array, c: Array, stats_w: Array) -> Array:
    """Jitted ``BigGAN.generate`` over ``(graphdef, state)`` from ``nnx.split`` (state: the State or its pure
    dict). ``stats_w`` from :func:`bn_stats_weights`: a new truncation is a new input, never a recompile."""
    return nnx.merge(graphdef, state).generate(z, c, stats_w)
