"""StyleGAN (v1) generator (NVlabs/stylegan ``G_style``) as a Flax NNX module, in NVIDIA's TF variable names.

::

    model = build_stylegan1(config, flat_state)            # from converters.sg1 (or converters.parse_bytes)
    graphdef, state = nnx.split(model)
    # lsd_jax.styles.generator's jitted forms drive every family through the w-space model protocol:
    ws = generator.mapping_fn(graphdef, state, z, truncation_psi=0.7, truncation_cutoff=8)  # (N, num_ws, w_dim)
    img = generator.synthesis_fn(graphdef, state, ws, noise_mode="const")                   # (N, R, R, 3) float32

**Parameter paths** (``nnx.to_flat_state`` of the split state, dotted) are NVIDIA's TF variable names with the
component key as prefix (see :mod:`converters.sg1`): ``mapping.Dense0.weight``, ``synthesis.noise3``,
``synthesis.4x4.Const.const``, ``synthesis.4x4.Const.StyleMod.weight``, ``synthesis.8x8.Conv0_up.Noise.weight``,
``synthesis.ToRGB_lod0.bias``, ``dlatent_avg``. Values keep TF's layouts (dense ``[in, out]``, conv HWIO, const
``[1, C, 4, 4]``, noise ``[1, 1, r, r]``) and are unscaled: the equalized-learning-rate coefficients (``gain/√fan_in
· lrmul`` with ``use_wscale``, else ``lrmul``) are static attributes applied in the forward pass. Trainable TF
variables are :class:`nnx.Param`; the stored noise inputs and ``dlatent_avg`` are :class:`Buffer`.

**Maths** (``training/networks_stylegan.py``): mapping = pixel-norm(z) → ``Dense{i}`` (gain √2, lrmul 0.01) →
leaky ReLU 0.2 (no output gain) → broadcast to ``num_ws``; truncation ``w = avg + (w − avg)·ψ`` on the layers
``< cutoff`` (ψ = 1 leaves w untouched); synthesis from the learned constant, every layer ending in the epilogue
noise → bias → activation → [pixel norm] → instance norm → ``StyleMod`` (``x·(s₀ + 1) + s₁``); up-sampling layers are
nearest ×2 then 3×3 conv, or at ≥ 128 px ("fused") a stride-2 transposed conv with the kernel padded and summed —
both computed here as one polyphase convolution — then ``blur2d`` ([1, 2, 1]); the image is ``ToRGB_lod0`` (lod 0).
Activations are NHWC; the output is NHWC float32 in NVIDIA's scale (about [-1, 1]).

Render settings are traced call arguments: ``truncation_psi`` (float), ``truncation_cutoff`` (int; None = all
layers), ``noise_gain``; ``noise_mode`` ("const", "random", "none") is static here, or a traced index into
:data:`NOISE_MODES` through the w-space model protocol (:meth:`StyleGAN1.synthesize`, what the render step uses).

The module follows :mod:`lsd_jax.models`' protocol (``family``, ``spec``, ``has_noise``, ``map_latents``,
``synthesize``, ``constants``; :func:`abstract` and :func:`from_state`), so :func:`lsd_jax.load_generator` and the
render step drive it like StyleGAN2. Lucid Sonic Dreams ran these networks with ``mapping.run`` (no truncation)
and ``synthesis.run(randomize_noise=False)``: the defaults here (ψ = 1, the stored noise) are the same.
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

from converters import sg1 as sg1_conv

from ..errors import ConversionError, from_converter
from .ops import Buffer, unit_noise

Array = jax.Array
NOISE_MODES = ("const", "random", "none")  # the same names and order as StyleGAN2's (a traced mode is an index)
_DN = ("NHWC", "HWIO", "NHWC")
_ALL_LAYERS = np.iinfo(np.int32).max  # truncation_cutoff=None: every layer


@dataclass(frozen=True)
class SG1Spec:
    """The sizes of a StyleGAN (v1) generator (hashable: lives in the graphdef)."""

    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    c_dim: int = 0
    kind: str = "G_style"


def _zeros(*shape: int) -> Array:
    return jnp.zeros(shape, jnp.float32)


def runtime_coef(fan_in: int, gain: float, use_wscale: bool, lrmul: float) -> float:
    """NVIDIA ``get_weight``'s runtime multiplier: ``gain/√fan_in · lrmul`` (equalized lr) or ``lrmul``."""
    return float(gain / math.sqrt(fan_in) * lrmul) if use_wscale else float(lrmul)


