"""The pipeline: song -> features -> latents -> frames -> MP4.

State lives here, at the edge (files, threads, progress); everything it calls in the middle is a
pure function over arrays. :func:`prepare` normalises the parameters (once: :func:`render_params`), resolves the
style, analyses the song, computes the latents and builds the compiled frame step
(:func:`lsd_jax.engine.step.build_frame_step`); :func:`render` runs the writer loop (:func:`write_video`: batches
dispatched asynchronously while a writer thread feeds the previous batch to ffmpeg through a bounded queue, so memory
stays flat whatever the song's length) and returns a :class:`RenderResult`. Deep Music Visualizer mode
(:mod:`lsd_jax.dmv.pipeline`) runs the same step builder and writer loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..errors import AudioError, LsdError, ParamError
from ..media.formats import check_settings, choose_format
from ..media.outputs import render_inputs, resolve_output
from ..media.recipe import make_recipe, read_recipe, recipe_text, sha256_of, stored_path
from ..params import RenderParams, make_params
from ..styles.resolve import resolve_style
from ..styles.style import Style, render_settings
from . import effects as fx
from .step import EffectPlan, FrameStep, build_frame_step, effect_amplitudes, output_size, plan_effects
from .timeline import frame_times, needs_sections

Array = jax.Array
ProgressFn = Callable[[int, int], None]
# a stage of a render: called with (what, None) as it starts and (what, seconds) as it ends, e.g. ("decoding and
# analysing the song", None) then (..., 2.4); the CLI prints them, so the engine itself prints nothing
StageFn = Callable[[str, float | None], None]


@contextlib.contextmanager
def _stage(stage: StageFn | None, what: str) -> Iterator[None]:
    """Report the stage ``what`` to ``stage`` (if any) around the block: its start, then its seconds when it ends
    without an error."""
    if stage is None:
        yield
        return
    t = time.perf_counter()
    stage(what, None)
    yield
    stage(what, time.perf_counter() - t)


def render_params(params: RenderParams | None = None, **kwargs: Any) -> RenderParams:
    """A render's parameters, normalised once: ``params`` as given when no keywords change it (any RenderParams that
    exists is valid), else :func:`~lsd_jax.params.make_params` of both. :func:`render`, :func:`prepare` and
    :func:`warm_up` all start here, so a render passes its parameters on without validating them again."""
    if isinstance(params, RenderParams) and not kwargs:
        return params
    return make_params(params, **kwargs)


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
            host = fx.apply_host(host, funcs, strengths, amps[done : done + count, len(plan.fused) :])
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
        if _is_oom(e):  # the bound before compiling missed (another process took the memory meanwhile?)
            if batch <= len(step.devices):
                h, w = step.size
                raise ParamError(
                    f"one {w}x{h} frame of this style does not fit in the memory of "
                    f"{step.devices[0].device_kind}: choose a smaller resolution or a smaller "
                    "model"
                ) from None
            raise ParamError(
                f"batch_size={batch} does not fit in the memory of {step.devices[0].device_kind}; "
                f"use a smaller batch_size (e.g. {max(1, batch // 2)}) or leave it unset to choose automatically"
            ) from None
        raise


#: Seconds of the song (from ``start``) whose beats give the tempo of a ``loop_bars`` loop.
TEMPO_SECONDS = 60.0


class _WriterThread:
    """Feeds frames to a VideoWriter on its own thread through a bounded queue. ``first_write``: the
    ``time.perf_counter()`` at which the first frames had been handed to the encoder (None before)."""

    def __init__(self, writer: Any, maxsize: int = 2):
        self.writer = writer
        self.queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.first_write: float | None = None
        self.first_write_cpu: float | None = None  # the process's CPU time (all threads) then
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
                    if self.first_write is None:
                        self.first_write = time.perf_counter()
                        self.first_write_cpu = time.process_time()
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


@dataclass
class Timings:
    """Seconds spent per stage of a render (in its :class:`RenderResult`; the benchmark and the CLI read them)."""

    style: float = 0.0
    audio: float = 0.0
    latents: float = 0.0
    frames: float = 0.0
    total: float = 0.0
    first_frame: float | None = None  # from the render call until the first frame was written to the encoder
    first_frame_cpu: float | None = None  # the process's CPU seconds (all threads, imports included) at that moment
    n_frames: int = 0
    tempo_bpm: float | None = None  # detected when speed_fpm is "beat" or "bar"
    compile: float | None = None  # the first batch's seconds, compiling included (part of ``frames``)
    first_batch: int = 0  # its frames

    def frames_per_s(self) -> float | None:
        """The steady frames/s of the writer loop after the first batch (None: too few frames to say)."""
        if self.compile is None or self.n_frames <= self.first_batch or self.frames <= self.compile:
            return None
        return (self.n_frames - self.first_batch) / (self.frames - self.compile)


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render` made: the video's ``path`` (also ``os.fspath(result)`` and ``str(result)``), its
    frame count, fps and size, the detected tempo (``speed_fpm="beat"``/``"bar"``) and the time per stage."""

    path: Path
    n_frames: int
    fps: float
    size: tuple[int, int]
    timings: Timings = field(default_factory=Timings)
    tempo_bpm: float | None = None

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def summary(self) -> str:
        """One line for the CLI: frames, time per stage, tempo."""
        t = self.timings
        first = f", first frame after {t.first_frame:.1f} s" if t.first_frame is not None else ""
        return (
            f"{self.n_frames} frames in {t.total:.1f} s: audio {t.audio:.1f} s, latents {t.latents:.1f} s, "
            f"frames+encoding {t.frames:.1f} s{first}" + (f"; tempo {self.tempo_bpm:.1f} BPM" if self.tempo_bpm else "")
        )


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
    beats: Any = None  # lsd_jax.audio.beats.Beats when speed_fpm is "beat" or "bar" (tempo_bpm, beat_frames, ...)

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
    max_seconds: float | None = None,
    stage: StageFn | None = None,
    structure: Any = None,
    **kwargs: Any,
) -> Prepared:
    """Validate parameters, resolve the style, analyse the song, compute latents, build the step.

    ``stage``: told when each of these starts and ends (:data:`StageFn`; the CLI's stage lines).
    ``structure``: the song's sections and drops (:class:`lsd_jax.engine.timeline.Structure`) for timelines keyed
    by sections (``"B"``, ``"s3"``, ``"drop"``); without it such a key is a ParamError.

    ``max_seconds``: refuse an excerpt longer than that, measured on the audio actually decoded (a server's limit:
    a header that understates the length does not get past it). A batch that does not fit in memory is refused
    (``batch_size`` given) or lowered (automatic) before anything is compiled (:func:`lsd_jax.engine.step.fit_batch`).
    """
    from ..audio import analysis as audio
    from ..store.paths import use_persistent_caches
    from . import latents

    use_persistent_caches()  # compiled steps and latents outlive the process (cache_dir()/jax)
    t0 = time.perf_counter()
    params = render_params(params, **kwargs)
    timings = Timings()
    with _stage(stage, "loading the style"):
        style_obj = resolve_style(
            style, params, input_shape=input_shape, num_possible_classes=num_possible_classes, progress=progress
        )
    timings.style = time.perf_counter() - t0
    settings = render_settings(params, style_obj)  # the style's own settings fail here, before any analysis
    if params.classes is not None and any(isinstance(c, str) for c in params.classes):
        params = params.replace(classes=style_obj.resolve_classes(params.classes))  # names need the style

    t = time.perf_counter()
    with _stage(stage, "decoding and analysing the song"):
        if params.loop_bars is not None:  # the loop's length needs the song's tempo: one decode for it first
            from ..audio.beats import BEATS_PER_BAR

            bpm = song_tempo(song, params, max_seconds=max_seconds)
            params = params.replace(loop_bars=None, loop_seconds=params.loop_bars * BEATS_PER_BAR * 60.0 / bpm)
        excerpt = params
        if params.loop_seconds is not None:  # the loop is the excerpt (the latents close on themselves)
            excerpt = params.replace(loop_seconds=None, duration=params.loop_seconds)
        # decodes the song once: features, bands, beats and soundtrack
        feats = audio.analyze(song, excerpt, max_seconds=max_seconds)
    beats = feats.beats
    positions = None
    if beats is not None:
        timings.tempo_bpm = float(beats.tempo_bpm)
    if beats is not None and isinstance(params.speed_fpm, str):
        from ..audio.beats import beat_keyframe_positions

        positions = beat_keyframe_positions(beats, params.speed_fpm, feats.n_frames)
        if len(positions) < 2:
            import warnings

            warnings.warn(f"no {params.speed_fpm}s found in the song: using speed_fpm=12 instead", stacklevel=2)
            params = params.replace(speed_fpm=12.0)
            positions = None
    timings.audio = time.perf_counter() - t

    t = time.perf_counter()
    if structure is None and (needs_sections(params) or params.direct == "sections"):
        from ..audio.structure import analyze

        with _stage(stage, "finding the song's sections"):
            try:
                structure = analyze(song)  # cached per song
            except AudioError as e:
                if needs_sections(params):
                    raise
                import warnings  # only the director asked: the video renders undirected (the app's default)

                warnings.warn(f'direct="sections": {e}; rendering without direction', stacklevel=2)
    values = timeline_values(params, feats, structure)
    direction = None
    if params.direct == "sections" and structure is not None and len(structure.sections):
        # per-frame arrays: the same compiled step whatever the song's form
        from .timeline import direct_values
        from .timeline import direction as song_direction

        direction = song_direction(frame_times(feats.n_frames, feats.fps, params.start), structure)
        values = direct_values(params, values, direction)
    with _stage(stage, "computing the latents"):
        lat = latents.make_latents(
            feats.pulse,
            feats.motion,
            feats.chroma,
            params,
            fps=feats.fps,
            z_dim=style_obj.z_dim,
            c_dim=style_obj.c_dim,
            keyframe_positions=positions,
            values=values,
            direction=direction,
        )
    timings.latents = time.perf_counter() - t
    from ..styles.program import controlled_style

    with _stage(stage if params.keyframes else None, "projecting the keyframes"):
        style_obj, extra = controlled_style(
            style_obj,
            params,
            n_frames=feats.n_frames,
            fps=feats.fps,
            bands=feats.bands,
            pulse=feats.pulse,
            progress=progress,
        )

    size = output_size(style_obj, params)
    # the generator makes the video's aspect itself
    style_obj = style_obj.with_frame_fit(params.frame_fit, params.frame_layer)
    plan = plan_effects(params, size)
    inputs = {"z": lat.z, "c": lat.c, "amps": effect_amplitudes(feats, values), **extra}
    if any(v != 0 for v in (params.rotate_react, params.translate_react)):  # a number or a timeline
        if not style_obj.transform:
            raise ParamError(
                "rotate_react and translate_react need a StyleGAN3 style (its input can rotate and "
                f"translate); {style_obj.name!r} cannot"
            )
        from ..styles.generator import stylegan3_transform

        angle, tx, ty = latents.transform_path(feats.motion, params, fps=feats.fps, values=values)
        inputs["transform"] = np.asarray(stylegan3_transform(angle, tx, ty), np.float32)
    with _stage(stage, "building the frame step"):
        step = build_frame_step(
            style_obj,
            size,
            plan,
            settings=settings,
            batch=params.batch_size,
            example=inputs,
            compute_dtype=params.compute_dtype,
        )
    return Prepared(params, style_obj, feats, lat, inputs, size, plan, step, timings, beats)


