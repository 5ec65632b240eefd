"""lsd_jax.models.stylegan2 / lsd_jax.styles.generator against the independent NumPy oracle in
tests/reference_stylegan2.py.

Bar: max |jax − oracle| ≤ 1e-4 · max(1, max |oracle|) for ws and images, on random states whose biases,
noise strengths/consts, affine biases and w_avg are all randomised (tests/sg2_state.py).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_stylegan2 as ref
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from sg2_state import random_sg2_state, setup_filter, sg2_config

from lsd_jax.errors import StyleError
from lsd_jax.models import ops
from lsd_jax.models import stylegan2 as sg2
from lsd_jax.params import make_params
from lsd_jax.styles import generator as genmod
from lsd_jax.styles.style import Style, render_settings

TOL = 1e-4


def assert_close_to_oracle(got, want, what: str = "") -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    chex.assert_equal_shape([got, want])
    chex.assert_tree_all_finite(got)
    err = float(np.abs(got - want).max())
    bound = TOL * max(1.0, float(np.abs(want).max()))
    assert err <= bound, f"{what}: max |diff| {err:.3g} > {bound:.3g} (max |oracle| {np.abs(want).max():.3g})"
    return err


@functools.cache
def _model(frozen: tuple, seed: int = 0):
    cfg = sg2_config(**dict(frozen))
    state = random_sg2_state(cfg, seed)
    return cfg, state, genmod.Generator.from_state(cfg, state)


def model(seed: int = 0, **overrides):
    items = ((k, tuple(v) if isinstance(v, list) else v) for k, v in overrides.items())
    return _model(tuple(sorted(items)), seed)


def latents(cfg: dict, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, cfg["z_dim"])).astype(np.float32)
    c = rng.standard_normal((n, cfg["c_dim"])).astype(np.float32) if cfg["c_dim"] else None
    return z, c


# ---------------------------------------------------------------------------------------------------------------
# state builder and static structure
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("res", [4, 8, 16, 32, 64, 256, 1024])
def test_num_ws(res):
    spec = sg2.spec_from_config(sg2_config(img_resolution=res))
    assert spec.num_ws == 2 * int(np.log2(res)) - 2
    assert ref.num_ws(sg2_config(img_resolution=res)) == spec.num_ws


def test_generator_attributes():
    cfg, _, gen = model(c_dim=5)
    assert (gen.z_dim, gen.c_dim, gen.w_dim, gen.img_resolution, gen.num_ws) == (32, 5, 32, 32, 8)
    assert gen.config == cfg
    assert "stylegan2" in repr(gen)


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_random_state_keys_and_randomisation(arch):
    cfg = sg2_config(architecture=arch, img_resolution=16, c_dim=3)
    state = random_sg2_state(cfg, 0)
    assert all(v.dtype == np.float32 for v in state.values())
    assert list(state)[0] == "synthesis.b4.const" and "mapping.w_avg" in state
    assert {"mapping.embed.weight", "mapping.embed.bias", "mapping.fc0.weight", "mapping.fc1.bias"} <= set(state)
    for res in (8, 16):
        assert (f"synthesis.b{res}.skip.weight" in state) == (arch == "resnet")
        assert (f"synthesis.b{res}.torgb.weight" in state) == (arch == "skip" or res == 16)
        assert state[f"synthesis.b{res}.conv0.noise_const"].shape == (res, res)
        assert state[f"synthesis.b{res}.conv0.noise_strength"].shape == ()
    assert "synthesis.b4.conv0.weight" not in state
    np.testing.assert_allclose(state["synthesis.b8.resample_filter"], setup_filter([1, 3, 3, 1]))
    np.testing.assert_allclose(state["synthesis.b8.resample_filter"].sum(), 1.0, rtol=1e-6)
    for k in ("synthesis.b4.conv1.noise_strength", "synthesis.b8.conv1.bias", "mapping.w_avg", "mapping.fc0.bias"):
        assert np.all(state[k] != 0), k
    assert not np.allclose(state["synthesis.b8.conv1.affine.bias"], 1.0)
    # deterministic per seed
    again = random_sg2_state(cfg, 0)
    assert all(np.array_equal(state[k], again[k]) for k in state)


def test_sg2_config_overrides():
    cfg = sg2_config(num_layers=8, architecture="resnet", synthesis_kwargs={"conv_clamp": 256}, z_dim=16)
    assert cfg["mapping_kwargs"]["num_layers"] == 8 and cfg["z_dim"] == 16
    assert cfg["synthesis_kwargs"]["architecture"] == "resnet" and cfg["synthesis_kwargs"]["conv_clamp"] == 256
    with pytest.raises(KeyError):
        sg2_config(bogus=1)


# ---------------------------------------------------------------------------------------------------------------
# mapping
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("c_dim", [0, 5])
@pytest.mark.parametrize("num_layers", [2, 8])
@pytest.mark.parametrize("psi,cutoff", [(1.0, None), (0.7, None), (0.7, 3), (-0.5, 1)])
def test_mapping_matches_oracle(c_dim, num_layers, psi, cutoff):
    cfg, state, gen = model(c_dim=c_dim, num_layers=num_layers, z_dim=48)
    z, c = latents(cfg, 4)
    want = ref.mapping(cfg, state, z, c, psi, cutoff)
    got = gen.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
    chex.assert_shape(got, (4, gen.num_ws, gen.w_dim))
    assert got.dtype == jnp.float32
    assert_close_to_oracle(got, want, "ws")
    # the module called eagerly agrees too
    assert_close_to_oracle(gen.module.mapping(z, c, psi, cutoff), want, "ws (eager)")
    if cutoff is not None:  # layers past the cutoff are untruncated
        np.testing.assert_array_equal(np.asarray(got)[:, cutoff:], np.asarray(gen.mapping(z, c))[:, cutoff:])


def test_mapping_psi_one_is_exact_and_psi_is_traced():
    cfg, state, gen = model()
    z, _ = latents(cfg, 3)
    w1 = np.asarray(gen.mapping(z))
    np.testing.assert_array_equal(np.asarray(gen.mapping(z, truncation_psi=jnp.float32(1.0))), w1)
    w0 = np.asarray(gen.mapping(z, truncation_psi=0.0))
    np.testing.assert_allclose(w0, np.broadcast_to(state["mapping.w_avg"], w0.shape), atol=1e-6)


def test_mapping_rejects_bad_inputs():
    cfg, _, gen = model(c_dim=5)
    z, c = latents(cfg, 2)
    with pytest.raises(ValueError, match="conditional"):
        gen.mapping(z)
    with pytest.raises(ValueError):
        gen.mapping(z[:, :5], c)


# ---------------------------------------------------------------------------------------------------------------
# full generator vs oracle
# ---------------------------------------------------------------------------------------------------------------

IMAGE_CASES = [
    # (config overrides, psi, cutoff, noise_mode)
    (dict(), 1.0, None, "const"),
    (dict(c_dim=5, conv_clamp=256), 0.7, None, "const"),
    (dict(architecture="resnet", num_layers=8), 1.0, None, "none"),
    (dict(architecture="resnet", c_dim=5, conv_clamp=256), 0.7, 4, "const"),
    (dict(architecture="orig", conv_clamp=2.0), 1.0, None, "const"),  # small clamp: really clamps
    (dict(img_resolution=64, num_layers=8), 0.7, 5, "const"),
    (dict(img_resolution=64, architecture="resnet", c_dim=5, conv_clamp=256), 1.0, None, "none"),
    (dict(img_resolution=64, conv_clamp=1.5, z_dim=64, w_dim=48), 0.7, None, "const"),
    (dict(img_resolution=16, resample_filter=[1, 2, 3, 4]), 1.0, None, "const"),  # asymmetric FIR
    (dict(img_resolution=16, architecture="resnet", resample_filter=[1, 2, 1]), 1.0, None, "const"),  # odd FIR
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides,psi,cutoff,noise_mode",
    IMAGE_CASES,
    ids=[
        f"{i}-{'-'.join(f'{k}={v}' for k, v in c[0].items()) or 'default'}-psi{c[1]}-{c[3]}"
        for i, c in enumerate(IMAGE_CASES)
    ],
)
def test_images_match_oracle(overrides, psi, cutoff, noise_mode):
    cfg, state, gen = model(**overrides)
    z, c = latents(cfg, 3)
    ws_ref = ref.mapping(cfg, state, z, c, psi, cutoff)
    want = ref.synthesis(cfg, state, ws_ref, noise_mode).transpose(0, 2, 3, 1)
    got = gen(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode)
    r = cfg["img_resolution"]
    chex.assert_shape(got, (3, r, r, 3))
    assert got.dtype == jnp.float32
    assert_close_to_oracle(got, want, "images")
    # synthesis alone, fed the oracle's ws
    assert_close_to_oracle(gen.synthesis(ws_ref.astype(np.float32), noise_mode=noise_mode), want, "synthesis")
    if overrides.get("architecture") == "orig" and cfg["synthesis_kwargs"]["conv_clamp"] is not None:
        assert np.abs(np.asarray(got)).max() <= cfg["synthesis_kwargs"]["conv_clamp"] + 1e-5  # one clamped ToRGB


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["skip", "resnet"])
def test_style_mixing_per_layer_ws(arch):
    """Every layer gets a different w (style mixing): catches ws-window / layer-order errors."""
    cfg, state, gen = model(architecture=arch, img_resolution=64, c_dim=5)
    rng = np.random.default_rng(7)
    zs = rng.standard_normal((gen.num_ws, 2, cfg["z_dim"])).astype(np.float32)
    c = rng.standard_normal((2, 5)).astype(np.float32)
    per_z = np.stack([ref.mapping(cfg, state, zs[i], c)[:, 0] for i in range(gen.num_ws)], axis=1)
    ws = np.asarray(per_z, np.float32)
    want = ref.synthesis(cfg, state, ws, "const").transpose(0, 2, 3, 1)
    assert_close_to_oracle(gen.synthesis(ws), want, "mixed ws")
    # arbitrary random ws as well (far from the mapping's range)
    ws2 = rng.standard_normal(ws.shape).astype(np.float32) * 2
    want2 = ref.synthesis(cfg, state, ws2, "const").transpose(0, 2, 3, 1)
    assert_close_to_oracle(gen.synthesis(ws2), want2, "random ws")


@pytest.mark.slow
def test_images_match_oracle_128():
    cfg, state, gen = model(
        img_resolution=128, channel_base=2048, channel_max=64, c_dim=5, conv_clamp=256, num_layers=8, z_dim=64, w_dim=64
    )
    z, c = latents(cfg, 2)
    want = ref.generate(cfg, state, z, c, truncation_psi=0.7, truncation_cutoff=6)
    got = gen(z, c, truncation_psi=0.7, truncation_cutoff=6)
    assert_close_to_oracle(got, want, "images 128")


# ---------------------------------------------------------------------------------------------------------------
# resampling pieces vs the oracle's explicit upfirdn2d
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    taps=st.lists(st.integers(1, 5), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_upsample2d_matches_upfirdn2d(h, w, taps, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    f = np.outer(taps, taps) / np.sum(taps) ** 2
    want = ref.upsample2d(x, f).transpose(0, 2, 3, 1)
    norm = tuple(float(t) for t in np.asarray(taps, np.float64) / np.sum(taps))
    got = ops.upsample2d(jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32), norm)
    chex.assert_shape(got, (2, 2 * h, 2 * w, 3))
    assert_close_to_oracle(got, want, "upsample2d")


# ---------------------------------------------------------------------------------------------------------------
# noise modes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_noise_modes():
    cfg, state, gen = model()
    z, _ = latents(cfg, 3)
    ws = gen.mapping(z)
    const = np.asarray(gen.synthesis(ws, "const"))
    none = np.asarray(gen.synthesis(ws, "none"))
    k = jax.random.key(3)
    r1 = np.asarray(gen.synthesis(ws, "random", key=k))
    chex.assert_shape(r1, (3, 32, 32, 3))
    chex.assert_tree_all_finite(r1)
    np.testing.assert_array_equal(r1, np.asarray(gen.synthesis(ws, "random", key=k)))  # deterministic
    r2 = np.asarray(gen.synthesis(ws, "random", key=jax.random.key(4)))
    assert np.abs(r1 - r2).max() > 1e-3 and np.abs(r1 - const).max() > 1e-3 and np.abs(const - none).max() > 1e-3
    # raw uint32 keys work too
    chex.assert_shape(gen.synthesis(ws, "random", key=jax.random.PRNGKey(0)), (3, 32, 32, 3))
    # one key per sample: a sample's noise does not depend on the rest of the batch
    keys = jax.random.split(jax.random.key(5), 3)
    full = np.asarray(gen.synthesis(ws, "random", key=keys))
    one = np.asarray(gen.synthesis(ws[1:2], "random", key=keys[1:2]))
    np.testing.assert_allclose(one[0], full[1], atol=1e-5)
    with pytest.raises(ValueError, match="key"):
        gen.synthesis(ws, "random")
    with pytest.raises(ValueError, match="noise_mode"):
        gen.synthesis(ws, "bogus")


@pytest.mark.slow
def test_random_noise_scales_with_noise_strength():
    cfg = sg2_config(img_resolution=16)
    state = random_sg2_state(cfg, 2)
    quiet = {k: (np.zeros_like(v) if k.endswith("noise_strength") else v) for k, v in state.items()}
    gen = genmod.Generator.from_state(cfg, quiet)
    z, _ = latents(cfg, 2)
    ws = gen.mapping(z)
    none = np.asarray(gen.synthesis(ws, "none"))
    # equal up to XLA fusion rounding (x·d + 0 vs x·d)
    np.testing.assert_allclose(np.asarray(gen.synthesis(ws, "random", key=jax.random.key(0))), none, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gen.synthesis(ws, "const")), none, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# jit behaviour, functional forms
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compiles_once_per_shape():
    traces = []
    before = genmod._generate_jit._cache_size()
    cfg, state, gen = model(z_dim=24, img_resolution=16)  # a spec no other test compiles
    z, _ = latents(cfg, 2)
    a = gen(z)
    gen(z * 2, truncation_psi=0.5)  # new values, new psi: no retrace
    other = genmod.Generator.from_state(cfg, random_sg2_state(cfg, 9))  # new params, same shapes
    b = other(z, truncation_psi=0.8, truncation_cutoff=3)  # a new cutoff: no retrace either
    traces = [None] * (genmod._generate_jit._cache_size() - before)
    assert len(traces) == 1
    assert not np.allclose(np.asarray(a), np.asarray(b))
    gen(latents(cfg, 3)[0])  # a new batch size compiles once more
    gen(latents(cfg, 3, seed=5)[0])
    traces = [None] * (genmod._generate_jit._cache_size() - before)
    assert len(traces) == 2


@pytest.mark.slow
def test_functional_forms():
    cfg, state, gen = model(c_dim=5)
    z, c = latents(cfg, 2)
    img = np.asarray(gen(z, c, truncation_psi=0.6))
    graphdef, params = gen.split()
    np.testing.assert_allclose(
        np.asarray(genmod.generate_fn(graphdef, params, z, c, truncation_psi=0.6)), img, atol=1e-5
    )
    ws = genmod.mapping_fn(graphdef, params, z, c, 0.6)
    np.testing.assert_allclose(np.asarray(genmod.synthesis_fn(graphdef, params, ws)), img, atol=1e-5)
    # a user's own jit with the state as an argument and the graphdef closed over
    f = jax.jit(lambda p, z, c: nnx.merge(graphdef, p)(z, c, 0.6))
    np.testing.assert_allclose(np.asarray(f(params, z, c)), img, atol=1e-4)
    # spec is hashable and usable as a static argument
    assert hash(sg2.spec_from_config(cfg)) == hash(gen.spec)


def test_from_state_rejects_bad_states():
    cfg = sg2_config(img_resolution=8)
    state = random_sg2_state(cfg, 0)
    with pytest.raises(KeyError, match="b8.conv0.weight"):
        sg2.from_state(cfg, {k: v for k, v in state.items() if k != "synthesis.b8.conv0.weight"})
    bad = dict(state, **{"synthesis.b8.conv1.bias": np.zeros(7, np.float32)})
    with pytest.raises(ValueError, match="conv1.bias"):
        sg2.from_state(cfg, bad)
    bad = dict(state, **{"synthesis.b8.resample_filter": setup_filter([1, 1])})
    with pytest.raises(ValueError, match="resample_filter"):
        sg2.from_state(cfg, bad)
    with pytest.raises(ValueError, match="unexpected tensor 'synthesis.b8.conv9.weight'"):
        sg2.from_state(cfg, dict(state, **{"synthesis.b8.conv9.weight": np.zeros(3, np.float32)}))
    with pytest.raises(ValueError, match="family"):
        sg2.spec_from_config(dict(cfg, family="stylegan3"))
    with pytest.raises(ValueError, match="architecture"):
        sg2.spec_from_config(sg2_config(architecture="bogus"))


# ---------------------------------------------------------------------------------------------------------------
# Style adapter and loader
# ---------------------------------------------------------------------------------------------------------------


def _settings(**kw):
    return render_settings(make_params(**kw))


@pytest.mark.slow
def test_stylegan_style_const():
    cfg, state, gen = model(c_dim=5)
    style = genmod.stylegan_style(gen, name="rand")
    assert isinstance(style, Style)
    assert (style.name, style.z_dim, style.c_dim, style.native_size) == ("rand", 32, 5, (32, 32))
    assert style.w_control and style.noise and not style.transform and not style.host
    chex.assert_trees_all_equal(style.variables["model"], gen.state)
    z, c = latents(cfg, 2)
    out = style.images({"z": z, "c": c}, (512, 512), _settings(truncation_psi=0.7, truncation_cutoff=4))  # size ignored
    chex.assert_shape(out, (2, 32, 32, 3))
    want = ref.generate(cfg, state, z, c, truncation_psi=0.7, truncation_cutoff=4)
    assert_close_to_oracle(out, want, "style.apply")


@pytest.mark.slow
def test_stylegan_style_random_noise_is_pure():
    cfg, _, gen = model()
    style = genmod.stylegan_style(gen)
    rand = _settings(noise_mode="random")
    z, _ = latents(cfg, 3)
    c = np.zeros((3, 0), np.float32)
    a = np.asarray(style.images({"z": z, "c": c}, (32, 32), rand))
    np.testing.assert_array_equal(a, np.asarray(style.images({"z": z, "c": c}, (32, 32), rand)))
    # each sample's noise is a function of its own z only
    b = np.asarray(style.images({"z": z[::-1].copy(), "c": c}, (32, 32), rand))
    np.testing.assert_allclose(b[::-1], a, atol=1e-5)
    z2 = z.copy()
    z2[0, 0] += 1e-3  # a tiny change in z changes the noise (not just the image, smoothly)
    const = _settings(noise_mode="const")
    d_rand = np.abs(np.asarray(style.images({"z": z2, "c": c}, (32, 32), rand))[0] - a[0]).max()
    base = np.asarray(style.images({"z": z, "c": c}, (32, 32), const))
    d_const = np.abs(np.asarray(style.images({"z": z2, "c": c}, (32, 32), const))[0] - base[0]).max()
    assert d_rand > 10 * d_const
    assert np.abs(a - base).max() > 1e-3


def test_load_generator(monkeypatch, tmp_path):
    from lsd_jax.store import weights as converters  # load_generator reads weights through lsd_jax.store.weights.load

    cfg = sg2_config(img_resolution=8)
    state = random_sg2_state(cfg, 0)
    seen = []

    def fake_load(path, isolated=False):
        seen.append(path)
        return cfg, state

    monkeypatch.setattr(converters, "load", fake_load)
    gen = genmod.load_generator(tmp_path / "g.pkl")
    assert isinstance(gen, genmod.Generator) and gen.img_resolution == 8 and seen == [tmp_path / "g.pkl"]
    monkeypatch.setattr(converters, "load", lambda p, isolated=False: (dict(cfg, family="stylegan3"), state))
    with pytest.raises(StyleError, match="stylegan3"):
        genmod.load_generator(tmp_path / "g.pkl")
    monkeypatch.setattr(converters, "load", lambda p, isolated=False: (cfg, {}))
    with pytest.raises(StyleError, match="missing"):
        genmod.load_generator(tmp_path / "g.pkl")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["skip", "resnet"])
def test_polyphase_up_conv_matches_the_oracle(arch, monkeypatch):
    """The polyphase transposed conv (used for large activations) on every up layer."""
    monkeypatch.setattr(ops, "POLYPHASE_MIN_SIZE", 0)
    cfg = sg2_config(img_resolution=32, architecture=arch, c_dim=3)
    state = random_sg2_state(cfg, 21)
    gen = genmod.Generator.from_state(cfg, state)
    ws = np.random.default_rng(2).standard_normal((2, gen.num_ws, gen.w_dim)).astype(np.float32)
    got = np.asarray(gen.module.synthesis(ws))
    want = ref.synthesis(cfg, state, ws).transpose(0, 2, 3, 1)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
