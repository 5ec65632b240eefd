"""Causal audio analysis for live mode: an audio stream's features, block by block, from the past only.

The offline analysis (:mod:`lsd_jax.audio.analysis`) sees the whole song: centred STFT columns (a column exists half a
window
after its centre), HPSS median filters over the past *and the future*, min-max over the excerpt. Live, every
feature at time t may depend only on audio before t, and must exist as soon as possible after it. What changes:

* **Resampling** to the analysis rate (22050 Hz) of a stream at any rate: a causal 8th-order Butterworth low-pass
  at 0.45·22050 Hz (its state carried from block to block) then soxr's quick cubic interpolation, which holds back
  no samples. soxr's high-quality filters are linear-phase: measured on 48 kHz input in 10 ms blocks, its stream
  returns each sample 21 ms later on average (up to 38 ms), a fifth of the latency budget.
* **STFT columns end at the newest sample**: column j's window is the ``n_fft`` samples up to ``(j + 1)·hop``
  (the stream starts after ``n_fft − hop`` zeros), computed as soon as those samples arrived. The window is
  ``LIVE_N_FFT = 1024`` samples (46 ms) instead of 2048 at hop ``LIVE_HOP = 128`` (5.8 ms): a hit at the
  window's newest edge is weighted by the Hann window's tail, so the column reaches half of the hit's power only
  once the hit is ~325 samples (15 ms) inside; with 2048 it would take 30 ms.
* **HPSS, causal**: the percussive estimate (a median across ``PERC_KERNEL`` frequency bins, the same 330 Hz span
  as offline) is per column, so causal already; the harmonic estimate is a median over the *past*
  ``HPSS_KERNEL`` columns, one every ``HPSS_HOP // hop`` (0.7 s, as offline) instead of the centred one. A
  steady tone is harmonic once it has lasted half that window; a hit never reaches the median of the past, so it
  is percussive from its first column. Soft masks, power = ``|X|² · mask²`` as offline
  (:func:`lsd_jax.audio.spectral.soft_mask`).
* **Onset strength**: the mean positive rise in dB across mel bands from the previous column
  (:func:`lsd_jax.audio.spectral.onset_columns`), the dB floored 80 dB below the loudest column so far (offline: below
  the excerpt's maximum), placed at the column that completes it.
* **Chroma**: per column, scaled to max 1 (:func:`lsd_jax.audio.spectral.chroma_columns`); 0 where the column's newest
  hop is silent (peak below -80 dBFS), as offline.

Normalisation to [0, 1] is not done here: the live renderer pools columns into frames and applies the running
min-max (:func:`lsd_jax.audio.envelopes.running_step`) frame by frame, as ``normalize="running"`` does offline.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import spectral
from .envelopes import SILENCE_PEAK, SR

LIVE_N_FFT = 1024
LIVE_HOP = 128
PERC_KERNEL = 15  # bins: 15 x 21.5 Hz, the span of offline's 31 bins of 10.8 Hz
TOP_DB = spectral.TOP_DB
PARTS = ("mix", "harmonic", "percussive")

__all__ = ["Columns", "LIVE_HOP", "LIVE_N_FFT", "PARTS", "StreamAnalyzer", "StreamResampler"]


class Columns(NamedTuple):
    """Features of consecutive STFT columns (T of them; T may be 0)."""

    end: np.ndarray  # (T,) float64: stream time (s, at the input's rate) of each column's newest sample
    loudness: np.ndarray  # (3, T) float32: max over mel bands of the mel power of the mix, harmonic, percussive part
    onset: np.ndarray  # (3, T) float32: onset strength of each part (mean positive dB rise over mel bands)
    chroma: np.ndarray  # (12, T) float32 in [0, 1]: pitch classes of the mix (0 in silence)
    peak: np.ndarray  # (T,) float32: peak |sample| of each column's newest hop

    @property
    def n(self) -> int:
        return int(self.end.shape[0])


class StreamResampler:
    """Mono blocks at ``sr_in`` → blocks at ``sr`` with no look-ahead (see the module docstring)."""

    def __init__(self, sr_in: int, sr: int = SR):
        self.sr_in, self.sr = int(sr_in), int(sr)
        if self.sr_in <= 0:
            raise ValueError(f"sample rate must be positive, got {sr_in}")
        self._stream = None
        if self.sr_in != self.sr:
            import soxr
            from scipy.signal import butter, sosfilt_zi

            cutoff = 0.45 * min(self.sr_in, self.sr)
            self._sos = butter(8, cutoff, fs=self.sr_in, output="sos") if self.sr_in > self.sr else None
            self._zi = None if self._sos is None else sosfilt_zi(self._sos) * 0.0
            self._stream = soxr.ResampleStream(self.sr_in, self.sr, 1, dtype="float32", quality="QQ")

    def __call__(self, y: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(y, np.float32)
        if self._stream is None:
            return y
        if self._sos is not None and y.size:
            from scipy.signal import sosfilt

            y, self._zi = sosfilt(self._sos, y, zi=self._zi)
            y = y.astype(np.float32)
        return np.asarray(self._stream.resample_chunk(y), np.float32)


class StreamAnalyzer:
    """Causal per-column features of an audio stream: :meth:`push` blocks as they arrive, get the columns they
    complete. Not thread-safe (one feeder)."""

    def __init__(self, sr_in: int, *, n_fft: int = LIVE_N_FFT, hop: int = LIVE_HOP):
        self.sr_in, self.sr, self.n_fft, self.hop = int(sr_in), SR, int(n_fft), int(hop)
        self.resample = StreamResampler(self.sr_in, self.sr)
        self.window = spectral.hann_window(self.n_fft)
        self.mel_fb = spectral.mel_filterbank(self.sr, self.n_fft)
        self.chroma_fb = spectral.chroma_filterbank(self.sr, self.n_fft)
        self.stride = spectral.hpss_stride(self.hop)
        self.reach = (spectral.HPSS_KERNEL - 1) * self.stride  # past columns the harmonic median reads
        bins = 1 + self.n_fft // 2
        self._buf = np.zeros(self.n_fft - self.hop, np.float32)  # samples not yet in a complete column
        self._mags = np.zeros((bins, self.reach), np.float32)  # the past columns' magnitudes
        self._db_prev: np.ndarray | None = None  # (3, n_mels): the last column's dB, per part
        self._db_top = -np.inf
        self.n_columns = 0  # columns computed so far
        self.samples_in = 0  # input samples pushed so far (at sr_in)

    def push(self, samples: np.ndarray) -> Columns:
        """Analyse a block (n,) or (n, channels) at ``sr_in``; return the columns it completed."""
        x = np.asarray(samples, np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)
        self.samples_in += int(x.shape[0])
        y = np.concatenate([self._buf, self.resample(x)])
        T = max(0, (y.shape[0] - self.n_fft) // self.hop + 1)
        if T == 0:
            self._buf = y
            return self._empty()
        frames = np.lib.stride_tricks.sliding_window_view(y, self.n_fft)[:: self.hop][:T]  # (T, n_fft)
        newest = frames[:, self.n_fft - self.hop :]
        self._buf = y[T * self.hop :]
        power = spectral.power_spectrum(frames, self.window).T  # (bins, T)
        out = self._features(power, np.abs(newest).max(axis=1))
        j = self.n_columns + np.arange(1, T + 1)
        self.n_columns += T
        end = j * self.hop / self.sr  # column j (from 1) ends at sample j·hop: n_fft − hop zeros came first
        return Columns(end.astype(np.float64), *out)

    def _empty(self) -> Columns:
        z = np.zeros((0,), np.float32)
        return Columns(
            np.zeros(0), np.zeros((3, 0), np.float32), np.zeros((3, 0), np.float32), np.zeros((12, 0), np.float32), z
        )

    def _features(self, power: np.ndarray, peak: np.ndarray) -> tuple[np.ndarray, ...]:
        from scipy.ndimage import median_filter

        T = power.shape[1]
        mag = np.sqrt(power)
        hist = np.concatenate([self._mags, mag], axis=1)  # (bins, reach + T)
        taps = (self.reach + np.arange(T))[:, None] - self.stride * np.arange(spectral.HPSS_KERNEL)[None, :]
        harm = np.median(hist[:, taps], axis=-1).astype(np.float32)  # (bins, T): past columns only
        self._mags = hist[:, T:]
        perc = median_filter(mag, size=(PERC_KERNEL, 1), mode="reflect")  # across frequency, per column
        mask_h, mask_p = spectral.soft_mask(harm, perc), spectral.soft_mask(perc, harm)
        parts = np.stack([power, power * np.square(mask_h), power * np.square(mask_p)])  # (3, bins, T)
        # mel_power's product, dense: for a few columns one matmul beats its per-band loop (~100x here)
        mels = np.matmul(self.mel_fb, parts)  # (3, n_mels, T)
        loudness = mels.max(axis=1)
        db = spectral.power_to_db(mels, top_db=None)  # (3, n_mels, T)
        top = np.maximum.accumulate(np.maximum(db.max(axis=(0, 1)), np.float32(self._db_top)))  # (T,) up to t
        self._db_top = float(top[-1])
        floor = (top - np.float32(TOP_DB)).astype(np.float32)
        first = db[:, :, :1] if self._db_prev is None else self._db_prev[:, :, None]  # no rise into the 1st column
        before = np.maximum(np.concatenate([first, db[:, :, :-1]], axis=2), floor)  # both floored at column t's
        onset = np.stack([spectral.onset_columns(before[k], np.maximum(db[k], floor)) for k in range(3)])
        self._db_prev = db[:, :, -1]
        chroma = np.nan_to_num(spectral.chroma_columns(power, self.chroma_fb))
        chroma[:, peak < SILENCE_PEAK] = 0.0
        return (
            loudness.astype(np.float32),
            onset.astype(np.float32),
            chroma.astype(np.float32),
            peak.astype(np.float32),
        )
