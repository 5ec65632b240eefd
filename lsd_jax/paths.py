"""Where lsd-jax keeps files between runs."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_ENV = "LSD_JAX_CACHE"


def cache_dir() -> Path:
    """The cache root: ``$LSD_JAX_CACHE`` if set, else the platform's user cache dir. Created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("lsd-jax"))
    root.mkdir(parents=True, exist_ok=True)
    return root
