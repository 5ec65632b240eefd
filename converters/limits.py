"""Work and memory budgets for reading one untrusted model file, and bounded descriptions for messages.

Refusing dangerous globals is not enough to make a loader safe: a few kilobytes of pickle can describe a structure
that is exponentially large when walked, hashed or printed (shared references), a memo table of billions of slots,
or thousands of tensors over one stored buffer. :class:`Limits` says how much a load may build; a :class:`Budget`
(one per load, never shared between loads) counts what it has built and raises
:class:`~converters.errors.ConversionError` with a one-line message the moment a limit is passed.

The defaults are far above what any NVIDIA network pickle needs (a 1024² StyleGAN2 snapshot builds ~30 000
objects, nests ~40 deep, and its tensors add up to less than the file's own size) and far below what would hurt the
machine. A server can pass tighter ones (see :mod:`lsd_jax.store.sandbox`, which also enforces them from outside, with a
child process under an address-space limit and a wall-clock timeout).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ConversionError

__all__ = ["Budget", "Limits", "human_bytes", "short_repr"]


@dataclass(frozen=True)
class Limits:
    """What loading one model file may cost. Every count is of things the *file* makes the loader build."""

    #: bytes of input accepted at all
    max_file_bytes: int = 4 << 30
    #: objects (numbers, strings, containers, calls) a pickle may build, nested pickles included
    max_objects: int = 2_000_000
    #: references held by containers, all containers together (a reference to a shared object counts each time)
    max_items: int = 8_000_000
    #: elements of one container
    max_container_len: int = 1_000_000
    #: the size of the loaded structure when walked as a tree (a shared object counted once per path to it)
    max_tree_nodes: int = 4_000_000
    #: nesting depth of the loaded structure
    max_depth: int = 200
    #: highest pickle memo index (the memo is an array: index n costs n slots)
    max_memo: int = 2_000_000
    #: objects nested inside one dictionary key or set element (hashing walks them all, every time)
    max_key_nodes: int = 1_000
    #: objects hashed in all, over every dictionary key and set element
    max_hash_work: int = 10_000_000
    #: bytes of arrays, tensors and strings the loader creates: ``min(max_bytes, ratio * input + slack)``
    max_bytes: int = 8 << 30
    bytes_per_input_byte: float = 2.0
    bytes_slack: int = 64 << 20
    #: wall-clock seconds for one load (checked cooperatively; lsd_jax.store.sandbox enforces it from outside too)
    max_seconds: float = 120.0
    #: zip archives: members, and how much one member may inflate (uncompressed <= ratio * compressed + slack)
    max_zip_members: int = 100_000
    max_zip_ratio: float = 20.0
    zip_ratio_slack: int = 1 << 20


def human_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KB'`` (powers of 1024, one decimal)."""
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


@dataclass
class Budget:
    """The running cost of ONE load against its :class:`Limits` (``input_bytes``: the size of the file)."""

    limits: Limits
    input_bytes: int
    where: str = "the file"
    objects: int = 0
    items: int = 0
    hash_work: int = 0
    bytes: int = 0
    deadline: float = 0.0
    #: per-load memo of decoded torch storages and tensor views (so a storage or view referenced many times is
    #: decoded and kept once); keys hold a reference to the source object so ids stay unique
    memo: dict[Any, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lim = self.limits
        self.max_bytes = int(min(lim.max_bytes, lim.bytes_per_input_byte * self.input_bytes + lim.bytes_slack))
        self.deadline = time.monotonic() + lim.max_seconds
        if self.input_bytes > lim.max_file_bytes:
            raise ConversionError(
                f"{self.where} is {human_bytes(self.input_bytes)}, more than the "
                f"{human_bytes(lim.max_file_bytes)} a model file may have; refusing to load it"
            )

    def refuse(self, what: str) -> ConversionError:
        return ConversionError(
            f"{self.where} is refused: {what} (a corrupt or hostile file?). Nothing from it was executed."
        )

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise self.refuse(f"reading it took longer than {self.limits.max_seconds:g} s")

    def spend_bytes(self, n: int, what: str) -> None:
        self.bytes += int(n)
        if self.bytes > self.max_bytes:
            raise self.refuse(
                f"{what} bring the data it creates to {human_bytes(self.bytes)}, more than the "
                f"{human_bytes(self.max_bytes)} allowed for a {human_bytes(self.input_bytes)} file (tensors "
                "that share one stored buffer many times over?)"
            )
        self.check_time()

    def spend_items(self, n: int, what: str) -> None:
        self.items += int(n)
        if self.items > self.limits.max_items:
            raise self.refuse(f"{what}: its containers hold more than {self.limits.max_items:,} references")


# --------------------------------------------------------------------------------------------------------------
# Messages: never repr() an untrusted structure (a shared-reference structure can be exponentially long).


_SCALARS = (bool, int, float, complex, type(None))


def short_repr(obj: Any, n: int = 80) -> str:
    """A description of ``obj`` at most ``n`` characters long, computed in time independent of its size: scalars and
    short strings as ``repr``; containers by type and length (a short tuple/list of scalars is shown whole);
    arrays by shape and dtype; anything else by type name. Never recurses into a structure."""
    text = _describe(obj, n, top=True)
    return text if len(text) <= n else text[: max(n - 3, 0)] + "..."


def _describe(obj: Any, n: int, top: bool) -> str:
    if isinstance(obj, bool) or obj is None:
        return repr(obj)
    if isinstance(obj, int):
        return repr(obj) if obj.bit_length() <= 64 else f"<int of {obj.bit_length()} bits>"
    if isinstance(obj, (float, complex)):
        return repr(obj)
    if isinstance(obj, str):
        return repr(obj[: n + 1]) if len(obj) <= n else repr(obj[:n]) + f"... ({len(obj):,} characters)"
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj):,} bytes>"
    shape, dtype = getattr(obj, "shape", None), getattr(obj, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and all(type(s) is int for s in shape):
        return f"<array {tuple(shape)} {dtype}>"
    if isinstance(obj, (tuple, list)):
        if top and len(obj) <= 8 and all(isinstance(x, _SCALARS) or (isinstance(x, str) and len(x) <= 20) for x in obj):
            inner = ", ".join(_describe(x, 20, top=False) for x in obj)
            return f"({inner}{',' if len(obj) == 1 else ''})" if isinstance(obj, tuple) else f"[{inner}]"
        return f"<{type(obj).__name__} of {len(obj):,} items>"
    if isinstance(obj, (dict, set, frozenset)):
        return f"<{type(obj).__name__} of {len(obj):,} items>"
    name = getattr(obj, "class_name", None)
    if isinstance(name, str) and len(name) <= 60:
        return f"<{name} module>"
    return f"<{type(obj).__name__}>"
