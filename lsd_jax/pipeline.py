"""The pipeline: song -> features -> latents -> frames -> MP4.

State lives here, at the edge (files, threads, progress); everything it calls in the middle is a
pure function over arrays. One compiled frame step per (style, output size, batch size, effects)
renders latents straight to uint8 frames; batches are dispatched asynchronously while a writer
thread feeds the previous batch to ffmpeg through a bounded queue, so memory stays flat whatever
the song's length.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import effects as fx
from .errors import OutputError, ParamError
from .params import RenderParams, make_params
from .style import Style
from .styles import resolve_style

Array = jax.Array
ProgressFn = Callable[[int, int], None]

SUPPORTED_SUFFIXES = (".mp4",)


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


def _fit(images: Array, size: tuple[int, int]) -> Array:
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
    x = jnp.clip((_fit(images.astype(jnp.float32), size) + 1.0) * 127.5, 0.0, 255.0)
    if plan.fused:
        funcs, strengths = zip(*plan.fused)
        x = fx.apply_fused(x, funcs, strengths, amps)
    return jnp.round(x).astype(jnp.uint8)


@dataclass(frozen=True)
class FrameStep:
    """A compiled frame step bound to its devices.

    ``fn(variables, inputs) -> uint8 (B, H, W, 3)`` where ``inputs`` holds the per-frame arrays
    ``z`` (B, D), ``c`` (B, C), ``amps`` (B, E) and optionally ``transform`` (B, 3, 3); the batch
    axis is sharded over a 1-D mesh of ``devices`` and the (already placed) ``variables`` are
    replicated. ``batch`` is a multiple of the device count.
    """

    fn: Callable[..., Array]
    variables: Any
    batch: int
    devices: tuple[Any, ...]
    style: Style | None = None  # what it was built for (keeps the cache key's id() alive)

    def __call__(self, inputs: dict[str, np.ndarray]) -> Array:
        return self.fn(self.variables, inputs)


def _cast_floats(tree: Any, dtype: Any) -> Any:
    def cast(a: Any) -> Any:
        a = jnp.asarray(a)
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, tree)


def generate_images(style: Style, variables: Any, inputs: dict[str, Array], size: tuple[int, int]) -> Array:
    """The style's images for a batch of per-frame inputs (see :class:`FrameStep`)."""
    if "apply_inputs" in style.info:  # w-controlled StyleGAN (lsd_jax.control)
        return style.info["apply_inputs"](variables, inputs, size)
    if "transform" in inputs:
        return style.info["apply_transform"](variables, inputs["z"], inputs["c"], size, inputs["transform"])
    return style.apply(variables, inputs["z"], inputs["c"], size)


_STEP_CACHE: dict[tuple, FrameStep] = {}
_STEP_CACHE_SIZE = 4


