"""Live mode: an audio stream in, frames out, paced by a clock.

:class:`LiveRenderer` owns the state at the edge (a render thread, the audio that arrived, the latest frame); the
maths in the middle is the offline renderer's own:

* audio blocks go through the causal analysis (:class:`lsd_jax.audio.stream.StreamAnalyzer`) as they arrive;
* a clock ticks at ``fps``. Each tick pools the columns that arrived since the previous tick (max for envelopes,
  mean for chroma), normalises them with the running min-max (:func:`lsd_jax.audio.envelopes.running_step`, as
  ``normalize="running"`` offline) and advances the latents one frame with the scan bodies of
  :mod:`lsd_jax.engine.latents` (:func:`~lsd_jax.engine.latents.advance`: one compiled call per frame);
* the frame step renders only the newest tick. When the step is slower than the clock, the ticks it missed are
  still stepped (the motion keeps the music's time) but not rendered: they are **dropped** and counted, and the next
  frame is again the newest tick, so the lag never grows. Styles that render any size (the embedded CPPN) also
  **drop resolution**: after a second with drops the renderer steps down a ladder of sizes (3/4, 1/2, 3/8, 1/4 of
  the requested side) and climbs back when the predicted time at the larger size fits comfortably.

What differs from an offline render, and why: the keyframe path is open-ended (keyframe k of its own key, one
every ``60 / speed_fpm`` seconds, so ``speed_fpm`` can change while playing); each stretch of ``4·fps`` frames
draws its own speed factors; class smoothing is a causal exponential average with time constant
``class_smooth_seconds / 2`` (the offline centred block mean would need the future);
``dominant_classes_first`` has no song to rank pitches on and is ignored. ``speed_fpm="beat"`` (``"bar"``: four
beats) follows the session's tempo instead of the song's beats: keyframe k lands on beat k of a :class:`Tempo` set
by tap tempo (OSC ``/lsd/tap``) or MIDI clock through :meth:`LiveRenderer.apply_changes`, eased between beats as
offline; until one is set the tempo is ``DEFAULT_TEMPO_BPM`` (120) with a beat at the session's start.
The reaction sliders (``LIVE_PARAMS``) can change at any time without recompiling anything: effects are
compiled once at strength 1 and their amplitude is scaled by the strength.
"""

from __future__ import annotations

import atexit
import collections
import math
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from ..audio.analysis import selected_part
from ..audio.envelopes import Running, running_init, running_step
from ..audio.stream import PARTS, Columns, StreamAnalyzer
from ..engine.latents import (
    LSD_REFERENCE_FPS,
    MotionFrame,
    advance,
    live_factor,
    live_keyframe,
    motion_controls,
    motion_init,
    motion_signs,
    pitch_classes,
    shuffle_rotation,
)
from ..engine.timeline import check_live, params_at
from ..errors import ParamError
from ..params import RenderParams, make_params

#: Parameters live mode takes (``lsd-jax live`` flags); the others need the whole song or are not supported.
SUPPORTED_PARAMS = (
    "pulse_react",
    "motion_react",
    "speed_fpm",
    "truncation",
    "contrast_strength",
    "flash_strength",
    "fps",
    "resolution",
    "start",
    "duration",
    "seed",
    "width",
    "height",
    "frame_fit",
    "frame_layer",
    "compute_dtype",
    "pulse_mode",
    "pulse_percussive",
    "pulse_harmonic",
    "motion_percussive",
    "motion_harmonic",
    "motion_randomness",
    "classes",
    "class_pitch_react",
    "class_smooth_seconds",
    "class_complexity",
    "class_shuffle_seconds",
    "class_shuffle_strength",
    "contrast_percussive",
    "flash_percussive",
    "truncation_psi",
    "truncation_cutoff",
    "noise_mode",
)
#: Parameters a live session may change while it plays (never recompiles); the web page shows them as sliders.
LIVE_PARAMS = (
    "pulse_react",
    "motion_react",
    "speed_fpm",
    "truncation",
    "motion_randomness",
    "class_pitch_react",
    "class_complexity",
    "class_smooth_seconds",
    "contrast_strength",
    "flash_strength",
    "seed",
)
LADDER = (1.0, 0.75, 0.5, 0.375, 0.25)  # fractions of the requested size tried when the step is too slow
DOWN_DROPS = 0.1  # step down when more than this fraction of the last second's ticks were dropped
UP_BUSY = 0.6  # step up when a frame at the larger size is predicted to take less than this fraction of a period
ADAPT_SECONDS = 1.0  # measure this long at a size before changing it again
BACKOFF_SECONDS = 4.0  # after stepping down from a size, wait this long (doubling each time) before trying it again
EMA = 0.2  # weight of the newest frame in the measured frame time
EXIT_JOIN_SECONDS = 60.0  # at exit, how long to wait for each of a session's threads (a compile in flight) to end
DEFAULT_TEMPO_BPM = 120.0  # speed_fpm="beat" before any tap or MIDI clock
TEMPO_RANGE = (20.0, 400.0)  # beats per minute a tempo may have
BEATS_PER_BAR = 4  # speed_fpm="bar" live: no song to find downbeats in, so 4/4 counted from the tempo's beat
TAP_RESET_S = 2.0  # a tap this long after the previous one starts a new count (slower than 30 BPM)
TAP_KEEP = 8  # taps a tempo is measured over
#: Keys of a change set (:meth:`LiveRenderer.apply_changes`) that are not render parameters: the tempo (beats per
#: minute), the session time (s, the ticks' axis ``tick / fps``) of one of its beats, and a style already loaded.
CONTROL_KEYS = ("tempo_bpm", "beat_time", "style")


