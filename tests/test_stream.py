"""The causal stream analysis (lsd_jax.audio.stream): past only, block-size free, hits found within milliseconds."""

from __future__ import annotations

import chex
import numpy as np
import pytest
from audio_signals import click_track, tone

from lsd_jax.audio.stream import LIVE_HOP, PARTS, StreamAnalyzer, StreamResampler

SR_IN = 48000


def _run(y: np.ndarray, sr: int, blocks) -> dict[str, np.ndarray]:
    a = StreamAnalyzer(sr)
    out = []
    i = 0
    for n in blocks:
        if i >= y.size:
            break
        out.append(a.push(y[i : i + n]))
        i += n
    return {k: np.concatenate([getattr(c, k) for c in out], axis=-1) for k in ("end", "loudness", "onset", "chroma")}


def _blocks(sizes, total):
    out, i = [], 0
    while sum(out) < total:
        out.append(sizes[i % len(sizes)])
        i += 1
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sr", [22050, SR_IN])
def test_columns_see_only_the_past_and_do_not_depend_on_block_sizes(sr):
    rng = np.random.default_rng(0)
    y = (0.3 * rng.normal(size=2 * sr) * np.repeat(rng.random(20), sr // 10)).astype(np.float32)
    a = _run(y, sr, _blocks([sr // 100], y.size))
    b = _run(y, sr, _blocks([1, 777, 4096, 50], y.size))  # odd blocks: same columns
    n = min(a["end"].size, b["end"].size)
    assert n > 0.9 * 2 * 22050 / LIVE_HOP
    for k in a:
        np.testing.assert_allclose(a[k][..., :n], b[k][..., :n], rtol=1e-5, atol=1e-6 * np.abs(a[k]).max())
    cut = sr  # change everything after 1 s: the columns that end before it stay the same
    z = y.copy()
    z[cut:] = rng.normal(size=z.size - cut).astype(np.float32)
    c = _run(z, sr, _blocks([sr // 100], z.size))
    before = a["end"] <= (cut - 8) / sr  # a few samples of the resampler's interpolation
    assert before.sum() > 100
    for k in ("loudness", "onset", "chroma"):
        np.testing.assert_allclose(c[k][..., before[: c[k].shape[-1]]], a[k][..., before], rtol=1e-5, atol=1e-9)
    assert not np.allclose(c["loudness"][:, -50:], a["loudness"][:, -50:])


def test_clicks_are_percussive_onsets_within_milliseconds_and_tones_harmonic():
    times = [0.6 + 0.4 * k for k in range(5)]
    y = click_track(times, 3.0, SR_IN) + tone(330, 3.0, SR_IN, amp=0.05)
    f = _run(y, SR_IN, _blocks([480], y.size))
    chex.assert_shape(f["loudness"], (3, f["end"].size))
    perc, harm = PARTS.index("percussive"), PARTS.index("harmonic")
    end = f["end"]
    for t in times:
        near = (end > t - 0.05) & (end < t + 0.1)
        e, onset, loud = end[near], f["onset"][perc, near], f["loudness"][perc, near]
        assert 0 <= e[np.argmax(onset)] - t <= 0.012  # the flux peaks within two hops of the click
        half = e[np.argmax(loud >= 0.5 * loud.max())] - t
        assert 0 <= half <= 0.03, half  # half of the click's percussive power within 30 ms
        between = (end > t + 0.15) & (end < t + 0.3)
        assert loud.max() > 100 * f["loudness"][perc, between].max()  # the tone between clicks is not percussive
    steady = (end > 0.9) & (end < 0.95)
    assert f["loudness"][harm, steady].min() > 10 * f["loudness"][perc, steady].max()
    chroma = f["chroma"][:, steady].mean(axis=1)
    assert np.argmax(chroma) == 4  # 330 Hz is an E


def test_resampler_removes_what_the_analysis_rate_cannot_hold_and_holds_nothing_back():
    sr_in, n = SR_IN, SR_IN
    t = np.arange(n) / sr_in
    r = StreamResampler(sr_in)
    out = np.concatenate([r(x) for x in np.split((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 100)])
    assert abs(out.size - 22050) <= 2  # no look-ahead: as many samples out as came in (at the new rate)
    spec = np.abs(np.fft.rfft(out[2000:] * np.hanning(out.size - 2000)))
    assert abs(np.fft.rfftfreq(out.size - 2000, 1 / 22050)[np.argmax(spec)] - 1000) < 5
    r = StreamResampler(sr_in)
    high = np.concatenate([r(x) for x in np.split((0.5 * np.sin(2 * np.pi * 15000 * t)).astype(np.float32), 100)])
    assert np.abs(high[2000:]).max() < 0.01 * np.abs(out[2000:]).max()  # 15 kHz would alias to 7 kHz
