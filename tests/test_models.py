"""lsd_jax.models: module trees whose paths are the original networks' names and values, editable layers, and
the precomputed weight constants the render step uses."""

from __future__ import annotations

import chex
import numpy as np
import pytest
import reference_stylegan2 as ref
from flax import nnx
from sg2_state import random_sg2_state, sg2_config
from sg3_state import random_sg3_state, sg3_config

from lsd_jax.models import ops
from lsd_jax.models import stylegan2 as sg2
from lsd_jax.styles.generator import Generator

CASES = {
    "sg2-resnet-cond": lambda: (sg2_config(img_resolution=16, architecture="resnet", c_dim=3), random_sg2_state),
    "sg2-skip": lambda: (sg2_config(img_resolution=16), random_sg2_state),
    "sg3-t": lambda: (sg3_config(kind="t"), random_sg3_state),
    "sg3-r-cond": lambda: (sg3_config(kind="r", c_dim=2), random_sg3_state),
}


@pytest.mark.parametrize("name", list(CASES))
def test_paths_and_values_are_the_original_state(name):
    cfg, make = CASES[name]()
    state = make(cfg, 0)
    gen = Generator.from_state(cfg, state)
    flat = ops.flat_state(gen.module)
    assert set(flat) == set(state)  # exactly the torch state_dict() keys, parameters and buffers
    for key, value in state.items():
        np.testing.assert_array_equal(flat[key], np.asarray(value), err_msg=key)  # original values and layouts
    variables = dict(nnx.to_flat_state(nnx.state(gen.module)))
    buffers = {".".join(map(str, p)) for p, v in variables.items() if isinstance(v, ops.Buffer)}
    params = {".".join(map(str, p)) for p, v in variables.items() if isinstance(v, nnx.Param)}
    assert buffers | params == set(state) and not buffers & params
    suffixes = (
        "noise_const",
        "resample_filter",
        "w_avg",
        "magnitude_ema",
        "up_filter",
        "down_filter",
        "transform",
        "freqs",
        "phases",
    )
    assert buffers == {k for k in state if k.rsplit(".", 1)[-1] in suffixes}


@pytest.mark.slow
def test_editing_a_layer_changes_the_image_as_the_original_would():
    cfg = sg2_config(img_resolution=16, c_dim=3)
    state = random_sg2_state(cfg, 4)
    gen = Generator.from_state(cfg, state)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, cfg["z_dim"])).astype(np.float32)
    c = np.eye(3, dtype=np.float32)[:2]
    before = np.asarray(gen(z, c))
    layer = gen.module.synthesis.b8.conv0
    layer.weight[...] = layer.weight[...] * -0.5  # network bending: edit one layer in place
    after = np.asarray(gen(z, c))
    assert np.abs(after - before).max() > 0.1
    edited = dict(state, **{"synthesis.b8.conv0.weight": state["synthesis.b8.conv0.weight"] * -0.5})
    want = ref.generate(cfg, edited, z, c)
    assert np.abs(after - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    # the style made now renders the edit; the state is a snapshot
    from lsd_jax.styles.generator import stylegan_style

    style = stylegan_style(gen)
    np.testing.assert_allclose(np.asarray(style.images({"z": z, "c": c})), after, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_precomputed_constants_give_the_same_images(name):
    cfg, make = CASES[name]()
    gen = Generator.from_state(cfg, make(cfg, 1))
    m = gen.module
    z = np.random.default_rng(2).standard_normal((2, gen.z_dim)).astype(np.float32)
    c = np.eye(gen.c_dim, dtype=np.float32)[:2] if gen.c_dim else None
    consts = m.constants()
    chex.assert_trees_all_close(m(z, c, consts=consts), m(z, c), atol=1e-6)


@pytest.mark.slow
def test_traced_noise_mode_and_cutoff_match_the_static_ones():
    import jax
    import jax.numpy as jnp

    cfg = sg2_config(img_resolution=16)
    gen = Generator.from_state(cfg, random_sg2_state(cfg, 5))
    graphdef, state = gen.split()
    z = np.random.default_rng(3).standard_normal((2, gen.z_dim)).astype(np.float32)
    keys = jax.random.split(jax.random.key(1), 2)

    @jax.jit
    def traced(state, mode, psi, cutoff):
        return nnx.merge(graphdef, state)(z, None, psi, cutoff, mode, keys)

    for i, mode in enumerate(sg2.NOISE_MODES):
        want = np.asarray(gen(z, truncation_psi=0.6, truncation_cutoff=3, noise_mode=mode, key=keys))
        got = np.asarray(traced(state, jnp.int32(i), jnp.float32(0.6), jnp.int32(3)))
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert traced._cache_size() == 1


def test_noise_modes_agree_with_the_parameter_table():
    """The render settings pass noise_mode as an index into the table's NOISE_MODES; every model reads it so."""
    from lsd_jax import params
    from lsd_jax.models import stylegan1, stylegan2

    assert params.NOISE_MODES == stylegan2.NOISE_MODES == stylegan1.NOISE_MODES
