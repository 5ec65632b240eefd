"""Spectral maths (lsd_jax.audio.spectral) against librosa as the oracle.

Where the maths is the same (STFT, mel and chroma filterbanks, dB, onset strength, HPSS masks) the results match
to float32 rounding: ``max|ours - librosa| <= 1e-5 * max|librosa|``. Where it differs on purpose the tolerance is
stated: HPSS parts from masks instead of librosa's istft -> stft round trip, STFT chroma instead of chroma_cqt.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import pytest
from audio_signals import SR, click_track, tone
from hypothesis import given, settings
from hypothesis import strategies as st

from lsd_jax.audio import envelopes, spectral
from lsd_jax.audio.demo_song import BPM, PROGRESSION, demo_song

HOPS = [64, 128, 256, 512]


@pytest.fixture(scope="module")
def song():
    return demo_song(6.0)


def assert_close(ours, ref, tol=1e-5):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = float(np.abs(ours.astype(np.float64) - ref.astype(np.float64)).max())
    assert err <= tol * scale, (err, scale)


# --- the same maths: float32 rounding ----------------------------------------------------------


def test_mel_scale_and_filterbanks():
    f = np.array([0.0, 50.0, 999.0, 1000.0, 1001.0, 4000.0, 11025.0])
    assert_close(spectral.hz_to_mel(f), librosa.hz_to_mel(f))
    assert_close(spectral.mel_to_hz(spectral.hz_to_mel(f)), f, 1e-12)
    assert_close(spectral.mel_frequencies(130, 0.0, SR / 2), librosa.mel_frequencies(130, fmin=0.0, fmax=SR / 2))
    for sr, n_fft, n_mels in [(SR, 2048, 128), (16000, 1024, 64), (44100, 2048, 128)]:
        ours = spectral.mel_filterbank(sr, n_fft, n_mels)
        assert ours.dtype == np.float32 and ours.shape == (n_mels, 1 + n_fft // 2)
        assert_close(ours, librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels))
        assert_close(spectral.chroma_filterbank(sr, n_fft), librosa.filters.chroma(sr=sr, n_fft=n_fft))
    assert_close(spectral.chroma_filterbank(SR, tuning=0.3), librosa.filters.chroma(sr=SR, n_fft=2048, tuning=0.3))


@pytest.mark.slow
@pytest.mark.parametrize("hop", HOPS)
def test_stft_power_mel_db_onset_and_chroma_match_librosa(song, hop):
    P = spectral.stft_power(song, hop)
    ref = np.abs(librosa.stft(song, hop_length=hop)) ** 2
    assert P.dtype == np.float32 and P.shape == (1025, spectral.n_columns(song.size, hop))
    assert_close(P, ref)
    mel = spectral.mel_spectrogram(song, SR, hop)
    mel_ref = librosa.feature.melspectrogram(y=song, sr=SR, hop_length=hop)
    assert_close(mel, mel_ref)
    db = spectral.power_to_db(mel_ref, ref=float(mel_ref.max()))
    db_ref = librosa.power_to_db(mel_ref, ref=np.max)
    assert np.abs(db - db_ref).max() <= 1e-4  # dB: absolute
    assert_close(spectral.power_to_db(mel_ref), librosa.power_to_db(mel_ref))
    assert_close(
        spectral.onset_strength(db_ref, hop), librosa.onset.onset_strength(S=db_ref, sr=SR, hop_length=hop, n_fft=2048)
    )
    assert_close(
        spectral.chroma_columns(ref, spectral.chroma_filterbank(SR)),
        librosa.feature.chroma_stft(S=ref, sr=SR, tuning=0.0),
    )


@pytest.mark.parametrize("n", [1, 100, 2047, 2049, 5000])
def test_short_and_odd_lengths(n):
    y = np.random.default_rng(n).normal(size=n).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa: n_fft longer than the signal
        ref = np.abs(librosa.stft(y, hop_length=256)) ** 2
    assert_close(spectral.stft_power(y, 256), ref)


def test_silence_gives_zeros_not_nans():
    z = np.zeros(SR, np.float32)
    P = spectral.stft_power(z, 256)
    assert not P.any()
    assert not spectral.chroma_columns(P, spectral.chroma_filterbank(SR)).any()
    db = spectral.power_to_db(spectral.mel_power(P, spectral.mel_filterbank(SR)))
    assert np.isfinite(db).all() and not spectral.onset_strength(db, 256).any()
    h, p = spectral.hpss_masks(np.sqrt(P), 256)
    assert np.all(h == 0.5) and np.all(p == 0.5)  # librosa splits silent bins evenly (margin 1)


def test_soft_mask_matches_librosa():
    rng = np.random.default_rng(0)
    x, r = rng.random((50, 60)).astype(np.float32), rng.random((50, 60)).astype(np.float32)
    x[0, :5] = r[0, :5] = 0
    for power in (1.0, 2.0):
        assert_close(spectral.soft_mask(x, r, power), librosa.util.softmask(x, r, power=power, split_zeros=True))


@pytest.mark.slow
@pytest.mark.parametrize("hop", HOPS)
def test_hpss_masks_on_the_512_grid_are_librosas(song, hop):
    """librosa's effects.hpss filters a hop-512 STFT; every (512/hop)-th column of ours is one of its columns,
    and there the masks are librosa's to float32 rounding."""
    want_h, want_p = librosa.decompose.hpss(librosa.stft(song), mask=True)
    h, p = spectral.hpss_masks(np.sqrt(spectral.stft_power(song, hop)), hop)
    s = 512 // hop
    assert_close(h[:, ::s], want_h)
    assert_close(p[:, ::s], want_p)
    np.testing.assert_allclose(h + p, 1.0, atol=1e-6)  # margin 1: the masks split each bin


