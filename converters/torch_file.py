"""``torch.save`` checkpoints (e.g. a ``pytorch_model.bin`` state dict) read with NumPy alone: nothing executed.

Both serializations ``torch.save`` has written are read (facts from torch's ``serialization.py`` and
``caffe2/serialize/inline_container.cc``; the code here is independent):

* **legacy** (torch < 1.6, or ``_use_new_zipfile_serialization=False``): five things back to back in one stream:
  a pickle of the magic int ``0x1950a86a20f9469cfc6c``, a pickle of ``1001``, a pickle of ``sys_info`` (with
  ``little_endian``), the object's pickle, whose storages are persistent ids
  ``('storage', torch.<T>Storage, key, location, numel, view_metadata)``, a pickle of the sorted list of storage
  keys, then for each key in that order an int64 element count and the storage's raw bytes. Nothing follows.
* **zip** (torch ≥ 1.6): an uncompressed zip whose entries all lie in one top folder (``archive/`` when written to
  a buffer, the file's stem such as ``pytorch_model/`` when written to a path): ``data.pkl`` (the object's pickle,
  persistent ids ``('storage', torch.<T>Storage, key, location, numel)``), ``data/<key>`` (each storage's raw
  bytes), ``version`` or ``.data/version``, optionally ``byteorder`` (``little``/``big``; absent means little) and
  ``.data/serialization_id``.

Every pickle goes through :class:`~converters.safe_pickle.RestrictedUnpickler` with a small allow-list
(:data:`ALLOWED_GLOBALS`): ``collections.OrderedDict`` (a state dict, whose ``_metadata`` BUILD state is kept as
:attr:`StateDict.metadata`), ``torch._utils._rebuild_tensor_v2`` and ``_rebuild_parameter(_with_state)``, and the
``torch.*Storage`` classes (only meaningful inside a storage's persistent id). Opcodes that instantiate classes by
themselves (INST/OBJ) or use the copyreg registry (EXT*) are refused before anything is unpickled, and every
pickle is dry-run first within the work and memory budgets of :class:`~converters.limits.Limits`
(:func:`converters.pickle_scan.scan`); the tensors' total size is bounded by the file's (identical tensors are one
view); the loaded structure is walked once per object.

Checks, all before any tensor is handed out: a storage's declared element count must equal what the file holds
(the legacy header count; the zip entry's size); every tensor (size, stride, offset) must lie inside its storage
and hold at most as many elements as it; zip entries must be stored uncompressed, unencrypted and unique; storage
keys are plain names (no ``/``, no ``..``), so a key cannot point outside the archive's ``data/`` folder. Tensors
are read-only NumPy views of their storage: tensors that share a storage share memory, as in torch.

Entry point: :func:`load_torch_file` ``(data, where) -> object`` (a :class:`StateDict` for a state dict). Failures
raise :class:`~converters.errors.PickleSecurityError` (something off the allow-list) or
:class:`~converters.errors.ConversionError` (malformed or unsupported); no other exception type escapes.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import struct
import zipfile
from typing import Any

import numpy as np

from .errors import ConversionError, ConverterError, PickleSecurityError
from .limits import Budget, Limits
from .pickle_scan import refuse_global, scan
from .safe_pickle import RestrictedUnpickler, short_repr

__all__ = ["ALLOWED_GLOBALS", "StateDict", "load_torch_file"]

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
_MAX_DEPTH = 100


# --------------------------------------------------------------------------------------------------------------
# Stand-ins for the allow-listed globals.


class StateDict(dict):
    """``collections.OrderedDict`` as a state dict: a dict (insertion order kept) plus torch's ``_metadata``."""

    def __init__(self, *args: Any) -> None:
        if args:  # torch pickles an OrderedDict as OrderedDict() + SETITEMS; anything else is not a state dict
            raise ConversionError("collections.OrderedDict called with arguments in a torch checkpoint")
        super().__init__()
        self.metadata: dict = {}

    def __setstate__(self, state: Any) -> None:
        # OrderedDict.__reduce__ hands its instance __dict__ to BUILD: a state dict has only `_metadata`
        if not isinstance(state, dict) or set(state) - {"_metadata"}:
            raise PickleSecurityError(
                f"refusing pickle state {short_repr(state)} on collections.OrderedDict: a torch state dict only "
                f"carries '_metadata'"
            )
        meta = state.get("_metadata", {})
        if not isinstance(meta, dict):
            raise ConversionError("a state dict's _metadata is not a dict")
        self.metadata = meta


