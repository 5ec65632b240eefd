"""This machine's measured render speeds, and the render-time estimate made from them: the one model for the web
app and the CLI.

A :class:`SpeedBook` keeps, per *speed key* (style, output size, number format and what changes the compiled step:
effects, w control, StyleGAN3 transforms), the frames/s of the render loop and the first batch's extra time
(compiling), a render after a render keeping the mean of both; and the preparation time (style, audio analysis,
latents) of the latest jobs, fitted as fixed seconds plus seconds per second of music (:func:`fit_preparation`).
:meth:`SpeedBook.estimate` turns them into the expected time of a render, in parts that add up
(:class:`Estimate`); :func:`queue_wait` into the wait for the jobs ahead. The web app keeps one book per app
instance (:mod:`lsd_jax.web.speed`: the line above its buttons, the progress line, the queue wait); the CLI keeps
one in a file (:func:`load_speeds`, :func:`save_speeds`: ``cache_dir()/speeds.json``), so each render estimates
from the ones before it."""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Callable, Hashable, Sequence
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
    """The expected time of one job, in parts that add up: ``seconds == prep_s + compile_s + n_frames /
    frames_per_s`` (a text shows the total and its parts, so one sentence's numbers agree)."""

    seconds: float | None  # expected wall time from the start of the work to the finished video; None: not measured
    n_frames: int
    frames_per_s: float | None
    compiled: bool  # the step is already compiled in this process
    prep_s: float = 0.0  # preparing: the style, the song's analysis, the latents
    compile_s: float = 0.0  # compiling the frame step (0 once compiled in this process)

    @property
    def frames_s(self) -> float:
        """Seconds of the frames alone (0 when not measured)."""
        return self.n_frames / self.frames_per_s if self.frames_per_s else 0.0

    def parts(self, duration: Callable[[float], str]) -> str:
        """The parts of the estimate in words, each rounded to whole seconds, e.g. "12 s preparing + 900 frames at
        30.0 frames/s (30 s)"; ``duration`` writes seconds (e.g. "2 min 5 s")."""
        bits = []
        if self.prep_s >= 0.5:
            bits.append(f"{duration(round(self.prep_s))} preparing")
        if self.compile_s >= 0.5:
            bits.append(f"{duration(round(self.compile_s))} compiling")
        bits.append(
            f"{self.n_frames} frames at {self.frames_per_s or 0:.1f} frames/s ({duration(round(self.frames_s))})"
        )
        return " + ".join(bits)


#: How many of the latest preparation times the model fits (older ones say less about this machine now).
PREP_SAMPLES = 6


