"""lsd_jax.store.weights: converted generators as .safetensors (no pickle), checked before allocation, and the
sha256-keyed conversion cache (rebuilt when corrupt)."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import nvidia_pickles as nv
import pytest
from sg2_state import random_sg2_state, sg2_config

import lsd_jax
from converters import parse as conv_parse
from lsd_jax.errors import ConversionError, StyleError
from lsd_jax.store import weights
from lsd_jax.store.paths import sha256_file

CONFIG = sg2_config(img_resolution=128, c_dim=3, embed_features=16, layer_features=24, num_layers=4, lr_multiplier=0.02)


def _assert_same_state(got: dict, want: dict) -> None:
    assert list(got) == list(want), "keys / state_dict order differ"
    for key, value in want.items():
        assert got[key].dtype == np.float32, key
        assert got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.fixture()
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("LSD_JAX_CACHE", str(root))
    return root


@pytest.fixture()
def pkl(tmp_path: Path) -> tuple[Path, dict, dict]:
    state = random_sg2_state(CONFIG, 11)
    path = nv.write_torch_pickle(tmp_path / "network-snapshot-000100.pkl", CONFIG, state)
    return path, CONFIG, state


def _no_parse(*args, **kwargs):
    raise AssertionError("the pickle was parsed again instead of read from the cache")


def _header(path: Path) -> tuple[dict, int]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), n


# ---------------------------------------------------------------------------------------------------------------
# The cache


def test_second_load_reads_the_cache(cache_root: Path, pkl, monkeypatch: pytest.MonkeyPatch) -> None:
    path, config, state = pkl
    t0 = time.perf_counter()
    cfg1, st1 = weights.load(path)
    uncached = time.perf_counter() - t0
    entry = weights.cache_path(sha256_file(path))
    assert entry.is_file() and entry.parent == cache_root / "converted" and entry.suffix == ".safetensors"
    monkeypatch.setattr(conv_parse, "parse_bytes", _no_parse)
    t0 = time.perf_counter()
    cfg2, st2 = weights.load(path)
    cached = time.perf_counter() - t0
    assert cfg1 == cfg2 == config
    _assert_same_state(st2, state)
    _assert_same_state(st1, state)
    assert cached < 10.0, (cached, uncached)  # the parser is patched out (it raises); generous, for a loaded machine
    # keyed by content: a copy under another name hits the same entry
    copy = path.with_name("renamed.pkl")
    shutil.copyfile(path, copy)
    assert weights.load(copy)[0] == config
    assert not list(entry.parent.glob("*.tmp"))


def test_cache_file_is_safetensors_with_flax_paths_and_config(cache_root: Path, pkl) -> None:
    from safetensors.numpy import load_file

    path, config, state = pkl
    weights.load(path)
    entry = weights.cache_path(sha256_file(path))
    header, _ = _header(entry)
    meta = header.pop("__metadata__")
    assert meta["format"] == "lsd-jax" and json.loads(meta["config"]) == config
    assert meta["source_sha256"] == sha256_file(path)
    members = load_file(str(entry))  # the plain safetensors reader: flat dotted names, float32
    assert set(members) == set(state) == set(header)
    assert all(v.dtype == np.float32 for v in members.values())
    assert members["synthesis.b4.conv1.noise_strength"].shape == ()
    cfg, got = weights.load_safetensors(entry)
    assert cfg == config
    _assert_same_state(got, state)
    # the names are the NNX module's own paths
    gen = lsd_jax.load_generator(entry)
    from lsd_jax.models.ops import flat_shapes

    assert flat_shapes(gen.module) == {k: v.shape for k, v in state.items()}


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip-byte", "bad-meta", "empty"])
def test_corrupt_cache_entry_is_detected_and_rebuilt(cache_root: Path, pkl, damage: str) -> None:
    from safetensors.numpy import save_file

    path, config, state = pkl
    weights.load(path)
    entry = weights.cache_path(sha256_file(path))
    raw = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        entry.write_bytes(b"not a safetensors file at all" * 10)
    elif damage == "flip-byte":  # inside tensor data: the data checksum in the metadata catches it
        b = bytearray(raw)
        b[len(b) // 2] ^= 0xFF
        entry.write_bytes(bytes(b))
    elif damage == "bad-meta":
        other = {k: np.asarray(v) for k, v in state.items() if k != "mapping.fc0.bias"}
        save_file(other, str(entry), metadata={"format": "lsd-jax"})
    else:
        entry.write_bytes(b"")
    with pytest.warns(UserWarning, match="corrupt"):
        cfg, got = weights.load(path)
    assert cfg == config
    _assert_same_state(got, state)
    cfg, got = weights.load_safetensors(entry)  # rebuilt and valid again
    assert cfg == config


def test_tf_pickle_through_cache(cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = sg2_config(img_channels=4, architecture="orig", resample_filter=[1, 2, 1], num_layers=5)
    path = nv.write_tf_pickle(tmp_path / "stylegan2-tf.pkl", config, random_sg2_state(config, 12))
    cfg, got = weights.load(path)
    monkeypatch.setattr(conv_parse, "parse_bytes", _no_parse)
    cfg2, got2 = weights.load(path)
    assert cfg == cfg2 == config
    _assert_same_state(got2, got)


# ---------------------------------------------------------------------------------------------------------------
# Converted files


def test_convert_writes_a_loadable_safetensors(cache_root: Path, pkl, tmp_path: Path) -> None:
    path, config, state = pkl
    out = weights.convert(path, tmp_path / "out" / "style.safetensors")
    assert out == tmp_path / "out" / "style.safetensors" and out.is_file()
    cfg, got = weights.load_safetensors(out)
    assert cfg == config
    _assert_same_state(got, state)
    cfg, got = weights.load(out)  # an already-converted file is read directly
    assert cfg == config
    assert not [p for p in out.parent.iterdir() if p.name != "style.safetensors"]  # no temp file left behind
    with pytest.raises(StyleError, match=r"\.safetensors"):
        weights.convert(path, tmp_path / "style.npz")


def test_cli_convert_and_style_argument(cache_root: Path, pkl, tmp_path: Path, capsys) -> None:
    from lsd_jax.cli import main
    from lsd_jax.styles.resolve import resolve_style

    path, config, state = pkl
    assert main(["convert", str(path), str(tmp_path / "m.safetensors")]) == 0
    assert "wrote" in capsys.readouterr().out
    style = resolve_style(str(tmp_path / "m.safetensors"))
    assert style.name == "m" and style.native_size == (128, 128) and style.c_dim == 3


def test_old_npz_gets_a_clear_error(tmp_path: Path) -> None:
    old = tmp_path / "model.npz"
    np.savez(old, a=np.zeros(3))
    with pytest.raises(StyleError, match="lsd-jax convert") as info:
        lsd_jax.load_generator(old)
    assert "model.safetensors" in str(info.value)
    from lsd_jax.styles.resolve import resolve_style

    with pytest.raises(StyleError, match="re-run|again"):
        resolve_style(str(old))


def test_foreign_safetensors_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    foreign = tmp_path / "weights.safetensors"
    save_file({"a": np.zeros(3, np.float32)}, str(foreign))
    with pytest.raises(ConversionError, match="not an lsd-jax converted generator"):
        weights.load_safetensors(foreign)


def test_a_tiny_file_claiming_a_huge_header_is_refused_at_once(tmp_path: Path) -> None:
    bogus = tmp_path / "huge.safetensors"
    bogus.write_bytes(struct.pack("<Q", 40 << 30) + b"{}")
    t = time.perf_counter()
    with pytest.raises(ConversionError, match="header claims"):
        weights.load_safetensors(bogus)
    assert time.perf_counter() - t < 5.0  # refused from the header's 8 bytes, not after reading 40 GB (generous)
    with pytest.raises(ConversionError, match="too short"):
        (tmp_path / "short.safetensors").write_bytes(b"\x01")
        weights.load_safetensors(tmp_path / "short.safetensors")


def _rewrite_header(src: Path, dst: Path, edit) -> None:
    raw = src.read_bytes()
    header, n = _header(src)
    edit(header)
    text = json.dumps(header).encode()
    dst.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def test_tensor_claims_are_checked_before_anything_is_allocated(
    cache_root: Path, pkl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors

    path, _, _ = pkl
    good = weights.convert(path, tmp_path / "good.safetensors")

    def no_read(*a, **k):
        raise AssertionError("tensor data was read before the header was checked")

    monkeypatch.setattr(safetensors, "safe_open", no_read)
    key = "synthesis.b8.conv0.weight"

    def huge(h):  # a tensor claiming 40 GB of data the file does not have
        h[key]["shape"] = [1 << 20, 1 << 10, 10]
        h[key]["data_offsets"] = [0, 40 << 30]

    def misshapen(h):  # consistent byte range, wrong shape for the model
        shape = h[key]["shape"]
        h[key]["shape"] = [shape[0] * shape[1], 1, 3, 3]

    def renamed(h):
        h["synthesis.b8.conv7.weight"] = h.pop(key)

    def missing(h):
        h.pop(key)

    for edit, match in (
        (huge, "truncated or corrupt.*synthesis.b8.conv0.weight"),
        (misshapen, "synthesis.b8.conv0.weight' has shape"),
        (renamed, "unknown tensor 'synthesis.b8.conv7.weight'"),
        (missing, "lacks tensor 'synthesis.b8.conv0.weight'"),
    ):
        bad = tmp_path / f"{edit.__name__}.safetensors"
        _rewrite_header(good, bad, edit)
        with pytest.raises(ConversionError, match=match):
            weights.load_safetensors(bad)


def test_non_finite_weights_warn_naming_the_tensor(cache_root: Path, tmp_path: Path) -> None:
    state = random_sg2_state(CONFIG, 3)
    state["synthesis.b16.conv1.weight"][0, 0, 0, 0] = np.nan
    state["mapping.fc1.bias"][2] = np.inf
    out = weights.save(tmp_path / "nan.safetensors", CONFIG, state)
    with pytest.warns(UserWarning, match=r"non-finite.*synthesis\.b16\.conv1\.weight, mapping\.fc1\.bias"):
        lsd_jax.load_generator(out)
    pkl = nv.write_torch_pickle(tmp_path / "nan.pkl", CONFIG, state)
    with pytest.warns(UserWarning, match="non-finite.*synthesis.b16.conv1.weight"):
        weights.load(pkl)


def test_converters_import_nothing_from_lsd_jax() -> None:
    import ast

    root = Path(__file__).parent.parent / "converters"
    for f in root.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "lsd_jax" for a in node.names), f.name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "lsd_jax", f.name


# ---------------------------------------------------------------------------------------------------------------
# Hostile inputs (issue 29)


def test_a_swapped_cache_entry_is_not_served_as_another_model(cache_root: Path, pkl, tmp_path: Path) -> None:
    """Cache entries are named by their source's sha256: one copied over another's name (a swap, a restore from a
    backup) says in its metadata which file it came from, so it is discarded and the right model rebuilt."""
    path, config, state = pkl
    other_state = random_sg2_state(CONFIG, 12)
    other = nv.write_torch_pickle(tmp_path / "other.pkl", CONFIG, other_state)
    weights.load(path)
    weights.load(other)
    entry, other_entry = weights.cache_path(sha256_file(path)), weights.cache_path(sha256_file(other))
    shutil.copyfile(other_entry, entry)
    with pytest.warns(UserWarning, match="converted from another file"):
        cfg, got = weights.load(path)
    _assert_same_state(got, state)
    with pytest.raises(ConversionError, match="converted from another file"):
        weights.load_safetensors(other_entry, source_sha256=sha256_file(path))
    _assert_same_state(weights.load_safetensors(entry, source_sha256=sha256_file(path))[1], state)


@pytest.mark.parametrize("where", ["header", "config"])
def test_deeply_nested_json_is_a_conversion_error(cache_root: Path, pkl, tmp_path: Path, where: str) -> None:
    """json's decoder recurses once per level: 100 000 '[' used to escape as a raw RecursionError."""
    bomb = "[" * 100_000 + "]" * 100_000
    out = tmp_path / "nested.safetensors"
    if where == "header":
        text = bomb.encode()
        out.write_bytes(struct.pack("<Q", len(text)) + text)
        match = "nested too deeply"
    else:
        path, _, _ = pkl
        weights.load(path)
        _rewrite_header(weights.cache_path(sha256_file(path)), out, lambda h: h["__metadata__"].update(config=bomb))
        match = "not JSON"
    with pytest.raises(ConversionError, match=match):
        weights.load_safetensors(out)


def test_biggan_checkpoint_is_converted_in_the_sandbox_when_isolated(
    cache_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalogue BigGAN download has no checksum: with ``isolated`` (the web app) it is converted in the limited
    child process like an upload, never in this one."""
    import biggan_checkpoints as bc

    from converters import biggan as conv_biggan

    config = bc.biggan_config(128, channel_width=4)
    folder = bc.write_checkpoint(tmp_path / "biggan-deep-128", config, bc.random_state(config, 3), serialization="zip")
    want_cfg, want_state = conv_biggan.parse_biggan(folder)
    monkeypatch.setattr(conv_biggan, "parse_biggan_bytes", _no_parse)
    cfg, state, sha = weights.load_with_hash(folder, isolated=True)
    assert cfg == want_cfg and sha == weights.biggan_sha256(folder)
    _assert_same_state(state, want_state)
    assert weights.cache_path(sha).is_file()
    # a hostile .bin fails in the child with the converter's own message
    (folder / "pytorch_model.bin").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ConversionError, match="pytorch_model.bin"):
        weights.load_with_hash(folder, isolated=True)