def _act(x: Array, kind: str) -> Array:
    return jnp.maximum(x, 0.2 * x) if kind == "lrelu" else jnp.maximum(x, 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Small ops (NHWC). Resampling uses shifted slices and one dense convolution, never a grouped conv (slow on CPU).


def pixel_norm(x: Array, axis: int = -1) -> Array:
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + 1e-8)


def instance_norm(x: Array) -> Array:
    """(N, H, W, C): per sample and channel, zero mean and unit mean square over H, W (ε 1e-8)."""
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + 1e-8)


def blur2d(x: Array, taps: tuple[float, ...]) -> Array:
    """NVIDIA ``blur2d`` (normalised ``outer(f, f)``, 'SAME' zero padding, correlation) on NHWC, separably."""
    f = np.asarray(taps, np.float64)
    f = f / f.sum()
    lo = (len(f) - 1) // 2
    hi = len(f) - 1 - lo
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (lo, hi)
        xp = jnp.pad(x, pad)
        n = x.shape[axis]
        x = sum(lax.slice_in_dim(xp, k, k + n, axis=axis) * float(fk) for k, fk in enumerate(f))
    return x


def up_conv(x: Array, w: Array, fused: bool) -> Array:
    """2× up-sampling 3×3 convolution, NHWC in, NHWC out (2H, 2W).

    ``fused=False``: nearest-neighbour ×2 then a 'SAME' 3×3 correlation with ``w``. ``fused=True``: NVIDIA's
    ``upscale2d_conv2d``: ``w`` padded by one and summed over its four shifts into a 4×4 kernel ``w4``, applied by
    ``conv2d_transpose`` (stride 2, 'SAME'): ``out[2i+k−1] += x[i]·w4[k]`` per axis. The first equals the second
    with ``w`` spatially flipped, so both run as the same polyphase form: output phase r ∈ {0, 1} of row 2m+r is
    ``Σ_a xp[m+r+a]·w4[3−2a−r]`` (xp = x zero-padded by one), i.e. ONE 2×2 convolution at the input resolution
    with the four phases stacked on the output channels (4/9 of the multiply-adds of nearest + 3×3).
    """
    if not fused:
        w = w[::-1, ::-1]
    wp = jnp.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    w4 = wp[1:, 1:] + wp[:-1, 1:] + wp[1:, :-1] + wp[:-1, :-1]  # (4, 4, I, O)
    n, h, wd, _ = x.shape
    co = w.shape[3]
    rows = []
    for a in (0, 1):
        cols = []
        for b in (0, 1):
            cols.append(jnp.stack([jnp.stack([w4[3 - 2 * a - r, 3 - 2 * b - s] for s in (0, 1)], axis=1)
                                   for r in (0, 1)], axis=1))  # (I, 2[r], 2[s], O)
        rows.append(jnp.stack(cols))
    kernel = jnp.stack(rows).reshape(2, 2, w.shape[2], 4 * co)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = lax.conv_general_dilated(xp, kernel, (1, 1), "VALID", dimension_numbers=_DN)  # (N, H+1, W+1, 4·O)
    y = y.reshape(n, h + 1, wd + 1, 2, 2, co)
    out = jnp.stack([jnp.stack([y[:, r:r + h, s:s + wd, r, s] for s in (0, 1)], axis=3) for r in (0, 1)], axis=2)
    return out.reshape(n, 2 * h, 2 * wd, co)  # (N, H, 2[r], W, 2[s], O) → rows 2m+r, columns 2n+s


