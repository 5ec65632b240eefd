"""Synthetic test signals (clicks, tones, hits) and writers for wav/flac/ogg/mp3/m4a.

Everything is deterministic and short, so the audio tests stay fast on two cores.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def seconds_to_samples(seconds: float, sr: int = SR) -> int:
    return int(round(seconds * sr))


def silence(seconds: float, sr: int = SR) -> np.ndarray:
    return np.zeros(seconds_to_samples(seconds, sr), np.float32)


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(seconds_to_samples(seconds, sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def tone_change(f1: float, f2: float, change_at: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """A tone at f1 that switches to f2 at ``change_at`` seconds (phase continuous)."""
    n = seconds_to_samples(seconds, sr)
    t = np.arange(n) / sr
    freq = np.where(t < change_at, f1, f2)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return (amp * np.sin(phase)).astype(np.float32)


def click(sr: int = SR, length_s: float = 0.01, decay_s: float = 0.002, seed: int = 0) -> np.ndarray:
    """A short broadband click (decaying noise burst)."""
    n = seconds_to_samples(length_s, sr)
    rng = np.random.default_rng(seed)
    return (rng.normal(size=n) * np.exp(-np.arange(n) / (decay_s * sr))).astype(np.float32)


def low_hit(sr: int = SR) -> np.ndarray:
    """A kick drum: a pitched-down sine with a fast decay (energy below ~150 Hz)."""
    t = np.arange(seconds_to_samples(0.25, sr)) / sr
    return (
        np.sin(2 * np.pi * (50 * t + 60 * 0.03 * (1 - np.exp(-t / 0.03))))
        * np.exp(-t / 0.06)
        * np.minimum(t / 0.001, 1.0)
    ).astype(np.float32)


def high_hit(sr: int = SR, seed: int = 1) -> np.ndarray:
    """A hi-hat: high-passed noise with a fast decay (energy above ~5 kHz)."""
    n = seconds_to_samples(0.05, sr)
    rng = np.random.default_rng(seed)
    x = np.diff(np.diff(rng.normal(size=n + 2)))
    return (0.5 * x * np.exp(-np.arange(n) / (0.01 * sr))).astype(np.float32)


def place(y: np.ndarray, times: list[float], hit: np.ndarray, sr: int = SR, gain: float = 1.0) -> np.ndarray:
    """Add ``hit`` into ``y`` at each time (seconds); returns a new array."""
    out = np.array(y, np.float32)
    for t in times:
        i = seconds_to_samples(t, sr)
        end = min(out.size, i + hit.size)
        if end > i:
            out[i:end] += gain * hit[: end - i]
    return out


def click_track(times: list[float], seconds: float, sr: int = SR, drone: float = 0.005) -> np.ndarray:
    """Clicks at the given times over a very quiet 220 Hz drone, normalised to peak 0.9."""
    y = place(tone(220, seconds, sr, amp=drone), times, click(sr), sr)
    return normalise(y)


def normalise(y: np.ndarray, peak: float = 0.9) -> np.ndarray:
    m = float(np.max(np.abs(y)))
    return (y * (peak / m)).astype(np.float32) if m > 0 else y.astype(np.float32)


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.stack([left, right], axis=1).astype(np.float32)


def write(path: str | os.PathLike[str], y: np.ndarray, sr: int = SR) -> Path:
    """Write ``y`` ((n,) or (n, channels)) to ``path``; the format comes from the suffix.

    wav/flac/ogg/mp3 through soundfile (libsndfile), m4a (AAC) through imageio-ffmpeg's binary.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".wav", ".flac", ".ogg"):
        sf.write(path, y, sr)
    elif suffix == ".mp3":
        sf.write(path, y, sr, format="MP3")
    elif suffix in (".m4a", ".aac", ".mp4"):
        import imageio_ffmpeg

        tmp = path.with_suffix(".src.wav")
        sf.write(tmp, y, sr, subtype="FLOAT")
        try:
            subprocess.run(
                [
                    imageio_ffmpeg.get_ffmpeg_exe(),
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-i",
                    str(tmp),
                    "-c:a",
                    "aac",
                    "-b:a",
                    "128k",
                    str(path),
                ],
                check=True,
                close_fds=False,
            )
        finally:
            tmp.unlink()
    else:
        raise ValueError(f"unsupported test format {suffix}")
    return path


def pitch_song(seconds_each: float = 2.0, sr: int = SR) -> np.ndarray:
    """Quiet A4, then loud C5, then quiet A4 again (soft onsets): the pitch moves the class mix, the loudness the
    noise (BigGAN/Deep Music Visualizer tests)."""
    parts = [
        tone(440.0, seconds_each, sr, amp=0.03),
        tone(523.25, seconds_each, sr, amp=0.6),
        tone(440.0, seconds_each, sr, amp=0.03),
    ]
    ramp = np.minimum(np.arange(parts[0].size) / 400.0, 1.0).astype(np.float32)
    return np.concatenate([p * ramp for p in parts])


def drums_and_pad(
    seconds: float = 12.0, bpm: float = 100.0, sr: int = SR, seed: int = 0, pad_gain: float = 0.2
) -> np.ndarray:
    """A synthetic song: drums (kick on every beat, snare on 2 and 4, hi-hats on eighths, with a few
    missing kicks so the hits are not a perfect grid) over a slow pad (minor chords swelling in over
    ~1 s, changing every 2 bars). Deterministic; normalised to peak 0.9."""
    rng = np.random.default_rng(seed)
    n = seconds_to_samples(seconds, sr)
    t = np.arange(n) / sr
    beat = 60.0 / bpm
    beats = np.arange(0.0, seconds - 0.3, beat)
    kicks = [b for i, b in enumerate(beats) if rng.random() > 0.15 or i % 4 == 0]
    snares = [b for i, b in enumerate(beats) if i % 2 == 1]
    hats = list(np.arange(0.0, seconds - 0.1, beat / 2))
    y = place(np.zeros(n, np.float32), kicks, low_hit(sr), sr, gain=0.9)
    snare = 0.5 * click(sr, length_s=0.15, decay_s=0.04, seed=seed + 1) + tone(190, 0.15, sr, amp=0.4) * np.exp(
        -np.arange(seconds_to_samples(0.15, sr)) / (0.05 * sr)
    )
    y = place(y, snares, snare.astype(np.float32), sr, gain=0.5)
    y = place(y, hats, high_hit(sr), sr, gain=0.25)
    pad = np.zeros(n)
    chords = [(57, 60, 64), (53, 57, 60), (55, 59, 62), (52, 55, 59)]  # Am F G Em
    bar2 = 8 * beat
    for k in range(int(np.ceil(seconds / bar2))):
        start, stop = k * bar2, min((k + 1) * bar2 + 0.5, seconds)
        m = (t >= start) & (t < stop)
        tt = t[m] - start
        env = np.minimum(tt / 1.2, 1.0) * np.minimum((stop - start - tt) / 0.5, 1.0)
        for note in chords[k % len(chords)]:
            f = 440.0 * 2.0 ** ((note - 69) / 12)
            pad[m] += pad_gain * env * (np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(4 * np.pi * f * tt))
    return normalise(y + pad.astype(np.float32))
