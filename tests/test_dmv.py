"""Deep Music Visualizer mode: its noise and class vectors follow the original algorithm on a synthetic song.

``_original`` below is a direct NumPy transcription of the steps of msieg/deep-music-visualizer's ``visualize.py``
(1000-wide class vectors, Python loops, float64), fed the same randomness (classes, initial noise, jitter table) as
the JAX implementation.
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import librosa
import numpy as np
import pytest
from audio_signals import SR, tone

from lsd_jax.dmv import vectors as dmv
from lsd_jax.dmv.params import DMV_PARAMS
from lsd_jax.errors import AudioError, ParamError

PITCH_A, PITCH_C = 9, 0  # chroma rows (C, C#, ..., B)


def _song() -> np.ndarray:
    """Quiet A4, then loud C5, then quiet A4 again: 2 s each, with soft onsets so the gradient stays tame."""
    parts = [tone(440.0, 2.0, amp=0.03), tone(523.25, 2.0, amp=0.6), tone(440.0, 2.0, amp=0.03)]
    ramp = np.minimum(np.arange(parts[0].size) / 400.0, 1.0).astype(np.float32)
    return np.concatenate([p * ramp for p in parts])


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return _song()


@pytest.fixture(scope="module")
def features(song) -> dmv.DMVFeatures:
    return dmv.dmv_features(song, SR, 512)


def _original(y: np.ndarray, p: dmv.DMVParams, classes: list[int], nv1: np.ndarray, jitter_table: np.ndarray):
    """visualize.py, step by step (its variable names), with the given randomness."""
    frame_length = p.frame_length
    pitch_sensitivity = (300 - p.pitch_sensitivity) * 512 / frame_length
    tempo_sensitivity = p.tempo_sensitivity * frame_length / 512
    num_classes, depth, truncation, batch_size = p.num_classes, p.depth, p.truncation, p.batch_size
    smooth_factor = int(p.smooth_factor * 512 / frame_length) if p.smooth_factor > 1 else p.smooth_factor
    seconds = len(y) / SR
    frame_lim = int(np.floor(seconds * 22050 / frame_length / batch_size))

    spec = librosa.feature.melspectrogram(y=y, sr=SR, n_mels=128, fmax=8000, hop_length=frame_length)
    specm = np.mean(spec, axis=0)
    gradm = np.gradient(specm)
    gradm = gradm / np.max(gradm)
    gradm = gradm.clip(min=0)
    specm = (specm - np.min(specm)) / np.ptp(specm)
    chroma = librosa.feature.chroma_cqt(y=y, sr=SR, hop_length=frame_length)
    chromasort = np.argsort(np.mean(chroma, axis=1))[::-1]

    classes = list(classes)
    if p.sort_classes_by_power:
        classes = [classes[s] for s in np.argsort(chromasort[:num_classes])]
    cv1 = np.zeros(1000)
    for pi, pp in enumerate(chromasort[:num_classes]):
        if num_classes < 12:
            cv1[classes[pi]] = chroma[pp][np.min([np.where(chrow > 0)[0][0] for chrow in chroma])]
        else:
            cv1[classes[pp]] = chroma[pp][np.min([np.where(chrow > 0)[0][0] for chrow in chroma])]
    class_vectors, noise_vectors = [cv1], [nv1.astype(np.float64)]
    cvlast, nvlast = cv1, nv1.astype(np.float64)
    update_dir = np.zeros(128)
    for ni, n in enumerate(nv1):
        update_dir[ni] = 1 if n < 0 else -1
    update_last = np.zeros(128)

    def normalize_cv(cv2):
        min_class_val = min(i for i in cv2 if i != 0)
        for ci, c in enumerate(cv2):
            if c == 0:
                cv2[ci] = min_class_val
        return (cv2 - min_class_val) / np.ptp(cv2)

    for i in range(len(gradm)):
        if i % 200 == 0:
            jitters = jitter_table[i // 200].astype(np.float64)
        nv1_ = nvlast
        update = np.array([tempo_sensitivity for k in range(128)]) * (gradm[i] + specm[i]) * update_dir * jitters
        update = (update + update_last * 3) / 4
        update_last = update
        nv2 = nv1_ + update
        noise_vectors.append(nv2)
        nvlast = nv2
        for ni, n in enumerate(nv2):
            if n >= 2 * truncation - tempo_sensitivity:
                update_dir[ni] = -1
            elif n < -2 * truncation + tempo_sensitivity:
                update_dir[ni] = 1
        cv2 = np.zeros(1000)
        for j in range(num_classes):
            cv2[classes[j]] = (cvlast[classes[j]] + ((chroma[chromasort[j]][i]) / (pitch_sensitivity))) / (
                1 + (1 / (pitch_sensitivity))
            )
        if num_classes > 6:
            cv2 = normalize_cv(cv2)
        else:
            cv2 = cv2 / np.max(cv2)
        cv2 = cv2 * depth
        if np.std(cv2[np.where(cv2 != 0)]) < 0.0000001:
            cv2[classes[0]] = cv2[classes[0]] + 0.01
        class_vectors.append(cv2)
        cvlast = cv2

    if smooth_factor != 1:
        terp = []
        for c in range(int(np.floor(len(class_vectors) / smooth_factor) - 1)):
            ci = c * smooth_factor
            cva = np.mean(class_vectors[int(ci) : int(ci) + smooth_factor], axis=0)
            cvb = np.mean(class_vectors[int(ci) + smooth_factor : int(ci) + smooth_factor * 2], axis=0)
            for j in range(smooth_factor):
                terp.append(cva * (1 - j / (smooth_factor - 1)) + cvb * (j / (smooth_factor - 1)))
        class_vectors = terp
    n_frames = 0
    for i in range(frame_lim):
        if (i + 1) * batch_size > len(class_vectors):
            break
        n_frames += batch_size
    return (
        np.array(noise_vectors)[:n_frames],
        np.array(class_vectors)[:n_frames],
        dict(specm=specm, gradm=gradm, chroma=chroma, chromasort=chromasort),
    )


CASES = {
    "defaults": {},
    "fast pitch, 4 classes": dict(pitch_sensitivity=290, num_classes=4, depth=0.6, truncation=0.4),
    "sorted, jittery, no smoothing": dict(
        sort_classes_by_power=True, jitter=0.9, smooth_factor=1, batch_size=7, tempo_sensitivity=0.6
    ),
    "frame_length 1024": dict(frame_length=1024, smooth_factor=10, num_classes=7),
    "one class (the +0.01 rule every frame)": dict(num_classes=1, classes=[5], smooth_factor=1),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_vectors_follow_the_original(song, case) -> None:
    p = dmv.DMVParams(resolution=128, seed=3, **CASES[case])
    feats = dmv.dmv_features(song, SR, p.frame_length)
    classes, nv0, jitters = dmv.random_inputs(jax.random.key(p.seed), feats.specm.size, p)
    assert len(set(classes.tolist())) == 12 and np.abs(nv0).max() <= 2 * p.truncation
    assert set(np.unique(jitters)) <= {1.0, np.float32(1 - p.jitter)}
    out = dmv.dmv_vectors(feats, p, classes, nv0, jitters)
    noise, cvecs, ref = _original(song, p, list(classes), nv0, jitters)
    np.testing.assert_allclose(feats.specm, ref["specm"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(feats.gradm, ref["gradm"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(feats.chroma, ref["chroma"], rtol=1e-6, atol=1e-9)
    assert out.n_frames == noise.shape[0] > 0 and out.n_frames % p.batch_size == 0
    np.testing.assert_allclose(out.noise, noise, atol=2e-5)
    np.testing.assert_allclose(out.class_vectors(), cvecs, atol=2e-5)
    assert out.fps == Fraction(22050, p.frame_length)


@pytest.mark.slow
def test_pitch_changes_move_the_class_mix_and_loudness_moves_the_noise(song) -> None:
    p = dmv.DMVParams(pitch_sensitivity=290, smooth_factor=4, batch_size=1, seed=0)
    feats = dmv.dmv_features(song, SR, p.frame_length)
    out = dmv.deep_music_vectors(feats, p)
    fps = float(p.fps)
    a_end, c_end = int(1.9 * fps), int(3.9 * fps)  # last frames of the A and the C section
    chromasort = dmv.pitch_order(feats.chroma)
    classes = dmv.random_inputs(jax.random.key(0), feats.specm.size, p)[0]
    class_of = {int(pitch): int(classes[j]) for j, pitch in enumerate(chromasort)}  # slot j <- j-th pitch
    mix = out.class_vectors()
    assert np.argmax(mix[a_end]) == class_of[PITCH_A]
    assert np.argmax(mix[c_end]) == class_of[PITCH_C]
    assert mix[c_end, class_of[PITCH_A]] < mix[a_end, class_of[PITCH_A]] - 0.3
    steps = np.abs(np.diff(out.noise, axis=0)).mean(axis=1)
    quiet, loud = steps[int(0.5 * fps) : a_end].mean(), steps[int(2.5 * fps) : c_end].mean()
    assert loud > 5 * quiet


def test_scan_is_compiled_once_for_new_settings(features) -> None:
    p = dmv.DMVParams(seed=1)
    dmv.deep_music_vectors(features, p)
    before = dmv.dmv_scan._cache_size()
    for kw in (dict(tempo_sensitivity=0.5), dict(pitch_sensitivity=100, depth=0.3), dict(truncation=0.5)):
        dmv.deep_music_vectors(features, dmv.DMVParams(seed=1, **kw))
    assert dmv.dmv_scan._cache_size() == before


@pytest.mark.slow
def test_seed_reproducible_and_names_accepted(features) -> None:
    names = [
        "goldfish",
        "daisy",
        207,
        "volcano",
        "coral reef",
        "jellyfish",
        "tabby",
        "lemon",
        "fig",
        "bubble",
        "alp",
        "n01443537",
    ]
    p = dmv.DMVParams(classes=names, seed=5)
    a, b = dmv.deep_music_vectors(features, p), dmv.deep_music_vectors(features, p)
    np.testing.assert_array_equal(a.noise, b.noise)
    np.testing.assert_array_equal(a.class_values, b.class_values)
    assert sorted(a.class_indices.tolist()) == sorted({1, 985, 207, 980, 973, 107, 281, 951, 952, 971, 970})
    c = dmv.deep_music_vectors(features, dmv.DMVParams(classes=names, seed=6))
    assert not np.array_equal(a.noise, c.noise)


def test_params_defaults_derived_values_and_errors() -> None:
    p = dmv.DMVParams()
    assert (
        p.resolution,
        p.pitch_sensitivity,
        p.tempo_sensitivity,
        p.depth,
        p.num_classes,
        p.jitter,
        p.frame_length,
        p.truncation,
        p.smooth_factor,
        p.batch_size,
        p.output_file,
    ) == (512, 220, 0.25, 1.0, 12, 0.5, 512, 1.0, 20, 30, "output.mp4")
    assert [p.name for p in DMV_PARAMS] == list(dmv.DMVParams.__dataclass_fields__)
    q = dmv.DMVParams(frame_length=1024, smooth_factor=20, pitch_sensitivity=250, tempo_sensitivity=0.5)
    assert (q.pitch_rate, q.tempo_rate, q.smooth_frames, q.fps) == (25.0, 1.0, 10, Fraction(22050, 1024))
    for bad, match in [
        (dict(resolution=300), "resolution"),
        (dict(frame_length=500), "multiple of 64"),
        (dict(truncation=0), "truncation"),
        (dict(num_classes=13), "num_classes"),
        (dict(classes=[1, 2, 3]), "12 or num_classes"),
        (dict(classes=["not a class"]), "ImageNet"),
        (dict(smooth_factor=2, frame_length=2048), "smooth_factor"),
        (dict(depth=0), "depth"),
        (dict(jitter=1.5), "jitter"),
        (dict(pitch_sensitivity=300), "pitch_sensitivity"),
    ]:
        with pytest.raises(ParamError, match=match):
            dmv.DMVParams(**bad)


def test_smooth_and_frame_count_edges() -> None:
    v = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(dmv.smooth(v, 1), v)
    out = np.asarray(dmv.smooth(v, 3))  # bins [0,1,2] [3,4,5] [6,7,8]: means 1, 4, 7
    np.testing.assert_allclose(out[:, 0], [1, 2.5, 4, 4, 5.5, 7])
    assert dmv.smooth(v, 6).shape == (0, 1)
    p = dmv.DMVParams(batch_size=30, duration=2)
    assert dmv.frame_count(10 * SR, 10_000, p) == math.floor(2 * SR / 512 / 30) * 30 == 60
    assert dmv.frame_count(10 * SR, 59, p) == 30


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
def test_degenerate_songs_are_clear_errors(features) -> None:
    with pytest.raises(AudioError, match="silent"):
        dmv.dmv_features(np.zeros(SR, np.float32), SR)
    with pytest.raises(AudioError, match="too short"):
        short = dmv.dmv_features(_song()[: SR // 2], SR)
        dmv.deep_music_vectors(short, dmv.DMVParams())
    stereo = np.stack([_song()[:SR], _song()[:SR]])
    f = dmv.dmv_features(stereo, 44100)  # resampled to 22050 Hz: half the samples
    assert f.n_samples == SR // 2 and f.chroma.shape == (12, f.specm.size)
