"""Beat-locked motion: latent keyframes on the beats (or bars) that librosa's beat tracker finds.

::

    beats = detect_beats(y, sr, fps, n_frames, start=0.0)         # Beats(tempo_bpm, beat_frames, bar_frames, ...)
    beats = track_beats(onset, sr, hop, fps, n_frames, start=0.0)  # the same from an onset envelope (audio.py's)
    pos = beat_keyframe_positions(beats, "beat", n_frames)         # (K,) frame indices, increasing
    base = interpolate_keyframes(keyframes, pos, n_frames)          # (N, D): arrives at keyframes[k] on frame pos[k]

Detection: the onset envelope of the song's mel spectrogram (``audio.onset_envelope``; a render reuses its
analysis' own) and ``librosa.beat.beat_track`` (dynamic programming at a tempo estimated from the onset
autocorrelation) on the whole analysed signal, so the tracker sees context around the excerpt; each beat time is
then moved to the frame nearest to it. The tempo is reported from a least-squares fit of the beat times against
their beat numbers (robust to a skipped beat), which is far finer than librosa's autocorrelation grid (about ±1%
at this hop). Bars: every 4th beat from the downbeat estimate, the phase (0–3) whose beats have the largest mean
onset strength.
"""

from __future__ import annotations

import functools
import warnings
from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .audio import analysis_hop, is_silent, onset_envelope
from .errors import ParamError
from .spectral import mel_spectrogram
from .timing import fps_fraction

Array = jax.Array
BEATS_PER_BAR = 4
MODES = ("beat", "bar")
EASES = ("cosine", "linear", "cubic")


class Beats(NamedTuple):
    tempo_bpm: float  # 0.0 when no beat was found
    beat_frames: np.ndarray  # (K,) int64, increasing: the frame nearest to each beat inside the excerpt
    bar_frames: np.ndarray  # (M,) int64: every 4th beat frame from the downbeat
    beat_times: np.ndarray  # (K,) float64: the beat times in seconds from the excerpt's start
    downbeat_phase: int  # which of the 4 beat phases starts a bar (index into all beats found)


def _no_beats() -> Beats:
    return Beats(0.0, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64), 0)


def tempo_from_beats(times: np.ndarray) -> float:
    """BPM from beat times: number each beat by the median interval (so a skipped beat counts as two), then fit
    ``t = a + b·n`` by least squares; 60/b. 0.0 for fewer than 2 beats."""
    t = np.asarray(times, np.float64)
    if t.size < 2:
        return 0.0
    d = np.diff(t)
    med = float(np.median(d))
    if not med > 0:
        return 0.0
    n = np.concatenate([[0], np.cumsum(np.maximum(1, np.round(d / med)))])
    b = np.polyfit(n, t, 1)[0]
    return float(60.0 / b) if b > 0 else 0.0


def detect_beats(y: np.ndarray, sr: int, fps: float | Fraction, n_frames: int, start: float = 0.0) -> Beats:
    """Beats of the mono signal ``y`` (at ``sr``) for a video whose frame 0 is at ``start`` seconds into ``y``
    (frame i covers ``[start + i/fps, start + (i+1)/fps)``; pass the whole song and the excerpt's start, or the
    excerpt with its analysis context and the context's length). See :func:`track_beats`."""
    q = fps_fraction(fps)
    y = np.asarray(y, np.float32)
    if y.size == 0 or is_silent(y) or int(n_frames) <= 0:
        return _no_beats()
    hop = analysis_hop(sr, q)
    return track_beats(onset_envelope(mel_spectrogram(y, sr, hop), hop), sr, hop, q, n_frames, start)


def track_beats(onset: np.ndarray, sr: int, hop: int, fps: float | Fraction, n_frames: int,
                start: float = 0.0) -> Beats:
    """Beats from an onset envelope (T,) whose column j is centred on sample ``j·hop`` at ``sr`` (frame 0 of the
    video at ``start`` seconds). Beats outside the ``n_frames`` frames are dropped; each beat goes to its
    nearest frame (so a keyframe lands within half a frame of the beat). An envelope without onsets, or one
    without a beat, gives ``tempo_bpm=0`` and no beats."""
    import librosa

    q = fps_fraction(fps)
    n_frames = int(n_frames)
    onset = np.asarray(onset, np.float64)
    if onset.size == 0 or n_frames <= 0 or not np.any(onset > 0):
        return _no_beats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, cols = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=hop, units="frames")
    cols = np.asarray(cols, np.int64)
    if cols.size == 0:
        return _no_beats()
    times_all = cols * hop / sr  # column j is centred on sample j·hop
    tempo = tempo_from_beats(times_all)
    strength = onset[np.clip(cols, 0, onset.size - 1)]
    phase = int(np.argmax([strength[p::BEATS_PER_BAR].mean() if strength[p::BEATS_PER_BAR].size else -np.inf
                           for p in range(BEATS_PER_BAR)]))
    rel = times_all - float(start)
    frames = np.round(rel * float(q)).astype(np.int64)
    inside = (frames >= 0) & (frames < n_frames)
    is_bar = (np.arange(cols.size) % BEATS_PER_BAR) == phase
    return Beats(tempo, frames[inside], frames[inside & is_bar], rel[inside], phase)


