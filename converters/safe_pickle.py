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
per-load :class:`~converters.limits.Budget`. Torch storages and tensors are read by :mod:`converters.torch_format`
(the same code as whole ``torch.save`` checkpoints): a storage referenced many times is decoded once and its tensors
are read-only views of it (shared, not copied).

Entry point: :func:`safe_loads`. Failures raise :class:`~converters.errors.PickleSecurityError` (the pickle asked for
something outside the allow-list) or :class:`~converters.errors.ConversionError` (malformed data); no other exception
type escapes.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np

from .errors import ConversionError, PickleSecurityError
from .limits import Budget, Limits, short_repr
from .torch_format import (
    BUDGETED,
    STORAGE_GLOBALS,
    Storage,
    materialize,
    read_legacy,
    rebuild_parameter,
    rebuild_tensor_v2,
)
from .unpickler import load_one

__all__ = [
    "ALLOWED_GLOBALS",
    "Limits",
    "PersistentObject",
    "TFNetwork",
    "module_tensors",
    "safe_loads",
    "short_repr",
]


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
            raise PickleSecurityError(
                "refusing dnnlib.util.EasyDict called with arguments: NVIDIA's pickles never do this"
            )
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if state:
            raise PickleSecurityError("refusing to apply pickle state (BUILD) to dnnlib.util.EasyDict")


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
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) > _MAX_NDIM
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise ConversionError(f"malformed array shape {short_repr(shape)} in pickle")
    return tuple(shape)


