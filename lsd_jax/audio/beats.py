"""Beat-locked motion: latent keyframes on the beats (or bars) of the song.

::

    beats = detect_beats(y, sr, fps, n_frames, start=0.0)         # Beats(tempo_bpm, beat_frames, bar_frames, ...)
    beats = track_beats(onset, sr, hop, fps, n_frames, start=0.0)  # the same from an onset envelope (audio.py's)
    pos = beat_keyframe_positions(beats, "beat", n_frames)         # (K,) frame indices, increasing
    base = interpolate_keyframes(keyframes, pos, n_frames)          # (N, D): arrives at keyframes[k] on frame pos[k]

Detection: the onset envelope of the song's mel spectrogram (``envelopes.onset_envelope``; a render reuses its
analysis' own) and :func:`beat_track` (librosa's ``beat_track``, re-implemented in NumPy and tested against it:
dynamic programming at a tempo estimated from the onset autocorrelation) on the whole analysed signal, so the
tracker sees context around the excerpt; each beat time is then moved to the frame nearest to it. The tempo is
reported from a least-squares fit of the beat times against their beat numbers (robust to a skipped beat), which
is far finer than librosa's autocorrelation grid (about ±1% at this hop). Bars: every 4th beat from the downbeat
estimate, the phase (0–3) whose beats have the largest mean onset strength.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParamError
from ..media.timing import fps_fraction
from .envelopes import analysis_hop, is_silent, onset_envelope
from .spectral import mel_spectrogram

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


def track_beats(
    onset: np.ndarray, sr: int, hop: int, fps: float | Fraction, n_frames: int, start: float = 0.0
) -> Beats:
    """Beats from an onset envelope (T,) whose column j is centred on sample ``j·hop`` at ``sr`` (frame 0 of the
    video at ``start`` seconds). Beats outside the ``n_frames`` frames are dropped; each beat goes to its
    nearest frame (so a keyframe lands within half a frame of the beat). An envelope without onsets, or one
    without a beat, gives ``tempo_bpm=0`` and no beats."""
    q = fps_fraction(fps)
    n_frames = int(n_frames)
    onset = np.asarray(onset, np.float64)
    if onset.size == 0 or n_frames <= 0 or not np.any(onset > 0):
        return _no_beats()
    _, cols = beat_track(onset, sr, hop)
    if cols.size == 0:
        return _no_beats()
    times_all = cols * hop / sr  # column j is centred on sample j·hop
    tempo = tempo_from_beats(times_all)
    strength = onset[np.clip(cols, 0, onset.size - 1)]
    phase = int(
        np.argmax(
            [
                strength[p::BEATS_PER_BAR].mean() if strength[p::BEATS_PER_BAR].size else -np.inf
                for p in range(BEATS_PER_BAR)
            ]
        )
    )
    rel = times_all - float(start)
    frames = np.round(rel * float(q)).astype(np.int64)
    inside = (frames >= 0) & (frames < n_frames)
    is_bar = (np.arange(cols.size) % BEATS_PER_BAR) == phase
    return Beats(tempo, frames[inside], frames[inside & is_bar], rel[inside], phase)


# ---------------------------------------------------------------------------------------------------------------
# The tracker: Ellis' dynamic programming (2007), with librosa's defaults (``librosa.beat.beat_track``: tempo from
# the autocorrelation tempogram under a log-normal prior around 120 BPM, tightness 100, weak edge beats trimmed),
# in NumPy so that beat lock does not import librosa and compile numba code in every new process.
# ---------------------------------------------------------------------------------------------------------------

START_BPM, STD_BPM, AC_SIZE_S, MAX_TEMPO_BPM, TIGHTNESS = 120.0, 1.0, 8.0, 320.0, 100.0


def estimate_tempo(onset: np.ndarray, sr: int, hop: int) -> float:
    """The global tempo (BPM) of an onset envelope: the lag that maximises ``log1p(1e6·ac) + prior`` where ``ac`` is
    the time average of the windowed, max-normalised local autocorrelations (8 s windows) and the prior is
    log-normal around 120 BPM (one octave wide); tempi above 320 BPM are excluded."""
    onset = np.asarray(onset, np.float64)
    n = onset.size
    win = int(AC_SIZE_S * sr) // int(hop)
    half = win // 2
    padded = np.pad(onset, (half, half), mode="linear_ramp", end_values=(0, 0))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[:n]  # row t: centred on onset column t
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    from scipy.fft import next_fast_len

    n_fft = next_fast_len(2 * win - 1, real=True)
    total = np.zeros(win)
    for a in range(0, n, 1024):  # blocks of windows bound the memory for long songs
        spec = np.fft.rfft(frames[a : a + 1024] * window, n=n_fft, axis=1)
        ac = np.fft.irfft(spec.real**2 + spec.imag**2, n=n_fft, axis=1)[:, :win]
        peak = np.abs(ac).max(axis=1, keepdims=True)
        total += (ac / np.where(peak < np.finfo(np.float64).tiny, 1.0, peak)).sum(axis=0)
    mean_ac = total / n
    bpms = np.full(win, np.inf)
    bpms[1:] = 60.0 * sr / (hop * np.arange(1.0, win))
    with np.errstate(invalid="ignore", divide="ignore"):
        logprior = -0.5 * ((np.log2(bpms) - np.log2(START_BPM)) / STD_BPM) ** 2
    logprior[: int(np.argmax(bpms < MAX_TEMPO_BPM))] = -np.inf
    return float(bpms[int(np.argmax(np.log1p(1e6 * mean_ac) + logprior))])


def beat_track(onset: np.ndarray, sr: int, hop: int, bpm: float | None = None) -> tuple[float, np.ndarray]:
    """``(tempo_bpm, beat columns (K,) int64)`` of an onset envelope (T,), as ``librosa.beat.beat_track`` with its
    defaults: each column scores the onset envelope (divided by its standard deviation) smoothed by a Gaussian of
    a 64th of the beat period; a dynamic program finds the chain of beats maximising the summed scores minus
    ``TIGHTNESS · log(interval / period)²``; the chain ends on the last strong cumulative-score peak; beats in
    the weak runs at either end are dropped."""
    onset = np.asarray(onset, np.float64)
    n = onset.size
    if n == 0 or not onset.any():
        return 0.0, np.zeros(0, np.int64)
    if bpm is None:
        bpm = estimate_tempo(onset, sr, hop)
    period = float(np.round(float(sr) / hop * 60.0 / bpm))  # frames per beat
    local = _local_score(onset, period)
    back, cum = _beat_dp(local, period)
    beats = np.zeros(n, bool)
    i = _last_beat(cum)
    while i >= 0:
        beats[i] = True
        i = int(back[i])
    return float(bpm), np.flatnonzero(_trim_beats(local, beats)).astype(np.int64)


def _local_score(onset: np.ndarray, period: float) -> np.ndarray:
    x = onset / (onset.std(ddof=1) + np.finfo(np.float64).tiny)
    x[0] = 0.0  # librosa's same-mode convolution leaves out the first column: so do we
    window = np.exp(-0.5 * (np.arange(-period, period + 1) * 32.0 / period) ** 2)
    k = window.size
    return np.convolve(x, window)[k // 2 : k // 2 + x.size]


def _beat_dp(local: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Best predecessor (or -1) and cumulative score of each column. A predecessor lies ``d`` columns back with
    ``round(period/2) <= d <= 2·period``, so a block of ``round(period/2)`` columns only needs earlier blocks and
    is solved at once."""
    n = local.size
    near, far = int(np.round(period / 2)), int(2 * period)
    if near < 1:
        raise ValueError(f"beat period of {period} columns is too short")
    dist = np.arange(near, far + 1)  # candidates, nearest first (ties go to the nearest, as in librosa)
    penalty = TIGHTNESS * (np.log(dist) - np.log(period)) ** 2
    cum = np.empty(n)
    best = np.full(n, -1, np.int64)
    for a in range(0, n, near):
        rows = np.arange(a, min(n, a + near))
        loc = rows[:, None] - dist[None, :]
        valid = loc >= 0
        score = np.where(valid, cum[np.maximum(loc, 0)] - penalty[None, :], -np.inf)
        pick = np.argmax(score, axis=1)
        found = valid[:, 0]  # the nearest candidate exists whenever any does
        cum[rows] = local[rows] + np.where(found, score[np.arange(rows.size), pick], 0.0)
        best[rows] = np.where(found, loc[np.arange(rows.size), pick], -1)
    # no predecessor until the first column whose own score reaches 1% of the maximum
    start = int(np.argmax(local >= 0.01 * local.max()))
    best[:start] = -1
    return best, cum


