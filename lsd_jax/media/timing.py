"""Exact frame timing: the rational frame rate and how many frames cover a number of samples.

Audio analysis, latents and the encoder all use :func:`fps_fraction`, so frame ``i`` of the video is shown
exactly over the audio interval ``[i/fps, (i+1)/fps)`` it was computed from.
"""

from __future__ import annotations

import math
from fractions import Fraction


def fps_fraction(fps: float | Fraction) -> Fraction:
    """The exact rational frame rate meant by ``fps``.

    NTSC-style rates come out as the rationals people mean (``30000/1001`` from 29.97002997...,
    ``2997/100`` from 29.97, ``43`` from 43.0); any other float is taken at its shortest decimal
    representation.
    """
    if isinstance(fps, Fraction):
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        return fps
    f = float(fps)
    if not math.isfinite(f) or f <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    q = Fraction(f).limit_denominator(1001)
    if abs(float(q) - f) <= 1e-9 * f:
        return q
    return Fraction(repr(f)).limit_denominator(1_000_000)


def frame_count(n_samples: int, sr: int, fps: float | Fraction) -> int:
    """Frames that cover ``n_samples`` at ``fps``: ``ceil(n_samples * fps / sr)``, exactly (the last partial
    frame counts)."""
    q = fps_fraction(fps)
    n, sr = int(n_samples), int(sr)
    if n < 0 or sr <= 0:
        raise ValueError(f"need n_samples >= 0 and sr > 0, got {n_samples}, {sr}")
    return -(-(n * q.numerator) // (sr * q.denominator))
