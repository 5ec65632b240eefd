"""This machine's measured render speeds, and the render-time estimate made from them, for the web app and the CLI.

A :class:`SpeedBook` keeps, per *speed key* (style, output size, number format and what changes the compiled step:
effects, w control, StyleGAN3 transforms), the frames/s of the render loop and the first batch's extra time
(compiling), and the seconds of preparation (style, audio analysis, latents) per second of music;
:meth:`SpeedBook.estimate` turns them into the expected time of a render. The web app keeps one per app instance
(:mod:`lsd_jax.web.speed`: the line above its buttons); the CLI keeps one in a file (:func:`load_speeds`,
:func:`save_speeds`: ``cache_dir()/speeds.json``), so each render estimates from the ones before it.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from .paths import atomic_write, cache_dir


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
        self._startup_s: float | None = None  # a CLI process's start (importing JAX) before the render begins

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

    def record_startup(self, seconds: float) -> None:
        """A command's start before its render (the CLI: importing JAX) took ``seconds``."""
        if math.isfinite(seconds) and seconds >= 0:
            with self._lock:
                self._startup_s = seconds

    @property
    def prep_per_audio_s(self) -> float | None:
        """Seconds of preparation per second of music (None: not measured yet)."""
        with self._lock:
            return self._prep_per_audio_s

    @property
    def startup_s(self) -> float:
        """The last recorded start of a command (0 when none was)."""
        with self._lock:
            return self._startup_s or 0.0

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

    def to_json(self) -> dict:
        """The measurements (not what is compiled: that is this process's) as JSON data."""
        with self._lock:
            return {
                "speeds": [[list(k), t.frames_per_s, t.compile_s, t.source] for k, t in self._speed.items()],
                "prep_per_audio_s": self._prep_per_audio_s,
                "prep_source": self._prep_source,
                "startup_s": self._startup_s,
            }

    @classmethod
    def from_json(cls, data: dict) -> SpeedBook:
        """A book of the measurements in ``data`` (:meth:`to_json`); entries that do not read are skipped."""
        book = cls()
        for row in data.get("speeds", []):
            with contextlib.suppress(TypeError, ValueError):
                key, fps, compile_s, source = row
                if math.isfinite(float(fps)) and float(fps) > 0:
                    book._speed[tuple(key)] = Throughput(float(fps), max(0.0, float(compile_s)), str(source))
        prep = data.get("prep_per_audio_s")
        if isinstance(prep, (int, float)) and math.isfinite(prep) and prep >= 0:
            book._prep_per_audio_s, book._prep_source = float(prep), str(data.get("prep_source", ""))
        startup = data.get("startup_s")
        if isinstance(startup, (int, float)) and math.isfinite(startup) and startup >= 0:
            book._startup_s = float(startup)
        return book


def round_time(seconds: float) -> float:
    """5 s steps under two minutes, 15 s steps above (the estimate is not more precise than that)."""
    step = 5 if seconds < 120 else 15
    return max(step, step * round(seconds / step))


def speeds_path() -> Path:
    """Where the CLI keeps this machine's measured speeds."""
    return cache_dir() / "speeds.json"


def load_speeds(path: Path | None = None) -> SpeedBook:
    """The speeds measured on this machine by earlier renders (an empty book when there is no file yet, or it does
    not read: an estimate is a courtesy, never a reason to fail)."""
    try:
        data = json.loads(Path(path or speeds_path()).read_text())
        return SpeedBook.from_json(data if isinstance(data, dict) else {})
    except (OSError, ValueError):
        return SpeedBook()


def save_speeds(book: SpeedBook, path: Path | None = None) -> None:
    """Write ``book`` (atomically: a concurrent render reads the old file or the new one); a disk that refuses is
    ignored, for the same reason."""
    text = json.dumps(book.to_json()).encode()
    with contextlib.suppress(OSError):
        atomic_write(Path(path or speeds_path()), lambda f: f.write(text))


def measured_speed(marks: list[tuple[float, int]], t0: float) -> tuple[float, float] | None:
    """(steady frames/s, seconds before the frames at that rate: preparation and compiling) from progress ``marks``
    ``(time.perf_counter(), frames done)`` of a render that started at ``t0``; None with fewer than two marks."""
    if len(marks) < 2 or marks[-1][0] <= marks[0][0]:
        return None
    fps = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
    if not fps > 0:
        return None
    return fps, max(0.0, marks[0][0] - t0 - marks[0][1] / fps)
