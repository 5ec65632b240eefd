import chex
import jax.numpy as jnp
import numpy as np
import pytest

from lsd_jax import EffectsGenerator, ParamError, contrast_effect, flash_effect
from lsd_jax.engine.effects import apply_fused, apply_host


def _img(seed=0, h=8, w=6):
    return jnp.asarray(np.random.default_rng(seed).uniform(0, 255, (h, w, 3)), jnp.float32)


def test_contrast_zero_amplitude_is_identity_and_stretches_otherwise():
    img = _img()
    chex.assert_trees_all_close(contrast_effect(img, 0.5, 0.0), img, atol=1e-4)
    out = contrast_effect(img, 0.5, 1.0)
    mean = float(jnp.mean(img @ jnp.array([0.299, 0.587, 0.114])))
    # factor 1.5 around the grey mean, clipped
    chex.assert_trees_all_close(out, jnp.clip(mean + 1.5 * (img - mean), 0, 255), atol=1e-3)
    assert float(jnp.std(out)) > float(jnp.std(img))


def test_flash_brightens_and_saturates_to_white_without_dividing_by_zero():
    img = _img()
    chex.assert_trees_all_close(flash_effect(img, 0.5, 0.0), img, atol=1e-3)
    brighter = flash_effect(img, 0.5, 0.5)
    assert bool(jnp.all(brighter >= img - 1e-4)) and float(brighter.mean()) > float(img.mean())
    white = flash_effect(img + 1.0, 1.0, 1.0)
    assert np.isfinite(np.asarray(white)).all() and float(white.min()) == 255.0


def test_effects_generator_checks_signature_and_strength():
    with pytest.raises(ParamError, match="array, strength, amplitude"):
        EffectsGenerator(lambda a: a)
    with pytest.raises(ParamError, match="callable"):
        EffectsGenerator(3)
    with pytest.raises(ParamError, match="strength"):
        EffectsGenerator(lambda a, s, m: a, strength="hi")


def test_traceable_detection():
    jax_fx = EffectsGenerator(lambda a, s, m: a * (1 - s * m))
    np_fx = EffectsGenerator(lambda a, s, m: np.flipud(np.asarray(a)).copy())
    assert jax_fx.traceable(8, 6)
    assert not np_fx.traceable(8, 6)


def test_fused_and_host_paths_agree_for_a_pure_effect():
    def darken(a, s, m):
        return a * (1.0 - s * m)

    frames = np.stack([np.asarray(_img(i)) for i in range(3)]).round()
    amps = np.array([[0.0], [0.5], [1.0]], np.float32)
    fused = np.asarray(apply_fused(jnp.asarray(frames), (darken,), (0.8,), jnp.asarray(amps)))
    host = apply_host(
        frames.astype(np.uint8), (lambda a, s, m: np.asarray(darken(a.astype(np.float32), s, m)),), (0.8,), amps
    )
    np.testing.assert_allclose(fused, host, atol=1.0)
    np.testing.assert_allclose(fused[0], frames[0], atol=1e-4)


def test_host_effect_shape_mismatch_is_clear():
    frames = np.zeros((1, 4, 4, 3), np.uint8)
    with pytest.raises(ParamError, match="returned shape"):
        apply_host(frames, (lambda a, s, m: a[:2],), (0.5,), np.zeros((1, 1), np.float32))


# --- how the host reads a float result (issue 26): by what the effect is, and by the frame it was given ---------


def _ramp(lo=0, hi=255):
    """(1, 8, 6, 3) uint8 frame with values spread over [lo, hi]."""
    return np.linspace(lo, hi, 8 * 6 * 3).round().astype(np.uint8).reshape(1, 8, 6, 3)


@pytest.mark.parametrize("lo,hi", [(0, 255), (0, 40), (0, 1)])
def test_host_reads_a_numpy_float_result_in_0_255_as_is(lo, hi):
    """numbers computed from the uint8 frame (``a * 0.9``) are in [0, 255], on bright and dark frames alike."""
    frames = _ramp(lo, hi)
    out = apply_host(frames, (lambda a, s, m: a * 0.9,), (0.5,), np.zeros((1, 1), np.float32))
    np.testing.assert_array_equal(out, np.rint(frames * 0.9).astype(np.uint8))


@pytest.mark.parametrize("lo,hi", [(0, 255), (0, 40), (30, 200)])
def test_host_reads_a_numpy_float_result_in_0_1_as_an_image(lo, hi):
    """scikit-image's float convention (``swirl``, ``img_as_float``): [0, 1], scaled back to [0, 255]."""
    frames = _ramp(lo, hi)
    out = apply_host(frames, (lambda a, s, m: a / 255.0,), (0.5,), np.zeros((1, 1), np.float32))
    np.testing.assert_array_equal(out, frames)


def test_host_keeps_a_dark_frame_dark_through_a_numpy_effect_then_contrast_and_flash():
    """The bug: contrast/flash return floats in [0, 255]; on a dark frame (peak <= 1) the host took them for [0, 1]
    and multiplied by 255 (mean ~130). A dark frame must come out dark: as the same chain computed in floats."""
    dark = np.zeros((1, 8, 6, 3), np.uint8)
    dark[0, ::2] = 1  # peak 1, mean 0.5
    amps = np.array([[0.0, 0.2, 0.3]], np.float32)
    numpy_fx = lambda a, s, m: np.asarray(a, np.float64)  # noqa: E731 (a float copy, as NumPy effects return)
    out = apply_host(dark, (numpy_fx, contrast_effect, flash_effect), (0.5, 0.5, 0.5), amps)
    want = np.asarray(flash_effect(contrast_effect(jnp.asarray(dark[0], jnp.float32), 0.5, 0.2), 0.5, 0.3))
    assert out.mean() < 2.0, out.mean()
    np.testing.assert_allclose(out[0], np.rint(want), atol=1)
    # the same chain without the NumPy effect runs fused: the two paths agree
    fused = np.asarray(
        apply_fused(
            jnp.asarray(dark, jnp.float32), (contrast_effect, flash_effect), (0.5, 0.5), jnp.asarray(amps[:, 1:])
        )
    )
    np.testing.assert_allclose(out.astype(np.float32), np.rint(fused), atol=1)


def test_host_reads_a_jax_result_as_0_255():
    """A JAX effect run on the host (after a NumPy one) follows the fused effects' convention, even when dark."""
    dark = _ramp(0, 1)
    out = apply_host(dark, (lambda a, s, m: jnp.asarray(a, jnp.float32) * 0.5,), (0.5,), np.zeros((1, 1), np.float32))
    np.testing.assert_array_equal(out, np.rint(dark * 0.5).astype(np.uint8))
