"""A restricted unpickler for NVIDIA's network pickles: data in, nothing executed.

``pickle`` is a small stack machine whose only dangerous instructions are the ones that fetch a global
(``GLOBAL``/``STACK_GLOBAL``/``INST``, resolved through :meth:`pickle.Unpickler.find_class`) and then call or
instantiate it (``REDUCE``/``NEWOBJ``/``OBJ``/``INST``/``BUILD``). This module lets a pickle fetch ONLY the globals
in :data:`ALLOWED_GLOBALS`, and every one of them resolves to a stand-in written here, never to the module the
pickle names (nothing is imported on the pickle's behalf, and no ``module_src`` is ever executed). The stand-ins
validate their arguments and build plain data: dicts, lists, numpy arrays, :class:`PersistentObject` and
:class:`TFNetwork` records.

Refusing globals does not bound work or memory, so before unpickling, :func:`converters.pickle_scan.scan` dry-runs
the opcode stream (parsed with :func:`pickletools.genops`, which executes nothing) on a symbolic machine: opcodes
NVIDIA's pickles never use (``INST``, ``OBJ``, the copyreg extension codes, persistent ids outside a torch storage
stream) and names off the allow-list are refused, and so is a structure that is too big, too deep, cyclic,
exponentially large when walked (shared references) or expensive to hash, or a memo index that would reserve
gigabytes (see :class:`converters.limits.Limits`). The stand-ins then count the bytes they create against the same
per-load :class:`~converters.limits.Budget`; a torch storage referenced many times is decoded once and its tensors
are views of it (shared, not copied).

Entry point: :func:`safe_loads`. Failures raise :class:`~converters.errors.PickleSecurityError` (the pickle asked for
something outside the allow-list) or :class:`~converters.errors.ConversionError` (malformed data); no other exception
type escapes.
"""

from __future__ import annotations

import functools
import io
import math
import pickle
import re
import struct
from typing import Any

import numpy as np

from .errors import ConversionError, ConverterError, PickleSecurityError
from .limits import Budget, Limits, short_repr
from .pickle_scan import malformed, refuse_global, scan

__all__ = [
    "ALLOWED_GLOBALS",
    "Limits",
    "PersistentObject",
    "RestrictedUnpickler",
    "TFNetwork",
    "safe_loads",
    "short_repr",
]

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "DoubleStorage": np.dtype("<f8"),
    "BFloat16Storage": None,  # numpy has no bfloat16; refused with a clear message
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


# --------------------------------------------------------------------------------------------------------------
# Records produced by the stand-ins.


class _NoBuild:
    """Refuses pickle's BUILD opcode (``__setstate__``): no stand-in object accepts state it does not expect."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError(
            f"refusing to apply pickle state (BUILD) to {type(self).__name__}: NVIDIA's pickles never do this"
        )


class PersistentObject(_NoBuild):
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` stands for: a module's class name and
    its ``__dict__`` (``state``), as plain data. ``module_src`` is never executed and not even kept: only its
    length is recorded, for diagnostics."""

    __slots__ = ("class_name", "state", "version", "module_src_len")

    def __init__(self, class_name: str, state: dict, version: int, module_src_len: int):
        self.class_name = class_name
        self.state = state
        self.version = version
        self.module_src_len = module_src_len

    def __repr__(self) -> str:
        return f"PersistentObject({short_repr(self.class_name, 60)})"


class TFNetwork(_NoBuild):
    """Stand-in for ``dnnlib.tflib.network.Network``: holds the state dict handed to ``__setstate__``."""

    __slots__ = ("state",)

    def __init__(self) -> None:  # NEWOBJ calls __new__ only; REDUCE with arguments fails here
        self.state = None

    def __setstate__(self, state: Any) -> None:
        if getattr(self, "state", None) is not None:
            raise PickleSecurityError("refusing a second BUILD on dnnlib.tflib.network.Network")
        if not isinstance(state, dict):
            raise ConversionError(f"dnnlib.tflib.network.Network state must be a dict, not {type(state).__name__}")
        self.state = state

    def __repr__(self) -> str:
        name = self.state.get("name") if isinstance(self.state, dict) else None
        return f"TFNetwork({short_repr(name, 60)})"


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access): a plain dict here. Pickles create it
    empty (NEWOBJ) and fill it item by item; called with arguments it would copy a (shared) mapping each time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise PickleSecurityError("refusing dnnlib.util.EasyDict called with arguments: NVIDIA's pickles never "
                                      "do this")
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if state:
            raise PickleSecurityError("refusing to apply pickle state (BUILD) to dnnlib.util.EasyDict")


