"""Beat lock: tempo within 2% and keyframes within one frame of the clicks; keyframe interpolation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from audio_signals import SR, click, click_track, normalise, place, silence, tone

from lsd_jax.audio import envelopes, spectral
from lsd_jax.audio.beats import (
    Beats,
    beat_keyframe_positions,
    beat_track,
    detect_beats,
    estimate_tempo,
    interpolate_keyframes,
    tempo_from_beats,
)
from lsd_jax.audio.demo_song import demo_song
from lsd_jax.errors import ParamError


def _clicks(bpm, seconds, first):
    return list(np.arange(first, seconds - 0.05, 60.0 / bpm))


@pytest.mark.parametrize("bpm,fps,seconds,first", [(120, 24, 9.0, 0.25), (100, 25, 10.0, 0.3), (137, 30, 8.0, 0.2)])
def test_click_track_tempo_and_beat_frames(bpm, fps, seconds, first):
    times = _clicks(bpm, seconds, first)
    n = int(np.ceil(seconds * fps))
    beats = detect_beats(click_track(times, seconds), SR, fps, n)
    assert abs(beats.tempo_bpm - bpm) / bpm < 0.02, beats.tempo_bpm
    click_frames = np.array(times) * fps
    pos = beat_keyframe_positions(beats, "beat", n)
    assert len(pos) >= len(times) - 1  # every click found (the tracker may trim one at an edge)
    # each keyframe sits within one frame of a click (in fact within half a frame: nearest-frame rounding)
    assert max(np.abs(click_frames - f).min() for f in pos) <= 1.0
    assert max(np.abs(np.array(times) - t).min() for t in beats.beat_times) < 0.5 / fps + 0.012
    assert np.all(np.diff(pos) > 0)


def test_bars_start_on_the_accented_beat():
    bpm, fps, seconds = 120, 24, 10.0
    times = _clicks(bpm, seconds, 0.25)
    y = place(tone(220, seconds, amp=0.005), times, click(), gain=0.3)
    accents = times[1::4]  # the downbeat is the 2nd click
    y = normalise(place(y, accents, click(), gain=1.0))
    n = int(np.ceil(seconds * fps))
    beats = detect_beats(y, SR, fps, n)
    bars = beat_keyframe_positions(beats, "bar", n)
    want = np.round(np.array(accents) * fps)
    assert len(bars) >= len(accents) - 1
    assert max(np.abs(want - f).min() for f in bars) <= 1
    assert beats.bar_frames.tolist() == bars.tolist()


def test_start_offset_and_frames_outside_are_dropped():
    bpm, fps = 120, 24
    times = _clicks(bpm, 10.0, 0.25)
    y = click_track(times, 10.0)
    start, n = 3.0, 5 * fps  # the video shows 3..8 s of the song
    beats = detect_beats(y, SR, fps, n, start=start)
    inside = [t - start for t in times if 0 <= (t - start) * fps < n - 0.5]
    assert len(beats.beat_frames) >= len(inside) - 1
    assert max(np.abs(np.array(inside) * fps - f).min() for f in beats.beat_frames) <= 1.0
    assert beats.beat_frames.min() >= 0 and beats.beat_frames.max() < n


def test_silence_and_modes():
    b = detect_beats(silence(3.0), SR, 24, 72)
    assert b.tempo_bpm == 0.0 and b.beat_frames.size == 0
    assert beat_keyframe_positions(b, "bar", 72).size == 0
    with pytest.raises(ParamError):
        beat_keyframe_positions(b, "measure", 72)
    fake = Beats(120.0, np.array([5, 5, 30, 80]), np.array([5, 80]), np.zeros(4), 0)
    assert beat_keyframe_positions(fake, "beat", 60).tolist() == [5, 30]
    assert beat_keyframe_positions(fake, "bar").tolist() == [5, 80]


def _noise_bursts(seconds=8.0, seed=0):
    rng = np.random.default_rng(seed)
    gate = np.repeat(rng.random(int(seconds * 10)) > 0.7, SR // 10)
    return (rng.normal(size=gate.size) * gate * 0.3).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize(
    "signal,hop",
    [
        ("clicks100", 128),
        ("clicks137", 256),
        ("clicks174", 512),
        ("clicks80", 256),
        ("demo", 256),
        ("demo", 512),
        ("noise", 128),
        ("noise", 256),
    ],
)
def test_beat_track_is_librosas(signal, hop):
    """The NumPy tracker gives librosa.beat.beat_track's tempo and beat columns exactly (same onset envelope)."""
    import librosa

    if signal.startswith("clicks"):
        bpm = int(signal[6:])
        y = click_track(_clicks(bpm, 10.0, 0.25), 10.0)
    else:
        y = demo_song(12.0) if signal == "demo" else _noise_bursts()
    onset = envelopes.onset_envelope(spectral.mel_spectrogram(y, SR, hop), hop)
    tempo, cols = beat_track(onset, SR, hop)
    want_tempo, want_cols = librosa.beat.beat_track(onset_envelope=onset, sr=SR, hop_length=hop, units="frames")
    assert tempo == pytest.approx(float(np.atleast_1d(want_tempo)[0]), rel=1e-12)
    assert estimate_tempo(onset, SR, hop) == tempo
    np.testing.assert_array_equal(cols, want_cols)
    assert cols.dtype == np.int64 and len(cols) >= 5


