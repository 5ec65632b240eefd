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
    host = apply_host(frames.astype(np.uint8), (lambda a, s, m: np.asarray(darken(a.astype(np.float32), s, m)),),
                      (0.8,), amps)
    np.testing.assert_allclose(fused, host, atol=1.0)
    np.testing.assert_allclose(fused[0], frames[0], atol=1e-4)


def test_host_effect_shape_mismatch_is_clear():
    frames = np.zeros((1, 4, 4, 3), np.uint8)
    with pytest.raises(ParamError, match="returned shape"):
        apply_host(frames, (lambda a, s, m: a[:2],), (0.5,), np.zeros((1, 1), np.float32))
