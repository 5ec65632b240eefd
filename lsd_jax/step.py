"""The compiled frame step: per-frame inputs → effected uint8 frames, sharded over devices.

:func:`frame_step` is ONE module-level ``jax.jit`` function whose static arguments are the style's program (a
hashable value, e.g. the model's NNX graphdef), the output size, the effect plan, the compute dtype and the output
sharding; everything else (the model's state, its precomputed weight constants, the render settings truncation
ψ/cutoff and noise mode, the w-control arrays) is a traced argument. So JAX's own jit cache reuses a compiled step
by value across renders, and renders that differ only in a setting's value never recompile.

:func:`make_frame_step` binds a style's variables (placed once, replicated over the devices) to that function;
:func:`auto_batch_size` picks the frames per step; :func:`plan_effects`, :func:`fit` and :func:`to_uint8_frames`
are the pure post-processing fused into the step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import effects as fx
from .params import NOISE_MODES, RenderParams  # the models' noise-mode indices (tests check they agree)
from .style import Style

Array = jax.Array
#: ``truncation_cutoff`` "none": every layer is truncated (compared with the layer index).
CUTOFF_ALL = int(np.iinfo(np.int32).max)


@dataclass(frozen=True)
class EffectPlan:
    """Effects in Lucid Sonic Dreams' order (custom first, then contrast, then flash), split into
    the traceable prefix (fused into the step) and the rest (run on the host, in order)."""

    fused: tuple[tuple[Callable[..., Any], float], ...]
    host: tuple[tuple[Callable[..., Any], float], ...]


def plan_effects(params: RenderParams, size: tuple[int, int]) -> EffectPlan:
    chain: list[tuple[Callable[..., Any], float, bool]] = []
    for e in params.custom_effects:
        chain.append((e.func, float(e.strength), e.traceable(*size)))
    if params.contrast_on:
        chain.append((fx.contrast_effect, params.effect_strength("contrast"), True))
    if params.flash_on:
        chain.append((fx.flash_effect, params.effect_strength("flash"), True))
    split = next((i for i, (_, _, ok) in enumerate(chain) if not ok), len(chain))
    return EffectPlan(
        fused=tuple((f, s) for f, s, _ in chain[:split]),
        host=tuple((f, s) for f, s, _ in chain[split:]),
    )


def effect_amplitudes(features: Any) -> np.ndarray:
    """(N, E) amplitudes in the plan's order: custom effects, contrast, flash."""
    cols = list(features.effects)
    if features.contrast is not None:
        cols.append(features.contrast)
    if features.flash is not None:
        cols.append(features.flash)
    if not cols:
        return np.zeros((features.n_frames, 0), np.float32)
    return np.stack(cols, axis=1).astype(np.float32)


def render_settings(params: RenderParams, style: Style | None = None) -> dict[str, np.ndarray]:
    """The render settings the step reads as arrays: ``truncation_psi`` (float32), ``truncation_cutoff`` (int32,
    :data:`CUTOFF_ALL` for "none") and ``noise_mode`` (int32 index into ``NOISE_MODES``), plus the ``style``'s own
    (:attr:`Style.settings_fn`, e.g. BigGAN's batch-norm statistics weights of ``truncation``)."""
    cutoff = params.truncation_cutoff
    out = {"truncation_psi": np.float32(params.truncation_psi),
           "truncation_cutoff": np.int32(CUTOFF_ALL if cutoff is None else cutoff),
           "noise_mode": np.int32(NOISE_MODES.index(params.noise_mode))}
    if style is not None and style.settings_fn is not None:
        out.update(style.settings_fn(params))
    return out


def fit(images: Array, size: tuple[int, int]) -> Array:
    """Centre-crop to the target aspect ratio, then resize: (B, h, w, 3) -> (B, H, W, 3)."""
    b, h, w, _ = images.shape
    th, tw = size
    if (h, w) == (th, tw):
        return images
    if h * tw > w * th:  # too tall: crop rows
        ch = max(1, round(w * th / tw))
        top = (h - ch) // 2
        images = images[:, top : top + ch]
    elif h * tw < w * th:  # too wide: crop columns
        cw = max(1, round(h * tw / th))
        left = (w - cw) // 2
        images = images[:, :, left : left + cw]
    return jax.image.resize(images, (b, th, tw, 3), method="linear", antialias=True)


