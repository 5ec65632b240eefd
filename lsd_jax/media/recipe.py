"""The recipe inside every video: how it was made, as compact JSON in the container's ``comment`` tag (a PNG
sequence: ``recipe.json`` in its folder). GIF and WebP carry none (ffmpeg's muxers write no comment there).

``{"lsd_jax_recipe": 1, "version": "0.1.0", "song": {"file": "song.wav", "sha256": "..."},
"style": {"name": "default", "sha256": null}, "params": {every render parameter: its JSON value}}``

Files (song, style file, stems, keyframe images) are named relative to the working folder (the current
directory) when they lie inside it, else by their file name alone. A recipe read back is checked like any
other input, since a video file can come from anyone: bad JSON, unknown keys, a value out of range, or a path
that is absolute or leads out of the working folder is a :class:`~lsd_jax.errors.ParamError` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError, ParamError
from ..params import KEYFRAMES, PARAM, PARAMS, PATH, RenderParams, Timeline, make_params
from .formats import RECIPE_FILE

__all__ = [
    "RECIPE_VERSION",
    "Recipe",
    "make_recipe",
    "parse_recipe",
    "read_recipe",
    "recipe_of",
    "recipe_text",
    "sha256_of",
    "stored_path",
]

#: The recipe's own format version (the ``lsd_jax_recipe`` key).
RECIPE_VERSION = 1
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_TOP = ("lsd_jax_recipe", "version", "song", "style", "params")
#: Parameters a recipe cannot hold (Python objects).
_SKIP = frozenset(p.name for p in PARAMS if p.api_only)


@dataclass(frozen=True)
class Recipe:
    """A recipe read back: ``params`` (validated), the ``song`` and ``style`` as paths relative to the working
    folder (a style may also be ``"default"`` or a catalogue name), their sha256 (None: not recorded) and the
    lsd-jax ``version`` that made the video."""

    params: RenderParams
    song: str
    song_sha256: str | None
    style: str
    style_sha256: str | None
    version: str


def _stored_path(value: Any, cwd: Path) -> str:
    """A file as the recipe names it: relative to ``cwd`` when inside it, else its name."""
    p = Path(os.fspath(value)).expanduser().absolute()
    try:
        return p.relative_to(cwd).as_posix()
    except ValueError:
        return p.name


def _json_value(name: str, value: Any, cwd: Path) -> Any:
    kind = PARAM[name].kind
    if value is None:
        return None
    if kind == PATH:
        return _stored_path(value, cwd)
    if kind == KEYFRAMES:
        return [[t, _stored_path(image, cwd)] for t, image in value]
    if isinstance(value, Timeline):
        return value.as_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stored_path(value: Any, cwd: str | os.PathLike[str] | None = None) -> str:
    """A file as a recipe names it: relative to the working folder when inside it, else its name alone."""
    return _stored_path(value, Path(cwd if cwd is not None else os.getcwd()).absolute())


def make_recipe(
    params: RenderParams,
    song: Any,
    style: tuple[str, str | None],
    *,
    version: str,
    cwd: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The recipe of a render (see the module's docstring). ``style``: its name in the recipe and the sha256 of its
    weights (see :func:`lsd_jax.engine.pipeline.style_fingerprint`)."""
    here = Path(cwd if cwd is not None else os.getcwd()).absolute()
    song_path = Path(os.fspath(song)).expanduser()
    name, sha = style
    values = {p.name: _json_value(p.name, getattr(params, p.name), here) for p in PARAMS if p.name not in _SKIP}
    return {
        "lsd_jax_recipe": RECIPE_VERSION,
        "version": version,
        "song": {
            "file": _stored_path(song_path, here),
            "sha256": sha256_of(song_path) if song_path.is_file() else None,
        },
        "style": {"name": name, "sha256": sha},
        "params": values,
    }


