"""A short demo song, synthesised (so nothing needs downloading): drums, bass and chords.

120 BPM in 4/4, a kick on every beat, a snare on 2 and 4, hi-hats on eighths, a bass line and a
chord pad that changes every bar (so the pulse, the motion and the classes all have something to
follow).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import ParamError

SR = 22050
BPM = 120.0
MIN_SECONDS, MAX_SECONDS = 1.0, 600.0
# C major, A minor, F major, G major: (bass root, chord notes) as MIDI numbers
PROGRESSION = [(36, (60, 64, 67)), (45, (57, 60, 64)), (41, (53, 57, 60)), (43, (55, 59, 62))]


def _midi_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69) / 12)


def _env(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-t / decay)


def _add(buf: np.ndarray, start: int, sig: np.ndarray) -> None:
    end = min(len(buf), start + len(sig))
    if end > start:
        buf[start:end] += sig[: end - start]


def check_seconds(seconds: object) -> float:
    """The demo length as a float, or a :class:`ParamError` unless it is a number from 1 to 600 seconds."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or not MIN_SECONDS <= seconds <= MAX_SECONDS
    ):
        raise ParamError(f"the demo song's length must be {MIN_SECONDS:g} to {MAX_SECONDS:g} seconds, got {seconds!r}")
    return float(seconds)


def demo_song(seconds: float = 12.0, seed: int = 7) -> np.ndarray:
    """The demo as mono float32 samples at 22050 Hz, peak 0.9."""
    seconds = check_seconds(seconds)
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, np.float64)
    beat = 60.0 / BPM
    n_beats = int(seconds / beat) + 1
    kick_n = int(0.35 * SR)
    tk = np.arange(kick_n) / SR
    kick = np.sin(2 * np.pi * (45 * tk + 90 * 0.04 * (1 - np.exp(-tk / 0.04)))) * _env(kick_n, 0.001, 0.12)
    snare_n = int(0.2 * SR)
    snare = (rng.normal(size=snare_n) * 0.5 + np.sin(2 * np.pi * 190 * np.arange(snare_n) / SR)) * _env(
        snare_n, 0.001, 0.05
    )
    hat_n = int(0.05 * SR)
    hat = np.diff(rng.normal(size=hat_n + 1)) * _env(hat_n, 0.0005, 0.012) * 0.3
    for b in range(n_beats):
        s = int(b * beat * SR)
        _add(out, s, 0.9 * kick)
        if b % 2 == 1:
            _add(out, s, 0.45 * snare)
        _add(out, s, hat)
        _add(out, s + int(beat / 2 * SR), hat)
    bar = 4 * beat
    for k in range(int(seconds / bar) + 1):
        root, chord = PROGRESSION[k % len(PROGRESSION)]
        s = int(k * bar * SR)
        m = int(bar * SR)
        t = np.arange(m) / SR
        pad = sum(np.sin(2 * np.pi * _midi_hz(p) * t) for p in chord) * _env(m, 0.3, 3.0) * 0.08
        _add(out, s, pad)
        for q in range(4):  # bass on each beat of the bar
            bn = int(beat * SR)
            tb = np.arange(bn) / SR
            bass = np.sin(2 * np.pi * _midi_hz(root + (12 if q == 2 else 0)) * tb) * _env(bn, 0.005, 0.25) * 0.25
            _add(out, s + q * bn, bass)
    fade = int(0.05 * SR)
    out[:fade] *= np.linspace(0, 1, fade)
    out[-fade:] *= np.linspace(1, 0, fade)
    return (0.9 * out / np.max(np.abs(out))).astype(np.float32)


def write_demo_song(path: str | Path, seconds: float = 12.0) -> Path:
    """Write the demo song as a WAV file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, demo_song(seconds), SR, subtype="PCM_16")
    return path