def _last_beat(cum: np.ndarray) -> int:
    """The last local maximum of the cumulative score that reaches half the median of its local maxima."""
    n = cum.size
    peak = np.zeros(n, bool)
    if n > 2:
        peak[1:-1] = (cum[1:-1] > cum[:-2]) & (cum[1:-1] >= cum[2:])
    if n > 1:
        peak[-1] = cum[-1] > cum[-2]
    if not peak.any():
        return n - 1
    ok = np.flatnonzero(peak & (cum >= 0.5 * float(np.median(cum[peak]))))
    return int(ok[-1]) if ok.size else n - 1


def _trim_beats(local: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Drop beats in the leading and trailing runs of columns whose score is at most half the RMS of the beats'
    smoothed scores (librosa's rule, including its smoothing's two extra tail values)."""
    w = np.hanning(5)
    smooth = np.convolve(local[beats], w)[len(w) // 2 : local.size + len(w) // 2]
    threshold = 0.5 * float(np.sqrt(np.mean(smooth**2)))
    out = beats.copy()
    weak = local <= threshold
    lead = int(np.argmin(weak)) if not weak.all() else local.size
    tail = int(np.argmin(weak[::-1])) if not weak.all() else local.size
    out[:lead] = False
    out[local.size - tail :] = False
    return out


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
        h00 = 2 * uu**3 - 3 * uu**2 + 1
        h10 = uu**3 - 2 * uu**2 + uu
        h01 = -2 * uu**3 + 3 * uu**2
        h11 = uu**3 - uu**2
        out = h00 * a + h10 * span[:, None] * ta + h01 * b + h11 * span[:, None] * tb
    else:
        w = (_ease(u) if ease == "cosine" else u)[:, None]
        out = a * (1.0 - w) + b * w
    # exact arrival (and holding) at the keyframes, whatever the rounding above
    out = jnp.where((u <= 0)[:, None], a, jnp.where((u >= 1)[:, None], b, out))
    return out.astype(jnp.float32)
