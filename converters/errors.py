"""Exceptions raised by the converters. This package imports nothing from ``lsd_jax``; ``lsd_jax.errors``
subclasses these (``lsd_jax.ConversionError`` is both a ``StyleError`` and a ``converters.ConversionError``) and
translates them where it calls in, with :func:`lsd_jax.errors.from_converter`."""

from __future__ import annotations


class ConverterError(Exception):
    """Base class: a model file cannot be read or converted. Messages name the file and the problem."""


class SourceError(ConverterError):
    """The model file cannot be read at all (missing, a directory, unreadable)."""


class ConversionError(ConverterError):
    """The file is readable but is not a generator this project can convert (or it is malformed)."""


class PickleSecurityError(ConverterError):
    """A pickle asked for something outside the allow-list; nothing from it was executed."""
