"""The app's work, without Gradio: validate a request, preview it, render it.

* :func:`prepare_job` turns what the page sends (a song, a style, stems and the parameters as
  widgets hold them) into a validated :class:`Job`, or raises an :class:`~lsd_jax.errors.LsdError`;
* :func:`preview_job` renders a few stills at the loudest moments through the *same* compiled
  frame step as the full render, from latents computed over the whole excerpt, so the full render
  with the same seed and parameters contains exactly these frames;
* :func:`render_job` renders the MP4 into a given folder, reporting real frames (and, for playing
  while rendering, writing a live copy beside it); with several formats ticked, one file per aspect
  from one render (:func:`lsd_jax.engine.pipeline.render_formats`);
* :func:`python_snippet` writes the ``lsd_jax.render(...)`` call that reproduces the video;
* :func:`~lsd_jax.audio.excerpt.loudest_stretch` finds where the page's default excerpt starts;
* :class:`Jobs` is what one app instance owns: its config, its per-request folders
  (:class:`Workdirs`: a failed request's folder goes at once, a finished one after a while, all at
  :meth:`Jobs.close`, and those of app processes that died at :meth:`Jobs.start`), the visitors'
  running jobs (:class:`Run`: each in its own thread, cancelled between batches; ``cfg.concurrency`` at work at
  once, a cancelled one holding its work slot until its work has stopped, its conversion child killed; at most
  ``cfg.per_client`` per visitor), the bounded upload analysis (:meth:`Jobs.excerpt_start`), the live channels
  of play-while-rendering (:class:`~lsd_jax.web.playback.LiveChannels`) and the speeds this server
  measured (:class:`~lsd_jax.web.speed.SpeedBook`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..audio.excerpt import loudest_stretch
from ..engine.preview import Preview, preview_of
from ..errors import AudioError, ParamError
from ..media.decode import audio_length
from ..media.formats import FORMATS
from ..params import RenderParams, Timeline, make_params
from ..store import sandbox
from ..store.speeds import measured_speed, queue_wait
from .config import MAX_APP_FPS, AppConfig, duration_text
from .door import load_visitor_style, visitor_style
from .form import BASIC_NAMES, PAGE_ONLY, STEMS, formats_from_ui, params_from_ui
from .playback import LiveChannels
from .speed import Estimate, SpeedBook, Throughput, speed_key

log = logging.getLogger("lsd_jax.web")
ProgressFn = Callable[[int, int], None]
ROOT_PREFIX = "lsd-jax-app-"
OWNER_FILE = "owner.pid"
SLOT_POLL_S = 0.1  # how often a job waiting for a work slot looks whether it was cancelled
ANALYSIS_AT_ONCE = 1  # uploads analysed at once (the page's excerpt); each decodes the song
ANALYSIS_WAIT_S = 30.0  # an upload's analysis waits this long for its turn, then the page keeps its values


# --------------------------------------------------------------------------------------------------
# Per-request temporary folders


class Workdirs:
    """Per-request temporary folders under one root.

    A failed request's folder is deleted at once; a finished one after ``keep`` seconds (by then
    Gradio has copied the video into its own cache, which ``delete_cache`` cleans); all at
    :meth:`close` (and at exit, should close never come).
    """

    def __init__(self, keep: float = 120.0, parent: str | os.PathLike[str] | None = None):
        self.keep = keep
        self.parent = parent
        self._root: Path | None = None
        self._finished: dict[Path, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None or not self._root.is_dir():
                if self.parent is not None:
                    Path(self.parent).mkdir(parents=True, exist_ok=True)
                self._root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=self.parent))
                (self._root / OWNER_FILE).write_text(str(os.getpid()))
                atexit.register(shutil.rmtree, self._root, True)
            return self._root

    def sweep_orphans(self) -> list[Path]:
        """Delete the roots that app processes which died (no clean shutdown) left in the parent
        folder: those whose owner process is gone. Returns them."""
        parent = Path(self.parent) if self.parent is not None else Path(tempfile.gettempdir())
        gone = []
        for d in parent.glob(ROOT_PREFIX + "*"):
            try:
                pid = int((d / OWNER_FILE).read_text())
            except (OSError, ValueError):
                continue  # not ours to judge (an older layout, or being created)
            if pid != os.getpid() and not _alive(pid):
                shutil.rmtree(d, ignore_errors=True)
                gone.append(d)
        return gone

    def new(self) -> Path:
        self.sweep()
        return Path(tempfile.mkdtemp(prefix="req-", dir=self.root))

    def finish(self, path: Path) -> None:
        with self._lock:
            self._finished[path] = time.monotonic()

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        with self._lock:
            self._finished.pop(path, None)

    def sweep(self, now: float | None = None) -> None:
        """Delete the finished folders older than ``keep`` seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [p for p, t in self._finished.items() if now - t >= self.keep]
            for p in old:
                del self._finished[p]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)

    def start_sweeper(self, interval: float = 60.0) -> None:
        """Sweep every ``interval`` seconds in a daemon thread, until :meth:`close`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                self.sweep()

        self._thread = threading.Thread(target=loop, name="lsd-jax-app-sweeper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            root, self._root = self._root, None
            self._finished.clear()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


# --------------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class Job:
    """A validated request."""

    song: str  # the uploaded file on the server
    song_name: str  # its name as uploaded (for the snippet and the output's name)
    style: str  # "default", a catalogue name, or the uploaded .pkl/.safetensors on the server
    style_code: str  # what the snippet passes as style
    params: RenderParams  # what render() gets
    public_params: RenderParams  # the same with stems as file names (what the snippet shows)
    seconds: float = math.inf  # the excerpt's length (inf: unknown)
    max_seconds: float | None = None  # the server's limit, enforced again on the audio actually decoded
    formats: tuple[str, ...] = ()  # two or more aspects: one file each (params.resolution: their shorter side)

    @property
    def n_frames(self) -> int:
        """Frames of one file."""
        return max(1, math.ceil(self.seconds * self.params.fps - 1e-9)) if math.isfinite(self.seconds) else 0

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each file: the formats' shapes, or [] for one file of ``params``' size."""
        from ..engine.pipeline import format_size

        return [format_size(f, self.params.resolution) for f in self.formats]

    @property
    def total_frames(self) -> int:
        """Frames of all the files."""
        return self.n_frames * max(1, len(self.formats))

    def file_params(self) -> list[RenderParams]:
        """The parameters of each file as a single render would make it (its speed, its preview)."""
        return [self.params.replace(width=w, height=h) for h, w in self.sizes] or [self.params]