def timeline_values(params: RenderParams, feats: Any, structure: Any = None) -> dict[str, np.ndarray]:
    """Each timeline parameter per frame of the excerpt analysed in ``feats`` (name → (N,) float32), its beats and
    bars from ``feats.beats`` (seconds of the song), its sections from ``structure``."""
    from .timeline import frame_values

    beats = downbeats = None
    if feats.beats is not None:
        b = feats.beats
        beats = np.asarray(b.beat_times, np.float64) + params.start
        downbeats = beats[np.isin(b.beat_frames, b.bar_frames)]  # the beats that start a bar
    return frame_values(params, feats.n_frames, feats.fps, beats=beats, downbeats=downbeats, structure=structure)


def song_tempo(song: Any, params: RenderParams, *, max_seconds: float | None = None) -> float:
    """The song's tempo (BPM) from ``start`` over at most :data:`TEMPO_SECONDS` (for ``loop_bars``); a ParamError
    when no beat is found."""
    from ..audio import analysis as audio

    seconds = TEMPO_SECONDS if max_seconds is None else min(TEMPO_SECONDS, max_seconds)
    probe = params.replace(loop_bars=None, loop_seconds=None, duration=seconds, speed_fpm="beat")
    beats = audio.analyze(song, probe, max_seconds=max_seconds).beats
    if beats is None or not beats.tempo_bpm > 0:
        raise ParamError("loop_bars: no beat found in the song, so no tempo; give loop_seconds instead")
    return float(beats.tempo_bpm)


