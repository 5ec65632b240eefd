"""Hostile model files (resource bombs) and a runner that executes a loader on one in a bounded child process.

Builders return bytes; they never build the hostile structure itself in this process (a tuple chain used as a dict
key would hang the *test* while pickling it), so the key bombs are written opcode by opcode.

:func:`run_bounded` runs ``module:function(*args)`` in a fresh Python under ``RLIMIT_AS`` / ``RLIMIT_CPU`` and a
wall-clock timeout, and returns what happened as a dict (``error`` class names, ``message``, ``seconds``,
``maxrss_mb``), so a regression in the loaders' limits fails a test instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import nvidia_pickles as nv

TESTS = Path(__file__).resolve().parent

_CHILD = r"""
import json, resource, sys, time
mem, cpu = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.path.insert(0, sys.argv[3])
import importlib
mod, fn = sys.argv[4].split(":")
target = getattr(importlib.import_module(mod), fn)
args = json.loads(sys.argv[5])
t = time.monotonic()
try:
    out = {"error": None, "mro": [], "message": "", "value": target(*args)}
except BaseException as e:
    out = {"error": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)[:4000]}
out["seconds"] = time.monotonic() - t
try:  # this process's own peak (ru_maxrss would include the forking parent's size on Linux)
    out["maxrss_mb"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError, ValueError):
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def run_bounded(target: str, *args: Any, memory_mb: int = 1024, timeout: float = 60.0) -> dict:
    """``target`` (``'module:function'``, importable from tests/) called with JSON-able ``args`` in a child process
    limited to ``memory_mb`` of address space and ``timeout`` seconds (wall and CPU). Returns the child's report;
    ``{'error': 'Timeout'}`` / ``{'error': 'Crashed'}`` when it had to be killed or died."""
    cmd = [
        sys.executable,
        "-c",
        _CHILD,
        str(memory_mb << 20),
        str(int(timeout) + 1),
        str(TESTS),
        target,
        json.dumps(list(args)),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": "Timeout", "mro": [], "message": f"killed after {timeout} s", "seconds": timeout}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": "Crashed", "mro": [], "message": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}


# --------------------------------------------------------------------------------------------------------------
# Targets (run in the child; they import converters only, no JAX).


def parse_file(path: str) -> None:
    from converters.parse import parse_file as parse

    parse(path)


def parse_many(paths: list[str]) -> list[dict]:
    """Each file through the converter, in turn: ``{'error', 'message', 'seconds'}`` per file."""
    import time

    from converters.parse import parse_file as parse

    out = []
    for path in paths:
        t = time.monotonic()
        try:
            parse(path)
            err, msg = None, ""
        except Exception as e:
            err, msg = type(e).__name__, str(e)
        out.append({"error": err, "message": msg, "seconds": time.monotonic() - t})
    return out


def load_torch(path: str) -> dict:
    """A torch.save checkpoint through the safe reader: its key count and how many distinct buffers back them."""
    from converters.torch_file import load_torch_file

    out = load_torch_file(Path(path).read_bytes(), "'ckpt.bin'")
    bases = {id(v.base if v.base is not None else v) for v in out.values()}
    return {"keys": len(out), "buffers": len(bases)}


def describe(depth: int) -> str:
    """short_repr of a shared chain of ``depth`` levels (a repr would never finish)."""
    from converters.limits import short_repr

    return short_repr(shared_chain("list", depth))


def check_npz(path: str) -> None:
    from converters.safe_zip import check_npz as check

    check(path)


def load_converted(path: str) -> None:
    from lsd_jax.store.weights import load

    load(path)


def flatten_modules(path: str) -> None:
    """Load with the safe unpickler, then flatten G_ema's module tree (the walk a shared tree makes exponential)."""
    from converters.safe_pickle import module_tensors, safe_loads

    module_tensors(safe_loads(Path(path).read_bytes())["G_ema"])


# --------------------------------------------------------------------------------------------------------------
# Builders: structures exponentially large when walked (shared references).


def shared_chain(kind: str, depth: int) -> Any:
    """``depth`` levels, each holding the previous level twice: ``depth`` objects, 2**depth paths."""
    x: Any = "leaf"
    for i in range(depth):
        k = kind if kind != "mixed" else ("list", "dict", "tuple")[i % 3]
        x = {"list": lambda y: [y, y], "tuple": lambda y: (y, y), "dict": lambda y: {"a": y, "b": y}}[k](x)
    return x


