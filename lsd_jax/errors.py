"""Exceptions that reach users. Each message names the problem and what to do about it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from converters import errors as _conv


class LsdError(Exception):
    """Base class: every error lsd-jax raises on bad input is one of these."""


class ParamError(LsdError, ValueError):
    """A render parameter is missing, of the wrong type or out of range."""


class AudioError(LsdError):
    """An audio file cannot be read, is silent, or is too short."""


class StyleError(LsdError):
    """A style cannot be found, loaded or used."""


class PickleSecurityError(StyleError, _conv.PickleSecurityError):
    """A pickle asked for something outside the allow-list; nothing from it was executed."""


class ConversionError(StyleError, _conv.ConversionError):
    """A pickle is readable but is not a generator this project can convert."""


class DownloadError(LsdError):
    """A download failed (offline, dead link, stalled server, checksum mismatch).

    For callers that explain further (the style catalogue): ``reason``, a short phrase without advice (default: the
    message); ``unavailable``, when trying again soon will not help: "dead" (gone, taken down, not public),
    "quota" (the host's download quota) or "unsupported" (a link lsd-jax cannot download); ``disk``: the local disk,
    not the download, failed."""

    def __init__(self, message: str, *, reason: str | None = None, unavailable: str | None = None, disk: bool = False):
        super().__init__(message)
        self.reason = reason or message
        self.unavailable = unavailable
        self.disk = disk


class OutputError(LsdError):
    """The output video cannot be written (unwritable path, full disk, encoder failure)."""


class CacheError(LsdError, OSError):
    """The cache folder (``$LSD_JAX_CACHE`` or the platform's) cannot be used (a file, unwritable, ...)."""


@contextlib.contextmanager
def from_converter() -> Iterator[None]:
    """Re-raise a ``converters`` error as the matching lsd-jax error (same message, no converter traceback)."""
    try:
        yield
    except _conv.PickleSecurityError as e:
        raise e if isinstance(e, LsdError) else PickleSecurityError(str(e)) from None
    except _conv.ConversionError as e:
        raise e if isinstance(e, LsdError) else ConversionError(str(e)) from None
    except _conv.ConverterError as e:
        raise e if isinstance(e, LsdError) else StyleError(str(e)) from None
