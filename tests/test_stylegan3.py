"""lsd_jax.models.stylegan3 / lsd_jax.styles.generator (StyleGAN3) against the independent NumPy oracle in
tests/reference_stylegan3.py, the per-sample input transform, and NVIDIA-format SG3 pickles end to end.

Bar: max |jax − oracle| ≤ 1e-4 · max(1, max |oracle|), on random states (tests/sg3_state.py) whose weights,
biases, input affine, magnitude_ema and w_avg are randomised and whose filters and per-layer attributes are
derived the way NVIDIA's code derives them.
"""

from __future__ import annotations

import functools
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import nvidia_pickles as nv
import nvidia_pickles_sg3 as nv3
import pytest
import reference_stylegan3 as ref
from flax import nnx
from sg3_state import derive_synthesis, random_sg3_state, sg3_config

import converters
from converters.errors import ConversionError, PickleSecurityError
from lsd_jax.errors import StyleError
from lsd_jax.models import stylegan3 as sg3
from lsd_jax.params import make_params
from lsd_jax.store import weights
from lsd_jax.styles import generator as genmod
from lsd_jax.styles.style import Style, render_settings

TOL = 1e-4
ERRORS: dict[str, float] = {}  # the largest error each comparison measured (for reports)


@pytest.fixture(scope="module", autouse=True)
def _report_errors():
    yield
    if ERRORS:  # shown with `pytest -s`
        print("\nmax |jax - oracle| per comparison:")
        for what, err in sorted(ERRORS.items()):
            print(f"  {what:40s} {err:.2e}")


def assert_close_to_oracle(got, want, what: str = "") -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    chex.assert_equal_shape([got, want])
    chex.assert_tree_all_finite(got)
    err = float(np.abs(got - want).max())
    bound = TOL * max(1.0, float(np.abs(want).max()))
    assert err <= bound, f"{what}: max |diff| {err:.3g} > {bound:.3g} (max |oracle| {np.abs(want).max():.3g})"
    ERRORS[what] = max(ERRORS.get(what, 0.0), err)
    return err


# Small configs: config-t / config-r, 16 px (all layers at sampling rate 16, 4 synthesis layers) and 32 px (a
# layer that doubles the sampling rate: up 4, 24-tap up filter), conditional or not.
CONFIGS = {
    "t16": dict(kind="t"),
    "r16": dict(kind="r"),
    "t32-cond": dict(kind="t", img_resolution=32, num_layers=6, c_dim=3),
    "r32-cond": dict(kind="r", img_resolution=32, num_layers=6, c_dim=4, z_dim=12, w_dim=8),
}


@functools.cache
def _model(name: str, seed: int = 0):
    cfg = sg3_config(**CONFIGS[name])
    state = random_sg3_state(cfg, seed)
    return cfg, state, genmod.Generator.from_state(cfg, state)


def latents(cfg: dict, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, cfg["z_dim"])).astype(np.float32)
    c = rng.standard_normal((n, cfg["c_dim"])).astype(np.float32) if cfg["c_dim"] else None
    return z, c


# ---------------------------------------------------------------------------------------------------------------
# configs, fixtures, static structure
# ---------------------------------------------------------------------------------------------------------------


def test_derivation_reproduces_nvidia_layer_names():
    """NVIDIA's released stylegan3-t 1024×1024 generators name their layers exactly like this."""
    cfg = sg3_config(img_resolution=1024, num_layers=14, channel_base=32768, channel_max=512)
    names = [L["name"] for L in cfg["synthesis_layers"]]
    assert names == [
        "L0_36_512",
        "L1_36_512",
        "L2_52_512",
        "L3_52_512",
        "L4_84_512",
        "L5_148_512",
        "L6_148_512",
        "L7_276_323",
        "L8_276_203",
        "L9_532_128",
        "L10_1044_81",
        "L11_1044_51",
        "L12_1044_32",
        "L13_1024_32",
        "L14_1024_3",
    ]
    spec = sg3.spec_from_config(cfg)
    assert spec.num_ws == 16 and spec.kind == "t"
    assert [L.up for L in spec.layers][:5] == [2, 2, 4, 2, 4]
    assert spec.layers[-1].is_torgb and spec.layers[-1].conv_kernel == 1 and spec.layers[-1].up_taps == 1