def tuple_chain_ops(depth: int, memo_base: int = 0) -> bytes:
    """Opcodes (no PROTO/STOP) that push a chain of ``depth`` tuples each holding the previous one twice, written
    by hand so the test never hashes it. Uses memo slots ``memo_base .. memo_base + depth``."""

    def put(i: int) -> bytes:
        return b"r" + struct.pack("<I", i)  # LONG_BINPUT

    def get(i: int) -> bytes:
        return b"j" + struct.pack("<I", i)  # LONG_BINGET

    out = b"K\x00" + put(memo_base) + b"0"  # BININT1 0, PUT, POP
    for i in range(1, depth + 1):
        out += get(memo_base + i - 1) + get(memo_base + i - 1) + b"\x86" + put(memo_base + i) + b"0"  # TUPLE2
    return out + get(memo_base + depth)


def key_bomb(kind: str, depth: int) -> bytes:
    """A pickle that hashes a ``depth``-level shared tuple chain: as a dict key, a set element or a frozenset
    element (hashing a tuple walks it in full every time: 2**depth steps)."""
    chain = tuple_chain_ops(depth)
    if kind == "dict-key":
        body = b"}" + chain + b"K\x01s"  # EMPTY_DICT, key, value, SETITEM
    elif kind == "set":
        body = b"\x8f(" + chain + b"\x90"  # EMPTY_SET, MARK, item, ADDITEMS
    elif kind == "frozenset":
        body = b"(" + chain + b"\x91"  # MARK, item, FROZENSET
    else:
        raise ValueError(kind)
    return b"\x80\x04" + body + b"."


def memo_bomb(index: int) -> bytes:
    """``LONG_BINPUT index``: the C unpickler's memo is an array, so this reserves ``8 * index`` bytes."""
    return b"\x80\x04K\x00r" + struct.pack("<I", index) + b"."


def claimed_size_bomb(kind: str, claimed: int) -> bytes:
    """A tiny pickle whose header claims ``claimed`` bytes of data it does not have."""
    if kind == "binbytes8":
        return b"\x80\x04\x8e" + struct.pack("<Q", claimed) + b"x" * 16 + b"."
    if kind == "binunicode8":
        return b"\x80\x04\x8d" + struct.pack("<Q", claimed) + b"x" * 16 + b"."
    if kind == "frame":
        return b"\x80\x04\x95" + struct.pack("<Q", claimed) + b"K\x00."
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------------------------
# Builders around a real (small) generator pickle.


def small_config() -> dict:
    from sg2_state import sg2_config

    return sg2_config(img_resolution=8, channel_base=64, channel_max=4, z_dim=4, w_dim=4, c_dim=0)


def small_generator(config: dict | None = None) -> tuple[dict, dict, nv.Persistent]:
    from sg2_state import random_sg2_state

    config = config or small_config()
    state = random_sg2_state(config, 0)
    return config, state, nv.generator(config, state)


def _children(mod: nv.Persistent) -> dict:
    return mod.state["_modules"]


def shared_module_tree(depth: int) -> bytes:
    """A valid small generator with one more child: a module tree whose children are shared (level i holds level
    i-1 as both 'a' and 'b'), so a naive walk visits 2**depth modules; the file stays tiny."""
    _, _, G = small_generator()
    node = nv.Persistent("Leaf", nv.module_state({"w": np.zeros(4, np.float32)}, {}, {}, {}))
    for _ in range(depth):
        node = nv.Persistent("Node", nv.module_state({}, {}, {"a": node, "b": node}, {}))
    _children(G)["extra"] = node
    return nv.dumps({"G_ema": G})


def generator_with_kwarg(value: Any, key: str = "z_dim") -> bytes:
    """A valid small generator whose ``_init_kwargs[key]`` is ``value`` (e.g. a shared-reference chain)."""
    _, _, G = small_generator()
    G.state["_init_kwargs"][key] = value
    return nv.dumps({"G_ema": G, "training_set_kwargs": {}})


class ViewTensor:
    """Pickles like a torch tensor over a GIVEN storage object (so many tensors can share one storage)."""

    def __init__(self, storage: nv.Storage, offset: int, shape: tuple[int, ...]):
        self.storage, self.offset, self.shape = storage, offset, tuple(shape)

    def __reduce_ex__(self, protocol: int) -> tuple:
        return (
            nv.REBUILD_TENSOR_V2,
            (self.storage, self.offset, self.shape, nv._contiguous_stride(self.shape), False, OrderedDict()),
        )