def _staged_progress(
    progress: bool | ProgressFn, stage: StageFn | None, total: int, timings: Timings
) -> tuple[ProgressFn, list[Any]]:
    """A progress callback for :func:`write_video` that records, in ``timings``, when the first frames came
    (``compile``: the first batch's seconds, compiling included; ``first_batch``: its frames) and then draws the bar
    (``progress=True``; returned in the list, to close) or calls ``progress``. With ``stage``, the "compiling (the
    first batch)" stage starts here and ends at the first frames, and only then does the bar appear (the stage lines
    before it stay readable); without, the bar appears at once, as before."""
    what = "compiling (the first batch)"
    t = time.perf_counter()
    bars: list[Any] = []
    inner: list[ProgressFn | None] = []
    if stage is None:
        fn, bar = _progress_callback(progress, total)
        inner.append(fn)
        bars.extend([bar] if bar is not None else [])
    else:
        stage(what, None)

    def callback(done: int, n: int) -> None:
        if timings.compile is None:  # the first frames
            timings.compile, timings.first_batch = time.perf_counter() - t, done
            if stage is not None:
                stage(what, timings.compile)
                fn, bar = _progress_callback(progress, n)
                inner.append(fn)
                bars.extend([bar] if bar is not None else [])
        if inner[0] is not None:
            inner[0](done, n)

    return callback, bars


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