def test_beat_track_without_onsets():
    tempo, cols = beat_track(np.zeros(500), SR, 256)
    assert tempo == 0.0 and cols.size == 0


def test_tempo_from_beats_tolerates_a_skipped_beat():
    t = np.arange(16) * 0.5 + 0.1
    assert tempo_from_beats(np.delete(t, 7)) == pytest.approx(120.0, rel=1e-9)
    assert tempo_from_beats(t[:1]) == 0.0


@pytest.mark.parametrize("ease", ["cosine", "linear", "cubic"])
def test_interpolate_keyframes_exact_held_and_continuous(ease):
    rng = np.random.default_rng(0)
    kf = rng.normal(size=(5, 7)).astype(np.float32)
    pos = np.array([6, 15, 21, 40, 52])
    n = 60
    path = np.asarray(interpolate_keyframes(kf, pos, n, ease))
    assert path.shape == (n, 7) and path.dtype == np.float32
    for k, p in enumerate(pos):
        np.testing.assert_array_equal(path[p], kf[k])
    np.testing.assert_array_equal(path[:6], np.broadcast_to(kf[0], (6, 7)))
    np.testing.assert_array_equal(path[52:], np.broadcast_to(kf[-1], (8, 7)))
    # continuous: the step between frames is bounded by the keyframe distance over the segment length
    steps = np.abs(np.diff(path, axis=0)).max(axis=1)
    seg = np.searchsorted(pos, np.arange(n - 1), side="right") - 1
    for i in range(6, 51):
        s = seg[i]
        bound = np.abs(kf[s + 1] - kf[s]).max() / (pos[s + 1] - pos[s])
        assert steps[i] <= (3.0 if ease == "cubic" else 1.6) * bound + 1e-5, (i, steps[i], bound)


def test_interpolate_keyframes_with_traced_positions():
    kf = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4)), jnp.float32)
    f = jax.jit(lambda k, p: interpolate_keyframes(k, p, 30))
    a = np.asarray(f(kf, jnp.array([2, 10, 20])))
    b = np.asarray(f(kf, jnp.array([5.0, 12.0, 25.0])))
    np.testing.assert_array_equal(a[10], kf[1])
    np.testing.assert_array_equal(b[25], kf[2])
    one = np.asarray(interpolate_keyframes(kf[:1], jnp.array([4]), 10))
    np.testing.assert_array_equal(one, np.broadcast_to(kf[0], (10, 4)))
