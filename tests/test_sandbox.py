"""lsd_jax.store.sandbox.convert_isolated: conversion in a limited child process; a bomb or a hang there is a clear
error
here, quickly, and this process is unaffected."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import hostile
import numpy as np
import nvidia_pickles as nv
import pytest

import converters
from converters import Limits
from lsd_jax.errors import ConversionError, PickleSecurityError, StyleError
from lsd_jax.store.sandbox import convert_isolated

pytestmark = pytest.mark.timeout(120)

#: Loader limits switched off, to prove the sandbox holds on its own.
NO_LIMITS = Limits(
    max_key_nodes=1 << 200,
    max_hash_work=1 << 200,
    max_memo=1 << 60,
    max_objects=1 << 60,
    max_items=1 << 60,
    max_tree_nodes=1 << 200,
    max_depth=10_000,
    max_seconds=1e9,
)


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> tuple[Path, dict, dict]:
    config, state, _ = hostile.small_generator()
    path = tmp_path_factory.mktemp("sandbox") / "model.pkl"
    nv.write_torch_pickle(path, config, state)
    return path, config, state


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_valid_pickle_converts_exactly_as_in_process(valid) -> None:
    path, config, _ = valid
    cfg, got = convert_isolated(path, timeout=60)
    cfg2, want = converters.parse_pickle(path)
    assert cfg == cfg2 == config
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == np.float32 and got[k].shape == want[k].shape
        np.testing.assert_array_equal(got[k], want[k])


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "evil.pkl"
    path.write_bytes(
        b"\x80\x02cos\nsystem\nX"
        + len(f"touch {canary}").to_bytes(4, "little")
        + f"touch {canary}".encode()
        + b"\x85R."
    )
    with pytest.raises(PickleSecurityError, match="'os.system'"):
        convert_isolated(path, timeout=30)
    assert not canary.exists()


def test_bomb_is_the_loaders_own_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pkl"
    path.write_bytes(hostile.key_bomb("dict-key", 80))
    t = time.monotonic()
    with pytest.raises(ConversionError, match="nests more than"):
        convert_isolated(path, timeout=30)
    assert time.monotonic() - t < 10  # refused at once (generous, for a loaded machine): not the 30 s time-out


@pytest.mark.slow
def test_a_hang_in_the_child_is_stopped_and_this_process_carries_on(tmp_path: Path, valid) -> None:
    """With the loader's own limits off, the key bomb hashes for ever in the child: the wall-clock limit kills it,
    the error is clear, and a normal conversion right after succeeds."""
    path = tmp_path / "hang.pkl"
    path.write_bytes(hostile.key_bomb("dict-key", 80))
    rss = _rss_mb()
    t = time.monotonic()
    with pytest.raises(ConversionError, match=r"took longer than 2 s and was stopped"):
        convert_isolated(path, timeout=2, limits=NO_LIMITS)
    assert time.monotonic() - t < 8  # the 2 s limit and the kill (generous, for a loaded machine): not a hang
    cfg, state = convert_isolated(valid[0], timeout=60)
    assert cfg == valid[1] and set(state) == set(valid[2])
    assert _rss_mb() - rss < 200


@pytest.mark.parametrize("index", [1 << 31, (1 << 32) - 1])
def test_out_of_memory_in_the_child_is_a_clear_error(tmp_path: Path, index: int) -> None:
    """A memo index the loader would refuse, with its limits off: the child's address-space limit stops it."""
    path = tmp_path / "memo.pkl"
    path.write_bytes(hostile.memo_bomb(index))
    rss = _rss_mb()
    t = time.monotonic()
    with pytest.raises(ConversionError, match="memory") as info:
        convert_isolated(path, timeout=30, memory_bytes=768 << 20, limits=NO_LIMITS)
    assert "'memo.pkl'" in str(info.value) and "\n" not in str(info.value)
    assert time.monotonic() - t < 15  # the memory limit, not the 30 s time-out (generous, for a loaded machine)
    assert _rss_mb() - rss < 100


def test_missing_and_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(StyleError, match="not found: nope.pkl"):
        convert_isolated(tmp_path / "nope.pkl")
    with pytest.raises(StyleError, match="not a regular file"):
        convert_isolated(tmp_path)
    big = tmp_path / "big.pkl"
    big.write_bytes(b"\x80\x04K\x00." + bytes(2000))
    with pytest.raises(ConversionError, match="a model file may have"):
        convert_isolated(big, limits=Limits(max_file_bytes=1000))


def test_messages_do_not_leak_the_server_folder(tmp_path: Path) -> None:
    folder = tmp_path / "secret upload dir"
    folder.mkdir()
    path = folder / "bomb.pkl"
    path.write_bytes(hostile.key_bomb("set", 50))
    with pytest.raises(ConversionError) as info:
        convert_isolated(path, timeout=30)
    assert "secret" not in str(info.value) and "'bomb.pkl'" in str(info.value)
    assert not [
        p
        for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("lsd-jax-convert-*")
        if p.is_dir() and p.stat().st_mtime > time.time() - 5
    ]
