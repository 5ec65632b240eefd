"""Song -> per-frame features at exactly the requested fps: one analysis per signal.

Decoding: :mod:`lsd_jax.media.decode`. The song (and each stem, and ``output_audio``) is decoded ONCE per render, with
up to ``CONTEXT_S`` seconds around the excerpt; the song's decode also gives the soundtrack that is muxed
(``Features.soundtrack``: the excerpt at the file's own rate and channels). Mono analysis signals are resampled to
22050 Hz.

Spectra: ONE power STFT per signal (:mod:`lsd_jax.audio.spectral`, NumPy: no librosa, no numba on this path) feeds
everything: the mel spectrogram (loudness, onsets, the three bands, the beat tracker's onset envelope), the HPSS
masks (harmonic/percussive parts are the STFT times the masks, not re-analysed waveforms) and the chroma.

Timing: frame ``i`` covers ``[i/fps, (i+1)/fps)`` and ``N = ceil(len(y) * fps / sr)`` (the last partial frame
counts). Unlike Lucid Sonic Dreams there is no hop rounding: spectral columns are computed at a fine power-of-two
hop (at least two columns per frame) and the columns whose centres fall in a frame are pooled (max for envelopes,
mean for chroma), so a transient inside a frame is never lost.

Features (Lucid Sonic Dreams' meanings):

* loudness envelope: mel power spectrogram (128 bands), max over bands, min-max to [0, 1]: over the whole excerpt
  (``normalize="global"``, Lucid Sonic Dreams) or running (``"running"``: a peak and a trough that forget within
  seconds, :func:`lsd_jax.audio.envelopes.running_step`, the normalisation live mode uses; one loud hit no longer
  flattens the rest). Lucid Sonic Dreams takes one column per frame of ``input_shape`` (512) mel bands; pooled
  over the frame, the pulse's strongest kick here is ~18% stronger at 43 fps (``scripts/lsd_parity.py``);
* onset envelope (``pulse_mode="onset"``): onset strength of the dB mel spectrogram, pooled and normalised alike;
* HPSS: soft masks from median filters (librosa's ``hpss`` defaults), computed at most once per signal;
* chroma (N, 12), of the full mix or ``class_audio`` (never HPSS'd), the mean of the columns in each frame:
  ``chroma="stft"`` (the default): the STFT chroma (:func:`lsd_jax.audio.spectral.chroma_columns`, at A440);
  ``chroma="cqt"``: Lucid Sonic Dreams' own, librosa's ``chroma_cqt`` called as it calls it
  (:func:`lsd_jax.audio.spectral.chroma_cqt`, at the analysis hop; slower, and it imports librosa). Measured on
  the 30 s demo song (chords C, Am, F, G over bass and drums) at 30 fps (``scripts/lsd_parity.py``): frame by
  frame the two correlate at 0.46 and share the strongest pitch class in 56% of frames; the class vectors (which
  accumulate and smooth the chroma) correlate at 0.63 and share their strongest class in 78% of frames. The STFT
  chroma's strongest pitch class is in the chord being played in 91% of frames, chroma_cqt's in 81%;
* bands (``band_react``): low/mid/high loudness from the same mel spectrogram (:mod:`lsd_jax.audio.bands`);
* beats (``speed_fpm="beat"``/``"bar"``): from the song's onset envelope (:mod:`lsd_jax.audio.beats`).

Per-column maths lives in :mod:`lsd_jax.audio.spectral`, framing, pooling and normalising in
:mod:`lsd_jax.audio.envelopes`;
this module runs them over a song's signals.

Every problem with an input file is an :class:`~lsd_jax.errors.AudioError` naming the file.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AudioError
from ..media import decode
from ..media.decode import PathLike
from ..media.timing import fps_fraction, frame_count
from . import spectral
from .envelopes import SILENCE_PEAK, SR, analysis_hop, fit_length, is_silent, normalize, onset_envelope, pool_columns

if TYPE_CHECKING:
    from .beats import Beats

N_FFT = spectral.N_FFT  # Lucid Sonic Dreams' mel window (librosa's default)
N_MELS = spectral.N_MELS  # LSD's n_mels is input_shape (512 by default): many of its mel filters are empty
CONTEXT_S = 1.0  # song analysed around the excerpt (> HPSS's 31-column median filter, 0.72 s)

__all__ = ["CONTEXT_S", "SR", "Features", "analyze"]


# --- features -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """Per-frame audio features of an excerpt, all float32 NumPy arrays with N = n_frames rows, and the
    soundtrack to mux."""

    fps: float
    sr: int
    n_frames: int
    duration_s: float  # length of the excerpt
    pulse: np.ndarray  # (N,) in [0, 1]
    motion: np.ndarray  # (N,) in [0, 1]
    chroma: np.ndarray  # (N, 12) in [0, 1]
    contrast: np.ndarray | None  # (N,) or None when the contrast effect is off
    flash: np.ndarray | None  # (N,) or None when the flash effect is off
    effects: tuple[np.ndarray, ...] = ()  # one (N,) per custom effect, in order
    bands: np.ndarray | None = None  # (N, 3) low/mid/high in [0, 1] when band_react is on
    beats: Beats | None = None  # when speed_fpm is "beat" or "bar", or a timeline is keyed by beats or bars
    soundtrack: tuple[np.ndarray, int] | None = None  # (samples (n, channels) float32, sample rate)


def selected_part(percussive: bool, harmonic: bool) -> str:
    """Lucid Sonic Dreams' selection: both equal -> the mix; otherwise the one that is set."""
    if percussive == harmonic:
        return "mix"
    return "harmonic" if harmonic else "percussive"


