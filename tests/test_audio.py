"""Audio loading and per-frame features (lsd_jax.audio.analysis)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from audio_signals import SR, click, click_track, high_hit, low_hit, normalise, place, silence, stereo, tone, write
from hypothesis import given, settings
from hypothesis import strategies as st

import lsd_jax
from lsd_jax.audio import analysis as audio
from lsd_jax.audio import spectral
from lsd_jax.errors import AudioError
from lsd_jax.media import decode, timing
from lsd_jax.params import make_params

FPS_LIST = [24.0, 25.0, 29.97, 30.0, 43.0, 60.0]


def dominant_hz(y: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[np.argmax(spec)])


def expected_frames(n: int, sr: int, fps: float) -> int:
    return math.ceil(Fraction(n) * Fraction(repr(fps)) / sr)


# --- frame timing -------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", FPS_LIST)
def test_frame_count_is_exact_for_common_rates(fps):
    for n in (1, 917, 918, 919, 22050, 22050 * 3 + 7, 661500, 10**7 + 3):
        assert timing.frame_count(n, SR, fps) == expected_frames(n, SR, fps)
    assert timing.frame_count(3 * SR, SR, 30.0) == 90  # no spurious extra frame from float error
    assert timing.frame_count(100 * SR, SR, 29.97) == 2997


@pytest.fixture(scope="module")
def clicks_song(tmp_path_factory):
    times = [0.5, 1.013, 1.5071, 2.2, 2.77, 3.33]
    path = write(tmp_path_factory.mktemp("clicks") / "clicks.wav", click_track(times, 4.0))
    return path, times


@pytest.mark.parametrize("fps", FPS_LIST)
def test_analysis_has_exactly_n_frames_at_the_requested_fps(clicks_song, fps):
    path, _ = clicks_song
    f = audio.analyze(path, make_params(fps=fps, duration=2.5))
    n = expected_frames(round(2.5 * SR), SR, fps)
    assert f.n_frames == n and f.fps == fps and f.sr == SR
    assert f.duration_s == pytest.approx(2.5)
    assert f.pulse.shape == f.motion.shape == (n,) and f.chroma.shape == (n, 12)
    for arr in (f.pulse, f.motion, f.chroma):
        assert arr.dtype == np.float32 and np.isfinite(arr).all()
        assert arr.min() >= 0.0 and arr.max() <= 1.0
    assert f.pulse.max() == 1.0 and f.pulse.min() == 0.0  # min-max normalised


def test_last_partial_frame_counts(tmp_path):
    path = write(tmp_path / "odd.wav", tone(440, 1.01, SR))
    f = audio.analyze(path, make_params(fps=10.0))
    assert f.n_frames == 11


@pytest.mark.slow
@pytest.mark.parametrize("fps", [24.0, 29.97, 43.0, 60.0])
@pytest.mark.parametrize("mode", ["loudness", "onset"])
def test_clicks_peak_in_the_frames_that_contain_them(clicks_song, fps, mode):
    path, times = clicks_song
    f = audio.analyze(path, make_params(fps=fps, pulse_mode=mode))
    frames = [int(Fraction(repr(t)) * Fraction(repr(fps))) for t in times]
    for t, i in zip(times, frames):
        lo = max(0, i - 4)
        peak = lo + int(np.argmax(f.pulse[lo : i + 5]))
        assert abs(peak - i) <= 1, (t, i, peak, f.pulse[lo : i + 5])
        assert f.pulse[peak] > 0.5
    # away from the clicks the envelope is low
    far = np.ones(f.n_frames, bool)
    for i in frames:
        far[max(0, i - 4) : i + 6] = False
    assert f.pulse[far].max() < 0.25


def test_soundtrack_is_the_songs_excerpt_at_its_rate_and_channels(tmp_path):
    sr = 48000
    y = stereo(tone(440, 3.0, sr), tone(660, 3.0, sr))
    song = write(tmp_path / "song.wav", y, sr)
    f = audio.analyze(song, make_params(start=1.5, duration=1.0))
    data, got_sr = f.soundtrack
    assert got_sr == sr and data.shape == (sr, 2) and data.dtype == np.float32
    np.testing.assert_allclose(data, y[int(1.5 * sr) : int(1.5 * sr) + sr], atol=1e-4)
    np.testing.assert_array_equal(data, decode.read_audio(song, start=1.5, duration=1.0)[0])
    other = write(tmp_path / "mix.flac", tone(330, 4.0, 44100), 44100)
    f = audio.analyze(song, make_params(start=0.5, output_audio=str(other)))
    data, got_sr = f.soundtrack
    assert got_sr == 44100 and data.shape == (int(3.5 * 44100), 1)
    np.testing.assert_array_equal(data, decode.read_audio(other, start=0.5)[0])
    with pytest.raises(AudioError, match=r"start=0\.5 s is beyond the end of .*short\.wav"):
        audio.analyze(song, make_params(start=0.5, output_audio=str(write(tmp_path / "short.wav", tone(330, 0.2)))))


# --- HPSS selection, stems, effects -------------------------------------------------------------


@pytest.fixture(scope="module")
def tone_and_clicks(tmp_path_factory):
    """A sustained tone that gets louder at 2 s, plus clicks that are not on the step."""
    seconds, clicks = 4.0, [0.7, 1.4, 2.6, 3.3]
    t = np.arange(int(seconds * SR)) / SR
    fades = np.clip(np.minimum(t, seconds - t) / 0.3, 0, 1)  # a song fades in and out
    swell = 0.1 + 0.3 * np.clip((t - 1.8) / 0.4, 0, 1)  # louder from ~2 s, gently (no attack)
    harm = np.sin(2 * np.pi * 330 * t) * swell * fades
    y = place(harm.astype(np.float32), clicks, click(), gain=1.5)
    return write(tmp_path_factory.mktemp("hpss") / "mix.wav", normalise(y)), clicks


def test_hpss_selection_rules(tone_and_clicks):
    path, clicks = tone_and_clicks
    fps = 25.0
    perc = audio.analyze(path, make_params(fps=fps, pulse_percussive=True, pulse_harmonic=False)).pulse
    harm = audio.analyze(path, make_params(fps=fps, pulse_percussive=False, pulse_harmonic=True)).pulse
    both = audio.analyze(path, make_params(fps=fps, pulse_percussive=True, pulse_harmonic=True)).pulse
    neither = audio.analyze(path, make_params(fps=fps, pulse_percussive=False, pulse_harmonic=False)).pulse
    click_frames = [int(c * fps) for c in clicks]
    # percussive: the clicks stand out, the tone's step does not
    for i in click_frames:
        assert perc[i - 1 : i + 2].max() > 0.5
    quiet = np.ones(perc.size, bool)
    for i in click_frames:
        quiet[i - 3 : i + 4] = False
    assert perc[quiet].max() < 0.3
    # harmonic: follows the tone's step, the clicks barely show
    step = int(2.0 * fps)
    assert harm[step + 3 : -3].mean() - harm[3 : step - 3].mean() > 0.6
    for i in click_frames:
        around = np.r_[harm[i - 4 : i - 2], harm[i + 3 : i + 5]]
        assert harm[i - 1 : i + 2].max() - np.median(around) < 0.15
    # both equal -> the raw mix, the same whichever way
    np.testing.assert_array_equal(both, neither)
    assert not np.allclose(both, perc) and not np.allclose(both, harm)


def test_an_excerpt_cut_inside_the_music_has_no_fake_hits_at_its_edges(tone_and_clicks):
    path, clicks = tone_and_clicks
    fps = 25.0
    # from 1.0 s to 3.0 s: the tone is loud at both cuts, the clicks at 1.4 and 2.6 s are inside
    f = audio.analyze(path, make_params(fps=fps, start=1.0, duration=2.0, pulse_mode="onset"))
    assert f.n_frames == 50
    assert f.pulse[:5].max() < 0.2 and f.pulse[-5:].max() < 0.2
    for c in (1.4, 2.6):
        i = int((c - 1.0) * fps)
        assert f.pulse[i - 1 : i + 2].max() > 0.5
    loud = audio.analyze(path, make_params(fps=fps, start=1.0, duration=2.0)).pulse
    assert loud[:5].max() < 0.3 and loud[-5:].max() < 0.3


def test_hpss_runs_once_per_signal(tone_and_clicks, monkeypatch, tmp_path):
    calls = []
    real = spectral.hpss_mel

    def counting(power, hop, fb, **kw):
        calls.append(power.shape)
        return real(power, hop, fb, **kw)

    monkeypatch.setattr(spectral, "hpss_mel", counting)
    path, _ = tone_and_clicks
    fx = lsd_jax.EffectsGenerator(lambda a, s, amp: a, percussive=True)
    params = make_params(
        fps=20.0,
        pulse_percussive=True,
        motion_harmonic=True,
        motion_percussive=False,
        contrast_strength=0.5,
        flash_strength=0.5,
        custom_effects=[fx],
    )
    f = audio.analyze(path, params)
    assert len(calls) == 1
    assert f.contrast is not None and f.flash is not None and len(f.effects) == 1
    np.testing.assert_array_equal(f.contrast, f.pulse)  # same signal, same envelope
    stem = write(tmp_path / "stem.wav", click_track([1.0], 4.0))
    calls.clear()
    fx2 = lsd_jax.EffectsGenerator(lambda a, s, amp: a, audio=str(stem), percussive=True)
    audio.analyze(path, params.replace(custom_effects=[fx, fx2], contrast_audio=str(stem)))
    assert len(calls) == 2  # the song and the stem, once each


def test_effect_envelopes_only_when_enabled(tone_and_clicks):
    path, _ = tone_and_clicks
    base = make_params(fps=20.0)
    f = audio.analyze(path, base)
    assert f.contrast is None and f.flash is None and f.effects == ()
    f = audio.analyze(path, base.replace(contrast_strength=0.0))
    assert f.contrast is not None and f.flash is None
    f = audio.analyze(path, base.replace(flash_percussive=False))
    assert f.contrast is None and f.flash is not None
    mix = audio.analyze(path, base.replace(pulse_percussive=False)).pulse
    np.testing.assert_array_equal(f.flash, mix)  # flash_percussive=False -> the mix
    fx = [
        lsd_jax.EffectsGenerator(lambda a, s, amp: a, percussive=False),
        lsd_jax.EffectsGenerator(lambda a, s, amp: a, percussive=True),
    ]
    f = audio.analyze(path, base.replace(custom_effects=fx))
    assert len(f.effects) == 2 and all(e.shape == (f.n_frames,) and e.dtype == np.float32 for e in f.effects)
    np.testing.assert_array_equal(f.effects[0], mix)
    np.testing.assert_array_equal(f.effects[1], f.pulse)


def test_stems_override_and_are_aligned_to_the_song(tmp_path):
    song = write(tmp_path / "song.wav", tone(262, 4.0, SR, amp=0.3))  # a C, no hits at all
    short = write(tmp_path / "short.flac", click_track([0.6, 1.6], 2.0, sr=44100), 44100)  # shorter, other rate
    long_ = write(tmp_path / "long.wav", stereo(click_track([1.2, 3.6, 5.0], 6.0), click_track([1.2, 3.6, 5.0], 6.0)))
    a440 = write(tmp_path / "a.ogg", tone(440, 4.0, SR))
    fps = 20.0
    params = make_params(
        fps=fps, pulse_audio=str(short), motion_audio=str(long_), class_audio=str(a440), flash_audio=str(short)
    )
    f = audio.analyze(song, params)
    assert f.n_frames == 80
    for arr in (f.pulse, f.motion, f.flash):
        assert arr.shape == (80,)
    assert abs(int(np.argmax(f.pulse[:20])) - 12) <= 1 and abs(int(np.argmax(f.pulse[20:40])) + 20 - 32) <= 1
    assert f.pulse[45:].max() == 0.0  # zero-padded past the stem's end
    assert abs(int(np.argmax(f.motion[:50])) - 24) <= 1 and abs(int(np.argmax(f.motion[50:])) + 50 - 72) <= 1
    assert np.bincount(f.chroma.argmax(axis=1), minlength=12).argmax() == 9  # A, from class_audio
    # the same start/duration apply to the stems
    f = audio.analyze(song, params.replace(start=1.0, duration=2.0))
    assert f.n_frames == 40
    assert abs(int(np.argmax(f.pulse)) - 12) <= 1  # the click at 1.6 s is at 0.6 s of the excerpt
    assert f.pulse[25:].max() == 0.0


def test_silent_or_ended_stems_give_zeros(tmp_path):
    song = write(tmp_path / "song.wav", click_track([0.5, 1.5], 3.0))
    quiet = write(tmp_path / "quiet.wav", silence(3.0))
    short = write(tmp_path / "short.wav", click_track([0.2], 0.5))
    with pytest.warns(UserWarning, match=r"quiet\.wav has no audio in the excerpt"):
        f = audio.analyze(song, make_params(fps=10.0, pulse_audio=str(quiet), contrast_audio=str(quiet)))
    assert f.pulse.shape == (30,) and not f.pulse.any() and not f.contrast.any()
    assert f.motion.any()
    with pytest.warns(UserWarning, match="no audio in the excerpt"):
        f = audio.analyze(song, make_params(fps=10.0, start=1.0, motion_audio=str(short)))
    assert f.motion.shape == (20,) and not f.motion.any()


def test_chroma_of_a440_peaks_at_a(tmp_path):
    path = write(tmp_path / "a440.wav", tone(440, 2.0, SR))
    f = audio.analyze(path, make_params(fps=25.0))
    assert f.chroma.shape == (50, 12)
    assert (f.chroma.argmax(axis=1) == 9).mean() > 0.9
    assert f.chroma[:, 9].mean() > 0.9 and np.delete(f.chroma, 9, axis=1).mean() < 0.5


def test_chroma_is_zero_in_silence_not_amplified_noise(tmp_path):
    y = np.concatenate([silence(1.5), tone(440, 1.5)])
    f = audio.analyze(write(tmp_path / "late_a.wav", y), make_params(fps=10.0))
    assert f.chroma.shape == (30, 12)
    assert not f.chroma[:15].any()  # frames entirely before the note
    assert (f.chroma[16:].argmax(axis=1) == 9).all()
    assert f.pulse[:14].max() < 1e-3 and f.motion[:14].max() < 1e-3


@pytest.mark.parametrize("fps", [1.0, 240.0])
def test_extreme_frame_rates(tmp_path, fps):
    path = write(tmp_path / "c.wav", click_track([0.5, 1.25], 2.0))
    f = audio.analyze(path, make_params(fps=fps, speed_fpm=0))
    assert f.n_frames == int(2 * fps) and np.isfinite(f.pulse).all() and f.chroma.shape == (f.n_frames, 12)
    if fps == 240.0:
        assert abs(int(np.argmax(f.pulse)) - 120) <= 2 or abs(int(np.argmax(f.pulse)) - 300) <= 2


def test_low_and_high_hits_both_drive_the_pulse(tmp_path):
    y = place(place(silence(3.0) + tone(220, 3.0, amp=0.002), [0.5, 1.5], low_hit()), [1.0, 2.5], high_hit())
    path = write(tmp_path / "hits.wav", normalise(y))
    f = audio.analyze(path, make_params(fps=20.0, pulse_mode="onset"))
    for t in (0.5, 1.0, 1.5, 2.5):
        i = int(t * 20)
        assert f.pulse[i - 1 : i + 2].max() > 0.1, t


def test_bands_and_beats_come_from_the_songs_analysis(tmp_path):
    from lsd_jax.audio.bands import band_envelopes

    times = list(np.arange(0.25, 9.9, 0.5))  # 120 BPM
    path = write(tmp_path / "clicks.wav", place(tone(110, 10.0, amp=0.05), times, click()))
    fps, start = 24.0, 2.0
    plain = audio.analyze(path, make_params(fps=fps, start=start, duration=6.0))
    assert plain.bands is None and plain.beats is None
    f = audio.analyze(
        path,
        make_params(
            fps=fps,
            start=start,
            duration=6.0,
            speed_fpm="beat",
            band_react=(0.2, 0.1, 0.1),
            band_edges_hz=(300.0, 3000.0),
        ),
    )
    assert f.n_frames == 144 and f.bands.shape == (144, 3) and f.bands.dtype == np.float32
    np.testing.assert_array_equal(f.pulse, plain.pulse)
    # the bands are band_envelopes of the song with its second of context before and after the excerpt
    y = decode.load_audio(path, sr=SR, start=start - 1.0, duration=8.0)
    np.testing.assert_array_equal(f.bands, band_envelopes(y, SR, fps, 144, (300.0, 3000.0), offset=1.0, duration=6.0))
    assert abs(f.beats.tempo_bpm - 120.0) < 2.0
    inside = [(t - start) * fps for t in times if 0 <= t - start < 6.0 - 0.5 / fps]
    assert len(f.beats.beat_frames) >= len(inside) - 1
    assert max(np.abs(np.array(inside) - b).min() for b in f.beats.beat_frames) <= 1.0


def test_max_seconds_is_measured_on_the_decoded_song(tmp_path):
    for fmt in ("wav", "m4a"):
        path = write(tmp_path / f"three.{fmt}", tone(440, 3.0))
        with pytest.raises(decode.TooLong, match=rf"three\.{fmt} holds more than 2 s"):
            audio.analyze(path, make_params(), max_seconds=2.0)
        with pytest.raises(decode.TooLong, match="2.5 s long; this renders at most 2 s"):
            audio.analyze(path, make_params(duration=2.5), max_seconds=2.0)
        f = audio.analyze(path, make_params(start=1.5, fps=10.0), max_seconds=2.0)
        assert abs(f.n_frames - 15) <= (1 if fmt == "m4a" else 0)


@pytest.mark.slow
def test_a_render_with_beat_lock_and_bands_decodes_the_song_once(tmp_path, monkeypatch):
    """speed_fpm="beat" and band_react used to decode the song twice more (and recompute the mel): now one
    decode gives the features, the beats, the bands and the soundtrack that is muxed."""
    import nvidia_pickles as nv
    from sg2_state import random_sg2_state, sg2_config

    from lsd_jax.media.video import probe_video

    song = write(tmp_path / "song.wav", place(tone(330, 4.0, amp=0.05), list(np.arange(0.25, 4.0, 0.5)), click()))
    config = sg2_config(img_resolution=32)
    pkl = nv.write_torch_pickle(tmp_path / "g.pkl", config, random_sg2_state(config, 7))
    decoded = []
    for name in ("_read_soundfile", "_read_ffmpeg"):
        real = getattr(decode, name)

        def counting(p, *args, _real=real, **kw):
            decoded.append(str(p))
            return _real(p, *args, **kw)

        monkeypatch.setattr(decode, name, counting)
    out = lsd_jax.render(
        song,
        str(pkl),
        output=tmp_path / "v.mp4",
        fps=10.0,
        speed_fpm="beat",
        band_react=(0.3, 0.2, 0.1),
        progress=False,
    )
    assert decoded == [str(song)]
    info = probe_video(out)
    assert info["n_frames"] == 40 and info["audio_streams"] == 1
    assert info["audio_duration"] == pytest.approx(4.0, abs=0.03)


# --- errors -------------------------------------------------------------------------------------


def _text_as_mp3(d):
    (d / "notes.mp3").write_text("these are my lyrics, not audio\n" * 20)
    return d / "notes.mp3"


def _random_bytes_wav(d):
    (d / "noise.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    return d / "noise.wav"


def _empty(d):
    (d / "empty.wav").write_bytes(b"")
    return d / "empty.wav"


@pytest.mark.parametrize(
    "make, match",
    [
        (_text_as_mp3, r"cannot decode .*notes\.mp3.*not an audio file"),
        (_random_bytes_wav, r"cannot decode .*noise\.wav"),
        (_empty, r"empty.*empty\.wav"),
        (lambda d: d / "missing.wav", r"not found: .*missing\.wav"),
        (lambda d: d, r"directory"),
        (lambda d: 42, r"path .*got int"),
    ],
)
def test_unreadable_files_raise_audio_error_naming_the_file(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(AudioError, match=match):
        decode.load_audio(path, sr=SR)
    with pytest.raises(AudioError, match=match):
        audio.analyze(path, make_params())


def test_silent_song_is_an_error(tmp_path):
    path = write(tmp_path / "silent.wav", silence(2.0) + 1e-6)
    with pytest.raises(AudioError, match=r"silent\.wav is silent"):
        audio.analyze(path, make_params())


def test_excerpt_shorter_than_one_frame_is_an_error(tmp_path):
    path = write(tmp_path / "tiny.wav", np.full(10, 0.5, np.float32))
    with pytest.raises(AudioError, match=r"tiny\.wav is too short.*one frame"):
        audio.analyze(path, make_params())
    path = write(tmp_path / "short.wav", tone(440, 1.0))
    with pytest.raises(AudioError, match="shorter than one frame"):
        audio.analyze(path, make_params(start=0.99, fps=24.0))  # 10 ms left, a frame is 41.7 ms


def test_start_past_the_end_is_an_error(tmp_path):
    for fmt in ("wav", "m4a"):
        path = write(tmp_path / f"one.{fmt}", tone(440, 1.0))
        with pytest.raises(AudioError, match=rf"start=5 s is beyond the end of .*one\.{fmt}"):
            decode.load_audio(path, sr=SR, start=5.0)
        with pytest.raises(AudioError, match="beyond the end"):
            audio.analyze(path, make_params(start=5.0))


def test_missing_stem_names_the_stem(tmp_path):
    song = write(tmp_path / "song.wav", tone(440, 1.0))
    with pytest.raises(AudioError, match=r"not found: .*nostem\.wav"):
        audio.analyze(song, make_params(pulse_audio=str(tmp_path / "nostem.wav")))


# --- invariants ---------------------------------------------------------------------------------

fps_values = st.one_of(
    st.sampled_from(FPS_LIST + [30000 / 1001, 24000 / 1001, 12.5, 240.0, 1.0]), st.floats(1.0, 240.0, allow_nan=False)
)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 10**8), sr=st.sampled_from([8000, 16000, 22050, 44100, 48000]), fps=fps_values)
def test_frames_cover_the_audio_and_no_more(n, sr, fps):
    N = timing.frame_count(n, sr, fps)
    q = timing.fps_fraction(fps)
    dur = Fraction(n, sr)
    assert Fraction(N) / q >= dur  # every sample lies in a frame
    if n > 0:
        assert Fraction(N - 1) / q < dur  # the last frame starts before the end
    else:
        assert N == 0
    assert abs(float(q) - fps) <= 1e-6 * fps
    assert timing.frame_count(n + 1, sr, fps) >= N


def test_running_normalization_keeps_the_rest_pulsing_after_one_loud_hit(tmp_path):
    """A click every 0.5 s, one of them 14 dB louder: the global min-max (Lucid Sonic Dreams) flattens every
    other click to a few percent; the running one forgets the loud hit and the clicks pulse fully again."""
    fps, seconds, loud_at = 30.0, 16.0, 2.25
    times = [t for t in np.arange(0.25, seconds, 0.5) if abs(t - loud_at) > 1e-6]
    y = place(place(tone(220, seconds, SR, amp=0.002), times, click(), gain=0.1), [loud_at], click(), gain=0.5)
    path = write(tmp_path / "loud_hit.wav", y)
    late = [t for t in times if t >= 10.0]

    def peaks_and_troughs(pulse):
        peaks = [pulse[int(t * fps) : int(t * fps) + 3].max() for t in late]
        troughs = [pulse[int((t + 0.25) * fps)] for t in late[:-1]]
        return np.array(peaks), np.array(troughs)

    flat = audio.analyze(path, make_params(fps=fps)).pulse
    running = audio.analyze(path, make_params(fps=fps, normalize="running")).pulse
    for env in (flat, running):
        assert env[int(loud_at * fps) : int(loud_at * fps) + 3].max() == 1.0
    peaks, _ = peaks_and_troughs(flat)
    assert peaks.max() < 0.1, peaks  # flattened
    peaks, troughs = peaks_and_troughs(running)
    assert peaks.min() > 0.8 and troughs.max() < 0.2, (peaks, troughs)  # still pulsing


# --- chroma="cqt": Lucid Sonic Dreams' chroma, librosa's chroma_cqt (issue 26) -------------------------------------


def _chord(seconds: float = 2.0) -> np.ndarray:
    """A C major triad with a little of each octave above: a signal whose chroma the two analyses read differently."""
    notes = (261.63, 329.63, 392.0, 523.25, 659.26)
    return normalise(sum(tone(f, seconds, amp=0.2) for f in notes), 0.5)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")  # librosa's own call, on a short signal
def test_cqt_chroma_is_librosas_chroma_cqt_pooled_into_frames(tmp_path):
    """At fps = sr/512 each frame holds exactly two analysis columns (hop 256): the frame's chroma is the mean of
    librosa's ``chroma_cqt(y=y, sr=sr, hop_length=256)`` over them, on the very samples the analysis decoded."""
    import librosa

    path = write(tmp_path / "chord.wav", _chord())
    fps = Fraction(SR, 512)
    f = audio.analyze(path, make_params(fps=float(fps), chroma="cqt"))
    data, sr = decode.read_audio(path)
    y = decode.to_mono(data)
    assert sr == SR and audio.analysis_hop(SR, fps) == 256
    C = librosa.feature.chroma_cqt(y=y, sr=SR, hop_length=256)  # (12, 1 + n // 256)
    n = f.n_frames
    assert n == math.ceil(y.size / 512) and C.shape[1] == 2 * n - 1  # the last frame holds one column
    want = np.concatenate([C[:, : 2 * (n - 1)].reshape(12, n - 1, 2).mean(axis=2), C[:, -1:]], axis=1).T
    np.testing.assert_allclose(f.chroma, want, atol=1e-5)


@pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")
def test_cqt_chroma_matches_lsds_own_call_on_a_steady_chord(tmp_path):
    """Lucid Sonic Dreams' call, at its own hop (512 samples at 43 fps), on a steady chord: the same per-frame
    chroma away from the edges; the STFT chroma is a different reading of the same chord."""
    import librosa

    y = _chord(3.0)
    path = write(tmp_path / "chord.wav", y)
    cqt = audio.analyze(path, make_params(fps=43.0, chroma="cqt")).chroma
    stft = audio.analyze(path, make_params(fps=43.0)).chroma
    lsd = librosa.feature.chroma_cqt(y=decode.to_mono(decode.read_audio(path)[0]), sr=SR, hop_length=512).T
    inner = slice(20, 100)  # 0.5 s to 2.3 s: clear of the CQT's long low filters at the edges
    np.testing.assert_allclose(cqt[inner], lsd[inner], atol=0.005)
    assert np.abs(stft[inner] - lsd[inner]).max() > 0.1


def test_chroma_choice_changes_the_class_vectors(tmp_path):
    from lsd_jax.engine.latents import make_latents

    path = write(tmp_path / "chord.wav", _chord())
    c = {}
    for kind in ("stft", "cqt"):
        p = make_params(fps=25.0, chroma=kind, classes=list(range(12)), class_smooth_seconds=0)
        f = audio.analyze(path, p)
        c[kind] = make_latents(f.pulse, f.motion, f.chroma, p, fps=25.0, z_dim=4, c_dim=12).c
    assert c["stft"].shape == c["cqt"].shape == (50, 12)
    assert np.abs(c["stft"] - c["cqt"]).max() > 0.1
    # both still hear a C major chord: C (0), E (4) and G (7) lead the class vector at the end
    for v in c.values():
        assert set(np.argsort(-v[-1])[:3]) == {0, 4, 7}
