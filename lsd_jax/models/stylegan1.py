"""StyleGAN (v1) generator (NVlabs/stylegan ``G_style``) as a Flax NNX module, in NVIDIA's TF variable names.

::

    model = from_state(config, flat_state)                 # from converters.sg1 (or converters.parse_bytes)
    graphdef, state = nnx.split(model)
    # lsd_jax.styles.generator's jitted forms drive every family through the w-space model protocol:
    ws = generator.mapping_fn(graphdef, state, z, truncation_psi=0.7, truncation_cutoff=8)  # (N, num_ws, w_dim)
    img = generator.synthesis_fn(graphdef, state, ws, noise_mode="const")                   # (N, R, R, 3) float32

**Parameter paths** (``nnx.to_flat_state`` of the split state, dotted) are NVIDIA's TF variable names with the
component key as prefix (see :mod:`converters.sg1`): ``mapping.Dense0.weight``, ``mapping.LabelConcat.weight``
(conditional networks), ``synthesis.noise3``, ``synthesis.4x4.Const.const``,
``synthesis.4x4.Const.StyleMod.weight``, ``synthesis.8x8.Conv0_up.Noise.weight``, ``synthesis.ToRGB_lod0.bias``,
``dlatent_avg``. Values keep TF's layouts (dense ``[in, out]``, conv HWIO, const ``[1, C, 4, 4]``, noise ``[1, 1, r,
r]``) and are unscaled: the equalized-learning-rate coefficients (``gain/√fan_in · lrmul`` with ``use_wscale``, else
``lrmul``) are static attributes applied in the forward pass. Trainable TF variables are :class:`nnx.Param`; the
stored noise inputs and ``dlatent_avg`` are :class:`Buffer`.

**Maths** (``training/networks_stylegan.py``): mapping = pixel-norm(z [‖ c @ ``LabelConcat.weight``]) → ``Dense{i}``
(gain √2, lrmul 0.01) → leaky ReLU 0.2 (no output gain) → broadcast to ``num_ws``; truncation ``w = avg + (w −
avg)·ψ`` on the layers ``< cutoff`` (ψ = 1 leaves w untouched); synthesis from the learned constant, every layer
ending in the epilogue noise → bias → activation → [pixel norm] → instance norm → ``StyleMod`` (``x·(s₀ + 1) +
s₁``); up-sampling layers are nearest ×2 then 3×3 conv, or at ≥ 128 px ("fused") a stride-2 transposed conv with the
kernel padded and summed — both computed here as one polyphase convolution — then ``blur2d`` ([1, 2, 1]); the image
is ``ToRGB_lod0`` (lod 0). Activations are NHWC; the output is NHWC float32 in NVIDIA's scale (about [-1, 1]).

Render settings are traced call arguments: ``truncation_psi`` (float), ``truncation_cutoff`` (int; None = all
layers), ``noise_gain``; ``noise_mode`` ("const", "random", "none") is static here, or a traced index into
:data:`NOISE_MODES` through the w-space model protocol (:meth:`StyleGAN1.synthesize`, what the render step uses).

The module follows :mod:`lsd_jax.models`' protocol (``family``, ``spec``, ``has_noise``, ``map_latents``,
``synthesize``, ``constants``; :func:`abstract` and :func:`from_state`), so :func:`lsd_jax.load_generator` and the
render step drive it like StyleGAN2; a conditional network (``label_size`` > 0: ``c_dim``) takes class vectors
``c`` (N, c_dim) as StyleGAN2's conditional networks do. Lucid Sonic Dreams ran these networks with ``mapping.run``
(no truncation) and ``synthesis.run(randomize_noise=False)``: the defaults here (ψ = 1, the stored noise) are the same.
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

from ..errors import ConversionError
from .ops import (
    DN,
    Buffer,
    conv_same,
    load_module,
    map_shape,
    noise_inputs,
    normalize_2nd_moment,
    trim_centre,
    truncation_args,
    widen,
    widening_plan,
    zeros,
)
from .ops import NOISE_MODES as NOISE_MODES  # re-exported: the modes' names and their traced indices

Array = jax.Array


@dataclass(frozen=True)
class SG1Spec:
    """The sizes of a StyleGAN (v1) generator (hashable: lives in the graphdef). ``channels[s]`` is NVIDIA's
    ``nf(s)`` for stages ``s`` = 1 … log2(R) − 1 (index 0 unused); ``fused`` the up-sampling layers (into 8 px …
    R px) that use the fused transposed convolution."""

    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    c_dim: int = 0
    channels: tuple[int, ...] = ()
    fused: tuple[bool, ...] = ()
    kind: str = "G_style"


def spec_from_config(config: dict | SG1Spec) -> SG1Spec:
    """The :class:`SG1Spec` of a (converted) StyleGAN (v1) config (see :mod:`converters.sg1`); ``ValueError`` when it
    is not one. The network side of the config: ``nf(stage) = min(int(fmap_base / 2^(stage·fmap_decay)),
    fmap_max)`` feature maps at resolution 2^(stage+1), and ``fused_scale`` ('auto': from 128 px on, NVIDIA's
    ``upscale2d_conv2d`` when ``min(input size)·2 >= 128``)."""
    if isinstance(config, SG1Spec):
        return config
    try:
        if config.get("family") != "stylegan1":
            raise ValueError(f"not a StyleGAN (v1) config (family={config.get('family')!r})")
        sk = config["synthesis_kwargs"]
        res = int(config["img_resolution"])
        if res < 4 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")
        log2 = int(math.log2(res))
        channels = tuple(
            min(int(sk["fmap_base"] / (2.0 ** (s * sk["fmap_decay"]))), int(sk["fmap_max"])) for s in range(log2)
        )
        fused = tuple(
            r >= 128 if sk["fused_scale"] == "auto" else bool(sk["fused_scale"])
            for r in (2**lg for lg in range(3, log2 + 1))
        )
        spec = SG1Spec(
            z_dim=int(config["z_dim"]),
            w_dim=int(config["w_dim"]),
            num_ws=int(config["num_ws"]),
            img_resolution=res,
            img_channels=int(config["img_channels"]),
            c_dim=int(config["c_dim"]),
            channels=channels,
            fused=fused,
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"malformed StyleGAN (v1) config ({type(e).__name__}: {e})") from None
    if spec.num_ws != 2 * log2 - 2:
        raise ValueError(f"num_ws={spec.num_ws} does not match resolution {res}")
    if min(channels[1:]) < 1 or spec.z_dim < 1 or spec.w_dim < 1 or spec.c_dim < 0:
        raise ValueError("a StyleGAN (v1) config needs positive sizes (z_dim, w_dim, feature maps)")
    return spec


def runtime_coef(fan_in: int, gain: float, use_wscale: bool, lrmul: float) -> float:
    """NVIDIA ``get_weight``'s runtime multiplier: ``gain/√fan_in · lrmul`` (equalized lr) or ``lrmul``."""
    return float(gain / math.sqrt(fan_in) * lrmul) if use_wscale else float(lrmul)


