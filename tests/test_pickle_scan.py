"""Resource bombs in model pickles: the loaders bound work and memory, not only globals (issue 18).

Every hostile file is loaded in a child process under an address-space limit and a timeout (tests/hostile.py), so a
regression fails a test instead of taking the machine down. Each refusal must be the LOADER's own one-line message
(not the child being killed), and quick. Benign files with tight limits run in-process.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import hostile
import numpy as np
import nvidia_pickles as nv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converters
from converters import Limits
from converters.errors import ConversionError
from converters.limits import short_repr

pytestmark = pytest.mark.timeout(300)

MEMORY_MB = 1024  # each child's address-space limit
QUICK = 10.0  # seconds a refusal may take (they take milliseconds; generous for a loaded machine): a bomb worked
# through instead of refused runs into the child's time-out


def _write(tmp: Path, files: dict[str, bytes]) -> list[str]:
    paths = []
    for name, data in files.items():
        p = tmp / name
        p.write_bytes(data)
        paths.append(str(p))
    return paths


def _parse_all(tmp: Path, files: dict[str, bytes], timeout: float = 120) -> dict[str, dict]:
    """Parse every file in ONE bounded child; name -> {'error', 'message', 'seconds'}."""
    report = hostile.run_bounded("hostile:parse_many", _write(tmp, files), memory_mb=MEMORY_MB, timeout=timeout)
    assert report["error"] is None, report  # the child itself survived: no MemoryError, no kill
    assert report["maxrss_mb"] < MEMORY_MB
    return dict(zip(files, report["value"]))


def _assert_refused(name: str, got: dict, *phrases: str) -> None:
    assert got["error"] in ("ConversionError", "PickleSecurityError"), (name, got)
    msg = got["message"]
    assert "\n" not in msg and len(msg) < 600, (name, msg)
    if phrases:
        assert any(p in msg for p in phrases), (name, msg)
    assert got["seconds"] < QUICK, (name, got)


# ----------------------------------------------------------------------------------------------------------------
# 1. Structures exponentially large when walked, hashed or printed (shared references).


def test_the_215_byte_shared_reference_pickle(tmp_path: Path) -> None:
    data = pickle.dumps(hostile.shared_chain("list", 30), protocol=2)
    assert len(data) < 300  # the file was 215 bytes: 2**30 paths
    got = _parse_all(tmp_path, {"chain.pkl": data})["chain.pkl"]
    _assert_refused("chain.pkl", got, "walked as a tree")


@pytest.mark.slow
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(
    cases=st.lists(
        st.tuples(
            st.sampled_from(["list", "tuple", "dict", "mixed"]),
            st.integers(23, 90),
            st.sampled_from(["top", "kwarg", "beside", "tf-kwarg"]),
            st.sampled_from([2, 3, 4, 5]),
        ),
        min_size=4,
        max_size=8,
    )
)
def test_shared_reference_chains_of_any_shape_are_refused(tmp_path_factory, cases) -> None:
    tmp = tmp_path_factory.mktemp("chains")
    files = {}
    for i, (kind, depth, where, protocol) in enumerate(cases):
        chain = hostile.shared_chain(kind, depth)
        if where == "top":
            data = pickle.dumps(chain, protocol=protocol)
        elif where == "kwarg":
            data = hostile.generator_with_kwarg(chain)
        elif where == "beside":  # next to a valid generator, where the converter never looks
            _, _, G = hostile.small_generator()
            data = nv.dumps({"G_ema": G, "training_set_kwargs": {"path": chain}}, protocol=protocol)
        else:
            config, state, _ = hostile.small_generator()
            Gs = nv.tf_generator(config, state)
            Gs._state["static_kwargs"]["latent_size"] = chain
            data = nv.dumps((Gs, Gs, Gs), protocol=max(protocol, 3))
        files[f"{i}-{kind}-{depth}-{where}.pkl"] = data
    for name, got in _parse_all(tmp, files).items():
        _assert_refused(name, got, "walked as a tree")


@pytest.mark.parametrize("kind", ["dict-key", "set", "frozenset"])
def test_keys_that_hash_in_exponential_time_are_refused(tmp_path: Path, kind: str) -> None:
    files = {f"{kind}-{d}.pkl": hostile.key_bomb(kind, d) for d in (11, 24, 40, 120)}
    for name, got in _parse_all(tmp_path, files).items():
        _assert_refused(name, got, "dictionary key or set element nests more than")


def test_a_cycle_is_refused(tmp_path: Path) -> None:
    loop: list = []
    loop.append(loop)
    d: dict = {}
    d["self"] = [d]
    files = {"list.pkl": pickle.dumps(loop), "dict.pkl": pickle.dumps(d, protocol=2)}
    for name, got in _parse_all(tmp_path, files).items():
        _assert_refused(name, got, "cycle")


def test_messages_never_repr_an_untrusted_structure() -> None:
    report = hostile.run_bounded("hostile:describe", 200, memory_mb=MEMORY_MB, timeout=30)
    assert report["error"] is None and report["seconds"] < QUICK, report  # a repr of the structure never ends
    assert report["value"] == "<list of 2 items>"
    assert short_repr("x" * 10_000_000).endswith("...") and len(short_repr("x" * 10_000_000)) <= 80
    assert short_repr(10**100_000) == "<int of 332193 bits>"  # repr() would raise: > 4300 digits
    assert short_repr((1, 2, 3)) == "(1, 2, 3)" and short_repr(np.zeros((2, 3), np.float32)) == "<array (2, 3) float32>"


# ----------------------------------------------------------------------------------------------------------------
# 2. A module tree whose children are shared (2**depth paths to walk).


@pytest.mark.slow
@pytest.mark.parametrize("depth", [2, 6, 12, 31, 60])
def test_shared_submodules_are_refused(tmp_path: Path, depth: int) -> None:
    got = _parse_all(tmp_path, {"tree.pkl": hostile.shared_module_tree(depth)})["tree.pkl"]
    _assert_refused("tree.pkl", got, "is the same object as module", "walked as a tree", "nest more than")


def test_module_walk_visits_each_module_once(tmp_path: Path) -> None:
    """The converter's own walk, on a tree the loader's budget lets through: refused by identity, in milliseconds."""
    (tmp_path / "tree.pkl").write_bytes(hostile.shared_module_tree(14))
    report = hostile.run_bounded("hostile:flatten_modules", str(tmp_path / "tree.pkl"), memory_mb=MEMORY_MB, timeout=60)
    assert report["error"] == "ConversionError", report
    assert re.search(r"module 'extra(\.a)*\.b' is the same object as module 'extra(\.a)+'", report["message"])
    assert report["seconds"] < QUICK


# ----------------------------------------------------------------------------------------------------------------
# 3. One stored tensor referenced thousands of times.


@pytest.mark.slow
@pytest.mark.parametrize("n,elems", [(3000, 1 << 20), (20000, 1 << 16)])
def test_one_tensor_referenced_many_times_stays_one_array(tmp_path: Path, n: int, elems: int) -> None:
    data = hostile.many_references(n, elems, "same")
    assert len(data) < 8 * elems + 40 * n + 200_000
    got = _parse_all(tmp_path, {"same.pkl": data})["same.pkl"]
    _assert_refused("same.pkl", got, "unknown tensor 'bag.p")  # found cheaply: the copies were never made


@pytest.mark.slow
@pytest.mark.parametrize("n,elems", [(2000, 1 << 20), (5000, 1 << 18)])
def test_many_views_of_one_storage_are_refused_before_they_cost_memory(tmp_path: Path, n: int, elems: int) -> None:
    """The issue's 4 MB file that became 8.6 GB resident: thousands of tensors over one storage, each nearly all
    of it. The budget refuses it (its tensors would be far larger than the file)."""
    got = _parse_all(tmp_path, {"views.pkl": hostile.many_references(n, elems, "views")})["views.pkl"]
    _assert_refused("views.pkl", got, "share one stored buffer")


def test_tensors_over_one_storage_share_memory() -> None:
    config = hostile.small_config()
    config["mapping_kwargs"]["num_layers"] = 4
    from sg2_state import random_sg2_state

    state = random_sg2_state(config, 3)
    for i in range(4):
        state[f"mapping.fc{i}.weight"] = state["mapping.fc1.weight"]
    cfg, got = converters.parse_bytes(hostile.shared_mapping_weights(config, state))
    assert cfg == config
    for i in range(4):
        np.testing.assert_array_equal(got[f"mapping.fc{i}.weight"], state["mapping.fc1.weight"])
    assert all(np.shares_memory(got["mapping.fc0.weight"], got[f"mapping.fc{i}.weight"]) for i in (1, 2, 3))


# ----------------------------------------------------------------------------------------------------------------
# 5. Tiny files whose headers claim gigabytes (the zip cases are in test_safe_zip.py).


def test_tiny_files_claiming_huge_sizes_are_refused(tmp_path: Path) -> None:
    files = {
        f"{kind}-{claim}.pkl": hostile.claimed_size_bomb(kind, claim)
        for kind in ("binbytes8", "binunicode8", "frame")
        for claim in (40 << 30, (1 << 63) - 1)
    }
    files.update({f"memo-{i}.pkl": hostile.memo_bomb(i) for i in (2_000_001, 1 << 31, (1 << 32) - 1)})
    # a torch storage whose header claims 10**10 elements over 16 bytes of data
    storage = bytearray(nv.legacy_storage_bytes(np.zeros(4, np.float32)))
    i = storage.rfind((4).to_bytes(8, "little"))
    storage[i : i + 8] = (10**10).to_bytes(8, "little")
    files["storage.pkl"] = nv.dumps(hostile.ViewTensor(_RawStorage(bytes(storage)), 0, (4,)))
    for name, got in _parse_all(tmp_path, files).items():
        _assert_refused(name, got, "truncated", "memo index", "elements but its header says", "pickle exhausted")


class _RawStorage:
    """Pickles as ``torch.storage._load_from_bytes(raw)`` with raw bytes given verbatim."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def __reduce_ex__(self, protocol: int) -> tuple:
        return (nv.LOAD_FROM_BYTES, (self.raw,))


