"""lsd_jax.analyze: the song's form (tempo, beats, downbeats, sections, drops) on synthetic songs of known form."""

from __future__ import annotations

import numpy as np

SR = 22050


def _tone(freqs: list[float], n: int, *, harmonics: int, bright: float, sr: int = SR) -> np.ndarray:
    t = np.arange(n) / sr
    out = np.zeros(n)
    for f in freqs:
        for h in range(1, harmonics + 1):
            out += np.sin(2 * np.pi * f * h * t) * bright ** (h - 1) / len(freqs)
    return out


def _hits(n: int, times: np.ndarray, sound: np.ndarray) -> np.ndarray:
    out = np.zeros(n + sound.size)
    for t in times:
        i = int(round(t * SR))
        if 0 <= i < n:
            out[i : i + sound.size] += sound
    return out[:n]


def _kick(sr: int = SR) -> np.ndarray:
    t = np.arange(int(0.25 * sr)) / sr
    return np.sin(2 * np.pi * (45 + 90 * np.exp(-t * 30)) * t) * np.exp(-t * 12)


def _noise_hit(length: float, decay: float, rng: np.random.Generator, highpass: bool) -> np.ndarray:
    n = int(length * SR)
    x = rng.standard_normal(n)
    if highpass:
        x = np.diff(x, prepend=0.0)
    return x * np.exp(-np.arange(n) / SR * decay)


def part(kind: str, seconds: float, seed: int = 0) -> np.ndarray:
    """One section of a synthetic song: ``"A"`` (120 BPM kick and hat, a bright C major chord), ``"B"`` (96 BPM
    snares and a soft A minor pad), ``"build"`` (no low end: a rising noise sweep and quickening snares), ``"drop"``
    (120 BPM, loud kick and sub bass under a G chord). The same kind and seed give the same samples."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "A":
        beats = np.arange(0, seconds, 0.5)
        y = 0.5 * _hits(n, beats, _kick()) + 0.04 * _hits(n, beats, _noise_hit(0.05, 80, rng, True))
        y += 0.25 * _tone([261.6, 329.6, 392.0], n, harmonics=6, bright=0.7)
    elif kind == "B":
        beats = np.arange(0, seconds, 60 / 96)
        y = 0.3 * _hits(n, beats[1::2], _noise_hit(0.15, 25, rng, False))
        y += 0.3 * _tone([220.0, 261.6, 329.6], n, harmonics=2, bright=0.3) * (0.8 + 0.2 * np.sin(2 * np.pi * 0.5 * t))
        y += 0.08 * _hits(n, beats, _noise_hit(0.03, 120, rng, True))
    elif kind == "build":
        ramp = (t / seconds) ** 2
        y = 0.2 * np.diff(rng.standard_normal(n), prepend=0.0) * ramp
        gaps = 0.5 / (1 + 3 * np.arange(0, seconds, 0.25) / seconds)
        y += 0.2 * _hits(n, np.cumsum(gaps), _noise_hit(0.06, 60, rng, False)) * (0.3 + ramp)
    elif kind == "drop":
        beats = np.arange(0, seconds, 0.5)
        y = 0.9 * _hits(n, beats, _kick()) + 0.5 * np.sin(2 * np.pi * 49.0 * t) * (0.6 + 0.4 * (t % 0.5 < 0.3))
        y += 0.2 * _tone([196.0, 246.9, 293.7], n, harmonics=8, bright=0.8)
        y += 0.05 * _hits(n, beats, _noise_hit(0.05, 80, rng, True))
    else:
        raise ValueError(kind)
    return y


def song(plan: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated parts → (samples float32 at SR, boundary times (interior) in seconds)."""
    parts = [part(k, s) for k, s in plan]
    y = np.concatenate(parts)
    y = 0.8 * y / np.abs(y).max()
    return y.astype(np.float32), np.cumsum([s for _, s in plan])[:-1].astype(np.float64)


PLAN = [("A", 8.0), ("B", 8.0), ("A", 8.0), ("build", 6.0), ("drop", 8.0)]