def _act(x: Array, kind: str) -> Array:
    return jnp.maximum(x, 0.2 * x) if kind == "lrelu" else jnp.maximum(x, 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Small ops (NHWC). Resampling uses shifted slices and one dense convolution, never a grouped conv (slow on CPU).


def pixel_norm(x: Array) -> Array:
    """NVIDIA ``pixel_norm`` over the channels (the last axis here)."""
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-8)


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


def upscale2d_conv2d(x: Array, w: Array, fused: bool) -> Array:
    """2× up-sampling 3×3 convolution, NHWC (N, H, W, I) → (N, 2H, 2W, O), ``w`` HWIO.

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
            cols.append(
                jnp.stack(
                    [jnp.stack([w4[3 - 2 * a - r, 3 - 2 * b - s] for s in (0, 1)], axis=1) for r in (0, 1)], axis=1
                )
            )  # (I, 2[r], 2[s], O)
        rows.append(jnp.stack(cols))
    kernel = jnp.stack(rows).reshape(2, 2, w.shape[2], 4 * co)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = lax.conv_general_dilated(xp, kernel, (1, 1), "VALID", dimension_numbers=DN)  # (N, H+1, W+1, 4·O)
    y = y.reshape(n, h + 1, wd + 1, 2, 2, co)
    out = jnp.stack([jnp.stack([y[:, r : r + h, s : s + wd, r, s] for s in (0, 1)], axis=3) for r in (0, 1)], axis=2)
    return out.reshape(n, 2 * h, 2 * wd, co)  # (N, H, 2[r], W, 2[s], O) → rows 2m+r, columns 2n+s


# ---------------------------------------------------------------------------------------------------------------
# Modules.


class Dense(nnx.Module):
    """TF ``dense`` + ``apply_bias``: ``x @ (weight·coef) + bias·lrmul``; ``weight`` is ``[in, out]``."""

    def __init__(self, fan_in: int, fan_out: int, *, gain: float, use_wscale: bool, lrmul: float = 1.0):
        self.weight = nnx.Param(zeros(fan_in, fan_out))
        self.bias = nnx.Param(zeros(fan_out))
        self.weight_coef = runtime_coef(fan_in, gain, use_wscale, lrmul)
        self.bias_coef = float(lrmul)

    def __call__(self, x: Array) -> Array:
        return x @ (self.weight[...] * self.weight_coef) + self.bias[...] * self.bias_coef


class LabelConcat(nnx.Module):
    """``G_mapping``'s label embedding (``label_size`` > 0): ``weight [label_size, latent_size]`` (plain
    ``random_normal`` init: no equalized-lr gain, no bias); labels (N, c_dim) → (N, z_dim) = ``labels @ weight``."""

    def __init__(self, c_dim: int, z_dim: int):
        self.weight = nnx.Param(zeros(c_dim, z_dim))

    def __call__(self, c: Array) -> Array:
        return c @ self.weight[...]


class Noise(nnx.Module):
    """``apply_noise``'s per-channel strength ``weight [C]``."""

    def __init__(self, channels: int):
        self.weight = nnx.Param(zeros(channels))


