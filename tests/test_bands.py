"""Per-layer bands: low hits move only the coarse layers, high hits only the fine ones."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsd_jax.audio.bands import (
    apply_bands,
    band_directions,
    band_envelopes,
    layer_groups,
    mel_band_index,
    normalise_bands,
)
from lsd_jax.audio.envelopes import analysis_hop
from lsd_jax.errors import ParamError

SR = 22050
FPS = 24
DUR = 4.0
N = int(math.ceil(DUR * FPS))
TIMES = [0.3, 1.1, 1.9, 2.7, 3.5]


def tone_burst(freq, length):
    n = int(length * SR)
    return (np.sin(2 * np.pi * freq * np.arange(n) / SR) * np.hanning(n)).astype(np.float32)


def noise_burst(lo, hi, length, seed=0):
    """Band-limited noise (FFT mask), Hann-enveloped."""
    n = int(length * SR)
    spec = np.fft.rfft(np.random.default_rng(seed).normal(size=n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n) * np.hanning(n)
    return (x / np.abs(x).max()).astype(np.float32)


def track(hit, times=TIMES, seconds=DUR, lead=0.0):
    y = np.zeros(int((seconds + lead) * SR), np.float32)
    for t in times:
        i = int((t + lead) * SR)
        y[i : i + hit.size] += hit[: y.size - i]
    return y


LOW, MID, HIGH = tone_burst(60, 0.2), tone_burst(700, 0.15), noise_burst(5000, 9000, 0.08)


def test_layer_groups():
    assert layer_groups(18, 1024).tolist() == [0] * 4 + [1] * 4 + [2] * 10
    assert layer_groups(14, 256).tolist() == [0] * 4 + [1] * 4 + [2] * 6
    assert layer_groups(10, 64).tolist() == [0] * 4 + [1] * 4 + [2] * 2
    # below 64x64 there would be no fine layer: thirds
    assert layer_groups(8, 32).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    # not the StyleGAN2 layout (StyleGAN3 1024: 16 ws) or resolution unknown: thirds
    assert layer_groups(16, 1024).tolist() == [0] * 6 + [1] * 5 + [2] * 5
    assert layer_groups(18).tolist() == [0] * 6 + [1] * 6 + [2] * 6
    with pytest.raises(ParamError):
        layer_groups(0)


@pytest.mark.parametrize("hit,band", [(LOW, 0), (MID, 1), (HIGH, 2)])
def test_envelopes_follow_their_band_only(hit, band):
    env = band_envelopes(track(hit), SR, FPS, N)
    assert env.shape == (N, 3) and env.dtype == np.float32
    assert env[:, band].max() == 1.0
    others = np.delete(env, band, axis=1)
    assert others.max() < 1e-3, others.max(axis=0)
    # the band's peaks sit on the hits
    peaks = [int(np.argmax(env[int(t * FPS) - 2 : int(t * FPS) + 6, band])) + int(t * FPS) - 2 for t in TIMES]
    assert all(abs(p - (t * FPS)) <= 4 for p, t in zip(peaks, TIMES)), peaks


def _move(hit, num_ws=14, res=256, w_dim=16):
    env = band_envelopes(track(hit), SR, FPS, N)
    ws = jnp.asarray(np.random.default_rng(0).normal(size=(N, num_ws, w_dim)), jnp.float32)
    out = apply_bands(ws, env, jnp.array([1.0, 1.0, 1.0]), jax.random.key(3), layer_groups(num_ws, res))
    dist = np.linalg.norm(np.asarray(out) - np.asarray(ws), axis=2).max(axis=0)  # per layer: largest move
    return dist, layer_groups(num_ws, res)


@pytest.mark.parametrize("hit,group", [(LOW, 0), (MID, 1), (HIGH, 2)])
def test_hits_move_only_their_layers(hit, group):
    moved, groups = _move(hit)
    assert moved[groups == group].min() > 0.999  # react 1, unit directions, envelope peaks at 1
    assert moved[groups != group].max() < 1e-3, moved


def test_silence_flat_and_empty_band():
    assert not band_envelopes(np.zeros(SR, np.float32), SR, FPS, 24).any()
    flat = normalise_bands(np.ones((10, 3)))
    assert flat.shape == (10, 3) and not flat.any()
    # a band 60 dB below the loudest stays near 0 instead of being stretched to [0, 1]
    raw = np.zeros((10, 3))
    raw[3] = [1.0, 1e-6, 0.5]
    out = normalise_bands(raw)
    assert out[3, 0] == 1.0 and out[3, 2] == 1.0 and out[3, 1] < 0.02


def test_edges_are_validated_and_configurable():
    for bad in [(2000, 250), (0, 100), (250, 20000), (100,), "x", (100, float("nan"))]:
        with pytest.raises(ParamError):
            band_envelopes(np.zeros(SR, np.float32), SR, FPS, 24, bad)
    with pytest.raises(ParamError, match="mid band"):
        mel_band_index((1000.0, 1001.0), SR)
    # moving the low/mid edge above 700 Hz puts the 700 Hz hits in the low band
    env = band_envelopes(track(MID), SR, FPS, N, (1000.0, 4000.0))
    assert env[:, 0].max() == 1.0 and env[:, 1:].max() < 1e-3


@pytest.mark.slow
def test_precomputed_mel_and_context_offset():
    import librosa

    y = track(LOW)
    S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=analysis_hop(SR, FPS), n_mels=128)
    np.testing.assert_allclose(band_envelopes(y, SR, FPS, N, S=S), band_envelopes(y, SR, FPS, N), atol=1e-6)
    # the excerpt starts 1 s into the analysed signal: hits land on the same frames
    lead = track(LOW, lead=1.0)
    env = band_envelopes(lead, SR, FPS, N, offset=1.0, duration=DUR)
    ref = band_envelopes(track(LOW), SR, FPS, N)
    for t in TIMES:  # each hit peaks on the same frame (values differ a little: the column grid is shifted)
        f = int(t * FPS)
        assert np.argmax(env[f - 2 : f + 6, 0]) == np.argmax(ref[f - 2 : f + 6, 0])
    assert np.abs(env - ref).max() < 0.25


def test_apply_bands_is_exact_jittable_and_scaled():
    n, L, d = 6, 8, 12
    ws = jnp.asarray(np.random.default_rng(1).normal(size=(n, L, d)), jnp.float32)
    bands = jnp.asarray(np.random.default_rng(2).uniform(size=(n, 3)), jnp.float32)
    dirs = band_directions(jax.random.key(0), d, scale=2.0)
    np.testing.assert_allclose(np.asarray(dirs @ dirs.T), 4.0 * np.eye(3), atol=1e-5)  # orthogonal, norm 2
    np.testing.assert_array_equal(np.asarray(apply_bands(ws, bands, jnp.zeros(3), dirs)), np.asarray(ws))
    react = jnp.array([0.0, 1.5, 0.0])
    groups = layer_groups(L)
    out = np.asarray(jax.jit(apply_bands)(ws, bands, react, dirs, jnp.asarray(groups)))
    np.testing.assert_array_equal(out[:, groups != 1], np.asarray(ws)[:, groups != 1])
    delta = out[:, groups == 1] - np.asarray(ws)[:, groups == 1]
    want = 1.5 * np.asarray(bands)[:, 1, None, None] * np.asarray(dirs)[1][None, None, :]
    np.testing.assert_allclose(delta, np.broadcast_to(want, delta.shape), atol=1e-5)
    with pytest.raises(ValueError):
        apply_bands(ws, bands[:, :2], react, dirs)
