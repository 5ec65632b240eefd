"""The embedded default style (models/cppn_forward.py): cheap and resolution-independent, and its pulse reads."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from audio_signals import drums_and_pad, write

import lsd_jax
from lsd_jax.audio import analysis as audio
from lsd_jax.engine.pipeline import prepare
from lsd_jax.models import cppn_forward


def _psnr(a, b):  # images in [-1, 1]
    return 10 * np.log10(4.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def _model():
    """The network's forward on its fixed weights (what the default style runs)."""
    params = jax.device_put(cppn_forward.init_variables())

    class Model:
        def __call__(self, z, c, size):
            return cppn_forward.frames(params, z, c, size)

        def images(self, z, c, size, step=None):
            return cppn_forward.images(params, z, c, size, step)

    return Model(), params


def test_the_style_runs_the_network():
    # the default style's program runs cppn_forward's network on its fixed weights: same parameters, same frames
    from lsd_jax.styles.resolve import cppn_style

    model, params = _model()
    style = cppn_style()
    state = {k: np.asarray(v) for k, v in params.items()}
    assert set(state) == set(style.variables["model"]) == {"freqs", "w_in", "w_z", "w_h", "w_out", "palette"}
    for k in state:
        np.testing.assert_array_equal(state[k], style.variables["model"][k])
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3, cppn_forward.Z_DIM)).astype(np.float32)
    c = rng.random((3, cppn_forward.C_DIM)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(style.images({"z": z, "c": c}, (48, 80))),
        np.asarray(jax.jit(lambda z, c: model(z, c, (48, 80)))(z, c)),
        atol=1e-5,
    )


@pytest.mark.slow
def test_fast_sin_matches_sin():
    x = jnp.linspace(-60.0, 60.0, 200_001, dtype=jnp.float32)
    assert float(jnp.abs(cppn_forward.fast_sin(x) - jnp.sin(x)).max()) < 1e-5
    exact = np.linspace(-math.pi, math.pi, 1001)
    got = cppn_forward.fast_sin(jnp.asarray(exact, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), np.sin(exact), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(256, 256), (384, 384), (270, 480)])
def test_the_spline_through_the_grid_looks_like_every_pixel(size):
    # the MLP runs on every k-th pixel; the output must still be the network's image (not a blurred one)
    model, _ = _model()
    k = cppn_forward.grid_step(size)
    assert k >= 2 and min(size) // k >= cppn_forward.GRID
    rng = np.random.default_rng(0)
    z = jnp.asarray(np.clip(rng.normal(size=(2, cppn_forward.Z_DIM)), -2, 2), jnp.float32)
    c = jnp.asarray(rng.random((2, cppn_forward.C_DIM)), jnp.float32)
    fast = jax.jit(lambda z, c: model.images(z, c, size))(z, c)
    full = jax.jit(lambda z, c: model.images(z, c, size, step=1))(z, c)
    chex.assert_shape(fast, (2, *size, 3))
    assert _psnr(fast, full) > 50.0
    assert float(jnp.abs(fast - full).max()) < 16 / 127.5


@pytest.mark.slow
def test_frames_one_by_one_equal_the_batch():
    model, _ = _model()
    rng = np.random.default_rng(1)
    z = jnp.asarray(rng.normal(size=(3, cppn_forward.Z_DIM)), jnp.float32)
    c = jnp.asarray(rng.random((3, cppn_forward.C_DIM)), jnp.float32)
    batch = jax.jit(lambda z, c: model(z, c, (64, 96)))(z, c)
    ones = [jax.jit(lambda z, c: model.images(z, c, (64, 96)))(z[i : i + 1], c[i : i + 1]) for i in range(3)]
    np.testing.assert_allclose(np.asarray(batch), np.concatenate(ones), atol=1e-5)


@pytest.mark.slow
def test_the_look_does_not_depend_on_the_resolution():
    model, _ = _model()
    z = jnp.asarray(np.random.default_rng(2).normal(size=(1, cppn_forward.Z_DIM)), jnp.float32)
    c = jnp.zeros((1, cppn_forward.C_DIM), jnp.float32)
    big = np.asarray(jax.jit(lambda z, c: model(z, c, (512, 512)))(z, c))
    small = np.asarray(jax.jit(lambda z, c: model(z, c, (128, 128)))(z, c))
    # box-average the 512² frame down to 128²: the same picture, whatever the size it was rendered at
    pooled = big.reshape(1, 128, 4, 128, 4, 3).mean(axis=(2, 4))
    assert _psnr(pooled, small) > 25.0


def _fast_change_vs_onsets(song, fps=24.0, **params):
    prep = prepare(song, None, progress=False, resolution=64, fps=fps, **params)
    frames = prep.frames(np.arange(prep.n_frames)).astype(np.float32)
    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # change[i]: frame i -> i + 1
    w = int(round(0.5 * fps)) | 1
    padded = np.pad(change, w // 2, mode="edge")
    running_median = np.array([np.median(padded[i : i + w]) for i in range(change.size)])
    onsets = audio.analyze(song, lsd_jax.make_params(fps=fps, pulse_mode="onset", pulse_percussive=True)).pulse
    return float(np.corrcoef(change - running_median, onsets[1:])[0, 1])


@pytest.fixture(scope="module")
def drums_song(tmp_path_factory):
    return write(tmp_path_factory.mktemp("pulse") / "drums_and_pad.wav", drums_and_pad(12.0))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])
def test_the_pulse_reads_over_the_drift_at_default_parameters(drums_song, seed):
    # issue #17: the fast part of the frame change follows the drums, not the pad's drift
    assert _fast_change_vs_onsets(drums_song, seed=seed) >= 0.3