@pytest.mark.parametrize("kind", ["t", "r"])
def test_random_state_is_format_faithful(kind):
    cfg = sg3_config(kind=kind, img_resolution=32, num_layers=6, c_dim=2)
    state = random_sg3_state(cfg, 0)
    keys = list(state)
    assert keys[:6] == [
        "synthesis.input.weight",
        "synthesis.input.transform",
        "synthesis.input.freqs",
        "synthesis.input.phases",
        "synthesis.input.affine.weight",
        "synthesis.input.affine.bias",
    ]
    assert keys.index("mapping.w_avg") > keys.index("synthesis.L6_32_3.affine.bias")
    assert all(v.dtype == np.float32 for v in state.values())
    inp, layers = derive_synthesis(cfg)
    assert isinstance(inp["size"], np.ndarray) and isinstance(layers[0]["in_cutoff"], np.floating)
    assert isinstance(layers[0]["use_fp16"], np.bool_)
    C = inp["channels"]
    assert np.all(np.linalg.norm(state["synthesis.input.freqs"], axis=1) <= inp["bandwidth"] + 1e-6)
    np.testing.assert_array_equal(state["synthesis.input.transform"], np.eye(3, dtype=np.float32))
    assert state["synthesis.input.weight"].shape == (C, C)
    k = 1 if kind == "r" else 3
    for a in layers:
        p = f"synthesis.{a['name']}"
        assert state[f"{p}.weight"].shape == (a["out_channels"], a["in_channels"], a["conv_kernel"], a["conv_kernel"])
        assert a["conv_kernel"] == (1 if a["is_torgb"] else k)
        assert state[f"{p}.magnitude_ema"].shape == () and state[f"{p}.magnitude_ema"] > 0
        if a["is_torgb"]:
            assert f"{p}.up_filter" not in state and f"{p}.down_filter" not in state
            continue
        fu, fd = state[f"{p}.up_filter"], state[f"{p}.down_filter"]
        assert fu.shape == (a["up_taps"],) and fu.sum() == pytest.approx(1, abs=1e-5)
        radial = kind == "r" and not a["is_critically_sampled"]
        assert a["down_radial"] == radial
        assert fd.shape == ((a["down_taps"],) * (2 if radial else 1)) and fd.sum() == pytest.approx(1, abs=1e-5)
        np.testing.assert_allclose(fu, fu[::-1], atol=1e-7)  # linear phase
    assert not np.allclose(state["synthesis.input.affine.weight"], 0)  # NVIDIA inits it to 0: randomised here
    assert [L.down_radial for L in sg3.spec_from_config(cfg).layers] == [a["down_radial"] for a in layers]


def test_spec_rejects_inconsistent_configs():
    cfg = sg3_config()
    with pytest.raises(ValueError, match="family"):
        sg3.spec_from_config(dict(cfg, family="stylegan2"))
    with pytest.raises(ValueError, match="synthesis_layers"):
        sg3.spec_from_config({k: v for k, v in cfg.items() if k != "synthesis_layers"})
    bad = sg3_config()
    bad["synthesis_layers"][1]["padding"] = [9, 12, 9, 8]
    with pytest.raises(ValueError, match="out_size"):
        sg3.spec_from_config(bad)
    bad = sg3_config()
    bad["synthesis_layers"][2]["in_channels"] = 5
    with pytest.raises(ValueError, match="channels"):
        sg3.spec_from_config(bad)
    bad = sg3_config()
    del bad["synthesis_layers"][0]["up_taps"]
    with pytest.raises(ValueError, match="up_taps"):
        sg3.spec_from_config(bad)
    with pytest.raises(ValueError, match="num_layers"):
        sg3.spec_from_config(dict(cfg, synthesis_kwargs=dict(cfg["synthesis_kwargs"], num_layers=7)))