class Layer(nnx.Module):
    """One synthesis layer in scope ``Const``, ``Conv``, ``Conv0_up`` or ``Conv1``: its input (the constant, or a
    3×3 conv [with 2× up-sampling and blur]) then ``layer_epilogue`` (noise, bias, activation, norms, StyleMod)."""

    def __init__(self, kind: str, cin: int, cout: int, w_dim: int, sk: dict, fused: bool = False):
        self.kind = kind  # "const" | "conv" | "up"
        if kind == "const":
            self.const = nnx.Param(zeros(1, cout, 4, 4))
        else:
            self.weight = nnx.Param(zeros(3, 3, cin, cout))
            self.weight_coef = runtime_coef(9 * cin, math.sqrt(2.0), sk["use_wscale"], 1.0)
        if sk["use_noise"]:
            self.Noise = Noise(cout)
        self.bias = nnx.Param(zeros(cout))
        self.StyleMod = Dense(w_dim, 2 * cout, gain=1.0, use_wscale=sk["use_wscale"])
        self.fused = bool(fused)
        self.blur_taps = tuple(float(t) for t in sk["blur_filter"]) if sk["blur_filter"] else None
        self.activation = sk["activation"]
        self.use_pixel_norm = bool(sk["use_pixel_norm"])
        self.use_instance_norm = bool(sk["use_instance_norm"])

    def __call__(
        self,
        x: Array | None,
        w: Array,
        noise: Array | None,
        grid: tuple[int, int] = (4, 4),
        widen_mode: str = "reflect",
    ) -> Array:
        """x (N, h, w, I) (None for the constant), w (N, w_dim), noise (N or 1, H, W, 1) unit noise or None
        → (N, H, W, O). The constant is widened to ``grid`` by ``widen_mode`` (:data:`.ops.WIDEN_MODES`)."""
        if self.kind == "const":
            c = widen(jnp.transpose(self.const[...], (0, 2, 3, 1)), grid, widen_mode)
            x = jnp.broadcast_to(c, (w.shape[0],) + c.shape[1:])
        elif self.kind == "up":
            x = upscale2d_conv2d(x, self.weight[...] * self.weight_coef, self.fused)
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


