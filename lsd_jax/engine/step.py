"""The compiled frame step: per-frame inputs → effected uint8 frames, sharded over devices.

:func:`frame_step` is ONE module-level ``jax.jit`` function whose static arguments are the style's program (a
hashable value, e.g. the model's NNX graphdef), the output size, the effect plan, the compute dtype and the output
sharding; everything else (the model's state, its precomputed weight constants, the render settings truncation
ψ/cutoff and noise mode, the w-control arrays) is a traced argument. So JAX's own jit cache reuses a compiled step
by value across renders, and renders that differ only in a setting's value never recompile.

:func:`make_frame_step` binds a style's variables (placed once, replicated over the devices) to that function;
:func:`fit_batch` picks the frames per step, or refuses one that would not fit in memory, from the traced step's needs
(:func:`step_memory`), before anything is compiled; :func:`build_frame_step` does both, for every mode (render, Deep
Music Visualizer, live); :func:`plan_effects`, :func:`fit` and :func:`to_uint8_frames` are the pure post-processing
fused into the step.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import memory
from ..errors import ParamError
from ..memory import human_bytes
from ..params import RenderParams
from ..styles.style import Style, render_settings
from . import effects as fx

Array = jax.Array
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EffectPlan:
    """Effects in Lucid Sonic Dreams' order (custom first, then contrast, then flash), split into
    the traceable prefix (fused into the step) and the rest (run on the host, in order)."""

    fused: tuple[tuple[Callable[..., Any], float], ...]
    host: tuple[tuple[Callable[..., Any], float], ...]


def plan_effects(params: RenderParams, size: tuple[int, int]) -> EffectPlan:
    """The effects of ``params`` at ``size``. Contrast and flash get strength 1: their strength (a number or a
    timeline) is folded into their amplitudes per frame (:func:`effect_amplitudes`), as they only use
    ``amplitude * strength``; so a new strength never recompiles."""
    chain: list[tuple[Callable[..., Any], float, bool]] = []
    for e in params.custom_effects:
        chain.append((e.func, float(e.strength), e.traceable(*size)))
    if params.contrast_on:
        chain.append((fx.contrast_effect, 1.0, True))
    if params.flash_on:
        chain.append((fx.flash_effect, 1.0, True))
    split = next((i for i, (_, _, ok) in enumerate(chain) if not ok), len(chain))
    return EffectPlan(
        fused=tuple((f, s) for f, s, _ in chain[:split]),
        host=tuple((f, s) for f, s, _ in chain[split:]),
    )


def effect_amplitudes(features: Any, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N, E) amplitudes in the plan's order: custom effects, contrast, flash; contrast's and flash's times their
    strength at each frame (``values``: :func:`lsd_jax.engine.timeline.frame_values`; see :func:`plan_effects`)."""
    cols = list(features.effects)
    if features.contrast is not None:
        cols.append(np.asarray(features.contrast, np.float32) * values["contrast_strength"])
    if features.flash is not None:
        cols.append(np.asarray(features.flash, np.float32) * values["flash_strength"])
    if not cols:
        return np.zeros((features.n_frames, 0), np.float32)
    return np.stack(cols, axis=1).astype(np.float32)


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
def frame_step(
    program: Any,
    variables: Any,
    inputs: dict[str, Array],
    *,
    size: tuple[int, int],
    plan: EffectPlan,
    dtype: str = "float32",
    sharding: Any = None,
) -> Array:
    """``program``'s images for a batch of per-frame ``inputs`` (``z`` (B, D), ``c`` (B, C), ``amps`` (B, E),
    ...), fitted to ``size``, effected and converted: uint8 (B, H, W, 3). ``variables`` are already in ``dtype``;
    the float inputs are cast to it (effects and the uint8 conversion stay float32)."""
    dt = jnp.dtype(dtype)
    cast = {
        k: (v.astype(dt) if k != "amps" and jnp.issubdtype(v.dtype, jnp.floating) else v) for k, v in inputs.items()
    }
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
        return frame_step.lower(
            self.program,
            self.variables,
            inputs,
            size=self.size,
            plan=self.plan,
            dtype=self.dtype,
            sharding=self.sharding,
        )


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
        return frame_step(
            program, variables, jax.device_put(inputs, sharded), size=size, plan=plan, dtype=dtype, sharding=shard_out
        )

    return FrameStep(step, variables, batch, devices, program, size, plan, dtype, shard_out)


