"""Spectral maths in NumPy: STFT power, mel and chroma filterbanks, dB, onset strength and HPSS masks.

The definitions are librosa's defaults (0.10/0.11), written here so the render path imports neither librosa nor
numba (a cold process paid seconds for them before its first mel). ``tests/test_spectral.py`` holds librosa as
the oracle: every function below matches it to float32 rounding, except where noted.

* STFT: periodic Hann window of ``n_fft`` samples, centred frames (``n_fft // 2`` zeros on each side), column
  ``j`` centred on sample ``j * hop``; ``1 + len(y) // hop`` columns. Power = ``|X|²``.
* Mel: Slaney's mel scale and area normalisation (librosa's ``htk=False, norm="slaney"``), fmin 0, fmax sr/2.
* dB: ``10·log10(max(amin, S) / ref)`` floored ``top_db`` below the maximum (librosa's ``power_to_db``).
* Onset strength: the mean over mel bands of the positive dB increase from one column to the next (lag 1, no
  max filter), placed ``1 + n_fft // (2·hop)`` columns later, as librosa's ``onset_strength`` (``center=True``).
* HPSS (Fitzgerald's median filtering, librosa's ``decompose.hpss`` defaults: kernel 31, power 2, margin 1):
  soft masks computed from the magnitude spectrogram itself; a part's power is ``|X|² · mask²`` (no istft →
  stft round trip). librosa's ``effects.hpss`` filters a hop-512 STFT, whose 31-column kernel spans 0.72 s at
  22050 Hz; at a finer hop the time filter takes every ``512 / hop``-th column (31 taps over the same 0.72 s),
  so the masks on the columns at multiples of 512 samples are exactly librosa's.
* Chroma: the STFT chroma filterbank (librosa's ``filters.chroma``: Gaussian bumps per pitch class, octave
  weighting centred on ``ctroct=5`` with ``octwidth=2``, starting at C) at A440 (no tuning estimate), each
  column scaled to max 1 (``chroma_stft(tuning=0)``). Lucid Sonic Dreams uses ``chroma_cqt``, which
  :func:`chroma_cqt` runs through librosa itself (only for ``chroma="cqt"``: librosa is imported there); see
  :mod:`lsd_jax.audio.analysis` for how the two compare.

Per-column functions (``power_spectrum``, ``mel_power`` (a matrix product), ``onset_columns``,
``soft_mask``, ``chroma_columns``) hold the maths; the whole-signal functions only frame, loop and shift, so a
causal, block-by-block analysis can reuse the same pieces. Arrays are (bins, columns), float32.
"""

from __future__ import annotations

import math

import numpy as np

N_FFT = 2048
N_MELS = 128
AMIN = 1e-10  # power floor of power_to_db
TOP_DB = 80.0
HPSS_KERNEL = 31
HPSS_HOP = 512  # librosa's default hop, the one its HPSS kernel was designed for
BLOCK_COLUMNS = 2048  # STFT columns transformed at once (bounds the temporary frame copies)


# --- frequency scales ---------------------------------------------------------------------------

_F_SP = 200.0 / 3  # Slaney: linear 66.67 Hz per mel below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0  # ... logarithmic above (6.4x per 27 mels)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel of frequencies in Hz (float64)."""
    f = np.asarray(hz, np.float64)
    log = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, f / _F_SP)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Frequencies in Hz of Slaney mels (float64)."""
    m = np.asarray(mel, np.float64)
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log, _F_SP * m)


def mel_frequencies(n: int, fmin: float = 0.0, fmax: float = 11025.0) -> np.ndarray:
    """``n`` frequencies (Hz) evenly spaced on the mel scale from ``fmin`` to ``fmax``, both included."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), int(n)))