def to_uint8_frames(images: Array, size: tuple[int, int], plan: EffectPlan, amps: Array) -> Array:
    """[-1, 1] images -> fitted, effected uint8 frames. Pure; runs inside the compiled step."""
    x = jnp.clip((fit(images.astype(jnp.float32), size) + 1.0) * 127.5, 0.0, 255.0)
    if plan.fused:
        funcs, strengths = zip(*plan.fused)
        x = fx.apply_fused(x, funcs, strengths, amps)
    return jnp.round(x).astype(jnp.uint8)


@functools.partial(jax.jit, static_argnames=("program", "size", "plan", "dtype", "sharding"))
def frame_step(program: Any, variables: Any, inputs: dict[str, Array], *, size: tuple[int, int], plan: EffectPlan,
               dtype: str = "float32", sharding: Any = None) -> Array:
    """``program``'s images for a batch of per-frame ``inputs`` (``z`` (B, D), ``c`` (B, C), ``amps`` (B, E),
    ...), fitted to ``size``, effected and converted: uint8 (B, H, W, 3). ``variables`` are already in ``dtype``;
    the float inputs are cast to it (effects and the uint8 conversion stay float32)."""
    dt = jnp.dtype(dtype)
    cast = {k: (v.astype(dt) if k != "amps" and jnp.issubdtype(v.dtype, jnp.floating) else v)
            for k, v in inputs.items()}
    frames = to_uint8_frames(program(variables, cast, size).astype(jnp.float32), size, plan, inputs["amps"])
    return frames if sharding is None else jax.lax.with_sharding_constraint(frames, sharding)


@functools.partial(jax.jit, static_argnames=("size", "plan"))
def _post(images: Array, amps: Array, *, size: tuple[int, int], plan: EffectPlan) -> Array:
    return to_uint8_frames(images, size, plan, amps)


@functools.partial(jax.jit, static_argnames=("program",))
def _constants(program: Any, model_state: Any) -> Any:
    return program.constants(model_state)


@dataclass(frozen=True)
class FrameStep:
    """A compiled frame step bound to its variables and devices: ``step(inputs) -> uint8 (B, H, W, 3)``.

    ``fn(variables, inputs)`` runs it; ``inputs`` holds the per-frame arrays (leading axis ``batch``), sharded
    over a 1-D mesh of ``devices``; the variables (style state, weight constants, render settings, control
    arrays) are placed once, replicated. ``batch`` is a multiple of the device count."""

    fn: Callable[..., Array]
    variables: Any
    batch: int
    devices: tuple[Any, ...]
    program: Any = None
    size: tuple[int, int] = (0, 0)
    plan: EffectPlan = EffectPlan((), ())
    dtype: str = "float32"
    sharding: Any = None

    def __call__(self, inputs: dict[str, np.ndarray]) -> Array:
        return self.fn(self.variables, inputs)

    def lower(self, inputs: dict[str, Any]) -> Any:
        """The step lowered for ``inputs`` (arrays or ShapeDtypeStructs): ``.compile()``, cost/memory analysis."""
        return frame_step.lower(self.program, self.variables, inputs, size=self.size, plan=self.plan,
                                dtype=self.dtype, sharding=self.sharding)


def _cast_floats(tree: Any, dtype: Any) -> Any:
    def cast(a: Any) -> Any:
        a = jnp.asarray(a)
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, tree)