def fit_preparation(samples: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """``(fixed seconds, seconds per second of music)`` of preparation, fitted to ``samples`` ``(seconds of
    music, seconds it took)`` by least squares, both parts kept >= 0; None without samples. Fewer than three
    samples, or one length only: all of it fixed (most of a short job's preparation is: loading the style,
    compiling the analysis; a share per second of music would make a long job's estimate minutes too long, as
    a 4 s calibration did)."""
    pts = [(x, y) for x, y in samples if math.isfinite(x) and math.isfinite(y) and x > 0 and y >= 0]
    if not pts:
        return None
    n = len(pts)
    mx, my = sum(x for x, _ in pts) / n, sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx < 1.0 or n < 3:  # (nearly) one length, or two (one noisy pair would make a wild slope): a constant
        return my, 0.0
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    if slope <= 0:  # longer songs did not take longer (noise, or a first job's compiling): a constant
        return my, 0.0
    fixed = my - slope * mx
    if fixed < 0:  # through the origin
        return 0.0, sum(x * y for x, y in pts) / sum(x * x for x, _ in pts)
    return fixed, slope


def queue_wait(running_left: Sequence[float], queued: Sequence[float], slots: int) -> float:
    """Seconds until a job that joins now gets one of ``slots`` work slots: the running jobs' ``running_left``
    (seconds left each) and the ``queued`` jobs' estimates, served in order, each by the first slot that frees."""
    free = sorted([max(0.0, t) for t in running_left] + [0.0] * max(0, slots - len(running_left)))
    for t in queued:
        free[0] += max(0.0, t)
        free.sort()
    return free[0]


class SpeedBook:
    """Measured speeds of this server (thread-safe): the one model every estimate comes from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._speed: dict[tuple[Hashable, ...], Throughput] = {}
        self._compiled: set[tuple[Hashable, ...]] = set()
        # (seconds of music, seconds of preparation) of the latest jobs, and of calibrations (used until a job ran)
        self._prep: dict[str, list[tuple[float, float]]] = {"job": [], "calibration": []}
        self._startup_s: float | None = None  # a CLI process's start (importing JAX) before the render begins

    def get(self, key: tuple[Hashable, ...]) -> Throughput | None:
        with self._lock:
            return self._speed.get(key)

    def record(self, key: tuple[Hashable, ...], frames_per_s: float, compile_s: float | None, source: str) -> None:
        """A measurement: frames/s, and the first batch's extra time (None: it was compiled already). A render
        after a render keeps the mean of both (the mean time per frame: a shared machine varies from job to job)."""
        if not (math.isfinite(frames_per_s) and frames_per_s > 0):
            return
        with self._lock:
            old = self._speed.get(key)
            if old is not None and source == "calibration" and old.source == "render":
                return  # a whole render says more than a few batches
            if old is not None and source == "render" and old.source == "render":
                frames_per_s = 2.0 / (1.0 / frames_per_s + 1.0 / old.frames_per_s)
                compile_s = old.compile_s if compile_s is None else (compile_s + old.compile_s) / 2
            if compile_s is None:
                compile_s = old.compile_s if old is not None else 0.0
            self._speed[key] = Throughput(frames_per_s, max(0.0, compile_s), source)
            self._compiled.add(key)

    def record_preparation(self, seconds: float, audio_seconds: float, source: str = "job") -> None:
        """Preparation (style, analysis, latents) took ``seconds`` for ``audio_seconds`` of music. Calibrations
        (a short synthetic song, in a cold process) count only until a visitor's job was measured."""
        if math.isfinite(audio_seconds) and audio_seconds > 0 and math.isfinite(seconds) and seconds >= 0:
            with self._lock:
                kept = self._prep["calibration" if source == "calibration" else "job"]
                kept.append((float(audio_seconds), float(seconds)))
                del kept[:-PREP_SAMPLES]

    def record_startup(self, seconds: float) -> None:
        """A command's start before its render (the CLI: importing JAX) took ``seconds`` (kept: the mean with
        the last one)."""
        if math.isfinite(seconds) and seconds >= 0:
            with self._lock:
                old = self._startup_s
                self._startup_s = seconds if old is None else (seconds + old) / 2

    def prep_seconds(self, audio_seconds: float) -> float | None:
        """Expected seconds of preparation for ``audio_seconds`` of music (None: not measured yet)."""
        with self._lock:
            fit = fit_preparation(self._prep["job"] or self._prep["calibration"])
        if fit is None:
            return None
        fixed, per_s = fit
        return fixed + per_s * (audio_seconds if math.isfinite(audio_seconds) else 0.0)

    @property
    def startup_s(self) -> float:
        """The recorded start of a command (0 when none was)."""
        with self._lock:
            return self._startup_s or 0.0

    def estimate(self, key: tuple[Hashable, ...], audio_seconds: float, fps: float) -> Estimate:
        """The expected time of rendering ``audio_seconds`` of music at ``fps`` with what ``key`` names: preparing
        (fitted to the latest jobs' lengths), compiling (unless compiled in this process) and the frames at the
        measured frames/s. The one estimate of the app's line, its progress, its queue wait and the CLI's."""
        n = max(1, math.ceil(audio_seconds * fps - 1e-9)) if math.isfinite(audio_seconds) else 0
        prep = self.prep_seconds(audio_seconds) or 0.0
        with self._lock:
            t = self._speed.get(key)
            compiled = key in self._compiled
        if t is None or not n:
            return Estimate(None, n, None, compiled)
        compile_s = 0.0 if compiled else t.compile_s
        return Estimate(prep + compile_s + n / t.frames_per_s, n, t.frames_per_s, compiled, prep, compile_s)

    def combine(self, estimates: list[Estimate], audio_seconds: float) -> Estimate:
        """One job's estimate from its files' (several formats): their times added, the preparation (one audio
        analysis, one latent path) counted once; frames/s over all the frames."""
        if len(estimates) == 1:
            return estimates[0]
        n = sum(e.n_frames for e in estimates)
        compiled = all(e.compiled for e in estimates)
        if any(e.seconds is None or not e.frames_per_s for e in estimates):
            return Estimate(None, n, None, compiled)
        prep = estimates[0].prep_s
        compile_s = sum(e.compile_s for e in estimates)
        frames_s = sum(e.frames_s for e in estimates)
        return Estimate(prep + compile_s + frames_s, n, n / frames_s, compiled, prep, compile_s)

    def to_json(self) -> dict:
        """The measurements (not what is compiled: that is this process's) as JSON data."""
        with self._lock:
            return {
                "speeds": [[list(k), t.frames_per_s, t.compile_s, t.source] for k, t in self._speed.items()],
                "prep": {k: [list(p) for p in v] for k, v in self._prep.items()},
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
        prep = data.get("prep")
        for source in ("job", "calibration"):
            for row in prep.get(source, []) if isinstance(prep, dict) else []:
                with contextlib.suppress(TypeError, ValueError):
                    x, y = row
                    book.record_preparation(float(y), float(x), source)
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
