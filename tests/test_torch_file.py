"""The safe ``torch.save`` reader: both serializations, shared storages as views, byte order, and refusals."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections import OrderedDict

import biggan_checkpoints as bc
import numpy as np
import nvidia_pickles as nv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converters.errors import ConversionError, ConverterError, PickleSecurityError
from converters.limits import Limits
from converters.torch_file import ALLOWED_GLOBALS, StateDict, load_torch_file


def _state() -> OrderedDict:
    rng = np.random.default_rng(0)
    return OrderedDict(
        [
            ("a.weight", rng.normal(size=(3, 4)).astype(np.float32)),
            ("a.bias", rng.normal(size=(3,)).astype(np.float32)),
            ("b", rng.normal(size=(2, 2, 3, 3)).astype(np.float32)),
        ]
    )


def _save(kind: str, state: dict, **kw) -> bytes:
    return bc.torch_save_legacy(state, **kw) if kind == "legacy" else bc.torch_save_zip(state, **kw)


@pytest.mark.parametrize("kind", ["legacy", "zip"])
def test_roundtrip_values_order_and_metadata(kind: str) -> None:
    state = _state()
    meta = OrderedDict([("", {"version": 1}), ("a", {"version": 1, "spectral_norm": {"weight.version": 1}})])
    out = load_torch_file(_save(kind, state, metadata=meta), "t")
    assert isinstance(out, StateDict) and list(out) == list(state)
    assert out.metadata == meta
    for k, v in state.items():
        assert out[k].dtype == np.float32 and not out[k].flags.writeable
        np.testing.assert_array_equal(out[k], v)


@pytest.mark.parametrize("kind", ["legacy", "zip"])
def test_shared_storage_gives_views_not_copies(kind: str) -> None:
    """``b`` and ``c`` live in ``a``'s storage (at offsets 0 and 6): they come back as views of one buffer."""
    a = np.arange(12, dtype=np.float32)
    state = OrderedDict([("a", a), ("b", a[:6].reshape(2, 3)), ("c", a[6:])])
    out = load_torch_file(_save(kind, state, shared={"b": ("a", 0), "c": ("a", 6)}), "t")
    np.testing.assert_array_equal(out["b"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(out["c"], a[6:])
    assert np.shares_memory(out["a"], out["b"]) and np.shares_memory(out["a"], out["c"])


def test_legacy_storage_views() -> None:
    """torch < 0.4 wrote storage views: ``(view_key, offset, size)`` into a root storage, resolved as views."""

    class Pid:
        def __init__(self, pid):
            self.pid = pid

    root = ("storage", nv.FloatStorage, "7", "cpu", 6, None)
    view = Pid(("storage", nv.FloatStorage, "7", "cpu", 6, ("8", 2, 3)))
    tensor = nv.global_stub("torch._utils", "_rebuild_tensor_v2")
    buf = io.BytesIO()
    p = nv.NvPickler(buf, protocol=2)
    p.persistent_id = lambda o: o.pid if isinstance(o, Pid) else None
    p.dump(
        {
            "all": _Reduce(tensor, Pid(root), 0, (6,), (1,), False, OrderedDict()),
            "mid": _Reduce(tensor, view, 1, (2,), (1,), False, OrderedDict()),
        }
    )
    data = b"".join(pickle.dumps(x, protocol=2) for x in (bc.MAGIC, bc.PROTOCOL, {"little_endian": True}))
    data += buf.getvalue() + pickle.dumps(["7"], protocol=2)
    data += np.int64(6).tobytes() + np.arange(6, dtype="<f4").tobytes()
    out = load_torch_file(data, "t")
    np.testing.assert_array_equal(out["mid"], [3.0, 4.0])  # view starts at 2, tensor offset 1 inside it
    assert np.shares_memory(out["all"], out["mid"])


def test_zip_archive_folder_name_and_big_endian() -> None:
    state = _state()
    for data in (
        bc.torch_save_zip(state, archive="archive", byteorder="big"),
        bc.torch_save_legacy(state, little_endian=False),
        bc.torch_save_zip(state, byteorder=None),
    ):  # no byteorder record: little-endian (old torch)
        out = load_torch_file(data, "t")
        for k, v in state.items():
            np.testing.assert_array_equal(out[k], v)


def test_zip_entries_are_torchs() -> None:
    zf = zipfile.ZipFile(io.BytesIO(bc.torch_save_zip(_state())))
    names = [i.filename for i in zf.infolist()]
    assert names == [
        "pytorch_model/data.pkl",
        "pytorch_model/byteorder",
        "pytorch_model/data/0",
        "pytorch_model/data/1",
        "pytorch_model/data/2",
        "pytorch_model/version",
        "pytorch_model/.data/serialization_id",
    ]
    for info in zf.infolist():  # torch aligns every record's data to 64 bytes
        assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0


def _legacy_with(obj_pickle: bytes) -> bytes:
    head = b"".join(pickle.dumps(x, protocol=2) for x in (bc.MAGIC, bc.PROTOCOL, {"little_endian": True}))
    return head + obj_pickle + pickle.dumps([], protocol=2)


def _with_pickle(obj: object) -> bytes:
    return _legacy_with(nv.dumps(obj, protocol=2))


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _Build:
    def __init__(self, cls, args, state):
        self.cls, self.args, self.state = cls, args, state

    def __reduce__(self):
        return self.cls, self.args, self.state


@pytest.mark.parametrize(
    "case, err, match",
    [
        ("storage class called", PickleSecurityError, "needs a storage"),
        ("OrderedDict with foreign state", PickleSecurityError, "only carries '_metadata'"),
        ("OrderedDict with arguments", ConversionError, "called with arguments"),
        ("whole module", ConversionError, "state_dict"),
        ("tensor larger than its storage", ConversionError, "does not fit its storage"),
        ("zero-stride bomb", ConversionError, "does not fit its storage"),
        ("bfloat16", ConversionError, "BFloat16Storage"),
        ("INST opcode", PickleSecurityError, "INST"),
        ("numpy array (not in a torch state dict)", PickleSecurityError, "numpy"),
    ],
)
def test_refusals(case: str, err: type, match: str) -> None:
    stub = nv.global_stub
    tensor = stub("torch._utils", "_rebuild_tensor_v2")

    class Pid:
        def __init__(self, pid):
            self.pid = pid

    def with_pids(obj: object) -> bytes:
        buf = io.BytesIO()
        p = nv.NvPickler(buf, protocol=2)
        p.persistent_id = lambda o: o.pid if isinstance(o, Pid) else None
        p.dump(obj)
        return _legacy_with(buf.getvalue())

    storage = Pid(("storage", nv.FloatStorage, "1", "cpu", 4, None))
    data = {
        "storage class called": lambda: _with_pickle(_Reduce(tensor, nv.FloatStorage, 0, (2,), (1,))),
        "OrderedDict with foreign state": lambda: _with_pickle(_Build(OrderedDict, (), {"__class__": 1})),
        "OrderedDict with arguments": lambda: _with_pickle(_Reduce(OrderedDict, [("a", 1)])),
        "whole module": lambda: with_pids({"m": Pid(("module", nv.FloatStorage, "src.py", "code"))}),
        "tensor larger than its storage": lambda: with_pids(
            {"w": _Reduce(tensor, storage, 2, (3,), (1,), False, OrderedDict())}
        ),
        "zero-stride bomb": lambda: with_pids(
            {"w": _Reduce(tensor, storage, 0, (1 << 40,), (0,), False, OrderedDict())}
        ),
        "bfloat16": lambda: with_pids(
            {"w": Pid(("storage", nv._named_class("torch", "BFloat16Storage"), "1", "cpu", 4, None))}
        ),
        "INST opcode": lambda: _legacy_with(b"(S'ls'\nios\nsystem\n."),
        "numpy array (not in a torch state dict)": lambda: _with_pickle({"x": np.zeros(3)}),
    }[case]()
    with pytest.raises(err, match=match):
        load_torch_file(data, "t")


def test_not_a_checkpoint() -> None:
    with pytest.raises(ConversionError, match="empty"):
        load_torch_file(b"", "t")
    with pytest.raises(ConversionError, match="not a torch checkpoint"):
        load_torch_file(b"hello world", "t")
    with pytest.raises(ConversionError, match="magic"):
        load_torch_file(pickle.dumps(123, protocol=2), "t")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        info = tarfile.TarInfo("sys_info")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ConversionError, match="tar-format"):
        load_torch_file(raw.getvalue(), "t")
    good = bc.torch_save_legacy(_state())
    with pytest.raises(ConversionError, match="unexpected bytes"):
        load_torch_file(good + b"\0", "t")
    zf = zipfile.ZipFile(io.BytesIO(bc.torch_save_zip(_state())))
    records = [(i.filename, zf.read(i)) for i in zf.infolist() if not i.filename.endswith("data/1")]
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as out:
        for name, data in records:
            out.writestr(name, data)
    with pytest.raises(ConversionError, match="no entry pytorch_model/data/1"):
        load_torch_file(raw.getvalue(), "t")


def test_allow_list_is_small() -> None:
    names = {f"{m}.{n}" for m, n in ALLOWED_GLOBALS}
    assert {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"} <= names
    assert len(names) <= 16
    assert not any(bad in name for name in names for bad in ("os.", "sys", "eval", "exec", "builtins", "import"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_checkpoints_fail_cleanly(data) -> None:
    """Random damage to a real checkpoint: either it still loads, or it is refused with a converter error."""
    kind = data.draw(st.sampled_from(["legacy", "zip"]))
    good = bytearray(_save(kind, _state()))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(good) - 1))
        good[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(good)))
    try:
        load_torch_file(bytes(good[:cut]), "t")
    except ConverterError:
        pass


# ----------------------------------------------------------------------------------------------------------------
# Resource bombs (issue 18), each read in a child process under an address-space limit and a timeout.


def _bounded_load(tmp_path, data: bytes) -> dict:
    import hostile

    path = tmp_path / "ckpt.bin"
    path.write_bytes(data)
    report = hostile.run_bounded("hostile:load_torch", str(path), memory_mb=1024, timeout=60)
    assert report["error"] not in ("Timeout", "Crashed", "MemoryError"), report
    # refusals take milliseconds (10 s: generous, for a loaded machine); a bomb read through would hit the time-out
    assert report["seconds"] < 10 and report["maxrss_mb"] < 600, report
    return report


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["legacy", "zip"])
@pytest.mark.parametrize("n,elems", [(2000, 1 << 20), (6000, 1 << 17)])
def test_thousands_of_views_of_one_storage_are_refused(tmp_path, kind: str, n: int, elems: int) -> None:
    """A few MB that would become GBs as soon as anything copies each tensor: the budget refuses it."""
    big = np.arange(elems, dtype=np.float32)
    state = OrderedDict([("a", big)] + [(f"t{i}", big[i:]) for i in range(1, n)])
    data = _save(kind, state, shared={f"t{i}": ("a", i) for i in range(1, n)})
    assert len(data) < 4 * elems + 200 * n
    report = _bounded_load(tmp_path, data)
    assert report["error"] == "ConversionError" and "share one stored buffer" in report["message"], report


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["legacy", "zip"])
def test_one_tensor_described_thousands_of_times_is_one_view(tmp_path, kind: str) -> None:
    big = np.arange(1 << 20, dtype=np.float32)
    n = 5000
    state = OrderedDict([("a", big)] + [(f"t{i}", big) for i in range(1, n)])
    report = _bounded_load(tmp_path, _save(kind, state, shared={f"t{i}": ("a", 0) for i in range(1, n)}))
    assert report["error"] is None and report["value"] == {"keys": n, "buffers": 1}, report


