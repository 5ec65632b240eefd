"""The page: a Gradio Blocks layout over :class:`~lsd_jax.web.jobs.Jobs`, its handlers, and the launcher.

* :func:`preview_stream` / :func:`render_stream` are the handlers behind the named API endpoints
  ``/preview`` and ``/render``: generators that run the visitor's job in its own thread
  (:meth:`Jobs.start_run`), report progress with the time left, and cancel the job when Gradio
  closes them (a closed tab, a client's ``job.cancel()``; the Cancel button stops it on the server). A cancel,
  and a style that cannot be fetched or loaded, end with the status line alone (:func:`_outcome`: no "Error" on
  the page); every other failure becomes a ``gr.Error`` with a clear message and no server path
  (:func:`user_error`), kept visible in the status line. :func:`preview_video` / :func:`render_video` run them to
  the end (for Python callers);
* before a job is queued, :func:`validate` puts each problem next to the field that caused it (and a visitor's
  address queues at most ``per_client`` jobs: :func:`queued_by`); a visitor's style goes through the one door
  (:mod:`lsd_jax.web.door`); the song's analysis on upload is a queued event of its own, one at a time;
* the buttons are disabled while the visitor's job runs; a render plays in the page while later frames
  still render (:mod:`lsd_jax.web.playback`); the estimate above the buttons comes from this server's
  measured speed (:mod:`lsd_jax.web.speed`); one-click examples come from :mod:`lsd_jax.web.examples`;
* art first: a showcase video (:func:`showcase_maker`, made with the page's pictures by :class:`PageImages`) plays
  where the outputs will be until the visitor's own output takes its place (:data:`SHOWCASE_JS`, which also scrolls
  a phone to the player), the examples show as thumbnails under it, with a note while they render at start-up
  (:class:`lsd_jax.web.examples.Preparing`); the live player shows its own progress line, so the handler reports
  rarely while it plays (each of Gradio's updates costs the page's main thread: :data:`TICK`);
* :func:`build_app` builds the Blocks; the app owns its :class:`Jobs` unless given one, and closes
  them with the app; :func:`launch` serves it with an upload size limit, Gradio's MCP server (the ``render`` and
  ``preview`` tools, each parameter documented from the table: :func:`tool_doc`), the link-preview tags, preview
  image and favicon (:func:`page_html`, :class:`PageImages`), and deletes the app's files in Gradio's temp folder
  when it closes; :func:`main` is ``python app.py`` (a Hugging Face Space's entry point), which closes the app, and
  so its folders and its own Gradio temp folder, when the server stops or is sent SIGTERM.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import logging
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import AudioError, DownloadError, LsdError, ParamError, StyleError
from ..params import GROUPS, PARAM, RenderParams
from . import examples as ex
from . import sections
from .config import AppConfig, client_key, duration_text
from .form import INPUT_NAMES, Field, component, page_fields, recipe_to_ui, style_choices, ui_defaults, ui_values
from .jobs import Busy, Job, JobCancelled, Jobs, Run, python_snippet
from .speed import estimate_text, speed_key

log = logging.getLogger("lsd_jax.web")

TITLE = "lsd-jax: music-reactive GAN videos"
DESCRIPTION = (
    "Upload a song, pick a style, and watch a GAN video that pulses and drifts with the music "
    "(a Lucid Sonic Dreams re-imagining in JAX)."
)
#: How often a running job's handler reports (and can be cancelled), seconds. Each report costs the page's main
#: thread an update of Gradio's (15 ms on a desktop, 60 ms on a phone's slower CPU): four a second made the live
#: video stutter (issue #27), one a second leaves the page free.
TICK = 1.0
#: How often, while the page's live player shows the progress line itself (from ``live_chunk``), seconds: the status
#: line (hidden then) only, without Gradio's progress (each costs the page as much as the status).
QUIET_TICK = 10.0
#: The queue of previews and renders (LSD_JAX_CONCURRENCY at once).
RENDER_QUEUE = "lsd-jax-render"
#: The inputs a render's speed depends on (the estimate follows them).
ESTIMATE_INPUTS = (
    "song",
    "style",
    "style_file",
    "fps",
    "resolution",
    "width",
    "height",
    "start",
    "duration",
    "compute_dtype",
    "batch_size",
    "contrast_strength",
    "flash_strength",
)
#: Of :data:`ESTIMATE_INPUTS`, those the server copies (files, and a menu holding this server's paths: Gradio checks
#: them); the page copies the others (numbers, a fixed menu), with no request, so no event clears their problems.
SERVER_COPIED = ("song", "style", "style_file")

# --------------------------------------------------------------------------------------------------
# Messages without server paths

# a folder in a path: a name without spaces, or one with spaces but none of the punctuation around a path in a
# message (so "/srv/my app/x.wav: bad" loses "/srv/my app/" and "/a/clip.mp4 is /a/b.mp4" keeps both names)
_DIR = r"""(?:[^/\\\s'"]+|[^/\\'"\n.:;,()\[\]]+)[/\\]"""
_PATH_DIRS = re.compile(r"""(?<![^\s'"(\[=:,])(?:file://)?(?:~|[A-Za-z]:)?[/\\]""" + f"(?:{_DIR})+")
MAX_MESSAGE = 600


def _server_folders() -> list[str]:
    """The folders this server keeps files in (uploads, results, cache, its own), longest first, as written and
    resolved."""
    found = {
        tempfile.gettempdir(),
        os.getcwd(),
        str(Path.home()),
        os.environ.get("GRADIO_TEMP_DIR", ""),
        os.environ.get("LSD_JAX_CACHE", ""),
    }
    found |= {os.path.realpath(f) for f in found if f}
    return sorted((f.rstrip("/\\") for f in found if len(f.rstrip("/\\")) > 1), key=len, reverse=True)


def public_text(message: str) -> str:
    """``message`` with every directory part of a path removed (file names stay), as plain text (a field's message
    is shown as text). The server's own folders go first, whole (their names may hold spaces), with the folders
    below them."""
    text = str(message)
    for root in _server_folders():  # with the folders below it (no spaces: Gradio's and ours); alone: "…"
        text = re.sub(
            re.escape(root) + r"""(?:(?:[/\\][^/\\\s'"]+)*[/\\]|(?![^/\\\s'"):;,.]))""",
            lambda m: "" if m.group(0)[-1:] in "/\\" else "…",
            text,
        )
    text = _PATH_DIRS.sub("", text)
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return text


def public_message(message: str) -> str:
    """:func:`public_text`, safe as HTML (a toast and the status line render HTML)."""
    return html.escape(public_text(message), quote=False)


def _visitor_message(e: LsdError) -> str:
    return getattr(e, "visitor_message", None) or str(e)  # a download's advice for a visitor, not a command


def user_error(e: BaseException) -> gr.Error:
    """The ``gr.Error`` shown for an exception: LsdError's message (paths stripped), or a generic
    one for anything unexpected (logged here, with its traceback, for the server's operator)."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, LsdError):
        title = {AudioError: "Audio problem", ParamError: "Parameter problem", StyleError: "Style problem"}
        kind = next((t for c, t in title.items() if isinstance(e, c)), "Cannot render")
        return gr.Error(public_message(_visitor_message(e)), title=kind, print_exception=False)
    if isinstance(e, Busy):
        return gr.Error(str(e), title="Already running", print_exception=False)
    if isinstance(e, JobCancelled):  # an example's render cancelled (the server closing)
        return gr.Error(CANCELLED, title="Cancelled", print_exception=False)
    if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e):
        log.error("out of memory: %s", type(e).__name__)
        return gr.Error(
            "The server ran out of memory. Try a lower resolution or a shorter excerpt.",
            title="Out of memory",
            print_exception=False,
        )
    log.error("unexpected error in the web app", exc_info=e)
    return gr.Error(
        "Something went wrong on the server (the error is logged there). Try again, or change the parameters.",
        title="Internal error",
        print_exception=False,
    )


#: A style that cannot be fetched (a download) or loaded (its file).
STYLE_ERRORS = (StyleError, DownloadError)
#: The status line after a visitor's (or a client's) own cancel: a normal outcome, not an error.
CANCELLED = "Cancelled: nothing was kept."


def error_status(e: gr.Error) -> str:
    """The status line for an error (it stays when the toast goes)."""
    return f"⚠ **{html.escape(e.title or 'Error')}**: {e.message}"


def field_message(e: BaseException) -> str:
    """The problem shown next to a field: :func:`user_error`'s message as plain text (the field shows it as text,
    so "> 0" must not arrive as "&gt; 0")."""
    if isinstance(e, LsdError):
        return public_text(_visitor_message(e))
    return user_error(e).message


_NAMES = re.compile(r"\b(" + "|".join(sorted(INPUT_NAMES, key=len, reverse=True)) + r")\b")


def field_of(e: BaseException, values: dict[str, Any]) -> str | None:
    """The input that caused ``e``: the first input named in a parameter error, the style (or the
    uploaded style file) for a style error, the song for an audio error; None if it is not clear."""
    if isinstance(e, AudioError):
        text = str(e)
        if "start=" in text:
            return "start"
        return "duration" if "renders at most" in text else "song"
    if isinstance(e, STYLE_ERRORS):
        return "style_file" if values.get("style_file") else "style"
    if isinstance(e, ParamError):
        m = _NAMES.search(str(e))
        return m.group(1) if m else None
    return None


# --------------------------------------------------------------------------------------------------
# Visitors (per-client limits)


def queued_by(demo: Any, client: str | None, concurrency_id: str, forwarded: bool = False) -> int:
    """How many events of ``concurrency_id`` from ``client`` Gradio's queue holds (waiting or running)."""
    if client is None:
        return 0
    queue = getattr(demo, "_queue", None)
    events = list(getattr(queue, "event_ids_to_events", {}).values())
    return sum(
        1
        for e in events
        if getattr(e, "concurrency_id", None) == concurrency_id
        and client_key(getattr(e, "request", None), forwarded) == client
    )


# --------------------------------------------------------------------------------------------------
# Handlers (what the page and the API call)


def clock(t: float) -> str:
    """Seconds as m:ss.s."""
    m, s = divmod(t, 60)
    return f"{int(m)}:{s:04.1f}"


def _minutes(t: float) -> str:
    m, s = divmod(int(round(t)), 60)
    return f"{m}:{s:02d}"


def _progress_line(jobs: Jobs, run: Run) -> tuple[Any, str]:
    """(gr.Progress value, description) for a running job; the description is also the status line. The time
    left is the model's (:meth:`Jobs.remaining`: the estimate shown before, then the job's own rate)."""
    verb = "Rendering" if run.kind == "render" else "Previewing"
    left = jobs.remaining(run)
    if not run.working and not run.finished():  # waiting for a work slot: the jobs ahead and their time left
        wait, ahead = jobs.queue_wait(run.session, left, run)
        if ahead:
            jobs_ahead = "1 job" if ahead == 1 else f"{ahead} jobs"
            return None, f"Waiting for the server ({jobs_ahead} ahead): about {_minutes(wait)} until yours starts"
        return None, f"Waiting for the server (the job before yours is stopping) · {_minutes(run.elapsed)}"
    if run.first_frames_at is None:  # preparing: style, analysis, latents, compiling
        what = f"{verb}: analysing the song and compiling"
        if left is None:
            return None, f"{what} · {_minutes(run.elapsed)} so far"
        worked = time.monotonic() - (run.working_since or run.started)
        return min(0.95, worked / max(1e-3, worked + left)), f"{what} · about {_minutes(left)} left"
    done, total = run.frames
    return (done, total), f"{verb} frame {done} of {total}" + (f" · about {_minutes(left)} left" if left else "")


def _follow(jobs: Jobs, run: Run, progress: Callable[..., Any] | None) -> Iterator[str | None]:
    """Yield status lines (None: unchanged) while ``run`` runs; cancel it if the consumer stops
    (Gradio closes the generator on Cancel, on a closed tab and on a client's cancel)."""
    finished = False
    last = None
    reported = 0.0
    try:
        while not run.wait(TICK):
            quiet = run.live is not None and run.first_frames_at is not None  # the live player shows the line
            if quiet and time.monotonic() - reported < QUIET_TICK:
                continue
            reported = time.monotonic()
            value, desc = _progress_line(jobs, run)
            line = desc + " …"
            if progress is not None and not quiet:
                if isinstance(value, tuple):
                    progress(value, desc=desc, unit="frames")
                else:
                    progress(value, desc=desc)
            yield None if line == last else line
            last = line
        finished = True
    finally:
        if not finished:
            run.cancel()


def _start(
    jobs: Jobs,
    kind: str,
    song: Any,
    style: Any,
    style_file: Any,
    session: str | None,
    progress: Callable[..., Any] | None,
    values: dict[str, Any],
    client: str | None = None,
) -> tuple[Job, Run]:
    if progress is not None:
        progress(None, desc="Checking the request")
    try:
        job = jobs.prepare(song, style, style_file, **values)
        return job, jobs.start_run(kind, job, session, client)
    except JobCancelled:  # cancelled before it started: an outcome (see _outcome)
        raise
    except Exception as e:
        raise user_error(e) from None


def _outcome(error: BaseException | None) -> str | None:
    """How a job that did not succeed ended, for the status line, when that is not an error for the page to mark
    on an output: the visitor's own cancel, or a style that could not be fetched or loaded (said in the status
    line, as a style problem; the field refuses it before a job is queued where it can tell:
    :func:`validate`). None when it succeeded or for any other failure (raised: :func:`user_error`)."""
    if isinstance(error, JobCancelled):
        return CANCELLED
    if isinstance(error, STYLE_ERRORS):
        return error_status(gr.Error(public_message(_visitor_message(error)), title="Style problem"))
    return None


def _ended(error: BaseException | None) -> Iterator[str]:
    """The status line of a job that ended with ``error`` (none if it succeeded); raises the ``gr.Error``
    of a failure that is one (:func:`_outcome`)."""
    if error is None:
        return
    line = _outcome(error)
    if line is not None:
        yield line
        return
    err = user_error(error)
    yield error_status(err)
    raise err


def render_stream(
    jobs: Jobs,
    song: Any,
    style: Any = "default",
    style_file: Any = None,
    *,
    progress: Callable[..., Any] | None = None,
    session: str | None = None,
    client: str | None = None,
    **values: Any,
) -> Iterator[tuple[Any, Any, Any, Any]]:
    """Yields ``(video, snippet, status, files)`` updates; the last one is the finished MP4, the Python that
    reproduces it, a summary and, with several formats ticked, every file (the video is the first); else None.
    ``gr.Error`` on any problem (its message also in the status), but a cancel or a style that cannot be fetched or
    loaded: the status line says it and the stream ends (:func:`_outcome`)."""
    try:
        job, run = _start(jobs, "render", song, style, style_file, session, progress, values, client)
    except JobCancelled as e:
        for line in _ended(e):
            yield gr.skip(), gr.skip(), line, gr.skip()
        return
    for line in _follow(jobs, run, progress):
        yield gr.skip(), gr.skip(), (gr.skip() if line is None else line), gr.skip()
    if run.error is not None:
        for line in _ended(run.error):
            yield gr.skip(), gr.skip(), line, gr.skip()
        return
    n = run.frames[1]
    if progress is not None:
        progress((n, n), desc=f"Rendered {n} frames", unit="frames")
    status = (
        f"Rendered {n} frames at {job.params.fps:g} fps in {run.elapsed:.1f} s. "
        "The snippet below reproduces this video with `lsd_jax.render`."
    )
    files = [str(f) for f in run.files] if job.formats else None
    if job.formats:
        status = (
            f"Rendered {len(job.formats)} files ({', '.join(job.formats)}) of {job.n_frames} frames each at "
            f"{job.params.fps:g} fps in {run.elapsed:.1f} s, from one analysis of the song. The player shows the "
            f"{job.formats[0]} one; download each under “all formats”. The snippet below reproduces them with "
            "`lsd_jax.render_formats`."
        )
    yield str(run.result), python_snippet(job), status, files


def preview_stream(
    jobs: Jobs,
    song: Any,
    style: Any = "default",
    style_file: Any = None,
    *,
    progress: Callable[..., Any] | None = None,
    session: str | None = None,
    client: str | None = None,
    **values: Any,
) -> Iterator[tuple[Any, Any]]:
    """Yields ``(gallery items, status)`` updates; the last one holds the stills ``(image, caption)``
    at the loudest moments. ``gr.Error`` on any problem (its message also in the status), but a cancel or a style
    that cannot be fetched or loaded: the status line says it and the stream ends (:func:`_outcome`)."""
    try:
        job, run = _start(jobs, "preview", song, style, style_file, session, progress, values, client)
    except JobCancelled as e:
        for line in _ended(e):
            yield gr.skip(), line
        return
    for line in _follow(jobs, run, progress):
        yield gr.skip(), (gr.skip() if line is None else line)
    if run.error is not None:
        for line in _ended(run.error):
            yield gr.skip(), line
        return
    pv = run.result
    items = [(f, f"{clock(t)} · frame {i}") for f, t, i in zip(pv.frames, pv.times, pv.indices)]
    status = (
        f"Preview: {len(items)} stills at the loudest moments of **{html.escape(job.song_name)}**. "
        "Rendering with the same seed and parameters gives exactly these frames."
    )
    yield items, status


def _last(stream: Iterator[Any]) -> Any:
    out = None
    for item in stream:
        out = item
    return out


def render_video(
    jobs: Jobs,
    song: Any,
    style: Any = "default",
    style_file: Any = None,
    *,
    progress: Callable[..., Any] | None = None,
    **values: Any,
) -> tuple[str, str, str, list[str] | None]:
    """``(mp4 path, Python snippet, status, every format's file or None)``: :func:`render_stream` run to the end."""
    return _last(render_stream(jobs, song, style, style_file, progress=progress, **values))


def preview_video(
    jobs: Jobs,
    song: Any,
    style: Any = "default",
    style_file: Any = None,
    *,
    progress: Callable[..., Any] | None = None,
    **values: Any,
) -> tuple[list[Any], str]:
    """``(gallery items, status)``: :func:`preview_stream` run to the end."""
    return _last(preview_stream(jobs, song, style, style_file, progress=progress, **values))


def validate(jobs: Jobs, values: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``gr.validate`` per input of :data:`INPUT_NAMES`: the problem (if any) next to the field
    that caused it. Problems that belong to no one field are left to the handler."""
    ok = [gr.validate(True, "") for _ in INPUT_NAMES]
    try:
        jobs.prepare(
            values["song"],
            values["style"],
            values["style_file"],
            **{k: v for k, v in values.items() if k not in ("song", "style", "style_file")},
        )
    except Exception as e:
        name = field_of(e, values)
        if name is None:
            return ok
        text = field_message(e)
        return [gr.validate(n != name, text if n == name else "") for n in INPUT_NAMES]
    return ok


def estimate_lines(
    jobs: Jobs, song: Any, style: Any, style_file: Any, session: str | None = None, **values: Any
) -> Iterator[str]:
    """The line above the buttons: how long a render of these values takes on this server ("measuring"
    first, while this server's speed for the style and size is being measured), and when it would start when
    jobs of other visitors (not ``session``'s) are ahead: all from the one model (:meth:`Jobs.estimate`,
    :meth:`Jobs.queue_wait`)."""
    cfg = jobs.cfg
    length = None
    if not song:  # before any upload: the page's excerpt of a song long enough
        length = min(float(values.get("duration") or cfg.excerpt_seconds), cfg.max_seconds)
        values = {**values, "start": 0, "duration": min(length, ex.SECONDS)}
    try:
        job = jobs.prepare(song or str(jobs.example_song(ex.SECONDS)), style, style_file, **values)
    except Exception as e:
        yield f"Render time: fix this first: {user_error(e).message}"
        return
    if length is not None:
        job = dataclasses.replace(job, seconds=length, max_seconds=None)
    note = ""
    if job.style != "default" and not str(job.style).endswith((".pkl", ".safetensors")):
        from ..store.catalogue import is_downloaded, load_catalogue

        if not is_downloaded(load_catalogue()[job.style]):
            note = " The first use of this style downloads it."
    if not song:
        note += " Upload a song (or click an example) to start."
    key = speed_key(job.style, job.params)
    if jobs.speeds.get(key) is None and not song:  # measured at start-up (warm-up), or once there is a song
        yield "Upload a song (or click an example): the time its render takes on this server shows here."
        return
    if jobs.speeds.get(key) is None and job.style == "default":
        yield f"Render time: measuring this server's speed for this size (a few seconds) … {job.n_frames} frames."
    try:
        est = jobs.estimate(job)
    except Exception as e:  # a measurement that fails says nothing about the visitor's request
        log.warning("could not measure the render speed: %s", e)
        est = jobs.speeds.estimate(key, job.seconds, job.params.fps)
    if job.formats:
        note = f" {len(job.formats)} files ({', '.join(job.formats)}), {job.n_frames} frames each." + note
    wait, ahead = jobs.queue_wait(session, est.seconds)
    yield estimate_text(est, job.seconds, job.params.fps, note, wait, ahead)


def estimate_line(jobs: Jobs, song: Any, style: Any, style_file: Any, session: str | None = None, **values: Any) -> str:
    """The last of :func:`estimate_lines`."""
    return _last(estimate_lines(jobs, song, style, style_file, session, **values))


def _bind(
    fn: Callable[..., Any],
    names: Sequence[str],
    defaults: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    request: bool = False,
    forwarded: bool = False,
) -> Callable[..., Any]:
    """A function whose signature is ``(*names[, progress=gr.Progress()][, request: gr.Request])``
    calling ``fn(song, style, style_file, progress=..., session=..., client=..., **values)`` (only the keywords
    asked for; ``client``: :func:`client_key`); a generator function if ``fn`` is one. Gradio names the API's
    parameters after it."""

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = handler.__signature__.bind(*args, **kwargs)  # type: ignore[attr-defined]
        bound.apply_defaults()
        values = dict(bound.arguments)
        extra = {}
        if progress:
            extra["progress"] = values.pop("progress")
        if request:
            req = values.pop("request")
            extra["session"] = getattr(req, "session_hash", None)
            extra["client"] = client_key(req, forwarded)
        song, style, style_file = (
            values.pop(k, d) for k, d in (("song", None), ("style", "default"), ("style_file", None))
        )
        return fn(song, style, style_file, **extra, **values)

    if inspect.isgeneratorfunction(fn):

        def handler(*args: Any, **kwargs: Any) -> Any:
            yield from call(args, kwargs)
    else:

        def handler(*args: Any, **kwargs: Any) -> Any:
            return call(args, kwargs)

    defaults = {"style": "default", "style_file": None, **ui_defaults(), **(defaults or {})}
    params = [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults.get(n, inspect.Parameter.empty))
        for n in names
    ]
    if progress:
        params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    if request:
        params.append(
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)
        )
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request} if request else {}  # Gradio finds gr.Request by type hint
    handler.__name__ = getattr(fn, "__name__", "handler")
    handler.__doc__ = fn.__doc__
    return handler


# --------------------------------------------------------------------------------------------------
# The page


#: Where the page's own images and showcase video are served (routes added at launch; the bytes are made in memory
#: or read once, never served from files).
PREVIEW_URL = "/lsd-jax/preview.jpg"
FAVICON_URL = "/lsd-jax/favicon.png"
SHOWCASE_URL = "/lsd-jax/showcase.mp4"
THUMB_URL = "/lsd-jax/example-{}.jpg"  # the i-th example's thumbnail
PREVIEW_SIZE = (630, 1200)  # (height, width): the size link previews (og:image, twitter:card) show large
FAVICON_SIZE = 64
THUMB_SIZE = 160

CSS = """
#lsd-title h1 { margin-bottom: 0; }
#main-row { display: grid !important; grid-template-columns: minmax(0, 5fr) minmax(0, 4fr);
            grid-template-areas: "top out" "params out"; align-items: start; }
#main-row > #top { grid-area: top; }
#main-row > #outputs { grid-area: out; }
#main-row > #params { grid-area: params; }
/* a phone: one column, the song and the buttons first, then the art (showcase, examples), the rest of the form,
   the outputs (the progress line first) and the parameters; the columns' own boxes dissolve into the grid */
@media (max-width: 768px) {
  #main-row { grid-template-columns: minmax(0, 1fr); grid-template-areas: none; }
  #main-row > * { grid-area: auto !important; }
  #main-row > #top, #main-row > #outputs { display: contents; }
  #main-row > #top > * { order: 1; }
  #main-row > #top > #song, #main-row > #top > #buttons, #main-row > #top > #estimate { order: 0; }
  #main-row > #outputs > * { order: 2; }
  #main-row > #outputs > #art { order: 0; }
  #main-row > #params { order: 3; }
  #showcase video { height: 32vh; width: auto; max-width: 100%; margin: 0 auto; background: none; }
}
#preview-gallery { min-height: 120px; }
#buttons button { min-width: 7em; }
#estimate p, #status p { margin: 0.2em 0; }
#status { min-height: 1.5em; }
/* the outputs stay out of sight until they hold something; the showcase gives way to the first */
#video:not(:has(video)), #preview-gallery:not(:has(img)), #downloads:not(:has(a)) { display: none !important; }
#outputs:has(#video video, .lsd-live:not([hidden]), #preview-gallery img) #showcase { display: none; }
#outputs:has(.lsd-live:not([hidden])) #status { display: none; }  /* the player shows the progress line itself */
.lsd-live[hidden] { display: none; }
.lsd-live video { width: 100%; max-height: 70vh; background: #000; border-radius: 6px; }
.lsd-live p { margin: 0.2em 0 0; font-size: 0.85em; opacity: 0.75; }
.lsd-live p.lsd-progress { margin: 0 0 0.3em; font-size: 1em; opacity: 1; min-height: 1.5em; }
.lsd-showcase[hidden] { display: none; }
.lsd-showcase video { display: block; width: 100%; aspect-ratio: 1; max-height: 60vh; object-fit: contain;
                      background: #000; border-radius: 6px; }
.lsd-showcase p { margin: 0.2em 0 0; font-size: 0.85em; opacity: 0.75; }
#examples-note p { margin: 0.2em 0; }
#examples-table .gallery { display: grid; grid-template-columns: repeat(3, minmax(0, 150px)); gap: 8px; }
#examples-table .gallery-item { aspect-ratio: 1; padding: 0; margin: 0; display: flex; align-items: flex-end;
  overflow: hidden; border-radius: 8px; background-size: cover; background-position: center; }
#examples-table .gallery-item > div { width: 100% !important; max-width: none !important; padding: 3px 6px;
  font-size: 0.8em; line-height: 1.25; text-align: left; color: #fff; background: rgba(0, 0, 0, 0.6); }
""" + "".join(
    f"#examples-table .gallery-item:nth-child({i + 1}) {{ background-image: url({THUMB_URL.format(i)}); }}\n"
    for i in range(len(ex.EXAMPLES))
)

#: The showcase: a short video of what the app makes, muted and looping, where the visitor's output will be.
SHOWCASE_TEMPLATE = (
    '<div class="lsd-showcase"><video muted autoplay loop playsinline disablepictureinpicture></video>'
    "<p>What it makes: 4 s of the demo song in the default style. Upload a song, or click an example.</p></div>"
)

#: The showcase (``js_on_load`` of a gr.HTML): load the video once the server has rendered it (503 until then),
#: pause it while hidden; and, on a phone, scroll to the progress line and the player when a job starts and when
#: new output shows (a live video, a finished one, stills). A cheap check every 300 ms, no observer of the DOM.
SHOWCASE_JS = r"""
const video = element.querySelector('video');
const sleep = ms => new Promise(ok => setTimeout(ok, ms));
video.muted = true;
(async () => {
  for (let i = 0; i < 600; i++) {
    let r = null;
    try { r = await fetch(URL_, {method: 'HEAD', cache: 'no-store'}); } catch (e) {}
    if (r && r.ok) { video.src = URL_; video.play().catch(() => {}); return; }
    if (r && r.status === 404) { element.querySelector('.lsd-showcase').hidden = true; return; }
    await sleep(2000);
  }
})();
const phone = window.matchMedia('(max-width: 768px)');
const q = s => document.querySelector(s);
let seen = {busy: false, live: false, src: '', stills: false};
setInterval(() => {
  const cancel = q('#cancel-btn'), done = q('#video video');
  const now = {busy: !!cancel && cancel.offsetParent !== null, live: !!q('#live .lsd-live:not([hidden])'),
               src: done ? done.currentSrc || done.src || '' : '', stills: !!q('#preview-gallery img')};
  const news = (now.busy && !seen.busy) || (now.live && !seen.live) || (now.src && now.src !== seen.src)
               || (now.stills && !seen.stills);
  seen = now;
  if (news && phone.matches && q('#status')) q('#status').scrollIntoView({block: 'start', behavior: 'smooth'});
  if (video.offsetParent === null) { if (!video.paused) video.pause(); }
  else if (video.paused && video.src) video.play().catch(() => {});
}, 300);
""".replace("URL_", repr(SHOWCASE_URL))

#: The form's own style: a problem shown at a field sits above it, in the flow, not over it (Gradio's status
#: tracker lays it over the whole field, hiding the label, its help and a slider's number box), so the field stays
#: visible and usable while its message is shown.
FIELDS_CSS = """
#main-row .block > .wrap:has(> .validation-error) { position: static !important; padding: 0 !important;
                                                   background: none; align-items: stretch; }
#main-row .validation-error { position: static; justify-content: space-between; text-align: left;
                              border: 1px solid var(--error-border-color); border-radius: var(--radius-sm);
                              margin-bottom: var(--size-1); }
"""

#: The form's own script (``launch(js=...)``, run when the page loads): a slider's number box keeps what the
#: visitor typed. Gradio's slider clamps it into its range when the box loses focus, so 500 fps would run as 60
#: without a word; kept, it reaches the parameter table's checks (:func:`validate`), which refuse it next to the
#: field and run nothing. Only the sliders of the form (``.lsd-checked``: :func:`lsd_jax.web.form.component`).
FIELDS_JS = r"""
document.addEventListener('blur', e => {
  const box = e.target;
  if (box instanceof HTMLInputElement && box.type === 'number' && box.closest('.lsd-checked')) e.stopPropagation();
}, true);
"""

LIVE_TEMPLATE = (
    '<div class="lsd-live" hidden><p class="lsd-progress"></p><video controls playsinline></video>'
    "<p>Playing while later frames still render; the finished MP4 replaces it.</p></div>"
)

#: The live player (``js_on_load`` of a gr.HTML): on a new channel token, fetch the live copy's bytes
#: from the server (``live_chunk``) into a MediaSource and play; when the token clears (the render
#: ended), hand the position over to the finished video. The main thread stays free: the base64 is decoded by the
#: browser's fetch of a data: URL (not a loop in script), appended in pieces of at most 256 KB, and the next piece
#: is asked for at once while there is more; the video starts once 2 s are buffered (or the render is done), so
#: that it does not stall while the render is ahead.
LIVE_JS = r"""
const box = () => element.querySelector('.lsd-live');
const sleep = ms => new Promise(ok => setTimeout(ok, ms));
const bytesOf = s => fetch('data:application/octet-stream;base64,' + s).then(r => r.arrayBuffer())
                     .then(b => new Uint8Array(b));
const PIECE = 256 * 1024, AHEAD_S = 2;
const idle = sb => sb.updating ? new Promise(ok => sb.addEventListener('updateend', ok, {once: true}))
                               : Promise.resolve();
let run = 0;
const mark = (video, k, v) => { video.dataset[k] = String(v); };  // for whoever watches (tests)
const ahead = video => { const b = video.buffered;
  return b.length ? b.end(b.length - 1) - video.currentTime : 0; };
async function appendPiece(sb, video, bytes) {
  for (let tries = 0; ; tries++) {
    try {
      await idle(sb);
      await new Promise((ok, bad) => { sb.addEventListener('updateend', ok, {once: true});
        sb.addEventListener('error', bad, {once: true}); sb.appendBuffer(bytes); });
      return;
    } catch (e) {  // the buffer is full: drop what was played
      if (tries > 2 || e.name !== 'QuotaExceededError' || video.currentTime < 12) throw e;
      await idle(sb); sb.remove(0, video.currentTime - 10); await idle(sb);
    }
  }
}
async function append(sb, video, bytes) {
  for (let i = 0; i < bytes.length; i += PIECE) await appendPiece(sb, video, bytes.subarray(i, i + PIECE));
}
async function pump(token, me) {
  const MS = window.ManagedMediaSource || window.MediaSource;
  const video = element.querySelector('video');
  if (!MS || !video) return;
  const ms = new MS();
  video.disableRemotePlayback = true;
  video.src = URL.createObjectURL(ms);
  await new Promise(ok => ms.addEventListener('sourceopen', ok, {once: true}));
  let sb = null, offset = 0, state = 'waiting', stalls = 0;
  mark(video, 'state', state); delete video.dataset.playedAt; mark(video, 'stalls', 0);
  video.addEventListener('playing', () => { if (me === run && !video.dataset.playedAt)
    mark(video, 'playedAt', Date.now()); });
  video.addEventListener('waiting', () => { if (me === run && video.dataset.playedAt)
    mark(video, 'stalls', ++stalls); });
  const start = () => {
    state = 'playing'; mark(video, 'state', state);
    box().hidden = false;
    video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });
  };
  while (me === run) {
    let r;
    try { r = await server.live_chunk([token, offset]); } catch (e) { await sleep(1000); continue; }
    if (me !== run) break;
    if (r.line) element.querySelector('.lsd-progress').textContent = r.line;
    if (r.data) {
      const bytes = await bytesOf(r.data);
      if (!sb) sb = ms.addSourceBuffer('video/mp4; codecs="' + r.codecs + '"');
      try { await append(sb, video, bytes); } catch (e) { if (me === run) mark(video, 'state', 'failed'); break; }
      offset += bytes.length;
      mark(video, 'bytes', offset);
      if (state === 'waiting' && (ahead(video) >= AHEAD_S || r.done)) start();
    }
    if (r.done) {
      if (sb && ms.readyState === 'open') { await idle(sb); ms.endOfStream(); }
      if (state === 'waiting' && sb) start();
      if (me === run) mark(video, 'state', 'done');
      break;
    }
    if (!r.more) await sleep(r.data ? 150 : 400);
  }
}
async function handoff() {
  const live = element.querySelector('video');
  const at = live ? live.currentTime : 0, playing = live && !live.paused && !!live.dataset.playedAt;
  box().hidden = true;
  if (live) { live.pause(); live.removeAttribute('src'); live.load(); mark(live, 'state', 'idle'); }
  if (!playing) return;
  for (let i = 0; i < 100; i++) {  // the finished video appears beside it: go on from the same moment
    const v = document.querySelector('#video video');
    if (v && v.readyState >= 1) { v.currentTime = Math.min(at, v.duration || at); v.play().catch(() => {}); return; }
    await sleep(100);
  }
}
watch('value', () => { run += 1; if (props.value) pump(props.value, run); else handoff(); });
"""


def _rows(fields: Sequence[Field]) -> list[list[Field]]:
    """Sliders two to a row (they need the width); a run of checkboxes, or of other widgets, shares a
    row (Gradio wraps it)."""

    def shape(f: Field) -> str:  # the speed box sits with the sliders (a number, beat or bar)
        return "slider" if f.kind == "speed" else f.kind if f.kind in ("slider", "checkbox", "checkboxes") else "other"

    rows: list[list[Field]] = []
    for f in fields:
        last = rows[-1] if rows else None
        if last and shape(f) == shape(last[0]) and (shape(f) != "slider" or len(last) < 2):
            last.append(f)
        else:
            rows.append([f])
    return rows


def _widgets(fields: Sequence[Field], components: dict[str, Any]) -> None:
    for row in _rows([f for f in fields if f.kind != "files"]):
        with gr.Row():
            for f in row:
                components[f.name] = component(f)
    for f in fields:
        if f.kind == "files":
            components[f.name] = component(f)


def _short_api_info(c: Any, text: str = "") -> Any:
    """The component's API description: ``text`` instead of Gradio's FileData docstring."""
    original = c.api_info

    def api_info() -> dict[str, Any]:
        info = dict(original())
        if "additional_description" in info:
            info["additional_description"] = text
        return info

    c.api_info = api_info
    return c


#: What the tool's description says of the inputs that are not rows of the parameter table.
_INPUT_DOCS = {
    "song": "(audio file) the song (MP3, WAV, FLAC, OGG, …): a URL, or a base64 data: URL",
    "style": "(text) a style by name: 'default' (embedded) or a catalogue model's name",
    "style_file": "(file, optional) an NVIDIA StyleGAN .pkl or converted .safetensors to use as the style",
}
_KIND_WORDS = {"slider": "number", "number": "number", "int": "integer", "checkbox": "true/false", "text": "text"}


def _arg_line(f: Field) -> str:
    """One ``Args:`` line of the tool's docstring: ``name: (type; valid values) help``, from the parameter table
    (the server's tighter limits added)."""
    p = PARAM.get(f.name)
    kind = _KIND_WORDS.get(f.kind, "")
    if f.kind in ("radio", "tristate"):
        kind = "one of " + ", ".join(repr(c) for c in f.choices)
    elif f.kind == "checkboxes":
        kind = "a list of any of " + ", ".join(repr(c) for c in f.choices)
    elif f.kind == "speed":
        kind = "a number, 'beat' or 'bar'"
    elif f.kind == "file":
        kind = "audio file, optional"
    elif f.kind == "files":
        kind = "image files, optional"
    rng = p.range_text() if p is not None and f.kind in ("slider", "number", "int", "text") else ""
    top = min(h for h in (p.hi, p.ui_hi if f.kind == "slider" else None) if h is not None) if p and p.hi else None
    if top is not None and f.hi is not None and f.hi < top:  # the server's own limit (a slider's top is not one)
        rng += f"; this server: at most {f.hi:g}"
    if f.note:
        rng = "; ".join(x for x in (rng, f.note) if x)
    head = f"({kind}{'; ' + rng if rng else ''})"
    return f"{f.name}: {head} {' '.join(f.help.split())}"


def tool_doc(summary: str, fields: Sequence[Field]) -> str:
    """A handler's docstring for the API and the MCP tool: ``summary``, then ``Args:`` with one line per input (its
    type, valid values and help from the parameter table), in :data:`INPUT_NAMES` order."""
    by_name = {f.name: f for f in fields}
    lines = [f"{n}: {_INPUT_DOCS[n]}" if n in _INPUT_DOCS else _arg_line(by_name[n]) for n in INPUT_NAMES]
    return summary.strip() + "\n\nArgs:\n" + "\n".join(f"    {line}" for line in lines) + "\n"


class PageImages:
    """The page's own pictures: the link-preview image, the favicon and the examples' thumbnails (frames of the
    embedded default style, the CPPN: :func:`_render_page_images`), and the showcase video (``showcase``: a function
    making an MP4's bytes, :func:`showcase_maker`). Each is made once, when first asked for (:meth:`start`: all in the
    background, as :func:`main` does at start-up), and kept as bytes."""

    def __init__(self, showcase: Callable[[], bytes] | None = None, thumb_seeds: Sequence[int] = ()) -> None:
        self._lock = threading.Lock()
        self._images: dict[str, bytes] | None = None
        self._thumb_seeds = tuple(thumb_seeds)
        self._make_showcase = showcase
        self._video_lock = threading.Lock()
        self._video: bytes | None = None
        self._video_state = "not started" if showcase is not None else "none"  # making, ready, failed

    def start(self) -> None:
        threading.Thread(target=self.get, name="lsd-jax-page-images", daemon=True).start()
        self.showcase()

    def get(self) -> dict[str, bytes]:
        """``{"preview": JPEG bytes, "favicon": PNG bytes, "example-0": JPEG bytes, ...}``."""
        with self._lock:
            if self._images is None:
                self._images = _render_page_images(thumb_seeds=self._thumb_seeds)
            return self._images

    def showcase(self) -> tuple[str, bytes | None]:
        """``(state, MP4 bytes or None)``: "ready" with the bytes; "making" (started now if it was not); "failed"
        or "none" (this page has no showcase)."""
        with self._video_lock:
            if self._video_state == "not started":
                self._video_state = "making"
                threading.Thread(target=self._showcase_work, name="lsd-jax-showcase", daemon=True).start()
            return self._video_state, self._video

    def _showcase_work(self) -> None:
        assert self._make_showcase is not None
        try:
            data, state = self._make_showcase(), "ready"
        except Exception as e:  # the page goes on without it (its place shows the examples' note)
            log.warning("could not render the showcase video: %s", e)
            data, state = None, "failed"
        with self._video_lock:
            self._video, self._video_state = data, state


def _cppn_frame(style: Any, seed: int, size: tuple[int, int]) -> Any:
    """A frame (uint8 RGB PIL image of ``size`` (height, width)) of the CPPN ``style`` at a latent drawn from
    ``seed``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    c = np.zeros((1, style.c_dim), np.float32)
    c[0, seed % style.c_dim] = 1.0
    frame = style.images({"z": rng.standard_normal((1, style.z_dim)).astype(np.float32), "c": c}, size)
    return Image.fromarray(((np.asarray(frame[0]) + 1.0) * 127.5).clip(0, 255).astype(np.uint8))  # [-1, 1] -> 8 bit


def _render_page_images(seed: int = 7, thumb_seeds: Sequence[int] = ()) -> dict[str, bytes]:
    import io

    from PIL import Image

    from ..styles.resolve import cppn_style

    style = cppn_style()
    image = _cppn_frame(style, seed, PREVIEW_SIZE)
    h, w = PREVIEW_SIZE
    icon = image.crop(((w - h) // 2, 0, (w + h) // 2, h)).resize((FAVICON_SIZE, FAVICON_SIZE), Image.LANCZOS)
    pictures = [("preview", image, "JPEG"), ("favicon", icon, "PNG")]
    thumb = (THUMB_SIZE, THUMB_SIZE)
    pictures += [(f"example-{i}", _cppn_frame(style, s, thumb), "JPEG") for i, s in enumerate(thumb_seeds)]
    out: dict[str, bytes] = {}
    for name, img, fmt in pictures:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
        out[name] = buf.getvalue()
    return out


def showcase_maker(jobs: Jobs) -> Callable[[], bytes]:
    """A function rendering the showcase (:func:`lsd_jax.web.examples.showcase_values`: a few seconds of the demo
    song, small, the default style) as a job like the others (in a work slot), returning the MP4's bytes."""

    def make() -> bytes:
        cfg = jobs.cfg
        values = ex.showcase_values(cfg.max_seconds, cfg.max_resolution)
        job = jobs.prepare(str(jobs.example_song(ex.SECONDS)), "default", None, **values)
        with jobs.slot():
            return jobs.render(job).read_bytes()

    return make


def _public_url(path: str) -> str:
    """``path`` as an absolute URL where the public address is known (a Hugging Face Space sets SPACE_HOST; link
    previewers want absolute og:image URLs), else as it is."""
    host = os.environ.get("SPACE_HOST", "").strip()
    return f"https://{host}{path}" if host else path


#: The page's <head> additions: the description for search engines and the favicon.
META_HEAD = (
    f'<meta name="description" content="{html.escape(DESCRIPTION)}" />'
    f'<link rel="icon" type="image/png" href="{FAVICON_URL}" />'
)


def _with_meta(demo: gr.Blocks) -> None:
    """Fill the page's social-preview tags: og:/twitter: title, description and image (:data:`PREVIEW_URL`)."""
    original = demo.get_config_file

    def config() -> Any:
        c = original()
        c["simple_description"] = DESCRIPTION
        c["thumbnail"] = _public_url(PREVIEW_URL)
        return c

    demo.get_config_file = config  # type: ignore[method-assign]


def _probe_style_hosts() -> None:
    """Probe the catalogue's hosts (once per process, :func:`lsd_jax.store.catalogue.probe_hosts`), waiting a few
    seconds at most, so the menus built now (this page's and the Live page's) list the styles whose hosts cannot be
    reached apart, with the reason; each page load refreshes the menu with what a slower probe found since."""
    try:
        from ..store.catalogue import probe_hosts
        from ..store.reach import PROBE_TIMEOUT_S

        probe_hosts(wait_s=PROBE_TIMEOUT_S + 0.5)
    except Exception as e:  # a broken user catalogue: the menu says what it can without it
        log.warning("could not probe the style hosts: %s", e)


def _uploaded_style(upload: Any) -> tuple[str, str] | None:
    """The menu entry ``(label, value)`` of a style file this visitor uploaded (its value: the file on the server,
    which :func:`lsd_jax.web.door.visitor_style` accepts as an upload); None without one."""
    if not upload:
        return None
    path = str(getattr(upload, "path", upload))
    return f"{Path(path).name} (your upload, this session only)", path


def style_menu(show_all: bool = False, upload: Any = None) -> list[tuple[str, str]]:
    """The style menu of one visitor's page: :func:`~lsd_jax.web.form.style_choices` (the same list as the Live
    page's), then their uploaded style file, if any."""
    mine = _uploaded_style(upload)
    return style_choices(show_all) + ([mine] if mine else [])


def unavailable_label() -> str:
    """The label of the box that lists the styles this server cannot use: how many, and the commonest reason."""
    marked = [label.split(" — unavailable: ", 1)[1] for label, _ in style_choices(True) if " — unavailable: " in label]
    if not marked:
        return "also list the styles this server cannot download"
    reasons = ["no network" if m.startswith("no network") else m for m in marked]
    why = max(set(reasons), key=reasons.count)
    n, most = len(marked), "" if reasons.count(why) == len(reasons) else "most: "
    return f"also list the {n} style{'s' if n > 1 else ''} this server cannot use now ({most}{why})"


#: Gradio's template opens <head> with its own social tags ("Gradio", "Click to try out the app!", its header
#: image) before the app's; link previewers read the first, so the page's HTML goes out without them.
_GRADIO_META = re.compile(
    r"""<meta\s+(?:property|name)="(?:og|twitter):[a-z]+"\s+content="(?:Gradio|Click to try out the app!|\{url\}|"""
    r"""https://gradio\.app/|@Gradio|@teamGradio|https://raw\.githubusercontent\.com/gradio-app/[^"]*)"\s*/?>\s*"""
)


def page_html(text: str) -> str:
    """The page's HTML without Gradio's placeholder social tags (the app's own stay), with :data:`META_HEAD` in its
    <head> (in the served HTML, for link previewers and search engines that run no script)."""
    text = _GRADIO_META.sub("", text)
    return text.replace("</head>", META_HEAD + "</head>", 1) if META_HEAD not in text else text


def _rewrite_html(app: Callable[..., Any]) -> Callable[..., Any]:
    """An ASGI app answering as ``app`` does, with an HTML body passed through :func:`page_html`."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body" or not start:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                body = page_html(body.decode("utf-8")).encode("utf-8")
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return wrapped


def _serve_page_images(demo: gr.Blocks) -> None:
    """Add the routes of :data:`PREVIEW_URL`, :data:`FAVICON_URL`, the examples' thumbnails (:data:`THUMB_URL`) and
    :data:`SHOWCASE_URL` (503 while it renders, 404 without one) to the launched server; its pages' HTML goes out
    through :func:`page_html`."""
    from fastapi import Response

    images = getattr(demo, "lsd_page_images", None) or PageImages()  # main() starts making them at start-up
    demo.lsd_page_images = images  # type: ignore[attr-defined]
    day = {"Cache-Control": "public, max-age=86400"}

    def route(name: str, media: str) -> Callable[[], Any]:
        def serve():  # no parameters: nothing in the request changes what it sends
            found = images.get().get(name)
            return Response(found, media_type=media, headers=day) if found else Response(status_code=404)

        return serve

    def showcase():
        state, data = images.showcase()
        if data is not None:
            return Response(data, media_type="video/mp4", headers={"Cache-Control": "public, max-age=3600"})
        if state == "making":  # the page asks again (SHOWCASE_JS)
            return Response(status_code=503, headers={"Retry-After": "2", "Cache-Control": "no-store"})
        return Response(status_code=404)

    routes = [(PREVIEW_URL, route("preview", "image/jpeg")), (FAVICON_URL, route("favicon", "image/png"))]
    routes += [(THUMB_URL.format(i), route(f"example-{i}", "image/jpeg")) for i in range(len(ex.EXAMPLES))]
    routes += [(SHOWCASE_URL, showcase)]
    for url, serve in routes:
        demo.server_app.add_api_route(url, serve, methods=["GET", "HEAD"], include_in_schema=False)
        # before Gradio's own routes, so that no catch-all of theirs answers first
        demo.server_app.router.routes.insert(0, demo.server_app.router.routes.pop())
    pages = {"/"} | {f"/{p[0]}" for p in getattr(demo, "pages", []) if p and p[0]}  # the main page and the Live page
    for route in demo.server_app.router.routes:
        if getattr(route, "path", None) in pages and "GET" in (getattr(route, "methods", None) or ()):
            route.app = _rewrite_html(route.app)


def build_app(cfg: AppConfig | None = None, jobs: Jobs | None = None) -> gr.Blocks:
    """The Blocks page, with its queue; launch it with :func:`launch`. Without ``jobs``, the app
    makes its own and closes them (deleting its folders) when the app closes."""
    cfg = cfg or (jobs.cfg if jobs is not None else AppConfig.from_env())
    owned = jobs is None
    jobs = Jobs(cfg) if jobs is None else jobs
    fields = page_fields(cfg)
    defaults = {f.name: f.value for f in fields}
    _probe_style_hosts()
    by_group = {g: [f for f in fields if f.group == g] for g in GROUPS}
    c: dict[str, Any] = {}
    # outputs first (unrendered), so the examples beside the inputs can name them
    video = gr.Video(
        label="video", interactive=False, buttons=["download"], autoplay=True, elem_id="video", render=False
    )
    gallery = gr.Gallery(
        label="stills", columns=3, height="auto", object_fit="contain", elem_id="preview-gallery", render=False
    )
    code = gr.Code(
        value="# the Python that reproduces your video appears here after a render\n",
        language="python",
        label="python",
        interactive=False,
        buttons=["copy"],
        elem_id="snippet",
        render=False,
    )
    _read_back_unescaped(code)  # the examples' snippets, from Gradio's CSV cache
    status = gr.Markdown("", label="status", elem_id="status", render=False)
    downloads = gr.File(
        label="all formats (download)",
        file_count="multiple",
        interactive=False,
        elem_id="downloads",
        render=False,
    )

    def live_chunk(args: Any) -> dict[str, Any]:
        """The live copy's next bytes (:meth:`LiveChannels.chunk`) and the progress line the player shows above
        itself (the status line above it hides while it plays: one update of Gradio's a second cost the page more
        than all the video's bytes)."""
        token, offset = args
        out = jobs.live.chunk(token, offset)
        run = jobs.live.source(token)
        if isinstance(run, Run) and not run.finished():
            out["line"] = _progress_line(jobs, run)[1] + " …"
        return out

    live = gr.HTML(
        "", html_template=LIVE_TEMPLATE, js_on_load=LIVE_JS, server_functions=[live_chunk], elem_id="live", render=False
    )
    with gr.Blocks(
        title=TITLE, analytics_enabled=False, delete_cache=(max(60, cfg.cache_ttl // 4), cfg.cache_ttl)
    ) as demo:
        gr.Markdown(
            "# lsd-jax\n"
            "Music-reactive GAN videos, after [Lucid Sonic Dreams](https://github.com/mikaelalafriz/lucid-sonic-dreams),"
            " in pure JAX. Upload a song (its loudest "
            f"{duration_text(cfg.excerpt_seconds)} are picked), pick a style, **Preview** a few stills, then "
            f"**Render**: the video plays while it renders. This server renders up to "
            f"{duration_text(cfg.max_seconds)} of music, {cfg.max_resolution} px at most; uploads up to "
            f"{cfg.max_file_size}.",
            elem_id="lsd-title",
        )
        # a grid (CSS): the song, buttons and style top left, the parameters below them, the outputs on the
        # right; on a phone the outputs come right after the buttons, before the parameters
        with gr.Row(equal_height=False, elem_id="main-row"):
            with gr.Column(scale=5, elem_id="top"):
                c["song"] = _short_api_info(
                    gr.Audio(label="Song", type="filepath", sources=["upload"], buttons=["download"], elem_id="song"),
                    "an audio file: handle_file('song.mp3')",
                )
                with gr.Row(elem_id="buttons"):
                    preview_btn = gr.Button("Preview", variant="secondary", elem_id="preview-btn", min_width=90)
                    render_btn = gr.Button("Render", variant="primary", elem_id="render-btn", min_width=90)
                    cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", visible=False, min_width=90)
                estimate = gr.Markdown("", elem_id="estimate")
                # the song's form and per-section values: shown once the song is analysed (the buttons stay put)
                form_picture, c[sections.FIELD] = sections.widgets()
                with gr.Row():
                    c["style"] = gr.Dropdown(
                        choices=style_choices(),
                        value="default",
                        label="Style",
                        info="style: the embedded style, or a catalogue model (downloaded once)",
                        elem_id="style",
                    )
                    c["style_file"] = _short_api_info(
                        gr.File(
                            label="or upload a style (.pkl / .safetensors)",
                            file_types=[".pkl", ".safetensors"],
                            elem_id="style-file",
                        ),
                        "an NVIDIA StyleGAN .pkl or converted .safetensors (optional)",
                    )
                show_all = gr.Checkbox(False, label=unavailable_label(), elem_id="show-all-styles")
                recipe_file = gr.File(
                    label="render again: a video made with lsd-jax fills the form from its recipe",
                    file_types=[".mp4", ".mov", ".webm", ".json"],
                    elem_id="recipe-file",
                )
            with gr.Column(scale=4, elem_id="outputs"):
                # art first: the showcase plays where the visitor's output will be, the examples under it
                with gr.Column(elem_id="art"):
                    gr.HTML("", html_template=SHOWCASE_TEMPLATE, js_on_load=SHOWCASE_JS, elem_id="showcase")
                    if cfg.examples != "off":
                        example_song = str(jobs.example_song(ex.SECONDS))
                        example_box = gr.Column(elem_id="examples")
                    else:
                        example_box = None
                status.render()  # the progress line, above the player
                live.render()
                video.render()
                downloads.render()
                gallery.render()
                code.render()
            with gr.Column(scale=5, elem_id="params"):
                with gr.Accordion(f"{GROUPS['stems']} (optional)", open=False), gr.Row():
                    for f in by_group["stems"]:
                        c[f.name] = _short_api_info(component(f), "an audio file (optional)")
                with gr.Group():
                    _widgets(by_group["basic"], c)
                with gr.Accordion("Advanced parameters", open=False):
                    for group, title in GROUPS.items():
                        if group in ("basic", "stems") or not by_group[group]:
                            continue
                        gr.Markdown(f"**{title}**")
                        _widgets(by_group[group], c)
                c["keyframe_images"] = _short_api_info(c["keyframe_images"], "image files (optional)")
        missing = set(INPUT_NAMES) - set(c)
        assert not missing, missing
        inputs = [c[n] for n in INPUT_NAMES]
        recipe_names = tuple(ui_values(RenderParams()))
        recipe_targets = [c[n] for n in recipe_names] + [c["style"], status]

        def _from_recipe(file: Any) -> list[Any]:
            if file is None:
                return [gr.skip()] * len(recipe_targets)
            try:
                values, note = recipe_to_ui(file)
            except LsdError as e:  # a foreign or tampered recipe: say why, change nothing
                return [gr.skip()] * (len(recipe_targets) - 1) + [f"⚠️ {public_message(str(e))}"]
            shown = [values[n] for n in recipe_names]
            if sections.FIELD in recipe_names:  # the per-section table: shown when the recipe has values by section
                k = recipe_names.index(sections.FIELD)
                shown[k] = gr.update(value=shown[k], visible=True) if shown[k] else gr.skip()
            return shown + [values.get("style", gr.skip()), public_message(note)]

        recipe_file.upload(
            _from_recipe,
            recipe_file,
            recipe_targets,
            api_visibility="private",
            show_progress="hidden",
            concurrency_id="lsd-jax-page",
            concurrency_limit=None,
        )
        buttons = [preview_btn, render_btn, cancel_btn]

        def begin(session: str | None, with_live: bool) -> tuple[Any, ...]:
            if not jobs.reserve(session):  # a second click while the first job is on its way: nothing more
                raise gr.Error(
                    "Your job is already on its way.", title="Already running", visible=False, print_exception=False
                )
            token = jobs.live.open(session) if with_live else gr.skip()
            return (
                gr.update(interactive=False),
                gr.update(interactive=False),
                gr.update(visible=True),
                token,
                "Queued …",
            )

        def begin_render(song, style, style_file, session=None, client=None, **values):  # the inputs were validated
            return begin(session, True)

        def begin_preview(song, style, style_file, session=None, client=None, **values):
            return begin(session, False)

        def end(request: gr.Request) -> tuple[Any, ...]:
            session = getattr(request, "session_hash", None)
            jobs.release(session)
            jobs.live.close(session=session)
            return gr.update(interactive=True), gr.update(interactive=True), gr.update(visible=False), ""

        def cancel(request: gr.Request) -> tuple[Any, ...]:
            n = jobs.cancel(getattr(request, "session_hash", None))
            return (*end(request), CANCELLED if n else gr.skip())

        def left(request: gr.Request) -> None:  # the tab was closed or reloaded
            jobs.cancel(getattr(request, "session_hash", None))

        def _render(song, style, style_file, progress=None, session=None, client=None, **values):
            yield from render_stream(
                jobs, song, style, style_file, progress=progress, session=session, client=client, **values
            )

        def _preview(song, style, style_file, progress=None, session=None, client=None, **values):
            yield from preview_stream(
                jobs, song, style, style_file, progress=progress, session=session, client=client, **values
            )

        def _validate(song, style, style_file, session=None, client=None, **values):
            # runs when Gradio queues the event (before it waits): one visitor cannot fill the queue for everyone
            if queued_by(demo, client, RENDER_QUEUE, cfg.forwarded) >= cfg.per_client:  # shown by the song
                text = f"this server queues at most {cfg.per_client} job(s) per visitor: wait for yours to end"
                return [gr.validate(n != "song", text if n == "song" else "") for n in INPUT_NAMES]
            return validate(jobs, {"song": song, "style": style, "style_file": style_file, **values})

        def _excerpt(song: Any, table: Any = None) -> tuple[Any, ...]:
            """The upload's analysis: the excerpt's start and length, the song's form (picture, per-section table:
            the values of ``table`` stay for the labels the song has, e.g. a recipe's loaded before the song)."""
            start = jobs.excerpt_start(song, cfg.excerpt_seconds) if song else None  # the bounded analysis pool
            excerpt = (gr.skip(), gr.skip()) if start is None else (start, cfg.excerpt_seconds)
            form = jobs.analysed(sections.form_picture, song) if song else None  # the same pool
            return (*excerpt, *sections.upload_updates(form, table))

        # the API's and the MCP tools' documentation: each input's type, range and help from the parameter table
        _render.__doc__ = tool_doc(render_stream.__doc__ or "", fields)
        _preview.__doc__ = tool_doc(preview_stream.__doc__ or "", fields)
        _render.__name__, _preview.__name__ = "render", "preview"  # the MCP tools' names
        private = dict(queue=False, api_visibility="private", show_progress="hidden")
        validator = _bind(_validate, INPUT_NAMES, defaults, progress=False, request=True, forwarded=cfg.forwarded)
        # the page checks the inputs before it disables the buttons (a failed check shows each problem
        # next to its field and stops the chain; Gradio validates queued events only, so these are
        # queued, never waiting for a job); API clients get the same check on the endpoints
        checked = dict(
            api_visibility="private",
            show_progress="hidden",
            validator=validator,
            concurrency_id="lsd-jax-page",
            concurrency_limit=None,
        )
        begins = {
            k: _bind(f, INPUT_NAMES, defaults, progress=False, request=True, forwarded=cfg.forwarded)
            for k, f in (("render", begin_render), ("preview", begin_preview))
        }
        # every queued job's handler starts at once and waits for a work slot in Jobs (first come, first served),
        # so its progress line says how long until it starts, from the jobs ahead (Gradio's own queue estimate
        # knows nothing of them); Jobs' slots still run cfg.concurrency jobs at a time
        waiting_room = max(cfg.concurrency, cfg.queue_size or cfg.concurrency)
        render_evt = render_btn.click(begins["render"], inputs, [*buttons, live, status], **checked).success(
            _bind(_render, INPUT_NAMES, defaults, request=True, forwarded=cfg.forwarded),
            inputs,
            [video, code, status, downloads],
            api_name="render",
            concurrency_id=RENDER_QUEUE,
            concurrency_limit=waiting_room,
            validator=validator,
            show_progress_on=[status],
            api_description=(
                "Render a music video. Give the song (handle_file) and any parameters by name (the page's "
                "widgets; see the README's parameter reference). Returns the MP4, the Python that "
                "reproduces it with lsd_jax.render, a status line and, with several formats, every file."
            ),
        )
        render_evt.then(end, None, [*buttons, live], **private)
        render_evt.failure(end, None, [*buttons, live], **private)  # the page does not run .then after an error
        preview_evt = preview_btn.click(begins["preview"], inputs, [*buttons, live, status], **checked).success(
            _bind(_preview, INPUT_NAMES, defaults, request=True, forwarded=cfg.forwarded),
            inputs,
            [gallery, status],
            api_name="preview",
            concurrency_id=RENDER_QUEUE,
            concurrency_limit=waiting_room,
            validator=validator,
            show_progress_on=[status],
            api_description=(
                "Preview stills at the loudest moments: the same inputs as /render; returns the stills with "
                "their times, and a status line. The full render with the same values contains exactly them."
            ),
        )
        preview_evt.then(end, None, [*buttons, live], **private)
        preview_evt.failure(end, None, [*buttons, live], **private)
        # Cancel stops the session's job on the server (Jobs.cancel: a running one within a batch, a booked one
        # before it starts); its handler then ends with the status line, a normal outcome. Not Gradio's cancels=:
        # a click soon after the job started left an "Error" badge on the video (Gradio's page, issue 27).
        cancel_btn.click(cancel, None, [*buttons, live, status], **private)
        demo.unload(left)
        # the style menu: what this server can use (its hosts probed at launch, off the request path), and a .pkl
        # this visitor uploaded as a style of their session's own; refreshed at each page load (the probe's news)
        menu_inputs = [show_all, c["style_file"]]
        show_all.change(
            lambda show, mine: gr.update(choices=style_menu(show, mine)), menu_inputs, c["style"], **private
        )
        demo.load(
            lambda show, mine: (gr.update(choices=style_menu(show, mine)), gr.update(label=unavailable_label())),
            menu_inputs,
            [c["style"], show_all],
            **private,
        )
        c["style_file"].upload(
            lambda show, mine: gr.update(choices=style_menu(show, mine), value=_uploaded_style(mine)[1]),
            menu_inputs,
            c["style"],
            **private,
        )
        c["style_file"].clear(
            lambda show: gr.update(choices=style_menu(show, None), value="default"), show_all, c["style"], **private
        )
        # queued (one at a time: each decodes the song), never a direct call; Jobs.excerpt_start bounds it again
        c["song"].upload(
            _excerpt,
            [c["song"], c[sections.FIELD]],
            [c["start"], c["duration"], form_picture, c[sections.FIELD]],
            api_visibility="private",
            show_progress="hidden",
            concurrency_id="lsd-jax-upload",
            concurrency_limit=1,
        )
        c["song"].clear(lambda: sections.upload_updates(None), None, [form_picture, c[sections.FIELD]], **private)
        # The estimate follows what the speed depends on. An event clears the problems shown next to its inputs as
        # its first answer arrives: on a loaded server, after the problem a Render click just showed there. So the
        # numbers are copied by the page itself (a script, no request: nothing cleared) into a hidden JSON, and the
        # files and styles, each by an event of its own (clearing only that field's problem, when it changes) into
        # a state; the estimate reads the two.
        speed_files = gr.State({})
        speed_numbers = gr.JSON({}, visible="hidden")

        def _copy(name: str) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
            return lambda value, held: {**held, name: value}

        for n in ESTIMATE_INPUTS:
            if n in SERVER_COPIED:  # queued: a state changed by an unqueued event does not trigger its .change
                c[n].change(
                    _copy(n),
                    [c[n], speed_files],
                    speed_files,
                    api_visibility="private",
                    show_progress="hidden",
                    concurrency_id="lsd-jax-page",
                    concurrency_limit=None,
                )
            else:
                c[n].change(
                    None,
                    [c[n], speed_numbers],
                    speed_numbers,
                    js=f"(v, held) => ({{...(held || {{}}), {n!r}: v}})",
                    **private,
                )
        speed_defaults = {
            "song": None,
            "style": "default",
            "style_file": None,
            **{n: defaults[n] for n in ESTIMATE_INPUTS if n in defaults},
        }

        def _estimate(files: dict[str, Any], numbers: Any, request: gr.Request) -> Iterator[str]:
            # the numbers come as any request's (a client can send anything): only their names, checked by prepare
            typed = numbers if isinstance(numbers, dict) else {}
            typed = {k: v for k, v in typed.items() if k in ESTIMATE_INPUTS and k not in SERVER_COPIED}
            values = {**speed_defaults, **typed, **files}
            song, style, style_file = values.pop("song"), values.pop("style"), values.pop("style_file")
            session = getattr(request, "session_hash", None)
            yield from estimate_lines(jobs, song, style, style_file, session, **values)

        est = dict(
            fn=_estimate,
            inputs=[speed_files, speed_numbers],
            outputs=estimate,
            api_visibility="private",
            show_progress="hidden",
            concurrency_id="lsd-jax-estimate",
            concurrency_limit=1,
            trigger_mode="always_last",
        )
        speed_files.change(**est)
        speed_numbers.change(**est)
        demo.load(**est)
        # after a job the model has its measurement: the line shows the updated estimate
        render_evt.then(**est)
        preview_evt.then(**est)
        if example_box is not None:
            with example_box:
                note = gr.Markdown("", visible=False, elem_id="examples-note")
                examples = gr.Examples(
                    ex.rows(example_song, cfg.max_seconds, cfg.max_resolution),
                    [c[n] for n in ex.INPUTS],
                    [video, code, status],
                    fn=_bind(_example_fn(jobs), ex.INPUTS, defaults, progress=False),
                    cache_examples=True,
                    cache_mode=cfg.examples,
                    example_labels=ex.labels(),
                    label="Examples: one click shows a rendered video (the demo song, synthesised)",
                    elem_id="examples-table",
                )
                # cached with the app's own files (fresh each start), not in the working directory
                folder = jobs.workdirs.root / "examples" / str(examples.dataset._id)
                examples.cached_folder = folder
                examples.cached_file = folder / "log.csv"
                examples.cached_indices_file = folder / "indices.csv"
            if examples.cache_examples is True:  # eager: rendered at start-up; the note says so while it lasts
                preparing = ex.Preparing(len(ex.EXAMPLES), lambda: _csv_rows(examples.cached_file) - 1)
                _note_start_up(demo, examples, preparing)
                demo.lsd_preparing = preparing  # type: ignore[attr-defined]

                def _note() -> Iterator[Any]:
                    for text in preparing.lines():
                        yield gr.update(value=text, visible=bool(text))

                demo.load(
                    _note,
                    None,
                    note,
                    api_visibility="private",
                    show_progress="hidden",
                    concurrency_id="lsd-jax-note",
                    concurrency_limit=None,
                )
    from .live_page import add_page

    add_page(demo)  # the Live page (/live): microphone or tab audio drives frames in real time
    # the page's pictures and showcase (made at start-up by main(), or when first asked for)
    demo.lsd_page_images = PageImages(showcase_maker(jobs), ex.seeds())  # type: ignore[attr-defined]
    _with_meta(demo)
    if cfg.warm_up:
        jobs.warm_up({k: v for k, v in defaults.items() if k not in ("song", "style", "style_file")})
    demo.queue(max_size=cfg.queue_size, default_concurrency_limit=cfg.concurrency)
    demo.lsd_config = cfg  # type: ignore[attr-defined]
    demo.lsd_jobs = jobs  # type: ignore[attr-defined]
    jobs.start()
    if owned:  # the app's own jobs go with it
        close = demo.close

        def close_with_jobs(*args: Any, **kwargs: Any) -> None:
            try:
                close(*args, **kwargs)
            finally:
                jobs.close()

        demo.close = close_with_jobs  # type: ignore[method-assign]
    return demo


def csv_unescaped(text: Any) -> Any:
    """``text`` as it was before Gradio's example cache wrote it to its CSV: ``gradio.utils.sanitize_value_for_csv``
    puts a ``'`` before a text that starts with, or holds right after a comma, a character a spreadsheet would
    run (``= + - @``, a tab, a newline), and reading back does not remove it: every snippet holds ``",\n"``. The
    ``'`` goes only where that escape made exactly ``text`` (a text that began with ``'`` itself stays, unless it
    also looked like an escape: a snippet never begins with ``'``)."""
    if isinstance(text, str) and text.startswith("'") and gr.utils.sanitize_value_for_csv(text[1:]) == text:
        return text[1:]
    return text


def _read_back_unescaped(component: Any) -> Any:
    """``component`` (a text output cached by ``gr.Examples``) shows its cached value as it was written
    (:func:`csv_unescaped`). Wraps the instance's ``read_from_flag``: a Component subclass would make Gradio
    write a .pyi stub beside this module at import time."""
    original = component.read_from_flag
    component.read_from_flag = lambda payload: original(csv_unescaped(payload))
    return component


def _csv_rows(path: Path) -> int:
    """How many records the CSV file has, its header included (0 when there is none)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            return sum(1 for _ in csv.reader(f))  # a record may span lines (the snippet)
    except (OSError, csv.Error):
        return 0


def _note_start_up(demo: gr.Blocks, examples: gr.Examples, preparing: ex.Preparing) -> None:
    """``preparing`` begins and ends with the examples' rendering at start-up (Gradio's start-up event of theirs)."""
    events = demo.extra_startup_events
    for i, event in enumerate(events):
        if getattr(event, "__self__", None) is examples:

            async def caching(event: Callable[[], Any] = event) -> None:
                preparing.begin()
                try:
                    await event()
                finally:
                    preparing.finish()

            events[i] = caching


def _example_fn(jobs: Jobs) -> Callable[..., tuple[str, str, str]]:
    def example(song: Any, style: Any, style_file: Any, **values: Any) -> tuple[str, str, str]:
        """An example's video, snippet and status (rendered once, then served from Gradio's cache)."""
        try:
            job = jobs.prepare(song, style, style_file, **values)
            with jobs.slot():  # an example rendered at its first click is a job like the others
                out = jobs.render(job)
        except Exception as e:
            raise user_error(e) from None
        snippet = python_snippet(job).replace(
            "import lsd_jax\n",
            "import lsd_jax\nfrom lsd_jax.audio.demo_song import write_demo_song\n\n"
            f"write_demo_song({job.song_name!r}, seconds={ex.SECONDS:g})  # the example's song\n",
            1,
        )
        return str(out), snippet, f"Example: {job.n_frames} frames of the synthesised demo song."

    return example


def launch(demo: gr.Blocks | None = None, cfg: AppConfig | None = None, **kwargs: Any) -> Any:
    """Serve the page (``kwargs`` go to ``Blocks.launch``: server_name, server_port, ...), with Gradio's MCP server
    at ``/gradio_api/mcp/`` (the ``render`` and ``preview`` tools, documented from the parameter table)."""
    cfg = cfg or getattr(demo, "lsd_config", None) or AppConfig.from_env()
    demo = demo or build_app(cfg)
    kwargs.setdefault("max_file_size", cfg.max_file_size)
    kwargs.setdefault("mcp_server", True)
    kwargs.setdefault("show_error", False)
    kwargs.setdefault("css", CSS + FIELDS_CSS)
    kwargs.setdefault("js", FIELDS_JS)
    block = not kwargs.pop("prevent_thread_lock", False)
    _remove_temp_files_on_close(demo)
    out = demo.launch(prevent_thread_lock=True, **kwargs)
    _serve_page_images(demo)  # the server exists now (Gradio makes it in launch)
    if getattr(demo, "lsd_live", None) is not None:  # the Live page: a closing tab's goodbye beacon
        from .live_page import add_leave_route

        add_leave_route(demo.server_app, demo.lsd_live)
    if block:  # as Blocks.launch does, unless told not to: serve until interrupted
        demo.block_thread()
    return out


def remove_temp_files(demo: gr.Blocks) -> list[str]:
    """Delete the files this app put in Gradio's temp folder (uploads, rendered videos, stills, cached examples:
    the paths Gradio recorded for ``demo``, kept ones included), and the folders that leaves empty; files and
    folders of other apps are left alone. Returns the paths deleted."""
    cache = os.path.realpath(getattr(demo, "GRADIO_CACHE", "") or gr.utils.get_upload_folder())
    # the Blocks' sets, and each component's own (one made before the Blocks, as the outputs are, is not in them)
    sets = [*getattr(demo, "temp_file_sets", []), *(getattr(b, "temp_files", set()) for b in demo.blocks.values())]
    files = {f for temp in sets for f in temp}
    gone = []
    for f in sorted(files):
        path = os.path.realpath(f)
        if not path.startswith(cache + os.sep):  # only what Gradio copied into its folder, never a file elsewhere
            continue
        try:
            os.remove(path)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        gone.append(path)
        parent = os.path.dirname(path)
        while parent != cache and parent.startswith(cache + os.sep):
            try:
                os.rmdir(parent)  # only when empty: another app's file in the same folder stays
            except OSError:
                break
            parent = os.path.dirname(parent)
    for temp in sets:
        temp.clear()
    return gone


def _remove_temp_files_on_close(demo: gr.Blocks) -> None:
    """``demo.close()`` also removes the app's files that Gradio recorded in its temp folder
    (:func:`remove_temp_files`); :func:`main` removes the rest with the app's own temp folder."""
    if getattr(demo, "_lsd_removes_temp", False):
        return
    close = demo.close

    def close_and_remove(*args: Any, **kwargs: Any) -> None:
        try:
            close(*args, **kwargs)
        finally:
            gone = remove_temp_files(demo)
            log.info("removed %d file(s) of this app from Gradio's temp folder", len(gone))

    demo.close = close_and_remove  # type: ignore[method-assign]
    demo._lsd_removes_temp = True  # type: ignore[attr-defined]


def _own_temp_folder() -> tuple[str, str | None]:
    """A Gradio temp folder of this process's own, inside the usual one (GRADIO_TEMP_DIR or the system's: Gradio
    serves files below it), set as GRADIO_TEMP_DIR, so that everything Gradio writes for the app lands there and
    goes whole when it stops (Gradio records some of its copies nowhere: a component remade by a ``gr.update`` in a
    visitor's session writes to the folder this variable names). Returns the folder and the variable's old value."""
    before = os.environ.get("GRADIO_TEMP_DIR")
    base = os.path.realpath(gr.utils.get_upload_folder())
    own = os.path.join(base, f"lsd-jax-{os.getpid()}-{secrets.token_hex(4)}")
    os.makedirs(own)
    os.environ["GRADIO_TEMP_DIR"] = own
    import gradio.mcp

    gradio.mcp.DEFAULT_TEMP_DIR = own  # read when Gradio was imported: where an MCP call's base64 file goes
    return own, before


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a Space stopping, ``kill``) ends the server like Ctrl-C, so the app's folders are removed."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


def main(argv: Sequence[str] | None = None) -> None:
    """``python app.py``: serve until interrupted (Ctrl-C or SIGTERM), then close the app (its folders go with it,
    and its own Gradio temp folder: :func:`_own_temp_folder`)."""
    cfg, server = AppConfig.from_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    _interrupt_on_sigterm()
    own, before = _own_temp_folder()  # before the app exists: Gradio reads the folder when it makes each component
    try:
        demo = build_app(cfg)
        # the link preview's image is ready before a crawler asks (JAX compiles it), the showcase before a visitor
        demo.lsd_page_images.start()
        try:
            launch(demo, cfg, **server)
        except KeyboardInterrupt:
            pass
        finally:
            demo.close()
    finally:
        shutil.rmtree(own, ignore_errors=True)  # all Gradio wrote for this app, and nothing of another's
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before
        import gradio.mcp

        gradio.mcp.DEFAULT_TEMP_DIR = gr.utils.get_upload_folder()
