"""Per-frame envelopes from spectral columns, at exactly the requested fps: pure functions over arrays.

Timing: frame ``i`` covers ``[i/fps, (i+1)/fps)``. Spectral columns are computed at a fine power-of-two hop
(:func:`analysis_hop`: at least two columns per frame) and the columns whose centres fall in a frame are pooled
(:func:`pool_columns`: max for envelopes, mean for chroma), so a transient inside a frame is never lost.

Normalisation to [0, 1]: over the whole excerpt (:func:`minmax`, Lucid Sonic Dreams) or running (:func:`running_step`:
a peak and a trough that forget within seconds; live mode steps it frame by frame, ``normalize="running"`` runs it
over a song). Also the onset strength of a mel spectrogram and the silence test. Used by :mod:`lsd_jax.audio.analysis`
(the
song's analysis), :mod:`lsd_jax.audio.bands`, :mod:`lsd_jax.audio.beats` and live mode's :mod:`lsd_jax.audio.stream`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from ..media.timing import fps_fraction
from . import spectral

SR = 22050  # analysis sample rate (Lucid Sonic Dreams' librosa default)
MIN_HOP, MAX_HOP = 64, 512
SILENCE_PEAK = 1e-4  # -80 dBFS: below this a signal counts as silent

__all__ = [
    "SILENCE_PEAK",
    "SR",
    "Running",
    "analysis_hop",
    "column_frames",
    "fit_length",
    "is_silent",
    "minmax",
    "normalize",
    "onset_envelope",
    "pool_columns",
    "running_init",
    "running_minmax",
    "running_step",
]


# --- frame timing -------------------------------------------------------------------------------


def analysis_hop(sr: int, fps: float | Fraction) -> int:
    """The spectral hop: the largest power of two <= half a frame, clamped to [64, 512] samples."""
    half = float(sr / (2 * fps_fraction(fps)))
    hop = 2 ** int(math.floor(math.log2(max(half, 1.0))))
    return int(min(MAX_HOP, max(MIN_HOP, hop)))


def column_frames(
    n_columns: int,
    hop: int,
    sr: int,
    fps: float | Fraction,
    n_frames: int,
    offset: float | Fraction = 0,
    duration: float | Fraction | None = None,
) -> np.ndarray:
    """Frame index of each spectral column, or -1 for a column outside the excerpt.

    Column ``j`` is centred on sample ``j * hop``, i.e. at ``t = j * hop / sr - offset`` seconds
    into the excerpt (``offset``: the context analysed before the excerpt). It belongs to frame
    ``floor(t * fps)`` when ``0 <= t < duration`` (default: ``n_frames / fps``). Exact rational
    arithmetic (Python integers where int64 could overflow).
    """
    q = fps_fraction(fps)
    # t * fps = (j * a - b) / den
    A, B = Fraction(hop, sr) * q, Fraction(offset) * q
    den = A.denominator * B.denominator // math.gcd(A.denominator, B.denominator)
    a, b = A.numerator * (den // A.denominator), B.numerator * (den // B.denominator)
    limit = Fraction(n_frames) if duration is None else min(Fraction(n_frames), Fraction(duration) * q)
    end = math.ceil(limit * den)  # integer num: num / den < limit  <=>  num < end
    big = max((n_columns + 1) * a + abs(b), abs(end), den) >= 2**62
    j = np.arange(n_columns, dtype=object if big else np.int64)
    num = j * a - b
    valid = (num >= 0) & (num < end)
    return np.asarray(np.where(valid, num // den, -1), dtype=np.int64)


def pool_columns(
    values: np.ndarray,
    hop: int,
    sr: int,
    fps: float | Fraction,
    n_frames: int,
    how: str = "max",
    offset: float | Fraction = 0,
    duration: float | Fraction | None = None,
) -> np.ndarray:
    """Pool columns (..., C) into frames (n_frames, ...): the max or mean of the columns whose
    centres fall in each frame (see :func:`column_frames`); a frame that holds no column centre
    (very high fps, or a sliver of a last frame) takes the column nearest to its centre."""
    values = np.asarray(values)
    n_cols = values.shape[-1]
    idx = column_frames(n_cols, hop, sr, fps, n_frames, offset, duration)
    inside = np.flatnonzero(idx >= 0)
    frames = np.arange(n_frames)
    out = np.empty(values.shape[:-1] + (n_frames,), np.float64)
    has = np.zeros(n_frames, bool)
    if inside.size:
        lo, hi = int(inside[0]), int(inside[-1]) + 1  # valid columns are contiguous
        sub, sidx = values[..., lo:hi], idx[lo:hi]
        starts = np.searchsorted(sidx, frames, side="left")
        stops = np.searchsorted(sidx, frames, side="right")
        has = stops > starts
        if has.any():
            st = starts[has]
            if how == "max":
                red = np.maximum.reduceat(sub, st, axis=-1)
            elif how == "mean":
                red = np.add.reduceat(sub.astype(np.float64), st, axis=-1) / (stops[has] - st)
            else:
                raise ValueError(f"unknown pooling {how!r}")
            out[..., has] = red
    else:
        lo, hi = 0, n_cols
    if not has.all():
        q = fps_fraction(fps)
        centres = ((np.flatnonzero(~has) + 0.5) / float(q) + float(offset)) * sr
        nearest = np.clip(np.round(centres / hop).astype(np.int64), lo, max(lo, hi - 1))
        out[..., ~has] = values[..., np.minimum(nearest, n_cols - 1)]
    return np.moveaxis(out, -1, 0)


def minmax(env: np.ndarray) -> np.ndarray:
    """Global min-max normalisation to [0, 1] (Lucid Sonic Dreams); a flat envelope gives zeros."""
    env = np.asarray(env, np.float64)
    if env.size == 0:
        return env.astype(np.float32)
    lo, hi = float(env.min()), float(env.max())
    if not hi - lo > 1e-12 * max(abs(hi), 1e-30):
        return np.zeros(env.shape, np.float32)
    return np.clip((env - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


RUNNING_SECONDS = 2.0  # release time constant of the running min and max
RUNNING_SLOW_SECONDS = 30.0  # release of the slow peak that sets the smallest range
RUNNING_FLOOR = 0.01  # the range never shrinks below this fraction of the slow peak (quiet stays quiet)


class Running(NamedTuple):
    """State of the running min-max (:func:`running_step`): trough, peak and slow peak followers."""

    lo: float
    hi: float
    slow: float


def running_init(x: float) -> Running:
    x = float(x)
    return Running(x, x, x)


def running_step(state: Running, x: float, dt: float, seconds: float = RUNNING_SECONDS) -> tuple[Running, float]:
    """One value of the running min-max: ``(state, x) -> (state', y in [0, 1])``, ``dt`` seconds after the last.

    The peak follows ``x`` up at once and relaxes back towards it with time constant ``seconds`` (the trough
    mirrors it), so a loud hit is forgotten in ``seconds·ln(its ratio to the rest)``: 20 dB louder in power, ~9 s
    at 2 s. ``y = (x − lo) / (hi − lo)``, the range floored at ``RUNNING_FLOOR`` of a slow peak (release
    ``RUNNING_SLOW_SECONDS``), so silence and noise after music stay near 0 instead of being amplified."""
    x = float(x)
    r = math.exp(-dt / seconds)
    lo = x if x < state.lo else x - (x - state.lo) * r
    hi = x if x > state.hi else x + (state.hi - x) * r
    slow = x if x > state.slow else x + (state.slow - x) * math.exp(-dt / RUNNING_SLOW_SECONDS)
    span = max(hi - lo, RUNNING_FLOOR * slow)
    y = 0.0 if not span > 0 else min(1.0, max(0.0, (x - lo) / span))
    return Running(lo, hi, slow), y


def running_minmax(env: np.ndarray, fps: float, seconds: float = RUNNING_SECONDS) -> np.ndarray:
    """(N,) envelope -> (N,) float32 in [0, 1] by :func:`running_step` frame after frame (it sees only the past)."""
    env = np.asarray(env, np.float64)
    out = np.zeros(env.shape, np.float32)
    if env.size == 0:
        return out
    state, dt = running_init(env[0]), 1.0 / float(fps)
    for i, x in enumerate(env.tolist()):
        state, out[i] = running_step(state, x, dt, seconds)
    return out


def normalize(env: np.ndarray, how: str, fps: float) -> np.ndarray:
    """An envelope scaled to [0, 1]: ``"global"`` :func:`minmax` or ``"running"`` :func:`running_minmax`."""
    if how == "running":
        return running_minmax(env, fps)
    if how == "global":
        return minmax(env)
    raise ValueError(f"unknown normalization {how!r}")


def onset_envelope(mel: np.ndarray, hop: int) -> np.ndarray:
    """Onset strength per spectral column (T,) float64 of a mel power spectrogram (n_mels, T) at ``hop``: the
    dB spectrogram relative to its maximum, :func:`lsd_jax.audio.spectral.onset_strength`, moved one column earlier.

    librosa's convention puts the flux between columns k-1 and k at k (+ framing): measured on clicks, kicks and
    snares that is about half a hop late; one column earlier, the peak is within ~0.1 hop of the hit on average.
    """
    cols = spectral.onset_strength(spectral.power_to_db(mel, ref=float(np.max(mel)) if mel.size else 1.0), hop)
    return np.concatenate([cols[1:], np.zeros(min(1, cols.size), cols.dtype)]).astype(np.float64)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``y`` to ``n`` samples."""
    if y.shape[0] >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.shape[0], y.dtype)])


def is_silent(y: np.ndarray) -> bool:
    return y.size == 0 or float(np.max(np.abs(y))) < SILENCE_PEAK
