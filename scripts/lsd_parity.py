"""The README's measured differences from Lucid Sonic Dreams, re-measured on the synthesised demo song.

    .venv/bin/python scripts/lsd_parity.py [--seconds 30]

Lucid Sonic Dreams' audio -> latents maths is written out below in NumPy from its 0.4 source (``load_specs``,
``get_spec_norm``, ``generate_vectors``, ``generate_class_vec``, ``full_frame_interpolation``; see
/work/shared/docs/lucid-sonic-dreams.md), with librosa called exactly as it calls it; lsd-jax's figures come from
its own analysis and latents. Printed:

* pulse: the pulse's EMA (``0.75 * previous + 0.25 * envelope``; ``pulse_react`` scales both alike) at 43 fps,
  lsd-jax's over LSD's: its peak (the strongest kick) and its mean;
* class lead: how many frames (and seconds) LSD's smoothed class vectors lead lsd-jax's centred smoothing of the
  same per-frame class vectors (LSD's chroma_cqt at its hop, ``class_smooth_seconds=1``, 43 fps): the lag of the
  largest correlation;
* chroma: lsd-jax's ``chroma="stft"`` against ``chroma="cqt"`` at 30 fps: frame-by-frame correlation and shared
  strongest pitch class, the same for the class vectors (12 classes, defaults), and how often each one's strongest
  pitch class is a note of the chord being played (the demo's C, Am, F, G, one bar each).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np


def lsd_hop(sr: int, fps: float) -> int:
    return int(sr / fps - (sr / fps % 64))


def lsd_spec_norm(y: np.ndarray, sr: int, hop: int, n_mels: int = 512) -> np.ndarray:
    """LSD's loudness envelope: max over the mel bins of each column, min-max over the excerpt."""
    import librosa

    peak = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels, hop_length=hop).max(axis=0)
    return (peak - peak.min()) / np.ptp(peak)


def ema(x: np.ndarray, keep: float = 0.75) -> np.ndarray:
    """LSD's pulse smoothing: the first frame as is, then ``keep * previous + (1 - keep) * x``."""
    out = np.empty(len(x), np.float64)
    for i, v in enumerate(x):
        out[i] = v if i == 0 else keep * out[i - 1] + (1 - keep) * v
    return out


def lsd_class_vectors(chroma: np.ndarray, fps: float, pitch_react: float = 0.5) -> np.ndarray:
    """LSD's per-frame class vectors (before smoothing), 12 classes, class k on pitch k: (12, N) chroma -> (N, 12)."""
    gain = pitch_react * 43 / fps
    vecs: list[np.ndarray] = []
    for i in range(chroma.shape[1]):
        if not vecs:
            v = chroma[:, np.flatnonzero(chroma.sum(axis=0) > 0)[0]].astype(np.float64)
        else:
            v = vecs[-1] + gain * chroma[:, i]
        if np.any(v != 0):
            v[v < 0] = np.min(v[v >= 0])
            v = (v - v.min()) / np.ptp(v)
        if np.all(v == v[0]):
            v[0] += 0.1
        vecs.append(v)
    return np.array(vecs)


def lsd_smooth(vecs: np.ndarray, frames: int) -> np.ndarray:
    """LSD's class smoothing: means of blocks of ``frames`` frames, each at its block's FIRST frame, joined by
    ``np.linspace(0, 1, frames)`` (both ends included), the last vector repeated to the end."""
    n = len(vecs)
    means = [vecs[i : i + frames].mean(axis=0) for i in range(0, n, frames)]
    out = [(1 - w) * a + w * b for a, b in zip(means, means[1:]) for w in np.linspace(0, 1, frames)]
    out += [out[-1]] * max(0, n - len(out))
    return np.array(out[:n])