def _short_side_fitting(fmt: str, cap: int) -> int:
    """The largest even shorter side whose ``fmt`` frame has no side above ``cap``."""
    from ..engine.pipeline import format_size

    a, b = (int(x) for x in fmt.split(":"))
    short = 2 * (cap * min(a, b) // max(a, b) // 2)
    while short > 2 and max(format_size(fmt, short)) > cap:
        short -= 2
    return short


def _with_formats(
    params: RenderParams, formats: tuple[str, ...], length: float, cfg: AppConfig
) -> tuple[RenderParams, tuple[str, ...]]:
    """``params`` and the formats of the job from the ticked ``formats``: one tick sets width and height (a
    single file of that aspect), several set ``resolution`` to their shorter side (unset: 1080, or the largest
    that keeps every file within the server's size limit). A ParamError naming ``formats`` when a file would be
    above the size limit, or all the files together more work than the longest, largest single video."""
    from ..engine.pipeline import format_size

    if not formats:
        return params, ()
    if params.width is not None or params.height is not None:
        raise ParamError("formats: tick formats or give width and height, not both (clear width and height)")
    cap = cfg.max_resolution
    short = params.resolution or min(1080, *(_short_side_fitting(f, cap) for f in formats))
    sizes = [format_size(f, short) for f in formats]
    for f, (h, w) in zip(formats, sizes, strict=True):
        if max(h, w) > cap:
            raise ParamError(
                f"formats: {f} at resolution {short} is {w}×{h}, above this server's limit of {cap} pixels; "
                f"choose resolution {min(_short_side_fitting(g, cap) for g in formats)} or less"
            )
    if len(formats) == 1:
        ((h, w),) = sizes
        return params.replace(width=w, height=h), ()
    work, most = length * sum(h * w for h, w in sizes), cfg.max_seconds * cap * cap
    if math.isfinite(length) and work > most * (1 + 1e-9):
        raise ParamError(
            f"formats: {len(formats)} files of {duration_text(round(length, 1))} at these sizes are more work than "
            f"this server's largest render ({duration_text(cfg.max_seconds)} at {cap}×{cap}); tick fewer formats, "
            "or choose a smaller resolution or a shorter excerpt"
        )
    return params.replace(resolution=short), formats


def _name(path: Any) -> str:
    return Path(str(path)).name


def prepare_job(
    song: Any, style: Any = "default", style_file: Any = None, *, cfg: AppConfig | None = None, **values: Any
) -> Job:
    """Validate a request (LsdError on any problem). ``values``: widget values by name (missing
    ones take the page's defaults), stems included."""
    cfg = cfg or AppConfig()
    if not song:
        raise AudioError("upload a song first (wav, flac, ogg, mp3, m4a …)")
    song = str(song)
    formats = formats_from_ui(values)
    kwargs = params_from_ui(values)
    # this server's limits first: the page's widgets end there, so 500 fps is "above this server's limit of 60",
    # not the table's wider range (numbers only: anything else is the table's to refuse)
    for name, limit, unit in (
        ("resolution", cfg.max_resolution, " pixels"),
        ("width", cfg.max_resolution, " pixels"),
        ("height", cfg.max_resolution, " pixels"),
        ("fps", MAX_APP_FPS, ""),
    ):
        v = kwargs.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > limit:
            raise ParamError(f"{name}={v:g} is above this server's limit of {limit:g}{unit}")
    params = make_params(**kwargs)
    if params.codec == "png":
        raise ParamError(
            "codec: the app delivers one file; a folder of PNG frames is for the command line "
            "(lsd-jax render -o frames/)"
        )
    total = audio_length(song)
    if total is not None:
        if params.start >= total:
            raise AudioError(f"start={params.start:g} s is beyond the end of the song ({total:.1f} s long)")
        length = total - params.start if params.duration is None else min(params.duration, total - params.start)
    else:
        length = params.duration if params.duration is not None else math.inf
    if params.loop_seconds is not None:  # a loop is its own excerpt (loop_bars: known after the tempo)
        length = min(length, params.loop_seconds)
    if length > cfg.max_seconds + 1e-6:
        limit = f"this server renders at most {duration_text(cfg.max_seconds)}"
        if not math.isfinite(length):
            raise AudioError(f"the length of {_name(song)} cannot be read; {limit}: give a duration")
        what = "the song is" if params.start == 0 and params.duration is None else "the excerpt is"
        raise AudioError(
            f"{what} {duration_text(round(length, 1))} long; {limit}. Choose a shorter excerpt with start and duration."
        )
    if params.duration is not None and params.duration > cfg.max_seconds:
        # longer than the limit but not than the song: "to the end", which the render checks on what it decodes
        params = params.replace(duration=None)
    params, formats = _with_formats(params, formats, length, cfg)
    style_arg, style_code = visitor_style(style, style_file)
    public = params.replace(**{s: _name(getattr(params, s)) for s in STEMS if getattr(params, s)})
    if params.keyframes:
        public = public.replace(keyframes={t: _name(p) for t, p in params.keyframes})
    return Job(
        song=song,
        song_name=_name(song),
        style=style_arg,
        style_code=style_code,
        params=params,
        public_params=public,
        seconds=length,
        max_seconds=cfg.max_seconds,
        formats=formats,
    )


def output_name(job: Job) -> str:
    """The video's file name: the song's name with the suffix of the chosen format."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(job.song_name).stem).strip("._") or "lsd"
    return stem[:80] + FORMATS["h264" if job.params.codec == "auto" else job.params.codec].suffix


def wants_live_copy(job: Job) -> bool:
    """Whether the job's format can be played while it is made (a fragmented MP4 copy: H.264 and H.265)."""
    return job.params.codec in ("auto", "h264", "h265") and not job.formats


def python_snippet(job: Job) -> str:
    """The ``lsd_jax.render(...)`` call that reproduces the video (files by their uploaded names); with several
    formats, the ``lsd_jax.render_formats(...)`` call that reproduces the files."""
    p = job.public_params
    kwargs: dict[str, Any] = {}
    for name in BASIC_NAMES:  # the basic parameters always, so they are easy to tweak
        if name in PAGE_ONLY:
            continue
        v = getattr(p, name)
        if v is not None:
            kwargs[name] = list(v) if isinstance(v, tuple) else v
    kwargs.update(p.to_kwargs())
    # a timeline (e.g. from the per-section values) as render takes it: {when: value}
    kwargs = {k: v.as_dict() if isinstance(v, Timeline) else v for k, v in kwargs.items()}
    lines = [
        "import lsd_jax",
        "",
        "lsd_jax.render_formats(" if job.formats else "lsd_jax.render(",
        f"    {job.song_name!r},",
        f"    style={job.style_code!r},",
        f"    output={output_name(job)!r},",
    ]
    if job.formats:
        lines.append(f"    formats={list(job.formats)!r},")
    lines += [f"    {k}={v!r}," for k, v in kwargs.items()]
    lines.append(")")
    return "\n".join(lines) + "\n"


def render_job(job: Job, workdir: Path, progress: ProgressFn | None = None, live: Path | None = None) -> list[Path]:
    """Render ``job`` into ``workdir``; the videos' paths (one, or one per format). ``live``: also write the
    live copy there (one file only). ``progress`` counts the frames of all the files. The one place the web
    app calls :func:`lsd_jax.render` and :func:`lsd_jax.render_formats`."""
    from ..engine.pipeline import render, render_formats

    if job.formats:
        finished, last = 0, [0, -1]  # frames of the files done; the last report (done, total)

        def each_file(done: int, total: int) -> None:  # render_formats counts each file from 0, once per batch
            nonlocal finished
            if last[0] == last[1]:  # the previous file was complete: this is the next one's first batch
                finished += last[1]
            last[:] = [done, total]
            if progress is not None:
                progress(finished + done, total * len(job.formats))

        results = render_formats(
            job.song,
            style_for(job),
            formats=job.formats,
            output=workdir / output_name(job),
            progress=each_file,
            params=job.params,
            max_seconds=job.max_seconds,
        )
        return [r.path for r in results]
    result = render(
        job.song,
        style=style_for(job),
        output=workdir / output_name(job),
        progress=progress or False,
        params=job.params,
        live=live,
        max_seconds=job.max_seconds,
    )
    return [result.path]


def style_for(job: Job) -> Any:
    """The style the render gets for ``job``, through the visitors' one door (:func:`~lsd_jax.web.door.
    load_visitor_style`): a model file (an upload, or a catalogue style's download) whose NVIDIA pickle is not
    converted yet is converted in a separate, limited process (the result is cached), so a hostile file cannot hang
    or crash the server."""
    if job.style == "default":
        return job.style
    return load_visitor_style(job.style, job.params)


# --------------------------------------------------------------------------------------------------
# Visitors' runs


class JobCancelled(Exception):
    """The visitor cancelled the job, or left the page."""


class Busy(Exception):
    """The visitor already has a job running."""


class Run:
    """One preview or render of a visitor, running in its own thread. The handler that started it
    reads ``frames``/``elapsed`` for its progress bar and waits for ``result`` or ``error``;
    :meth:`cancel` makes the render stop at its next batch (and its folder go)."""

    def __init__(self, kind: str, job: Job, session: str | None = None, live: bool = False, client: str | None = None):
        self.kind = kind
        self.job = job
        self.session = session
        self.client = client  # the visitor's address (per-client limits)
        self.working = False  # holds one of the server's work slots (waits for one before)
        self.wants_live = live
        self.workdir: Path | None = None  # the render's folder (removed if it fails or is cancelled)
        self.live: Path | None = None  # the live copy, once the render has a folder
        self.frames = (0, job.total_frames)
        self.started = time.monotonic()
        self.working_since: float | None = None  # when it got its work slot
        self.first_frames_at: float | None = None
        self.first_frames_done = 0  # the frames done at ``first_frames_at`` (the rate counts those after)
        self.result: Any = None  # a render's video (several formats: the first file), a preview's stills
        self.files: list[Path] = []  # a render's videos (one per format)
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` once cancelled (called between batches)."""
        if self._cancel.is_set():
            raise JobCancelled(f"{self.kind} cancelled")

    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Jobs:
    """What one app instance owns for its work: the config, the per-request folders, the running
    jobs, the live channels and the measured speeds.

    ``prepare`` / ``preview`` / ``render`` run one request each (errors are LsdErrors, for the page
    to show); :meth:`start_run` runs one in its own thread for a visitor's session (one at a time per
    session), :meth:`cancel` stops a session's. A render writes into a fresh folder, deleted at once
    if it fails and ``keep`` seconds after it succeeds (swept by a background thread once
    :meth:`start` ran); :meth:`close` (or leaving a ``with`` block) cancels the runs and removes the
    folders.
    """

    def __init__(
        self, cfg: AppConfig | None = None, *, keep: float = 120.0, parent: str | os.PathLike[str] | None = None
    ):
        self.cfg = cfg or AppConfig()
        self.workdirs = Workdirs(keep=keep, parent=parent)
        self.speeds = SpeedBook()
        self.live = LiveChannels()
        self._lock = threading.Lock()
        self._runs: list[Run] = []
        self._reserved: set[str] = set()  # sessions whose page has a job on its way (clicked, not yet started)
        # sessions whose booked job was cancelled before it started: its start_run refuses it (Gradio's cancel may
        # reach the handler only after it has started the run, which then rendered on with nobody to stop it)
        self._cancelled: set[str] = set()
        self._calibrating = threading.Lock()
        # the work slots: LSD_JAX_CONCURRENCY jobs use the CPU at once. A cancelled job keeps its slot until its
        # thread (and any conversion child, killed on cancel) has ended, whatever Gradio's queue starts meanwhile
        # served in the order the jobs asked (first come, first served: the queue wait the page shows holds)
        self._slots_free = max(1, self.cfg.concurrency)
        self._slots_cv = threading.Condition()
        self._slots_line: list[object] = []
        self._analysing = threading.BoundedSemaphore(ANALYSIS_AT_ONCE)  # the upload handler's song analysis

    # --- one request
    def prepare(self, song: Any, style: Any = "default", style_file: Any = None, **values: Any) -> Job:
        return prepare_job(song, style, style_file, cfg=self.cfg, **values)

    def preview(self, job: Job, run: Run | None = None) -> Preview:
        """Stills at the loudest moments: :func:`lsd_jax.engine.pipeline.prepare` analyses the whole excerpt
        and builds the same latents, effects and compiled frame step as the full render, which renders
        only the chosen frames. Measures the preparation and, the first time, the step's speed."""
        from ..engine.pipeline import prepare

        t0 = time.perf_counter()
        params = job.file_params()[0]  # several formats: stills of the first
        prep = prepare(job.song, style_for(job), params=params, progress=False, max_seconds=job.max_seconds)
        self.speeds.record_preparation(time.perf_counter() - t0, job.seconds)
        if run is not None:
            run.check()
        key = speed_key(job.style, params)
        t1 = time.perf_counter()
        result = preview_of(prep, self.cfg.preview_stills)
        first = time.perf_counter() - t1
        if self.speeds.get(key) is None:  # one more batch, compiled by now: the step's speed
            idx = result.indices
            t2 = time.perf_counter()
            prep.frames(idx[:1])
            batch_s = time.perf_counter() - t2
            self.speeds.record(
                key, prep.step.batch / batch_s, first - batch_s * -(-len(idx) // prep.step.batch), "preview"
            )
        return result

    def render(self, job: Job, progress: ProgressFn | None = None, *, run: Run | None = None) -> Path:
        """:meth:`render_files`' first (with one format, only) video."""
        return self.render_files(job, progress, run=run)[0]

    def render_files(self, job: Job, progress: ProgressFn | None = None, *, run: Run | None = None) -> list[Path]:
        """Render ``job`` into a fresh folder (removed if it fails or is cancelled); the videos' paths (one per
        format). With ``run``: cancellable between batches, reports its frames there (all files'), and writes a
        live copy when the run wants one. Records this server's speed (of a one-file job)."""
        workdir = self.workdirs.new()
        key = speed_key(job.style, job.params)
        known = self.speeds.estimate(key, job.seconds, job.params.fps)
        marks: list[tuple[float, int]] = []
        t0 = time.perf_counter()

        def on_frames(done: int, total: int) -> None:
            if run is not None:
                run.check()
                run.frames = (done, total)
                if run.first_frames_at is None:
                    run.first_frames_at, run.first_frames_done = time.monotonic(), done
            marks.append((time.perf_counter(), done))
            if progress is not None:
                progress(done, total)

        try:
            live = workdir / "live.mp4" if run is not None and run.wants_live and wants_live_copy(job) else None
            if run is not None:
                run.workdir, run.live = workdir, live
            out = render_job(job, workdir, on_frames, live)
        except BaseException:
            self.workdirs.discard(workdir)
            raise
        self.workdirs.finish(workdir)
        if not job.formats and (measured := measured_speed(marks, t0)) is not None:  # several sizes: no one speed
            fps, head = measured  # head: preparation (+ compiling, the first time)
            if known.compiled:
                self.speeds.record_preparation(head, job.seconds)
                self.speeds.record(key, fps, None, "render")
            else:  # compiling: what the head took beyond the preparation the model expects
                prep = self.speeds.prep_seconds(job.seconds) or 0.0
                self.speeds.record(key, fps, max(0.0, head - prep), "render")
        return out

    # --- speeds
    def estimate(self, job: Job) -> Estimate:
        """The expected time of rendering ``job`` on this server (several formats: the sum of each file's size,
        one preparation); the default style is measured on first use (:meth:`calibrate`), other styles by their
        first preview or render."""
        for params in job.file_params():
            if self.speeds.get(speed_key(job.style, params)) is None and job.style == "default":
                self.calibrate(replace(job, params=params, formats=()))
        return self.known_estimate(job)

    def known_estimate(self, job: Job) -> Estimate:
        """:meth:`estimate` from what is measured already (never calibrates: for the queue and progress lines)."""
        ests = [self.speeds.estimate(speed_key(job.style, p), job.seconds, job.params.fps) for p in job.file_params()]
        return self.speeds.combine(ests, job.seconds)

    def remaining(self, run: Run, now: float | None = None) -> float | None:
        """Seconds until ``run`` is done, from the model (:meth:`known_estimate`) and its own progress: waiting for a
        slot, its whole estimate; preparing, the estimate less the time it has worked; rendering, its frames left at
        the rate it measured so far (the model's rate during its first second). None: its style and size are not
        measured yet."""
        now = time.monotonic() if now is None else now
        if run.finished():
            return 0.0
        est = self.known_estimate(run.job)
        if est.seconds is None or not est.frames_per_s:
            return None
        if run.kind == "preview":  # the stills only: about one batch after the preparation
            est = replace(est, seconds=est.prep_s + est.compile_s + 1.0)
        if not run.working or run.working_since is None:
            return est.seconds
        if run.first_frames_at is None:
            frames_s = est.frames_s if run.kind == "render" else 1.0
            return max(frames_s, est.seconds - (now - run.working_since))
        done, total = run.frames
        since = now - run.first_frames_at
        rate = (done - run.first_frames_done) / since if since >= 1.0 else 0.0
        return max(0, total - done) / (rate if rate > 0 else est.frames_per_s)

    def queue_wait(
        self, session: str | None = None, own_s: float | None = None, run: Run | None = None
    ) -> tuple[float, int]:
        """``(seconds until a job starts, jobs ahead of it)``: the running jobs' time left (:meth:`remaining`), then
        the waiting ones' estimates, on ``cfg.concurrency`` slots (:func:`~lsd_jax.store.speeds.queue_wait`). For a
        new job of ``session``: every job of the others, waiting or booked (clicked, still in the page's queue);
        for ``run``, waiting for its slot: the running jobs and those before it in the line. A job whose time is
        unknown (its style not measured yet; a booked one) counts as ``own_s`` (the asker's own estimate)."""
        now = time.monotonic()
        with self._lock, self._slots_cv:
            live = [r for r in self._runs if not r.finished() and r.session != session and r is not run]
            line = [r for r in self._slots_line if isinstance(r, Run)]
            if run is not None:  # only those ahead of it: at work, or before it in the line
                before = line[: line.index(run)] if run in line else line
                live = [r for r in live if r.working or r in before]
                booked = 0
            else:
                booked = sum(
                    1
                    for s in self._reserved
                    if s != session and not any(r.session == s and not r.finished() for r in self._runs)
                )
        order = {id(r): k for k, r in enumerate(line)}
        live.sort(key=lambda r: (order.get(id(r), len(order)), r.started))
        running, waiting = [], []
        for r in live:
            left = self.remaining(r, now)
            (running if r.working else waiting).append((own_s or 0.0) if left is None else left)
        waiting += [own_s or 0.0] * booked
        ahead = len(live) + booked
        if ahead == 0:
            return 0.0, 0
        return queue_wait(running, waiting, max(1, self.cfg.concurrency)), ahead

    def calibrate(self, job: Job, seconds: float = 4.0) -> Throughput | None:
        """Measure ``job``'s speed (its style, size and effects) by rendering the synthetic demo song twice, as a
        visitor's job renders (:func:`render_job`): ``seconds / 2`` (loading the style, compiling the step), then
        ``seconds`` (another length: its preparation is a visitor's first job's, the analysis compiled for its
        length); the second gives the frames/s and the preparation, the difference of their starts the
        compiling. Only for the embedded default style (no download); the compiled step stays cached, so the
        visitor's render starts sooner."""
        if job.style != "default":
            return None
        key = speed_key(job.style, job.params)
        with self._calibrating:
            if (known := self.speeds.get(key)) is not None:
                return known
            song = str(self.example_song())
            stems = {s: None for s in STEMS}
            heads, last = [], (0.0, 0)
            for length in (seconds / 2, seconds):
                params = job.params.replace(start=0.0, duration=length, keyframes=None, **stems)
                sample = replace(job, song=song, params=params, formats=(), seconds=length)
                marks: list[tuple[float, int]] = []
                workdir = self.workdirs.new()
                t0 = time.perf_counter()
                try:
                    render_job(
                        sample, workdir, lambda done, total, marks=marks: marks.append((time.perf_counter(), done))
                    )
                finally:
                    self.workdirs.discard(workdir)
                measured = measured_speed(marks, t0)
                heads.append(measured[1] if measured else 0.0)
                last = (time.perf_counter() - t0, sample.n_frames)
            if measured is None:  # a single batch: the whole render at one rate
                measured = (last[1] / last[0], 0.0) if last[0] > 0 else None
            if measured is None:
                return None
            fps, head = measured
            self.speeds.record_preparation(head, seconds, "calibration")
            self.speeds.record(key, fps, max(0.0, heads[0] - head), "calibration")
            return self.speeds.get(key)

    def warm_up(self, values: dict[str, Any]) -> threading.Thread:
        """Measure (and compile) the default style with the page's default ``values`` in the background,
        so the first visitor sees an estimate at once and renders without compiling."""

        def work() -> None:
            try:
                song = self.example_song()
                self.calibrate(self.prepare(str(song), "default", None, **{**values, "start": 0, "duration": 4.0}))
            except Exception as e:  # the page's estimate will try again, and say so
                log.warning("warm-up failed: %s", e)

        thread = threading.Thread(target=work, name="lsd-jax-warm-up", daemon=True)
        thread.start()
        return thread

    def example_song(self, seconds: float = 12.0) -> Path:
        """The synthesised demo song (:mod:`lsd_jax.audio.demo_song`) in the app's folder, written once."""
        from ..audio.demo_song import write_demo_song

        path = self.workdirs.root / f"demo-{seconds:g}s.wav"
        with self._lock:
            if not path.is_file():
                tmp = path.with_suffix(".part.wav")
                write_demo_song(tmp, seconds=seconds)
                os.replace(tmp, path)
        return path

    # --- the server's work slots and the upload analysis pool
    @contextlib.contextmanager
    def slot(self, run: Run | None = None) -> Iterator[None]:
        """Hold one of the ``cfg.concurrency`` work slots for the block, waiting for one first, in the order the
        jobs asked (a ``run`` cancelled while it waits raises :class:`JobCancelled`). Every job's heavy work runs
        inside one."""
        me = run if run is not None else object()
        with self._slots_cv:
            self._slots_line.append(me)
            try:
                while True:
                    if run is not None:
                        run.check()
                    if self._slots_free > 0 and self._slots_line[0] is me:
                        break
                    self._slots_cv.wait(SLOT_POLL_S)
                self._slots_free -= 1
            finally:
                self._slots_line.remove(me)
                self._slots_cv.notify_all()
        try:
            yield
        finally:
            with self._slots_cv:
                self._slots_free += 1
                self._slots_cv.notify_all()

    def excerpt_start(self, song: Any, seconds: float) -> float | None:
        """Where the page's excerpt of an uploaded ``song`` starts (:func:`loudest_stretch`), computed by at most
        :data:`ANALYSIS_AT_ONCE` uploads at once (more wait up to :data:`ANALYSIS_WAIT_S` s, then get None: the
        page keeps its values). None too when the file cannot be analysed (the render's checks say why)."""
        return self.analysed(loudest_stretch, song, seconds)

    def analysed(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` (an upload's analysis: the excerpt, the song's form) in the bounded analysis pool: at most
        :data:`ANALYSIS_AT_ONCE` at once, more wait up to :data:`ANALYSIS_WAIT_S` s, then get None; None too when
        ``fn`` fails (the render's checks say why)."""
        if not self._analysing.acquire(timeout=ANALYSIS_WAIT_S):
            return None
        try:
            return fn(*args)
        except Exception:
            return None
        finally:
            self._analysing.release()

    # --- visitors' runs
    def start_run(self, kind: str, job: Job, session: str | None = None, client: str | None = None) -> Run:
        """Start a ``"render"`` or ``"preview"`` of ``job`` in its own thread. A session runs one job at a
        time, a client (``client``: its address) ``cfg.per_client`` at once, a cancelled one counted until its work
        has stopped (:class:`Busy`); a render writes a live copy when the session has a live channel open."""
        with self._lock:
            self._runs = [r for r in self._runs if not r.finished()]
            if session is not None and session in self._cancelled:
                self._cancelled.discard(session)
                raise JobCancelled(f"{kind} cancelled")
            if session is not None and any(r.session == session and not r.cancelled for r in self._runs):
                raise Busy("your previous job is still running: wait for it or cancel it")
            if client is not None and sum(r.client == client for r in self._runs) >= self.cfg.per_client:
                raise Busy(
                    f"this server runs at most {self.cfg.per_client} job(s) per visitor at a time, and yours "
                    "are still running or stopping: wait for one to end"
                )
            run = Run(kind, job, session, live=kind == "render" and self.live.wants(session), client=client)
            self._runs.append(run)
        if run.wants_live:
            self.live.attach(session, run)
        threading.Thread(target=self._work, args=(run,), name=f"lsd-jax-{kind}", daemon=True).start()
        return run

    def _work(self, run: Run) -> None:
        try:
            run.check()
            with self.slot(run), sandbox.cancel_scope(run._cancel):
                run.working, run.working_since = True, time.monotonic()
                run.check()
                if run.kind == "render":
                    run.files = self.render_files(run.job, run=run)
                    run.result = run.files[0]
                else:
                    run.result = self.preview(run.job, run=run)
        except BaseException as e:  # handed to the page's handler; a cancelled run's (its killed conversion's) says so
            run.error = JobCancelled(f"{run.kind} cancelled") if run.cancelled else e
        finally:
            run.working = False
            run._done.set()

    def working(self) -> int:
        """How many visitors' jobs hold a work slot now (cancelled ones included, until their work stops)."""
        with self._lock:
            return sum(r.working for r in self._runs)

    def busy(self, session: str | None) -> bool:
        with self._lock:
            return any(r.session == session and not r.finished() and not r.cancelled for r in self._runs)

    def reserve(self, session: str | None) -> bool:
        """Book the session's next job from the moment its page asks (False: one is booked or running
        already, e.g. a double-click); :meth:`release` (or :meth:`cancel`) ends the booking."""
        if session is None:
            return True
        with self._lock:
            running = any(r.session == session and not r.finished() and not r.cancelled for r in self._runs)
            if running or session in self._reserved:
                return False
            self._reserved.add(session)
            self._cancelled.discard(session)  # a new job: an earlier Cancel was for the one before
            return True

    def release(self, session: str | None) -> None:
        with self._lock:
            self._reserved.discard(session)

    def cancel(self, session: str | None) -> int:
        """Cancel the session's running jobs, end its booking and close its live channel; how many jobs this
        stopped, counting one that its own handler's end (Gradio closing it for the same Cancel click) stopped
        a moment earlier, and a booked one that had not started yet (its :meth:`start_run` refuses it)."""
        with self._lock:
            mine = [r for r in self._runs if r.session == session]
            pending = session in self._reserved and not any(not r.finished() for r in mine)
            self._reserved.discard(session)
            if pending and session is not None:
                self._cancelled.add(session)
        for r in mine:
            if not r.finished():
                r.cancel()
        self.live.close(session=session)
        return sum(1 for r in mine if r.cancelled and r.result is None) + int(pending)

    # --- lifetime
    def start(self, sweep_interval: float = 60.0) -> Jobs:
        """Remove what dead app processes left (their folders, their conversions' folders); sweep from now on."""
        self.workdirs.sweep_orphans()
        sandbox.sweep_stale()
        self.workdirs.start_sweeper(sweep_interval)
        return self

    def close(self, wait: float = 5.0) -> None:
        with self._lock:
            runs = list(self._runs)
        for r in runs:
            r.cancel()
        deadline = time.monotonic() + wait
        for r in runs:
            r.wait(max(0.0, deadline - time.monotonic()))
        self.workdirs.close()

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