class _StorageType:
    """Stand-in for a ``torch.*Storage`` class: only accepted inside a storage's persistent id."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: np.dtype | None):
        self.name = name
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError(f"refusing to apply pickle state (BUILD) to torch.{self.name}")


class _Storage:
    """One storage of the checkpoint: its key, dtype, declared element count; ``array`` once its bytes are read."""

    __slots__ = ("array", "dtype", "key", "numel")

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError("refusing to apply pickle state (BUILD) to a torch storage")


class _LazyTensor:
    """A tensor whose storage bytes come later in the file (legacy format): becomes a view when they do."""

    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError("refusing to apply pickle state (BUILD) to a tensor")

    def view(self) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise ConversionError(f"storage {self.storage.key!r} has no data in the file")
        if math.prod(self.size) == 0:
            return np.zeros(self.size, dtype=data.dtype)
        return np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=tuple(s * data.itemsize for s in self.stride),
            writeable=False,
        )


def _index_tuple(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple) or len(value) > 16 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 48 for v in value
    ):
        raise ConversionError(f"malformed tensor {what} {short_repr(value)} in a torch checkpoint")
    return value


def _rebuild_tensor_v2(storage: Any = None, storage_offset: Any = None, size: Any = None, stride: Any = None,
                       requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None,
                       *extra: Any, _budget: Budget) -> _LazyTensor:
    if extra:
        raise ConversionError("torch._utils._rebuild_tensor_v2 called with too many arguments")
    if not isinstance(storage, _Storage):
        raise PickleSecurityError("torch._utils._rebuild_tensor_v2 needs a storage (persistent id) first")
    if backward_hooks is not None and not (isinstance(backward_hooks, dict) and not backward_hooks):
        raise PickleSecurityError("refusing a tensor with backward hooks")
    if metadata is not None and not (isinstance(metadata, dict) and not metadata):
        raise ConversionError("tensors with metadata are not supported")
    size = _index_tuple(size, "size")
    stride = _index_tuple(stride, "stride")
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
        hit = _budget.memo[key] = (storage, _LazyTensor(storage, storage_offset, size, stride))
    return hit[1]


def _rebuild_parameter(data: Any = None, requires_grad: Any = False, backward_hooks: Any = None,
                       *extra: Any) -> _LazyTensor:
    if len(extra) > 1:  # _rebuild_parameter_with_state has one more argument: the Parameter's __dict__
        raise ConversionError("torch._utils._rebuild_parameter called with too many arguments")
    if not isinstance(data, _LazyTensor):
        raise PickleSecurityError("torch._utils._rebuild_parameter needs a tensor as first argument")
    return data


#: (module, name) → stand-in, for the object's pickle.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): StateDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
ALLOWED_GLOBALS.update({("torch", name): _StorageType(name, dt) for name, dt in STORAGE_DTYPES.items()})


# --------------------------------------------------------------------------------------------------------------
# Unpickling.


def _malformed(exc: BaseException, where: str) -> ConversionError:
    msg = str(exc)
    return ConversionError(f"{where} is truncated or corrupt ({type(exc).__name__}: "
                           f"{msg if len(msg) <= 200 else msg[:197] + '...'})")


def _refuse(module: str, name: str, where: str) -> PickleSecurityError:
    return refuse_global(module, name, where, allowed="a torch checkpoint may only hold tensors and state dicts")


def _load(stream: io.BytesIO, where: str, budget: Budget, allowed: dict | None = None,
          persistent_load: Any = None) -> Any:
    allowed = {} if allowed is None else allowed
    start = stream.tell()
    scan(stream, budget=budget, allowed=allowed, persistent_ok=persistent_load is not None, where=where,
         refuse=_refuse)
    stream.seek(start)
    try:
        return RestrictedUnpickler(stream, allowed=allowed, where=where, persistent_load=persistent_load,
                                   budget=budget, budgeted={_rebuild_tensor_v2}, refuse=_refuse).load()
    except ConverterError:
        raise
    except RecursionError:
        raise ConversionError(f"{where} is nested too deeply") from None
    except Exception as exc:
        raise _malformed(exc, where) from None


class _Storages:
    """The persistent-id handler: one :class:`_Storage` per key, the same object each time a key recurs."""

    def __init__(self, where: str, legacy: bool):
        self.where = where
        self.legacy = legacy
        self.by_key: dict[str, _Storage] = {}
        self.views: dict[tuple[str, int, int], _Storage] = {}

    def __call__(self, pid: Any) -> Any:
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
        if not isinstance(storage_type, _StorageType):
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
            storage = self.by_key[key] = _Storage(key, storage_type.dtype, numel)
        elif storage.dtype != storage_type.dtype or storage.numel != numel:
            raise ConversionError(f"storage {key!r} is declared twice with different types or sizes in {self.where}")
        if self.legacy and pid[5] is not None:
            return self._view(storage, pid[5])
        return storage

    def _view(self, root: _Storage, meta: Any) -> _Storage:
        # legacy storage views (torch < 0.4): (view_key, offset, size) into the root storage
        if (not isinstance(meta, tuple) or len(meta) != 3 or not isinstance(meta[0], str)
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in meta[1:])):
            raise ConversionError(f"malformed storage view {short_repr(meta)} in {self.where}")
        _, offset, size = meta
        if offset + size > root.numel:
            raise ConversionError(f"storage view {short_repr(meta)} lies outside storage {root.key!r}")
        ident = (root.key, offset, size)
        if ident not in self.views:
            self.views[ident] = _Storage(f"{root.key}[{offset}:{offset + size}]", root.dtype, size)
        return self.views[ident]

    def resolve_views(self) -> None:
        for (key, offset, size), view in self.views.items():
            root = self.by_key[key].array
            view.array = None if root is None else root[offset:offset + size]


def _materialize(obj: Any, memo: dict[int, Any], depth: int = 0) -> Any:
    """Replace lazy tensors by views, everywhere in the loaded object, each object once (``memo``: id -> result;
    a structure shared many times over is walked once, and one tensor stays one view)."""
    if depth > _MAX_DEPTH:
        raise ConversionError("torch checkpoint is nested too deeply")
    if isinstance(obj, (str, bytes, int, float, bool, type(None), complex)):
        return obj
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, _LazyTensor):
        out = memo[id(obj)] = obj.view()
        return out
    if isinstance(obj, dict):  # a StateDict stays one (same object, same metadata)
        memo[id(obj)] = obj
        for k in list(obj):
            obj[k] = _materialize(obj[k], memo, depth + 1)
        if isinstance(obj, StateDict):
            obj.metadata = _materialize(obj.metadata, memo, depth + 1)
        return obj
    if isinstance(obj, list):
        memo[id(obj)] = obj
        obj[:] = [_materialize(v, memo, depth + 1) for v in obj]
        return obj
    if isinstance(obj, tuple):
        out = memo[id(obj)] = tuple(_materialize(v, memo, depth + 1) for v in obj)
        return out
    if isinstance(obj, (set, frozenset)):
        return obj
    raise ConversionError(f"unexpected object of type {type(obj).__name__} in a torch checkpoint")


# --------------------------------------------------------------------------------------------------------------
# The two containers.


def _load_legacy(data: bytes, where: str, budget: Budget) -> Any:
    f = io.BytesIO(data)
    if (magic := _load(f, where, budget)) != MAGIC or type(magic) is not int:
        raise ConversionError(f"{where} is not a torch checkpoint (no torch.save magic number)")
    if (proto := _load(f, where, budget)) != LEGACY_PROTOCOL or type(proto) is not int:
        raise ConversionError(f"{where} uses torch serialization protocol {short_repr(proto)}, not 1001")
    sys_info = _load(f, where, budget)
    if not isinstance(sys_info, dict) or not isinstance(sys_info.get("little_endian"), bool):
        raise ConversionError(f"{where} has a malformed sys_info record")
    order = "<" if sys_info["little_endian"] else ">"
    storages = _Storages(where, legacy=True)
    obj = _load(f, where, budget, ALLOWED_GLOBALS, storages)
    keys = _load(f, where, budget)
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
                f"{where}: storage {key!r} is declared with {st.numel} elements but the file holds {count}"
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
    return _materialize(obj, {})


def _load_zip(data: bytes, where: str, budget: Budget) -> Any:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as exc:  # zipfile raises BadZipFile, but also ValueError/struct.error/... on damaged data
        raise ConversionError(f"{where} is a damaged zip archive ({type(exc).__name__}: {exc})") from None
    if not infos:
        raise ConversionError(f"{where} is an empty zip archive")
    if len(infos) > budget.limits.max_zip_members:
        raise budget.refuse(f"it has {len(infos):,} zip entries (the limit is {budget.limits.max_zip_members:,})")
    prefix = infos[0].filename.partition("/")[0] + "/"
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if not name.startswith(prefix) or len(name) == len(prefix):
            raise ConversionError(f"{where}: zip entry {short_repr(name)} is not inside the archive folder {prefix!r}")
        if name in entries:
            raise ConversionError(f"{where}: zip entry {short_repr(name)} appears twice")
        if info.flag_bits & 0x1:
            raise ConversionError(f"{where}: zip entry {short_repr(name)} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise ConversionError(
                f"{where}: zip entry {short_repr(name)} is compressed; torch.save writes stored (uncompressed) entries"
            )
        entries[name[len(prefix):]] = info

    def read(name: str) -> bytes:
        try:
            return zf.read(entries[name])
        except Exception as exc:  # CRC mismatch, damaged header, ...
            raise ConversionError(f"{where}: cannot read zip entry {prefix}{name} ({type(exc).__name__}: {exc})"
                                  ) from None

    if "data.pkl" not in entries:
        raise ConversionError(f"{where} is a zip archive without {prefix}data.pkl: not a torch.save checkpoint")
    version_name = ".data/version" if ".data/version" in entries else "version"
    if version_name not in entries:
        raise ConversionError(f"{where} has no {prefix}version record: not a torch.save checkpoint")
    version = read(version_name).strip()
    if not version.isdigit() or not 1 <= int(version) <= 1000:
        raise ConversionError(f"{where} has a malformed version record {short_repr(version)}")
    order = "<"
    if "byteorder" in entries:
        byteorder = read("byteorder")
        if byteorder not in (b"little", b"big"):
            raise ConversionError(f"{where} has a malformed byteorder record {short_repr(byteorder)}")
        order = "<" if byteorder == b"little" else ">"
    storages = _Storages(where, legacy=False)
    obj = _load(io.BytesIO(read("data.pkl")), f"{where} ({prefix}data.pkl)", budget, ALLOWED_GLOBALS, storages)
    for key, st in storages.by_key.items():
        name = f"data/{key}"
        if name not in entries:
            raise ConversionError(f"{where}: storage {key!r} has no entry {prefix}{name} in the archive")
        nbytes = st.numel * st.dtype.itemsize
        if entries[name].file_size != nbytes:
            raise ConversionError(
                f"{where}: storage {key!r} is declared with {st.numel} elements ({nbytes} bytes) but its entry "
                f"holds {entries[name].file_size} bytes"
            )
        st.array = np.frombuffer(read(name), dtype=st.dtype.newbyteorder(order), count=st.numel)
    return _materialize(obj, {})


def load_torch_file(data: bytes, where: str = "the checkpoint", *, limits: Limits | None = None) -> Any:
    """The object ``torch.save`` wrote into ``data`` (either serialization), tensors as read-only NumPy views.
    A state dict comes back as a :class:`StateDict`. Nothing from the file is executed or imported; reading stays
    within ``limits`` (default :class:`~converters.limits.Limits`)."""
    if not data:
        raise ConversionError(f"{where} is empty")
    budget = Budget(limits or Limits(), len(data), where)
    if data[:4] == b"PK\x03\x04":
        return _load_zip(data, where, budget)
    if len(data) > 262 and data[257:262] == b"ustar":
        raise ConversionError(
            f"{where} is a tar-format torch checkpoint (torch < 0.4), which is not supported; re-save it with a "
            f"newer torch"
        )
    if data[:1] != pickle.PROTO:
        raise ConversionError(f"{where} is not a torch checkpoint (neither a zip archive nor a torch.save stream)")
    return _load_legacy(data, where, budget)
