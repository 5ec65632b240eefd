"""The app's work, without Gradio: validate a request, preview it, render it.

* :func:`prepare_job` turns what the page sends (a song, a style, stems and the parameters as
  widgets hold them) into a validated :class:`Job`, or raises an :class:`~lsd_jax.errors.LsdError`;
* :func:`preview_job` renders a few stills at the loudest moments through the *same* compiled
  frame step as the full render, from latents computed over the whole excerpt, so the full render
  with the same seed and parameters contains exactly these frames;
* :func:`render_job` renders the MP4 into a given folder, reporting real frames;
* :func:`python_snippet` writes the ``lsd_jax.render(...)`` call that reproduces the video;
* :class:`Jobs` is what one app instance owns: its config and its per-request folders
  (:class:`Workdirs`: a failed request's folder goes at once, a finished one after a while, all at
  :meth:`Jobs.close`).
"""

from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioError, ParamError, StyleError
from ..params import RenderParams, make_params
from .config import MAX_APP_FPS, AppConfig, duration_text
from .form import BASIC_NAMES, STEMS, catalogue_names, params_from_ui

ProgressFn = Callable[[int, int], None]


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
                self._root = Path(tempfile.mkdtemp(prefix="lsd-jax-app-", dir=self.parent))
                atexit.register(shutil.rmtree, self._root, True)
            return self._root

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


def _name(path: Any) -> str:
    return Path(str(path)).name


def audio_seconds(path: str | os.PathLike[str]) -> float | None:
    """Length of an audio file in seconds without decoding it (None: unknown); AudioError when it
    is no audio file."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioError(f"audio file not found: {p.name}")
    if p.stat().st_size == 0:
        raise AudioError(f"{p.name} is empty (0 bytes): upload an audio file (wav, flac, ogg, mp3, m4a …)")
    try:
        info = sf.info(str(p))
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except Exception:
        pass
    from ..video import parse_streams, run_ffmpeg

    info = parse_streams(run_ffmpeg(["-i", str(p)]).stderr.decode("utf-8", "replace"))
    if not any(s["kind"] == "audio" for s in info["streams"]):
        raise AudioError(f"{p.name} is not an audio file that can be read: upload wav, flac, ogg, mp3, m4a …")
    return info["duration"]


def _resolve_style_choice(style: Any, style_file: Any) -> tuple[str, str]:
    if style_file:
        p = Path(str(style_file))
        if p.suffix.lower() not in (".pkl", ".safetensors"):
            raise StyleError(f"a style file must be an NVIDIA StyleGAN .pkl or a converted .safetensors; got {p.name}")
        if not p.is_file():
            raise StyleError(f"style file not found: {p.name}")
        return str(p), p.name
    choice = str(style or "default").strip().lower()
    if choice in ("default", "cppn"):
        return "default", "default"
    names = catalogue_names()
    if choice not in names:  # never a path: a name from the list only
        import difflib

        close = difflib.get_close_matches(choice, names, n=1)
        raise StyleError(f"unknown style {choice!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                         + "; choose one from the list or upload a .pkl")
    return choice, choice


def prepare_job(song: Any, style: Any = "default", style_file: Any = None, *, cfg: AppConfig | None = None,
                **values: Any) -> Job:
    """Validate a request (LsdError on any problem). ``values``: widget values by name (missing
    ones take the page's defaults), stems included."""
    cfg = cfg or AppConfig()
    if not song:
        raise AudioError("upload a song first (wav, flac, ogg, mp3, m4a …)")
    song = str(song)
    params = make_params(**params_from_ui(values))
    for name in ("resolution", "width", "height"):
        v = getattr(params, name)
        if v is not None and v > cfg.max_resolution:
            raise ParamError(f"{name}={v} is above this server's limit of {cfg.max_resolution} pixels")
    if params.fps > MAX_APP_FPS:
        raise ParamError(f"fps={params.fps:g} is above this server's limit of {MAX_APP_FPS:g}")
    total = audio_seconds(song)
    if total is not None:
        if params.start >= total:
            raise AudioError(f"start={params.start:g} s is beyond the end of the song ({total:.1f} s long)")
        length = total - params.start if params.duration is None else min(params.duration, total - params.start)
    else:
        length = params.duration if params.duration is not None else math.inf
    if length > cfg.max_seconds + 1e-6:
        limit = f"this server renders at most {duration_text(cfg.max_seconds)}"
        if not math.isfinite(length):
            raise AudioError(f"the length of {_name(song)} cannot be read; {limit}: give a duration")
        what = "the song is" if params.start == 0 and params.duration is None else "the excerpt is"
        raise AudioError(f"{what} {duration_text(round(length, 1))} long; {limit}. "
                         "Choose a shorter excerpt with start and duration.")
    style_arg, style_code = _resolve_style_choice(style, style_file)
    public = params.replace(**{s: _name(getattr(params, s)) for s in STEMS if getattr(params, s)})
    if params.keyframes:
        public = public.replace(keyframes={t: _name(p) for t, p in params.keyframes})
    return Job(song=song, song_name=_name(song), style=style_arg, style_code=style_code, params=params,
               public_params=public)


def output_name(job: Job) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(job.song_name).stem).strip("._") or "lsd"
    return stem[:80] + ".mp4"