@dataclass(frozen=True)
class Tempo:
    """A live session's beat grid: ``bpm`` beats per minute with a beat at session time ``beat_time`` (s)."""

    bpm: float = DEFAULT_TEMPO_BPM
    beat_time: float = 0.0

    def beats(self, t: float) -> float:
        """Beats from the grid's reference beat to session time ``t`` (negative before it)."""
        return (t - self.beat_time) * self.bpm / 60.0


class TapTempo:
    """Tap tempo: the beats per minute of the last taps (a least-squares line through up to ``TAP_KEEP`` of them:
    one late tap moves it little) and the time of the last tap. A tap more than ``TAP_RESET_S`` after the previous
    one starts a new count; a lone tap gives the phase only (``bpm`` None)."""

    def __init__(self) -> None:
        self.taps: collections.deque[float] = collections.deque(maxlen=TAP_KEEP)

    def tap(self, t: float) -> tuple[float | None, float]:
        """Record a tap at session time ``t``: (bpm or None, beat_time)."""
        if self.taps and not 0.0 < t - self.taps[-1] <= TAP_RESET_S:
            self.taps.clear()
        self.taps.append(t)
        if len(self.taps) < 2:
            return None, t
        y = np.asarray(self.taps)
        period = float(np.polyfit(np.arange(y.size), y, 1)[0])
        return float(np.clip(60.0 / period, *TEMPO_RANGE)), t


def clock_wait(clock: Callable[[], float], event: threading.Event, seconds: float) -> bool:
    """Wait ``seconds`` of ``clock``'s time or until ``event`` is set (True then). A real clock waits in real time; a
    clock with its own ``wait`` (a simulated one: time that moves only when every thread of the session waits, so
    that tests hold on a loaded machine) decides itself."""
    wait = getattr(clock, "wait", None)
    return bool(wait(event, seconds)) if wait is not None else event.wait(seconds)


@dataclass
class LiveFrame:
    """One rendered frame and what it showed."""

    seq: int  # rendered frames before this one
    tick: int  # the clock tick it shows (tick k is due at start + k / fps)
    image: np.ndarray  # (h, w, 3) uint8 at the current resolution
    t_due: float  # clock time of its tick
    t_done: float  # clock time it left the step
    features: dict[str, float]  # normalised pulse, motion, contrast, flash: the most of each over the ticks it
    # covers (its own and the dropped ones before it, whose hits its latents carry)
    dropped: int  # ticks stepped but not rendered just before this one
    audio_tag: float | None = None  # the tag of the newest audio block this frame has seen (see LiveRenderer.push)
    audio_time: float = 0.0  # stream time (s) of the newest audio this frame has seen
    pulse_time: float = 0.0  # stream time (s) of the column that gave its pulse (the loudest, over those ticks)


@dataclass
class LiveStats:
    """Counters of a live session (read :meth:`LiveRenderer.stats` for a consistent copy)."""

    ticks: int = 0  # clock ticks stepped
    frames: int = 0  # frames rendered
    dropped: int = 0  # ticks not rendered because the step was late
    size: tuple[int, int] = (0, 0)  # current rendered size
    step_ms: float = 0.0  # step time (EMA), ms
    lag_ms: float = 0.0  # last frame: done − due, ms
    resizes: int = 0  # resolution changes
    columns: int = 0  # analysis columns received
    audio_s: float = 0.0  # seconds of audio received
    sizes: dict[str, int] = field(default_factory=dict)  # frames rendered per size "HxW"


def ladder_sizes(size: tuple[int, int], any_size: bool) -> list[tuple[int, int]]:
    """The sizes tried, largest first: ``size`` and, for styles that render any size, even fractions of it
    (at least 32 px on the short side)."""
    if not any_size:
        return [size]
    out: list[tuple[int, int]] = []
    for f in LADDER:
        h, w = (max(2, int(round(v * f / 2)) * 2) for v in size)
        if min(h, w) >= min(32, min(size)) and (h, w) not in out:
            out.append((h, w))
    return out


class ResolutionPolicy:
    """Which rung of the size ladder to render at, from what the last frames cost.

    :meth:`observe` takes each rendered frame's time (its busy seconds: stepping the latents and the frame step)
    and the ticks dropped before it. Down one rung when more than ``DOWN_DROPS`` of the last ``ADAPT_SECONDS``'
    ticks were dropped; up one when at most half as many were (drops that a smaller size does not cure come from
    elsewhere: another process on the CPU) and the frame time scaled by the larger size's pixels is under
    ``UP_BUSY`` of a period. A size stepped down from is not retried for ``BACKOFF_SECONDS``, doubling each time,
    so a size that does not fit is not tried again and again. Changes are at least ``ADAPT_SECONDS`` apart."""

    def __init__(self, sizes: list[tuple[int, int]], fps: float):
        self.sizes, self.period = sizes, 1.0 / float(fps)
        self.level = 0
        self.busy: float | None = None
        self.window: collections.deque[tuple[float, int]] = collections.deque()  # (time, ticks dropped before)
        self.since: float | None = None  # when the current rung was taken (its first frame)
        self.blocked_until = [-math.inf] * len(sizes)
        self.backoff = [BACKOFF_SECONDS] * len(sizes)

    def observe(self, t: float, busy: float, dropped: int) -> int:
        """Record a frame done at clock time ``t``; return the rung for the next frames."""
        self.busy = busy if self.busy is None else (1 - EMA) * self.busy + EMA * busy
        self.since = t if self.since is None else self.since
        self.window.append((t, dropped))
        while self.window and self.window[0][0] < t - ADAPT_SECONDS:
            self.window.popleft()
        if len(self.sizes) < 2 or t - self.since < ADAPT_SECONDS:
            return self.level
        drops = sum(d for _, d in self.window)
        ticks = drops + len(self.window)
        level = self.level
        if drops > DOWN_DROPS * ticks and level + 1 < len(self.sizes):
            self.blocked_until[level] = t + self.backoff[level]
            self.backoff[level] *= 2
            level += 1
        elif drops <= DOWN_DROPS / 2 * ticks and level > 0 and t >= self.blocked_until[level - 1]:
            big, small = self.sizes[level - 1], self.sizes[level]
            if self.busy * (big[0] * big[1]) / (small[0] * small[1]) < UP_BUSY * self.period:
                level -= 1
        return level

    def moved(self, level: int, t: float) -> None:
        """The renderer switched to ``level`` at ``t`` (its step was ready)."""
        self.level, self.since, self.busy = level, t, None
        self.window.clear()


