"""BigGAN-deep: checkpoint folders (both torch serializations) → converter → NNX model, against a float64 oracle.

The checkpoints are random networks with the package's real layer structure and a tiny ``channel_width``, written
byte for byte as ``torch.save(BigGAN(config).state_dict())`` does (``tests/biggan_checkpoints.py``); the oracle
(``tests/reference_biggan.py``) reads the raw tensors, spectral norm included.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import biggan_checkpoints as bc
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_biggan as ref
from flax import nnx

from converters import biggan as conv
from converters.errors import ConversionError, PickleSecurityError, SourceError
from lsd_jax.errors import ParamError
from lsd_jax.models import biggan as bg

SERIALIZATIONS = ("legacy", "zip")
TRUNCATIONS = (1.0, 0.5, 0.4, 0.123)


@pytest.fixture(scope="module")
def net128() -> tuple[dict, dict]:
    cfg = bc.biggan_config(128, channel_width=4)
    return cfg, bc.random_state(cfg, seed=1)


@pytest.fixture(scope="module")
def folders(net128, tmp_path_factory) -> dict[str, Path]:
    cfg, raw = net128
    root = tmp_path_factory.mktemp("biggan")
    return {s: bc.write_checkpoint(root / s, cfg, raw, s) for s in SERIALIZATIONS}


@pytest.fixture(scope="module")
def models(folders) -> dict[str, tuple]:
    out = {}
    for s, folder in folders.items():
        config, state = conv.parse_biggan(folder)
        model = bg.from_state(config, state)
        out[s] = (config, state, *nnx.split(model))
    return out


def _inputs(truncation: float, n: int = 2) -> tuple[jax.Array, jax.Array]:
    """Noise by BigGAN's truncated sampling; classes: a soft mixture of three classes in the last row, one-hot
    rows before it."""
    z = bg.truncated_noise(jax.random.key(7), n, 128, truncation)
    c = np.zeros((n, 1000), np.float32)
    c[np.arange(n - 1), 207 + np.arange(n - 1)] = 1.0
    c[n - 1, [1, 430, 980]] = [0.5, 0.3, 0.2]
    return z, jnp.asarray(c)


def _close(out: np.ndarray, expect: np.ndarray) -> None:
    tol = 1e-4 * max(1.0, float(np.abs(expect).max()))
    err = float(np.abs(out - expect).max())
    assert err <= tol, f"max error {err} > {tol}"


@pytest.mark.slow
@pytest.mark.parametrize("serialization", SERIALIZATIONS)
def test_matches_oracle_at_every_truncation(models, net128, serialization) -> None:
    cfg, raw = net128
    config, _state, graphdef, state = models[serialization]
    assert config == {**conv.read_config(cfg), "family": "biggan-deep"}
    for t in TRUNCATIONS:
        z, c = _inputs(t)
        out = np.asarray(bg.generate(graphdef, state, z, c, bg.bn_stats_weights(t)))
        chex.assert_shape(out, (2, 128, 128, 3))
        assert out.dtype == np.float32 and np.abs(out).max() <= 1.0
        expect = ref.biggan(cfg, raw, np.asarray(z), np.asarray(c), t)
        assert expect.std() > 0.05 and np.mean(np.abs(expect) > 0.99) < 0.05  # a meaningful, unsaturated image
        _close(out, expect)


@pytest.mark.slow
def test_statistics_interpolation_order_is_the_packages(models, net128) -> None:
    """At 0.123 the package weighs row 6 by 0.15 and row 7 by 0.85 (coef goes to the lower row); an ordinary lerp
    gives a clearly different image, so the agreement above pins the order down."""
    cfg, raw = net128
    _, _, graphdef, state = models["legacy"]
    z, c = _inputs(0.123)
    out = np.asarray(bg.generate(graphdef, state, z, c, bg.bn_stats_weights(0.123)))
    lerp = ref.biggan(cfg, raw, np.asarray(z), np.asarray(c), 0.123, swapped=False)
    assert np.abs(out - lerp).max() > 100 * 1e-4
    w = np.asarray(bg.bn_stats_weights(0.123))
    np.testing.assert_allclose(w[[6, 7]], [0.15, 0.85], rtol=1e-6)
    assert np.count_nonzero(w) == 2


def test_truncation_is_a_runtime_input(models) -> None:
    _, _, graphdef, state = models["zip"]
    z, c = _inputs(0.5)
    bg.generate(graphdef, state, z, c, bg.bn_stats_weights(0.5)).block_until_ready()
    before = bg.generate._cache_size()
    for t in (0.9, 0.31, 0.77):
        bg.generate(graphdef, state, z, c, bg.bn_stats_weights(t)).block_until_ready()
    assert bg.generate._cache_size() == before  # a new truncation never recompiles
    # a traced truncation (inside an outer jit) gets the same rule in float32: equal at these values...
    traced = jax.jit(bg.bn_stats_weights)
    for t in (1.0, 0.5, 0.4, 0.123, 0.77):
        np.testing.assert_allclose(np.asarray(traced(jnp.float32(t))), np.asarray(bg.bn_stats_weights(t)), atol=2e-6)
    # ...but not right next to a grid value, where float32 and float64 round differently (documented)
    assert np.argmax(np.asarray(traced(jnp.float32(0.3)))) == 16 and np.asarray(bg.bn_stats_weights(0.3))[15] == 1


def test_bn_stats_weights_exact_rule() -> None:
    def host(t: float, n: int = 51) -> np.ndarray:
        coef, start = math.modf(t / (1.0 / (n - 1)))
        w = np.zeros(n)
        i = int(start)
        if coef:
            w[i], w[i + 1] = coef, 1 - coef
        else:
            w[i] = 1.0
        return w

    for t in (1.0, 0.5, 0.4, 0.3, 0.14, 0.123, 0.02, 0.001, 0.999):
        np.testing.assert_allclose(np.asarray(bg.bn_stats_weights(t)), host(t), rtol=0, atol=1e-7)
    # 0.14 / 0.02 is 7.000000000000001 in float64: the package then uses (almost only) row 8, and so do we
    assert np.argmax(np.asarray(bg.bn_stats_weights(0.14))) == 8
    assert np.asarray(bg.bn_stats_weights(0.4))[20] == 1.0
    assert np.asarray(bg.bn_stats_weights(1.0, 11))[10] == 1.0
    for bad in (0.0, -0.5, 1.5, float("nan"), "x", [0.5, 0.6]):
        with pytest.raises(ParamError):
            bg.bn_stats_weights(bad)


def test_parameter_paths_are_the_packages_state_dict_keys(models, net128) -> None:
    _, raw = net128
    _, state, graphdef, model_state = models["legacy"]
    flat = {".".join(map(str, p)): v for p, v in nnx.to_flat_state(model_state)}
    expect = {
        k.replace(".weight_orig", ".weight"): v.shape
        for k, v in raw.items()
        if not k.endswith((".weight_u", ".weight_v"))
    }
    assert {k: tuple(v.shape) for k, v in flat.items()} == expect
    assert list(state) == list(expect)  # converter keeps state_dict order
    assert "generator.layers.8.snconv1x1_theta.weight" in flat and "generator.layers.8.gamma" in flat
    assert isinstance(flat["generator.layers.0.bn_0.running_means"], bg.Buffer)
    assert isinstance(flat["generator.layers.0.conv_1.weight"], nnx.Param)
    assert isinstance(flat["generator.bn.running_vars"], bg.Buffer)
    model = nnx.merge(graphdef, model_state)
    assert (model.z_dim, model.c_dim, model.img_resolution) == (128, 1000, 128)


def test_spectral_norm_uses_the_stored_vectors(net128) -> None:
    """σ = u·(W v) with the stored u, v (torch eval mode), which here is not the largest singular value."""
    _, raw = net128
    w, u, v = (raw[f"generator.conv_to_rgb.weight_{s}"] for s in ("orig", "u", "v"))
    folded = conv.fold_spectral_norm(w, u, v)
    wm = w.astype(np.float64).reshape(w.shape[0], -1)
    np.testing.assert_allclose(folded, w / (u.astype(np.float64) @ wm @ v.astype(np.float64)), rtol=1e-6)
    assert abs(float(u @ wm @ v) / np.linalg.norm(wm, 2) - 1) > 1e-3
    with pytest.raises(ConversionError, match="spectral norm"):
        conv.fold_spectral_norm(w, np.zeros_like(u), v)


@pytest.mark.slow
def test_256_layer_structure(tmp_path) -> None:
    cfg = bc.biggan_config(256, channel_width=4)
    raw = bc.random_state(cfg, seed=3)
    config, state = conv.parse_biggan(bc.write_checkpoint(tmp_path / "b256", cfg, raw, "zip"))
    assert len(config["layers"]) == 12 and conv.image_size(config) == 256
    model = bg.from_state(config, state)
    z, c = _inputs(0.4, n=1)
    out = np.asarray(model(z, c, 0.4))  # the module's own call (eager), truncation a plain float
    chex.assert_shape(out, (1, 256, 256, 3))
    _close(out, ref.biggan(cfg, raw, np.asarray(z), np.asarray(c), 0.4))


def test_512_config_shapes() -> None:
    cfg = conv.read_config(bc.biggan_config(512, channel_width=128))
    shapes = conv.checkpoint_shapes(cfg)
    assert conv.image_size(cfg) == 512
    assert shapes["generator.gen_z.weight_orig"] == (4 * 4 * 16 * 128, 256)
    assert shapes["generator.layers.8.snconv1x1_theta.weight_orig"] == (64, 512, 1, 1)  # attention at 4·128 ch
    assert shapes["generator.layers.14.conv_3.weight_orig"] == (128, 32, 1, 1)
    assert shapes["generator.layers.0.bn_0.running_means"] == (51, 2048)
    assert shapes["embeddings.weight"] == (128, 1000)
    # 14 blocks × (4 batch norms × 8 tensors + 4 convs × 4) + the attention's 4 convs × 3 + gamma
    assert len([k for k in shapes if k.startswith("generator.layers.")]) == 14 * 48 + 13


# --------------------------------------------------------------------------------------------------------------
# Paths, configs and wrong inputs.


def test_bin_with_config_beside_and_package_cache_names(folders, tmp_path) -> None:
    config, state = conv.parse_biggan(folders["legacy"] / "pytorch_model.bin")
    assert len(state) == len(conv.state_shapes(config))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "biggan-deep-128-pytorch_model.bin").write_bytes((folders["zip"] / "pytorch_model.bin").read_bytes())
    (cache / "biggan-deep-128-config.json").write_text((folders["zip"] / "config.json").read_text())
    _, state2 = conv.parse_biggan(cache / "biggan-deep-128-pytorch_model.bin")
    for k in state:
        np.testing.assert_array_equal(state[k], state2[k])


def test_missing_files_give_clear_errors(folders, tmp_path) -> None:
    with pytest.raises(SourceError, match="not found"):
        conv.parse_biggan(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="pytorch_model.bin"):
        conv.parse_biggan(tmp_path / "empty")
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(SourceError, match="config.json"):
        conv.parse_biggan(lone / "pytorch_model.bin")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"channel_width": 8}, "but config.json says"),
        ({"attention_layer_position": 3}, "does not match its config.json"),
        ({"layers": bc.LAYERS_128[:-1]}, "1×channel_width"),
        ({"layers": [[False, 16, 16], [True, 16, 5], [True, 5, 1]]}, "keeps its width or halves"),
        ({"z_dim": "128"}, "z_dim"),
        ({"eps": 0}, "eps"),
        ({"output_dim": 256}, "output_dim"),
    ],
)
def test_config_mismatch_or_nonsense_is_refused(folders, tmp_path, change, match) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes((folders["legacy"] / "pytorch_model.bin").read_bytes())
    cfg = json.loads((folders["legacy"] / "config.json").read_text()) | change
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConversionError, match=match):
        conv.parse_biggan(folder)


def test_unknown_config_keys_are_ignored_like_the_package(folders, tmp_path) -> None:
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes((folders["zip"] / "pytorch_model.bin").read_bytes())
    cfg = json.loads((folders["zip"] / "config.json").read_text()) | {"comment": "from the hub"}
    (folder / "config.json").write_text(json.dumps(cfg))
    config, _ = conv.parse_biggan(folder)
    assert "comment" not in config


def test_wrong_tensor_shape_or_missing_tensor(net128, tmp_path) -> None:
    cfg, raw = net128
    bad = dict(raw)
    bad["generator.layers.3.conv_1.bias"] = np.zeros(3, np.float32)
    with pytest.raises(ConversionError, match=r"conv_1.bias has shape \(3,\)"):
        conv.parse_biggan(bc.write_checkpoint(tmp_path / "a", cfg, bad, "zip"))
    missing = {k: v for k, v in raw.items() if k != "generator.layers.2.bn_1.scale.weight_v"}
    with pytest.raises(ConversionError, match="missing 1"):
        conv.parse_biggan(bc.write_checkpoint(tmp_path / "b", cfg, missing, "legacy"))
    with pytest.raises(ConversionError, match=r"generator.bn.weight: expected shape \(4,\)"):
        bg.from_state(
            conv.read_config(cfg),
            {**conv.convert_state(conv.read_config(cfg), raw, "x"), "generator.bn.weight": np.zeros(2, np.float32)},
        )


# --------------------------------------------------------------------------------------------------------------
# Malicious pytorch_model.bin: refused, nothing executed, nothing written.


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _zip(records: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for name, data in records:
            zf.writestr(name, data)
    return raw.getvalue()


def _evil_payloads(canary: Path, good_zip: bytes, good_legacy: bytes) -> dict[str, tuple[bytes, type]]:
    cmd = f"touch {canary}"
    evil_pkl = pickle.dumps({"embeddings.weight": _Reduce(os.system, cmd)}, protocol=2)
    zf = zipfile.ZipFile(io.BytesIO(good_zip))
    records = [(i.filename, zf.read(i)) for i in zf.infolist()]
    pkl_name = next(n for n, _ in records if n.endswith("/data.pkl"))
    data_pkl = dict(records)[pkl_name]

    def with_pkl(pkl: bytes, extra: list | None = None) -> bytes:
        return _zip([(n, pkl if n == pkl_name else d) for n, d in records] + (extra or []))

    # the first tensor's storage key '0' redirected outside data/ (same length pickle edits)
    outside = data_pkl.replace(b"X\x01\x00\x00\x000", b"X\x0a\x00\x00\x00../version", 1)
    # a tensor declared larger than the bytes its storage entry holds: the first numel 128000 -> 1280000
    bigger = data_pkl.replace(struct.pack("<i", 128000), struct.pack("<i", 1280000), 1)
    assert outside != data_pkl and bigger != data_pkl
    legacy_evil = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    return {
        "zip: os.system in data.pkl": (with_pkl(evil_pkl), PickleSecurityError),
        "zip: eval in data.pkl": (
            with_pkl(pickle.dumps(_Reduce(eval, f"__import__('os').system('{cmd}')"), protocol=2)),
            PickleSecurityError,
        ),
        "legacy: os.system in the state pickle": (legacy_evil + evil_pkl, PickleSecurityError),
        "legacy: os.system instead of the magic": (
            pickle.dumps(_Reduce(os.system, cmd), protocol=2),
            PickleSecurityError,
        ),
        "zip: storage key pointing outside the archive": (with_pkl(outside), PickleSecurityError),
        "zip: entry outside the archive folder": (with_pkl(data_pkl, [("../../evil", b"x")]), ConversionError),
        "zip: declared size larger than the data": (with_pkl(bigger), ConversionError),
        "zip: compressed (zip bomb shape) entry": (_zip_deflated(records), ConversionError),
        "legacy: declared size larger than the data": (
            good_legacy.replace(struct.pack("<i", 128000), struct.pack("<i", 1280000), 1),
            ConversionError,
        ),
        "legacy: truncated": (good_legacy[:-100], ConversionError),
    }


def _zip_deflated(records: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in records:
            zf.writestr(name, data)
    return raw.getvalue()


def _payload_names() -> list[str]:
    fake = {"a": np.zeros(128000, np.float32)}
    return list(_evil_payloads(Path("/nonexistent"), bc.torch_save_zip(fake), bc.torch_save_legacy(fake)))


@pytest.mark.slow
@pytest.mark.parametrize("name", _payload_names())
def test_malicious_checkpoint_refused_without_side_effect(folders, tmp_path, name) -> None:
    canary = tmp_path / "canary"
    good = (folders["zip"] / "pytorch_model.bin").read_bytes()
    data, err = _evil_payloads(canary, good, (folders["legacy"] / "pytorch_model.bin").read_bytes())[name]
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text((folders["zip"] / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(data)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(err) as info:
        conv.parse_biggan(folder)
    assert "Traceback" not in str(info.value) and "pytorch_model.bin" in str(info.value)
    assert not canary.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_payload_is_live_with_stdlib_pickle(tmp_path) -> None:
    """Control: the payload does run under the standard unpickler, so the refusals above prove something."""
    canary = tmp_path / "control"
    pickle.loads(pickle.dumps({"w": _Reduce(os.system, f"touch {canary}")}, protocol=2))
    assert canary.exists()


def test_no_torch_imported() -> None:
    assert "torch" not in sys.modules


# --------------------------------------------------------------------------------------------------------------
# The user API: load_generator (cached conversion), BigGANGenerator, .safetensors.


def test_load_generator_api_matches_the_oracle(folders, net128) -> None:
    import lsd_jax
    from lsd_jax.models.imagenet import one_hot
    from lsd_jax.styles.generator import BigGANGenerator

    cfg, raw = net128
    g = lsd_jax.load_generator(folders["zip"])
    assert isinstance(g, BigGANGenerator) and g.family == "biggan-deep"
    assert (g.z_dim, g.c_dim, g.img_resolution) == (128, 1000, 128)
    z = g.truncated_noise(2, truncation=0.4, seed=3)
    chex.assert_shape(z, (2, 128))
    assert float(jnp.abs(z).max()) <= 0.8 + 1e-6  # truncation × truncnorm(-2, 2)
    c = one_hot(["goldfish", "daisy"])
    out = np.asarray(g(z, c, truncation_psi=0.4))
    chex.assert_shape(out, (2, 128, 128, 3))
    assert out.dtype == np.float32
    _close(out, ref.biggan(cfg, raw, np.asarray(z), c, 0.4))
    before = bg.generate._cache_size()
    g(z, c, truncation_psi=0.77).block_until_ready()  # a new truncation: an input, not a recompile
    assert bg.generate._cache_size() == before
    g.module.generator.gen_z.bias[...] = g.module.generator.gen_z.bias[...] + 1.0  # edit a layer: the next call sees it
    assert np.abs(np.asarray(g(z, c, truncation_psi=0.4)) - out).max() > 1e-3
    with pytest.raises(ParamError, match=r"c must be an \(N, 1000\) class mixture"):
        g(z, c[:1])
    with pytest.raises(ParamError, match="truncation"):
        g(z, c, truncation_psi=0.0)


def test_conversion_is_cached_by_both_files(folders, tmp_path) -> None:
    import lsd_jax
    from lsd_jax.store import weights

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes((folders["legacy"] / "pytorch_model.bin").read_bytes())
    (folder / "config.json").write_text((folders["legacy"] / "config.json").read_text())
    sha = weights.biggan_sha256(folder)
    assert not weights.cache_path(sha).exists()
    g1 = lsd_jax.load_generator(folder)
    assert weights.cache_path(sha).is_file()
    _, _, sha_bin = weights.load_with_hash(folder / "pytorch_model.bin")  # the .bin: the same key, a cache hit
    assert sha_bin == sha
    # a changed config.json (same weights) is another conversion, never the cached one
    cfg = json.loads((folder / "config.json").read_text()) | {"comment": "edited"}
    (folder / "config.json").write_text(json.dumps(cfg))
    sha2 = weights.biggan_sha256(folder)
    assert sha2 != sha and not weights.cache_path(sha2).exists()
    lsd_jax.load_generator(folder)
    assert weights.cache_path(sha2).is_file()
    # the cache entry holds what a fresh conversion gives, and converts to a .safetensors file that loads back
    out = weights.convert(folder, tmp_path / "bg.safetensors")
    g2 = lsd_jax.load_generator(out)
    _, s1 = g1.split()
    _, s2 = g2.split()
    jax.tree.map(np.testing.assert_array_equal, s1, s2)
    config, _ = weights.load(out)
    assert config["family"] == "biggan-deep" and config["layers"] == conv.read_config(cfg)["layers"]