@dataclass(frozen=True)
class Written:
    """When :func:`write_video`'s first frames reached the encoder: ``time.perf_counter()`` and the process's CPU
    time (all threads) then; None when no frame did."""

    first_write: float | None = None
    first_write_cpu: float | None = None
    path: Path | None = None  # where the video went (a PNG sequence: its folder)


def write_video(
    out: str | os.PathLike[str],
    step: FrameStep,
    inputs: dict[str, np.ndarray],
    plan: EffectPlan,
    *,
    fps: Any,
    audio: Any = None,
    live: str | os.PathLike[str] | None = None,
    progress: bool | ProgressFn = True,
    encoding: dict[str, Any] | None = None,
) -> Written:
    """The writer loop of a render and of Deep Music Visualizer mode: every frame of ``inputs`` (per-frame arrays,
    leading axis N) through ``step`` (:func:`render_frames`: batch k+1 dispatched before batch k is pulled to the
    host) into an MP4 at ``out`` (:class:`~lsd_jax.media.video.VideoWriter`, fed on its own thread through a
    bounded queue, so memory stays flat whatever N), with ``audio`` muxed in and, with ``live``, a fragmented copy
    growing beside it. ``progress``: a bar (True), none (False) or a callback ``(done, N)``. ``encoding``: the
    writer's format settings (``codec``, ``quality``, ``lossless``, ``recipe``; default: by ``out``'s suffix).

    The MP4 appears at ``out`` only when complete. On any error, Ctrl-C or SIGTERM included, ffmpeg is stopped and
    its partial file and temporary soundtrack are removed; a file already at ``out`` is left as it was."""
    from ..media import video

    n = int(next(iter(inputs.values())).shape[0]) if inputs else 0
    callback, bar = _progress_callback(progress, n)
    try:
        with video.VideoWriter(out, fps=fps, size=step.size, audio=audio, live=live, **(encoding or {})) as writer:
            feeder = _WriterThread(writer)
            try:
                render_frames(step, inputs, plan, feeder.put, callback)
            finally:
                feeder.close()
    finally:
        if bar is not None:
            bar.close()
    return Written(feeder.first_write, feeder.first_write_cpu, writer.path)


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
    max_seconds: float | None = None,
    stage: StageFn | None = None,
    structure: Any = None,
    **kwargs: Any,
) -> RenderResult:
    """Render a music video of ``song``; returns a :class:`RenderResult` (``.path``: the MP4).

    ``style``: None/"default" (embedded CPPN), a catalogue name, a ``.pkl`` path, a Style, or a
    callable ``style(noise_batch, class_batch)`` (then give ``input_shape`` and
    ``num_possible_classes``). ``kwargs``: :class:`~lsd_jax.params.RenderParams` fields.
    ``progress``: True for a progress bar, False for none, or a callback ``(done, total)``.
    The output is written to a temporary file and renamed into place only when complete.
    ``live``: also write the encoded video, as it is made, into this fragmented MP4 (for playing
    while rendering; the output is unchanged, byte for byte; single process only).
    ``max_seconds``: refuse a song (or excerpt) longer than that, measured on what is decoded (see :func:`prepare`).
    ``stage``: told when each stage before the frames starts and ends (:data:`StageFn`): :func:`prepare`'s, then
    "compiling (the first batch)", which ends as the first frames are made; the progress bar appears only then.
    ``structure``: the song's sections and drops, for timelines keyed by them (see :func:`prepare`).
    Under ``jax.distributed`` (several processes), each process renders a contiguous range of
    frames and process 0 joins the segments without re-encoding.
    """
    from ..media import video

    t0 = time.perf_counter()
    params = render_params(params, **kwargs)
    # before any work: the format and its settings, and never over an input
    out = resolve_output(output, render_inputs(song, style, params), params.codec)
    fmt, _ = choose_format(out, params.codec)
    check_settings(fmt, params.quality, params.lossless)
    if jax.process_count() > 1 and fmt.name != "h264":
        raise ParamError(f"codec: a multi-process render writes H.264 MP4 only, not {fmt.name}")
    prep = prepare(
        song,
        style,
        params=params,
        input_shape=input_shape,
        num_possible_classes=num_possible_classes,
        progress=bool(progress),
        max_seconds=max_seconds,
        stage=stage,
        structure=structure,
    )
    from ..version import __version__

    recipe = recipe_text(make_recipe(params, song, style_fingerprint(style), version=__version__))
    soundtrack = prep.features.soundtrack  # decoded by the analysis (no second decode)
    n = prep.n_frames
    fps = prep.features.fps
    n_proc, proc = jax.process_count(), jax.process_index()
    first, last = proc * n // n_proc, (proc + 1) * n // n_proc

    t = time.perf_counter()
    target = out if n_proc == 1 else segment_path(out, proc)
    on_frames, bars = _staged_progress(progress, stage, last - first, prep.timings)
    try:
        written = write_video(
            target,
            prep.step,
            {k: v[first:last] for k, v in prep.inputs.items()},
            prep.plan,
            fps=fps,
            audio=soundtrack if n_proc == 1 and params.soundtrack else None,
            live=live if n_proc == 1 else None,
            progress=on_frames,
            encoding=dict(codec=params.codec, quality=params.quality, lossless=params.lossless, recipe=recipe),
        )
    finally:
        for bar in bars:
            bar.close()
    if n_proc == 1 and written.path is not None:
        out = written.path
    if written.first_write is not None:
        prep.timings.first_frame = written.first_write - t0
        prep.timings.first_frame_cpu = written.first_write_cpu
    if n_proc > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"lsd-jax segments of {out.name}")
        if proc == 0:
            segments = [segment_path(out, i) for i in range(n_proc)]
            video.join_segments(segments, out, fps=fps, audio=soundtrack if params.soundtrack else None)
            for seg in segments:
                seg.unlink(missing_ok=True)
        multihost_utils.sync_global_devices(f"lsd-jax joined {out.name}")
    timings = prep.timings
    timings.frames = time.perf_counter() - t
    timings.total = time.perf_counter() - t0
    timings.n_frames = n
    return RenderResult(out, n, float(fps), prep.size, timings, timings.tempo_bpm)