def conv_same(x: Array, w: Array) -> Array:
    k = w.shape[0]
    return lax.conv_general_dilated(x, w, (1, 1), ((k // 2, k // 2), (k // 2, k // 2)), dimension_numbers=_DN)


# ---------------------------------------------------------------------------------------------------------------
# Modules.


class Dense(nnx.Module):
    """TF ``dense`` + ``apply_bias``: ``x @ (weight·coef) + bias·lrmul``; ``weight`` is ``[in, out]``."""

    def __init__(self, fan_in: int, fan_out: int, *, gain: float, use_wscale: bool, lrmul: float = 1.0):
        self.weight = nnx.Param(_zeros(fan_in, fan_out))
        self.bias = nnx.Param(_zeros(fan_out))
        self.weight_coef = runtime_coef(fan_in, gain, use_wscale, lrmul)
        self.bias_coef = float(lrmul)

    def __call__(self, x: Array) -> Array:
        return x @ (self.weight[...] * self.weight_coef) + self.bias[...] * self.bias_coef


class Noise(nnx.Module):
    """``apply_noise``'s per-channel strength ``weight [C]``."""

    def __init__(self, channels: int):
        self.weight = nnx.Param(_zeros(channels))


class Scope(nnx.Module):
    """A TF variable scope with no variables of its own (``4x4``, ``64x64``): named children only."""

    def __init__(self, **children: nnx.Module):
        for name, child in children.items():
            setattr(self, name, child)


class Layer(nnx.Module):
    """One synthesis layer in scope ``Const``, ``Conv``, ``Conv0_up`` or ``Conv1``: its input (the constant, or a
    3×3 conv [with 2× up-sampling and blur]) then ``layer_epilogue`` (noise, bias, activation, norms, StyleMod)."""

    def __init__(self, kind: str, cin: int, cout: int, w_dim: int, sk: dict, fused: bool = False):
        self.kind = kind  # "const" | "conv" | "up"
        if kind == "const":
            self.const = nnx.Param(_zeros(1, cout, 4, 4))
        else:
            self.weight = nnx.Param(_zeros(3, 3, cin, cout))
            self.weight_coef = runtime_coef(9 * cin, math.sqrt(2.0), sk["use_wscale"], 1.0)
        if sk["use_noise"]:
            self.Noise = Noise(cout)
        self.bias = nnx.Param(_zeros(cout))
        self.StyleMod = Dense(w_dim, 2 * cout, gain=1.0, use_wscale=sk["use_wscale"])
        self.fused = bool(fused)
        self.blur_taps = tuple(float(t) for t in sk["blur_filter"]) if sk["blur_filter"] else None
        self.activation = sk["activation"]
        self.use_pixel_norm = bool(sk["use_pixel_norm"])
        self.use_instance_norm = bool(sk["use_instance_norm"])

    def __call__(self, x: Array | None, w: Array, noise: Array | None, n: int) -> Array:
        """x (N, h, w, I) (None for the constant), w (N, w_dim), noise (N or 1, H, W, 1) unit noise or None."""
        if self.kind == "const":
            c = self.const[...]
            x = jnp.broadcast_to(jnp.transpose(c[0], (1, 2, 0))[None], (n, 4, 4, c.shape[1]))
        elif self.kind == "up":
            x = up_conv(x, self.weight[...] * self.weight_coef, self.fused)
            if self.blur_taps is not None:
                x = blur2d(x, self.blur_taps)
        else:
            x = conv_same(x, self.weight[...] * self.weight_coef)
        if noise is not None and hasattr(self, "Noise"):
            x = x + noise * self.Noise.weight[...]
        x = _act(x + self.bias[...], self.activation)
        if self.use_pixel_norm:
            x = pixel_norm(x)
        if self.use_instance_norm:
            x = instance_norm(x)
        style = self.StyleMod(w)  # (N, 2C): scale − 1, then bias
        c = x.shape[-1]
        return x * (style[:, None, None, :c] + 1.0) + style[:, None, None, c:]


class ToRGB(nnx.Module):
    """``ToRGB_lod0``: 1×1 conv (gain 1) + bias, linear."""

    def __init__(self, cin: int, channels: int, use_wscale: bool):
        self.weight = nnx.Param(_zeros(1, 1, cin, channels))
        self.bias = nnx.Param(_zeros(channels))
        self.weight_coef = runtime_coef(cin, 1.0, use_wscale, 1.0)

    def __call__(self, x: Array) -> Array:
        return jnp.einsum("nhwi,io->nhwo", x, self.weight[...][0, 0] * self.weight_coef) + self.bias[...]


class Mapping(nnx.Module):
    """``G_mapping``: z (N, z_dim) → w broadcast to (N, num_ws, w_dim)."""

    def __init__(self, config: dict):
        mk = config["mapping_kwargs"]
        n = mk["num_layers"]
        features = [config["z_dim"]] + [mk["layer_features"]] * (n - 1) + [config["w_dim"]] * (n > 0)
        for i in range(n):
            setattr(self, f"Dense{i}", Dense(features[i], features[i + 1], gain=math.sqrt(2.0),
                                             use_wscale=mk["use_wscale"], lrmul=mk["lr_multiplier"]))
        self.num_layers = n
        self.activation = mk["activation"]
        self.normalize_latents = bool(mk["normalize_latents"])
        self.z_dim, self.num_ws = config["z_dim"], config["num_ws"]

    def __call__(self, z: Array) -> Array:
        x = jnp.asarray(z, jnp.float32)
        if x.ndim != 2 or x.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {x.shape}")
        if self.normalize_latents:
            x = pixel_norm(x)
        for i in range(self.num_layers):
            x = _act(getattr(self, f"Dense{i}")(x), self.activation)
        return jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, x.shape[1]))


class Synthesis(nnx.Module):
    """``G_synthesis`` at lod 0: ws (N, num_ws, w_dim) → images (N, R, R, channels)."""

    def __init__(self, config: dict):
        sk = config["synthesis_kwargs"]
        res_log2 = int(math.log2(config["img_resolution"]))
        self.num_ws, self.w_dim = config["num_ws"], config["w_dim"]
        self.use_noise = bool(sk["use_noise"])
        if self.use_noise:
            for i in range(self.num_ws):
                r = 2 ** (i // 2 + 2)
                setattr(self, f"noise{i}", Buffer(_zeros(1, 1, r, r)))
        w, c = config["w_dim"], sg1_conv.nf(config, 1)
        setattr(self, "4x4", Scope(Const=Layer("const", c, c, w, sk), Conv=Layer("conv", c, c, w, sk)))
        for lg in range(3, res_log2 + 1):
            r = 2 ** lg
            cin, cout = sg1_conv.nf(config, lg - 2), sg1_conv.nf(config, lg - 1)
            setattr(self, f"{r}x{r}", Scope(Conv0_up=Layer("up", cin, cout, w, sk, sg1_conv.fused_up(config, r)),
                                            Conv1=Layer("conv", cout, cout, w, sk)))
        self.block_names = tuple(f"{2 ** lg}x{2 ** lg}" for lg in range(2, res_log2 + 1))
        self.ToRGB_lod0 = ToRGB(sg1_conv.nf(config, res_log2 - 1), config["img_channels"], sk["use_wscale"])

    def noise_shapes(self) -> list[int]:
        return [2 ** (i // 2 + 2) for i in range(self.num_ws)]

    def _noises(self, noise_mode: Any, key: Array | None, noise_gain: Array | None, n: int,
                dtype: Any) -> list[Array | None]:
        """Each layer's unit noise (N or 1, r, r, 1) times ``noise_gain``, or None (no noise)."""
        if not self.use_noise:
            return [None] * self.num_ws
        static = isinstance(noise_mode, str)
        if static and noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if static and noise_mode == "none":
            return [None] * self.num_ws
        stored = [jnp.transpose(getattr(self, f"noise{i}")[...], (0, 2, 3, 1)) for i in range(self.num_ws)]
        if static and noise_mode == "const":
            noises = stored
        elif static:  # random
            if key is None:
                raise ValueError('noise_mode="random" needs a PRNG key')
            noises = unit_noise(key, self.noise_shapes(), n)
        else:  # a traced index: 0 const, 1 random, 2 none (the random draw only runs when selected)
            if key is None:
                raise ValueError("a traced noise_mode needs a PRNG key (used when it selects random noise)")
            mode = jnp.asarray(noise_mode, jnp.int32)
            unit = lax.cond(mode == 1, lambda k: unit_noise(k, self.noise_shapes(), n),
                            lambda k: [jnp.zeros((n, r, r, 1), jnp.float32) for r in self.noise_shapes()], key)
            noises = [jnp.where(mode == 0, c, u) * (mode != 2).astype(jnp.float32) for c, u in zip(stored, unit,
                                                                                                   strict=True)]
        if noise_gain is not None:
            g = jnp.asarray(noise_gain, jnp.float32)
            if g.ndim > 1 or (g.ndim == 1 and g.shape[0] not in (1, n)):
                raise ValueError(f"noise_gain must be a scalar or have shape ({n},), got {g.shape}")
            g = jnp.broadcast_to(g.reshape(-1), (n,))[:, None, None, None]
            noises = [z * g for z in noises]
        return [z.astype(dtype) for z in noises]

    def __call__(self, ws: Array, noise_mode: Any = "const", key: Array | None = None,
                 noise_gain: Array | None = None) -> Array:
        dtype = self.ToRGB_lod0.bias.dtype  # float32; bfloat16 when the state is (compute_dtype)
        ws = jnp.asarray(ws, dtype)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {ws.shape}")
        n = ws.shape[0]
        noises = self._noises(noise_mode, key, noise_gain, n, dtype)
        x = None
        idx = 0
        for name in self.block_names:
            scope = getattr(self, name)
            for layer in (("Const", "Conv") if name == "4x4" else ("Conv0_up", "Conv1")):
                x = getattr(scope, layer)(x, ws[:, idx], noises[idx], n)
                idx += 1
        return self.ToRGB_lod0(x)


class StyleGAN1(nnx.Module):
    """``G_style`` (Gs) at inference: ``mapping`` (G_mapping), ``synthesis`` (G_synthesis) and ``dlatent_avg``."""

    family = "stylegan1"
    supports_transform = False

    def __init__(self, config: dict):
        self.mapping = Mapping(config)
        self.synthesis = Synthesis(config)
        self.dlatent_avg = Buffer(_zeros(config["w_dim"]))
        self.spec = SG1Spec(z_dim=config["z_dim"], w_dim=config["w_dim"], num_ws=config["num_ws"],
                            img_resolution=config["img_resolution"], img_channels=config["img_channels"])
        self.z_dim, self.c_dim, self.w_dim = config["z_dim"], 0, config["w_dim"]
        self.num_ws, self.img_resolution, self.img_channels = (config["num_ws"], config["img_resolution"],
                                                               config["img_channels"])
        self.has_noise = self.synthesis.use_noise

    def constants(self) -> dict[str, Any]:
        """No weight-only subexpression is worth precomputing (the gains are scalar multiplies)."""
        return {}

    # the w-space model protocol (lsd_jax.styles.program.StyleGANProgram drives it; see lsd_jax.models)
    def map_latents(self, z: Array, c: Array | None, truncation_psi: Any = 1.0,
                    truncation_cutoff: Any = None) -> Array:
        return self.map(z, c, truncation_psi, truncation_cutoff)

    def synthesize(self, ws: Array, *, noise_mode: Any = "const", key: Array | None = None,
                   noise_gain: Array | None = None, transform: Array | None = None,
                   consts: dict[str, Any] | None = None) -> Array:
        if transform is not None:
            raise ValueError("transform is only supported by StyleGAN3 generators")
        return self.synthesis(ws, noise_mode, key, noise_gain)

    def truncate(self, ws: Array, truncation_psi: Any = 1.0, truncation_cutoff: Any = None) -> Array:
        """``G_style``'s truncation: ``avg + (w − avg)·ψ`` on layers ``< cutoff``; ψ == 1 (or cutoff ≤ 0) leaves
        ws exactly as they are. ψ: scalar or (N,); cutoff: scalar int, None = every layer (NVIDIA's None
        disables truncation instead: pass ψ = 1 for that)."""
        psi = jnp.asarray(truncation_psi, jnp.float32)
        psi = psi.reshape(-1, 1, 1) if psi.ndim == 1 else psi
        cutoff = jnp.asarray(_ALL_LAYERS if truncation_cutoff is None else truncation_cutoff, jnp.int32)
        layer = jnp.arange(self.num_ws, dtype=jnp.int32)[None, :, None]
        avg = self.dlatent_avg[...].astype(ws.dtype)
        return jnp.where((layer < cutoff) & (psi != 1), avg + (ws - avg) * psi.astype(ws.dtype), ws)

    def map(self, z: Array, c: Array | None = None, truncation_psi: Any = 1.0, truncation_cutoff: Any = None) -> Array:
        """z (N, z_dim) → ws (N, num_ws, w_dim), truncated. ``c`` must be None (or empty): StyleGAN 1 styles
        here are unconditional."""
        if c is not None and np.size(c) and jnp.asarray(c).shape[-1] != 0:
            raise ValueError("this StyleGAN (v1) generator is unconditional: pass c=None")
        return self.truncate(self.mapping(z), truncation_psi, truncation_cutoff)

    def __call__(self, z: Array, c: Array | None = None, truncation_psi: Any = 1.0, truncation_cutoff: Any = None,
                 noise_mode: str = "const", key: Array | None = None, noise_gain: Array | None = None) -> Array:
        return self.synthesis(self.map(z, c, truncation_psi, truncation_cutoff), noise_mode, key, noise_gain)


# ---------------------------------------------------------------------------------------------------------------
# Building from (config, flat state), and the jitted entry points.


def abstract(config: dict) -> StyleGAN1:
    """The module for ``config`` with abstract (shape-only) variables (the :mod:`lsd_jax.models` protocol)."""
    return abstract_model(config)


def from_state(config: dict, flat_state: dict[str, Any]) -> StyleGAN1:
    """The module for ``config`` filled from ``flat_state`` (the :mod:`lsd_jax.models` protocol)."""
    return build_stylegan1(config, flat_state)


def abstract_model(config: dict) -> StyleGAN1:
    """The module tree for ``config`` without allocating weights (``nnx.eval_shape``)."""
    with from_converter():
        config = sg1_conv.finish_config(config)
    return nnx.eval_shape(lambda: StyleGAN1(config))


def flat_shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    """Dotted path → shape of every variable of ``model`` (abstract or concrete)."""
    return {".".join(str(p) for p in path): tuple(v.shape) for path, v in nnx.to_flat_state(nnx.state(model))}


def build_stylegan1(config: dict, flat_state: dict[str, Any]) -> StyleGAN1:
    """The module for ``config`` filled from ``flat_state`` ({dotted TF name: array}, e.g. from
    :func:`converters.sg1.convert`). Every name and shape is checked: a missing, unexpected or misshapen tensor
    raises :class:`~lsd_jax.errors.ConversionError` naming it."""
    model = abstract_model(config)
    graphdef, abstract = nnx.split(model)
    expected = flat_shapes(model)
    for key in flat_state:
        if key not in expected:
            raise ConversionError(f"unexpected tensor {key!r}: a StyleGAN (v1) generator with this config has none")
    pure: dict[str, Any] = {}
    for key, shape in expected.items():
        if key not in flat_state:
            raise ConversionError(f"missing tensor {key!r} (shape {shape}) for this StyleGAN (v1) generator")
        value = np.asarray(flat_state[key])
        if tuple(value.shape) != shape or value.dtype.kind != "f":
            raise ConversionError(f"tensor {key!r} has shape {tuple(value.shape)} ({value.dtype}); this StyleGAN "
                                  f"(v1) generator needs {shape} floats")
        node = pure
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = jnp.asarray(value, jnp.float32)
    nnx.replace_by_pure_dict(abstract, pure)
    return nnx.merge(graphdef, abstract)
