"""The allow-list unpickler every reader here uses: one pickle is dry-run first, then unpickled with stand-ins.

:func:`load_one` reads one pickle from a stream: :func:`converters.pickle_scan.scan` plays it on a symbolic machine
(refusing opcodes, globals off the allow-list and structures too big for the load's
:class:`~converters.limits.Budget`), then :class:`RestrictedUnpickler` unpickles it for real, resolving each global
to the reader's own stand-in. Anything else the unpickler raises becomes a one-line
:class:`~converters.errors.ConversionError`.
"""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable, Collection
from typing import Any

from .errors import ConversionError, ConverterError, PickleSecurityError
from .limits import Budget, short_repr
from .pickle_scan import malformed, refuse_global, scan

__all__ = ["RestrictedUnpickler", "load_one"]


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose :meth:`find_class` resolves only ``allowed`` ((module, name) → stand-in);
    the stand-ins in ``budgeted`` are handed the load's ``budget`` (as ``_budget=``, which a pickle cannot pass)."""

    def __init__(
        self,
        file: Any,
        *,
        budget: Budget,
        allowed: dict[tuple[str, str], Any],
        where: str = "the pickle",
        persistent_load: Callable[[Any], Any] | None = None,
        budgeted: Collection[Any] = (),
        refuse: Callable[[str, str, str], PickleSecurityError] = refuse_global,
    ):
        super().__init__(file)
        self._allowed = allowed
        self._where = where
        self._persistent = persistent_load
        self._budget = budget
        self._budgeted = budgeted
        self._refuse = refuse

    def find_class(self, module: str, name: str) -> Any:
        try:
            standin = self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise self._refuse(str(module), str(name), self._where) from None
        if standin in self._budgeted:
            return functools.partial(standin, _budget=self._budget)
        return standin

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise PickleSecurityError(f"refusing a persistent id in {self._where}: {short_repr(pid)}")
        return self._persistent(pid)


def load_one(
    stream: io.BytesIO,
    *,
    allowed: dict[tuple[str, str], Any],
    where: str,
    budget: Budget,
    persistent_load: Callable[[Any], Any] | None = None,
    budgeted: Collection[Any] = (),
    refuse: Callable[[str, str, str], PickleSecurityError] = refuse_global,
) -> Any:
    """One pickle from the stream's position (left just after its STOP): dry-run, then unpickled for real."""
    start = stream.tell()
    scan(stream, budget=budget, allowed=allowed, persistent_ok=persistent_load is not None, where=where, refuse=refuse)
    stream.seek(start)
    try:
        return RestrictedUnpickler(
            stream,
            budget=budget,
            allowed=allowed,
            where=where,
            persistent_load=persistent_load,
            budgeted=budgeted,
            refuse=refuse,
        ).load()
    except ConverterError:
        raise
    except RecursionError:
        raise ConversionError(f"{where} is nested too deeply") from None
    except Exception as exc:
        raise malformed(exc, where) from None
