"""Where a render or a conversion writes, checked before any work is done: a file path of the right type and suffix,
in a folder that exists and is writable, that is not a folder itself, and that is NONE of the job's inputs (the same
path, a symlink to an input, or a hard link to one): writing there would destroy the input."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import OutputError, ParamError
from .formats import FORMATS, choose_format

__all__ = [
    "SUPPORTED_SUFFIXES",
    "default_output",
    "refuse_overwrite",
    "render_inputs",
    "resolve_output",
    "writable_output",
]

SUPPORTED_SUFFIXES = tuple(dict.fromkeys(f.suffix for f in FORMATS.values()))
#: RenderParams fields that name files a render reads.
_AUDIO_FIELDS = ("pulse_audio", "motion_audio", "class_audio", "contrast_audio", "flash_audio", "output_audio")

PathLike = str | os.PathLike[str]


def _as_path(value: Any, what: str) -> Path:
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise ParamError(f"{what} must be a file path (a str or pathlib.Path), got {type(value).__name__}")
    try:
        path = Path(value).expanduser()
    except (TypeError, RuntimeError) as e:  # a PathLike returning bytes; ~user that does not exist
        raise ParamError(f"{what} must be a file path, got {value!r} ({e})") from None
    if not path.name or path.name in (".", ".."):
        raise ParamError(f"{what} must name a file, got {os.fspath(value)!r}")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop
        pass
    try:
        return os.path.samefile(a, b)  # hard links (and symlinks, already resolved above)
    except (OSError, ValueError):
        return False


def refuse_overwrite(path: Path, inputs: Iterable[Any], what: str = "output") -> None:
    """:class:`OutputError` if ``path`` is one of ``inputs`` (same file, symlink or hard link to it). Inputs that
    are not paths (None, objects, catalogue names) are ignored."""
    for item in inputs:
        if item is None or isinstance(item, bytes) or not isinstance(item, (str, os.PathLike)):
            continue
        try:
            src = Path(item).expanduser()
        except (TypeError, RuntimeError):
            continue
        if _same_file(path, src):
            link = "" if path.expanduser().absolute() == src.absolute() else " (the same file under another name)"
            raise OutputError(
                f"the {what} {path} is the input {src}{link}: refusing to write over it. Choose another output name."
            )


def writable_output(output: Any, inputs: Iterable[Any] = (), what: str = "output") -> Path:
    """``output`` as a :class:`Path`, checked: a path, not a directory, in an existing writable folder, and not
    one of ``inputs``. Any suffix."""
    path = _as_path(output, what)
    if path.is_dir():
        raise OutputError(f"{what} path is a directory: {path} (for a PNG sequence end the name with /)")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"{what} directory does not exist: {parent}")
    try:  # try for real: permission bits say nothing about read-only mounts or root
        with tempfile.TemporaryFile(dir=parent, prefix=".lsd-jax-probe-"):
            pass
    except OSError as e:
        raise OutputError(f"{what} directory is not writable: {parent} ({e.strerror})") from None
    refuse_overwrite(path, inputs, what)
    return path


def resolve_output(output: Any, inputs: Iterable[Any] = (), codec: str = "auto") -> Path:
    """The path to write, checked up front (:func:`writable_output`): the format is chosen by the suffix or
    ``codec`` (:func:`~lsd_jax.media.formats.choose_format`; ``.mp4`` added when there is no suffix). For a PNG
    sequence it is ``folder/pattern``; the folder must not exist yet (or be empty) and is not an input."""
    _as_path(output, "output")
    fmt, path = choose_format(output, codec)
    if not fmt.sequence:
        return writable_output(path, inputs)
    folder = path.parent
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"the PNG folder {folder} exists and is not empty: refusing to write into it")
    writable_output(folder.parent / f"{folder.name}.probe", (), "PNG folder")
    refuse_overwrite(folder, inputs, "PNG folder")
    return path


def render_inputs(song: Any, style: Any, params: Any) -> list[Any]:
    """Every file a render reads: the song, the style file, the audio stems and output audio, keyframe images."""
    files = [song, style]
    files += [getattr(params, name, None) for name in _AUDIO_FIELDS]
    files += [image for _, image in (getattr(params, "keyframes", None) or ())]
    return files


def default_output(song: PathLike, inputs: Iterable[Any] = ()) -> Path:
    """The CLI's default video path: ``<song name>.mp4`` in the current folder, or ``<song name>.lsd.mp4`` when that
    would be the song itself (``clip.mp4``) or another input."""
    stem = Path(song).stem or "lsd"
    inputs = [song, *inputs]
    for name in (f"{stem}.mp4", f"{stem}.lsd.mp4"):
        candidate = Path(name)
        if not any(_same_file(candidate, Path(i)) for i in inputs if isinstance(i, (str, os.PathLike))):
            return candidate
    return Path(f"{stem}.lsd-video.mp4")
