"""The page: a Gradio Blocks layout over :class:`~lsd_jax.web.jobs.Jobs`, its handlers, and the launcher.

* :func:`preview_video` / :func:`render_video` are the handlers (also the named API endpoints
  ``/preview`` and ``/render``): every failure becomes a ``gr.Error`` with a clear message and no
  server path (:func:`user_error`), never a traceback;
* :func:`build_app` builds the Blocks (queue with a concurrency limit, cache clean-up, the
  widgets from :mod:`lsd_jax.web.form`); the app owns its :class:`Jobs` unless given one, and closes
  them with the app;
* :func:`launch` serves it with an upload size limit; :func:`main` is ``python app.py`` (which closes
  the app, and so its folders, when the server stops).
"""

from __future__ import annotations

import html
import inspect
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..errors import AudioError, LsdError, ParamError, StyleError
from ..params import GROUPS
from .config import AppConfig, duration_text
from .form import INPUT_NAMES, Field, component, page_fields, style_choices, ui_defaults
from .jobs import Jobs

log = logging.getLogger("lsd_jax.web")

# --------------------------------------------------------------------------------------------------
# Messages without server paths

_PATH_DIRS = re.compile(r"""(?<![^\s'"(\[=:,])(?:file://)?(?:~|[A-Za-z]:)?[/\\](?:[^/\\\s'"]+[/\\])+""")
MAX_MESSAGE = 600


def public_message(message: str) -> str:
    """``message`` with every directory part of a path removed (file names stay), safe as HTML."""
    text = _PATH_DIRS.sub("", str(message))
    for root in {tempfile.gettempdir(), os.getcwd(), str(Path.home()), os.environ.get("GRADIO_TEMP_DIR", "")}:
        if root and len(root) > 1:  # a server folder glued to other text
            text = text.replace(root.rstrip("/\\"), "…")
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return html.escape(text, quote=False)


def user_error(e: BaseException) -> gr.Error:
    """The ``gr.Error`` shown for an exception: LsdError's message (paths stripped), or a generic
    one for anything unexpected (logged here, with its traceback, for the server's operator)."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, LsdError):
        title = {AudioError: "Audio problem", ParamError: "Parameter problem", StyleError: "Style problem"}
        kind = next((t for c, t in title.items() if isinstance(e, c)), "Cannot render")
        return gr.Error(public_message(str(e)), title=kind, print_exception=False)
    if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e):
        log.error("out of memory: %s", type(e).__name__)
        return gr.Error("The server ran out of memory. Try a lower resolution or a shorter excerpt.",
                        title="Out of memory", print_exception=False)
    log.error("unexpected error in the web app", exc_info=e)
    return gr.Error("Something went wrong on the server (the error is logged there). Try again, or change "
                    "the parameters.", title="Internal error", print_exception=False)


# --------------------------------------------------------------------------------------------------
# Handlers (what the page and the API call)


def clock(t: float) -> str:
    """Seconds as m:ss.s."""
    m, s = divmod(t, 60)
    return f"{int(m)}:{s:04.1f}"


def preview_video(jobs: Jobs, song: Any, style: Any = "default", style_file: Any = None, *,
                  progress: Callable[..., Any] | None = None,
                  **values: Any) -> tuple[list[tuple[np.ndarray, str]], str]:
    """Gallery items ``(image, caption)`` and a status line; ``gr.Error`` on any problem."""
    try:
        if progress is not None:
            progress(0.0, desc="Analysing the song")
        job = jobs.prepare(song, style, style_file, **values)
        pv = jobs.preview(job)
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise user_error(e) from None
    items = [(f, f"{clock(t)} · frame {i}") for f, t, i in zip(pv.frames, pv.times, pv.indices)]
    status = (f"Preview: {len(items)} stills at the loudest moments of **{html.escape(job.song_name)}**. "
              "Rendering with the same seed and parameters gives exactly these frames.")
    return items, status


def render_video(jobs: Jobs, song: Any, style: Any = "default", style_file: Any = None, *,
                 progress: Callable[..., Any] | None = None, **values: Any) -> tuple[str, str, str]:
    """``(mp4 path, Python snippet, status)``; ``gr.Error`` on any problem. ``progress`` is called
    like ``gr.Progress``: ``progress((done, total), desc=..., unit="frames")``."""
    from .jobs import python_snippet

    frames = [0]
    t0 = time.perf_counter()

    def on_frames(done: int, total: int) -> None:
        frames[0] = total
        if progress is not None:
            progress((done, total), desc="Rendering", unit="frames")

    try:
        if progress is not None:
            progress(0.0, desc="Analysing the song")
        job = jobs.prepare(song, style, style_file, **values)
        out = jobs.render(job, on_frames)
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise user_error(e) from None
    status = (f"Rendered {frames[0]} frames at {job.params.fps:g} fps in {time.perf_counter() - t0:.1f} s. "
              "The snippet below reproduces this video with `lsd_jax.render`.")
    return str(out), python_snippet(job), status


def _bind(fn: Callable[..., Any], names: Sequence[str]) -> Callable[..., Any]:
    """A function whose signature is ``(*names, progress=gr.Progress())`` calling
    ``fn(song, style, style_file, progress=..., **values)``: Gradio names the API's parameters after it."""

    def handler(*args: Any, **kwargs: Any) -> Any:
        bound = handler.__signature__.bind(*args, **kwargs)  # type: ignore[attr-defined]
        bound.apply_defaults()
        values = dict(bound.arguments)
        progress = values.pop("progress")
        song, style, style_file = values.pop("song"), values.pop("style"), values.pop("style_file")
        return fn(song, style, style_file, progress=progress, **values)

    defaults = {"style": "default", "style_file": None, **ui_defaults()}
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=defaults.get(n, inspect.Parameter.empty)) for n in names]
    params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__name__ = getattr(fn, "__name__", "handler")
    handler.__doc__ = fn.__doc__
    return handler