def style_fingerprint(style: Any) -> tuple[str, str | None]:
    """The style's name in a recipe and the sha256 of its weights: None for the embedded default or a Python style;
    for a catalogue style its recorded sha256, else its downloaded file's; for a file, the file's."""
    if style is None or (isinstance(style, str) and style == "default"):
        return "default", None
    if isinstance(style, (str, os.PathLike)):
        p = Path(os.fspath(style)).expanduser()
        if p.is_file():
            return stored_path(p), sha256_of(p)
        if p.exists():  # a checkpoint folder
            return stored_path(p), None
        from ..store import catalogue

        try:
            entry = catalogue.find_style(os.fspath(style))
        except LsdError:
            return os.fspath(style), None
        if entry.sha256:
            return entry.name, entry.sha256
        local = catalogue.local_file(entry)
        return entry.name, sha256_of(local) if local is not None else None
    return f"<python {getattr(style, 'name', type(style).__name__)}>", None


def from_recipe(
    source: str | os.PathLike[str], song: Any = None, style: Any = None, **changes: Any
) -> tuple[Any, Any, RenderParams]:
    """``(song, style, params)`` to render the take recorded in ``source`` again (a video made by lsd-jax, a PNG
    folder or a recipe ``.json``): the song and style from the recipe unless given, its files found in the working
    folder and checked against their sha256; ``changes``: parameters that override the recipe's. Pass the result
    to :func:`render` (``render(song, style, out, params=params)``)."""
    from ..version import __version__

    rec = read_recipe(source)
    if rec.version != __version__:
        logging.getLogger(__name__).warning(
            "the recipe was made by lsd-jax %s; this is %s: the video may differ", rec.version, __version__
        )
    if song is None:
        song = Path(rec.song)
        if not song.is_file():
            raise ParamError(f"song: {rec.song} (from the recipe) is not in the working folder {Path.cwd()}")
        if rec.song_sha256 is not None and sha256_of(song) != rec.song_sha256:
            raise ParamError(f"song: {rec.song} is not the recipe's song (its sha256 differs); give the song")
    if style is None:
        style = rec.style
        candidate = Path(rec.style)
        if rec.style_sha256 is not None and candidate.is_file():
            if sha256_of(candidate) != rec.style_sha256:
                raise ParamError(f"style: {rec.style} is not the recipe's style file (its sha256 differs)")
            style = candidate
        elif rec.style_sha256 is not None and (candidate.suffix or len(candidate.parts) > 1):
            raise ParamError(f"style: {rec.style} (from the recipe) is not in the working folder {Path.cwd()}")
    return song, style, make_params(rec.params, **changes)


