"""Where lsd-jax keeps files between runs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import platformdirs

from .errors import CacheError

CACHE_ENV = "LSD_JAX_CACHE"


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
