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


def make_frame_step(style: Style, size: tuple[int, int], plan: EffectPlan) -> Callable[..., Array]:
    """The compiled step ``(variables, z (B, D), c (B, C), amps (B, E)) -> uint8 (B, H, W, 3)``.

    For a host (NumPy) style only the post-processing is compiled.
    """
    if style.info.get("host"):
        post = jax.jit(lambda images, amps: to_uint8_frames(images, size, plan, amps))

        def host_step(variables: Any, z: Array, c: Array, amps: Array) -> Array:
            return post(jnp.asarray(style.apply(variables, z, c, size)), amps)

        return host_step

    def step(variables: Any, z: Array, c: Array, amps: Array) -> Array:
        return to_uint8_frames(style.apply(variables, z, c, size), size, plan, amps)

    return jax.jit(step)


def auto_batch_size(size: tuple[int, int]) -> int:
    """Frames per step: big enough to amortise dispatch, small enough to stay in cache."""
    pixels = size[0] * size[1]
    return int(max(1, min(32, 2**21 // pixels)))


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


def render_frames(
    style: Style,
    z: np.ndarray,
    c: np.ndarray,
    amps: np.ndarray,
    size: tuple[int, int],
    plan: EffectPlan,
    batch_size: int,
    sink: Callable[[np.ndarray], None],
    progress: ProgressFn | None = None,
) -> None:
    """Render every frame and hand uint8 batches to ``sink`` in order.

    The last batch is padded (so nothing recompiles) and trimmed before ``sink``. Batch k+1 is
    dispatched before batch k is pulled to the host, so device and host overlap.
    """
    n = z.shape[0]
    step = make_frame_step(style, size, plan)
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

    for start, stop in iter_batches(n, batch_size):
        args = (_pad(z[start:stop], batch_size), _pad(c[start:stop], batch_size),
                _pad(amps[start:stop], batch_size))
        current = (step(style.variables, *args), stop - start)
        if pending is not None:
            flush(pending)
        pending = current
    if pending is not None:
        flush(pending)


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


LAST_TIMINGS = Timings()


def render(
    song: str | os.PathLike[str],
    style: Any = None,
    output: str | os.PathLike[str] = "lsd.mp4",
    *,
    progress: bool | ProgressFn = True,
    input_shape: int | None = None,
    num_possible_classes: int | None = None,
    params: RenderParams | None = None,
    **kwargs: Any,
) -> Path:
    """Render a music video of ``song`` and return the path of the MP4.

    ``style``: None/"default" (embedded CPPN), a catalogue name, a ``.pkl`` path, a Style, or a
    callable ``style(noise_batch, class_batch)`` (then give ``input_shape`` and
    ``num_possible_classes``). ``kwargs``: :class:`~lsd_jax.params.RenderParams` fields.
    ``progress``: True for a progress bar, False for none, or a callback ``(done, total)``.
    The output is written to a temporary file and renamed into place only when complete.
    """
    from . import audio, latents, video

    t0 = time.perf_counter()
    params = make_params(params, **kwargs) if params is not None else make_params(**kwargs)
    out = resolve_output(output)
    timings = Timings()
    style_obj = resolve_style(style, params, input_shape=input_shape, num_possible_classes=num_possible_classes,
                              progress=bool(progress))
    timings.style = time.perf_counter() - t0

    t = time.perf_counter()
    feats = audio.analyze(song, params)
    soundtrack = audio.load_output_audio(song, params)
    timings.audio = time.perf_counter() - t

    t = time.perf_counter()
    lat = latents.make_latents(feats.pulse, feats.motion, feats.chroma, params, fps=feats.fps,
                               z_dim=style_obj.z_dim, c_dim=style_obj.c_dim)
    timings.latents = time.perf_counter() - t

    size = output_size(style_obj, params)
    plan = plan_effects(params, size)
    amps = effect_amplitudes(feats)
    batch = params.batch_size or auto_batch_size(size)
    n = feats.n_frames

    t = time.perf_counter()
    bar = None
    callback: ProgressFn | None
    if callable(progress):
        callback = progress
    elif progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="frame", desc="Rendering", dynamic_ncols=True)

        def callback(done: int, total: int) -> None:
            bar.update(done - bar.n)
    else:
        callback = None
    try:
        with video.VideoWriter(out, fps=feats.fps, size=size, audio=soundtrack) as writer:
            feeder = _WriterThread(writer)
            try:
                render_frames(style_obj, lat.z, lat.c, amps, size, plan, batch, feeder.put, callback)
            finally:
                feeder.close()
    finally:
        if bar is not None:
            bar.close()
    timings.frames = time.perf_counter() - t
    timings.total = time.perf_counter() - t0
    timings.n_frames = n
    LAST_TIMINGS.__dict__.update(timings.__dict__)
    return out
