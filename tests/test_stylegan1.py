"""StyleGAN (v1): NVIDIA-layout pickles → converters.sg1 → lsd_jax.models.stylegan1, against a float64 oracle."""

from __future__ import annotations

import builtins
import io
import json
import math
import os
import pickle
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import nvidia_pickles as nv
import nvidia_pickles_sg1 as nvs
import pytest
import reference_stylegan1 as ref
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converters
import lsd_jax
from converters import ConversionError, ConverterError, PickleSecurityError
from converters import sg1 as conv_sg1
from lsd_jax.models import ops
from lsd_jax.models import stylegan1 as msg1
from lsd_jax.store import weights
from lsd_jax.styles import generator as G


def _tol(reference: np.ndarray) -> float:
    return 1e-4 * max(1.0, float(np.abs(reference).max()))


def _convert(static: dict, seed: int = 3, **kwargs) -> tuple[dict, dict, dict]:
    """(config, state, raw Gs variables by TF name) of a freshly pickled StyleGAN 1 network."""
    variables = nvs.generator_variables(static, seed)
    config, state = converters.parse_bytes(nvs.pickle_bytes(static, variables, **kwargs), "'sg1.pkl'")
    return config, state, nvs.flat_variables(variables)


class Net:
    def __init__(self, static: dict, seed: int = 3):
        self.static = static
        self.config, self.state, self.V = _convert(static, seed)
        self.model = msg1.from_state(self.config, self.state)
        self.graphdef, self.params = nnx.split(self.model)


@pytest.fixture(scope="module", params=list(nvs.SMALL))
def net(request) -> Net:
    return Net(nvs.SMALL[request.param])


# ----------------------------------------------------------------------------------------------------------------
# The pickle format and the converter.


@pytest.mark.parametrize("name, version, protocol", [("32", 3, 4), ("64", 4, 3), ("128-fused", 3, 2)])
def test_pickle_converts_gs_in_nvidia_names(name: str, version: int, protocol: int) -> None:
    static = nvs.SMALL[name]
    variables = nvs.generator_variables(static, 5)
    data = nvs.pickle_bytes(static, variables, version=version, protocol=protocol)
    config, state = converters.parse_bytes(data)
    R = static["resolution"]
    assert config["family"] == "stylegan1"
    assert (config["z_dim"], config["w_dim"], config["img_resolution"], config["c_dim"]) == (
        static["latent_size"],
        static["dlatent_size"],
        R,
        0,
    )
    assert config["num_ws"] == 2 * int(math.log2(R)) - 2
    assert (config["truncation_psi"], config["truncation_cutoff"]) == (
        static.get("truncation_psi", 0.7),
        static.get("truncation_cutoff", 8),
    )
    assert config["mapping_kwargs"]["num_layers"] == static["mapping_layers"]
    assert config["synthesis_kwargs"]["fmap_decay"] == static.get("fmap_decay", 1.0)
    assert list(state) == list(conv_sg1.expected_shapes(config))
    raw = nvs.flat_variables(variables)
    # Gs's values (not G's, which differ), under NVIDIA's names with '/' → '.'; lod and ToRGB_lod{k>0} dropped
    kept = {
        k.replace("/", "."): v
        for k, v in raw.items()
        if not (k.endswith("lod") or ("ToRGB_lod" in k and "ToRGB_lod0" not in k))
    }
    assert set(kept) == set(state)
    for key, value in kept.items():
        np.testing.assert_array_equal(state[key], value, err_msg=key)
        assert state[key].dtype == np.float32
    assert "synthesis.4x4.Const.const" in state and state["synthesis.noise0"].shape == (1, 1, 4, 4)


def test_lod_as_array_and_component_order_do_not_matter() -> None:
    static = nvs.SMALL["32"]
    variables = nvs.generator_variables(static, 1)
    variables["G"][0] = ("lod", np.zeros((), np.float32))  # a 0-d array instead of a numpy scalar
    variables["synthesis"][0] = ("lod", np.zeros((), np.float32))
    gs = nvs.generator(static, variables)
    comps = gs._state["components"]
    gs._state["components"] = {"mapping": comps["mapping"], "synthesis": comps["synthesis"]}
    config, state = converters.parse_bytes(nv.dumps(gs, protocol=4))
    assert config["img_resolution"] == 32 and len(state) == len(conv_sg1.expected_shapes(config))


