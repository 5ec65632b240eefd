"""Noise reactivity: ``SynthesisNetwork(ws, ..., noise_gain)`` scales every layer's noise input per sample."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lsd_jax.models import stylegan2 as sg2
from lsd_jax.testing import random_sg2_state, sg2_config

CFG = sg2_config()  # 32x32, 8 ws, w_dim 32
SPEC = sg2.spec_from_config(CFG)
GRAPHDEF = nnx.split(sg2.abstract(CFG))[0]


@functools.cache
def _params():
    return nnx.to_pure_dict(nnx.state(sg2.from_state(CFG, random_sg2_state(CFG, 3))))


def _synthesis(params, ws, *args):
    return nnx.merge(GRAPHDEF, params).synthesis(ws, *args)


@functools.partial(jax.jit, static_argnames=("noise_mode",))
def synth(params, ws, noise_mode, key, noise_gain):
    return _synthesis(params, ws, noise_mode, key, noise_gain)


@functools.partial(jax.jit, static_argnames=("noise_mode",))
def synth_plain(params, ws, noise_mode, key):
    return _synthesis(params, ws, noise_mode, key)


def _ws(n=3, seed=0):
    z = jax.random.normal(jax.random.key(seed), (n, SPEC.z_dim))
    return nnx.merge(GRAPHDEF, _params()).mapping(z)


def _key(mode):
    return jax.random.split(jax.random.key(7), 3) if mode == "random" else None


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["const", "random"])
def test_gain_zero_is_no_noise_and_gain_one_is_default(mode):
    p, ws, key = _params(), _ws(), _key(mode)
    default = np.asarray(synth_plain(p, ws, mode, key))
    none = np.asarray(synth_plain(p, ws, "none", None))
    assert not np.allclose(default, none)  # the noise matters in this model
    # equal up to float rounding (a different compiled program may fuse differently: ~1 ulp)
    np.testing.assert_allclose(np.asarray(synth(p, ws, mode, key, jnp.zeros(3))), none, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(synth(p, ws, mode, key, jnp.ones(3))), default, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["const", "random"])
def test_gain_is_per_sample(mode):
    p, ws, key = _params(), _ws(), _key(mode)
    gains = jnp.array([0.0, 1.0, 2.5])
    batch = np.asarray(synth(p, ws, mode, key, gains))
    default = np.asarray(synth_plain(p, ws, mode, key))
    none = np.asarray(synth_plain(p, ws, "none", None))
    np.testing.assert_allclose(batch[0], none[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(batch[1], default[1], rtol=0, atol=1e-5)
    # a sample's gain affects that sample only
    same = np.asarray(synth(p, ws, mode, key, jnp.full((3,), 2.5)))
    np.testing.assert_allclose(batch[2], same[2], rtol=1e-5, atol=1e-5)
    assert not np.allclose(batch[2], default[2], atol=1e-3)


@pytest.mark.slow
def test_gain_scales_the_noise_like_noise_strength():
    p, ws = _params(), _ws()
    doubled = jax.tree_util.tree_map_with_path(
        lambda path, a: a * 2 if jax.tree_util.keystr(path).endswith("['noise_strength']") else a, p
    )
    want = np.asarray(synth_plain(doubled, ws, "const", None))
    got = np.asarray(synth(p, ws, "const", None, jnp.full((3,), 2.0)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_scalar_gain_broadcasts_none_mode_ignores_it_and_bad_shapes_fail():
    p, ws = _params(), _ws()
    np.testing.assert_array_equal(
        np.asarray(synth(p, ws, "const", None, jnp.float32(2.0))),
        np.asarray(synth(p, ws, "const", None, jnp.full((3,), 2.0))),
    )
    np.testing.assert_array_equal(
        np.asarray(synth(p, ws, "none", None, jnp.full((3,), 5.0))), np.asarray(synth_plain(p, ws, "none", None))
    )
    with pytest.raises(ValueError, match="noise_gain"):
        _synthesis(p, ws, "const", None, jnp.ones(4))
    with pytest.raises(ValueError, match="noise_gain"):
        _synthesis(p, ws, "const", None, jnp.ones((3, 1)))


@pytest.mark.slow
def test_generate_threads_noise_gain_and_default_program_is_unchanged():
    p = _params()
    z = jax.random.normal(jax.random.key(0), (2, SPEC.z_dim))
    g = jnp.array([0.0, 3.0])
    got = jax.jit(lambda q, zz, gg: nnx.merge(GRAPHDEF, q)(zz, noise_gain=gg))(p, z, g)
    want = synth(p, jax.jit(lambda q, zz: nnx.merge(GRAPHDEF, q).mapping(zz))(p, z), "const", None, g)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)
    ws = _ws(2)
    # noise_gain=None traces exactly the program of a call without the argument; a gain adds to it
    plain = str(jax.make_jaxpr(lambda q, w: _synthesis(q, w, "const"))(p, ws))
    none = str(jax.make_jaxpr(lambda q, w: _synthesis(q, w, "const", None, None))(p, ws))
    gained = str(jax.make_jaxpr(lambda q, w, gg: _synthesis(q, w, "const", None, gg))(p, ws, g))
    assert plain == none != gained