def many_references(n: int, storage_elems: int, mode: str) -> bytes:
    """A valid small generator plus a module with ``n`` parameters over ONE stored buffer of ``storage_elems``
    floats: ``'same'``: one tensor object referenced ``n`` times; ``'views'``: ``n`` distinct tensors at different
    offsets (each nearly the whole buffer)."""
    _, _, G = small_generator()
    storage = nv.Storage(np.arange(storage_elems, dtype=np.float32))
    if mode == "same":
        t = ViewTensor(storage, 0, (storage_elems,))
        params = {f"p{i}": t for i in range(n)}
    else:
        params = {f"p{i}": ViewTensor(storage, i, (storage_elems - i,)) for i in range(n)}
    mod = nv.Persistent("Bag", nv.module_state({}, {}, {}, {}))
    mod.state["_parameters"] = OrderedDict(params)
    _children(G)["bag"] = mod
    return nv.dumps({"G_ema": G})


def shared_mapping_weights(config: dict, state: dict) -> bytes:
    """A valid generator whose mapping fc weights (all the same shape) are identical views of ONE storage."""
    G = nv.generator(config, state)
    mapping = _children(G)["mapping"]
    fcs = [m for name, m in _children(mapping).items() if name.startswith("fc")]
    shape = tuple(state["mapping.fc1.weight"].shape)
    storage = nv.Storage(state["mapping.fc1.weight"].reshape(-1))
    shared = ViewTensor(storage, 0, shape)
    for fc in fcs:
        if tuple(fc.state["_parameters"]["weight"].tensor.array.shape) == shape:
            fc.state["_parameters"]["weight"] = shared
    return nv.dumps({"G_ema": G})


# --------------------------------------------------------------------------------------------------------------
# Zip archives that inflate hugely, or whose headers lie.


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    import io

    from numpy.lib import format as npy

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def deflate_bomb_npz(path: Path, inflated_bytes: int, meta_key: str = "__lsd_jax_meta__") -> Path:
    """A converted-style ``.npz`` with one deflated member of ``inflated_bytes`` zeros (a true, consistent array:
    only its inflation ratio is hostile)."""
    n = inflated_bytes // 4
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{meta_key}.npy", npy_header((2,), "|u1") + b"{}")
        with zf.open("mapping.w_avg.npy", "w", force_zip64=True) as f:
            f.write(npy_header((n,)))
            block = bytes(1 << 22)
            left = n * 4
            while left:
                f.write(block[: min(left, len(block))])
                left -= min(left, len(block))
    return path


def lying_zip(
    path: Path,
    *,
    declared: int,
    data: bytes,
    method: int = zipfile.ZIP_STORED,
    name: str = "mapping.w_avg.npy",
    meta_key: str = "__lsd_jax_meta__",
) -> Path:
    """A zip whose member ``name`` DECLARES ``declared`` uncompressed bytes but holds ``data`` (compressed with
    ``method``): written by hand, since zipfile refuses to lie."""
    import zlib

    members = [(f"{meta_key}.npy", npy_header((2,), "|u1") + b"{}", zipfile.ZIP_STORED, None)]
    members.append((name, data, method, declared))
    out, central = bytearray(), bytearray()
    for fname, raw, meth, decl in members:
        payload = raw if meth == zipfile.ZIP_STORED else zlib.compress(raw, 9)[2:-4]
        size = len(raw) if decl is None else decl
        crc = zlib.crc32(raw)
        fn = fname.encode()
        offset = len(out)
        zip64 = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, len(payload)) if zip64 else b""
        usize, csize = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (size, len(payload))
        out += (
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, meth, 0, 0, crc, csize, usize, len(fn), len(extra)
            )
            + fn
            + extra
            + payload
        )
        extra_c = struct.pack("<HHQQ", 1, 16, size, len(payload)) if zip64 else b""
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                45 if zip64 else 20,
                45 if zip64 else 20,
                0,
                meth,
                0,
                0,
                crc,
                csize,
                usize,
                len(fn),
                len(extra_c),
                0,
                0,
                0,
                0,
                offset,
            )
            + fn
            + extra_c
        )
    cd_offset = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd_offset, 0)
    path.write_bytes(bytes(out))
    return path