def segment_path(out: Path, index: int) -> Path:
    """Where process ``index`` of a multi-process render writes its segment (beside the output)."""
    return out.with_name(f".{out.stem}.segment{index:03d}.mp4")


def warm_up(style: Any = None, *, params: RenderParams | None = None, seconds: float = 2.0, **kwargs: Any) -> float:
    """Compile, ahead of the first request, what renders and previews with these parameters run: a ``seconds``
    clip of the synthesised demo song goes through :func:`prepare` and one frame. The frame step for this style,
    output size, effects and batch is then compiled in this process (JAX's jit cache: the first preview or render
    reuses it) and in the persistent cache (the next process loads it); the audio and latents code paths are
    loaded too (the latents' scans compile again for each new song length). Returns the seconds it took.

    For servers: call it at launch, e.g. in a background thread, with the page's default parameters."""
    import tempfile

    from ..audio.demo_song import write_demo_song

    t = time.perf_counter()
    params = render_params(params, **{**kwargs, "start": 0.0, "duration": None})
    with tempfile.TemporaryDirectory(prefix="lsd-jax-warm-") as d:
        song = write_demo_song(Path(d) / "warm.wav", seconds=max(1.0, seconds))
        prepare(song, style, params=params, progress=False).frames([0])
    return time.perf_counter() - t


