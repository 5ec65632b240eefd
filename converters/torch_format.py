"""torch's own serialization, read with NumPy alone: storages, tensors over them, and the legacy ``torch.save`` stream.

One implementation for both readers that meet it (facts from torch's ``serialization.py``; the code is our own):
:mod:`converters.torch_file` (whole ``torch.save`` checkpoints) and :mod:`converters.safe_pickle` (NVIDIA's network
pickles, which store each storage as ``torch.storage._load_from_bytes(b)``, ``b`` being a legacy ``torch.save``
stream of that one storage).

* A **storage** is named in a pickle by a persistent id ``('storage', torch.<T>Storage, key, location, numel)``, plus
  ``view_metadata`` (``None``, or ``(view_key, offset, size)`` into the root storage: torch < 0.4) in the legacy
  format. Only the ``torch.*Storage`` classes of :data:`STORAGE_DTYPES` may appear there (:data:`STORAGE_GLOBALS`),
  as :class:`StorageType` stand-ins; a key is a plain name, so it cannot point anywhere else in the file.
* A **tensor** is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[,
  metadata])`` (``_rebuild_parameter`` wraps one). :func:`rebuild_tensor_v2` checks that every element lies inside
  the storage and that the tensor holds no more elements than it, counts the tensor's bytes against the load's
  :class:`~converters.limits.Budget` (once per distinct tensor: the same description again is the same
  :class:`Tensor`), and returns a :class:`Tensor` that becomes a read-only view of its storage in
  :func:`materialize`, so tensors over one storage share its memory, as in torch.
* The **legacy stream** (:func:`read_legacy`): pickles of the magic int ``0x1950a86a20f9469cfc6c``, of ``1001``, of
  ``sys_info`` (with ``little_endian``); the object's pickle; a pickle of the list of storage keys; then for each
  key in that order an int64 element count and the storage's raw bytes. Nothing follows.

Every pickle is read by :func:`converters.unpickler.load_one` (dry run, then the allow-list unpickler). Failures
raise :class:`~converters.errors.PickleSecurityError` or :class:`~converters.errors.ConversionError`.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ConversionError, PickleSecurityError
from .limits import Budget, short_repr
from .pickle_scan import refuse_global
from .unpickler import load_one

__all__ = [
    "BUDGETED",
    "LEGACY_PROTOCOL",
    "MAGIC",
    "STORAGE_DTYPES",
    "STORAGE_GLOBALS",
    "Storage",
    "StorageType",
    "Storages",
    "Tensor",
    "materialize",
    "read_legacy",
    "rebuild_parameter",
    "rebuild_tensor_v2",
]

MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: torch storage class name → little-endian dtype (None: a dtype NumPy cannot hold; refused when used).
STORAGE_DTYPES: dict[str, np.dtype | None] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": None,
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # torch writes decimal ids ('0', '94352347584768')
_MAX_STORAGES = 1 << 20


class StorageType:
    """Stand-in for a ``torch.*Storage`` class: only accepted inside a storage's persistent id."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: np.dtype | None):
        self.name = name
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError(f"refusing to apply pickle state (BUILD) to torch.{self.name}")


#: Inside a storage's persistent id, only the storage classes may be named.
STORAGE_GLOBALS: dict[tuple[str, str], StorageType] = {
    ("torch", name): StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()
}


class Storage:
    """One storage: its key, dtype, declared element count; ``array`` (1-D) once its bytes are read."""

    __slots__ = ("array", "dtype", "key", "numel")

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError("refusing to apply pickle state (BUILD) to a torch storage")


class Tensor:
    """A tensor over a storage whose bytes may come later in the file: :meth:`view` once they have."""

    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(self, storage: Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError("refusing to apply pickle state (BUILD) to a tensor")

    def view(self) -> np.ndarray:
        """``size``-shaped, read-only, sharing the storage's memory (checked to fit by :func:`rebuild_tensor_v2`)."""
        data = self.storage.array
        if data is None:
            raise ConversionError(f"storage {self.storage.key!r} has no data in the file")
        if math.prod(self.size) == 0:
            return np.zeros(self.size, dtype=data.dtype)
        return np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * data.itemsize for s in self.stride),
            writeable=False,
        )