class Block(nnx.Module):
    """A resolution's scope (``4x4``: ``Const``, ``Conv``; ``{R}x{R}``: ``Conv0_up``, ``Conv1``): its two layers."""

    def __init__(self, **layers: Layer):
        self.layer_names = tuple(layers)
        for name, layer in layers.items():
            setattr(self, name, layer)

    def __call__(self, x: Array | None, ws: Array, noises: list[Array | None], **widening: Any) -> Array:
        """x (N, R/2, R/2, I) (None at 4×4), ws (N, 2, w_dim) this block's two ws, noises one per layer →
        (N, R, R, O); ``widening``: ``grid`` and ``widen_mode`` for the constant (see :meth:`Layer.__call__`)."""
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i], noises[i], **(widening if name == "Const" else {}))
        return x


class ToRGB(nnx.Module):
    """``ToRGB_lod0``: 1×1 conv (gain 1) + bias, linear."""

    def __init__(self, cin: int, channels: int, use_wscale: bool):
        self.weight = nnx.Param(zeros(1, 1, cin, channels))
        self.bias = nnx.Param(zeros(channels))
        self.weight_coef = runtime_coef(cin, 1.0, use_wscale, 1.0)

    def __call__(self, x: Array) -> Array:
        return jnp.einsum("nhwi,io->nhwo", x, self.weight[...][0, 0] * self.weight_coef) + self.bias[...]


class Mapping(nnx.Module):
    """``G_mapping``: z (N, z_dim) [and labels c (N, c_dim)] → w broadcast to (N, num_ws, w_dim)."""

    def __init__(self, config: dict, spec: SG1Spec):
        mk = config["mapping_kwargs"]
        n = mk["num_layers"]
        if spec.c_dim > 0:
            self.LabelConcat = LabelConcat(spec.c_dim, spec.z_dim)
        fan_in = spec.z_dim * (2 if spec.c_dim > 0 else 1)  # z ‖ its label embedding
        features = [fan_in] + [mk["layer_features"]] * (n - 1) + [spec.w_dim] * (n > 0)
        for i in range(n):
            setattr(
                self,
                f"Dense{i}",
                Dense(
                    features[i],
                    features[i + 1],
                    gain=math.sqrt(2.0),
                    use_wscale=mk["use_wscale"],
                    lrmul=mk["lr_multiplier"],
                ),
            )
        self.num_layers = n
        self.activation = mk["activation"]
        self.normalize_latents = bool(mk["normalize_latents"])
        self.z_dim, self.c_dim, self.num_ws = spec.z_dim, spec.c_dim, spec.num_ws

    def __call__(self, z: Array, c: Array | None = None) -> Array:
        x = jnp.asarray(z, jnp.float32)
        if x.ndim != 2 or x.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {x.shape}")
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this StyleGAN (v1) generator is conditional: pass c with shape (N, {self.c_dim})")
            c = jnp.asarray(c, jnp.float32)
            if c.shape != (x.shape[0], self.c_dim):
                raise ValueError(f"c must have shape ({x.shape[0]}, {self.c_dim}), got {c.shape}")
            x = jnp.concatenate([x, self.LabelConcat(c)], axis=1)
        if self.normalize_latents:
            x = normalize_2nd_moment(x)
        for i in range(self.num_layers):
            x = _act(getattr(self, f"Dense{i}")(x), self.activation)
        return jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, x.shape[1]))


