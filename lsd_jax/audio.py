"""Song -> per-frame features at exactly the requested fps.

Loading: soundfile first (seeks to ``start`` and reads only the excerpt), then the ffmpeg binary of
imageio-ffmpeg for what libsndfile cannot read (m4a, ...). Any sample rate or channel count; mono
analysis signals are resampled with soxr (``librosa.resample``).

Timing: frame ``i`` covers ``[i/fps, (i+1)/fps)`` and ``N = ceil(len(y) * fps / sr)`` (the last
partial frame counts). Unlike Lucid Sonic Dreams there is no hop rounding: spectral columns are
computed at a fine power-of-two hop (at least two columns per frame) and the columns whose centres
fall in a frame are pooled (max for envelopes, mean for chroma), so a transient inside a frame is
never lost.

Features (Lucid Sonic Dreams' meanings):

* loudness envelope: mel power spectrogram, max over mel bins, global min-max to [0, 1];
* onset envelope (``pulse_mode="onset"``): librosa's onset strength, pooled and normalised alike;
* chroma: ``chroma_cqt`` (N, 12), of the full mix or ``class_audio`` (never HPSS'd);
* HPSS (``librosa.effects.hpss``) is computed at most once per signal and reused.

Every problem with an input file is an :class:`~lsd_jax.errors.AudioError` naming the file.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AudioError
from .video import fps_fraction, parse_streams, run_ffmpeg

SR = 22050  # analysis sample rate (Lucid Sonic Dreams' librosa default)
N_FFT = 2048  # Lucid Sonic Dreams' mel window (librosa's default)
N_MELS = 128  # LSD used input_shape=512, which leaves many mel filters empty
MIN_HOP, MAX_HOP = 64, 512
SILENCE_PEAK = 1e-4  # -80 dBFS: below this a signal counts as silent
CONTEXT_S = 1.0  # song analysed around the excerpt (> HPSS's 31-column median filter, 0.72 s)

PathLike = str | os.PathLike[str]


# --- loading ------------------------------------------------------------------------------------


def _name(path: PathLike) -> str:
    return str(path)


def _check_file(path: PathLike) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise AudioError(f"an audio file must be given as a path (str or os.PathLike), got {type(path).__name__}: "
                         f"{path!r}")
    p = Path(path).expanduser()
    if not p.exists():
        raise AudioError(f"audio file not found: {_name(path)} (it does not exist)")
    if p.is_dir():
        raise AudioError(f"audio path is a directory, not an audio file: {_name(path)}")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise AudioError(f"cannot read audio file {_name(path)}: {e}") from None
    if size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {_name(path)}")
    return p


class _BeyondEnd(AudioError):
    """``start`` is at or past the end of the file."""


def _beyond(path: PathLike, start: float, length_s: float | None) -> _BeyondEnd:
    total = f" (the file is {length_s:.3f} s long)" if length_s is not None else ""
    return _BeyondEnd(f"start={start:g} s is beyond the end of {_name(path)}{total}")


def _read_soundfile(p: Path, start: float, duration: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(p)) as f:
        sr = int(f.samplerate)
        total = int(f.frames)
        if total <= 0:
            raise RuntimeError("libsndfile found no frames")  # let ffmpeg try (or fail clearly)
        first = int(round(start * sr))
        if first >= total:
            raise _beyond(p, start, total / sr)
        count = -1 if duration is None else max(0, int(round(duration * sr)))
        if first:
            if f.seekable():
                f.seek(first)
            else:  # pragma: no cover - libsndfile formats we read are seekable
                f.read(first, dtype="float32", always_2d=True)
        data = f.read(count, dtype="float32", always_2d=True)
    return data, sr


def _read_ffmpeg(p: Path, start: float, duration: float | None) -> tuple[np.ndarray, int]:
    head = run_ffmpeg(["-i", str(p)])
    text = head.stderr.decode("utf-8", "replace")
    info = parse_streams(text)
    audio = [s for s in info["streams"] if s["kind"] == "audio"]
    if not audio:
        why = [ln.strip() for ln in text.splitlines() if ln.strip()][-1:] or ["no audio stream"]
        if info["streams"]:
            why = ["it has no audio stream"]
        raise AudioError(f"cannot decode {_name(p)}: not an audio file we can read ({why[0]})")
    sr = int(audio[0].get("sample_rate") or SR)
    channels = min(int(audio[0].get("channels") or 2), 2)
    length = info["duration"]
    if length is not None and start > 0 and start >= length:
        raise _beyond(p, start, length)
    # -ss after -i: decode from the beginning and drop samples. Input seeking is faster but lands
    # on a packet boundary for AAC in MP4 (measured: 792 samples late), so it is not sample-exact.
    args = ["-loglevel", "error", "-i", str(p)]
    if start > 0:
        args += ["-ss", f"{start:.6f}"]
    if duration is not None:
        args += ["-t", f"{duration:.6f}"]
    args += ["-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(sr), "-f", "f32le", "-c:a", "pcm_f32le",
             "pipe:1"]
    res = run_ffmpeg(args)
    if res.returncode != 0:
        why = res.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["unknown error"]
        raise AudioError(f"cannot decode {_name(p)} (ffmpeg: {why[0]})")
    data = np.frombuffer(res.stdout, np.float32)
    data = data[: data.size - data.size % channels].reshape(-1, channels)
    if data.shape[0] == 0 and start > 0:
        raise _beyond(p, start, length)
    return data.copy(), sr


def read_audio(path: PathLike, *, start: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
    """The excerpt ``[start, start + duration)`` of a file at its own sample rate.

    Returns ``(samples (n, channels) float32, sample_rate)``. Raises AudioError for a missing,
    empty or undecodable file, ``start`` past the end, and non-finite samples.
    """
    start = float(start)
    if not math.isfinite(start) or start < 0:
        raise AudioError(f"start must be a finite number of seconds >= 0, got {start!r}")
    if duration is not None:
        duration = float(duration)
        if not math.isfinite(duration) or duration <= 0:
            raise AudioError(f"duration must be a positive number of seconds, got {duration!r}")
    p = _check_file(path)
    sf_error: Exception | None = None
    try:
        data, sr = _read_soundfile(p, start, duration)
    except _BeyondEnd:
        raise
    except Exception as e:  # libsndfile cannot read it: let ffmpeg try
        sf_error = e
        try:
            data, sr = _read_ffmpeg(p, start, duration)
        except AudioError:
            raise
        except Exception as e2:
            raise AudioError(f"cannot decode {_name(path)}: {e2} (soundfile: {sf_error})") from None
    if data.shape[0] == 0:
        raise AudioError(f"no audio could be decoded from {_name(path)}")
    if not np.isfinite(data).all():
        raise AudioError(f"{_name(path)} contains non-finite samples (NaN or infinity)")
    return data, sr


def _resample(y: np.ndarray, orig_sr: int, sr: int, path: PathLike) -> np.ndarray:
    if orig_sr == sr:
        return y
    import librosa

    try:
        return librosa.resample(y, orig_sr=orig_sr, target_sr=sr, res_type="soxr_hq", axis=0)
    except Exception as e:
        raise AudioError(f"cannot resample {_name(path)} from {orig_sr} Hz to {sr} Hz: {e}") from None


def load_audio(path: PathLike, *, sr: int = SR, start: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Mono float32 samples of ``[start, start + duration)`` at ``sr`` Hz (any input rate/channels)."""
    data, orig = read_audio(path, start=start, duration=duration)
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    y = _resample(np.ascontiguousarray(y, np.float32), orig, int(sr), path)
    return np.ascontiguousarray(y, dtype=np.float32)


