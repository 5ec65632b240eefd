"""``torch.save`` checkpoints (e.g. a ``pytorch_model.bin`` state dict) read with NumPy alone: nothing executed.

Both serializations ``torch.save`` has written are read (facts from torch's ``serialization.py`` and
``caffe2/serialize/inline_container.cc``; the code here is independent):

* **legacy** (torch < 1.6, or ``_use_new_zipfile_serialization=False``): one stream of header pickles, the object's
  pickle, the storage keys and the storages' bytes, read by :func:`converters.torch_format.read_legacy` (the same
  code that reads the storages inside NVIDIA's network pickles).
* **zip** (torch ≥ 1.6): an uncompressed zip whose entries all lie in one top folder (``archive/`` when written to
  a buffer, the file's stem such as ``pytorch_model/`` when written to a path): ``data.pkl`` (the object's pickle,
  persistent ids ``('storage', torch.<T>Storage, key, location, numel)``), ``data/<key>`` (each storage's raw
  bytes), ``version`` or ``.data/version``, optionally ``byteorder`` (``little``/``big``; absent means little) and
  ``.data/serialization_id``.

Storages, tensors and the storage persistent ids are :mod:`converters.torch_format`'s. Every pickle goes through
:func:`converters.unpickler.load_one` with a small allow-list
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
keys are plain names (no ``/``, no ``..``), so a key cannot point outside the archive's ``data/`` folder; no two zip
entries share bytes, and every storage read counts against the load's byte budget, like every distinct tensor. Tensors
are read-only NumPy views of their storage: tensors that share a storage share memory, as in torch.

Entry point: :func:`load_torch_file` ``(data, where) -> object`` (a :class:`StateDict` for a state dict). Failures
raise :class:`~converters.errors.PickleSecurityError` (something off the allow-list) or
:class:`~converters.errors.ConversionError` (malformed or unsupported); no other exception type escapes.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import numpy as np

from .errors import ConversionError, PickleSecurityError
from .limits import Budget, Limits, short_repr
from .pickle_scan import refuse_global
from .safe_zip import check_spans
from .torch_format import (
    BUDGETED,
    STORAGE_GLOBALS,
    Storages,
    materialize,
    read_legacy,
    rebuild_parameter,
    rebuild_tensor_v2,
)
from .unpickler import load_one

__all__ = ["ALLOWED_GLOBALS", "StateDict", "load_torch_file"]


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


#: (module, name) → stand-in, for the object's pickle.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): StateDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    **STORAGE_GLOBALS,
}


# --------------------------------------------------------------------------------------------------------------
# Unpickling.


def _refuse(module: str, name: str, where: str) -> PickleSecurityError:
    return refuse_global(module, name, where, allowed="a torch checkpoint may only hold tensors and state dicts")


def _record(obj: Any, walk: Any) -> None:
    """For :func:`converters.torch_format.materialize`: a state dict's ``_metadata`` is walked too; then the dict."""
    if isinstance(obj, StateDict):
        obj.metadata = walk(obj.metadata)


# --------------------------------------------------------------------------------------------------------------
# The two containers.


def _load_legacy(data: bytes, where: str, budget: Budget) -> Any:
    obj, _ = read_legacy(data, where=where, budget=budget, allowed=ALLOWED_GLOBALS, refuse=_refuse)
    return materialize(obj, budget, _record)


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
        if name[len(prefix) :] in entries:  # zipfile would quietly read the last one
            raise ConversionError(f"{where}: zip entry {short_repr(name)} appears twice")
        if info.flag_bits & 0x1:
            raise ConversionError(f"{where}: zip entry {short_repr(name)} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise ConversionError(
                f"{where}: zip entry {short_repr(name)} is compressed; torch.save writes stored (uncompressed) entries"
            )
        entries[name[len(prefix) :]] = info
    check_spans(zf.fp, infos, where)  # members sharing bytes would each be read as a full copy

    def read(name: str) -> bytes:
        try:
            return zf.read(entries[name])
        except Exception as exc:  # CRC mismatch, damaged header, ...
            raise ConversionError(
                f"{where}: cannot read zip entry {prefix}{name} ({type(exc).__name__}: {exc})"
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
    storages = Storages(where, legacy=False)
    obj = load_one(
        io.BytesIO(read("data.pkl")),
        allowed=ALLOWED_GLOBALS,
        where=f"{where} ({prefix}data.pkl)",
        budget=budget,
        persistent_load=storages,
        budgeted=BUDGETED,
        refuse=_refuse,
    )
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
        # each storage is read as a copy: its bytes count, like the tensors', against what the file may create
        budget.spend_bytes(nbytes, "its storages")
        st.array = np.frombuffer(read(name), dtype=st.dtype.newbyteorder(order), count=st.numel)
    return materialize(obj, budget, _record)


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