def fft_frequencies(sr: int, n_fft: int = N_FFT) -> np.ndarray:
    """Centre frequency (Hz) of each of the ``1 + n_fft // 2`` rfft bins."""
    return np.arange(1 + n_fft // 2) * (float(sr) / n_fft)


def mel_filterbank(
    sr: int, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32: triangular filters between consecutive mel frequencies, each scaled by
    2 / (its width in Hz) (Slaney's constant energy per band)."""
    fmax = float(sr) / 2 if fmax is None else float(fmax)
    edges = mel_frequencies(n_mels + 2, fmin, fmax)  # (n_mels + 2,)
    freqs = fft_frequencies(sr, n_fft)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    return weights.astype(np.float32)


def chroma_filterbank(
    sr: int,
    n_fft: int = N_FFT,
    n_chroma: int = 12,
    tuning: float = 0.0,
    ctroct: float = 5.0,
    octwidth: float | None = 2.0,
) -> np.ndarray:
    """(n_chroma, 1 + n_fft // 2) float32: each FFT bin's weight on each pitch class (row 0 = C).

    Each bin is a Gaussian bump around its (fractional) pitch class, as wide as the bin is in semitones (at
    least one); bump columns have unit L2 norm; then an octave weighting, a Gaussian in octaves centred on
    ``ctroct`` (counted from A0 = 27.5 Hz) with half-width ``octwidth``. The 0 Hz bin gets a made-up pitch 1.5
    octaves below the first bin's.
    """
    n_c = int(n_chroma)
    a440 = 440.0 * 2.0 ** (tuning / n_c)
    freqs = np.arange(1, n_fft) * (float(sr) / n_fft)  # every bin but DC, up to sr (aliases dropped below)
    pitch = n_c * np.log2(freqs / (a440 / 16.0))  # in chroma bins from A0
    pitch = np.concatenate([[pitch[0] - 1.5 * n_c], pitch])
    width = np.concatenate([np.maximum(np.diff(pitch), 1.0), [1.0]])
    half = float(round(n_c / 2))
    # distance of each bin's pitch to each class, wrapped to [-half, half)
    d = np.remainder(pitch[None, :] - np.arange(n_c)[:, None] + half + 10 * n_c, n_c) - half
    w = np.exp(-0.5 * (2.0 * d / width[None, :]) ** 2)
    norm = np.sqrt((w**2).sum(axis=0, keepdims=True))
    w = w / np.where(norm < np.finfo(np.float64).tiny, 1.0, norm)
    if octwidth is not None:
        w = w * np.exp(-0.5 * ((pitch / n_c - ctroct) / octwidth) ** 2)[None, :]
    w = np.roll(w, -3 * (n_c // 12), axis=0)  # start at C instead of A
    return np.ascontiguousarray(w[:, : 1 + n_fft // 2], np.float32)


# --- STFT -------------------------------------------------------------------------------------------


def hann_window(n: int = N_FFT) -> np.ndarray:
    """The periodic Hann window of ``n`` samples (float64)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def n_columns(n_samples: int, hop: int) -> int:
    """Columns of a centred STFT: ``1 + n_samples // hop``."""
    return 1 + int(n_samples) // int(hop)


def power_spectrum(frames: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per column: (..., n_fft) frames times ``window`` → (..., 1 + n_fft // 2) power ``|rfft|²`` (float32;
    the FFT runs in float64, as librosa's does with its float64 window)."""
    spec = np.fft.rfft(frames * np.asarray(window, np.float64), axis=-1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


def stft_power(y: np.ndarray, hop: int, n_fft: int = N_FFT) -> np.ndarray:
    """(1 + n_fft // 2, columns) float32 power spectrogram of the centred STFT of mono ``y``."""
    y = np.asarray(y, np.float32)
    pad = n_fft // 2
    padded = np.pad(y, (pad, pad))
    n_col = n_columns(y.shape[0], hop)
    window = hann_window(n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_col]  # a view, no copy
    out = np.empty((1 + n_fft // 2, n_col), np.float32)
    for a in range(0, n_col, BLOCK_COLUMNS):
        b = min(n_col, a + BLOCK_COLUMNS)
        out[:, a:b] = power_spectrum(frames[a:b], window).T
    return out


def mel_power(power: np.ndarray, filterbank: np.ndarray) -> np.ndarray:
    """(bins, T) power → (n_mels, T) mel power (float32): ``filterbank @ power``, each band summed over the bins
    its triangle covers only (the mel filterbank is ~98% zeros)."""
    fb = np.asarray(filterbank, np.float32)
    P = np.ascontiguousarray(power, np.float32)
    out = np.zeros((fb.shape[0],) + P.shape[1:], np.float32)
    for m in range(fb.shape[0]):
        support = np.flatnonzero(fb[m])
        if support.size:
            lo, hi = support[0], support[-1] + 1
            out[m] = fb[m, lo:hi] @ P[lo:hi]
    return out


def mel_spectrogram(y: np.ndarray, sr: int, hop: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, 1 + len(y) // hop) mel power spectrogram of mono ``y`` (librosa's ``melspectrogram`` defaults)."""
    return mel_power(stft_power(y, hop, n_fft), mel_filterbank(sr, n_fft, n_mels))


# --- dB and onsets ----------------------------------------------------------------------------------


def power_to_db(S: np.ndarray, ref: float = 1.0, amin: float = AMIN, top_db: float | None = TOP_DB) -> np.ndarray:
    """``10·log10(max(amin, S)) − 10·log10(max(amin, ref))``, floored ``top_db`` below its maximum (float32).
    The whole-signal analysis passes ``ref = S.max()`` (librosa's ``ref=np.max``)."""
    S = np.asarray(S, np.float32)
    db = 10.0 * np.log10(np.maximum(np.float32(amin), S)) - np.float32(10.0 * np.log10(max(amin, abs(ref))))
    if top_db is not None and db.size:
        db = np.maximum(db, db.max() - np.float32(top_db))
    return db.astype(np.float32)


def onset_columns(db_before: np.ndarray, db_after: np.ndarray) -> np.ndarray:
    """Per column pair: mean over bands of ``max(0, after − before)``: (bands, K), (bands, K) → (K,)."""
    return np.mean(np.maximum(0.0, db_after - db_before), axis=0, dtype=np.float32)


def onset_delay(hop: int, n_fft: int = N_FFT) -> int:
    """Columns between a flux and the column it is placed at: 1 (the lag) + ``n_fft // (2·hop)`` (centring)."""
    return 1 + n_fft // (2 * int(hop))


def onset_strength(db: np.ndarray, hop: int, n_fft: int = N_FFT) -> np.ndarray:
    """(bands, T) dB spectrogram → (T,) onset strength, the flux between columns ``k−1`` and ``k`` at column
    ``k − 1 + onset_delay(hop)`` (zeros before; trimmed to T), as librosa's ``onset_strength(S=db)``."""
    db = np.asarray(db, np.float32)
    T = db.shape[-1]
    flux = onset_columns(db[:, :-1], db[:, 1:]) if T > 1 else np.zeros(0, np.float32)
    out = np.zeros(T, np.float32)
    d = onset_delay(hop, n_fft)
    k = max(0, min(flux.size, T - d))
    out[d : d + k] = flux[:k]
    return out


# --- HPSS ---------------------------------------------------------------------------------------------


def soft_mask(x: np.ndarray, ref: np.ndarray, power: float = 2.0, split_zeros: bool = True) -> np.ndarray:
    """Elementwise ``x^p / (x^p + ref^p)`` (computed relative to ``max(x, ref)``); where both are ~0 it is 0.5
    when ``split_zeros`` (librosa's choice for margin 1), else 0. float32."""
    x = np.asarray(x, np.float32)
    ref = np.asarray(ref, np.float32)
    z = np.maximum(x, ref)
    bad = z < np.finfo(np.float32).tiny
    z = np.where(bad, np.float32(1.0), z)
    a = (x / z) ** np.float32(power)
    b = (ref / z) ** np.float32(power)
    with np.errstate(invalid="ignore", divide="ignore"):
        mask = a / (a + b)
    return np.where(bad, np.float32(0.5 if split_zeros else 0.0), mask).astype(np.float32)


def _median_rows(x: np.ndarray, size: int, stride: int = 1) -> np.ndarray:
    """Median filter along the last axis (reflecting edges, scipy's ``mode="reflect"``), taking every
    ``stride``-th element: each of the ``stride`` interleaved sub-sequences is filtered on its own.

    scipy's 1-D median filter is ~10x faster than its n-D one, so the rows, each padded with its own reflection,
    go through it as one long sequence (the same values as filtering row by row)."""
    from scipy.ndimage import median_filter

    h = size // 2
    out = np.empty_like(x)
    for r in range(stride):
        sub = x[:, r::stride]
        n = sub.shape[1]
        if n == 0:
            continue
        if n <= h:  # shorter than half the window: scipy reflects repeatedly, row by row is simplest
            out[:, r::stride] = np.stack([median_filter(row, size=size, mode="reflect") for row in sub])
            continue
        padded = np.pad(sub, ((0, 0), (h, h)), mode="symmetric")
        filtered = median_filter(padded.ravel(), size=size, mode="reflect").reshape(padded.shape)
        out[:, r::stride] = filtered[:, h : h + n]
    return out


def hpss_masks(
    magnitude: np.ndarray, hop: int, kernel: int = HPSS_KERNEL, power: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive soft masks (bins, T) of a magnitude spectrogram ``|X|`` at ``hop``.

    Harmonic = median along time (``kernel`` taps, every ``HPSS_HOP // hop``-th column, so it spans the same
    time at any hop ≤ 512), percussive = median along frequency (``kernel`` bins); masks are
    :func:`soft_mask` of each against the other (margin 1). Multiply a power spectrogram by ``mask²``.
    """
    mag = np.ascontiguousarray(magnitude, np.float32)
    stride = hpss_stride(hop)
    harm = _median_rows(mag, kernel, stride)
    perc = _median_rows(np.ascontiguousarray(mag.T), kernel).T
    return soft_mask(harm, perc, power), soft_mask(perc, harm, power)


def hpss_stride(hop: int) -> int:
    """Columns between the taps of the HPSS time filter at ``hop``: ``HPSS_HOP // hop`` (at least 1)."""
    return max(1, HPSS_HOP // int(hop))


def hpss_mel(
    power: np.ndarray, hop: int, filterbank: np.ndarray, block: int = BLOCK_COLUMNS
) -> tuple[np.ndarray, np.ndarray]:
    """Mel spectrograms (n_mels, T) of the harmonic and percussive parts of a power spectrogram (bins, T):
    ``filterbank @ (power · mask²)`` with :func:`hpss_masks` of ``sqrt(power)``.

    Computed over blocks of ``block`` columns, each with the neighbours its time filter reaches, so the memory
    stays a few blocks whatever the song's length; the result is the same as masking the whole spectrogram."""
    T = power.shape[1]
    stride = hpss_stride(hop)
    reach = (HPSS_KERNEL // 2 + 1) * stride  # columns a block's time filter needs on each side
    block = max(stride, block // stride * stride)  # blocks start on the filter's grid
    out_h = np.empty((filterbank.shape[0], T), np.float32)
    out_p = np.empty_like(out_h)
    for a in range(0, T, block):
        b = min(T, a + block)
        lo, hi = max(0, a - reach // stride * stride), min(T, b + reach)
        harm, perc = hpss_masks(np.sqrt(power[:, lo:hi]), hop)
        P = power[:, a:b]
        out_h[:, a:b] = mel_power(P * np.square(harm[:, a - lo : b - lo]), filterbank)
        out_p[:, a:b] = mel_power(P * np.square(perc[:, a - lo : b - lo]), filterbank)
    return out_h, out_p


# --- chroma --------------------------------------------------------------------------------------------


def chroma_columns(power: np.ndarray, filterbank: np.ndarray) -> np.ndarray:
    """(bins, T) power → (12, T) chroma, each column divided by its maximum (all-zero columns stay 0)."""
    raw = np.asarray(filterbank, np.float32) @ np.asarray(power, np.float32)
    peak = raw.max(axis=0, keepdims=True) if raw.size else raw
    return (raw / np.where(peak < np.finfo(np.float32).tiny, np.float32(1.0), peak)).astype(np.float32)


def chroma_cqt(y: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """(n,) mono signal → (12, 1 + n // hop) chroma, float32: Lucid Sonic Dreams' own call,
    ``librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=hop)`` (librosa's defaults: a constant-Q transform of 7
    octaves from C1, 36 bins per octave, tuning estimated from the signal, each column scaled to max 1).
    ``hop`` must be a multiple of 64 (the CQT halves the rate once per octave), as the analysis hop is."""
    import warnings

    import librosa  # here, not at import: only chroma="cqt" pays for librosa (and numba)

    with warnings.catch_warnings():  # the top octaves' short, downsampled signals: librosa pads them, and says so
        warnings.filterwarnings("ignore", message="n_fft=.* is too large for input signal", category=UserWarning)
        return librosa.feature.chroma_cqt(y=np.asarray(y, np.float32), sr=sr, hop_length=hop).astype(np.float32)