# ----------------------------------------------------------------------------------------------------------------
# The limits themselves (benign files, tight limits: in-process).


_CONFIG = hostile.small_config()
_STATE = hostile.small_generator(_CONFIG)[1]
_PICKLE = nv.torch_pickle_bytes(_CONFIG, _STATE, with_augment=False)


@pytest.mark.parametrize(
    "limits,phrase",
    [
        (Limits(max_objects=500), "more than 500 objects"),
        (Limits(max_items=500), "more than 500 references"),
        (Limits(max_container_len=10), "more than 10 items"),
        (Limits(max_depth=8), "nest more than 8 deep"),
        (Limits(max_tree_nodes=1000), "walked as a tree"),
        (Limits(max_memo=10), "memo index"),
        (Limits(max_hash_work=50), "hashing its keys"),
        (Limits(max_bytes=1000), "data it creates"),
        (Limits(bytes_per_input_byte=0.01, bytes_slack=0), "data it creates"),
        (Limits(max_seconds=0.0), "took longer than 0 s"),
        (Limits(max_file_bytes=1000), "a model file may have"),
    ],
)
def test_each_limit_refuses_with_a_clear_message(limits: Limits, phrase: str) -> None:
    with pytest.raises(ConversionError, match=phrase) as info:
        converters.parse_bytes(_PICKLE, "'m.pkl'", limits=limits)
    assert "'m.pkl'" in str(info.value) and "\n" not in str(info.value)


def test_default_limits_leave_real_pickles_far_inside() -> None:
    """A whole snapshot (G, D, G_ema, augment pipe) converts, and its cost is a small fraction of every limit."""
    import io

    from converters.limits import Budget
    from converters.safe_pickle import _BUDGETED, ALLOWED_GLOBALS
    from converters.unpickler import load_one

    budget = Budget(Limits(), len(_PICKLE), "m")
    load_one(io.BytesIO(_PICKLE), allowed=ALLOWED_GLOBALS, where="m", budget=budget, budgeted=_BUDGETED)
    lim = Limits()
    assert budget.objects < lim.max_objects / 100 and budget.items < lim.max_items / 100
    assert budget.hash_work < lim.max_hash_work / 100 and budget.bytes <= len(_PICKLE)
    cfg, state = converters.parse_bytes(_PICKLE)
    assert cfg == _CONFIG and set(state) == set(_STATE)
