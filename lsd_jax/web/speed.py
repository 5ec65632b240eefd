"""How fast this server renders: measured speeds and the render-time estimate shown before a click.

A :class:`SpeedBook` belongs to one app instance (no module state). It keeps, per *speed key*
(style, output size, number format and what changes the compiled step: effects, w control, StyleGAN3
transforms), the frames/s of the render loop and the first batch's extra time (compiling), measured
by a short calibration (:meth:`lsd_jax.web.jobs.Jobs.calibrate`), a preview or a render; and the
seconds of preparation (style, audio analysis, latents) per second of music. :meth:`estimate` turns
them into the expected time of a job; :func:`estimate_text` into the line above the buttons.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from dataclasses import dataclass

from .config import duration_text


def speed_key(style: str, params: object) -> tuple[Hashable, ...]:
    """What a render's speed depends on besides its length (``params``: a RenderParams)."""
    p = params
    return (
        style,
        p.resolution,
        p.width,
        p.height,
        p.compute_dtype,
        p.batch_size,
        p.contrast_on,
        p.flash_on,
        p.w_control,
        bool(p.rotate_react or p.translate_react),
    )


@dataclass(frozen=True)
class Throughput:
    frames_per_s: float  # steady frames/s of the render loop
    compile_s: float  # extra time of the first batch in a process (compiling the step)
    source: str  # "calibration", "preview" or "render"


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # expected wall time from the click to the finished video; None: not measured yet
    n_frames: int
    frames_per_s: float | None
    compiled: bool  # the step is already compiled in this process


class SpeedBook:
    """Measured speeds of this server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._speed: dict[tuple[Hashable, ...], Throughput] = {}
        self._compiled: set[tuple[Hashable, ...]] = set()
        self._prep_per_audio_s: float | None = None  # seconds of preparation per second of music
        self._prep_source = ""

    def get(self, key: tuple[Hashable, ...]) -> Throughput | None:
        with self._lock:
            return self._speed.get(key)

    def record(self, key: tuple[Hashable, ...], frames_per_s: float, compile_s: float | None, source: str) -> None:
        """A measurement: frames/s, and the first batch's extra time (None: it was compiled already)."""
        if not (math.isfinite(frames_per_s) and frames_per_s > 0):
            return
        with self._lock:
            old = self._speed.get(key)
            if old is not None and source == "calibration" and old.source == "render":
                return  # a whole render says more than a few batches
            if compile_s is None:
                compile_s = old.compile_s if old is not None else 0.0
            self._speed[key] = Throughput(frames_per_s, max(0.0, compile_s), source)
            self._compiled.add(key)

    def record_preparation(self, seconds: float, audio_seconds: float, source: str = "job") -> None:
        """Preparation (style, analysis, latents) took ``seconds`` for ``audio_seconds`` of music. A
        calibration's short synthetic song does not replace what a visitor's job measured."""
        if math.isfinite(audio_seconds) and audio_seconds > 0 and seconds >= 0:
            with self._lock:
                if source == "calibration" and self._prep_source == "job":
                    return
                self._prep_per_audio_s = seconds / audio_seconds
                self._prep_source = source

    def estimate(self, key: tuple[Hashable, ...], audio_seconds: float, fps: float) -> Estimate:
        n = max(1, math.ceil(audio_seconds * fps - 1e-9)) if math.isfinite(audio_seconds) else 0
        with self._lock:
            t = self._speed.get(key)
            compiled = key in self._compiled
            prep = (self._prep_per_audio_s or 0.0) * (audio_seconds if math.isfinite(audio_seconds) else 0.0)
        if t is None or not n:
            return Estimate(None, n, None, compiled)
        return Estimate(prep + (0.0 if compiled else t.compile_s) + n / t.frames_per_s, n, t.frames_per_s, compiled)

    def combine(self, estimates: list[Estimate], audio_seconds: float) -> Estimate:
        """One job's estimate from its files' (several formats): their times added, the preparation (one audio
        analysis, one latent path) counted once; frames/s over all the frames."""
        if len(estimates) == 1:
            return estimates[0]
        n = sum(e.n_frames for e in estimates)
        compiled = all(e.compiled for e in estimates)
        if any(e.seconds is None or not e.frames_per_s for e in estimates):
            return Estimate(None, n, None, compiled)
        with self._lock:
            prep = (self._prep_per_audio_s or 0.0) * (audio_seconds if math.isfinite(audio_seconds) else 0.0)
        seconds = sum(e.seconds for e in estimates) - prep * (len(estimates) - 1)  # type: ignore[misc]
        return Estimate(seconds, n, n / sum(e.n_frames / e.frames_per_s for e in estimates), compiled)  # type: ignore[operator]


def estimate_text(e: Estimate, audio_seconds: float, fps: float, style_note: str = "") -> str:
    """The estimate as one line of Markdown."""
    what = f"{e.n_frames} frames ({duration_text(round(audio_seconds, 1))} at {fps:g} fps)"
    if e.seconds is None:
        return (
            f"Render time: not measured yet for this style and size on this server; the first preview or "
            f"render measures it. {what}.{style_note}"
        )
    return (
        f"Estimated render time: **about {duration_text(_round_time(e.seconds))}** for {what}, at the "
        f"{e.frames_per_s:.1f} frames/s this server measured for this style and size.{style_note}"
    )


def _round_time(seconds: float) -> float:
    """5 s steps under two minutes, 15 s steps above (the estimate is not more precise than that)."""
    step = 5 if seconds < 120 else 15
    return max(step, step * round(seconds / step))


def time_left(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far (None before any frame)."""
    if done <= 0 or elapsed <= 0 or total <= done:
        return None if done <= 0 else 0.0
    return (total - done) * elapsed / done