# --------------------------------------------------------------------------------------------------
# The page


CSS = """
#lsd-title h1 { margin-bottom: 0; }
#preview-gallery { min-height: 120px; }
"""


def _rows(fields: Sequence[Field]) -> list[list[Field]]:
    """Sliders two to a row (they need the width); a run of checkboxes, or of other widgets, shares a
    row (Gradio wraps it)."""

    def shape(f: Field) -> str:
        return f.kind if f.kind in ("slider", "checkbox") else "other"

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


def build_app(cfg: AppConfig | None = None, jobs: Jobs | None = None) -> gr.Blocks:
    """The Blocks page, with its queue; launch it with :func:`launch`. Without ``jobs``, the app
    makes its own and closes them (deleting its folders) when the app closes."""
    cfg = cfg or (jobs.cfg if jobs is not None else AppConfig.from_env())
    owned = jobs is None
    jobs = Jobs(cfg) if jobs is None else jobs
    fields = page_fields(cfg)
    by_group = {g: [f for f in fields if f.group == g] for g in GROUPS}
    components: dict[str, Any] = {}
    with gr.Blocks(title="lsd-jax: music-reactive GAN videos", analytics_enabled=False,
                   delete_cache=(max(60, cfg.cache_ttl // 4), cfg.cache_ttl)) as demo:
        gr.Markdown(
            "# lsd-jax\n"
            "Music-reactive GAN videos, after [Lucid Sonic Dreams](https://github.com/mikaelalafriz/lucid-sonic-dreams),"
            " in pure JAX. Upload a song, pick a style, **Preview** a few stills at its loudest moments, then "
            f"**Render** the video. This server renders up to {duration_text(cfg.max_seconds)} of music, "
            f"{cfg.max_resolution} px at most; uploads up to {cfg.max_file_size}.",
            elem_id="lsd-title",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                components["song"] = gr.Audio(label="song", type="filepath", sources=["upload"], buttons=["download"],
                                              elem_id="song")
                with gr.Row():
                    components["style"] = gr.Dropdown(choices=style_choices(), value="default", label="style",
                                                      info="the embedded style, or a catalogue model (downloaded once)",
                                                      elem_id="style")
                    components["style_file"] = gr.File(label="or upload a style (.pkl / .safetensors)",
                                                       file_types=[".pkl", ".safetensors"], elem_id="style-file")
                with gr.Accordion(f"{GROUPS['stems']} (optional)", open=False):
                    with gr.Row():
                        for f in by_group["stems"]:
                            components[f.name] = component(f)
                with gr.Group():
                    _widgets(by_group["basic"], components)
                with gr.Accordion("Advanced parameters", open=False):
                    for group, title in GROUPS.items():
                        if group in ("basic", "stems") or not by_group[group]:
                            continue
                        gr.Markdown(f"**{title}**")
                        _widgets(by_group[group], components)
            with gr.Column(scale=4):
                with gr.Row():
                    preview_btn = gr.Button("Preview", variant="secondary", elem_id="preview-btn")
                    render_btn = gr.Button("Render", variant="primary", elem_id="render-btn")
                gallery = gr.Gallery(label="preview: stills at the loudest moments", columns=3, height="auto",
                                     object_fit="contain", elem_id="preview-gallery")
                video = gr.Video(label="video", interactive=False, buttons=["download"], elem_id="video")
                status = gr.Markdown("", elem_id="status")
                code = gr.Code(value="# the Python that reproduces your video appears here after a render\n",
                               language="python", label="reproduce it with lsd_jax", interactive=False,
                               buttons=["copy"], elem_id="snippet")
        missing = set(INPUT_NAMES) - set(components)
        assert not missing, missing
        inputs = [components[n] for n in INPUT_NAMES]

        def _render(song, style, style_file, progress=None, **values):
            return render_video(jobs, song, style, style_file, progress=progress, **values)

        def _preview(song, style, style_file, progress=None, **values):
            return preview_video(jobs, song, style, style_file, progress=progress, **values)

        _render.__doc__ = render_video.__doc__
        _preview.__doc__ = preview_video.__doc__
        render_btn.click(_bind(_render, INPUT_NAMES), inputs, [video, code, status], api_name="render",
                         concurrency_id="lsd-jax-render")
        preview_btn.click(_bind(_preview, INPUT_NAMES), inputs, [gallery, status], api_name="preview",
                          concurrency_id="lsd-jax-render")
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


def launch(demo: gr.Blocks | None = None, cfg: AppConfig | None = None, **kwargs: Any) -> Any:
    """Serve the page (``kwargs`` go to ``Blocks.launch``: server_name, server_port, ...)."""
    cfg = cfg or getattr(demo, "lsd_config", None) or AppConfig.from_env()
    demo = demo or build_app(cfg)
    kwargs.setdefault("max_file_size", cfg.max_file_size)
    kwargs.setdefault("show_error", False)
    kwargs.setdefault("css", CSS)
    return demo.launch(**kwargs)


def main(argv: Sequence[str] | None = None) -> None:
    """``python app.py``: serve until interrupted, then close the app (its folders go with it)."""
    cfg, server = AppConfig.from_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    demo = build_app(cfg)
    try:
        launch(demo, cfg, **server)
    finally:
        demo.close()