class Synthesis(nnx.Module):
    """``G_synthesis`` at lod 0: ws (N, num_ws, w_dim) → images (N, R, R, channels)."""

    def __init__(self, config: dict, spec: SG1Spec):
        sk = config["synthesis_kwargs"]
        res_log2 = int(math.log2(spec.img_resolution))
        self.num_ws, self.w_dim = spec.num_ws, spec.w_dim
        self.use_noise = bool(sk["use_noise"])
        if self.use_noise:
            for i, r in enumerate(self.noise_shapes()):
                setattr(self, f"noise{i}", Buffer(zeros(1, 1, r, r)))
        w, c, nf = spec.w_dim, spec.channels[1], spec.channels
        setattr(self, "4x4", Block(Const=Layer("const", c, c, w, sk), Conv=Layer("conv", c, c, w, sk)))
        for lg in range(3, res_log2 + 1):
            r = 2**lg
            cin, cout = nf[lg - 2], nf[lg - 1]
            setattr(
                self,
                f"{r}x{r}",
                Block(
                    Conv0_up=Layer("up", cin, cout, w, sk, spec.fused[lg - 3]), Conv1=Layer("conv", cout, cout, w, sk)
                ),
            )
        self.block_names = tuple(f"{2**lg}x{2**lg}" for lg in range(2, res_log2 + 1))
        self.ToRGB_lod0 = ToRGB(nf[res_log2 - 1], spec.img_channels, sk["use_wscale"])

    def noise_shapes(self) -> list[int]:
        return [2 ** (i // 2 + 2) for i in range(self.num_ws)]

    def _noises(
        self,
        noise_mode: Any,
        key: Array | None,
        noise_gain: Array | None,
        n: int,
        grid: tuple[int, int] = (4, 4),
        mode: str = "reflect",
        layer: int = 4,
    ) -> list[Array | None]:
        """Each layer's unit noise (N or 1, r, r, 1) times ``noise_gain``, or None (no noise); on a ``grid``
        wider than the map widened at block ``layer`` (:func:`.ops.widening_plan`) the stored noise of that block
        on is widened like the map (random noise drawn at the wider shape)."""
        if not self.use_noise:
            return [None] * self.num_ws
        stored = []
        base = 4 if layer == 4 else layer // 2
        for i, r in enumerate(self.noise_shapes()):
            noise = jnp.transpose(getattr(self, f"noise{i}")[...], (0, 2, 3, 1))
            stored.append(widen(noise, map_shape(r, layer, base, grid), mode))
        return noise_inputs(noise_mode, key, noise_gain, stored, n)

    def __call__(
        self,
        ws: Array,
        noise_mode: Any = "const",
        key: Array | None = None,
        noise_gain: Array | None = None,
        size: tuple[int, int] | None = None,
        widen_mode: str = "reflect",
        frame_layer: int = 4,
    ) -> Array:
        """ws (N, num_ws, w_dim) → images (N, R, R, C); ``size`` (H, W): (N, H, W, C), the 4×4 constant widened
        by ``widen_mode`` (:data:`.ops.WIDEN_MODES`) to the next grid that covers it, the excess trimmed evenly.
        ``frame_layer``: the block (by resolution) from which the frame is wide (4: the constant; a larger one: the
        map entering it, the blocks before it square)."""
        dtype = self.ToRGB_lod0.bias.dtype  # float32; bfloat16 when the state is (compute_dtype)
        ws = jnp.asarray(ws, dtype)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {ws.shape}")
        res = 2 ** (len(self.block_names) + 1)
        layer = 4 if size is None else frame_layer
        grid = (4, 4) if size is None else widening_plan(layer, res, size)[1]
        noises = self._noises(noise_mode, key, noise_gain, ws.shape[0], grid, widen_mode, layer)
        x = None
        for i, name in enumerate(self.block_names):  # block i reads ws 2i and 2i + 1
            block_ws, block_noises = ws[:, 2 * i : 2 * i + 2], noises[2 * i : 2 * i + 2]
            if 2 ** (i + 2) == layer > 4:  # the square map entering this block made wide
                x = widen(x, grid, widen_mode)
            const_grid = grid if layer == 4 else (4, 4)
            x = getattr(self, name)(x, block_ws, block_noises, grid=const_grid, widen_mode=widen_mode)
        img = self.ToRGB_lod0(x)
        return img if size is None else trim_centre(img, size)


class StyleGAN1(nnx.Module):
    """``G_style`` (Gs) at inference: ``mapping`` (G_mapping), ``synthesis`` (G_synthesis) and ``dlatent_avg``."""

    family = "stylegan1"
    supports_transform = False

    def __init__(self, config: dict, spec: SG1Spec):
        self.mapping = Mapping(config, spec)
        self.synthesis = Synthesis(config, spec)
        self.dlatent_avg = Buffer(zeros(spec.w_dim))
        self.spec = spec
        self.z_dim, self.c_dim, self.w_dim = spec.z_dim, spec.c_dim, spec.w_dim
        self.num_ws, self.img_resolution, self.img_channels = spec.num_ws, spec.img_resolution, spec.img_channels
        self.has_noise = self.synthesis.use_noise

    def constants(self) -> dict[str, Any]:
        """No weight-only subexpression is worth precomputing (the gains are scalar multiplies)."""
        return {}

    # the w-space model protocol (lsd_jax.styles.program.StyleGANProgram drives it; see lsd_jax.models)
    def map_latents(self, z: Array, c: Array | None, truncation_psi: Any = 1.0, truncation_cutoff: Any = None) -> Array:
        return self.map(z, c, truncation_psi, truncation_cutoff)

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
        """ws → images (N, R, R, C), or (N, H, W, C) for ``size`` (see :meth:`Synthesis.__call__`)."""
        if transform is not None:
            raise ValueError("transform is only supported by StyleGAN3 generators")
        return self.synthesis(ws, noise_mode, key, noise_gain, size, widen_mode, frame_layer)

    def truncate(self, ws: Array, truncation_psi: Any = 1.0, truncation_cutoff: Any = None) -> Array:
        """``G_style``'s truncation: ``avg + (w − avg)·ψ`` on layers ``< cutoff``; ψ == 1 (or cutoff ≤ 0) leaves
        ws exactly as they are. ψ: scalar or (N,); cutoff: scalar int, None = every layer (NVIDIA's None
        disables truncation instead: pass ψ = 1 for that)."""
        psi, cutoff = truncation_args(self.num_ws, truncation_psi, truncation_cutoff)
        psi = psi.reshape(-1, 1, 1) if psi.ndim == 1 else psi
        layer = jnp.arange(self.num_ws, dtype=jnp.int32)[None, :, None]
        avg = self.dlatent_avg[...].astype(ws.dtype)
        return jnp.where((layer < cutoff) & (psi != 1), avg + (ws - avg) * psi.astype(ws.dtype), ws)

    def map(self, z: Array, c: Array | None = None, truncation_psi: Any = 1.0, truncation_cutoff: Any = None) -> Array:
        """z (N, z_dim), c (N, c_dim) (conditional networks; None or empty otherwise) → ws (N, num_ws, w_dim),
        truncated."""
        if self.c_dim == 0 and c is not None and np.size(c) and jnp.asarray(c).shape[-1] != 0:
            raise ValueError("this StyleGAN (v1) generator is unconditional: pass c=None")
        return self.truncate(self.mapping(z, c if self.c_dim > 0 else None), truncation_psi, truncation_cutoff)

    def __call__(
        self,
        z: Array,
        c: Array | None = None,
        truncation_psi: Any = 1.0,
        truncation_cutoff: Any = None,
        noise_mode: str = "const",
        key: Array | None = None,
        noise_gain: Array | None = None,
    ) -> Array:
        return self.synthesis(self.map(z, c, truncation_psi, truncation_cutoff), noise_mode, key, noise_gain)


# ---------------------------------------------------------------------------------------------------------------
# Building from (config, flat state).


def abstract(config: dict) -> StyleGAN1:
    """The module for ``config`` with abstract (shape-only) variables (``nnx.eval_shape``)."""
    spec = spec_from_config(config)
    return nnx.eval_shape(lambda: StyleGAN1(config, spec))


def from_state(config: dict, flat_state: dict[str, Any]) -> StyleGAN1:
    """The module for ``config`` filled from ``flat_state`` ({dotted TF name: array}, e.g. from
    :func:`converters.sg1.convert`) by :func:`.ops.load_module`: a malformed config or a missing, unexpected or
    misshapen tensor raises :class:`~lsd_jax.errors.ConversionError` naming it."""
    try:
        return load_module(abstract(config), flat_state, "StyleGAN (v1) generator")
    except (KeyError, ValueError) as e:
        raise ConversionError(f"StyleGAN (v1) weights do not match the model: {e.args[0] if e.args else e}") from None