def _index_tuple(value: Any, what: str, where: str) -> tuple[int, ...]:
    if isinstance(value, list):
        value = tuple(value)
    if (
        not isinstance(value, tuple)
        or len(value) > 16
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 48 for v in value)
    ):
        raise ConversionError(f"malformed tensor {what} {short_repr(value)} in {where}")
    return value


# --------------------------------------------------------------------------------------------------------------
# Stand-ins for torch's tensor rebuilders.


def rebuild_tensor_v2(
    storage: Any = None,
    storage_offset: Any = None,
    size: Any = None,
    stride: Any = None,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
    *extra: Any,
    _budget: Budget,
) -> Tensor:
    """``torch._utils._rebuild_tensor_v2``: a checked :class:`Tensor`; the same (storage, offset, size, stride) again
    gives the same one, and each distinct tensor's bytes count against ``_budget``."""
    if extra:
        raise ConversionError("torch._utils._rebuild_tensor_v2 called with too many arguments")
    if not isinstance(storage, Storage):
        raise PickleSecurityError("torch._utils._rebuild_tensor_v2 needs a storage as first argument")
    if backward_hooks is not None and not (isinstance(backward_hooks, dict) and not backward_hooks):
        raise PickleSecurityError("refusing a tensor with backward hooks")
    if metadata is not None and not (isinstance(metadata, dict) and not metadata):
        raise ConversionError("tensors with metadata are not supported")
    size = _index_tuple(size, "size", _budget.where)
    stride = _index_tuple(stride, "stride", _budget.where)
    if len(size) != len(stride):
        raise ConversionError(f"tensor size {size} and stride {stride} differ in length")
    if not isinstance(storage_offset, int) or isinstance(storage_offset, bool) or storage_offset < 0:
        raise ConversionError(f"malformed tensor storage offset {short_repr(storage_offset)}")
    numel = math.prod(size)
    if numel:
        last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
        # every element inside the storage, and no more elements than it holds (this rules out zero-stride
        # tensors that would blow up when copied)
        if last >= storage.numel or numel > storage.numel:
            raise ConversionError(
                f"tensor of size {size}, stride {stride}, offset {storage_offset} does not fit its storage "
                f"{storage.key!r} of {storage.numel} elements"
            )
    key = ("tensor", id(storage), storage_offset, size, stride)
    hit = _budget.memo.get(key)
    if hit is None:  # the same tensor described again is the same view; a new one counts against the budget
        _budget.spend_bytes(numel * storage.dtype.itemsize, "its tensors")
        hit = _budget.memo[key] = (storage, Tensor(storage, storage_offset, size, stride))
    return hit[1]


def rebuild_parameter(data: Any = None, requires_grad: Any = False, backward_hooks: Any = None, *extra: Any) -> Tensor:
    """``torch._utils._rebuild_parameter`` and ``_rebuild_parameter_with_state``: the tensor itself."""
    if len(extra) > 1:  # _rebuild_parameter_with_state has one more argument: the Parameter's __dict__
        raise ConversionError("torch._utils._rebuild_parameter called with too many arguments")
    if not isinstance(data, Tensor):
        raise PickleSecurityError("torch._utils._rebuild_parameter needs a tensor as first argument")
    return data


#: The stand-ins here that take the load's Budget (``_budget=``, bound by the unpickler).
BUDGETED = frozenset({rebuild_tensor_v2})


# --------------------------------------------------------------------------------------------------------------
# Storages: the persistent-id handler, and the legacy stream.