@pytest.mark.parametrize("kind", ["legacy", "zip"])
@pytest.mark.parametrize("depth", [25, 64])
def test_shared_reference_metadata_is_refused(tmp_path, kind: str, depth: int) -> None:
    import hostile

    meta = OrderedDict([("", hostile.shared_chain("dict", depth))])
    report = _bounded_load(tmp_path, _save(kind, _state(), metadata=meta))
    assert report["error"] == "ConversionError" and "walked as a tree" in report["message"], report


# ----------------------------------------------------------------------------------------------------------------
# Budgets that count what is allocated (issue 29).

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")


def _raw_zip(members: list[tuple[str, int, int, int]], body: bytes) -> bytes:
    """``body`` followed by a central directory listing ``(name, header offset, data start, size)`` as stored
    members (whatever their data overlaps); ``body`` must hold each member's local header."""
    cd = b""
    for name, offset, start, size in members:
        crc = zlib.crc32(body[start : start + size])
        cd += (
            _CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0, 0, 0, 0, 0, offset)
            + name.encode()
        )
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(cd), len(body), 0)
    return body + cd + eocd


def overlapping_storages_zip(n: int, block: int) -> bytes:
    """T1: a stored torch zip of ``n`` byte storages whose members overlap: each one's data runs from just after its
    own local header over the next members' headers and one shared ``block``-byte block at the end, so ``n``
    storages of about ``block`` bytes each live in a file of about ``block`` bytes. Each holds a one-element
    tensor, so the tensors themselves cost nothing."""

    class Pid:
        def __init__(self, pid):
            self.pid = pid

    tensor = nv.global_stub("torch._utils", "_rebuild_tensor_v2")
    byte_storage = nv._named_class("torch", "ByteStorage")
    names = [f"archive/data/{i}" for i in range(n)]
    # the headers first (to know where each member's data starts), then the pickle that names their sizes
    fixed = [("archive/version", b"3\n")]
    head_len = sum(_LOCAL.size + len(name) for name in names)

    def body_for(pkl: bytes) -> tuple[bytes, list]:
        out, members = b"", []
        for name, data in [("archive/data.pkl", pkl)] + fixed:
            members.append((name, len(out), len(out) + _LOCAL.size + len(name), len(data)))
            out += (
                _LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data), len(data), len(name), 0)
                + name.encode()
                + data
            )
        end = len(out) + head_len + block
        for name in names:
            start = len(out) + _LOCAL.size + len(name)
            members.append((name, len(out), start, end - start))
            out += _LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, end - start, end - start, len(name), 0)
            out += name.encode()
        return out + bytes(range(256)) * (block // 256), members

    def pickle_for(sizes: list[int]) -> bytes:
        buf = io.BytesIO()
        p = nv.NvPickler(buf, protocol=2)
        p.persistent_id = lambda o: o.pid if isinstance(o, Pid) else None
        p.dump(
            {
                f"t{i}": _Reduce(
                    tensor, Pid(("storage", byte_storage, str(i), "cpu", size)), 0, (1,), (1,), False, OrderedDict()
                )
                for i, size in enumerate(sizes)
            }
        )
        return buf.getvalue()

    pkl = pickle_for([0] * n)
    for _ in range(4):  # the pickle's length moves the members, and their sizes are in the pickle: iterate
        body, members = body_for(pkl)
        new = pickle_for([m[3] for m in members[2:]])
        if len(new) == len(pkl):
            pkl = new
            break
        pkl = new
    body, members = body_for(pkl)
    # the local headers' CRCs of the overlapping members are not checked by zipfile (only the central ones)
    return _raw_zip(members, body)


def test_overlapping_members_sharing_one_block_are_refused() -> None:
    """T1: 40 storages of ~4 MB each in a ~4 MB file (each member covers the next headers and one shared block): the
    old reader copied every storage (160 MB) because it counted only the one-element tensors."""
    data = overlapping_storages_zip(40, 4 << 20)
    assert len(data) < (4 << 20) + 10_000
    sizes = [i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist()[2:]]
    assert len(sizes) == 40 and min(sizes) >= 4 << 20  # it IS 160 MB of storages, as the central directory says
    with pytest.raises(ConversionError, match="overlap"):
        load_torch_file(data, "t")


def test_storages_count_against_the_byte_budget() -> None:
    """A zip storage is read as a copy: its bytes count as well as its tensors' (1 MB of tensors + 1 MB of storage
    here; the old reader counted only the tensors, and this budget allows 1.5 MB)."""
    big = np.arange(1 << 18, dtype=np.float32)
    data = bc.torch_save_zip(OrderedDict([("a", big), ("b", big[:1])]), shared={"b": ("a", 0)})
    with pytest.raises(ConversionError, match="its storages"):
        load_torch_file(data, "t", limits=Limits(bytes_per_input_byte=1.5, bytes_slack=0))
    out = load_torch_file(data, "t")  # the default budget has room for both
    np.testing.assert_array_equal(out["a"], big)


def test_duplicate_zip_entry_names_are_refused() -> None:
    """zipfile reads the LAST of two entries with one name; the reader used to check the name with its folder
    against names without it, so the check never matched."""
    zf = zipfile.ZipFile(io.BytesIO(bc.torch_save_zip(_state())))
    raw = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is told to write
        with zipfile.ZipFile(raw, "w") as out:
            for info in zf.infolist():
                out.writestr(info.filename, zf.read(info))
            out.writestr("pytorch_model/data/0", np.full(12, 7, "<f4").tobytes())
    with pytest.raises(ConversionError, match="appears twice"):
        load_torch_file(raw.getvalue(), "t")