def load_output_audio(song: PathLike, params: Any) -> tuple[np.ndarray, int]:
    """The soundtrack to mux: ``params.output_audio`` or the song, the same excerpt, channels and
    sample rate kept. Returns ``(samples (n, channels) float32, sample_rate)``."""
    src = params.output_audio if params.output_audio is not None else song
    data, sr = read_audio(src, start=params.start, duration=params.duration)
    return np.ascontiguousarray(data, np.float32), sr


# --- frame timing -------------------------------------------------------------------------------


def frame_count(n_samples: int, sr: int, fps: float | Fraction) -> int:
    """Frames that cover ``n_samples`` at ``fps``: ``ceil(n_samples * fps / sr)``, exactly."""
    q = fps_fraction(fps)
    n, sr = int(n_samples), int(sr)
    if n < 0 or sr <= 0:
        raise ValueError(f"need n_samples >= 0 and sr > 0, got {n_samples}, {sr}")
    return -(-(n * q.numerator) // (sr * q.denominator))


def analysis_hop(sr: int, fps: float | Fraction) -> int:
    """The spectral hop: the largest power of two <= half a frame, clamped to [64, 512] samples."""
    half = float(sr / (2 * fps_fraction(fps)))
    hop = 2 ** int(math.floor(math.log2(max(half, 1.0))))
    return int(min(MAX_HOP, max(MIN_HOP, hop)))


def column_frames(n_columns: int, hop: int, sr: int, fps: float | Fraction, n_frames: int,
                  offset: float | Fraction = 0, duration: float | Fraction | None = None) -> np.ndarray:
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


def pool_columns(values: np.ndarray, hop: int, sr: int, fps: float | Fraction, n_frames: int,
                 how: str = "max", offset: float | Fraction = 0,
                 duration: float | Fraction | None = None) -> np.ndarray:
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


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``y`` to ``n`` samples."""
    if y.shape[0] >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.shape[0], y.dtype)])


def is_silent(y: np.ndarray) -> bool:
    return y.size == 0 or float(np.max(np.abs(y))) < SILENCE_PEAK


# --- features -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """Per-frame audio features of an excerpt, all float32 NumPy arrays with N = n_frames rows."""

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


def _part(percussive: bool, harmonic: bool) -> str:
    """Lucid Sonic Dreams' selection: both equal -> the mix; otherwise the one that is set."""
    if percussive == harmonic:
        return "mix"
    return "harmonic" if harmonic else "percussive"


class _Analysis:
    """One song's analysis: signals, HPSS and spectrograms computed once and shared.

    Signals are analysed with up to ``CONTEXT_S`` seconds of the song around the excerpt, so an
    excerpt cut in the middle of the music gets no fake hit at its edges; only columns inside the
    excerpt are pooled into frames.
    """

    def __init__(self, song: PathLike, params: Any):
        import librosa  # noqa: F401  (import errors surface here, not deep inside)

        self.song = song
        self.params = params
        self.sr = SR
        self.fps = fps_fraction(params.fps)
        self.hop = analysis_hop(self.sr, self.fps)
        start, duration = float(params.start), params.duration
        self.ctx_start = max(0.0, start - CONTEXT_S)
        lead = start - self.ctx_start
        self.ctx_duration = None if duration is None else float(duration) + lead + CONTEXT_S
        data, nsr = read_audio(song, start=self.ctx_start, duration=self.ctx_duration)
        off = int(round(start * nsr)) - int(round(self.ctx_start * nsr))
        avail = data.shape[0] - off
        if avail <= 0:
            raise _beyond(song, start, (int(round(self.ctx_start * nsr)) + data.shape[0]) / nsr)
        n_ex = avail if duration is None else min(avail, int(round(float(duration) * nsr)))
        # exact excerpt timing, in the file's own samples (so it matches the muxed soundtrack)
        self.offset = Fraction(off, nsr)
        self.duration = Fraction(n_ex, nsr)
        if n_ex * self.fps < nsr:  # less than one frame
            raise AudioError(
                f"the audio excerpt of {_name(song)} is too short: {float(self.duration) * 1000:.1f} ms, "
                f"shorter than one frame (1/fps = {1000 / float(self.fps):.1f} ms)")
        self.n_frames = frame_count(n_ex, nsr, self.fps)
        y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        y = np.ascontiguousarray(_resample(np.ascontiguousarray(y, np.float32), nsr, self.sr, song), np.float32)
        self.n_samples = y.shape[0]
        a0 = int(round(off * self.sr / nsr))
        self.region = slice(a0, min(self.n_samples, a0 + math.ceil(n_ex * self.sr / nsr)))
        if is_silent(y[self.region]):
            raise AudioError(f"{_name(song)} is silent (peak below -80 dBFS) in the excerpt analysed"
                             f" (start={start:g} s); nothing to react to")
        self._signals: dict[tuple[str, str], np.ndarray] = {("song", "mix"): y}
        self._mel: dict[tuple[str, str], np.ndarray] = {}
        self._env: dict[tuple[str, str, str], np.ndarray] = {}

    def silent(self, y: np.ndarray) -> bool:
        return is_silent(y[self.region])

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

    # signals
    def _source(self, stem: PathLike | None) -> str:
        return "song" if stem is None else os.fspath(stem)

    def signal(self, source: str, part: str) -> np.ndarray:
        key = (source, part)
        if key in self._signals:
            return self._signals[key]
        if part == "mix":
            y = self._load_stem(source)
        else:
            mix = self.signal(source, "mix")
            if is_silent(mix):
                harm = perc = np.zeros_like(mix)
            else:
                import librosa

                harm, perc = self._guard(source, lambda: librosa.effects.hpss(mix))
            self._signals[(source, "harmonic")] = np.asarray(harm, np.float32)
            self._signals[(source, "percussive")] = np.asarray(perc, np.float32)
            return self._signals[key]
        self._signals[key] = y
        return y

    def _load_stem(self, path: str) -> np.ndarray:
        """A stem over the same span as the song's analysis, trimmed or zero-padded to it."""
        try:
            y = load_audio(path, sr=self.sr, start=self.ctx_start, duration=self.ctx_duration)
        except _BeyondEnd:
            y = np.zeros(0, np.float32)
        y = fit_length(y, self.n_samples)
        if not y[self.region].any():
            warnings.warn(f"stem {path} has no audio in the excerpt (start={self.params.start:g} s); "
                          "it is treated as silence", stacklevel=4)
        return y

    def _guard(self, source: str, fn: Callable[[], Any]) -> Any:
        name = _name(self.song) if source == "song" else source
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # n_fft > short signal, empty chroma columns, ...
                return fn()
        except AudioError:
            raise
        except Exception as e:
            raise AudioError(f"cannot analyse {name}: {type(e).__name__}: {e}") from None

    # spectral features
    def mel(self, source: str, part: str) -> np.ndarray:
        key = (source, part)
        if key not in self._mel:
            import librosa

            y = self.signal(source, part)
            self._mel[key] = self._guard(source, lambda: librosa.feature.melspectrogram(
                y=y, sr=self.sr, n_fft=N_FFT, hop_length=self.hop, n_mels=N_MELS, power=2.0))
        return self._mel[key]

    def envelope(self, source: str, part: str, kind: str = "loudness") -> np.ndarray:
        key = (source, part, kind)
        if key in self._env:
            return self._env[key]
        y = self.signal(source, part)
        if self.silent(y):
            env = np.zeros(self.n_frames, np.float32)
        else:
            S = self.mel(source, part)
            if kind == "loudness":
                cols = S.max(axis=0)
            else:
                import librosa

                cols = self._guard(source, lambda: librosa.onset.onset_strength(
                    S=librosa.power_to_db(S, ref=np.max), sr=self.sr, hop_length=self.hop, n_fft=N_FFT))
                # librosa puts the flux between columns k-1 and k at k, plus n_fft/2 for framing:
                # measured on clicks, kicks and snares that is about half a hop late, so move it one
                # column earlier (then the peak is within ~0.1 hop of the hit on average).
                cols = np.concatenate([cols[1:], np.zeros(1, cols.dtype)])
            env = minmax(self.pool(cols, "max"))
        self._env[key] = env
        return env

    def chroma(self, source: str) -> np.ndarray:
        y = self.signal(source, "mix")
        if self.silent(y):
            return np.zeros((self.n_frames, 12), np.float32)
        import librosa

        C = self._guard(source, lambda: librosa.feature.chroma_cqt(y=y, sr=self.sr, hop_length=self.hop))
        C = np.nan_to_num(np.asarray(C, np.float64))
        chroma = np.clip(self.pool(C, "mean"), 0.0, 1.0).astype(np.float32)
        # chroma_cqt normalises every column, so silence comes out as amplified numerical noise
        # (and the long low-octave filters smear a note's start backwards): silent frames get 0.
        chroma[self.frame_peaks(y) < SILENCE_PEAK] = 0.0
        return chroma


def analyze(song: PathLike, params: Any) -> Features:
    """Per-frame features of ``song`` for a render with ``params`` (a RenderParams).

    Selection rules follow Lucid Sonic Dreams: for pulse and motion, both-or-neither of
    ``*_percussive``/``*_harmonic`` -> the mix, otherwise the HPSS part that is set; a stem
    (``pulse_audio`` ...) overrides and is loaded with the same start/duration, trimmed or
    zero-padded to the song's frames. Chroma comes from the mix or ``class_audio``. Contrast and
    flash are computed only when enabled, from their percussive part unless
    ``*_percussive=False``. A silent song is an AudioError; a silent stem gives zeros.
    """
    a = _Analysis(song, params)

    def env(stem: PathLike | None, part: str, kind: str = "loudness") -> np.ndarray:
        return a.envelope(a._source(stem), part, kind)

    pulse_part = "mix" if params.pulse_audio else _part(params.pulse_percussive, params.pulse_harmonic)
    motion_part = "mix" if params.motion_audio else _part(params.motion_percussive, params.motion_harmonic)
    pulse = env(params.pulse_audio, pulse_part, "onset" if params.pulse_mode == "onset" else "loudness")
    motion = env(params.motion_audio, motion_part)
    chroma = a.chroma(a._source(params.class_audio))

    def effect(stem: PathLike | None, percussive: bool) -> np.ndarray:
        return env(stem, "percussive" if percussive else "mix")

    effects = tuple(effect(e.audio, bool(e.percussive)) for e in params.custom_effects)
    contrast = effect(params.contrast_audio, params.effect_percussive("contrast")) if params.contrast_on else None
    flash = effect(params.flash_audio, params.effect_percussive("flash")) if params.flash_on else None
    return Features(
        fps=float(params.fps), sr=a.sr, n_frames=a.n_frames, duration_s=float(a.duration),
        pulse=pulse, motion=motion, chroma=chroma, contrast=contrast, flash=flash, effects=effects,
    )