class _Storage:
    """A torch storage decoded from its legacy ``torch.save`` byte stream: a 1-D numpy array."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __setstate__(self, state: Any) -> None:
        raise PickleSecurityError("refusing to apply pickle state (BUILD) to a torch storage")


class _StorageType(_NoBuild):
    """Stand-in for a ``torch.*Storage`` class, only meaningful inside a storage's persistent id."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype | None):
        self.name = name
        self.dtype = dtype


class _NdarrayClass(_NoBuild):
    """Stand-in for the ``numpy.ndarray`` class object: only accepted as ``_reconstruct``'s first argument."""

    __slots__ = ()


_NDARRAY = _NdarrayClass()

_DTYPE_SPEC = re.compile(r"^[biufc]\d{1,2}$")


class _DType:
    """Stand-in for ``numpy.dtype(spec, align, copy)`` + its BUILD state; only plain numeric dtypes."""

    __slots__ = ("dtype", "_built")

    def __init__(self, spec: Any, align: Any = False, copy: Any = True):
        if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
            raise PickleSecurityError(
                f"refusing numpy dtype {short_repr(spec)}: only plain numeric dtypes (bool, int, float, complex) are "
                "allowed"
            )
        try:
            dt = np.dtype(spec)
        except TypeError as exc:
            raise ConversionError(f"invalid numpy dtype {short_repr(spec)} in pickle") from exc
        if dt.kind not in "biufc":
            raise PickleSecurityError(f"refusing numpy dtype {short_repr(spec)}")
        self.dtype = dt
        self._built = False

    def __setstate__(self, state: Any) -> None:
        if self._built:
            raise PickleSecurityError("refusing a second BUILD on numpy.dtype")
        self._built = True
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise ConversionError("malformed numpy dtype state in pickle")
        _version, endian, subarray, names, fields = state[:5]
        if subarray is not None or names is not None or fields is not None:
            raise PickleSecurityError("refusing structured / sub-array numpy dtypes")
        if endian in ("<", ">") and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(endian)
        elif endian not in ("<", ">", "|", "="):
            raise ConversionError(f"malformed numpy dtype byte order {short_repr(endian)}")