def make_frame_step(
    style: Style,
    size: tuple[int, int],
    plan: EffectPlan,
    batch: int,
    *,
    devices: Any = None,
    compute_dtype: str = "float32",
) -> FrameStep:
    """Build the one compiled step for (style, size, effects, batch).

    ``devices``: default every local device (``jax.local_devices()``); the batch is rounded up to a
    multiple of their count. ``compute_dtype="bfloat16"`` runs the style in bfloat16 (for GPU/TPU);
    effects and the uint8 conversion stay in float32. A host (NumPy) style runs outside; only its
    post-processing is compiled.
    """
    devices = tuple(devices) if devices is not None else tuple(jax.local_devices())
    n_dev = len(devices)
    batch = -(-batch // n_dev) * n_dev
    # a second render with the same style, size, effects and batch reuses the compiled step
    key = (id(style), size, plan, batch, devices, compute_dtype)
    hit = _STEP_CACHE.get(key)
    if hit is not None and hit.style is style:
        return hit
    step = _build_frame_step(style, size, plan, batch, devices, compute_dtype)
    if len(_STEP_CACHE) >= _STEP_CACHE_SIZE:
        _STEP_CACHE.pop(next(iter(_STEP_CACHE)))
    _STEP_CACHE[key] = step
    return step


def _build_frame_step(style: Style, size: tuple[int, int], plan: EffectPlan, batch: int, devices: tuple[Any, ...],
                      compute_dtype: str) -> FrameStep:
    if style.info.get("host"):
        post = jax.jit(lambda images, amps: to_uint8_frames(images, size, plan, amps))

        def host_step(variables: Any, inputs: dict[str, Array]) -> Array:
            return post(jnp.asarray(generate_images(style, variables, inputs, size)), inputs["amps"])

        return FrameStep(host_step, style.variables, batch, devices[:1], style)

    dtype = jnp.dtype(compute_dtype)  # a name from params.COMPUTE_DTYPES
    mesh = Mesh(np.asarray(devices), ("batch",))
    sharded = NamedSharding(mesh, PartitionSpec("batch"))
    replicated = NamedSharding(mesh, PartitionSpec())
    variables = style.variables
    if dtype != jnp.float32:
        variables = _cast_floats(variables, dtype)
    variables = jax.device_put(variables, replicated)

    def step(variables: Any, inputs: dict[str, Array]) -> Array:
        cast = {k: (v.astype(dtype) if k != "amps" and jnp.issubdtype(v.dtype, jnp.floating) else v)
                for k, v in inputs.items()}
        images = generate_images(style, variables, cast, size)
        return to_uint8_frames(images.astype(jnp.float32), size, plan, inputs["amps"])

    fn = jax.jit(step, in_shardings=(replicated, sharded), out_shardings=sharded)
    return FrameStep(fn, variables, batch, devices, style)


def auto_batch_size(style: Style, size: tuple[int, int], n_devices: int = 1) -> int:
    """Frames per step when the user gives none.

    On accelerators: from the device's free memory and the step's measured memory per frame
    (XLA's memory analysis at batch 1), leaving half the memory free. On CPU, large batches lose
    cache locality at high resolutions (measured on a 2-core CPU), so a pixel budget decides.
    """
    dev = jax.local_devices()[0]
    try:
        stats = dev.memory_stats()
    except Exception:  # CPU and some plugins have none
        stats = None
    if dev.platform != "cpu" and stats and stats.get("bytes_limit") and not style.info.get("host"):
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        probe = _build_frame_step(style, size, EffectPlan((), ()), 1, (dev,), "float32")  # not cached
        spec = {"z": jax.ShapeDtypeStruct((1, style.z_dim), jnp.float32),
                "c": jax.ShapeDtypeStruct((1, style.c_dim), jnp.float32),
                "amps": jax.ShapeDtypeStruct((1, 0), jnp.float32)}
        mem = probe.fn.lower(probe.variables, spec).compile().memory_analysis()
        per_frame = max(1, (mem.temp_size_in_bytes + mem.output_size_in_bytes) if mem else 1)
        per_dev = int(max(1, min(64, 0.5 * free // per_frame)))
        return per_dev * n_devices
    pixels = size[0] * size[1]
    per_pixel = int(style.info.get("cpu_batch_pixels", 2**21))
    return int(max(1, min(32, per_pixel // pixels))) * n_devices


def output_size(style: Style, params: RenderParams) -> tuple[int, int]:
    if params.width is not None:
        return (params.height, params.width)
    if params.resolution is not None:
        return (params.resolution, params.resolution)
    h, w = style.output_size(None)
    return (h + h % 2, w + w % 2)


def iter_batches(n: int, batch: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, batch):
        yield start, min(start + batch, n)


def _pad(a: np.ndarray, rows: int) -> np.ndarray:
    if a.shape[0] == rows:
        return a
    return np.concatenate([a, np.repeat(a[-1:], rows - a.shape[0], axis=0)], axis=0)


def _is_oom(e: BaseException) -> bool:
    text = str(e)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def render_frames(
    step: FrameStep,
    inputs: dict[str, np.ndarray],
    plan: EffectPlan,
    sink: Callable[[np.ndarray], None],
    progress: ProgressFn | None = None,
) -> None:
    """Render every frame and hand uint8 batches to ``sink`` in order.

    ``inputs``: per-frame arrays with a leading axis of N frames (``z``, ``c``, ``amps``, ...).
    The last batch is padded (so nothing recompiles) and trimmed before ``sink``. Batch k+1 is
    dispatched before batch k is pulled to the host, so device and host overlap.
    """
    n = inputs["z"].shape[0]
    amps = inputs["amps"]
    batch = step.batch
    pending: tuple[Array, int] | None = None
    done = 0

    def flush(item: tuple[Array, int]) -> None:
        nonlocal done
        frames, count = item
        host = np.asarray(frames)[:count]
        if plan.host:
            funcs, strengths = zip(*plan.host)
            host = fx.apply_host(host, funcs, strengths, amps[done : done + count, len(plan.fused):])
        sink(host)
        done += count
        if progress is not None:
            progress(done, n)

    try:
        for start, stop in iter_batches(n, batch):
            chunk = {k: _pad(v[start:stop], batch) for k, v in inputs.items()}
            current = (step(chunk), stop - start)
            if pending is not None:
                flush(pending)
            pending = current
        if pending is not None:
            flush(pending)
    except Exception as e:
        if _is_oom(e):
            raise ParamError(
                f"batch_size={batch} does not fit in the memory of {step.devices[0].device_kind}; "
                f"use a smaller batch_size (e.g. {max(1, batch // 2)}) or leave it unset to choose automatically"
            ) from None
        raise


class _WriterThread:
    """Feeds frames to a VideoWriter on its own thread through a bounded queue."""

    def __init__(self, writer: Any, maxsize: int = 2):
        self.writer = writer
        self.queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="lsd-jax-encoder", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self.writer.write(item)
                except BaseException as e:  # surfaced in put()/close()
                    self.error = e

    def put(self, frames: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(frames)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def resolve_output(output: str | os.PathLike[str]) -> Path:
    """The final path (``.mp4`` added when there is no suffix), checked writable up front."""
    path = Path(output).expanduser()
    if path.suffix == "":
        path = path.with_suffix(".mp4")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ParamError(f"output must be an .mp4 file, got {path.name!r}")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"output directory does not exist: {parent}")
    if path.is_dir():
        raise OutputError(f"output path is a directory: {path}")
    try:  # try for real: permission bits say nothing about read-only mounts or root
        with tempfile.TemporaryFile(dir=parent, prefix=".lsd-jax-probe-"):
            pass
    except OSError as e:
        raise OutputError(f"output directory is not writable: {parent} ({e.strerror})") from None
    return path


@dataclass
class Timings:
    """Seconds spent per stage of the last render (for the benchmark and the CLI's summary)."""

    style: float = 0.0
    audio: float = 0.0
    latents: float = 0.0
    frames: float = 0.0
    total: float = 0.0
    n_frames: int = 0
    tempo_bpm: float | None = None  # detected when speed_fpm is "beat" or "bar"


LAST_TIMINGS = Timings()


@dataclass
class Prepared:
    """Everything a render needs before its frame loop: the analysed song, its latents, the style
    and the compiled step. ``render`` and the app's preview both start from here, so a preview
    frame is exactly the full render's frame."""

    params: RenderParams
    style: Style
    features: Any
    latents: Any
    inputs: dict[str, np.ndarray]  # per-frame step inputs (z, c, amps, ...), leading axis N
    size: tuple[int, int]
    plan: EffectPlan
    step: FrameStep
    timings: Timings
    beats: Any = None  # lsd_jax.beats.Beats when speed_fpm is "beat" or "bar" (tempo_bpm, beat_frames, ...)

    @property
    def n_frames(self) -> int:
        return int(self.features.n_frames)

    def frames(self, indices: Any) -> np.ndarray:
        """Selected frames, (K, H, W, 3) uint8, through the same compiled step."""
        idx = np.asarray(indices, dtype=np.int64)
        got: list[np.ndarray] = []
        render_frames(self.step, {k: v[idx] for k, v in self.inputs.items()}, self.plan, got.append)
        return np.concatenate(got) if got else np.zeros((0, *self.size, 3), np.uint8)


def prepare(
    song: str | os.PathLike[str],
    style: Any = None,
    *,
    params: RenderParams | None = None,
    input_shape: int | None = None,
    num_possible_classes: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Prepared:
    """Validate parameters, resolve the style, analyse the song, compute latents, build the step."""
    from . import audio, latents

    t0 = time.perf_counter()
    params = make_params(params, **kwargs) if params is not None else make_params(**kwargs)
    timings = Timings()
    style_obj = resolve_style(style, params, input_shape=input_shape, num_possible_classes=num_possible_classes,
                              progress=progress)
    timings.style = time.perf_counter() - t0

    t = time.perf_counter()
    feats = audio.analyze(song, params)

    beats = None
    song_y = None
    if isinstance(params.speed_fpm, str) or any(params.band_react):
        song_y = audio.load_audio(song, sr=audio.SR, start=params.start, duration=params.duration)
    positions = None
    if isinstance(params.speed_fpm, str):
        from .beats import beat_keyframe_positions, detect_beats

        beats = detect_beats(song_y, audio.SR, feats.fps, feats.n_frames)
        timings.tempo_bpm = float(beats.tempo_bpm)
        positions = beat_keyframe_positions(beats, params.speed_fpm, feats.n_frames)
        if len(positions) < 2:
            import warnings

            warnings.warn(f"no {params.speed_fpm}s found in the song: using speed_fpm=12 instead", stacklevel=2)
            params = params.replace(speed_fpm=12.0)
            positions = None
    timings.audio = time.perf_counter() - t

    t = time.perf_counter()
    lat = latents.make_latents(feats.pulse, feats.motion, feats.chroma, params, fps=feats.fps,
                               z_dim=style_obj.z_dim, c_dim=style_obj.c_dim, keyframe_positions=positions)
    timings.latents = time.perf_counter() - t
    extra: dict[str, np.ndarray] = {}
    if params.w_control:
        from .control import controlled_style

        bands = None
        if any(params.band_react):
            from .bands import band_envelopes

            bands = band_envelopes(song_y, audio.SR, feats.fps, feats.n_frames, params.band_edges_hz)
        style_obj, extra = controlled_style(style_obj, params, n_frames=feats.n_frames, fps=feats.fps, bands=bands,
                                            pulse=feats.pulse, progress=progress)

    size = output_size(style_obj, params)
    plan = plan_effects(params, size)
    devices = jax.local_devices()
    batch = params.batch_size or auto_batch_size(style_obj, size, len(devices))
    step = make_frame_step(style_obj, size, plan, batch, devices=devices, compute_dtype=params.compute_dtype)
    inputs = {"z": lat.z, "c": lat.c, "amps": effect_amplitudes(feats), **extra}
    if params.rotate_react or params.translate_react:
        if "apply_transform" not in style_obj.info:
            raise ParamError("rotate_react and translate_react need a StyleGAN3 style (its input can rotate and "
                             f"translate); {style_obj.name!r} cannot")
        from .generator import stylegan3_transform

        angle, tx, ty = latents.transform_path(feats.motion, params, fps=feats.fps)
        inputs["transform"] = np.asarray(stylegan3_transform(angle, tx, ty), np.float32)
    return Prepared(params, style_obj, feats, lat, inputs, size, plan, step, timings, beats)


def _progress_callback(progress: bool | ProgressFn, total: int) -> tuple[ProgressFn | None, Any]:
    if callable(progress):
        return progress, None
    if not progress:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="frame", desc="Rendering", dynamic_ncols=True)

    def callback(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return callback, bar


def render(
    song: str | os.PathLike[str],
    style: Any = None,
    output: str | os.PathLike[str] = "lsd.mp4",
    *,
    progress: bool | ProgressFn = True,
    input_shape: int | None = None,
    num_possible_classes: int | None = None,
    params: RenderParams | None = None,
    live: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> Path:
    """Render a music video of ``song`` and return the path of the MP4.

    ``style``: None/"default" (embedded CPPN), a catalogue name, a ``.pkl`` path, a Style, or a
    callable ``style(noise_batch, class_batch)`` (then give ``input_shape`` and
    ``num_possible_classes``). ``kwargs``: :class:`~lsd_jax.params.RenderParams` fields.
    ``progress``: True for a progress bar, False for none, or a callback ``(done, total)``.
    The output is written to a temporary file and renamed into place only when complete.
    ``live``: also write the encoded video, as it is made, into this fragmented MP4 (for playing
    while rendering; the output is unchanged, byte for byte; single process only).
    Under ``jax.distributed`` (several processes), each process renders a contiguous range of
    frames and process 0 joins the segments without re-encoding.
    """
    from . import audio, video

    t0 = time.perf_counter()
    if params is None:
        params = make_params(**kwargs)
    elif kwargs:
        params = make_params(params, **kwargs)
    out = resolve_output(output)
    prep = prepare(song, style, params=params, input_shape=input_shape, num_possible_classes=num_possible_classes,
                   progress=bool(progress))
    t = time.perf_counter()
    soundtrack = audio.load_output_audio(song, params)
    prep.timings.audio += time.perf_counter() - t
    n = prep.n_frames
    fps = prep.features.fps
    n_proc, proc = jax.process_count(), jax.process_index()
    first, last = proc * n // n_proc, (proc + 1) * n // n_proc

    t = time.perf_counter()
    callback, bar = _progress_callback(progress, last - first)
    target = out if n_proc == 1 else segment_path(out, proc)
    try:
        with video.VideoWriter(target, fps=fps, size=prep.size, audio=soundtrack if n_proc == 1 else None,
                               live=live if n_proc == 1 else None) as writer:
            feeder = _WriterThread(writer)
            try:
                render_frames(prep.step, {k: v[first:last] for k, v in prep.inputs.items()}, prep.plan,
                              feeder.put, callback)
            finally:
                feeder.close()
    finally:
        if bar is not None:
            bar.close()
    if n_proc > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"lsd-jax segments of {out.name}")
        if proc == 0:
            segments = [segment_path(out, i) for i in range(n_proc)]
            video.join_segments(segments, out, fps=fps, audio=soundtrack)
            for seg in segments:
                seg.unlink(missing_ok=True)
        multihost_utils.sync_global_devices(f"lsd-jax joined {out.name}")
    timings = prep.timings
    timings.frames = time.perf_counter() - t
    timings.total = time.perf_counter() - t0
    timings.n_frames = n
    LAST_TIMINGS.__dict__.update(timings.__dict__)
    return out


def segment_path(out: Path, index: int) -> Path:
    """Where process ``index`` of a multi-process render writes its segment (beside the output)."""
    return out.with_name(f".{out.stem}.segment{index:03d}.mp4")