class _Spectra:
    """One mono signal's spectra, each computed at most once: the power STFT, the mel spectrogram of the mix
    and of its HPSS parts, and the chroma."""

    def __init__(self, y: np.ndarray, sr: int, hop: int):
        self.y, self.sr, self.hop = y, sr, hop
        self._power: np.ndarray | None = None
        self._mel: dict[str, np.ndarray] = {}

    @property
    def power(self) -> np.ndarray:  # (1 + N_FFT // 2, T)
        if self._power is None:
            self._power = spectral.stft_power(self.y, self.hop)
        return self._power

    def mel(self, part: str) -> np.ndarray:  # (N_MELS, T) power
        if part not in self._mel:
            fb = spectral.mel_filterbank(self.sr)
            if part == "mix":
                self._mel[part] = spectral.mel_power(self.power, fb)
            else:  # both parts from one HPSS
                self._mel["harmonic"], self._mel["percussive"] = spectral.hpss_mel(self.power, self.hop, fb)
        return self._mel[part]

    def chroma(self, kind: str = "stft") -> np.ndarray:  # (12, T)
        if kind == "cqt":
            return spectral.chroma_cqt(self.y, self.sr, self.hop)
        return spectral.chroma_columns(self.power, spectral.chroma_filterbank(self.sr))


