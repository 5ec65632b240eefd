"""Uncached conversion: NVIDIA pickle bytes / file → ``(config, state)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConversionError, SourceError
from .limits import Limits
from .safe_pickle import safe_loads
from .tf_pickle import convert_tf, is_tf
from .torch_pickle import convert_torch


def parse_bytes(
    data: bytes, source: str = "the pickle", *, limits: Limits | None = None
) -> tuple[dict, dict[str, np.ndarray]]:
    """Convert the bytes of an NVIDIA network pickle (PyTorch or TF). Nothing in it is executed; loading stays
    within ``limits`` (default :class:`~converters.limits.Limits`)."""
    obj = safe_loads(data, where=source, limits=limits)
    try:
        if is_tf(obj):
            return convert_tf(obj, source)
        return convert_torch(obj, source)
    except (TypeError, AttributeError, ValueError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        # The interpreters validate what they read; this is the backstop for a structure nobody anticipated.
        raise ConversionError(
            f"{source} has an unexpected structure for an NVIDIA network pickle ({type(exc).__name__}: "
            f"{str(exc)[:200]})"
        ) from None


def read_file(path: str | Path) -> bytes:
    """The file's bytes, or a :class:`SourceError` that says what is wrong with the path."""
    p = Path(path).expanduser()
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"style file not found: {p}") from None
    except IsADirectoryError:
        raise SourceError(f"style path is a directory, not a .pkl file: {p}") from None
    except OSError as exc:
        raise SourceError(f"cannot read {p}: {exc.strerror or exc}") from None


def parse_file(path: str | Path, *, limits: Limits | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Convert an NVIDIA network pickle file, uncached."""
    p = Path(path)
    return parse_bytes(read_file(p), source=f"'{p.name}'", limits=limits)