class _ArrayBuilder(_NoBuild):
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``: an empty placeholder that the following
    BUILD fills in with ``(version, shape, dtype, is_fortran, raw_bytes)``."""

    __slots__ = ("array", "budget")

    def __init__(self, budget: Budget) -> None:
        self.array = None
        self.budget = budget

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise PickleSecurityError("refusing a second BUILD on a numpy array")
        if not isinstance(state, tuple) or len(state) != 5:
            raise ConversionError("malformed numpy array state in pickle")
        _version, shape, dtype, is_fortran, raw = state
        if not isinstance(dtype, _DType):
            raise PickleSecurityError("refusing a numpy array whose dtype is not a plain numeric dtype")
        if isinstance(raw, str):  # protocol 0-2 pickles written by Python 2
            self.budget.spend_bytes(len(raw), "numpy arrays")
            raw = raw.encode("latin-1")
        if not isinstance(raw, (bytes, bytearray)):
            raise PickleSecurityError("refusing a numpy array of Python objects")
        self.array = _array_from_bytes(raw, dtype.dtype, shape, "F" if is_fortran else "C", self.budget)


_MAX_NDIM = 32


def _check_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) or len(shape) > _MAX_NDIM or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise ConversionError(f"malformed array shape {short_repr(shape)} in pickle")
    return tuple(shape)


def _array_from_bytes(raw: bytes | bytearray, dtype: np.dtype, shape: Any, order: str, budget: Budget) -> np.ndarray:
    shape = _check_shape(shape)
    if math.prod(shape) * dtype.itemsize != len(raw):
        need = math.prod(shape) * dtype.itemsize
        raise ConversionError(
            f"numpy array data is {len(raw)} bytes, but shape {short_repr(shape)} of {dtype} needs "
            f"{short_repr(need)}"
        )
    budget.spend_bytes(len(raw), "numpy arrays")
    flat = np.frombuffer(raw, dtype=dtype)
    return np.array(np.reshape(flat, shape, order=order), copy=True)


# --------------------------------------------------------------------------------------------------------------
# The stand-in callables. Each validates its arguments and returns plain data. Those that create data take the
# load's Budget as ``_budget`` (bound by RestrictedUnpickler.find_class; a pickle cannot pass keywords to them).

_SCALAR_KEYS = (str, bytes, int, float, bool, type(None))
_PERSISTENT_META = ("type", "version", "module_src", "class_name", "state")


def _reconstruct_persistent_obj(meta: Any = None, *extra: Any, _budget: Budget) -> PersistentObject:
    _budget.check_time()
    if extra or not isinstance(meta, dict):
        raise ConversionError("malformed torch_utils.persistence object: expected one meta dict")
    missing = [k for k in _PERSISTENT_META if k not in meta]  # never set(meta): a shared meta may be huge
    if missing:
        raise ConversionError(f"malformed torch_utils.persistence object: meta lacks {missing}")
    if meta["type"] != "class":
        raise ConversionError(f"unsupported torch_utils.persistence object type {short_repr(meta['type'])}")
    version = meta["version"]
    if type(version) is not int or version != 6:
        raise ConversionError(f"unsupported torch_utils.persistence version {short_repr(version)} (expected 6)")
    class_name = meta["class_name"]
    if not isinstance(class_name, str) or len(class_name) > 200 or not class_name.isidentifier():
        raise ConversionError(f"malformed torch_utils.persistence class name {short_repr(class_name)}")
    state = meta["state"]
    if not isinstance(state, dict):
        raise ConversionError(f"torch_utils.persistence state of {class_name} must be a dict")
    src = meta["module_src"]
    # module_src is the text of the defining .py file. It is NEVER executed; we only note its size.
    return PersistentObject(class_name, state, int(version), len(src) if isinstance(src, str) else -1)


def _rebuild_tensor_v2(storage: Any = None, storage_offset: Any = None, size: Any = None, stride: Any = None,
                       requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None,
                       *extra: Any, _budget: Budget) -> np.ndarray:
    """A tensor over a storage: a VIEW of the storage when its strides are contiguous (so a storage referenced by
    many tensors is held once), else a copy; the same (storage, offset, size, stride) gives the same array."""
    if extra:
        raise ConversionError("torch._utils._rebuild_tensor_v2 called with too many arguments")
    if not isinstance(storage, _Storage):
        raise PickleSecurityError("torch._utils._rebuild_tensor_v2 needs a torch storage as first argument")
    data = storage.array
    n = data.shape[0]
    size = _check_shape(size)
    stride = _check_shape(stride)
    if len(size) != len(stride):
        raise ConversionError(f"tensor size {short_repr(size)} and stride {short_repr(stride)} differ in length")
    if not isinstance(storage_offset, int) or isinstance(storage_offset, bool) or storage_offset < 0:
        raise ConversionError(f"malformed tensor storage offset {short_repr(storage_offset)}")
    key = ("view", id(storage), storage_offset, size, stride)
    hit = _budget.memo.get(key)
    if hit is not None:
        return hit[1]
    numel = math.prod(size)
    if numel == 0:
        return np.zeros(size, dtype=data.dtype)
    last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
    # Bounds: every element must lie inside the storage, and a tensor may not be bigger than its storage
    # (NVIDIA's tensors are contiguous copies); this also rules out zero-stride memory bombs.
    if last >= n or numel > n:
        raise ConversionError(
            f"tensor of size {short_repr(size)}, stride {short_repr(stride)}, offset {short_repr(storage_offset)} "
            f"does not fit its storage of {n} elements"
        )
    _budget.spend_bytes(numel * data.itemsize, "its tensors")
    view = np.lib.stride_tricks.as_strided(
        data[storage_offset:], shape=size, strides=tuple(st * data.itemsize for st in stride), writeable=False
    )
    if view.flags.c_contiguous:
        out = data[storage_offset:storage_offset + numel].reshape(size)  # a writeable view, no copy
    else:
        out = np.array(view, copy=True, order="C")
    _budget.memo[key] = (storage, out)
    return out


def _rebuild_parameter(data: Any = None, requires_grad: Any = False, backward_hooks: Any = None,
                       *extra: Any) -> np.ndarray:
    if len(extra) > 1:  # _rebuild_parameter_with_state has one more argument: the Parameter's __dict__
        raise ConversionError("torch._utils._rebuild_parameter called with too many arguments")
    if not isinstance(data, np.ndarray):
        raise PickleSecurityError("torch._utils._rebuild_parameter needs a tensor as first argument")
    return data


def _scalar_items(items: Any, what: str, budget: Budget) -> Any:
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ConversionError(f"{what} called with unexpected arguments")
    budget.spend_items(len(items), what)
    return items


def _ordered_dict(*args: Any, _budget: Budget) -> dict:
    if not args:
        return {}
    if len(args) == 1:
        out = {}
        for item in _scalar_items(args[0], "collections.OrderedDict", _budget):
            if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], _SCALAR_KEYS):
                raise ConversionError("malformed collections.OrderedDict items in pickle")
            out[item[0]] = item[1]
        return out
    raise ConversionError("collections.OrderedDict called with unexpected arguments")


def _set(*args: Any, _budget: Budget) -> set:
    if not args:
        return set()
    if len(args) == 1:
        items = _scalar_items(args[0], "builtins.set", _budget)
        if not all(isinstance(x, _SCALAR_KEYS) for x in items):
            raise ConversionError("builtins.set of anything but strings and numbers in pickle")
        return set(items)
    raise ConversionError("builtins.set called with unexpected arguments")


def _frozenset(*args: Any, _budget: Budget) -> frozenset:
    return frozenset(_set(*args, _budget=_budget))


def _codecs_encode(obj: Any = None, encoding: Any = None, *extra: Any, _budget: Budget) -> bytes:
    # How Python 3 writes ``bytes`` in protocol 0-2 pickles: _codecs.encode(text, 'latin1').
    if extra or not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise PickleSecurityError("refusing _codecs.encode with anything but (str, 'latin1')")
    _budget.spend_bytes(len(obj), "its byte strings")
    return obj.encode("latin-1")


def _np_scalar(dtype: Any = None, data: Any = None, *extra: Any) -> np.generic:
    if extra or not isinstance(dtype, _DType):
        raise PickleSecurityError("refusing a numpy scalar that is not of a plain numeric dtype")
    if isinstance(data, str):
        if len(data) != dtype.dtype.itemsize:
            raise ConversionError("malformed numpy scalar in pickle")
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.dtype.itemsize:
        raise ConversionError("malformed numpy scalar in pickle")
    return np.frombuffer(data, dtype=dtype.dtype)[0]


def _np_reconstruct(subtype: Any = None, shape: Any = None, typecode: Any = None, *extra: Any,
                    _budget: Budget) -> _ArrayBuilder:
    if extra or subtype is not _NDARRAY:
        raise PickleSecurityError("refusing numpy _reconstruct of anything but numpy.ndarray")
    return _ArrayBuilder(_budget)


def _np_frombuffer(buf: Any = None, dtype: Any = None, shape: Any = None, order: Any = "C",
                   *extra: Any, _budget: Budget) -> np.ndarray:
    # numpy's protocol-5 array pickling: numpy.core.numeric._frombuffer(buffer, dtype, shape, order)
    if extra or not isinstance(dtype, _DType) or not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        raise PickleSecurityError("refusing numpy _frombuffer with unexpected arguments")
    return _array_from_bytes(buf, dtype.dtype, shape, order, _budget)


def _np_dtype_class(*args: Any) -> _DType:
    return _DType(*args)


def _load_from_bytes(data: Any = None, *extra: Any, _budget: Budget) -> _Storage:
    """``torch.storage._load_from_bytes(b)``: ``b`` is a legacy (non-zip) ``torch.save`` stream of one storage.
    Decoded once per bytes object, however often the pickle refers to it."""
    if extra or not isinstance(data, (bytes, bytearray)):
        raise PickleSecurityError("torch.storage._load_from_bytes needs one bytes argument")
    key = ("storage", id(data))
    hit = _budget.memo.get(key)
    if hit is None:
        _budget.check_time()
        hit = _budget.memo[key] = (data, _Storage(_parse_legacy_storage(bytes(data), _budget)))
    return hit[1]


#: Stand-ins that count what they create against the load's Budget (find_class binds it).
_BUDGETED = {_reconstruct_persistent_obj, _rebuild_tensor_v2, _ordered_dict, _set, _frozenset, _codecs_encode,
             _np_reconstruct, _np_frombuffer, _load_from_bytes}

# (module, name) → stand-in. Both the numpy < 2 (``numpy.core``) and numpy ≥ 2 (``numpy._core``) spellings.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): _ordered_dict,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("numpy", "dtype"): _np_dtype_class,
    ("numpy", "ndarray"): _NDARRAY,
    ("builtins", "set"): _set,
    ("__builtin__", "set"): _set,
    ("builtins", "frozenset"): _frozenset,
    ("__builtin__", "frozenset"): _frozenset,
    ("_codecs", "encode"): _codecs_encode,
}
for _np_core in ("numpy.core", "numpy._core"):
    ALLOWED_GLOBALS[(f"{_np_core}.multiarray", "scalar")] = _np_scalar
    ALLOWED_GLOBALS[(f"{_np_core}.multiarray", "_reconstruct")] = _np_reconstruct
    ALLOWED_GLOBALS[(f"{_np_core}.numeric", "_frombuffer")] = _np_frombuffer

#: Inside a torch legacy storage stream, only the storage classes may be named (inside the persistent id).
STORAGE_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch", name): _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()
}


# --------------------------------------------------------------------------------------------------------------
# The unpickler.


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose :meth:`find_class` resolves only the allow-list, to stand-ins (those that
    create data bound to ``budget``)."""

    def __init__(self, file: Any, *, budget: Budget, allowed: dict[tuple[str, str], Any] | None = None,
                 where: str = "the pickle", persistent_load: Any = None, budgeted: Any = None,
                 refuse: Any = refuse_global):
        super().__init__(file)
        self._allowed = ALLOWED_GLOBALS if allowed is None else allowed
        self._where = where
        self._persistent = persistent_load
        self._budget = budget
        self._budgeted = _BUDGETED if budgeted is None else budgeted  # stand-ins that take ``_budget=``
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