class _Analysis:
    """One song's analysis: each file decoded once, each signal's spectra computed once and shared.

    Signals are analysed with up to ``CONTEXT_S`` seconds of the song around the excerpt, so an
    excerpt cut in the middle of the music gets no fake hit at its edges; only columns inside the
    excerpt are pooled into frames.
    """

    def __init__(self, song: PathLike, params: Any, max_seconds: float | None = None):
        self.song = song
        self.params = params
        self.sr = SR
        self.fps = fps_fraction(params.fps)
        self.hop = analysis_hop(self.sr, self.fps)
        start, duration = float(params.start), params.duration
        self.start = start
        self.ctx_start = max(0.0, start - CONTEXT_S)
        lead = start - self.ctx_start
        if max_seconds is not None and not (math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
        if max_seconds is not None and duration is not None and float(duration) > max_seconds:
            raise decode.TooLong(
                f"the excerpt of {_name(song)} is {float(duration):g} s long; this renders at "
                f"most {max_seconds:g} s: choose a shorter duration"
            )
        if duration is not None:
            self.ctx_duration: float | None = float(duration) + lead + CONTEXT_S
        elif max_seconds is not None:  # decode a little more than allowed, to see whether there is more
            self.ctx_duration = lead + float(max_seconds) + CONTEXT_S
        else:
            self.ctx_duration = None
        self._raw: dict[str, tuple[np.ndarray, int]] = {}
        try:
            data, nsr = self.raw(song)
        except decode.BeyondEnd as e:  # name the user's start, not the context's
            raise decode.beyond_end(song, start, e.length_s) from None
        off = self._first(nsr)
        avail = data.shape[0] - off
        if avail <= 0:
            raise decode.beyond_end(song, start, (int(round(self.ctx_start * nsr)) + data.shape[0]) / nsr)
        n_ex = avail if duration is None else min(avail, int(round(float(duration) * nsr)))
        if max_seconds is not None and n_ex > int(round(max_seconds * nsr)):
            raise decode.TooLong(
                f"{_name(song)} holds more than {max_seconds:g} s of audio after start={start:g} s;"
                f" this renders at most {max_seconds:g} s: give a duration of at most "
                f"{max_seconds:g} s"
            )
        # exact excerpt timing, in the file's own samples (so it matches the muxed soundtrack)
        self.offset = Fraction(off, nsr)
        self.duration = Fraction(n_ex, nsr)
        self.song_excerpt = (data[off : off + n_ex], nsr)
        if n_ex * self.fps < nsr:  # less than one frame
            raise AudioError(
                f"the audio excerpt of {_name(song)} is too short: {float(self.duration) * 1000:.1f} ms, "
                f"shorter than one frame (1/fps = {1000 / float(self.fps):.1f} ms)"
            )
        self.n_frames = frame_count(n_ex, nsr, self.fps)
        y = decode.resample(decode.to_mono(data), nsr, self.sr, song)
        self.n_samples = y.shape[0]
        a0 = int(round(off * self.sr / nsr))
        self.region = slice(a0, min(self.n_samples, a0 + math.ceil(n_ex * self.sr / nsr)))
        if is_silent(y[self.region]):
            raise AudioError(
                f"{_name(song)} is silent (peak below -80 dBFS) in the excerpt analysed"
                f" (start={start:g} s); nothing to react to"
            )
        self._signals: dict[str, np.ndarray] = {"song": y}
        self._spectra: dict[str, _Spectra] = {}
        self._env: dict[tuple[str, str, str], np.ndarray] = {}
        self._onset: dict[tuple[str, str], np.ndarray] = {}

    # decoding
    def _first(self, sr: int) -> int:
        """Index of the excerpt's first sample in a decode of the context span at ``sr``."""
        return int(round(self.start * sr)) - int(round(self.ctx_start * sr))

    def raw(self, path: PathLike) -> tuple[np.ndarray, int]:
        """A file's samples over the analysed span (the excerpt and its context), decoded once."""
        key = _file_key(path)
        if key not in self._raw:
            self._raw[key] = decode.read_audio(path, start=self.ctx_start, duration=self.ctx_duration)
        return self._raw[key]

    def soundtrack(self) -> tuple[np.ndarray, int]:
        """What to mux: ``output_audio`` or the song, the same excerpt, its own channels and rate."""
        src = self.params.output_audio
        if src is None or _file_key(src) == _file_key(self.song):
            return self.song_excerpt
        data, sr = self.raw(src)
        off = self._first(sr)
        if off >= data.shape[0]:
            raise decode.beyond_end(src, self.start, (int(round(self.ctx_start * sr)) + data.shape[0]) / sr)
        n = None if self.params.duration is None else int(round(float(self.params.duration) * sr))
        return (data[off:] if n is None else data[off : off + n]), sr

    # signals
    def _source(self, stem: PathLike | None) -> str:
        if stem is None or _file_key(stem) == _file_key(self.song):
            return "song"
        return os.fspath(stem)

    def signal(self, source: str) -> np.ndarray:
        """The mono analysis signal of the song or a stem over the analysed span."""
        if source not in self._signals:
            self._signals[source] = self._load_stem(source)
        return self._signals[source]

    def _load_stem(self, path: str) -> np.ndarray:
        """A stem over the same span as the song's analysis, trimmed or zero-padded to it."""
        try:
            data, nsr = self.raw(path)
        except decode.BeyondEnd:
            y = np.zeros(0, np.float32)
        else:
            y = decode.resample(decode.to_mono(data), nsr, self.sr, path)
        y = fit_length(y, self.n_samples)
        if not y[self.region].any():
            warnings.warn(
                f"stem {path} has no audio in the excerpt (start={self.params.start:g} s); it is treated as silence",
                stacklevel=4,
            )
        return y

    def spectra(self, source: str) -> _Spectra:
        if source not in self._spectra:
            self._spectra[source] = _Spectra(self.signal(source), self.sr, self.hop)
        return self._spectra[source]

    def silent(self, source: str) -> bool:
        return is_silent(self.signal(source)[self.region])

    def frame_peaks(self, y: np.ndarray) -> np.ndarray:
        """Peak |sample| of ``y`` inside each frame of the excerpt, (N,)."""
        seg = np.abs(y[self.region])
        num, den = self.fps.numerator, self.fps.denominator
        bounds = np.array([-(-(i * self.sr * den) // num) for i in range(self.n_frames)], np.int64)
        bounds = np.minimum(bounds, seg.size)
        peaks = np.zeros(self.n_frames, np.float32)
        ok = np.flatnonzero(np.diff(np.append(bounds, seg.size)) > 0)
        if ok.size and seg.size:
            peaks[ok] = np.maximum.reduceat(seg, bounds[ok])
        return peaks

    def pool(self, columns: np.ndarray, how: str) -> np.ndarray:
        return pool_columns(columns, self.hop, self.sr, self.fps, self.n_frames, how, self.offset, self.duration)

    # spectral features
    def onset_columns(self, source: str, part: str) -> np.ndarray:
        """Onset strength per spectral column (T,) float64."""
        key = (source, part)
        if key not in self._onset:
            self._onset[key] = onset_envelope(self.spectra(source).mel(part), self.hop)
        return self._onset[key]

    def envelope(self, source: str, part: str, kind: str = "loudness") -> np.ndarray:
        key = (source, part, kind)
        if key in self._env:
            return self._env[key]
        if self.silent(source):  # a silent signal has silent parts
            env = np.zeros(self.n_frames, np.float32)
        else:
            if kind == "loudness":
                cols = self.spectra(source).mel(part).max(axis=0)
            else:
                cols = self.onset_columns(source, part)
            env = normalize(self.pool(cols, "max"), self.params.normalize, float(self.fps))
        self._env[key] = env
        return env

    def chroma(self, source: str) -> np.ndarray:
        y = self.signal(source)
        if self.silent(source):
            return np.zeros((self.n_frames, 12), np.float32)
        C = np.nan_to_num(self.spectra(source).chroma(self.params.chroma).astype(np.float64))
        chroma = np.clip(self.pool(C, "mean"), 0.0, 1.0).astype(np.float32)
        # every column is scaled to max 1, so near-silence comes out as amplified numerical noise: silent frames
        # get 0, with either chroma (Lucid Sonic Dreams' chroma_cqt has the same problem, and its long low filters
        # also smear a note's start backwards into the silence before it)
        chroma[self.frame_peaks(y) < SILENCE_PEAK] = 0.0
        return chroma

    def bands(self) -> np.ndarray:
        from .bands import band_envelopes

        return band_envelopes(
            self.signal("song"),
            self.sr,
            self.fps,
            self.n_frames,
            self.params.band_edges_hz,
            offset=self.offset,
            duration=self.duration,
            S=self.spectra("song").mel("mix"),
        )

    def beats(self) -> Beats:
        from .beats import track_beats

        return track_beats(
            self.onset_columns("song", "mix"), self.sr, self.hop, self.fps, self.n_frames, start=float(self.offset)
        )


def _name(path: PathLike) -> str:
    return str(path)


def _file_key(path: Any) -> str:
    """One key per file, however its path is spelled."""
    if not isinstance(path, (str, os.PathLike)):
        return repr(path)  # not a path: decoding it raises a clear AudioError
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def analyze(song: PathLike, params: Any, *, max_seconds: float | None = None) -> Features:
    """Per-frame features of ``song`` for a render with ``params`` (a RenderParams), and its soundtrack.

    Selection rules follow Lucid Sonic Dreams: for pulse and motion, both-or-neither of
    ``*_percussive``/``*_harmonic`` -> the mix, otherwise the HPSS part that is set; a stem
    (``pulse_audio`` ...) overrides and is loaded with the same start/duration, trimmed or
    zero-padded to the song's frames. Chroma (``params.chroma``: "stft" or "cqt") comes from the mix or
    ``class_audio``. Contrast and flash are computed only when enabled, from their percussive part unless
    ``*_percussive=False``. Bands are computed when ``band_react`` is on, beats when ``speed_fpm`` is
    "beat" or "bar" or a timeline needs them (``params.tracks_beats``). A silent song is an AudioError; a
    silent stem gives zeros. ``max_seconds``: refuse
    (an AudioError) an excerpt longer than that, measured on the decoded audio.
    """
    a = _Analysis(song, params, max_seconds)

    def env(stem: PathLike | None, part: str, kind: str = "loudness") -> np.ndarray:
        return a.envelope(a._source(stem), part, kind)

    pulse_part = "mix" if params.pulse_audio else selected_part(params.pulse_percussive, params.pulse_harmonic)
    motion_part = "mix" if params.motion_audio else selected_part(params.motion_percussive, params.motion_harmonic)
    pulse = env(params.pulse_audio, pulse_part, "onset" if params.pulse_mode == "onset" else "loudness")
    motion = env(params.motion_audio, motion_part)
    chroma = a.chroma(a._source(params.class_audio))

    def effect(stem: PathLike | None, percussive: bool) -> np.ndarray:
        return env(stem, "percussive" if percussive else "mix")

    effects = tuple(effect(e.audio, bool(e.percussive)) for e in params.custom_effects)
    contrast = effect(params.contrast_audio, params.effect_percussive("contrast")) if params.contrast_on else None
    flash = effect(params.flash_audio, params.effect_percussive("flash")) if params.flash_on else None
    bands = a.bands() if any(params.band_react) else None
    beats = a.beats() if params.tracks_beats else None
    return Features(
        fps=float(params.fps),
        sr=a.sr,
        n_frames=a.n_frames,
        duration_s=float(a.duration),
        pulse=pulse,
        motion=motion,
        chroma=chroma,
        contrast=contrast,
        flash=flash,
        effects=effects,
        bands=bands,
        beats=beats,
        soundtrack=a.soundtrack(),
    )