def make_frame_step(
    style: Style,
    size: tuple[int, int],
    plan: EffectPlan,
    batch: int,
    *,
    devices: Any = None,
    compute_dtype: str = "float32",
    settings: dict[str, Any] | None = None,
) -> FrameStep:
    """Bind ``style`` to :func:`frame_step` for (size, effects, batch) with the render ``settings`` (default:
    :func:`render_settings` of the default parameters).

    ``devices``: default every local device; the batch is rounded up to a multiple of their count.
    ``compute_dtype="bfloat16"`` runs the style in bfloat16 (for GPU/TPU); effects and the uint8 conversion stay
    in float32. A host (NumPy) style runs outside; only its post-processing is compiled. The model's weight
    constants (see :mod:`lsd_jax.models`) are computed here, once.
    """
    devices = tuple(devices) if devices is not None else tuple(jax.local_devices())
    batch = -(-batch // len(devices)) * len(devices)
    if style.host:
        def host_step(variables: Any, inputs: dict[str, Any]) -> Array:
            images = jnp.asarray(style.host_fn(np.asarray(inputs["z"]), np.asarray(inputs["c"])), jnp.float32)
            return _post(images, jnp.asarray(inputs["amps"]), size=size, plan=plan)

        return FrameStep(host_step, None, batch, devices[:1], None, size, plan, "float32")

    mesh = Mesh(np.asarray(devices), ("batch",))
    sharded = NamedSharding(mesh, PartitionSpec("batch"))
    replicated = NamedSharding(mesh, PartitionSpec())
    variables = dict(style.variables or {})
    if "model" in variables and hasattr(style.program, "constants"):
        variables["consts"] = _constants(style.program, variables["model"])
    variables["settings"] = settings if settings is not None else render_settings(RenderParams(), style)
    dtype = jnp.dtype(compute_dtype).name  # a name from params.COMPUTE_DTYPES
    if dtype != "float32":
        variables = _cast_floats(variables, dtype)
    variables = jax.device_put(variables, replicated)
    program = style.program
    shard_out = sharded if len(devices) > 1 else None

    def step(variables: Any, inputs: dict[str, Any]) -> Array:
        return frame_step(program, variables, jax.device_put(inputs, sharded), size=size, plan=plan, dtype=dtype,
                          sharding=shard_out)

    return FrameStep(step, variables, batch, devices, program, size, plan, dtype, shard_out)


def auto_batch_size(style: Style, size: tuple[int, int], n_devices: int = 1, *,
                    example: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> int:
    """Frames per step when the user gives none.

    On accelerators: from the device's free memory and the step's measured memory per frame
    (XLA's memory analysis at batch 1, for per-frame inputs shaped like ``example``'s rows; default ``z``, ``c``
    and no effects), leaving half the memory free. On CPU, large batches lose
    cache locality at high resolutions (measured on a 2-core CPU), so a pixel budget decides
    (:attr:`Style.cpu_batch_pixels`).
    """
    dev = jax.local_devices()[0]
    try:
        stats = dev.memory_stats()
    except Exception:  # CPU and some plugins have none
        stats = None
    if dev.platform != "cpu" and stats and stats.get("bytes_limit") and not style.host:
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        probe = make_frame_step(style, size, EffectPlan((), ()), 1, devices=(dev,), settings=settings)
        if example is None:
            example = {"z": np.zeros((1, style.z_dim), np.float32), "c": np.zeros((1, style.c_dim), np.float32)}
        spec = {k: jax.ShapeDtypeStruct((1, *np.shape(v)[1:]), np.asarray(v).dtype) for k, v in example.items()}
        spec["amps"] = jax.ShapeDtypeStruct((1, 0), jnp.float32)
        mem = probe.lower(spec).compile().memory_analysis()
        per_frame = max(1, (mem.temp_size_in_bytes + mem.output_size_in_bytes) if mem else 1)
        per_dev = int(max(1, min(64, 0.5 * free // per_frame)))
        return per_dev * n_devices
    pixels = size[0] * size[1]
    return int(max(1, min(32, style.cpu_batch_pixels // pixels))) * n_devices


def output_size(style: Style, params: RenderParams) -> tuple[int, int]:
    if params.width is not None:
        return (params.height, params.width)
    if params.resolution is not None:
        return (params.resolution, params.resolution)
    h, w = style.output_size(None)
    return (h + h % 2, w + w % 2)
