"""Decoding audio files (lsd_jax.media.decode): formats, rates, channels, excerpts, limits and errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from audio_signals import SR, normalise, tone, tone_change, write

from lsd_jax.errors import AudioError
from lsd_jax.media import decode
from lsd_jax.media.ffmpeg import probe


def dominant_hz(y: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[np.argmax(spec)])


FORMATS = [
    ("wav", 8000, 1),
    ("wav", 48000, 2),
    ("wav", 44100, 6),
    ("flac", 44100, 2),
    ("flac", 22050, 1),
    ("ogg", 48000, 2),
    ("ogg", 22050, 1),
    ("mp3", 44100, 2),
    ("mp3", 8000, 1),
    ("m4a", 48000, 2),
    ("m4a", 22050, 1),
]


@pytest.mark.parametrize("fmt, sr, channels", FORMATS)
def test_formats_rates_and_channels_load_as_mono_22050(tmp_path, fmt, sr, channels):
    y = tone(440, 1.0, sr)
    data = np.stack([y * (1 - 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else y
    path = write(tmp_path / f"a.{fmt}", data, sr)
    got = decode.load_audio(path, sr=SR)
    assert got.dtype == np.float32 and got.ndim == 1
    lossy = fmt in ("mp3", "ogg", "m4a")
    assert abs(got.size - SR) <= (0.06 * SR if lossy else 1), got.size
    assert abs(dominant_hz(got) - 440) < 5
    assert 0.3 < np.abs(got).max() < 0.7
    raw, raw_sr = decode.read_audio(path)
    assert raw_sr == sr and raw.shape[1] == channels


def test_load_at_another_rate(tmp_path):
    path = write(tmp_path / "a.wav", tone(1000, 1.0, 44100), 44100)
    got = decode.load_audio(path, sr=8000)
    assert got.size == 8000 and abs(dominant_hz(got, 8000) - 1000) < 5


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "m4a"])
def test_start_and_duration_are_respected(tmp_path, fmt):
    sr = 44100
    y = tone_change(440, 880, 1.0, 2.0, sr)
    path = write(tmp_path / f"change.{fmt}", y, sr)
    before = decode.load_audio(path, sr=SR, start=0.4, duration=0.5)
    after = decode.load_audio(path, sr=SR, start=1.1, duration=0.5)
    assert abs(before.size - SR // 2) <= 1 and abs(after.size - SR // 2) <= 1
    assert abs(dominant_hz(before) - 440) < 5
    assert abs(dominant_hz(after) - 880) < 5
    # the change lands where it should inside an excerpt that straddles it
    straddle = decode.load_audio(path, sr=SR, start=0.75, duration=0.5)
    half = straddle.size // 2
    assert abs(dominant_hz(straddle[: half - 1000]) - 440) < 10
    assert abs(dominant_hz(straddle[half + 1000 :]) - 880) < 10
    # to the end when duration is None
    tail = decode.load_audio(path, sr=SR, start=1.5)
    assert abs(tail.size - SR // 2) <= (0.06 * SR if fmt in ("mp3", "ogg", "m4a") else 1)


def test_excerpt_is_sample_exact_for_lossless(tmp_path):
    y = normalise(np.random.default_rng(0).normal(size=SR * 2).astype(np.float32))
    path = write(tmp_path / "noise.flac", y, SR)
    full = decode.load_audio(path, sr=SR)
    part = decode.load_audio(path, sr=SR, start=0.5, duration=0.25)
    i = round(0.5 * SR)
    np.testing.assert_array_equal(part, full[i : i + part.size])
    assert part.size == round(0.25 * SR)


# --- resampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("orig", [8000, 44100, 48000])
def test_resample_is_librosas_soxr_hq(orig):
    import librosa

    y = np.random.default_rng(orig).normal(size=orig // 3 + 7).astype(np.float32)
    got = decode.resample(y, orig, SR)
    want = librosa.resample(y, orig_sr=orig, target_sr=SR, res_type="soxr_hq")
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "m4a"])
def test_max_seconds_refuses_longer_audio_and_allows_the_limit(tmp_path, fmt):
    path = write(tmp_path / f"long.{fmt}", tone(440, 3.0), SR)
    with pytest.raises(decode.TooLong, match=rf"long\.{fmt} holds more than 2 s"):
        decode.read_audio(path, max_seconds=2.0)
    with pytest.raises(AudioError, match="is 2.5 s long; at most 2 s"):
        decode.read_audio(path, duration=2.5, max_seconds=2.0)
    data, sr = decode.read_audio(path, start=1.0, max_seconds=2.0)  # 2 s are left: exactly the limit
    assert abs(data.shape[0] - 2 * sr) <= (0.06 * sr if fmt == "m4a" else 0)
    data, sr = decode.read_audio(path, duration=1.5, max_seconds=2.0)
    assert data.shape[0] == round(1.5 * sr)


def test_max_seconds_counts_decoded_audio_not_the_header(tmp_path, monkeypatch):
    """Two MP3s back to back (1 s, then 6 s): libsndfile believes the first one's Xing header (1 s), ffmpeg's
    header estimate says 5.5 s, and ffmpeg decodes 7.1 s. The limit holds on what is decoded, whatever the
    header claims."""
    first, second = write(tmp_path / "a.mp3", tone(440, 1.0), SR), write(tmp_path / "b.mp3", tone(660, 6.0), SR)
    path = tmp_path / "joined.mp3"
    path.write_bytes(first.read_bytes() + second.read_bytes())
    assert sf.info(str(path)).duration < 1.5
    data, sr = decode.read_audio(path, max_seconds=3.0)  # libsndfile: decodes only what it believes
    assert data.shape[0] <= 3 * sr

    def unreadable(*args, **kwargs):
        raise RuntimeError("libsndfile cannot read it")

    monkeypatch.setattr(decode, "_read_soundfile", unreadable)  # ffmpeg, as for m4a and other formats
    claimed = probe(path)[0]["duration"]
    assert claimed < 6.0
    with pytest.raises(decode.TooLong, match=r"joined\.mp3 holds more than 6 s"):
        decode.read_audio(path, max_seconds=6.0)
    data, sr = decode.read_audio(path, max_seconds=8.0)
    assert data.shape[0] > 6.5 * sr  # more than the header said, within the limit


@pytest.mark.parametrize("fmt", ["wav", "m4a"])
def test_a_huge_duration_means_to_the_end(tmp_path, fmt):
    path = write(tmp_path / f"one.{fmt}", tone(440, 1.0), SR)
    for d in (1e6, 1e15, 1e300):
        data, sr = decode.read_audio(path, duration=d)
        assert abs(data.shape[0] - sr) <= (0.06 * sr if fmt == "m4a" else 0), d
    assert decode.load_audio(path, sr=SR, start=0.5, duration=1e15).size == pytest.approx(SR // 2, abs=0.06 * SR)


# --- errors -------------------------------------------------------------------------------------


def test_bad_excerpts_are_audio_errors(tmp_path):
    path = write(tmp_path / "a.wav", tone(440, 1.0), SR)
    for kw in (
        dict(start=-1.0),
        dict(start=float("nan")),
        dict(duration=0.0),
        dict(duration=-2.0),
        dict(duration=float("nan")),
    ):
        with pytest.raises(AudioError, match="start|duration"):
            decode.read_audio(path, **kw)


def test_non_finite_samples_are_an_error(tmp_path):
    y = tone(440, 1.0)
    y[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav contains non-finite"):
        decode.load_audio(path, sr=SR)


# ----------------------------------------------------------------------------------------------------------------
# Hostile lengths (issue 29): what is decoded or resampled is bounded before it is allocated.


def _wav(path, rate: int, n_bytes: int):
    """A 16-bit mono PCM WAV of ``n_bytes`` of samples whose header says ``rate`` Hz (built by hand: no writer
    accepts 1 Hz)."""
    import struct

    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", n_bytes)
    samples = (np.sin(np.arange(n_bytes // 2) * 0.3) * 8000).astype("<i2").tobytes()
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + n_bytes) + body + samples)
    return path


@pytest.mark.parametrize("reader", ["libsndfile", "ffmpeg"])
def test_a_wav_whose_header_says_1_hz_is_refused(tmp_path, monkeypatch, reader):
    """A21: 88 KB whose header says 1 Hz is 44 100 s of audio: resampled to 22 050 Hz it was 3.6 GiB."""
    path = _wav(tmp_path / "sr1.wav", 1, 88_200)
    if reader == "ffmpeg":
        monkeypatch.setattr(decode, "_read_soundfile", lambda *a: (_ for _ in ()).throw(RuntimeError("no")))
    with pytest.raises(AudioError, match=r"sr1\.wav says its sample rate is 1 Hz"):
        decode.read_audio(path)
    with pytest.raises(AudioError, match="1 Hz"):
        decode.load_audio(path, sr=22050)
    good = _wav(tmp_path / "ok.wav", 8000, 16_000)  # telephone audio is read
    assert decode.read_audio(good)[1] == 8000


@pytest.mark.parametrize("reader", ["libsndfile", "ffmpeg"])
def test_more_audio_than_lsd_jax_decodes_is_refused_by_what_is_decoded(tmp_path, monkeypatch, reader):
    """A 10-hour FLAC used 6.8 GB before a confusing message: reading to the end stops at the cap (here 2 s for a
    5 s file, so the test stays small) with a TooLong naming the file."""
    path = write(tmp_path / "long.flac", tone(440, 5.0), SR)
    monkeypatch.setattr(decode, "MAX_AUDIO_SECONDS", 2.0)
    if reader == "ffmpeg":
        monkeypatch.setattr(decode, "_read_soundfile", lambda *a: (_ for _ in ()).throw(RuntimeError("no")))
    with pytest.raises(decode.TooLong, match=r"long\.flac holds more audio than lsd-jax decodes"):
        decode.read_audio(path)
    with pytest.raises(decode.TooLong):
        decode.read_audio(path, duration=1e300)  # "to the end"
    data, sr = decode.read_audio(path, start=1.0, duration=1.5)  # an excerpt within the cap is fine
    assert data.shape[0] == round(1.5 * sr)
    monkeypatch.setattr(decode, "MAX_AUDIO_SECONDS", 3600.0)
    monkeypatch.setattr(decode, "MAX_AUDIO_BYTES", 4 * SR * 3)  # the bytes cap: 3 s of mono
    with pytest.raises(decode.TooLong, match="GiB of samples"):
        decode.read_audio(path)


def test_resampling_is_bounded_before_allocating(monkeypatch):
    y = np.zeros(10_000, np.float32)
    monkeypatch.setattr(decode, "MAX_AUDIO_BYTES", 4 * 100_000)
    with pytest.raises(decode.TooLong, match="once resampled from 1000 Hz to 22050 Hz"):
        decode.resample(y, 1000, 22050, "x.wav")
    assert decode.resample(y, 1000, 8000).shape == (80_000,)


# --- length without decoding ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "flac", "m4a"])
def test_audio_length_reads_the_header_not_the_samples(tmp_path, fmt):
    path = write(tmp_path / f"a.{fmt}", tone(440, 2.5), SR)
    exact = fmt != "m4a"  # libsndfile counts frames; ffmpeg's header of an m4a rounds (and pads the encoder delay)
    assert decode.audio_length(path) == pytest.approx(2.5, abs=1e-9 if exact else 0.05)


def test_audio_length_refuses_what_is_no_audio(tmp_path):
    (tmp_path / "notes.mp3").write_text("these are notes\n" * 40)
    with pytest.raises(AudioError, match=r"notes\.mp3.*not an audio file"):
        decode.audio_length(tmp_path / "notes.mp3")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty \(0 bytes\): .*empty\.wav"):
        decode.audio_length(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match=r"not found: .*gone\.wav"):
        decode.audio_length(tmp_path / "gone.wav")
