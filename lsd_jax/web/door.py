"""One door for a web visitor's style: the main page, its API and the Live page all go through it.

A visitor names a style in one of three ways, and only these: ``"default"`` (the embedded CPPN), a catalogue name
(from the page's list), or a file this server received as an upload (a path under Gradio's upload folder,
``GRADIO_TEMP_DIR``). Anything else that reads as a path (``/srv/app/.env``, ``/proc/self/pagemap``, ``../x.pkl``)
is refused at once, before the file is opened or even looked at, with a message that names no path and quotes
nothing (so the answer tells neither what a server file holds nor whether it exists).

* :func:`visitor_style` checks the choice (no file is read): ``(style, code)`` for :class:`~lsd_jax.web.jobs.Job`;
* :func:`load_visitor_style` loads it: an NVIDIA pickle (uploaded, or a catalogue style's download) is converted in
  the sandbox (:func:`lsd_jax.store.sandbox.convert_isolated`: a separate process under a memory and time bound);
* :func:`check_fits` refuses a style whose frame step would not fit in memory before anything is compiled (on CPU a
  failed allocation inside XLA aborts the whole server); the render and preview do it in
  :func:`lsd_jax.engine.step.fit_batch`, the Live page through this.

The CLI and the library take paths as given (their user owns the machine); a server's visitors never do.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..errors import StyleError
from ..params import RenderParams
from .form import catalogue_names

__all__ = ["MODEL_SUFFIXES", "check_fits", "load_visitor_style", "received_file", "upload_roots", "visitor_style"]

MODEL_SUFFIXES = (".pkl", ".safetensors")
NOT_RECEIVED = (
    "a style file must be uploaded to this server (a path on the server is not a style): choose a "
    "style from the list or upload a .pkl / .safetensors"
)


def upload_roots() -> list[Path]:
    """The folders whose files this server received from visitors: Gradio's upload folder (``GRADIO_TEMP_DIR``,
    else ``<tmp>/gradio``; read at each call, as Gradio does), resolved."""
    folder = os.environ.get("GRADIO_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "gradio")
    return [Path(os.path.realpath(folder))]


def _looks_like_path(text: str) -> bool:
    return any(c in text for c in "/\\") or text.lower().endswith(MODEL_SUFFIXES) or text.startswith(("~", "."))


def received_file(path: Any) -> Path:
    """``path`` resolved, when it is a regular model file (``.pkl`` / ``.safetensors``) inside an upload folder
    (:func:`upload_roots`; links resolved first, so none leads out); else a :class:`StyleError` that names no path.
    Nothing outside the upload folders is opened or stat'ed beyond resolving the name."""
    text = str(path)
    if not text or "\x00" in text:
        raise StyleError(NOT_RECEIVED)
    real = Path(os.path.realpath(os.path.expanduser(text)))
    if not any(real.is_relative_to(root) and real != root for root in upload_roots()):
        raise StyleError(NOT_RECEIVED)
    name = real.name
    if real.suffix.lower() not in MODEL_SUFFIXES:
        raise StyleError(f"a style file must be an NVIDIA StyleGAN .pkl or a converted .safetensors; got {name}")
    try:
        mode = real.stat().st_mode
    except OSError:
        raise StyleError(
            f"style file not found: {name} (the server keeps a file for a while only: send it again)"
        ) from None
    if not stat.S_ISREG(mode):
        raise StyleError(f"style file {name} is not a regular file")
    return real


def visitor_style(style: Any = "default", style_file: Any = None) -> tuple[str, str]:
    """``(style, code)`` for what a visitor chose: ``("default", "default")``, ``(name, name)`` for a catalogue style
    that this server can use, or ``(server path, file name)`` for an upload (:func:`received_file`). ``style_file``
    (the page's upload) wins over ``style``; a ``style`` that reads as a path is taken as an upload too (the Live
    page and API clients pass one that way). :class:`StyleError` otherwise; nothing is loaded here."""
    if style_file:
        p = received_file(style_file)
        return str(p), p.name
    text = str(style or "default").strip()
    if _looks_like_path(text):
        p = received_file(text)
        return str(p), p.name
    choice = text.lower()
    if choice in ("default", "cppn"):
        return "default", "default"
    names = catalogue_names()
    if choice not in names:  # a name from the list only
        import difflib

        close = difflib.get_close_matches(choice, names, n=1)
        raise StyleError(
            f"unknown style {choice[:80]!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + ": choose one from the list or upload a .pkl"
        )
    from ..store.catalogue import load_catalogue, unavailable_reason

    why = unavailable_reason(load_catalogue()[choice])
    if why:
        raise StyleError(
            f"{choice!r} cannot be used on this server ({why}); if you have its .pkl, upload it "
            "under 'or upload a style'"
        )
    return choice, choice


def load_visitor_style(choice: str, params: RenderParams | None = None) -> Any:
    """The :class:`~lsd_jax.styles.style.Style` of a choice :func:`visitor_style` returned (checked again here: a
    choice may come from elsewhere). An NVIDIA pickle is converted in the sandbox (cached by its bytes); a
    catalogue style's file is downloaded first."""
    from ..styles.resolve import catalogue_style, cppn_style, file_style

    params = params or RenderParams()
    if choice == "default":
        return cppn_style()
    if _looks_like_path(choice):
        return file_style(received_file(choice), params, isolated=True)
    name, _ = visitor_style(choice)
    return catalogue_style(name, params, progress=False, isolated=True)


def check_fits(style: Any, size: tuple[int, int], plan: Any, params: RenderParams, batch: int = 1) -> None:
    """Refuse (:class:`~lsd_jax.errors.ParamError`, saying what does not fit) a frame step of ``batch`` frames of
    ``style`` at ``size`` (H, W) with effects ``plan`` that would not fit in the free memory; decided from the traced
    step, before anything is compiled or allocated (:func:`lsd_jax.engine.step.fit_batch`)."""
    from ..engine.step import fit_batch
    from ..styles.style import render_settings

    fit_batch(style, size, plan, batch, settings=render_settings(params), compute_dtype=params.compute_dtype)
