"""torch's legacy serialization, read once for both readers: the storages inside NVIDIA's network pickles
(``torch.storage._load_from_bytes``) and whole ``torch.save`` checkpoints go through the same code."""

from __future__ import annotations

import io
import struct
from collections import OrderedDict

import biggan_checkpoints as bc
import hostile
import numpy as np
import nvidia_pickles as nv
import pytest

from converters import safe_pickle, torch_file, torch_format
from converters.errors import ConversionError, PickleSecurityError
from converters.limits import Budget, Limits
from converters.safe_pickle import safe_loads
from converters.torch_file import load_torch_file


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _Mark:
    def __init__(self, key: object):
        self.key = key


def _stream(
    array: np.ndarray,
    *,
    little_endian: bool = True,
    key: object = "94000000000000",
    count: int | None = None,
    pids: int = 1,
    tail: bytes = b"",
) -> bytes:
    """A legacy ``torch.save`` stream of one float32 storage (the format nv.legacy_storage_bytes writes), with
    its parts open to damage: the key, the element count in the data record, how many storages the object pickle
    names (``pids`` distinct keys), bytes after the end."""
    flat = np.ascontiguousarray(array, dtype="<f4" if little_endian else ">f4").reshape(-1)
    buf = io.BytesIO()
    for obj in (nv.TORCH_MAGIC, nv.TORCH_PROTOCOL, {"little_endian": little_endian}):
        nv.NvPickler(buf, protocol=2).dump(obj)
    keys = [key] + [str(i) for i in range(1, pids)]
    marks = [_Mark(k) for k in keys]
    p = nv.NvPickler(buf, protocol=2)
    p.persistent_id = lambda o: (
        ("storage", nv.FloatStorage, o.key, "cpu", flat.size, None) if isinstance(o, _Mark) else None
    )
    p.dump(marks[0] if pids == 1 else tuple(marks))
    nv.NvPickler(buf, protocol=2).dump(keys)
    for _ in keys:
        buf.write(struct.pack("<q", flat.size if count is None else count))
        buf.write(flat.tobytes())
    return buf.getvalue() + tail


def _network_pickle(stream: bytes, hooks: object = None) -> bytes:
    """``{'w': tensor (2, 3) over torch.storage._load_from_bytes(stream)}`` as NVIDIA's pickles write it."""
    storage = _Reduce(nv.LOAD_FROM_BYTES, stream)
    return nv.dumps(
        {
            "w": _Reduce(
                nv.REBUILD_TENSOR_V2, storage, 0, (2, 3), (3, 1), False, OrderedDict() if hooks is None else hooks
            )
        },
        protocol=2,
    )


def test_both_readers_share_one_implementation() -> None:
    """The tensor and storage stand-ins of the two allow-lists are the same objects (one dtype table, one check)."""
    for name in ("_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"):
        assert safe_pickle.ALLOWED_GLOBALS[("torch._utils", name)] is torch_file.ALLOWED_GLOBALS[("torch._utils", name)]
    for key, standin in torch_format.STORAGE_GLOBALS.items():
        assert torch_file.ALLOWED_GLOBALS[key] is standin
        assert standin.dtype == torch_format.STORAGE_DTYPES[key[1]]


@pytest.mark.parametrize("little_endian", [True, False])
def test_storage_stream_reads_like_a_checkpoint(little_endian: bool) -> None:
    """The same stream read as one storage (inside a network pickle) and as a checkpoint holding that storage."""
    a = np.arange(6, dtype=np.float32) - 2.5
    stream = _stream(a, little_endian=little_endian)
    budget = Budget(Limits(), len(stream), "s")
    storage, storages = torch_format.read_legacy(stream, where="s", budget=budget, allowed=torch_format.STORAGE_GLOBALS)
    assert isinstance(storage, torch_format.Storage) and list(storages.by_key) == ["94000000000000"]
    np.testing.assert_array_equal(storage.array, a)
    assert not storage.array.flags.writeable
    out = safe_loads(_network_pickle(stream), where="'n.pkl'")
    np.testing.assert_array_equal(out["w"], a.reshape(2, 3))


def test_tensors_over_one_storage_share_it_read_only() -> None:
    """Network pickles: tensors over one storage are views of it (not copies), as torch checkpoints' are."""
    storage = nv.Storage(np.arange(12, dtype=np.float32))
    out = safe_loads(
        nv.dumps(
            {
                "a": hostile.ViewTensor(storage, 0, (12,)),
                "b": hostile.ViewTensor(storage, 6, (2, 3)),
                "c": hostile.ViewTensor(storage, 0, (12,)),
            }
        )
    )
    np.testing.assert_array_equal(out["b"], [[6, 7, 8], [9, 10, 11]])
    assert np.shares_memory(out["a"], out["b"]) and out["a"] is out["c"]
    assert not out["a"].flags.writeable and not out["b"].flags.writeable
    ckpt = load_torch_file(bc.torch_save_legacy(OrderedDict(a=np.arange(12, dtype=np.float32))), "t")
    assert not ckpt["a"].flags.writeable


@pytest.mark.parametrize(
    "case, err, match",
    [
        ("key outside the plain names", PickleSecurityError, "plain name"),
        ("two storages", ConversionError, "exactly one storage"),
        ("count differs from the header", ConversionError, "header says"),
        ("bytes after the last storage", ConversionError, "unexpected bytes"),
        ("backward hooks", PickleSecurityError, "backward hooks"),
        ("bad magic", ConversionError, "magic"),
    ],
)
def test_storage_stream_refusals_name_the_file(case: str, err: type, match: str) -> None:
    a = np.arange(6, dtype=np.float32)
    stream = {
        "key outside the plain names": lambda: _stream(a, key="../etc"),
        "two storages": lambda: _stream(a, pids=2),
        "count differs from the header": lambda: _stream(a, count=7),
        "bytes after the last storage": lambda: _stream(a, tail=b"\0"),
        "backward hooks": lambda: _stream(a),
        "bad magic": lambda: nv.dumps(123, protocol=2) + _stream(a)[len(nv.dumps(nv.TORCH_MAGIC, protocol=2)) :],
    }[case]()
    data = _network_pickle(stream, hooks={"h": 1} if case == "backward hooks" else None)
    with pytest.raises(err, match=match) as info:
        safe_loads(data, where="'n.pkl'")
    assert "'n.pkl'" in str(info.value) or case == "backward hooks"
