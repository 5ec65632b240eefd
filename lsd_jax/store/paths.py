"""Where lsd-jax keeps files between runs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import platformdirs

from ..errors import CacheError, StyleError

CACHE_ENV = "LSD_JAX_CACHE"
#: below this, a compilation is not worth a file (JAX's default is 1 s, which skips the latents' scans)
MIN_CACHED_COMPILE_S = 0.05


def cache_dir() -> Path:
    """The cache root: ``$LSD_JAX_CACHE`` if set, else the platform's user cache dir. Created on demand.
    Raises :class:`~lsd_jax.errors.CacheError` (naming the variable) when it cannot be used."""
    env = os.environ.get(CACHE_ENV)
    where = f"${CACHE_ENV} ({env})" if env else f"the cache folder {platformdirs.user_cache_dir('lsd-jax')}"
    fix = f"point {CACHE_ENV} at a writable folder" + (", or unset it" if env else "")
    try:
        root = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("lsd-jax"))
        root.mkdir(parents=True, exist_ok=True)
    except RuntimeError:  # ~user that does not exist
        raise CacheError(f"{where} names a home folder that does not exist: {fix}") from None
    except FileExistsError:
        raise CacheError(f"{where} is a file, not a folder: {fix}") from None
    except NotADirectoryError:
        raise CacheError(f"{where} cannot be a folder (part of its path is a file): {fix}") from None
    except OSError as e:
        raise CacheError(f"{where} cannot be created ({e.strerror or e}): {fix}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise CacheError(f"{where} is not writable: {fix}")
    return root


def sha256_file(path: str | os.PathLike[str], *, start: int = 0, what: str = "file") -> str:
    """Hex sha256 of a file's bytes from offset ``start`` on, streamed in 1 MiB chunks (never held whole).
    A file that cannot be read is a :class:`~lsd_jax.errors.StyleError` naming the file (``what``, e.g.
    ``"style file"``, and its name, not its folder: messages reach the web page)."""
    p = Path(path)
    h = hashlib.sha256()
    try:
        if p.exists() and not p.is_dir() and not p.is_file():  # a FIFO or a device: reading would block or not end
            raise StyleError(f"{what} {p.name} is not a regular file (a pipe or a device?)")
        with open(p, "rb") as f:
            f.seek(start)
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError:
        raise StyleError(f"{what} not found: {p.name}") from None
    except IsADirectoryError:
        raise StyleError(f"{what} {p.name} is a directory, not a file") from None
    except OSError as exc:
        raise StyleError(f"cannot read {what} {p.name}: {exc.strerror or exc}") from None
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, fsync, and rename it
    into place: readers see the old file or the whole new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def use_persistent_caches() -> None:
    """Keep compiled code between processes, under :func:`cache_dir`: JAX's persistent compilation cache in
    ``jax/`` (the frame step, the latents' scans: a second process loads them instead of compiling) and numba's
    cache in ``numba/`` (librosa's jitted functions, used by the Deep Music Visualizer mode).

    Idempotent. A JAX cache folder already configured (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is kept,
    and JAX reads the setting at its first compilation, so within one process the first folder stays in use.
    The cache holds executable code: like any cache folder, it must not be writable by other users."""
    import jax

    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_CACHED_COMPILE_S)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