@pytest.mark.slow
@pytest.mark.parametrize("hop,block", [(128, 40), (256, 64), (512, 7), (256, 5000)])
def test_hpss_mel_in_blocks_is_the_whole_at_once(hop, block):
    y = demo_song(4.0)
    P = spectral.stft_power(y, hop)
    fb = spectral.mel_filterbank(SR)
    h, p = spectral.hpss_masks(np.sqrt(P), hop)
    got_h, got_p = spectral.hpss_mel(P, hop, fb, block=block)
    # the masks are identical; only the matrix product's rounding depends on the block's width
    assert_close(got_h, spectral.mel_power(P * np.square(h), fb), 1e-6)
    assert_close(got_p, spectral.mel_power(P * np.square(p), fb), 1e-6)


# --- different on purpose: stated tolerances ---------------------------------------------------


@pytest.mark.slow
def test_hpss_parts_are_close_to_librosas_waveform_hpss():
    """A part is ``|X|² · mask²`` here; librosa resynthesises each part and analyses it again. Measured on the
    demo song at 30 fps (hop 256), the pooled loudness envelopes (what pulse and motion use) correlate at 0.97
    (harmonic) and 0.99 (percussive), with the same peaks; the resynthesis smears each mask over the window
    overlap, which the masks here do not."""
    y = demo_song(12.0)
    hop, fps, n = 256, 30.0, 360
    P = spectral.stft_power(y, hop)
    masks = spectral.hpss_masks(np.sqrt(P), hop)
    fb = spectral.mel_filterbank(SR)
    for mask, part, min_corr in zip(masks, librosa.effects.hpss(y), (0.95, 0.98)):
        ours = envelopes.minmax(
            envelopes.pool_columns(spectral.mel_power(P * mask * mask, fb).max(axis=0), hop, SR, fps, n)
        )
        ref = librosa.feature.melspectrogram(y=part, sr=SR, hop_length=hop).max(axis=0)
        ref = envelopes.minmax(envelopes.pool_columns(ref, hop, SR, fps, n))
        assert np.corrcoef(ours, ref)[0, 1] > min_corr
        assert np.abs(ours - ref).max() < 0.35
    # the percussive part keeps the drums and drops the pad: its loudness peaks on the beats
    perc = envelopes.minmax(
        envelopes.pool_columns(spectral.mel_power(P * masks[1] ** 2, fb).max(axis=0), hop, SR, fps, n)
    )
    beats = np.round(np.arange(0, 12, 60 / BPM) * fps).astype(int)
    on = np.array([perc[max(0, b - 1) : b + 2].max() for b in beats])
    off = np.array([perc[b + 5 : b + 10].max() for b in beats[:-1]])
    assert on.min() > off.max()