def python_snippet(job: Job) -> str:
    """The ``lsd_jax.render(...)`` call that reproduces the video (files by their uploaded names)."""
    p = job.public_params
    kwargs: dict[str, Any] = {}
    for name in BASIC_NAMES:  # the basic parameters always, so they are easy to tweak
        v = getattr(p, name)
        if v is not None:
            kwargs[name] = list(v) if isinstance(v, tuple) else v
    kwargs.update(p.to_kwargs())
    lines = ["import lsd_jax", "", "lsd_jax.render(", f"    {job.song_name!r},",
             f"    style={job.style_code!r},", f"    output={output_name(job)!r},"]
    lines += [f"    {k}={v!r}," for k, v in kwargs.items()]
    lines.append(")")
    return "\n".join(lines) + "\n"


def loudest_frames(pulse: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` frame indices at the peaks of ``pulse``, spread out (at least N/(2n) apart),
    in time order."""
    pulse = np.asarray(pulse, np.float64).reshape(-1)
    total = pulse.size
    n = max(1, min(n, total))
    gap = max(1, total // (2 * n))
    chosen: list[int] = []
    for i in np.argsort(-pulse, kind="stable"):
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
            if len(chosen) == n:
                break
    return np.array(sorted(chosen), dtype=np.int64)


@dataclass(frozen=True)
class Preview:
    indices: np.ndarray  # frame indices in the full render
    times: np.ndarray  # seconds in the song
    frames: np.ndarray  # (n, H, W, 3) uint8


def preview_job(job: Job, n: int = 6) -> Preview:
    """Stills at the loudest moments: :func:`lsd_jax.pipeline.prepare` analyses the whole excerpt and
    builds the same latents, effects and compiled frame step as the full render, which renders only
    the chosen frames."""
    from ..pipeline import prepare

    prep = prepare(job.song, job.style, params=job.params, progress=False)
    idx = loudest_frames(prep.features.pulse, n)
    frames = prep.frames(idx)
    return Preview(indices=idx, times=job.params.start + idx / float(prep.features.fps), frames=frames)


def render_job(job: Job, workdir: Path, progress: ProgressFn | None = None) -> Path:
    """Render ``job`` into ``workdir``; the MP4's path. The one place the web app calls
    :func:`lsd_jax.render`."""
    from ..pipeline import render

    result = render(job.song, style=job.style, output=workdir / output_name(job), progress=progress or False,
                    params=job.params)
    return result.path


class Jobs:
    """What one app instance owns for its work: the config and the per-request folders.

    ``prepare`` / ``preview`` / ``render`` run one request each (errors are LsdErrors, for the page
    to show); a render writes into a fresh folder, deleted at once if it fails and ``keep``
    seconds after it succeeds (swept by a background thread once :meth:`start` ran); :meth:`close`
    (or leaving a ``with`` block) removes them all.
    """

    def __init__(self, cfg: AppConfig | None = None, *, keep: float = 120.0,
                 parent: str | os.PathLike[str] | None = None):
        self.cfg = cfg or AppConfig()
        self.workdirs = Workdirs(keep=keep, parent=parent)

    def prepare(self, song: Any, style: Any = "default", style_file: Any = None, **values: Any) -> Job:
        return prepare_job(song, style, style_file, cfg=self.cfg, **values)

    def preview(self, job: Job) -> Preview:
        return preview_job(job, self.cfg.preview_stills)

    def render(self, job: Job, progress: ProgressFn | None = None) -> Path:
        workdir = self.workdirs.new()
        try:
            out = render_job(job, workdir, progress)
        except BaseException:
            self.workdirs.discard(workdir)
            raise
        self.workdirs.finish(workdir)
        return out

    def start(self, sweep_interval: float = 60.0) -> Jobs:
        self.workdirs.start_sweeper(sweep_interval)
        return self

    def close(self) -> None:
        self.workdirs.close()

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