def _load_one(stream: io.BytesIO, *, allowed: dict, where: str, budget: Budget, persistent_load: Any = None) -> Any:
    """One pickle from the stream: dry-run first (:func:`converters.pickle_scan.scan`), then unpickled for real."""
    start = stream.tell()
    scan(stream, budget=budget, allowed=allowed, persistent_ok=persistent_load is not None, where=where)
    stream.seek(start)
    try:
        return RestrictedUnpickler(stream, budget=budget, allowed=allowed, where=where,
                                   persistent_load=persistent_load).load()
    except ConverterError:
        raise
    except RecursionError:
        raise ConversionError(f"{where} is nested too deeply") from None
    except Exception as exc:
        raise malformed(exc, where) from None


def _parse_legacy_storage(data: bytes, budget: Budget) -> np.ndarray:
    """Decode a legacy (non-zip) ``torch.save`` stream of a single storage (PyTorch's ``torch/serialization.py``)."""
    where = "a torch storage stream"
    f = io.BytesIO(data)
    magic = _load_one(f, allowed={}, where=where, budget=budget)
    if type(magic) is not int or magic != _TORCH_MAGIC:
        raise ConversionError("torch storage stream has a bad magic number")
    proto = _load_one(f, allowed={}, where=where, budget=budget)
    if type(proto) is not int or proto != _TORCH_PROTOCOL:
        raise ConversionError(f"unsupported torch storage protocol {short_repr(proto)}")
    sys_info = _load_one(f, allowed={}, where=where, budget=budget)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ConversionError("torch storage stream is not little-endian (unsupported)")

    requests: list[tuple[str, np.dtype, int]] = []

    def persistent_load(pid: Any) -> Any:
        if (not isinstance(pid, tuple) or len(pid) != 6 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[4], int) or isinstance(pid[4], bool) or pid[4] < 0):
            raise PickleSecurityError(f"refusing persistent id {short_repr(pid)} in {where}")
        if pid[5] is not None:
            raise ConversionError("torch storage views are not supported")
        if pid[1].dtype is None:
            raise ConversionError(f"torch.{pid[1].name} tensors are not supported")
        requests.append((pid[2], pid[1].dtype, pid[4]))
        return pid[2]

    obj = _load_one(f, allowed=STORAGE_GLOBALS, where=where, budget=budget, persistent_load=persistent_load)
    if len(requests) != 1 or not isinstance(obj, str) or obj != requests[0][0]:
        raise ConversionError("torch storage stream must hold exactly one storage")
    key, dtype, numel = requests[0]
    keys = _load_one(f, allowed={}, where=where, budget=budget)
    if not isinstance(keys, list) or keys != [key]:
        raise ConversionError("torch storage stream has an inconsistent key list")
    pos = f.tell()
    if len(data) < pos + 8:
        raise ConversionError("torch storage stream is truncated")
    (count,) = struct.unpack_from("<q", data, pos)
    pos += 8
    if count != numel:
        raise ConversionError(f"torch storage holds {count} elements but its header says {short_repr(numel)}")
    nbytes = numel * dtype.itemsize
    if len(data) != pos + nbytes:
        raise ConversionError(
            f"torch storage stream has {len(data) - pos} data bytes, expected {nbytes} (truncated or corrupt)"
        )
    # One writeable copy per storage (decoded once per load, so at most the file's own size in all).
    return np.frombuffer(data, dtype=dtype, count=numel, offset=pos).copy()


