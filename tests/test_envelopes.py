"""Per-frame envelopes from spectral columns (lsd_jax.audio.envelopes): framing, pooling, normalisation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from audio_signals import SR
from hypothesis import given, settings
from hypothesis import strategies as st

from lsd_jax.audio import envelopes
from lsd_jax.media import timing

fps_values = st.one_of(
    st.sampled_from([24.0, 25.0, 29.97, 30.0, 43.0, 60.0, 30000 / 1001, 24000 / 1001, 12.5, 240.0, 1.0]),
    st.floats(1.0, 240.0, allow_nan=False),
)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 5 * SR),
    fps=fps_values,
    lead=st.integers(0, SR),
    tail=st.integers(0, SR),
    native=st.sampled_from([22050, 44100, 48000]),
)
def test_columns_pool_into_the_frame_that_holds_their_centre(n, fps, lead, tail, native):
    """An excerpt of n samples (at the native rate ``native``) analysed with ``lead`` and ``tail``
    samples of context at 22050 Hz: each column inside the excerpt pools into the frame that holds
    its centre, and only those columns do."""
    duration = Fraction(n, native)
    N = timing.frame_count(n, native, fps)
    assert math.ceil(duration * timing.fps_fraction(fps)) == N
    hop = envelopes.analysis_hop(SR, fps)
    assert 64 <= hop <= 512 and hop & (hop - 1) == 0
    if fps <= SR / 128:
        assert hop <= SR / fps / 2  # at least two columns per frame
    offset = Fraction(lead, SR)
    total = lead + math.ceil(duration * SR) + tail
    n_cols = 1 + total // hop
    idx = envelopes.column_frames(n_cols, hop, SR, fps, N, offset, duration)
    assert idx.shape == (n_cols,) and idx.min() >= -1 and idx.max() <= N - 1
    inside = np.flatnonzero(idx >= 0)
    assert np.all(np.diff(inside) == 1) and np.all(np.diff(idx[inside]) >= 0)
    q = timing.fps_fraction(fps)
    for j in {0, n_cols // 3, n_cols // 2, n_cols - 1} | ({int(inside[0]), int(inside[-1])} if inside.size else set()):
        t = Fraction(j * hop, SR) - offset
        if 0 <= t < duration:
            assert Fraction(int(idx[j])) / q <= t < Fraction(int(idx[j]) + 1) / q
        else:
            assert idx[j] == -1
    vals = np.random.default_rng(n).random(n_cols)
    pooled = envelopes.pool_columns(vals, hop, SR, fps, N, "max", offset, duration)
    assert pooled.shape == (N,)
    for i in {0, N // 2, N - 1}:
        mine = vals[idx == i]
        if mine.size:
            assert pooled[i] == mine.max()
        else:
            assert pooled[i] in vals
    means = envelopes.pool_columns(np.stack([vals, 2 * vals]), hop, SR, fps, N, "mean", offset, duration)
    assert means.shape == (N, 2) and np.allclose(means[:, 1], 2 * means[:, 0])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_minmax_is_in_unit_range(values):
    out = envelopes.minmax(np.array(values))
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    if max(values) - min(values) > 1e-3:
        assert out.min() == 0 and out.max() == 1
    elif max(values) == min(values):
        assert not out.any()


def test_running_minmax_sees_only_the_past_and_forgets():
    rng = np.random.default_rng(0)
    env = rng.random(300)
    out = envelopes.running_minmax(env, fps=30.0)
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    changed = env.copy()
    changed[200:] *= 5.0
    np.testing.assert_array_equal(envelopes.running_minmax(changed, 30.0)[:200], out[:200])  # causal
    silence_after = np.concatenate([env, np.full(300, 1e-6)])
    assert envelopes.running_minmax(silence_after, 30.0)[300:].max() < 0.05  # silence stays near 0, not amplified