def output_size(style: Style, params: RenderParams) -> tuple[int, int]:
    if params.width is not None:
        return (params.height, params.width)
    if params.resolution is not None:
        return (params.resolution, params.resolution)
    h, w = style.output_size(None)
    return (h + h % 2, w + w % 2)


@dataclass(frozen=True)
class StepMemory:
    """What a frame step of ``batch`` frames (per device) needs, in bytes: the style's ``weights`` (placed once, with
    their constants) and the ``temporaries`` alive at once during one call (from :func:`step_memory`)."""

    weights: int
    temporaries: int
    batch: int

    @property
    def need(self) -> int:
        """The bytes to have free: the weights and :data:`lsd_jax.memory.MARGIN` times the traced temporaries."""
        return int(self.weights + memory.MARGIN * self.temporaries)


def _spec(tree: Any) -> Any:
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(np.shape(a), getattr(a, "dtype", None) or np.asarray(a).dtype), tree
    )


def step_memory(
    style: Style,
    size: tuple[int, int],
    plan: EffectPlan,
    batch: int = 1,
    *,
    example: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    compute_dtype: str = "float32",
) -> StepMemory:
    """What :func:`make_frame_step`'s step for ``style`` at ``size`` needs for ``batch`` frames, measured by tracing
    it at that batch (no compile, no allocation: :func:`lsd_jax.memory.peak_bytes`; the peak need not grow in
    proportion to the batch, so each batch is traced). ``example``: per-frame inputs shaped like the render's
    (default ``z``, ``c``). A host style: its post-processing only."""
    dtype = jnp.dtype(compute_dtype)
    if style.host:
        variables: Any = None
        weights = 0
    else:
        variables = {k: _spec(v) for k, v in (style.variables or {}).items()}
        if "model" in variables and hasattr(style.program, "constants"):
            variables["consts"] = jax.eval_shape(_constants, style.program, variables["model"])
        variables["settings"] = _spec(settings if settings is not None else render_settings(RenderParams(), style))
        if dtype != jnp.float32:
            variables = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct(a.shape, dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                variables,
            )
        weights = memory.tree_bytes(variables)
    example = example or {"z": np.zeros((1, style.z_dim), np.float32), "c": np.zeros((1, style.c_dim), np.float32)}
    n_amps = int(np.shape(example["amps"])[1]) if "amps" in example else len(plan.fused) + len(plan.host)
    spec = {k: jax.ShapeDtypeStruct((batch, *np.shape(v)[1:]), np.asarray(v).dtype) for k, v in example.items()}
    spec["amps"] = jax.ShapeDtypeStruct((batch, n_amps), jnp.float32)
    if style.host:
        h, w = style.output_size(None)
        images = jax.ShapeDtypeStruct((batch, h, w, 3), jnp.float32)
        peak = memory.tree_bytes(images) + memory.peak_bytes(
            jax.make_jaxpr(functools.partial(_post, size=size, plan=plan))(images, spec["amps"])
        )
    else:
        peak = memory.peak_bytes(
            jax.make_jaxpr(functools.partial(frame_step, style.program, size=size, plan=plan, dtype=dtype.name))(
                variables, spec
            )
        )
    return StepMemory(weights, peak, batch)


#: Frames per step (per device) an automatic batch starts from on an accelerator; :func:`fit_batch` lowers it to what
#: fits in memory (beyond this, the step's speed no longer grows: the device is busy).
ACCELERATOR_BATCH = 64
#: The most frames per step an automatic batch takes on CPU (see :attr:`Style.cpu_batch_pixels`).
CPU_BATCH = 32