# --------------------------------------------------------------------------------------------------------------
# Materialising: replace array placeholders with arrays, everywhere in the loaded graph (each object once).


def _materialize(obj: Any, memo: dict[int, Any], budget: Budget, depth: int = 0) -> Any:
    if depth > budget.limits.max_depth:
        raise budget.refuse(f"its objects nest more than {budget.limits.max_depth} deep")
    if isinstance(obj, (str, bytes, int, float, bool, type(None), np.ndarray, np.generic)):
        return obj
    key = id(obj)
    if key in memo:
        return memo[key]
    if not len(memo) & 4095:
        budget.check_time()
    if isinstance(obj, _ArrayBuilder):
        if obj.array is None:
            raise ConversionError("a numpy array in the pickle has no data")
        memo[key] = obj.array
        return obj.array
    if isinstance(obj, dict):
        memo[key] = obj
        for k in list(obj):
            obj[k] = _materialize(obj[k], memo, budget, depth + 1)
        return obj
    if isinstance(obj, list):
        memo[key] = obj
        for i, v in enumerate(obj):
            obj[i] = _materialize(v, memo, budget, depth + 1)
        return obj
    if isinstance(obj, tuple):
        out = tuple(_materialize(v, memo, budget, depth + 1) for v in obj)
        memo[key] = out
        return out
    if isinstance(obj, PersistentObject):
        memo[key] = obj
        obj.state = _materialize(obj.state, memo, budget, depth + 1)
        return obj
    if isinstance(obj, TFNetwork):
        memo[key] = obj
        if obj.state is None:
            raise ConversionError("a dnnlib.tflib.network.Network in the pickle has no state")
        obj.state = _materialize(obj.state, memo, budget, depth + 1)
        return obj
    if isinstance(obj, (set, frozenset, complex, bytearray, _NdarrayClass, _DType, _Storage)):
        return obj
    raise ConversionError(f"unexpected object of type {type(obj).__name__} in pickle")