def test_stft_chroma_follows_the_chords_at_least_as_well_as_chroma_cqt():
    """Lucid Sonic Dreams' chroma_cqt and this STFT chroma differ frame by frame (measured on the 30 s demo at 30
    fps: per-frame correlation 0.52, the same strongest pitch class in 56% of frames; class vectors, which
    accumulate and smooth the chroma, correlate at 0.62 with the same strongest class in 75% of frames). Both
    follow the music: against the demo's chords the STFT chroma is the closer of the two."""
    fps = 30.0
    y = demo_song(16.0)
    hop = envelopes.analysis_hop(SR, fps)
    n = int(16 * fps)
    ours = envelopes.pool_columns(
        spectral.chroma_columns(spectral.stft_power(y, hop), spectral.chroma_filterbank(SR)), hop, SR, fps, n, "mean"
    )
    cqt = envelopes.pool_columns(librosa.feature.chroma_cqt(y=y, sr=SR, hop_length=hop), hop, SR, fps, n, "mean")
    bar = 4 * 60 / BPM

    def in_chord(chroma):
        chords = [{p % 12 for p in PROGRESSION[int(i / fps / bar) % 4][1]} for i in range(n)]
        return np.mean([int(np.argmax(c)) in want for c, want in zip(chroma, chords)])

    assert in_chord(ours) > 0.85 and in_chord(ours) >= in_chord(cqt) - 0.02
    corr = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(ours, cqt)])
    assert corr > 0.35  # related, not the same


def test_pure_tones_have_their_pitch_class():
    for hz, cls in [(261.63, 0), (440.0, 9), (493.88, 11), (1318.5, 4)]:
        P = spectral.stft_power(tone(hz, 0.5), 256)
        c = spectral.chroma_columns(P, spectral.chroma_filterbank(SR))
        assert (c[:, 5:-5].argmax(axis=0) == cls).all(), hz


# --- per-column pieces compose (what a block-by-block, live analysis reuses) -------------------


@settings(max_examples=20, deadline=None)
@given(cut=st.integers(1, 80), hop=st.sampled_from(HOPS))
def test_blocks_of_columns_give_the_whole(cut, hop):
    y = click_track([0.1, 0.35, 0.6], 0.8)
    P = spectral.stft_power(y, hop)
    T = P.shape[1]
    cut = min(cut, T - 1)
    pad = np.pad(y, (1024, 1024))
    frames = np.stack([pad[j * hop : j * hop + 2048] for j in (0, cut, T - 1)])
    assert_close(spectral.power_spectrum(frames, spectral.hann_window()), P[:, [0, cut, T - 1]].T)
    db = spectral.power_to_db(spectral.mel_power(P, spectral.mel_filterbank(SR)), ref=1.0, top_db=None)
    flux = np.concatenate(
        [
            spectral.onset_columns(db[:, :cut], db[:, 1 : cut + 1]),
            spectral.onset_columns(db[:, cut:-1], db[:, cut + 1 :]),
        ]
    )
    whole = spectral.onset_strength(db, hop)
    d = spectral.onset_delay(hop)
    assert_close(whole[d:], flux[: T - d])


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 90),
    stride=st.sampled_from([1, 2, 4, 8]),
    size=st.sampled_from([3, 7, 31]),
    seed=st.integers(0, 2**16),
)
def test_median_rows_equals_scipy_row_by_row(rows, cols, stride, size, seed):
    from scipy.ndimage import median_filter

    x = np.random.default_rng(seed).random((rows, cols)).astype(np.float32)
    want = np.empty_like(x)
    for i in range(rows):
        for r in range(stride):
            if x[i, r::stride].size:
                want[i, r::stride] = median_filter(x[i, r::stride], size=size, mode="reflect")
    np.testing.assert_array_equal(spectral._median_rows(x, size, stride), want)
