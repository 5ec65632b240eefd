"""Keyframe blending: exact arrival at each keyframe, untouched outside the windows, continuous."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsd_jax.styles.keyframe_blend import blend_keyframes, keyframe_weight

L, D = 4, 5


def _music(n, seed=0):
    """A smooth music-driven path (N, L, D)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None, None] / n
    return (np.sin(2 * np.pi * (t * rng.uniform(1, 3, (1, L, D)) + rng.uniform(0, 1, (1, L, D))))).astype(np.float32)


def _keys(k, seed=1):
    return np.random.default_rng(seed).normal(size=(k, L, D)).astype(np.float32) * 3


def _outside(n, frames, window):
    t = np.arange(n)[:, None]
    d = np.abs(t - np.asarray(frames)[None, :])
    return np.all((d >= window) & (d > 0), axis=1)


@pytest.mark.slow
def test_exact_at_keyframes_and_untouched_outside_windows():
    n, frames, window = 120, [10, 50, 58, 100], 6.0  # 50 and 58 overlap
    ws, keys = _music(n), _keys(4)
    out = np.asarray(blend_keyframes(ws, keys, jnp.array(frames), window))
    for k, f in enumerate(frames):
        np.testing.assert_array_equal(out[f], keys[k])
    far = _outside(n, frames, window)
    assert far.sum() > 60
    np.testing.assert_array_equal(out[far], ws[far])
    assert not np.allclose(out[~far], ws[~far])
    # between the two overlapping keyframes the path goes key to key and never back to the music
    alpha = np.asarray(keyframe_weight(n, jnp.array(frames, jnp.float32), window))
    assert alpha[50:59].min() > 0.4 and alpha[54] < 1
    assert alpha[frames].tolist() == [1.0] * 4 and (alpha[far] == 0).all()


@pytest.mark.slow
def test_continuous_jumps_shrink_with_resolution():
    """No jump anywhere: refining the frame grid (4x the frames, windows and keyframe positions) makes the
    largest frame-to-frame step ~4x smaller; a discontinuity would not shrink."""
    keys = _keys(3)

    def max_step(scale):
        n = 100 * scale
        frames = np.array([20, 45, 52]) * scale  # 45/52 overlap, 20 alone
        out = np.asarray(blend_keyframes(_music(n), keys, jnp.array(frames), 8.0 * scale))
        return np.abs(np.diff(out, axis=0)).max()

    coarse, fine = max_step(1), max_step(4)
    assert fine < 0.35 * coarse, (coarse, fine)


@pytest.mark.slow
def test_order_shapes_single_keyframe_and_zero_window():
    ws = _music(40)
    keys = _keys(2)
    a = np.asarray(blend_keyframes(ws, keys, jnp.array([30, 8]), 5.0))
    b = np.asarray(blend_keyframes(ws, keys[::-1], jnp.array([8, 30]), 5.0))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[30], keys[0])
    # one w shared by all layers: (K, D)
    one = np.asarray(blend_keyframes(ws, keys[:1, 0], jnp.array([12]), 4.0))
    np.testing.assert_array_equal(one[12], np.broadcast_to(keys[0, 0], (L, D)))
    assert not np.allclose(one[11], ws[11]) and np.array_equal(one[16:], ws[16:])
    # window 0: the keyframe alone on its frame
    cut = np.asarray(blend_keyframes(ws, keys[:1], jnp.array([12]), 0.0))
    np.testing.assert_array_equal(cut[12], keys[0])
    np.testing.assert_array_equal(np.delete(cut, 12, axis=0), np.delete(ws, 12, axis=0))
    # keyframes outside the clip still blend the frames within their window
    edge = np.asarray(blend_keyframes(ws, keys[:1], jnp.array([-2]), 5.0))
    assert not np.allclose(edge[0], ws[0]) and np.array_equal(edge[3:], ws[3:])


@pytest.mark.slow
def test_batches_with_frame_indices_match_the_whole_timeline():
    n, ws, keys = 50, _music(50), _keys(3)
    frames, window = jnp.array([7, 20, 26]), 5.0
    whole = np.asarray(blend_keyframes(ws, keys, frames, window))
    parts = [
        np.asarray(blend_keyframes(ws[a : a + 16], keys, frames, window, jnp.arange(a, min(a + 16, n))))
        for a in range(0, n, 16)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_jittable_with_traced_frames_and_window():
    ws, keys = _music(50), _keys(2)
    fn = jax.jit(lambda w, k, f, win: blend_keyframes(w, k, f, win) * 1.0)
    out = np.asarray(fn(ws, keys, jnp.array([10, 40]), jnp.float32(4.0)))
    np.testing.assert_array_equal(out[10], keys[0])
    np.testing.assert_array_equal(out[40], keys[1])


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    frames=st.lists(st.integers(-5, 64), min_size=3, max_size=3, unique=True),
    window=st.floats(0.0, 30.0, allow_nan=False),
)
def test_property_exact_and_local(frames, window):
    n = 60
    ws, keys = _music(n, 3), _keys(3, 4)
    out = np.asarray(blend_keyframes(ws, keys, jnp.array(frames), jnp.float32(window)))
    for k, f in enumerate(frames):
        if 0 <= f < n:
            np.testing.assert_array_equal(out[f], keys[k])
    far = _outside(n, frames, window)
    np.testing.assert_array_equal(out[far], ws[far])
    assert np.isfinite(out).all()
    # never further from the music than the furthest keyframe allows (a convex combination per frame)
    lo = np.minimum(ws, keys.min(0)) - 1e-5
    hi = np.maximum(ws, keys.max(0)) + 1e-5
    assert ((out >= lo) & (out <= hi)).all()