def recipe_text(recipe: dict[str, Any]) -> str:
    """Compact JSON, one line, keys in a fixed order (the same render gives the same bytes)."""
    return json.dumps(recipe, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _safe_path(value: Any, field: str, cwd: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ParamError(f"recipe: {field} must be a file name, got {value!r}")
    p = Path(value)
    if p.is_absolute() or value.startswith("~") or ".." in p.parts:
        raise ParamError(f"recipe: {field} {value!r} is outside the working folder; refusing it")
    try:
        (cwd / p).resolve().relative_to(cwd.resolve())
    except (ValueError, OSError, RuntimeError):
        raise ParamError(f"recipe: {field} {value!r} leads outside the working folder; refusing it") from None
    return value


def _sha(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA_RE.match(value):
        raise ParamError(f"recipe: {field} must be 64 lower-case hex digits or null, got {value!r}")
    return value


def _object(value: Any, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParamError(f"recipe: {field} must be an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ParamError(f"recipe: unknown key {', '.join(f'{field}.{k}' for k in unknown)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ParamError(f"recipe: {field}.{missing[0]} is missing")
    return value


def parse_recipe(text: str | bytes, cwd: str | os.PathLike[str] | None = None) -> Recipe:
    """A recipe's JSON → :class:`Recipe`, every field checked (ParamError naming it)."""
    here = Path(cwd if cwd is not None else os.getcwd()).absolute()
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ParamError(f"recipe: not valid JSON ({e})") from None
    top = _object(data, "recipe", _TOP)
    if top["lsd_jax_recipe"] != RECIPE_VERSION:
        raise ParamError(f"recipe: lsd_jax_recipe must be {RECIPE_VERSION}, got {top['lsd_jax_recipe']!r}")
    if not isinstance(top["version"], str) or len(top["version"]) > 64:
        raise ParamError(f"recipe: version must be a short text, got {top['version']!r}")
    song = _object(top["song"], "song", ("file", "sha256"))
    style = _object(top["style"], "style", ("name", "sha256"))
    values = top["params"]
    if not isinstance(values, dict):
        raise ParamError(f"recipe: params must be an object, got {type(values).__name__}")
    unknown = sorted(set(values) - (set(PARAM) - _SKIP))
    if unknown:
        from ..params import unknown_names_error

        raise ParamError(f"recipe: {unknown_names_error(unknown, [p for p in PARAM if p not in _SKIP])}")
    kwargs = {}
    for name, value in values.items():
        kind = PARAM[name].kind
        if value is not None and kind == PATH:
            value = _safe_path(value, f"params.{name}", here)
        elif value is not None and kind == KEYFRAMES:
            if not isinstance(value, list) or not all(isinstance(k, list) and len(k) == 2 for k in value):
                raise ParamError(f"recipe: params.keyframes must be a list of [seconds, image], got {value!r}")
            value = {t: _safe_path(image, "params.keyframes", here) for t, image in value}
        kwargs[name] = value
    try:
        params = make_params(**kwargs)
    except ParamError as e:
        raise ParamError(f"recipe: params.{e}") from None
    except (TypeError, ValueError) as e:  # a value of the wrong JSON type deep inside a check
        raise ParamError(f"recipe: params: {e}") from None
    style_sha = _sha(style["sha256"], "style.sha256")
    name = style["name"]
    if not isinstance(name, str) or not name:
        raise ParamError(f"recipe: style.name must be a text, got {name!r}")
    if name.startswith("<python"):
        raise ParamError(f"recipe: style.name: the video was made with a Python style ({name}); give --style")
    if style_sha is not None and ("/" in name or Path(name).suffix):
        _safe_path(name, "style.name", here)
    return Recipe(
        params=params,
        song=_safe_path(song["file"], "song.file", here),
        song_sha256=_sha(song["sha256"], "song.sha256"),
        style=name,
        style_sha256=style_sha,
        version=top["version"],
    )


def _unescape_ffmetadata(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value, flags=re.S)


def recipe_of(path: str | os.PathLike[str]) -> str:
    """The recipe's JSON text stored in a video (its ``comment`` tag), a PNG folder (``recipe.json``) or a
    ``.json`` file. OutputError when the file has none."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / RECIPE_FILE
        if not p.is_file():
            raise OutputError(f"{p.parent} has no {RECIPE_FILE}: not a PNG sequence made by lsd-jax")
    if not p.is_file():
        raise OutputError(f"recipe source not found: {p}")
    if p.suffix.lower() == ".json":
        return p.read_text(encoding="utf-8", errors="replace")
    from .ffmpeg import run_ffmpeg

    res = run_ffmpeg(["-loglevel", "error", "-i", str(p), "-f", "ffmetadata", "-"])
    if res.returncode != 0:
        raise OutputError(f"cannot read the metadata of {p.name}: {res.stderr.decode('utf-8', 'replace')[-500:]}")
    text = res.stdout.decode("utf-8", "replace")
    # ffmetadata: key=value lines, with '=', ';', '#', '\\' and newlines escaped by a backslash
    for m in re.finditer(r"^comment=((?:[^\\\n]|\\.)*)$", text, re.M | re.I | re.S):
        value = _unescape_ffmetadata(m[1])
        if '"lsd_jax_recipe"' in value:
            return value
    raise OutputError(f"{p.name} has no lsd-jax recipe (GIF and WebP files carry none)")


def read_recipe(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> Recipe:
    """The recipe of a video made by lsd-jax (or of a PNG folder, or a ``.json`` recipe), checked."""
    return parse_recipe(recipe_of(path), cwd)