def beat_keyframe_positions(beats: Beats, mode: str = "beat", n_frames: int | None = None) -> np.ndarray:
    """Keyframe frames for ``speed_fpm="beat"`` or ``"bar"``: the beat (or bar) frames, unique, increasing and
    inside ``[0, n_frames)``. Empty when no beat was found (the caller falls back to evenly spaced keyframes)."""
    if mode not in MODES:
        raise ParamError(f"beat mode must be one of {MODES}, got {mode!r}")
    f = np.asarray(beats.beat_frames if mode == "beat" else beats.bar_frames, np.int64)
    if n_frames is not None:
        f = f[(f >= 0) & (f < int(n_frames))]
    return np.unique(f)


def _ease(u: Array) -> Array:
    """Raised-cosine ease on [0, 1], exactly 0 at 0 and 1 at 1."""
    e = 0.5 - 0.5 * jnp.cos(jnp.pi * u)
    return jnp.where(u <= 0, 0.0, jnp.where(u >= 1, 1.0, e))


@functools.partial(jax.jit, static_argnames=("n_frames", "ease"))
def interpolate_keyframes(keyframes: Array, positions: Array, n_frames: int, ease: str = "cosine") -> Array:
    """A path through ``keyframes`` (K, D) that is exactly ``keyframes[k]`` on frame ``positions[k]`` (K,
    increasing; ints or floats), held constant before the first and after the last: (n_frames, D) float32.

    ``ease``: "cosine" (default; raised-cosine between consecutive keyframes, C¹ with the motion settling on each
    keyframe, which reads as landing on the beat), "linear" (C⁰, constant speed per segment) or "cubic"
    (Catmull-Rom with non-uniform tangents, C¹ and passing through without stopping). Pure and jittable."""
    if ease not in EASES:
        raise ValueError(f"ease must be one of {EASES}, got {ease!r}")
    kf = jnp.asarray(keyframes, jnp.float32)
    pos = jnp.asarray(positions, jnp.float32)
    k = kf.shape[0]
    t = jnp.arange(n_frames, dtype=jnp.float32)
    if k == 1:
        return jnp.broadcast_to(kf[0], (n_frames, kf.shape[1]))
    s = jnp.clip(jnp.searchsorted(pos, t, side="right") - 1, 0, k - 2)
    p0, p1 = pos[s], pos[s + 1]
    span = jnp.maximum(p1 - p0, 1e-6)
    u = jnp.clip((t - p0) / span, 0.0, 1.0)
    a, b = kf[s], kf[s + 1]
    if ease == "cubic":
        # Hermite with tangents (per frame) from the neighbouring keyframes, one-sided at the ends
        sm, sp = jnp.clip(s - 1, 0, k - 1), jnp.clip(s + 2, 0, k - 1)
        ta = (b - kf[sm]) / jnp.maximum(p1 - pos[sm], 1e-6)[:, None]
        tb = (kf[sp] - a) / jnp.maximum(pos[sp] - p0, 1e-6)[:, None]
        uu = u[:, None]
        h00 = 2 * uu ** 3 - 3 * uu ** 2 + 1
        h10 = uu ** 3 - 2 * uu ** 2 + uu
        h01 = -2 * uu ** 3 + 3 * uu ** 2
        h11 = uu ** 3 - uu ** 2
        out = h00 * a + h10 * span[:, None] * ta + h01 * b + h11 * span[:, None] * tb
    else:
        w = (_ease(u) if ease == "cosine" else u)[:, None]
        out = a * (1.0 - w) + b * w
    # exact arrival (and holding) at the keyframes, whatever the rounding above
    out = jnp.where((u <= 0)[:, None], a, jnp.where((u >= 1)[:, None], b, out))
    return out.astype(jnp.float32)