def format_size(fmt: str, short_side: int) -> tuple[int, int]:
    """(H, W) of an aspect ``fmt`` ("16:9", "9:16", "1:1") whose shorter side is ``short_side`` (both even):
    1080 → (1080, 1920), (1920, 1080), (1080, 1080)."""
    try:
        a, b = (int(x) for x in str(fmt).split(":"))
        if a <= 0 or b <= 0:
            raise ValueError
    except ValueError:
        raise ParamError(f'formats: {fmt!r} is not an aspect like "16:9", "9:16" or "1:1"') from None
    long = 2 * round(short_side * max(a, b) / min(a, b) / 2)
    return (short_side, long) if a >= b else (long, short_side)


def render_formats(
    song: str | os.PathLike[str],
    style: Any = None,
    *,
    formats: Any = ("16:9", "9:16", "1:1"),
    output: str | os.PathLike[str] = "lsd.mp4",
    params: RenderParams | None = None,
    progress: bool | ProgressFn = True,
    stage: StageFn | None = None,
    max_seconds: float | None = None,
    **kwargs: Any,
) -> list[RenderResult]:
    """One file per aspect in ``formats`` (e.g. ``output="song.mp4"`` → ``song.16x9.mp4``, ``song.9x16.mp4``,
    ``song.1x1.mp4``) from ONE audio analysis and one latent path (no second decode, no second projection),
    each frame generated at its own shape (``frame_fit``); shapes from the shorter side ``resolution``
    (default 1080): 1080 → 1920×1080, 1080×1920, 1080×1080. Every file has the song muxed in. ``max_seconds``:
    as in :func:`render`."""
    params = render_params(params, **kwargs)
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    if not formats:
        raise ParamError('formats: give at least one aspect, e.g. "16:9,9:16,1:1"')
    short = params.resolution or 1080
    sizes = [format_size(f, short) for f in formats]
    if len(set(sizes)) != len(sizes):
        raise ParamError(f"formats: {', '.join(map(str, formats))} name the same shape twice")
    base = resolve_output(output, render_inputs(song, style, params))
    outs = [base.with_name(f"{base.stem}.{f.replace(':', 'x')}{base.suffix}") for f in formats]
    for o in outs:
        resolve_output(o, render_inputs(song, style, params))  # each checked before any work
    (h0, w0), t0 = sizes[0], time.perf_counter()
    prep = prepare(
        song,
        style,
        params=params.replace(width=w0, height=h0),
        progress=bool(progress),
        stage=stage,
        max_seconds=max_seconds,
    )
    results = []
    for size, out in zip(sizes, outs, strict=True):
        if size == prep.size:
            step, plan = prep.step, prep.plan
        else:
            plan = plan_effects(params, size)
            step = build_frame_step(
                prep.style,
                size,
                plan,
                settings=render_settings(prep.params, prep.style),
                batch=params.batch_size,
                example=prep.inputs,
                compute_dtype=params.compute_dtype,
            )
        t = time.perf_counter()
        write_video(
            out,
            step,
            prep.inputs,
            plan,
            fps=prep.features.fps,
            audio=prep.features.soundtrack,
            progress=progress,
        )
        timings = dataclasses.replace(prep.timings)
        timings.frames = time.perf_counter() - t
        timings.total = time.perf_counter() - t0
        timings.n_frames = prep.n_frames
        results.append(RenderResult(out, prep.n_frames, float(prep.features.fps), size, timings, timings.tempo_bpm))
    return results
