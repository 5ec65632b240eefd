"""Converted-generator files and the on-disk conversion cache.

A converted generator is ONE ``.npz`` file (readable with ``np.load(..., allow_pickle=False)``; it is not a
pickle): every tensor under its torch ``state_dict()`` key, plus a reserved member :data:`META_KEY` holding UTF-8
JSON (``format``, ``format_version``, ``source_sha256``, ``config``, ``keys``) as a uint8 array. One file means one
atomic rename: a reader sees either the whole entry or none.

:func:`load_pickle` caches by the source file's sha256 (streamed) under
``lsd_jax.paths.cache_dir() / "converted" / "<sha256>.f1c1.npz"`` (format and converter versions in the name, so a
converter fix never serves a stale conversion). A cache entry that fails to load or validate
(truncated, CRC error, wrong keys or shapes, bad JSON) is deleted and rebuilt from the pickle.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .errors import ConversionError, SourceError
from lsd_jax.paths import atomic_write, cache_dir

from . import parse, sg1, sg2, sg3

FORMAT = "lsd-jax-converted"
FORMAT_VERSION = 1
#: Bump when a conversion rule changes: cache entries written by older converters are then ignored (rebuilt).
CONVERTER_VERSION = 1
META_KEY = "__lsd_jax_meta__"
_CHUNK = 1 << 20


def converted_dir() -> Path:
    """Where cached conversions live (created on demand)."""
    d = cache_dir() / "converted"
    d.mkdir(parents=True, exist_ok=True)
    return d


def sha256_file(path: str | Path) -> str:
    """Streamed sha256 of a file (1 MiB chunks; the file is never held in memory whole)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        raise SourceError(f"style file not found: {path}") from None
    except IsADirectoryError:
        raise SourceError(f"style path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return h.hexdigest()


def cache_path(sha256: str) -> Path:
    return converted_dir() / f"{sha256}.f{FORMAT_VERSION}c{CONVERTER_VERSION}.npz"


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _is_converted(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return f"{META_KEY}.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


# ---------------------------------------------------------------------------------------------------------------
# The .npz format.


def save_converted(path: str | Path, config: dict, state: dict[str, np.ndarray], *,
                   source_sha256: str | None = None) -> Path:
    """Write ``(config, state)`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    state = _check_state(config, state, "generator to save")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "source_sha256": source_sha256,
            "config": config, "keys": list(state)}
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **{META_KEY: blob}, **state))
    return path


def load_converted(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a converted generator written by :func:`convert` / the cache. Never unpickles anything."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SourceError(f"converted style file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if META_KEY not in z.files:
                raise ConversionError(f"{path.name} is an .npz but not an lsd-jax converted generator")
            meta = json.loads(bytes(z[META_KEY]).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ConversionError(f"{path.name} is not an lsd-jax converted generator")
            if meta.get("format_version") != FORMAT_VERSION:
                raise ConversionError(
                    f"{path.name} was written by another lsd-jax version (format {meta.get('format_version')!r}, "
                    f"this one reads {FORMAT_VERSION}); convert the .pkl again"
                )
            keys = meta.get("keys")
            if not isinstance(keys, list) or set(z.files) != set(keys) | {META_KEY}:
                raise ConversionError(f"{path.name}: its tensors do not match its own key list")
            state = {k: z[k] for k in keys}
    except (ConversionError, SourceError):
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ConversionError(f"{path.name} is corrupt or not a converted generator ({type(exc).__name__}: {exc})") \
            from None
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ConversionError(f"{path.name}: missing generator config")
    try:
        if config.get("family") == "stylegan3":
            checked = sg3.finish_config(config)
        elif config.get("family") == sg1.FAMILY:
            checked = sg1.finish_config(config, f"{path.name}")
        else:
            checked = sg2.finish_config(config, config["mapping_kwargs"], config["synthesis_kwargs"])
    except (KeyError, TypeError) as exc:
        raise ConversionError(f"{path.name}: malformed generator config ({exc})") from None
    if checked != config:
        raise ConversionError(f"{path.name}: malformed generator config")
    return checked, _check_state(checked, state, f"converted file {path.name}")


def _check_state(config: dict, state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    module = {"stylegan3": sg3, sg1.FAMILY: sg1}.get(config.get("family"), sg2)
    return module.check_state(config, state, source)


# ---------------------------------------------------------------------------------------------------------------
# Cached loading.


def _load_entry(entry: Path) -> tuple[dict, dict[str, np.ndarray]] | None:
    if not entry.is_file():
        return None
    try:
        return load_converted(entry)
    except (ConversionError, SourceError) as exc:
        warnings.warn(f"lsd-jax: discarding a corrupt conversion cache entry {entry.name} ({exc}); rebuilding",
                      stacklevel=3)
        try:
            entry.unlink()
        except OSError:
            pass
        return None


def load_pickle_with_hash(path: str | Path) -> tuple[dict, dict[str, np.ndarray], str]:
    """:func:`load_pickle`, also returning the sha256 of the bytes the result came from."""
    p = Path(path).expanduser()
    sha = sha256_file(p)
    if _is_zip(p):
        if not _is_converted(p):
            raise ConversionError(
                f"'{p.name}' is a zip archive (a torch.save checkpoint or a foreign .npz?), not an NVIDIA network "
                f"pickle or an lsd-jax converted .npz"
            )
        config, state = load_converted(p)  # an already converted .npz: read it directly
        return config, state, sha
    hit = _load_entry(cache_path(sha))
    if hit is not None:
        return (*hit, sha)
    data = parse.read_file(p)
    sha = hashlib.sha256(data).hexdigest()  # the bytes actually converted (the file may have changed meanwhile)
    config, state = parse.parse_bytes(data, source=f"'{p.name}'")
    del data
    try:
        save_converted(cache_path(sha), config, state, source_sha256=sha)
    except OSError as exc:
        warnings.warn(f"lsd-jax: could not write the conversion cache ({exc}); continuing uncached", stacklevel=2)
    return config, state, sha


def load_pickle(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` for an NVIDIA StyleGAN2 / StyleGAN2-ADA (PyTorch or TF) or StyleGAN3 pickle, cached.

    ``state``: ``G_ema``'s torch ``state_dict()`` (every parameter and buffer) as float32 numpy arrays in torch
    layout. ``config``: NVIDIA's Generator init kwargs with defaults filled in (see :mod:`converters.sg2`, and
    :mod:`converters.sg3` for StyleGAN3, whose config also carries the per-layer attributes).
    No code from the pickle runs (:mod:`converters.safe_pickle`). Also accepts a converted ``.npz``.
    """
    config, state, _ = load_pickle_with_hash(path)
    return config, state


def convert(path_in: str | Path, path_out: str | Path) -> Path:
    """``lsd-jax convert IN.pkl OUT.npz``: write the converted generator to ``path_out`` (atomically)."""
    config, state, sha = load_pickle_with_hash(path_in)
    return save_converted(Path(path_out).expanduser(), config, state, source_sha256=sha)


def clear_cache() -> int:
    """Delete every cached conversion; returns how many files were removed."""
    n = 0
    for f in converted_dir().glob("*.npz"):
        try:
            f.unlink()
            n += 1
        except OSError:
            pass
    return n