def test_public_model_shapes() -> None:
    """NVIDIA's FFHQ 1024 (default kwargs) and LSUN 256: shapes the converter expects equal the model's, and match
    the published architecture (18 styles, 512 → 16 feature maps, fused up-convs from 128 px)."""
    for R in (1024, 512, 256):
        gs = nvs.generator(nvs.static_kwargs(R), {"G": [], "mapping": [], "synthesis": []})
        config = conv_sg1.generator_config(_stand_in(gs), "public")
        shapes = conv_sg1.expected_shapes(config)
        assert shapes == ops.flat_shapes(msg1.abstract(config))
        assert config["num_ws"] == 2 * int(math.log2(R)) - 2
        assert shapes["synthesis.4x4.Const.const"] == (1, 512, 4, 4)
        assert shapes["mapping.Dense7.weight"] == (512, 512) and "mapping.Dense8.weight" not in shapes
        assert shapes[f"synthesis.noise{config['num_ws'] - 1}"] == (1, 1, R, R)
        assert shapes[f"synthesis.{R}x{R}.Conv1.weight"] == (3, 3, 8192 // R * 2, 8192 // R * 2)
        assert shapes["synthesis.ToRGB_lod0.weight"] == (1, 1, min(512, 8192 // R * 2), 3)
        assert shapes["synthesis.8x8.Conv0_up.StyleMod.weight"] == (512, 1024)
    assert config["truncation_psi"] == 0.7 and config["truncation_cutoff"] == 8
    assert msg1.spec_from_config(config).fused == (False, False, False, False, True, True)  # 8 … 256 px


def _stand_in(net: nv.TFNetwork):
    """The converter's view of a test network (what the safe unpickler produces), without pickling."""
    from converters.safe_pickle import TFNetwork

    def conv(n):
        out = TFNetwork()
        state = dict(n._state)
        if "components" in state:
            state["components"] = {k: conv(v) for k, v in state["components"].items()}
        out.__setstate__(state)
        return out

    return conv(net)


def test_config_json_roundtrip_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, state, _ = _convert(nvs.SMALL["64"])
    assert conv_sg1.finish_config(json.loads(json.dumps(config))) == config
    monkeypatch.setenv("LSD_JAX_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "abstract photos.pkl"
    variables = nvs.generator_variables(nvs.SMALL["64"], 3)
    path.write_bytes(nvs.pickle_bytes(nvs.SMALL["64"], variables))
    cfg1, st1 = weights.load(path)
    cfg2, st2 = weights.load(path)  # the second load reads the cached .safetensors
    assert cfg1 == cfg2 == config and list(st1) == list(st2) == list(state)
    for key in state:
        np.testing.assert_array_equal(st2[key], state[key])
    assert len(list((tmp_path / "cache" / "converted").glob("*.safetensors"))) == 1


# ----------------------------------------------------------------------------------------------------------------
# The JAX model against the float64 oracle.


def test_module_paths_are_nvidia_names(net: Net) -> None:
    flat = nnx.to_flat_state(nnx.split(net.model)[1])
    names = {".".join(map(str, path)): v for path, v in flat}
    assert set(names) == set(net.state)
    assert isinstance(names["dlatent_avg"], msg1.Buffer) and isinstance(names["synthesis.noise1"], msg1.Buffer)
    assert isinstance(names["synthesis.4x4.Const.const"], nnx.Param)
    assert isinstance(names["mapping.Dense0.weight"], nnx.Param)
    np.testing.assert_array_equal(
        np.asarray(names["synthesis.4x4.Conv.weight"][...]), net.state["synthesis.4x4.Conv.weight"]
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "psi, cutoff, noise_mode", [(1.0, None, "const"), (0.7, None, "const"), (0.7, 3, "const"), (0.6, 5, "none")]
)
def test_generate_matches_oracle(net: Net, psi: float, cutoff: int | None, noise_mode: str) -> None:
    z = np.random.default_rng(7).standard_normal((2, net.config["z_dim"])).astype(np.float32)
    img = np.asarray(
        G.generate_fn(net.graphdef, net.params, z, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode)
    )
    R = net.config["img_resolution"]
    chex.assert_shape(img, (2, R, R, 3))
    assert img.dtype == np.float32
    expect = ref.generate(
        net.V, net.static, z, psi, net.config["num_ws"] if cutoff is None else cutoff, noise_mode
    ).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(img, expect, rtol=0, atol=_tol(expect))
    ws = np.asarray(G.mapping_fn(net.graphdef, net.params, z, truncation_psi=psi, truncation_cutoff=cutoff))
    ws_ref = ref.truncate(
        net.V, ref.mapping(net.V, net.static, z), psi, net.config["num_ws"] if cutoff is None else cutoff
    )
    np.testing.assert_allclose(ws, ws_ref, rtol=0, atol=_tol(ws_ref))


@pytest.mark.slow
def test_per_layer_ws_match_oracle(net: Net) -> None:
    """Style mixing: a different w for every layer goes straight into the synthesis network."""
    ws = np.random.default_rng(8).standard_normal((2, net.config["num_ws"], net.config["w_dim"])).astype(np.float32)
    img = np.asarray(G.synthesis_fn(net.graphdef, net.params, ws))
    expect = ref.synthesis(net.V, net.static, ws).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(img, expect, rtol=0, atol=_tol(expect))
    # the styles matter layer by layer: changing the last layer's w changes the image
    ws2 = ws.copy()
    ws2[:, -1] += 1.0
    assert np.abs(np.asarray(G.synthesis_fn(net.graphdef, net.params, ws2)) - img).max() > 1e-3


TINY = nvs.static_kwargs(16, fmap_base=32, fmap_max=8, latent_size=6, dlatent_size=6, mapping_layers=1)
VARIANTS = {
    "fused-everywhere, [1,3,3,1] blur, pixel norm, relu": nvs.static_kwargs(
        16,
        fmap_base=64,
        fmap_max=8,
        latent_size=6,
        dlatent_size=6,
        mapping_layers=2,
        mapping_fmaps=5,
        fused_scale=True,
        blur_filter=[1, 3, 3, 1],
        use_pixel_norm=True,
        use_instance_norm=False,
        nonlinearity="relu",
        mapping_nonlinearity="relu",
        mapping_lrmul=0.1,
    ),
    "never fused, no blur, no noise, no wscale, no mapping layers": nvs.static_kwargs(
        16,
        fmap_base=40,
        fmap_max=8,
        fmap_decay=0.8,
        latent_size=6,
        dlatent_size=6,
        mapping_layers=0,
        fused_scale=False,
        blur_filter=None,
        use_noise=False,
        use_wscale=False,
        normalize_latents=False,
        num_channels=1,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_match_oracle(name: str) -> None:
    n = Net(VARIANTS[name])
    z = np.random.default_rng(9).standard_normal((2, n.config["z_dim"])).astype(np.float32)
    img = np.asarray(G.generate_fn(n.graphdef, n.params, z, truncation_psi=0.8, truncation_cutoff=2))
    expect = ref.generate(n.V, n.static, z, 0.8, 2).transpose(0, 2, 3, 1)
    chex.assert_shape(img, expect.shape)
    np.testing.assert_allclose(img, expect, rtol=0, atol=_tol(expect))


@pytest.mark.slow
def test_fused_and_plain_up_conv_differ_as_nvidias_do() -> None:
    """The fused transposed conv is not the nearest+conv path on the same weights (it is the flipped kernel):
    the same weights with fused_scale=False give another image, and the oracle agrees with both."""
    static = {**TINY, "fused_scale": False}
    fused, plain = Net({**TINY, "fused_scale": True}), Net(static)
    z = np.random.default_rng(2).standard_normal((1, 6)).astype(np.float32)
    a = np.asarray(G.generate_fn(fused.graphdef, fused.params, z))
    b = np.asarray(G.generate_fn(plain.graphdef, plain.params, z))
    assert np.abs(a - b).max() > 0.05
    expect = ref.generate(plain.V, static, z).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(b, expect, rtol=0, atol=_tol(expect))


def test_psi_and_cutoff_are_traced() -> None:
    n = Net(nvs.SMALL["32"], seed=4)
    z = np.random.default_rng(3).standard_normal((2, 16)).astype(np.float32)
    G.generate_fn(n.graphdef, n.params, z, truncation_psi=0.7, truncation_cutoff=3)
    G.mapping_fn(n.graphdef, n.params, z, truncation_psi=0.7, truncation_cutoff=None)
    sizes = G._generate_jit._cache_size(), G._mapping_jit._cache_size()
    a = G.generate_fn(n.graphdef, n.params, z, truncation_psi=0.3, truncation_cutoff=6)
    G.generate_fn(n.graphdef, n.params, z, truncation_psi=1.0, truncation_cutoff=None)
    G.mapping_fn(n.graphdef, n.params, z, truncation_psi=0.2, truncation_cutoff=1)
    assert (G._generate_jit._cache_size(), G._mapping_jit._cache_size()) == sizes
    expect = ref.generate(n.V, n.static, z, 0.3, 6).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(a), expect, rtol=0, atol=_tol(expect))
    # psi 1 and cutoff <= 0 leave ws bit-exact (NVIDIA skips the truncation)
    ws = G.mapping_fn(n.graphdef, n.params, z)
    for psi, cutoff in ((1.0, 4), (0.5, 0)):
        np.testing.assert_array_equal(
            G.mapping_fn(n.graphdef, n.params, z, truncation_psi=psi, truncation_cutoff=cutoff), ws
        )


@pytest.mark.slow
def test_random_noise_and_noise_gain() -> None:
    n = Net(TINY, seed=6)
    ws = G.mapping_fn(n.graphdef, n.params, np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32))
    k1, k2 = jax.random.key(1), jax.random.key(2)
    r1 = np.asarray(G.synthesis_fn(n.graphdef, n.params, ws, "random", k1))
    np.testing.assert_array_equal(r1, np.asarray(G.synthesis_fn(n.graphdef, n.params, ws, "random", k1)))
    assert np.abs(r1 - np.asarray(G.synthesis_fn(n.graphdef, n.params, ws, "random", k2))).max() > 1e-3
    const = np.asarray(G.synthesis_fn(n.graphdef, n.params, ws, "const"))
    none = np.asarray(G.synthesis_fn(n.graphdef, n.params, ws, "none"))
    assert np.abs(r1 - const).max() > 1e-3 and np.abs(none - const).max() > 1e-3
    # per-sample keys: a sample's image depends on its own key only
    keys = jax.random.split(k1, 2)
    both = np.asarray(G.synthesis_fn(n.graphdef, n.params, ws, "random", keys))
    swapped = np.asarray(G.synthesis_fn(n.graphdef, n.params, ws[::-1], "random", keys[::-1]))
    np.testing.assert_allclose(both[::-1], swapped, rtol=0, atol=1e-5)
    # noise_gain 0 is noise_mode "none", 1 the default; it is traced
    zero = G.synthesis_fn(n.graphdef, n.params, ws, "const", noise_gain=jnp.zeros(2))
    np.testing.assert_allclose(np.asarray(zero), none, rtol=0, atol=1e-5)
    one_gain = G.synthesis_fn(n.graphdef, n.params, ws, "const", noise_gain=jnp.ones(2))
    np.testing.assert_allclose(np.asarray(one_gain), const, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="PRNG key"):
        G.synthesis_fn(n.graphdef, n.params, ws, "random")
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis_fn(n.graphdef, n.params, ws, "loud")


@pytest.mark.slow
def test_traced_noise_mode_equals_the_named_modes() -> None:
    """The render step passes noise_mode as a traced index (0 const, 1 random, 2 none): same images."""
    n = Net(TINY, seed=6)
    ws = G.mapping_fn(n.graphdef, n.params, np.random.default_rng(5).standard_normal((2, 6)).astype(np.float32))
    keys = jax.random.split(jax.random.key(3), 2)
    gain = jnp.asarray([0.5, 2.0])

    @jax.jit
    def traced(state, mode):
        return nnx.merge(n.graphdef, state).synthesize(ws, noise_mode=mode, key=keys, noise_gain=gain)

    for i, name in enumerate(msg1.NOISE_MODES):
        want = G.synthesis_fn(n.graphdef, n.params, ws, name, keys if name == "random" else None, noise_gain=gain)
        np.testing.assert_allclose(np.asarray(traced(n.params, jnp.int32(i))), np.asarray(want), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# The product: load_generator, the Generator API and styles drive StyleGAN 1 like StyleGAN2.


@pytest.mark.slow
def test_load_generator_runs_stylegan1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSD_JAX_CACHE", str(tmp_path / "cache"))
    static = nvs.SMALL["64"]  # its G_style defaults: psi 0.5, cutoff 4
    variables = nvs.generator_variables(static, 8)
    path = tmp_path / "net.pkl"
    path.write_bytes(nvs.pickle_bytes(static, variables))
    gen = lsd_jax.load_generator(path)
    got = (gen.family, gen.z_dim, gen.c_dim, gen.w_dim, gen.num_ws, gen.img_resolution)
    assert got == ("stylegan1", 12, 0, 10, 10, 64)
    assert "stylegan1" in repr(gen)
    n = Net(static, seed=8)
    z = np.random.default_rng(9).standard_normal((2, 12)).astype(np.float32)
    # Lucid Sonic Dreams' way: mapping.run (no truncation, whatever G_style's defaults), stored noise.
    ws = np.asarray(gen.mapping(z))
    np.testing.assert_array_equal(ws, np.asarray(G.mapping_fn(n.graphdef, n.params, z)))
    assert (
        np.abs(ws - np.asarray(G.mapping_fn(n.graphdef, n.params, z, truncation_psi=0.5, truncation_cutoff=4))).max()
        > 1e-3
    )
    img = np.asarray(gen(z))
    np.testing.assert_array_equal(img, np.asarray(G.generate_fn(n.graphdef, n.params, z)))
    ref_img = ref.generate(n.V, static, z, None, None, "const").transpose(0, 2, 3, 1)  # the float64 oracle
    np.testing.assert_allclose(img, ref_img, rtol=0, atol=_tol(ref_img))
    psi = np.asarray(gen(z, truncation_psi=0.7, truncation_cutoff=3, noise_mode="none"))
    np.testing.assert_array_equal(
        psi,
        np.asarray(G.generate_fn(n.graphdef, n.params, z, truncation_psi=0.7, truncation_cutoff=3, noise_mode="none")),
    )
    # the module is the Flax tree under NVIDIA's names, and editable
    layer = getattr(gen.module.synthesis, "8x8").Conv1
    layer.weight[...] = layer.weight[...] * 0
    assert np.abs(np.asarray(gen(z)) - img).max() > 1e-3
    # a second load reads the conversion cache (safetensors) and gives the same network
    again = lsd_jax.load_generator(path)
    np.testing.assert_array_equal(np.asarray(again(z)), img)


def test_build_checks_every_name_and_shape() -> None:
    config, state, _ = _convert(nvs.SMALL["32"])
    msg1.from_state(config, state)
    missing = dict(state)
    del missing["synthesis.8x8.Conv1.Noise.weight"]
    with pytest.raises(lsd_jax.errors.ConversionError, match="missing tensor 'synthesis.8x8.Conv1.Noise.weight'"):
        msg1.from_state(config, missing)
    with pytest.raises(lsd_jax.errors.ConversionError, match="unexpected tensor 'synthesis.ToRGB_lod1.weight'"):
        msg1.from_state(config, {**state, "synthesis.ToRGB_lod1.weight": np.zeros((1, 1, 16, 3), np.float32)})
    with pytest.raises(lsd_jax.errors.ConversionError, match="dlatent_avg: expected shape"):
        msg1.from_state(config, {**state, "dlatent_avg": np.zeros(3, np.float32)})
    with pytest.raises(lsd_jax.errors.ConversionError, match="family"):
        msg1.from_state({**config, "family": "stylegan2"}, state)


# ----------------------------------------------------------------------------------------------------------------
# Wrong pickles: clear errors naming the problem.


def _mutated(case: str) -> bytes:
    static = dict(nvs.SMALL["32"])
    variables = nvs.generator_variables(static, 2)

    def drop(comp: str, name: str) -> None:
        variables[comp] = [(n, v) for n, v in variables[comp] if n != name]

    def put(comp: str, name: str, value) -> None:
        variables[comp] = [(n, value if n == name else v) for n, v in variables[comp]]

    version = 3
    if case == "unknown-kwarg":
        static["fancy_option"] = 3
    elif case == "no-styles":
        static["use_styles"] = False
    elif case == "dense-input":
        static["const_input_layer"] = False
    elif case == "float16":
        static["dtype"] = "float16"
    elif case == "missing":
        drop("synthesis", "8x8/Conv1/bias")
    elif case == "extra":
        variables["synthesis"].append(("8x8/Extra/weight", np.zeros(3, np.float32)))
    elif case == "shape":
        put("synthesis", "16x16/Conv0_up/StyleMod/weight", np.zeros((16, 7), np.float32))
    elif case == "lod":
        put("G", "lod", np.float32(0.5))
    elif case == "lower-torgb-shape":
        put("synthesis", "ToRGB_lod1/weight", np.zeros((1, 1, 5, 3), np.float32))
    elif case == "version":
        version = 1
    gs = nvs.generator(static, variables, version=max(version, 3))
    if case == "version":
        gs._state["version"] = 1
    elif case == "mapping-kwarg":
        gs._state["components"]["mapping"]._state["static_kwargs"]["zz_top"] = 1
    elif case == "broadcast":
        gs._state["components"]["mapping"]._state["static_kwargs"]["dlatent_broadcast"] = 3
    elif case == "component-func":
        gs._state["components"]["mapping"]._state["build_func_name"] = "G_main"
    elif case == "no-components":
        del gs._state["components"]["mapping"]
    D = nvs.discriminator(static)
    if case == "discriminator":
        return nv.dumps(D, protocol=4)
    return nv.dumps((gs, D, gs), protocol=4)


@pytest.mark.parametrize(
    "case, match",
    [
        ("unknown-kwarg", "unknown StyleGAN \\(v1\\) generator kwarg 'fancy_option'=3 in the generator \\(Gs\\)"),
        ("mapping-kwarg", "unknown StyleGAN \\(v1\\) generator kwarg 'zz_top'=1 in the mapping network"),
        ("no-styles", "use_styles=False"),
        ("dense-input", "const_input_layer=False"),
        ("float16", "dtype='float16'"),
        ("missing", "lacks tensor 'synthesis.8x8.Conv1.bias'"),
        ("extra", "unknown tensor 'synthesis.8x8.Extra.weight'"),
        (
            "shape",
            r"'synthesis.16x16.Conv0_up.StyleMod.weight' .* has shape \(16, 7\), but the config implies \(16, 32\)",
        ),
        ("lod", "saved during progressive growing \\(lod=0.5\\)"),
        ("lower-torgb-shape", "'synthesis.ToRGB_lod1.weight' has shape \\(1, 1, 5, 3\\)"),
        ("version", "unsupported TF network pickle version 1"),
        ("broadcast", "dlatent_broadcast=3"),
        ("component-func", "mapping component is built by 'G_main'"),
        ("no-components", "exactly the components"),
        ("discriminator", "discriminator \\(D_basic\\)"),
    ],
)
def test_wrong_pickles_give_clear_errors(case: str, match: str) -> None:
    with pytest.raises(ConversionError, match=match) as info:
        converters.parse_bytes(_mutated(case), "'style.pkl'")
    assert "'style.pkl'" in str(info.value)


_FUZZ_PICKLE = nvs.pickle_bytes(
    nvs.static_kwargs(8, fmap_base=16, fmap_max=4, latent_size=4, dlatent_size=4, mapping_layers=1),
    nvs.generator_variables(
        nvs.static_kwargs(8, fmap_base=16, fmap_max=4, latent_size=4, dlatent_size=4, mapping_layers=1), 0
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_sg1_pickles_fail_cleanly(data) -> None:
    blob = bytearray(_FUZZ_PICKLE)
    cut = data.draw(st.integers(0, len(blob)))
    for pos, val in data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), max_size=4)):
        if pos < cut:
            blob[pos] = val
    try:
        converters.parse_bytes(bytes(blob[:cut]))
    except ConverterError:
        pass


# ----------------------------------------------------------------------------------------------------------------
# Malicious StyleGAN 1 pickles: refused, nothing runs.


class _Reduce:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _touch(canary: Path) -> str:
    return f"open({str(canary)!r}, 'w').close()"


def _evil(canary: Path, case: str) -> tuple[bytes, str]:
    """An SG1 (G, D, Gs) pickle with one poisoned part, and the global the refusal must name."""
    static = dict(nvs.SMALL["32"])
    variables = nvs.generator_variables(static, 0)
    cmd = f"touch {canary}"
    if case == "os.system as a variable value":
        variables["G"][1] = ("dlatent_avg", _Reduce(os.system, cmd))
        expect = "posix.system"
    elif case == "builtins.eval in static_kwargs":
        static["fmap_base"] = _Reduce(builtins.eval, _touch(canary))
        expect = "builtins.eval"
    elif case == "NVIDIA's build function as a component":  # the component is replaced below
        expect = "training.networks_stylegan.G_synthesis"
    elif case == "object array as a variable":
        variables["synthesis"][1] = ("noise0", np.array([print, os.system], dtype=object))
        expect = "builtins.print"  # the dry run refuses the array's first element by name, before any dtype
    elif case == "exec hidden in the discriminator":
        expect = "builtins.exec"
    else:
        raise AssertionError(case)
    gs = nvs.generator(static, variables)
    D = nvs.discriminator(nvs.SMALL["32"])
    if case == "NVIDIA's build function as a component":
        gs._state["components"]["synthesis"] = nv.global_stub("training.networks_stylegan", "G_synthesis")
    if case == "exec hidden in the discriminator":
        D._state["variables"].append(("x", _Reduce(builtins.exec, _touch(canary))))
    return nv.dumps((gs, D, gs), protocol=4), expect


EVIL_CASES = [
    "os.system as a variable value",
    "builtins.eval in static_kwargs",
    "NVIDIA's build function as a component",
    "object array as a variable",
    "exec hidden in the discriminator",
]


@pytest.mark.parametrize("case", EVIL_CASES)
def test_malicious_sg1_pickles_refused_without_side_effect(tmp_path: Path, case: str) -> None:
    canary = tmp_path / "canary"
    data, expect = _evil(canary, case)
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(PickleSecurityError, match=expect.replace(".", "\\.")) as info:
        converters.parse_pickle(path)
    assert "Traceback" not in str(info.value)
    with pytest.raises(PickleSecurityError):
        weights.load(path)
    with pytest.raises(lsd_jax.PickleSecurityError):
        lsd_jax.load_generator(path)
    assert not canary.exists()


class _AnyNetwork:
    def __setstate__(self, state):
        self.state = state


class _NvidiaLikeUnpickler(pickle.Unpickler):
    """What loading with NVIDIA's code amounts to for these payloads: dnnlib's Network, everything else real."""

    def find_class(self, module, name):
        return _AnyNetwork if module == "dnnlib.tflib.network" else super().find_class(module, name)


@pytest.mark.parametrize(
    "case", ["os.system as a variable value", "builtins.eval in static_kwargs", "exec hidden in the discriminator"]
)
def test_sg1_payloads_are_live_without_the_allow_list(tmp_path: Path, case: str) -> None:
    """Control: unpickled the way NVIDIA's loader does, the poisoned parts run, so the refusals above prove
    something."""
    canary = tmp_path / "canary"
    data, _ = _evil(canary, case)
    _NvidiaLikeUnpickler(io.BytesIO(data)).load()
    assert canary.exists()


def test_build_module_src_is_never_executed(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    src = f"import os\n{_touch(canary)}\nos.system('touch {canary}')\n"
    static = nvs.SMALL["32"]
    variables = nvs.generator_variables(static, 0)
    config, state = converters.parse_bytes(nvs.pickle_bytes(static, variables, module_src=src))
    assert config["img_resolution"] == 32 and state["dlatent_avg"].shape == (16,)
    assert not canary.exists()


def test_tf_zero_dim_variables_as_session_run_returns_them() -> None:
    """TF's ``session.run`` returns a 0-d variable as a numpy scalar, so NVIDIA's TF pickles hold ``lod`` (and
    StyleGAN2's ``noise_strength``) as ``numpy.core.multiarray.scalar``: both converters accept that."""
    from sg2_state import random_sg2_state, sg2_config

    config = sg2_config()
    state = random_sg2_state(config, 0)
    gs = nv.tf_generator(config, state, with_lod=True)

    def scalarise(net: nv.TFNetwork) -> int:
        n = 0
        for i, (name, value) in enumerate(net._state["variables"]):
            if np.ndim(value) == 0:
                net._state["variables"][i] = (name, np.float32(value))
                n += 1
        return n + sum(scalarise(c) for c in net._state["components"].values())

    assert scalarise(gs) > 3
    data = nv.dumps((gs, nv.tf_discriminator(config), gs), protocol=3)
    assert b"multiarray\nscalar" in data
    got_config, got = converters.parse_bytes(data)
    assert got_config == config
    np.testing.assert_array_equal(got["synthesis.b8.conv0.noise_strength"], state["synthesis.b8.conv0.noise_strength"])


# ----------------------------------------------------------------------------------------------------------------
# Conditional StyleGAN 1 (label_size > 0): G_mapping's LabelConcat.


@pytest.mark.slow
def test_conditional_pickle_converts_and_matches_oracle() -> None:
    static = nvs.CONDITIONAL
    n = Net(static, seed=11)
    assert n.config["c_dim"] == 5 and n.model.c_dim == 5
    # LabelConcat/weight [label_size, latent_size] under its NVIDIA name; Dense0 reads z ‖ its embedding
    np.testing.assert_array_equal(n.state["mapping.LabelConcat.weight"], n.V["mapping/LabelConcat/weight"])
    chex.assert_shape(n.state["mapping.LabelConcat.weight"], (5, 12))
    chex.assert_shape(n.state["mapping.Dense0.weight"], (24, 14))
    assert list(n.state) == list(conv_sg1.expected_shapes(n.config))
    rng = np.random.default_rng(12)
    z = rng.standard_normal((3, 12)).astype(np.float32)
    c = np.stack([np.eye(5)[1], np.eye(5)[4], rng.random(5)]).astype(np.float32)  # one-hots and a soft mixture
    for psi, cutoff, mode in ((None, None, "const"), (0.6, 4, "none")):
        img = np.asarray(
            G.generate_fn(
                n.graphdef,
                n.params,
                z,
                c,
                truncation_psi=1.0 if psi is None else psi,
                truncation_cutoff=cutoff,
                noise_mode=mode,
            )
        )
        want = ref.generate(n.V, static, z, psi, cutoff, mode, labels=c).transpose(0, 2, 3, 1)
        chex.assert_shape(img, want.shape)
        np.testing.assert_allclose(img, want, rtol=0, atol=_tol(want))
    # the label matters (same z, another class), and a missing or misshapen c is a clear error
    other = np.asarray(G.generate_fn(n.graphdef, n.params, z, np.roll(c, 1, axis=1)))
    assert np.abs(other - np.asarray(G.generate_fn(n.graphdef, n.params, z, c))).max() > 1e-2
    with pytest.raises(ValueError, match="conditional: pass c with shape \\(N, 5\\)"):
        n.model.map_latents(z, None)
    with pytest.raises(ValueError, match="c must have shape \\(3, 5\\)"):
        n.model.map_latents(z, c[:, :4])


@pytest.mark.slow
def test_conditional_pickle_renders_with_class_vectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``lsd_jax.render(song, style=cond_sg1.pkl)``: the style takes class vectors (chroma → classes) as
    StyleGAN2's conditional styles do."""
    import soundfile as sf

    from lsd_jax.engine.pipeline import prepare
    from lsd_jax.media.video import probe_video

    monkeypatch.setenv("LSD_JAX_CACHE", str(tmp_path / "cache"))
    static = nvs.CONDITIONAL
    pkl = tmp_path / "cond_sg1.pkl"
    pkl.write_bytes(nvs.pickle_bytes(static, nvs.generator_variables(static, 13)))
    gen = lsd_jax.load_generator(pkl)
    assert (gen.family, gen.c_dim) == ("stylegan1", 5)
    t = np.arange(22050 * 2) / 22050
    song = tmp_path / "song.wav"
    sf.write(song, (0.5 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(8 * t))).astype(np.float32), 22050)
    prep = prepare(song, str(pkl), progress=False, fps=8.0, classes=[1, 3])
    c = np.asarray(prep.inputs["c"])
    chex.assert_shape(c, (16, 5))
    assert set(np.flatnonzero(c.sum(axis=0))) <= {1, 3} and c.sum() > 0  # only the chosen classes, and some
    out = lsd_jax.render(song, style=str(pkl), output=tmp_path / "v.mp4", fps=8.0, classes=[1, 3], progress=False)
    info = probe_video(out)
    assert (info["width"], info["height"], info["n_frames"]) == (32, 32, 16)