class Storages:
    """The persistent-id handler of one pickle: one :class:`Storage` per key, the same object each time a key
    recurs (``legacy``: ids carry ``view_metadata``)."""

    def __init__(self, where: str, legacy: bool):
        self.where = where
        self.legacy = legacy
        self.by_key: dict[str, Storage] = {}
        self.views: dict[tuple[str, int, int], Storage] = {}

    def __call__(self, pid: Any) -> Storage:
        n = 6 if self.legacy else 5
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            if kind == "module":
                raise ConversionError(
                    f"{self.where} pickles a whole torch module (class and source code), not a state dict; save it "
                    f"with torch.save(model.state_dict(), ...)"
                )
            raise PickleSecurityError(f"refusing persistent id {short_repr(pid)} in {self.where}")
        if len(pid) != n:
            raise ConversionError(f"malformed storage persistent id {short_repr(pid)} in {self.where}")
        storage_type, key, location, numel = pid[1:5]
        if not isinstance(storage_type, StorageType):
            raise PickleSecurityError(f"refusing storage type {short_repr(storage_type)} in {self.where}")
        if storage_type.dtype is None:
            raise ConversionError(f"{self.where} holds torch.{storage_type.name} tensors, which are not supported")
        if not isinstance(key, str) or not _KEY.match(key):
            raise PickleSecurityError(
                f"refusing storage key {short_repr(key)} in {self.where}: a key is a plain name, it cannot point "
                f"anywhere else in the file"
            )
        if not isinstance(location, str) or not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise ConversionError(f"malformed storage persistent id {short_repr(pid)} in {self.where}")
        storage = self.by_key.get(key)
        if storage is None:
            if len(self.by_key) >= _MAX_STORAGES:
                raise ConversionError(f"{self.where} has too many storages")
            storage = self.by_key[key] = Storage(key, storage_type.dtype, numel)
        elif storage.dtype != storage_type.dtype or storage.numel != numel:
            raise ConversionError(f"storage {key!r} is declared twice with different types or sizes in {self.where}")
        if self.legacy and pid[5] is not None:
            return self._view(storage, pid[5])
        return storage

    def _view(self, root: Storage, meta: Any) -> Storage:
        # legacy storage views (torch < 0.4): (view_key, offset, size) into the root storage
        if (
            not isinstance(meta, tuple)
            or len(meta) != 3
            or not isinstance(meta[0], str)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in meta[1:])
        ):
            raise ConversionError(f"malformed storage view {short_repr(meta)} in {self.where}")
        _, offset, size = meta
        if offset + size > root.numel:
            raise ConversionError(f"storage view {short_repr(meta)} lies outside storage {root.key!r}")
        ident = (root.key, offset, size)
        if ident not in self.views:
            self.views[ident] = Storage(f"{root.key}[{offset}:{offset + size}]", root.dtype, size)
        return self.views[ident]

    def resolve_views(self) -> None:
        for (key, offset, size), view in self.views.items():
            root = self.by_key[key].array
            view.array = None if root is None else root[offset : offset + size]