class LiveLatents:
    """The per-frame latents of a live session: the offline maths (:mod:`lsd_jax.engine.latents`), one frame at a
    time."""

    def __init__(self, z_dim: int, c_dim: int, params: RenderParams, fps: float):
        self.z_dim, self.c_dim, self.fps = int(z_dim), int(c_dim), float(fps)
        self.period = max(1, int(round(4 * fps)))  # frames per stretch of speed factors (as offline)
        self.phase = 0.0  # position on the keyframe path, in keyframes
        self.beat_grid: tuple[Any, ...] | None = None  # (tempo, mode) the beat offset was taken for
        self.beat_offset = 0  # keyframe index at the grid's beat 0 (the path's index continues across changes)
        self.params = params
        self.reseed(params)

    def reseed(self, params: RenderParams) -> None:
        self.key = jax.random.key(params.seed)
        self.state = motion_init(motion_signs(self.key, self.z_dim))
        self.keyframes: dict[int, np.ndarray] = {}
        self.factors: dict[int, np.ndarray] = {}
        self.v: Any = np.zeros(self.c_dim, np.float32)  # the class vector (before smoothing)
        self.smooth: np.ndarray | None = None
        self.classes = pitch_classes(params, self.c_dim) if self.c_dim else None
        self.params = params

    def _keyframe(self, k: int) -> np.ndarray:
        if k not in self.keyframes:
            if len(self.keyframes) > 8:
                self.keyframes.pop(min(self.keyframes))
            self.keyframes[k] = live_keyframe(self.key, k, self.z_dim)
        return self.keyframes[k]

    def _factor(self, seg: int, randomness: float) -> np.ndarray:
        key = (seg, randomness)
        if key not in self.factors:
            self.factors.clear()
            self.factors[key] = live_factor(self.key, seg, self.z_dim, randomness)
        return self.factors[key]

    def _beat_phase(self, tick: int, mode: str, tempo: Tempo) -> float:
        """The keyframe path's position on the beat grid at ``tick``: keyframe k on beat (or bar) k. When the grid
        or mode changes, the index goes on from the current keyframe (the picture does not jump back)."""
        per = BEATS_PER_BAR if mode == "bar" else 1
        b = tempo.beats(tick / self.fps) / per
        if self.beat_grid != (tempo, mode):
            self.beat_grid = (tempo, mode)
            self.beat_offset = int(math.floor(self.phase)) - int(math.floor(b))
        return self.beat_offset + b

    def step(
        self,
        tick: int,
        pulse: float,
        motion: float,
        chroma: np.ndarray,
        params: RenderParams,
        tempo: Tempo | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance one frame: ``z`` (D,) and ``c`` (C,) float32 (timelines at the tick's time, ``tick / fps``).
        ``tempo``: the beat grid of ``speed_fpm="beat"``/``"bar"`` (default: 120 BPM from the session's start)."""
        params = params_at(params, tick / self.fps)
        if params.seed != self.params.seed or params.classes != self.params.classes:
            self.reseed(params)
        self.params = params
        on_beat = isinstance(params.speed_fpm, str)
        if on_beat:
            self.phase = self._beat_phase(tick, params.speed_fpm, tempo or Tempo())
        else:
            self.beat_grid = None
        k = int(math.floor(self.phase))
        frac = self.phase - k
        if on_beat:  # raised-cosine ease as offline (audio.beats.interpolate_keyframes): it settles on each beat
            frac = 0.5 - 0.5 * math.cos(math.pi * frac)
        base = params.truncation * ((1.0 - frac) * self._keyframe(k) + frac * self._keyframe(k + 1))
        if not on_beat:
            self.phase += float(params.speed_fpm) / 60.0 / self.fps
        frame = MotionFrame(
            base.astype(np.float32),
            np.float32(pulse),
            np.float32(motion),
            self._factor(tick // self.period, params.motion_randomness),
        )
        controls = motion_controls(
            np.float32(params.pulse_react),
            np.float32(params.motion_react),
            np.float32(params.truncation),
            np.float32(self.fps),
        )
        classes = np.zeros(12, np.int32)
        if self.c_dim:
            classes = np.roll(self.classes, -int(shuffle_rotation(params, np.array([tick]), self.fps)[0] % 12))
        gain = np.float32(params.class_pitch_react * LSD_REFERENCE_FPS / self.fps)
        self.state, self.v, z = advance(
            self.state,
            self.v,
            frame,
            controls,
            np.asarray(chroma, np.float32),
            classes,
            gain,
            np.float32(params.class_complexity),
        )
        v = np.asarray(self.v)
        tau = params.class_smooth_seconds / 2.0
        a = math.exp(-1.0 / (self.fps * tau)) if tau > 0 else 0.0
        self.smooth = v if self.smooth is None else a * self.smooth + (1.0 - a) * v
        return np.asarray(z), self.smooth.astype(np.float32)


class _Pool:
    """Columns that arrived, stamped with their arrival time and the pusher's tag; taken per tick (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: collections.deque[tuple[float, Columns, Any]] = collections.deque()

    def put(self, t: float, cols: Columns, tag: Any = None) -> None:
        if cols.n:
            with self.lock:
                self.items.append((t, cols, tag))

    def take(self, until: float | None) -> list[tuple[Columns, Any]]:
        """The columns (and tags) that arrived up to ``until`` (all of them for None)."""
        out = []
        with self.lock:
            while self.items and (until is None or self.items[0][0] <= until):
                _, cols, tag = self.items.popleft()
                out.append((cols, tag))
        return out


@dataclass
class _Target:
    """What frames are rendered with: a style, its size ladder, the compiled steps and the latent state."""

    style: Any
    sizes: list[tuple[int, int]]
    latents: LiveLatents
    steps: dict[tuple[int, int], Any] = field(default_factory=dict)
    compiling: set[tuple[int, int]] = field(default_factory=set)
    level: int = 0


class LiveRenderer:
    """A live session: :meth:`push` audio as it arrives; frames appear at ``fps`` (:meth:`wait_frame`).

    ``style``: a :class:`~lsd_jax.styles.style.Style` or anything :func:`lsd_jax.styles.resolve.resolve_style` takes;
    ``params``:
    RenderParams (or keywords) — ``resolution`` / ``width`` / ``height`` give the size (default 256²), ``fps`` the
    clock (default 30 unless given). ``adapt``: drop resolution when the step is slow (styles that render any size).
    ``clock``: seconds, monotonic; a clock with a ``wait(event, seconds)`` method also paces the session's waits (the
    tests' simulated clock, see :func:`clock_wait`). Call :meth:`start`, then :meth:`close` (or use it as a context
    manager).
    """

    def __init__(
        self,
        style: Any = None,
        params: RenderParams | None = None,
        *,
        adapt: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        **kwargs: Any,
    ):
        from ..engine.step import output_size
        from ..styles.resolve import resolve_style

        kwargs.setdefault("fps", 30.0)
        if params is None and not any(k in kwargs for k in ("resolution", "width", "height")):
            kwargs["resolution"] = 256
        self.params = make_params(params, **kwargs) if params is not None else make_params(**kwargs)
        self._check(self.params)
        self.fps = float(self.params.fps)
        self.clock = clock
        self.adapt = adapt
        self._target = self._make_target(resolve_style(style, self.params, progress=False))
        self.size = output_size(self._target.style, self.params)  # the requested size (the ladder's top)
        self._tag: Any = None
        self._audio_time = 0.0
        self._pulse_time = 0.0
        self._lock = threading.Lock()  # params and stats
        self._audio_lock = threading.Lock()  # the analyzer
        self._frame_cv = threading.Condition()
        self._frame: LiveFrame | None = None
        self._listeners: list[Callable[[LiveFrame], None]] = []
        self._audio_listeners: list[Callable[[np.ndarray, int, float], None]] = []
        self._change_listeners: list[Callable[[float, dict[str, Any]], None]] = []
        self._pool = _Pool()
        self._analyzer: StreamAnalyzer | None = None
        self._norm: dict[str, Running] = {}
        self._raw = {"pulse": 0.0, "motion": 0.0, "contrast": 0.0, "flash": 0.0}
        self._chroma = np.zeros(12, np.float32)
        self._stats = LiveStats(size=self.size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # compiles and style loads in flight
        self.t0: float | None = None
        self.error: BaseException | None = None
        self.tempo = Tempo()  # the beat grid of speed_fpm="beat" (set through apply_changes)
        self._taps = TapTempo()
        self._styles: dict[str, Any] = {}  # styles this session has played, by name (switched to without loading)
        self._remember(self._target.style)

    # --- set-up -------------------------------------------------------------------------------------------

    @staticmethod
    def _check(params: RenderParams) -> None:
        check_live(params)  # a timeline keyed by seconds follows the session's clock; beats/bars/sections cannot
        if params.direct != "off":  # the app's default: a note, not a refusal (the form needs the whole song)
            warnings.warn(f"direct={params.direct!r} needs the whole song's form; live mode ignores it", stacklevel=3)
        if params.custom_effects:
            raise ParamError("custom_effects are not supported in live mode (contrast and flash are)")
        if params.chroma != "stft":
            raise ParamError(
                f"chroma={params.chroma!r} (librosa's chroma_cqt) needs the whole song; live mode "
                "computes the STFT chroma: leave chroma at 'stft'"
            )
        if params.w_control or params.rotate_react or params.translate_react:
            raise ParamError(
                "keyframes, band_react, noise_react, rotate_react and translate_react are not supported in live mode"
            )

    def _plan(self, size: tuple[int, int]) -> Any:
        """The render's effect plan with contrast and flash always on at strength 1: a frame's amplitudes carry the
        strengths (see ``_loop``), so the sliders change them without recompiling."""
        from ..engine.step import plan_effects

        return plan_effects(self.params.replace(contrast_strength=1.0, flash_strength=1.0), size)

    @property
    def style(self) -> Any:
        return self._target.style

    def _make_target(self, style: Any) -> _Target:
        from ..engine.step import output_size

        # as a render: the generator makes the aspect itself
        style = style.with_frame_fit(self.params.frame_fit, self.params.frame_layer)
        size = output_size(style, self.params)
        return _Target(
            style,
            ladder_sizes(size, style.native_size is None and self.adapt),
            LiveLatents(style.z_dim, style.c_dim, self.params, self.fps),
        )

    def _step_for(self, target: _Target, size: tuple[int, int]) -> Any:
        """The compiled step of ``target`` at ``size`` (built and warmed on first use)."""
        step = target.steps.get(size)
        if step is None:
            from ..engine.step import build_frame_step
            from ..styles.style import render_settings

            style = target.style
            zeros = self._inputs(
                style, np.zeros(style.z_dim, np.float32), np.zeros(style.c_dim, np.float32), (0.0, 0.0)
            )
            # one frame per step (the newest tick); refused before compiling if even that does not fit in memory
            step = build_frame_step(
                style,
                size,
                self._plan(size),
                settings=render_settings(self.params, style),
                batch=1,
                example=zeros,
                compute_dtype=self.params.compute_dtype,
            )
            np.asarray(step(zeros))
            target.steps[size] = step
        return step

    def _prepare_async(self, target: _Target, size: tuple[int, int]) -> None:
        """Compile ``target``'s step at ``size`` on a background thread (the clock keeps running meanwhile)."""
        if size in target.steps or size in target.compiling:
            return
        target.compiling.add(size)

        def work() -> None:
            try:
                self._step_for(target, size)
            except BaseException as e:  # surfaced by the render loop
                self.error = e
            finally:
                target.compiling.discard(size)

        self._spawn(work, "lsd-jax-live-compile")

    def set_style(self, style: Any, done: Callable[[BaseException | None], None] | None = None) -> None:
        """Switch to ``style`` (anything :func:`lsd_jax.styles.resolve.resolve_style` takes) once it is loaded and its
        step compiled, on a background thread; until then the current style plays on. ``done(error)`` is called
        at the end (error None on success)."""
        from ..styles.resolve import resolve_style

        def work() -> None:
            error: BaseException | None = None
            try:
                target = self._make_target(resolve_style(style, self.params, progress=False))
                self._step_for(target, target.sizes[0])
                target.latents.step(0, 0.0, 0.0, np.zeros(12, np.float32), self.params)  # compiles its steppers
                target.latents = LiveLatents(target.style.z_dim, target.style.c_dim, self.params, self.fps)
                self._target = target
                self._remember(target.style)
            except BaseException as e:
                error = e
            if done is not None:
                done(error)

        self._spawn(work, "lsd-jax-live-style")

    def _spawn(self, work: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=work, name=name, daemon=True)
        self._workers.add(thread)
        _OPEN.add(self)  # so that the interpreter's exit waits for it (see _stop_at_exit)
        thread.start()

    @staticmethod
    def _inputs(style: Any, z: np.ndarray, c: np.ndarray, amps: tuple[float, float]) -> dict[str, np.ndarray]:
        """One frame's step inputs (a batch of 1)."""
        out = {
            "z": np.asarray(z, np.float32)[None],
            "c": np.asarray(c, np.float32)[None],
            "amps": np.asarray([amps], np.float32),
        }
        if style.noise:  # noise models always take the gain (1: no noise_react live)
            out["noise_gain"] = np.ones(1, np.float32)
        return out

    def warm_up(self) -> None:
        """Compile and import everything the first frames need (the step at the starting size, the latent
        steppers, the analysis' modules), so the clock starts with nothing left to wait for."""
        StreamAnalyzer(48000).push(np.zeros(2048, np.float32))
        t = self._target
        self._step_for(t, t.sizes[t.level])
        probe = LiveLatents(t.style.z_dim, t.style.c_dim, self.params, self.fps)
        probe.step(0, 0.0, 0.0, np.zeros(12, np.float32), self.params)
        probe.step(1, 0.0, 0.0, np.zeros(12, np.float32), self.params)

    def start(self) -> LiveRenderer:
        """Warm up, then start the clock and the render thread."""
        self.warm_up()
        if len(self._target.sizes) > 1:
            self._prepare_async(self._target, self._target.sizes[1])
        self.t0 = self.clock()
        self._thread = threading.Thread(target=self._run, name="lsd-jax-live", daemon=True)
        _OPEN.add(self)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._frame_cv:
            self._frame_cv.notify_all()

    def _close_at_exit(self) -> None:
        """:meth:`close`, then wait for the render thread (a frame step still running on a loaded machine) and the
        compiles in flight too (the session is not used after)."""
        self.close()
        if self._thread is not None:
            self._thread.join(timeout=EXIT_JOIN_SECONDS)
        for thread in list(self._workers):
            thread.join(timeout=EXIT_JOIN_SECONDS)

    def __enter__(self) -> LiveRenderer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- inputs -------------------------------------------------------------------------------------------

    def push(self, samples: np.ndarray, sr: int, tag: Any = None) -> Columns:
        """Analyse an audio block (n,) or (n, channels) at ``sr`` Hz as it arrives (any thread). The stream's rate
        is fixed by its first block. ``tag``: anything (e.g. the sender's clock at the block's end); each frame
        carries the tag of the newest block it has seen (``LiveFrame.audio_tag``). Returns the columns completed."""
        t = self.clock()
        with self._audio_lock:  # not the render loop's lock: analysing never delays a frame
            if self._analyzer is None:
                self._analyzer = StreamAnalyzer(int(sr))
            elif int(sr) != self._analyzer.sr_in:
                raise ParamError(f"the audio stream changed its sample rate from {self._analyzer.sr_in} to {sr} Hz")
            cols = self._analyzer.push(samples)
            self._pool.put(t, cols, tag)
            with self._lock:
                self._stats.columns += cols.n
                self._stats.audio_s = self._analyzer.samples_in / self._analyzer.sr_in
        for fn in self._audio_listeners:
            fn(samples, int(sr), t)
        return cols

    def update(self, **changes: Any) -> RenderParams:
        """Change parameters while playing (validated by the parameter table; see ``LIVE_PARAMS``)."""
        self.apply_changes(changes)
        return self.params

    def apply_changes(self, changes: dict[str, Any]) -> None:
        """Apply one recorded or received change set (a take's entry, an OSC or MIDI message): the one door every
        control goes through, so a take replays exactly what the controls did. Keys: ``LIVE_PARAMS`` (checked by
        the parameter table) and ``CONTROL_KEYS``: ``tempo_bpm`` and ``beat_time`` (the beat grid of
        ``speed_fpm="beat"``, see :class:`Tempo`) and ``style`` (the name of a style this session has played,
        :meth:`loaded_styles`). All are checked before any applies; a ParamError names the first bad one."""
        changes = dict(changes)
        bad = sorted(set(changes) - set(LIVE_PARAMS) - set(CONTROL_KEYS))
        if bad:
            raise ParamError(
                f"{', '.join(bad)} cannot change during a live session (these can: {', '.join(LIVE_PARAMS)})"
            )
        values = {k: v for k, v in changes.items() if k in LIVE_PARAMS}
        style = None
        if "style" in changes:
            name = str(changes["style"])
            style = self._styles.get(name)
            if style is None:
                raise ParamError(
                    f"style {name!r} is not loaded in this session (loaded: {', '.join(self.loaded_styles())}); "
                    "load it from the page first"
                )
        with self._lock:
            tempo = self.tempo
            bpm = changes.get("tempo_bpm", tempo.bpm)
            beat = changes.get("beat_time", tempo.beat_time)
            lo, hi = TEMPO_RANGE
            if isinstance(bpm, bool) or not isinstance(bpm, (int, float)) or not lo <= bpm <= hi:
                raise ParamError(f"tempo_bpm must be between {TEMPO_RANGE[0]:g} and {TEMPO_RANGE[1]:g}, got {bpm!r}")
            if isinstance(beat, bool) or not isinstance(beat, (int, float)) or not math.isfinite(beat):
                raise ParamError(f"beat_time must be a number of seconds, got {beat!r}")
            params = make_params(self.params, **values) if values else self.params
            self._check(params)
            self.params = params
            self.tempo = Tempo(float(bpm), float(beat)) if (bpm, beat) != (tempo.bpm, tempo.beat_time) else tempo
        if style is not None and style is not self.style:
            self.set_style(style)
        self._changed(changes)

    def session_time(self) -> float:
        """Seconds since the clock started (the ticks' axis, ``tick / fps``; 0 before :meth:`start`)."""
        return 0.0 if self.t0 is None else self.clock() - self.t0

    def tap(self) -> Tempo:
        """Tap tempo (now): the taps so far set the tempo and put a beat on this tap (one tap: the phase only)."""
        bpm, beat = self._taps.tap(self.session_time())
        self.apply_changes({"beat_time": beat} if bpm is None else {"tempo_bpm": round(bpm, 3), "beat_time": beat})
        return self.tempo

    def _remember(self, style: Any) -> None:
        self._styles[style.name] = style
        if style.name == "cppn":  # the default style: its page and flag name
            self._styles["default"] = style

    def loaded_styles(self) -> list[str]:
        """Names of the styles this session has played (a ``style`` change switches among them)."""
        return sorted(self._styles)

    def _changed(self, changes: dict[str, Any]) -> None:
        t = self.clock()
        for fn in self._change_listeners:
            fn(t, dict(changes))

    def add_listener(self, fn: Callable[[LiveFrame], None]) -> None:
        """Call ``fn(frame)`` on the render thread after each frame (keep it quick: hand off to a queue)."""
        self._listeners.append(fn)

    def add_change_listener(self, fn: Callable[[float, dict[str, Any]], None]) -> None:
        """Call ``fn(clock_time, changes)`` after each accepted change (:meth:`update`, :meth:`apply_changes`), on
        the changing thread: takes record them, MIDI learn watches them."""
        self._change_listeners.append(fn)

    def add_audio_listener(self, fn: Callable[[np.ndarray, int, float], None]) -> None:
        """Call ``fn(samples, sr, arrival_time)`` with each audio block pushed (on the pushing thread)."""
        self._audio_listeners.append(fn)

    # --- outputs ------------------------------------------------------------------------------------------

    def wait_frame(self, after: int = -1, timeout: float = 1.0) -> LiveFrame | None:
        """The newest frame once its ``seq`` is greater than ``after`` (None after ``timeout`` s or on close)."""
        deadline = time.monotonic() + timeout
        with self._frame_cv:
            while (self._frame is None or self._frame.seq <= after) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._frame_cv.wait(left)
            return self._frame if self._frame is not None and self._frame.seq > after else None

    def stats(self) -> LiveStats:
        with self._lock:
            s = LiveStats(**{**self._stats.__dict__, "sizes": dict(self._stats.sizes)})
        return s

    # --- the clock ------------------------------------------------------------------------------------------

    def _features(self, taken: list[tuple[Columns, Any]], params: RenderParams) -> dict[str, float]:
        """Pool one tick's columns (held from the previous tick when none arrived) and normalise them."""
        cols = [c for c, _ in taken]
        tags = [t for _, t in taken if t is not None]
        if tags:
            self._tag = tags[-1]
        if cols:
            self._audio_time = float(cols[-1].end[-1])
            loud = np.concatenate([c.loudness for c in cols], axis=1)
            onset = np.concatenate([c.onset for c in cols], axis=1)
            p_part = PARTS.index(selected_part(params.pulse_percussive, params.pulse_harmonic))
            m_part = PARTS.index(selected_part(params.motion_percussive, params.motion_harmonic))
            pulse = (onset if params.pulse_mode == "onset" else loud)[p_part]
            self._pulse_time = float(np.concatenate([c.end for c in cols])[int(np.argmax(pulse))])
            self._raw = {
                "pulse": float(pulse.max()),
                "motion": float(loud[m_part].max()),
                "contrast": float(loud[2 if params.effect_percussive("contrast") else 0].max()),
                "flash": float(loud[2 if params.effect_percussive("flash") else 0].max()),
            }
            chroma = np.concatenate([c.chroma for c in cols], axis=1)
            self._chroma = chroma.mean(axis=1).astype(np.float32)
        out = {}
        for name, x in self._raw.items():
            state = self._norm.get(name)
            if state is None:
                state = running_init(x)
            self._norm[name], out[name] = running_step(state, x, 1.0 / self.fps)
        return out

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # surfaced through .error; the session stops
            self.error = e
            self._stop.set()
            with self._frame_cv:
                self._frame_cv.notify_all()

    def _loop(self) -> None:
        assert self.t0 is not None
        period = 1.0 / self.fps
        target = self._target
        policy = ResolutionPolicy(target.sizes, self.fps)
        last, seq = -1, 0
        while not self._stop.is_set():
            now = self.clock()
            due = int(math.floor((now - self.t0) * self.fps))
            if due <= last:
                clock_wait(self.clock, self._stop, max(0.0, self.t0 + (last + 1) * period - self.clock()))
                continue
            if self._target is not target:  # a new style is ready
                target = self._target
                policy = ResolutionPolicy(target.sizes, self.fps)
            with self._lock:
                params = self.params
            covered: dict[str, float] = {}
            pulse_time = self._pulse_time
            for k in range(last + 1, due + 1):  # every tick is stepped; only the newest is rendered
                feats = self._features(self._pool.take(None if k == due else self.t0 + k * period), params)
                z, c = target.latents.step(k, feats["pulse"], feats["motion"], self._chroma, params, self.tempo)
                if feats["pulse"] >= covered.get("pulse", -1.0):
                    pulse_time = self._pulse_time
                covered = {n: max(v, covered.get(n, v)) for n, v in feats.items()}
            dropped = due - last - 1
            last = due
            size = target.sizes[target.level]
            step = target.steps.get(size) or self._step_for(target, size)
            at = params_at(params, due * period)  # the strengths at the rendered tick
            amps = (
                feats["contrast"] * at.effect_strength("contrast") if params.contrast_on else 0.0,
                feats["flash"] * at.effect_strength("flash") if params.flash_on else 0.0,
            )
            image = np.asarray(step(self._inputs(target.style, z, c, amps)))[0]
            t_done = self.clock()
            frame = LiveFrame(
                seq,
                due,
                image,
                self.t0 + due * period,
                t_done,
                covered,
                dropped,
                self._tag,
                self._audio_time,
                pulse_time,
            )
            seq += 1
            level = policy.observe(t_done, t_done - now, dropped)
            with self._lock:
                s = self._stats
                s.ticks, s.frames, s.dropped = due + 1, seq, s.dropped + dropped
                s.size, s.step_ms, s.lag_ms = size, 1000 * (policy.busy or 0.0), 1000 * (t_done - frame.t_due)
                key = f"{size[0]}x{size[1]}"
                s.sizes[key] = s.sizes.get(key, 0) + 1
            with self._frame_cv:
                self._frame = frame
                self._frame_cv.notify_all()
            for fn in self._listeners:
                fn(frame)
            if level != target.level:
                if target.sizes[level] in target.steps:
                    target.level = level
                    policy.moved(level, t_done)
                    with self._lock:
                        self._stats.resizes += 1
                    if level + 1 < len(target.sizes):
                        self._prepare_async(target, target.sizes[level + 1])
                else:
                    self._prepare_async(target, target.sizes[level])
            if self.error is not None:
                raise self.error


class LiveRecorder:
    """Records what a :class:`LiveRenderer` shows, with the audio it analysed, into an MP4 at ``path``.

    Frames are upscaled to the session's requested size; a dropped tick repeats the frame that was on screen, so
    the video keeps the clock's time; the audio is placed so that its sample heard at clock time t plays at video
    time ``t − start``. The MP4 is written beside ``path`` and renamed into place by :meth:`close`."""

    def __init__(self, renderer: LiveRenderer, path: Any, *, preset: str = "ultrafast"):
        import queue
        import tempfile
        from pathlib import Path

        from ..media.video import VideoWriter

        self.renderer, self.path = renderer, Path(path).expanduser()
        self.size = renderer.size
        self._dir = tempfile.TemporaryDirectory(prefix="lsd-jax-live-")
        self._video = Path(self._dir.name) / "video.mp4"
        self._writer = VideoWriter(self._video, fps=renderer.fps, size=self.size, preset=preset)
        self._queue: queue.Queue[LiveFrame | None] = queue.Queue(maxsize=256)
        self._audio: list[np.ndarray] = []
        self._audio_sr = 0
        self._audio_start: float | None = None
        self._last: np.ndarray | None = None
        self.frames_written = 0
        self.last_tick: int | None = None  # when set, later frames are not recorded (the end of a played file)
        self.lost = 0  # frames the encoder could not keep up with (repeated instead)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lsd-jax-live-record", daemon=True)
        self._thread.start()
        renderer.add_listener(self._on_frame)
        renderer.add_audio_listener(self._on_audio)

    def _on_frame(self, frame: LiveFrame) -> None:
        try:
            self._queue.put_nowait(frame)
        except Exception:
            self.lost += 1

    def _on_audio(self, samples: np.ndarray, sr: int, t: float) -> None:
        x = np.asarray(samples, np.float32)
        x = x.mean(axis=1) if x.ndim == 2 else x
        if self._audio_start is None:
            self._audio_start, self._audio_sr = t - x.shape[0] / sr, int(sr)
        self._audio.append(x.copy())

    def _fit(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] == self.size:
            return image
        from PIL import Image

        return np.asarray(Image.fromarray(image).resize(self.size[::-1], Image.BILINEAR))

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self.error is not None or (self.last_tick is not None and frame.tick > self.last_tick):
                continue
            try:
                image = self._fit(frame.image)
                # the ticks before this frame that were not rendered showed the previous frame
                missing = frame.tick - self.frames_written
                if self._last is not None and missing > 0:
                    self._writer.write(np.repeat(self._last[None], missing, axis=0))
                    self.frames_written += missing
                self._writer.write(image)
                self.frames_written += 1
                self._last = image
            except BaseException as e:  # reported by close()
                self.error = e

    def close(self) -> Any:
        """Finish the recording: the MP4's path (None when nothing was shown)."""
        from ..media.video import join_segments

        self._queue.put(None)
        self._thread.join()
        try:
            self._writer.close()
            if self.error is not None:
                raise self.error
            if self.frames_written == 0:
                return None
            audio = None
            if self._audio:
                y = np.concatenate(self._audio)
                start = self.renderer.t0 if self.renderer.t0 is not None else self._audio_start
                lead = int(round((self._audio_start - start) * self._audio_sr))
                y = np.concatenate([np.zeros(lead, np.float32), y]) if lead > 0 else y[-lead:]
                # as long as the video: cut, or padded with silence where the audio came late or stopped early (a
                # feeder behind the clock on a loaded machine, a session stopped mid-block)
                n = int(round(self.frames_written / self.renderer.fps * self._audio_sr))
                y = np.concatenate([y[:n], np.zeros(max(0, n - y.size), np.float32)])
                audio = (y, self._audio_sr) if y.size else None
            return join_segments([self._video], self.path, fps=self.renderer.fps, audio=audio)
        finally:
            self._dir.cleanup()


class FileFeeder:
    """Plays an audio file into a :class:`LiveRenderer` in real time: block by block, each pushed when its last
    sample is due by the renderer's clock. ``done`` is set at the end (or on :meth:`stop`)."""

    def __init__(
        self,
        renderer: LiveRenderer,
        path: Any,
        *,
        block_s: float = 0.01,
        start: float = 0.0,
        duration: float | None = None,
    ):
        from ..media.decode import read_audio

        self.renderer = renderer
        self.samples, self.sr = read_audio(path, start=start, duration=duration)
        self.block = max(1, int(round(block_s * self.sr)))
        self.done = threading.Event()
        self.started = threading.Event()
        self._start_lock = threading.Lock()
        self.t_start: float | None = None
        self.pushed: list[tuple[int, float]] = []  # (first sample, clock time pushed) per block
        self._thread = threading.Thread(target=self._run, name="lsd-jax-live-feed", daemon=True)

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.sr

    def start(self) -> FileFeeder:
        """Start playing (once; later calls do nothing)."""
        with self._start_lock:
            if not self._thread.is_alive() and not self.started.is_set():
                _OPEN.add(self)
                self._thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _close_at_exit(self) -> None:
        self.stop()

    def _run(self) -> None:
        clock = self.renderer.clock
        self.t_start = clock()
        self.started.set()
        n = self.samples.shape[0]
        for a in range(0, n, self.block):
            b = min(n, a + self.block)
            wait = self.t_start + b / self.sr - clock()
            if wait > 0 and clock_wait(clock, self.done, wait):
                return
            self.pushed.append((a, clock()))
            self.renderer.push(self.samples[a:b], self.sr)
        self.done.set()


#: Renderers and feeders whose threads may still run (weakly held: a session that is gone needs no stopping).
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()


@atexit.register
def _stop_at_exit() -> None:
    """Stop every live session's threads before the interpreter finalises: a daemon thread still inside XLA (a frame
    step, a compile) or the resampler then aborts the whole process (SIGABRT, exit status 134), e.g. when
    ``lsd-jax live --input`` refuses its file after the session started (issue 29). Feeders first: they push into
    renderers."""
    for obj in sorted(_OPEN, key=lambda o: isinstance(o, LiveRenderer)):
        try:
            obj._close_at_exit()
        except Exception:  # exiting anyway: stop the others
            pass