def test_from_state_rejects_bad_states():
    cfg = sg3_config()
    state = random_sg3_state(cfg, 0)
    with pytest.raises(KeyError, match="L1_36_8.up_filter"):
        sg3.from_state(cfg, {k: v for k, v in state.items() if k != "synthesis.L1_36_8.up_filter"})
    with pytest.raises(ValueError, match="L2_36_8.bias"):
        sg3.from_state(cfg, dict(state, **{"synthesis.L2_36_8.bias": np.zeros(7, np.float32)}))
    with pytest.raises(ValueError, match="magnitude_ema"):
        sg3.from_state(cfg, dict(state, **{"synthesis.L0_36_8.magnitude_ema": np.float32(0)}))
    with pytest.raises(ValueError, match="down_filter"):
        sg3.from_state(cfg, dict(state, **{"synthesis.L4_16_3.down_filter": np.ones(12, np.float32)}))


# ---------------------------------------------------------------------------------------------------------------
# against the oracle
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["t16", "t32-cond"])
@pytest.mark.parametrize("psi,cutoff", [(1.0, None), (0.7, None), (0.7, 3), (-0.5, 1)])
def test_mapping_matches_oracle(name, psi, cutoff):
    cfg, state, gen = _model(name)
    z, c = latents(cfg, 3)
    want = ref.mapping(cfg, state, z, c, psi, cutoff)
    got = gen.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
    chex.assert_shape(got, (3, cfg["synthesis_kwargs"]["num_layers"] + 2, cfg["w_dim"]))
    assert_close_to_oracle(got, want, "ws")
    if cutoff is not None:
        np.testing.assert_array_equal(np.asarray(got)[:, cutoff:], np.asarray(gen.mapping(z, c))[:, cutoff:])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("psi,cutoff", [(1.0, None), (0.7, None), (0.7, 4)])