def read_legacy(
    data: bytes,
    *,
    where: str,
    budget: Budget,
    allowed: dict[tuple[str, str], Any],
    refuse: Callable[[str, str, str], PickleSecurityError] = refuse_global,
) -> tuple[Any, Storages]:
    """A legacy ``torch.save`` stream: the object (its tensors still :class:`Tensor`) and its storages, every
    storage's ``array`` a read-only view of ``data``. ``allowed``: the object pickle's allow-list (the header and
    key-list pickles may name no global at all)."""
    f = io.BytesIO(data)

    def load(allow: dict, persistent_load: Storages | None = None) -> Any:
        return load_one(
            f,
            allowed=allow,
            where=where,
            budget=budget,
            persistent_load=persistent_load,
            budgeted=BUDGETED,
            refuse=refuse,
        )

    if (magic := load({})) != MAGIC or type(magic) is not int:
        raise ConversionError(f"{where} is not a torch.save stream (no torch.save magic number)")
    if (proto := load({})) != LEGACY_PROTOCOL or type(proto) is not int:
        raise ConversionError(f"{where} uses torch serialization protocol {short_repr(proto)}, not 1001")
    sys_info = load({})
    if not isinstance(sys_info, dict) or not isinstance(sys_info.get("little_endian"), bool):
        raise ConversionError(f"{where} has a malformed sys_info record")
    order = "<" if sys_info["little_endian"] else ">"
    storages = Storages(where, legacy=True)
    obj = load(allowed, storages)
    keys = load({})
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise ConversionError(f"{where} has a malformed storage key list")
    if set(keys) != set(storages.by_key):
        missing = sorted(set(storages.by_key) - set(keys))
        raise ConversionError(
            f"{where}: the storage key list does not match the tensors' storages "
            f"(missing {short_repr(missing)}, extra {short_repr(sorted(set(keys) - set(storages.by_key)))})"
        )
    pos = f.tell()
    for key in keys:
        st = storages.by_key[key]
        if len(data) < pos + 8:
            raise ConversionError(f"{where} is truncated (storage {key!r} is missing)")
        (count,) = struct.unpack_from("<q", data, pos)
        pos += 8
        if count != st.numel:
            raise ConversionError(
                f"{where}: storage {key!r} holds {count} elements but its header says {st.numel} (corrupt?)"
            )
        nbytes = st.numel * st.dtype.itemsize
        if len(data) < pos + nbytes:
            raise ConversionError(
                f"{where} is truncated: storage {key!r} needs {nbytes} bytes, {len(data) - pos} are left"
            )
        st.array = np.frombuffer(data, dtype=st.dtype.newbyteorder(order), count=st.numel, offset=pos)
        pos += nbytes
    if pos != len(data):
        raise ConversionError(f"{where} has {len(data) - pos} unexpected bytes after its last storage")
    storages.resolve_views()
    return obj, storages


# --------------------------------------------------------------------------------------------------------------
# Materialising: tensors become views, everywhere in the loaded object, each object once.


def materialize(obj: Any, budget: Budget, record: Callable[[Any, Callable[[Any], Any]], Any] | None = None) -> Any:
    """``obj`` with every :class:`Tensor` replaced by its view, walking each object once (a structure shared many
    times over is walked once, and one tensor stays one view). ``record(obj, walk)`` handles the reader's own
    objects: it returns the replacement (having walked what the object holds with ``walk``), or None to treat
    ``obj`` as a plain container; anything else unknown is refused."""
    memo: dict[int, Any] = {}
    max_depth = budget.limits.max_depth

    def walk(obj: Any, depth: int) -> Any:
        if depth > max_depth:
            raise budget.refuse(f"its objects nest more than {max_depth} deep")
        if isinstance(obj, (str, bytes, int, float, bool, complex, type(None), np.ndarray, np.generic)):
            return obj
        key = id(obj)
        if key in memo:
            return memo[key]
        if not len(memo) & 4095:
            budget.check_time()
        if isinstance(obj, Tensor):
            out = memo[key] = obj.view()
            return out
        if record is not None:
            out = record(obj, lambda child: walk(child, depth + 1))
            if out is not None:
                memo[key] = out
                return out
        if isinstance(obj, dict):
            memo[key] = obj
            for k in list(obj):
                obj[k] = walk(obj[k], depth + 1)
            return obj
        if isinstance(obj, list):
            memo[key] = obj
            for i, v in enumerate(obj):
                obj[i] = walk(v, depth + 1)
            return obj
        if isinstance(obj, tuple):
            out = memo[key] = tuple(walk(v, depth + 1) for v in obj)
            return out
        if isinstance(obj, (set, frozenset)):  # hashable members only: left as they are
            return obj
        raise ConversionError(f"unexpected object of type {type(obj).__name__} in {budget.where}")

    try:
        return walk(obj, 0)
    except RecursionError:
        raise ConversionError(f"{budget.where} is nested too deeply") from None