def safe_loads(data: bytes, *, where: str = "the pickle", limits: Limits | None = None) -> Any:
    """Unpickle ``data`` with the restricted unpickler, within ``limits`` (default :class:`Limits`). Returns plain
    data: dicts/lists/tuples/scalars, numpy arrays (tensors become arrays; tensors over one storage share its
    memory), :class:`PersistentObject` and :class:`TFNetwork` records."""
    if not data:
        raise ConversionError(f"{where} is empty")
    if data[:4] == b"PK\x03\x04":
        raise ConversionError(
            f"{where} is a zip archive (a torch.save checkpoint or an .npz?), not an NVIDIA network pickle"
        )
    budget = Budget(limits or Limits(), len(data), where)
    stream = io.BytesIO(data)
    obj = _load_one(stream, allowed=ALLOWED_GLOBALS, where=where, budget=budget)
    try:
        return _materialize(obj, {}, budget)
    except RecursionError:
        raise ConversionError(f"{where} is nested too deeply") from None


def children(mod: PersistentObject) -> dict:
    """A persistent module's ``_modules`` (name -> child), checked to be a dict."""
    modules = mod.state.get("_modules", {})
    if not isinstance(modules, dict):
        raise ConversionError(f"{mod.class_name}._modules is a {type(modules).__name__}, not a dict")
    return modules


def child(mod: PersistentObject | None, name: str) -> PersistentObject | None:
    """The persistent child module ``name`` of ``mod`` (None if absent or not a module)."""
    if mod is None:
        return None
    found = children(mod).get(name)
    return found if isinstance(found, PersistentObject) else None