def fit_batch(
    style: Style,
    size: tuple[int, int],
    plan: EffectPlan,
    batch: int | None = None,
    *,
    most: int | None = None,
    n_devices: int = 1,
    example: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    compute_dtype: str = "float32",
    free: Any = None,
) -> int:
    """Frames per step: the one place that decides whether a batch fits in memory.

    ``batch`` (the user's ``batch_size``): returned when a step of it fits in the free memory
    (:func:`lsd_jax.memory.free_memory`, or ``free``: a :class:`~lsd_jax.memory.Budget`), else a
    :class:`~lsd_jax.errors.ParamError` naming one that fits. ``batch=None`` (automatic): on CPU (and for host styles)
    a pixel budget (:attr:`Style.cpu_batch_pixels`: large batches lose cache locality at high resolutions, measured on
    a 2-core CPU), on an accelerator :data:`ACCELERATOR_BATCH` per device; at most ``most``; lowered to the largest
    batch that fits (logged). A ParamError too when not even one frame fits, saying what does not (the weights, the
    model, or one frame at this size). Decided from the traced step (:func:`step_memory`) before anything is
    compiled or allocated. ``example``: per-frame inputs shaped like the render's (leading axis: frames)."""
    n_devices = max(1, n_devices)
    explicit = batch is not None
    if batch is None:
        if jax.local_devices()[0].platform == "cpu" or style.host:
            per_device = max(1, min(CPU_BATCH, style.cpu_batch_pixels // (size[0] * size[1])))
        else:
            per_device = ACCELERATOR_BATCH
        batch = per_device * n_devices
        if most is not None:
            batch = max(1, min(batch, int(most)))
    budget = free if free is not None else memory.free_memory()
    if budget is None:
        return batch
    per_device = -(-batch // n_devices)

    def measure(b: int) -> StepMemory:
        return step_memory(style, size, plan, b, example=example, settings=settings, compute_dtype=compute_dtype)

    mem = measure(per_device)
    if mem.need <= budget.bytes:
        return batch
    free_text = f"{human_bytes(budget.bytes)} of memory free {budget.where}"
    name = f"style {style.name!r}"
    if mem.weights >= budget.bytes:
        raise ParamError(
            f"the {name} needs {human_bytes(mem.weights)} for its weights alone, more than the "
            f"{free_text}: it cannot render here (a smaller model, or a machine with more memory)"
        )
    one = measure(1) if per_device > 1 else mem
    h, w = size
    if one.need > budget.bytes:
        native = style.native_size  # a model renders at its own size whatever the video's: a smaller one won't help
        how = (
            f": this model (it makes {native[1]}x{native[0]} images) is too large for this machine"
            if native
            else ": choose a smaller resolution"
        )
        raise ParamError(
            f"one {w}x{h} frame of the {name} needs about {human_bytes(one.need)} to render "
            f"(weights {human_bytes(one.weights)}), more than the {free_text}{how}"
        )
    lo, hi = 1, per_device  # lo fits, hi does not; the peak grows with the batch
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if measure(mid).need <= budget.bytes else (lo, mid)
    fits = lo * n_devices
    if not explicit:
        log.info(
            "lsd-jax: %d frames per step at %dx%d would need about %s, more than the %s: using %d",
            batch,
            w,
            h,
            human_bytes(mem.need),
            free_text,
            fits,
        )
        return fits
    raise ParamError(
        f"batch_size={batch} at {w}x{h} needs about {human_bytes(mem.need)} of memory, more than the "
        f"{free_text}: use batch_size={fits} or less, or leave it unset to choose automatically"
    )


def build_frame_step(
    style: Style,
    size: tuple[int, int],
    plan: EffectPlan,
    *,
    settings: dict[str, Any],
    batch: int | None = None,
    most: int | None = None,
    example: dict[str, Any] | None = None,
    compute_dtype: str = "float32",
    devices: Any = None,
    free: Any = None,
) -> FrameStep:
    """The compiled frame step a render, Deep Music Visualizer mode and live mode run: the frames per step from
    :func:`fit_batch` (``batch``: the user's, refused if it does not fit; None: automatic, at most ``most``), then
    :func:`make_frame_step` over ``devices`` (default: every local device)."""
    devices = tuple(devices) if devices is not None else tuple(jax.local_devices())
    batch = fit_batch(
        style,
        size,
        plan,
        batch,
        most=most,
        n_devices=len(devices),
        example=example,
        settings=settings,
        compute_dtype=compute_dtype,
        free=free,
    )
    return make_frame_step(style, size, plan, batch, devices=devices, compute_dtype=compute_dtype, settings=settings)