def best_lag(a: np.ndarray, b: np.ndarray, max_lag: int, tail: int) -> int:
    """The lag L (frames) that best matches ``a[t]`` with ``b[t + L]`` (L > 0: a leads b), over the frames before
    the last ``tail`` (LSD's static tail)."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    n = len(a) - tail

    def corr(lag: int) -> float:
        x, y = (a[: n - lag], b[lag:n]) if lag >= 0 else (a[-lag:n], b[: n + lag])
        return float(np.corrcoef(x.ravel(), y.ravel())[0, 1])

    return max(range(-max_lag, max_lag + 1), key=corr)


def chord_notes(n_frames: int, fps: float) -> list[set[int]]:
    """The pitch classes of the demo song's chord (and bass root) at each frame."""
    from lsd_jax.audio.demo_song import BPM, PROGRESSION

    bar = 4 * 60.0 / BPM
    out = []
    for i in range(n_frames):
        root, chord = PROGRESSION[int(i / fps / bar) % len(PROGRESSION)]
        out.append({root % 12, *(m % 12 for m in chord)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the demo song (default 30)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)  # librosa: empty mel filters at n_mels=512 (LSD's)

    import jax.numpy as jnp
    import librosa

    from lsd_jax.audio import analysis
    from lsd_jax.audio.demo_song import write_demo_song
    from lsd_jax.engine.latents import class_latents, make_latents
    from lsd_jax.params import make_params

    with tempfile.TemporaryDirectory() as d:
        song = write_demo_song(Path(d) / "demo.wav", seconds=args.seconds)
        y, sr = librosa.load(song)  # as LSD loads it: mono, 22050 Hz

        # pulse, 43 fps: LSD's percussive part (librosa's HPSS waveform), 512 mel bands, one column per frame
        fps = 43.0
        hop = lsd_hop(sr, fps)
        lsd_pulse = ema(lsd_spec_norm(librosa.effects.hpss(y)[1], sr, hop))
        ours = ema(analysis.analyze(song, make_params(fps=fps)).pulse)
        print(
            f"pulse at {fps:g} fps (LSD: hop {hop}, {sr / hop:.2f} fps): lsd-jax / LSD: peak "
            f"{ours.max() / lsd_pulse.max():.3f}, mean {ours.mean() / lsd_pulse.mean():.3f}"
        )

        # class lead, 43 fps, class_smooth_seconds=1: LSD's smoothing against centred smoothing of the same vectors
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=hop)
        frames = int(1 * fps)
        lsd = lsd_smooth(lsd_class_vectors(chroma, fps), frames)
        n = chroma.shape[1]
        centred = np.asarray(
            class_latents(
                jnp.asarray(chroma.T),
                jnp.tile(jnp.arange(12, dtype=jnp.int32), (n, 1)),
                jnp.int32(0),
                c_dim=12,
                smooth_frames=frames,
                gain=0.5 * 43 / fps,
                complexity=1.0,
            )
        )
        lag = best_lag(lsd, centred, max_lag=2 * frames, tail=frames)
        print(f"class lead at {fps:g} fps, class_smooth_seconds=1: LSD leads by {lag} frames = {lag * hop / sr:.3f} s")

        # chroma: stft against cqt, on lsd-jax's frames
        fps = 30.0
        feats = {k: analysis.analyze(song, make_params(fps=fps, chroma=k)) for k in ("stft", "cqt")}
        c = {}
        for k, f in feats.items():
            p = make_params(fps=fps, chroma=k, classes=list(range(12)))
            c[k] = make_latents(f.pulse, f.motion, f.chroma, p, fps=fps, z_dim=1, c_dim=12).c
        a, b = feats["stft"].chroma, feats["cqt"].chroma
        loud = a.sum(axis=1) > 0
        notes = chord_notes(len(a), fps)

        def in_chord(ch: np.ndarray) -> float:
            return float(np.mean([int(p) in s for p, s, ok in zip(ch.argmax(axis=1), notes, loud) if ok]))

        r = np.corrcoef(a[loud].ravel(), b[loud].ravel())[0, 1]
        same = np.mean(a[loud].argmax(1) == b[loud].argmax(1))
        rc = np.corrcoef(c["stft"].ravel(), c["cqt"].ravel())[0, 1]
        same_c = np.mean(c["stft"].argmax(1) == c["cqt"].argmax(1))
        print(
            f"chroma at {fps:g} fps, stft vs cqt: frames correlate at {r:.2f} and share the strongest pitch class "
            f"in {same:.0%}; class vectors correlate at {rc:.2f} and share the strongest class in {same_c:.0%}; "
            f"strongest pitch class in the chord played: stft {in_chord(a):.0%}, cqt {in_chord(b):.0%}"
        )


if __name__ == "__main__":
    main()
