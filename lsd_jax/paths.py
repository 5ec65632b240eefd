"""Where lsd-jax keeps files between runs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import platformdirs

CACHE_ENV = "LSD_JAX_CACHE"


def cache_dir() -> Path:
    """The cache root: ``$LSD_JAX_CACHE`` if set, else the platform's user cache dir. Created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("lsd-jax"))
    root.mkdir(parents=True, exist_ok=True)
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