def _array_from_bytes(raw: bytes | bytearray, dtype: np.dtype, shape: Any, order: str, budget: Budget) -> np.ndarray:
    shape = _check_shape(shape)
    if math.prod(shape) * dtype.itemsize != len(raw):
        need = math.prod(shape) * dtype.itemsize
        raise ConversionError(
            f"numpy array data is {len(raw)} bytes, but shape {short_repr(shape)} of {dtype} needs {short_repr(need)}"
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


def _np_reconstruct(
    subtype: Any = None, shape: Any = None, typecode: Any = None, *extra: Any, _budget: Budget
) -> _ArrayBuilder:
    if extra or subtype is not _NDARRAY:
        raise PickleSecurityError("refusing numpy _reconstruct of anything but numpy.ndarray")
    return _ArrayBuilder(_budget)


def _np_frombuffer(
    buf: Any = None, dtype: Any = None, shape: Any = None, order: Any = "C", *extra: Any, _budget: Budget
) -> np.ndarray:
    # numpy's protocol-5 array pickling: numpy.core.numeric._frombuffer(buffer, dtype, shape, order)
    if extra or not isinstance(dtype, _DType) or not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        raise PickleSecurityError("refusing numpy _frombuffer with unexpected arguments")
    return _array_from_bytes(buf, dtype.dtype, shape, order, _budget)


def _np_dtype_class(*args: Any) -> _DType:
    return _DType(*args)


def _load_from_bytes(data: Any = None, *extra: Any, _budget: Budget) -> Storage:
    """``torch.storage._load_from_bytes(b)``: ``b`` is a legacy (non-zip) ``torch.save`` stream of one storage
    (:func:`converters.torch_format.read_legacy`). Decoded once per bytes object, however often the pickle refers to
    it; the storage's array is a read-only view of those bytes."""
    if extra or not isinstance(data, (bytes, bytearray)):
        raise PickleSecurityError("torch.storage._load_from_bytes needs one bytes argument")
    key = ("storage", id(data))
    hit = _budget.memo.get(key)
    if hit is None:
        _budget.check_time()
        where = f"a torch storage stream in {_budget.where}"
        storage, storages = read_legacy(bytes(data), where=where, budget=_budget, allowed=STORAGE_GLOBALS)
        if not isinstance(storage, Storage) or len(storages.by_key) != 1:
            raise ConversionError(f"{where} must hold exactly one storage")
        hit = _budget.memo[key] = (data, storage)
    return hit[1]


#: Stand-ins that count what they create against the load's Budget (find_class binds it).
_BUDGETED = {
    _reconstruct_persistent_obj,
    _ordered_dict,
    _set,
    _frozenset,
    _codecs_encode,
    _np_reconstruct,
    _np_frombuffer,
    _load_from_bytes,
    *BUDGETED,
}

# (module, name) → stand-in. Both the numpy < 2 (``numpy.core``) and numpy ≥ 2 (``numpy._core``) spellings.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
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


# --------------------------------------------------------------------------------------------------------------
# Materialising: tensors become views, array placeholders arrays, everywhere in the loaded graph (each object once).


def _record(obj: Any, walk: Any) -> Any:
    """This reader's own objects, for :func:`converters.torch_format.materialize` (None: a plain container)."""
    if isinstance(obj, _ArrayBuilder):
        if obj.array is None:
            raise ConversionError("a numpy array in the pickle has no data")
        return obj.array
    if isinstance(obj, TFNetwork) and obj.state is None:
        raise ConversionError("a dnnlib.tflib.network.Network in the pickle has no state")
    if isinstance(obj, (PersistentObject, TFNetwork)):
        obj.state = walk(obj.state)
        return obj
    if isinstance(obj, (bytearray, _NdarrayClass, _DType, Storage)):
        return obj
    return None


def safe_loads(data: bytes, *, where: str = "the pickle", limits: Limits | None = None) -> Any:
    """Unpickle ``data`` with the restricted unpickler, within ``limits`` (default :class:`Limits`). Returns plain
    data: dicts/lists/tuples/scalars, numpy arrays (tensors become read-only arrays; tensors over one storage share
    its memory), :class:`PersistentObject` and :class:`TFNetwork` records."""
    if not data:
        raise ConversionError(f"{where} is empty")
    if data[:4] == b"PK\x03\x04":
        raise ConversionError(
            f"{where} is a zip archive (a torch.save checkpoint or an .npz?), not an NVIDIA network pickle"
        )
    budget = Budget(limits or Limits(), len(data), where)
    obj = load_one(io.BytesIO(data), allowed=ALLOWED_GLOBALS, where=where, budget=budget, budgeted=_BUDGETED)
    return materialize(obj, budget, _record)


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


def module_tensors(mod: PersistentObject) -> dict[str, np.ndarray]:
    """Flatten a module tree the way torch's ``state_dict()`` does (own parameters, own persistent buffers, then
    children). Each module is visited once: a module reached twice (a shared submodule, which NVIDIA's networks
    never have and which would make a naive walk exponential) is refused. Float tensors come out as float32; a
    tensor object that appears under several names stays ONE array (shared, not copied)."""
    out: dict[str, np.ndarray] = {}
    seen: dict[int, str] = {}
    as_f32: dict[int, np.ndarray] = {}

    def tensor(value: np.ndarray) -> np.ndarray:
        if value.dtype.kind != "f":
            return value  # refused with its name by the shape/dtype checks
        got = as_f32.get(id(value))
        if got is None:
            got = as_f32[id(value)] = np.asarray(value, dtype=np.float32, order="C")
        return got

    def walk(mod: PersistentObject, prefix: str, depth: int) -> None:
        where = short_repr(prefix.rstrip(".") or mod.class_name, 100)
        if id(mod) in seen:
            raise ConversionError(
                f"module {where} is the same object as module {seen[id(mod)]}: NVIDIA "
                "networks never share submodules, so this file is refused"
            )
        seen[id(mod)] = where
        if depth > 32:
            raise ConversionError("network module tree is nested too deeply")
        st = mod.state
        params, buffers = st.get("_parameters", {}), st.get("_buffers", {})
        skip = st.get("_non_persistent_buffers_set") or set()
        if not isinstance(params, dict) or not isinstance(buffers, dict) or not isinstance(skip, (set, frozenset)):
            raise ConversionError(f"module {where} has a malformed torch state")
        for kind, table in (("parameter", params), ("buffer", buffers)):
            for name, value in table.items():
                if value is None or (kind == "buffer" and name in skip):
                    continue
                if not isinstance(name, str) or not isinstance(value, np.ndarray):
                    raise ConversionError(
                        f"{kind} {short_repr(prefix, 60)}{short_repr(name, 60)} is a "
                        f"{type(value).__name__}, not a tensor"
                    )
                out[prefix + name] = tensor(value)
        for name, sub in children(mod).items():
            if sub is None:
                continue
            if not isinstance(name, str) or not isinstance(sub, PersistentObject):
                raise ConversionError(
                    f"submodule {short_repr(prefix, 60)}{short_repr(name, 60)} is a {type(sub).__name__}, not an "
                    "NVIDIA persistent "
                    "module"
                )
            walk(sub, f"{prefix}{name}.", depth + 1)

    walk(mod, "", 0)
    return out