def test_images_match_oracle(name, psi, cutoff):
    cfg, state, gen = _model(name)
    z, c = latents(cfg, 2)
    want = ref.generate(cfg, state, z, c, psi, cutoff)
    got = gen(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
    R = cfg["img_resolution"]
    chex.assert_shape(got, (2, R, R, 3))
    assert got.dtype == jnp.float32
    assert np.abs(want).max() > 0.05  # a meaningful image, not a collapsed one
    assert_close_to_oracle(got, want, f"images {name}")


@pytest.mark.slow
def test_clamp_path_matches_oracle():
    cfg = sg3_config(conv_clamp=0.4)
    state = random_sg3_state(cfg, 3)
    gen = genmod.Generator.from_state(cfg, state)
    z, _ = latents(cfg, 2)
    want = ref.generate(cfg, state, z)
    assert_close_to_oracle(gen(z), want, "images clamp")
    unclamped = ref.generate(
        dict(cfg, synthesis_layers=[dict(L, conv_clamp=None) for L in cfg["synthesis_layers"]]), state, z
    )
    assert np.abs(unclamped - want).max() > 0.05  # the clamp really bites


@pytest.mark.slow
def test_stored_transform_buffer_is_used():
    """A model whose ``transform`` buffer is not the identity (what NVIDIA's tools write)."""
    cfg = sg3_config(kind="r", c_dim=2)
    stored = np.linalg.inv(np.array([[np.cos(0.4), np.sin(0.4), 0.1], [-np.sin(0.4), np.cos(0.4), -0.05], [0, 0, 1]]))
    state = random_sg3_state(cfg, 5, transform=stored)
    gen = genmod.Generator.from_state(cfg, state)
    z, c = latents(cfg, 2)
    want = ref.generate(cfg, state, z, c)
    default = gen(z, c)
    assert_close_to_oracle(default, want, "images stored transform")
    identity = np.asarray(gen(z, c, transform=np.eye(3)))
    assert np.abs(identity - np.asarray(default)).max() > 0.05
    np.testing.assert_allclose(np.asarray(gen(z, c, transform=stored)), np.asarray(default), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t", "r"])
def test_images_match_oracle_nvidia_depth(kind):
    """NVIDIA's default depth (14 synthesis layers + ToRGB, 16 ws) at 64 px with few channels."""
    cfg = sg3_config(kind=kind, img_resolution=64, num_layers=14, c_dim=2, channel_base=128, channel_max=8)
    state = random_sg3_state(cfg, 1)
    gen = genmod.Generator.from_state(cfg, state)
    assert gen.num_ws == 16
    z, c = latents(cfg, 2)
    want = ref.generate(cfg, state, z, c, 0.7, 8)
    assert np.abs(want).max() > 0.05
    assert_close_to_oracle(gen(z, c, truncation_psi=0.7, truncation_cutoff=8), want, f"images {kind}64-14layers")


# ---------------------------------------------------------------------------------------------------------------
# noise_mode is accepted and ignored
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_noise_mode_has_no_effect():
    cfg, _, gen = _model("t16")
    z, _ = latents(cfg, 2)
    base = np.asarray(gen(z))
    for mode in ("const", "random", "none"):
        np.testing.assert_array_equal(np.asarray(gen(z, noise_mode=mode, key=jax.random.key(3))), base)
        ws = gen.mapping(z)
        np.testing.assert_array_equal(np.asarray(gen.synthesis(ws, noise_mode=mode)), base)
    with pytest.raises(ValueError, match="noise_mode"):
        gen(z, noise_mode="bogus")
    style = genmod.stylegan_style(gen)
    for mode in ("const", "random", "none"):
        got = style.images({"z": z, "c": np.zeros((2, 0))}, (16, 16), render_settings(make_params(noise_mode=mode)))
        np.testing.assert_allclose(np.asarray(got), base, atol=1e-6)  # the step's own program: fusion may differ


# ---------------------------------------------------------------------------------------------------------------
# the per-sample transform
# ---------------------------------------------------------------------------------------------------------------


def _nvidia_make_transform(angle: float, tx: float, ty: float) -> np.ndarray:
    """The matrix NVIDIA's gen_images.py builds (angle in degrees there); the buffer holds its inverse."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s, tx], [-s, c, ty], [0, 0, 1]])


@pytest.mark.slow
def test_transform_matrix():
    T = np.asarray(genmod.stylegan3_transform(0.3, 0.1, -0.2))
    chex.assert_shape(T, (1, 3, 3))
    np.testing.assert_allclose(T[0], np.linalg.inv(_nvidia_make_transform(0.3, 0.1, -0.2)), atol=1e-6)
    angles = np.array([0.0, 1.0, -2.0], np.float32)
    T = np.asarray(genmod.stylegan3_transform(angles, 0.25, np.array([0.0, 0.1, 0.2])))
    chex.assert_shape(T, (3, 3, 3))
    for i, (a, y) in enumerate(zip(angles, [0.0, 0.1, 0.2])):
        np.testing.assert_allclose(T[i], np.linalg.inv(_nvidia_make_transform(a, 0.25, y)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(genmod.stylegan3_transform()), np.eye(3)[None], atol=0)
    traced = jax.jit(genmod.stylegan3_transform)(jnp.float32(0.3), 0.1, -0.2)
    np.testing.assert_allclose(np.asarray(traced)[0], np.linalg.inv(_nvidia_make_transform(0.3, 0.1, -0.2)), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["t16", "r32-cond"])
def test_identity_and_full_turn_equal_default(name):
    cfg, _, gen = _model(name)
    z, c = latents(cfg, 3)
    base = np.asarray(gen(z, c))
    np.testing.assert_allclose(np.asarray(gen(z, c, transform=np.eye(3))), base, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gen(z, c, transform=genmod.stylegan3_transform(0, 0, 0))), base, atol=1e-6)
    full = np.asarray(gen(z, c, transform=genmod.stylegan3_transform(2 * np.pi, 0, 0)))
    assert np.abs(full - base).max() <= 1e-4 * max(1.0, np.abs(base).max())
    assert np.abs(np.asarray(gen(z, c, transform=genmod.stylegan3_transform(0.5, 0, 0))) - base).max() > 0.05


@pytest.mark.slow
@pytest.mark.parametrize("name", ["t16", "r32-cond"])
def test_per_sample_transform_matches_oracle(name):
    cfg, state, gen = _model(name)
    z, c = latents(cfg, 3)
    T = np.asarray(
        genmod.stylegan3_transform(np.array([0.3, -1.2, 2.5]), np.array([0.1, 0.0, -0.3]), np.array([0.0, 0.2, 0.05]))
    )
    want = ref.generate(cfg, state, z, c, 0.8, None, transform=T)
    got = np.asarray(gen(z, c, truncation_psi=0.8, transform=T))
    assert_close_to_oracle(got, want, f"images transform {name}")
    # each sample's image depends only on its own transform
    for i in range(3):
        zi, ci = z[i : i + 1], None if c is None else c[i : i + 1]
        one = np.asarray(gen(zi, ci, truncation_psi=0.8, transform=T[i]))
        np.testing.assert_allclose(one[0], got[i], atol=1e-5)


def test_translation_shifts_the_fourier_features():
    cfg, _, gen = _model("t32-cond")
    spec = gen.spec
    z, c = latents(cfg, 2)
    w0 = gen.mapping(z, c)[:, 0]
    sr = spec.input.sampling_rate
    base = np.asarray(gen.module.synthesis.input(w0))
    chex.assert_shape(base, (2, 36, 36, spec.input.channels))
    for dx, dy in ((3, 0), (0, 2), (1, -2)):
        moved = np.asarray(gen.module.synthesis.input(w0, genmod.stylegan3_transform(0, dx / sr, dy / sr)))
        want = np.roll(base, (dy, dx), axis=(1, 2))
        ys = slice(max(dy, 0), 36 + min(dy, 0))
        xs = slice(max(dx, 0), 36 + min(dx, 0))
        np.testing.assert_allclose(moved[:, ys, xs], want[:, ys, xs], atol=2e-5)  # content moved right / down
        assert np.abs(moved - base).max() > 0.05


@pytest.mark.slow
@pytest.mark.parametrize("name", ["t32-cond", "r32-cond"])
def test_translation_moves_the_image(name):
    """Integer-pixel moves at the input sampling rate move the whole image (alias-free: exactly, away from the
    borders): by ``px·R/sr₀`` pixels, right for +tx, down for +ty."""
    cfg, _, gen = _model(name)
    z, c = latents(cfg, 2)
    base = np.asarray(gen(z, c))
    scale = cfg["img_resolution"] / gen.spec.input.sampling_rate
    bound = 1e-4 * max(1.0, np.abs(base).max())
    for px, py in ((1, 0), (0, 2), (-1, 1)):
        T = genmod.stylegan3_transform(0, px / gen.spec.input.sampling_rate, py / gen.spec.input.sampling_rate)
        moved = np.asarray(gen(z, c, transform=T))
        sx, sy = int(px * scale), int(py * scale)
        R = cfg["img_resolution"]
        ys, xs = slice(max(sy, 0) + 1, R + min(sy, 0) - 1), slice(max(sx, 0) + 1, R + min(sx, 0) - 1)
        want = np.roll(base, (sy, sx), axis=(1, 2))
        assert np.abs(moved[:, ys, xs] - want[:, ys, xs]).max() <= bound


def test_config_r_is_equivariant_to_quarter_turns():
    """config-r (1×1 convs, radial filters) commutes exactly with 90° rotations: +angle turns the picture
    counter-clockwise as displayed (np.rot90 over (rows, columns))."""
    cfg, _, gen = _model("r32-cond")
    z, c = latents(cfg, 2)
    base = np.asarray(gen(z, c))
    bound = 1e-4 * max(1.0, np.abs(base).max())
    for k in (1, 2, 3):
        img = np.asarray(gen(z, c, transform=genmod.stylegan3_transform(k * np.pi / 2, 0, 0)))
        assert np.abs(img - np.rot90(base, k, axes=(1, 2))).max() <= bound
        assert np.abs(img - base).max() > 100 * bound  # and it did turn


# ---------------------------------------------------------------------------------------------------------------
# Generator API, jit behaviour, Style adapter
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_generator_attributes():
    cfg, state, gen = _model("t32-cond")
    assert (gen.family, gen.z_dim, gen.c_dim, gen.w_dim, gen.img_resolution, gen.num_ws) == (
        "stylegan3",
        16,
        3,
        16,
        32,
        8,
    )
    assert gen.config == cfg and "stylegan3 config-t" in repr(gen)
    assert "config-r" in repr(_model("r16")[2])
    z, c = latents(cfg, 2)
    img = np.asarray(gen(z, c, truncation_psi=0.6))
    graphdef, params = gen.split()
    np.testing.assert_allclose(
        np.asarray(genmod.generate_fn(graphdef, params, z, c, truncation_psi=0.6)), img, atol=1e-6
    )
    ws = genmod.mapping_fn(graphdef, params, z, c, 0.6)
    np.testing.assert_allclose(np.asarray(genmod.synthesis_fn(graphdef, params, ws)), img, atol=1e-6)
    f = jax.jit(lambda p, z, c, t: nnx.merge(graphdef, p)(z, c, 0.6, None, transform=t))
    np.testing.assert_allclose(np.asarray(f(params, z, c, np.eye(3, dtype=np.float32))), img, atol=1e-5)
    assert hash(sg3.spec_from_config(cfg)) == hash(gen.spec)
    with pytest.raises(ValueError, match="shape"):
        gen(z, c, transform=np.eye(4))
    with pytest.raises(ValueError, match="conditional"):
        gen.mapping(z)


@pytest.mark.slow
def test_compiles_once_with_traced_psi_and_transform():
    before = genmod._generate_jit._cache_size()
    cfg = sg3_config(z_dim=10)  # a spec no other test compiles
    gen = genmod.Generator.from_state(cfg, random_sg3_state(cfg, 0))
    z = latents(cfg, 2)[0]
    a = gen(z, transform=genmod.stylegan3_transform(0.1, 0, 0))
    gen(z * 2, truncation_psi=0.5, transform=genmod.stylegan3_transform(np.array([0.3, 0.4]), 0.1, 0))
    other = genmod.Generator.from_state(cfg, random_sg3_state(cfg, 9))
    b = other(z, truncation_psi=0.8, transform=np.eye(3, dtype=np.float32)[None])
    traces = [None] * (genmod._generate_jit._cache_size() - before)
    assert len(traces) == 1
    assert not np.allclose(np.asarray(a), np.asarray(b))


def test_sg2_generators_refuse_a_transform():
    from sg2_state import random_sg2_state, sg2_config

    cfg = sg2_config(img_resolution=8)
    gen = genmod.Generator.from_state(cfg, random_sg2_state(cfg, 0))
    assert gen.family == "stylegan2"
    with pytest.raises(ValueError, match="StyleGAN3"):
        gen(np.zeros((1, 32), np.float32), transform=np.eye(3))


@pytest.mark.slow
def test_stylegan_style():
    cfg, state, gen = _model("r32-cond")
    style = genmod.stylegan_style(gen)
    settings = render_settings(make_params(truncation_psi=0.7, truncation_cutoff=4, noise_mode="none"))
    assert isinstance(style, Style)
    assert (style.name, style.z_dim, style.c_dim, style.native_size) == ("stylegan3", 12, 4, (32, 32))
    chex.assert_trees_all_equal(style.variables["model"], gen.state)
    assert style.transform and not style.noise and style.w_control
    assert style.generator.family == "stylegan3" and style.generator.spec.kind == "r" and style.generator.num_ws == 8
    z, c = latents(cfg, 2)
    out = style.images({"z": z, "c": c}, (512, 512), settings)
    want = ref.generate(cfg, state, z, c, 0.7, 4)
    assert_close_to_oracle(out, want, "style.apply")
    eye = np.broadcast_to(np.eye(3, dtype=np.float32), (2, 3, 3))
    np.testing.assert_allclose(
        np.asarray(style.images({"z": z, "c": c, "transform": eye}, (32, 32), settings)), np.asarray(out), atol=1e-6
    )
    T = genmod.stylegan3_transform(jnp.array([0.5, -0.5]), jnp.array([0.1, 0.0]), 0.0)
    want_t = ref.generate(cfg, state, z, c, 0.7, 4, transform=np.asarray(T))
    assert_close_to_oracle(
        style.images({"z": z, "c": c, "transform": T}, (32, 32), settings), want_t, "style.apply_transform"
    )
    assert genmod.stylegan_style(gen, name="x").name == "x"


def test_load_generator_builds_stylegan3(monkeypatch, tmp_path):
    converters = weights  # load_generator reads weights through lsd_jax.store.weights.load

    cfg = sg3_config()
    state = random_sg3_state(cfg, 0)
    monkeypatch.setattr(converters, "load", lambda p, isolated=False: (cfg, state))
    gen = genmod.load_generator(tmp_path / "g.pkl")
    assert gen.family == "stylegan3" and gen.num_ws == 6
    monkeypatch.setattr(converters, "load", lambda p, isolated=False: (cfg, {}))
    with pytest.raises(StyleError, match="stylegan3.*missing"):
        genmod.load_generator(tmp_path / "g.pkl")
    monkeypatch.setattr(converters, "load", lambda p, isolated=False: (dict(cfg, family="stylegan9"), state))
    with pytest.raises(StyleError, match="stylegan9"):
        genmod.load_generator(tmp_path / "g.pkl")


# ---------------------------------------------------------------------------------------------------------------
# NVIDIA-format StyleGAN3 pickles → converters → generator
# ---------------------------------------------------------------------------------------------------------------


def _assert_same_state(got: dict, want: dict) -> None:
    assert list(got) == list(want), "keys / state_dict order differ"
    for key, value in want.items():
        assert got[key].dtype == np.float32 and got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_pickle_to_generator_matches_oracle(tmp_path, name):
    cfg, state, _ = _model(name)
    path = nv3.write_pickle(tmp_path / f"{name}.pkl", cfg, state)
    config, converted = weights.load(path)
    assert config == cfg  # the per-layer attributes read from the pickle are NVIDIA's derived ones
    _assert_same_state(converted, state)
    gen = genmod.load_generator(path)
    assert gen.family == "stylegan3" and gen.spec == sg3.spec_from_config(cfg)
    z, c = latents(cfg, 2, seed=7)
    for psi, cutoff in ((1.0, None), (0.7, 4)):
        want = ref.generate(cfg, state, z, c, psi, cutoff)  # the oracle on the ORIGINAL state
        got = gen(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="random", key=jax.random.key(0))
        assert_close_to_oracle(got, want, f"pickle {name}")
        np.testing.assert_array_equal(
            np.asarray(gen(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="none")), np.asarray(got)
        )
    # the conversion cache and the converted .safetensors give the same model
    again, again_state = weights.load(path)
    assert again == cfg
    _assert_same_state(again_state, state)
    npz = weights.convert(path, tmp_path / f"{name}.safetensors")
    c2, s2 = weights.load_safetensors(npz)
    assert c2 == cfg
    _assert_same_state(s2, state)


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant", ["numpy2-names", "protocol-3", "bare-generator", "no-init-kwargs", "stored-transform"]
)
def test_pickle_variants(variant):
    cfg, state, gen = _model("t16")
    if variant == "numpy2-names":
        data = nv3.pickle_bytes(cfg, state, numpy1_names=False)
    elif variant == "protocol-3":
        data = nv3.pickle_bytes(cfg, state, protocol=3)
    elif variant == "bare-generator":
        data = nv.dumps(nv3.generator(cfg, state))
    elif variant == "no-init-kwargs":  # attributes still tell everything the computation needs
        data = nv3.pickle_bytes(cfg, state, kwargs={})
    else:
        state = dict(state, **{"synthesis.input.transform": np.asarray(genmod.stylegan3_transform(0.7, 0.1, 0))[0]})
        data = nv3.pickle_bytes(cfg, state)
    config, converted = converters.parse_bytes(data)
    _assert_same_state(converted, state)
    if variant == "no-init-kwargs":
        assert config["synthesis_kwargs"]["channel_base"] == 32768  # NVIDIA's default: not recorded elsewhere
        assert config["synthesis_kwargs"]["num_layers"] == 4  # SynthesisNetwork.num_layers
        assert {k: config[k] for k in ("synthesis_input", "synthesis_layers", "z_dim", "c_dim", "w_dim")} == {
            k: cfg[k] for k in ("synthesis_input", "synthesis_layers", "z_dim", "c_dim", "w_dim")
        }
    else:
        assert config == cfg
    z, _ = latents(cfg, 2)
    got = genmod.Generator.from_state(config, converted)(z)
    assert_close_to_oracle(got, ref.generate(cfg, state, z), f"pickle variant {variant}")


class _Evil:
    def __reduce_ex__(self, protocol):
        return (nv.global_stub("os", "system"), ("touch /tmp/lsd_jax_sg3_pwned",))


def _layer(g: nv.Persistent, name: str) -> nv.Persistent:
    return g.state["_modules"]["synthesis"].state["_modules"][name]


def _wrong_sg3(name: str) -> bytes:
    cfg, state, _ = _model("r16")
    if name == "no-generator":
        snap = nv3.snapshot(cfg, state)
        return nv.dumps({k: v for k, v in snap.items() if k not in ("G", "G_ema")})
    if name == "missing-attribute":
        return nv3.pickle_bytes(cfg, state, drop_attrs={"synthesis.L1_36_16": ("padding",)})
    if name == "missing-input-attribute":
        return nv3.pickle_bytes(cfg, state, drop_attrs={"synthesis.input": ("bandwidth",)})
    if name == "missing-tensor":
        return nv3.pickle_bytes(cfg, {k: v for k, v in state.items() if k != "synthesis.L0_36_16.down_filter"})
    if name == "wrong-filter-shape":
        return nv3.pickle_bytes(cfg, dict(state, **{"synthesis.L0_36_16.down_filter": np.ones(12, np.float32)}))
    if name == "negative-magnitude":
        return nv3.pickle_bytes(cfg, dict(state, **{"synthesis.L3_16_16.magnitude_ema": np.float32(-1)}))
    if name == "unknown-kwarg":
        return nv3.pickle_bytes(cfg, state, kwargs={**nv3.init_kwargs(cfg), "warp_strength": 0.5})
    g = nv3.generator(cfg, state)
    if name == "extra-tensor":
        _layer(g, "L2_36_16").state["_buffers"]["noise_const"] = nv.Tensor(np.ones((36, 36), np.float32))
    elif name == "inconsistent-padding":
        _layer(g, "L1_36_16").state["padding"] = [11, 14, 11, 10]
    elif name == "broken-chain":
        _layer(g, "L2_36_16").state["in_channels"] = 15
    elif name == "layer-names":
        g.state["_modules"]["synthesis"].state["layer_names"].append("L9_16_3")
    elif name == "malicious-attribute":
        _layer(g, "L1_36_16").state["bandwidth_fn"] = _Evil()
    else:
        raise AssertionError(name)
    return nv.dumps(
        {
            "G": g,
            "D": nv.discriminator(cfg),
            "G_ema": g,
            "augment_pipe": None,
            "training_set_kwargs": nv.training_set_kwargs(cfg),
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, error, match",
    [
        ("no-generator", ConversionError, "no generator"),
        ("missing-attribute", ConversionError, "L1_36_16 does not record 'padding'"),
        ("missing-input-attribute", ConversionError, "synthesis.input does not record 'bandwidth'"),
        ("missing-tensor", ConversionError, "lacks tensor 'synthesis.L0_36_16.down_filter'"),
        ("extra-tensor", ConversionError, "unknown tensor 'synthesis.L2_36_16.noise_const'"),
        ("wrong-filter-shape", ConversionError, r"down_filter' .* has shape \(12,\).*\(12, 12\)"),
        ("negative-magnitude", ConversionError, "magnitude_ema.*positive"),
        ("unknown-kwarg", ConversionError, "unknown StyleGAN3 generator kwarg 'warp_strength'=0.5"),
        ("inconsistent-padding", ConversionError, "L1_36_16's padding"),
        ("broken-chain", ConversionError, "L2_36_16 expects 15 channels"),
        ("layer-names", ConversionError, "L9_16_3.*not a SynthesisLayer"),
        ("malicious-attribute", PickleSecurityError, "os.system"),
    ],
)
def test_wrong_and_malicious_sg3_pickles_are_refused(tmp_path, name, error, match):
    path = tmp_path / "style.pkl"
    path.write_bytes(_wrong_sg3(name))
    with pytest.raises(error, match=match) as info:
        weights.load(path)
    assert "'style.pkl'" in str(info.value)
    with pytest.raises(StyleError):
        genmod.load_generator(path)
    assert not Path("/tmp/lsd_jax_sg3_pwned").exists()
    assert not Path("/tmp/lsd_jax_sg3_module_src_was_executed").exists()  # module_src is never run
