"""Audio files → samples: the only place that decodes audio.

soundfile (libsndfile) first: it seeks to ``start`` and reads only the excerpt; then the ffmpeg binary of
imageio-ffmpeg (:mod:`lsd_jax.media.ffmpeg`) for what libsndfile cannot read (m4a, ...). Any sample rate or channel
count. Resampling uses soxr (the library behind librosa's default ``soxr_hq``) directly, so decoding never
imports librosa.

Limits: ``max_seconds`` bounds what is *decoded*, never what a header claims (a file whose header says 1 s but
holds 60 s is decoded at most ``max_seconds`` (+ a little) before it is refused). An absurdly long ``duration``
(more than :data:`MAX_DECODE_SECONDS`, ~31 years) means "to the end". Whatever is asked, at most
:data:`MAX_AUDIO_SECONDS` and :data:`MAX_AUDIO_BYTES` of samples are decoded (more is a :class:`TooLong` naming the
file, before anything bigger is allocated: a 10-hour FLAC), a header's sample rate must lie in
[:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`] (an 88 KB WAV whose header says 1 Hz would be 44 100 s of
audio: 3.6 GiB once resampled), and :func:`resample` refuses an output above :data:`MAX_AUDIO_BYTES`.

:func:`audio_length` reads a file's length from its header without decoding it (the web app's first check of an
upload). Every problem with an input file is an :class:`~lsd_jax.errors.AudioError` naming the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioError
from .ffmpeg import probe, run_ffmpeg

PathLike = str | os.PathLike[str]
MAX_DECODE_SECONDS = 1e9  # longer requests are clamped: ffmpeg refuses -t beyond ~9e12 s, and no audio is this long
#: audio decoded from one file at most (a long DJ mix fits; a 10-hour recording is refused, not decoded)
MAX_AUDIO_SECONDS = 3 * 3600.0
#: float32 samples (all channels) decoded or resampled at most: 2 GiB is 100 min of 44.1 kHz stereo
MAX_AUDIO_BYTES = 2 << 30
#: sample rates read (Hz): below, a header is nonsense (8 kHz is telephone audio); above, no real recording
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000


def _name(path: PathLike) -> str:
    return str(path)


def check_file(path: PathLike) -> Path:
    """``path`` as a Path, or an AudioError when it is not a readable, non-empty file."""
    if not isinstance(path, (str, os.PathLike)):
        raise AudioError(
            f"an audio file must be given as a path (str or os.PathLike), got {type(path).__name__}: {path!r}"
        )
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


class BeyondEnd(AudioError):
    """``start`` is at or past the end of the file (``length_s``: the file's length when known)."""

    length_s: float | None = None


def beyond_end(path: PathLike, start: float, length_s: float | None) -> BeyondEnd:
    total = f" (the file is {length_s:.3f} s long)" if length_s is not None else ""
    err = BeyondEnd(f"start={start:g} s is beyond the end of {_name(path)}{total}")
    err.length_s = length_s
    return err


class TooLong(AudioError):
    """More audio than ``max_seconds`` (or :data:`MAX_AUDIO_SECONDS` / :data:`MAX_AUDIO_BYTES`) would be decoded."""


def _check_rate(path: PathLike, sr: int) -> int:
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{_name(path)} says its sample rate is {sr} Hz; lsd-jax reads {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz audio (a corrupt or hostile file?)"
        )
    return sr


def _frame_cap(sr: int, channels: int) -> int:
    """Frames decoded at most at ``sr`` Hz with ``channels`` channels (:data:`MAX_AUDIO_SECONDS`,
    :data:`MAX_AUDIO_BYTES`)."""
    return int(min(MAX_AUDIO_SECONDS * sr, MAX_AUDIO_BYTES // (4 * max(1, channels))))


def _too_much(path: PathLike, sr: int, channels: int) -> TooLong:
    most = _frame_cap(sr, channels) / sr
    return TooLong(
        f"{_name(path)} holds more audio than lsd-jax decodes from one file ({most:g} s at {sr} Hz with "
        f"{channels} channel(s); at most {MAX_AUDIO_SECONDS / 3600:g} hours and "
        f"{MAX_AUDIO_BYTES >> 30} GiB of samples): give a start and a shorter duration, or cut the file"
    )


def _read_soundfile(p: Path, start: float, count_s: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(p)) as f:
        sr = _check_rate(p, int(f.samplerate))
        total = int(f.frames)
        if total <= 0:
            raise RuntimeError("libsndfile found no frames")  # let ffmpeg try (or fail clearly)
        first = int(round(start * sr))
        if first >= total:
            raise beyond_end(p, start, total / sr)
        # what is left, not what was asked: a huge request never sizes a buffer
        count = total - first if count_s is None else min(total - first, max(0, int(round(count_s * sr))))
        cap = _frame_cap(sr, f.channels)
        if count > cap:  # the header already says there is too much: refuse before decoding it for minutes
            raise _too_much(p, sr, f.channels)
        if first:
            if f.seekable():
                f.seek(first)
            else:  # pragma: no cover - libsndfile formats we read are seekable
                f.read(first, dtype="float32", always_2d=True)
        data = f.read(count, dtype="float32", always_2d=True)
    return data, sr


def _probe_audio(p: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """What ffmpeg's header says of ``p``: its first audio stream and the whole (:func:`~lsd_jax.media.ffmpeg.probe`);
    an AudioError naming the file when it holds no audio stream."""
    info, text = probe(p)
    audio = [s for s in info["streams"] if s["kind"] == "audio"]
    if not audio:
        why = [ln.strip() for ln in text.splitlines() if ln.strip()][-1:] or ["no audio stream"]
        if info["streams"]:
            why = ["it has no audio stream"]
        raise AudioError(f"cannot decode {_name(p)}: not an audio file we can read ({why[0]})")
    return audio[0], info


def _read_ffmpeg(p: Path, start: float, count_s: float | None) -> tuple[np.ndarray, int]:
    stream, info = _probe_audio(p)
    sr = _check_rate(p, int(stream.get("sample_rate") or 44100))
    channels = min(int(stream.get("channels") or 2), 2)
    # ffmpeg's output is held whole: never ask for more than the cap (and one frame, to see there is more)
    cap_s = (_frame_cap(sr, channels) + 1) / sr
    count_s = cap_s if count_s is None else min(count_s, cap_s)
    length = info["duration"]
    if length is not None and start > 0 and start >= length:
        raise beyond_end(p, start, length)
    # -ss after -i: decode from the beginning and drop samples. Input seeking is faster but lands
    # on a packet boundary for AAC in MP4 (measured: 792 samples late), so it is not sample-exact.
    args = ["-loglevel", "error", "-i", str(p)]
    if start > 0:
        args += ["-ss", f"{start:.6f}"]
    if count_s is not None:
        args += ["-t", f"{count_s:.6f}"]
    args += ["-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(sr), "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"]
    res = run_ffmpeg(args)
    if res.returncode != 0:
        why = res.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["unknown error"]
        raise AudioError(f"cannot decode {_name(p)} (ffmpeg: {why[0]})")
    data = np.frombuffer(res.stdout, np.float32)
    data = data[: data.size - data.size % channels].reshape(-1, channels)
    if data.shape[0] > _frame_cap(sr, channels):
        raise _too_much(p, sr, channels)
    if data.shape[0] == 0 and start > 0:
        raise beyond_end(p, start, length)
    if count_s is not None:  # ffmpeg's -t is in seconds: keep exactly the samples asked for
        data = data[: max(0, int(round(count_s * sr)))]
    return data.copy(), sr


def audio_length(path: PathLike) -> float | None:
    """Seconds of audio in a file, without decoding it: libsndfile's frame count, else the length in the header
    ffmpeg reads (a claim, not a measurement: :func:`read_audio`'s ``max_seconds`` checks what is decoded); None when
    neither tells. An AudioError naming the file when it is missing, empty or holds no audio stream."""
    p = check_file(path)
    try:
        import soundfile as sf

        info = sf.info(str(p))
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except Exception:  # not a format libsndfile reads (m4a, mp4, ...): ffmpeg's header
        pass
    return _probe_audio(p)[1]["duration"]


def read_audio(
    path: PathLike, *, start: float = 0.0, duration: float | None = None, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """The excerpt ``[start, start + duration)`` of a file at its own sample rate and channels.

    Returns ``(samples (n, channels) float32, sample_rate)``. ``duration=None``: to the end. ``max_seconds``:
    refuse (:class:`TooLong`, an AudioError) an excerpt longer than that — a ``duration`` above it at once, and
    to-the-end reads by what is decoded (at most ``max_seconds`` and one sample), whatever the header says.
    Raises AudioError for a missing, empty or undecodable file, ``start`` past the end, and non-finite samples.
    """
    start = float(start)
    if not math.isfinite(start) or start < 0:
        raise AudioError(f"start must be a finite number of seconds >= 0, got {start!r}")
    if duration is not None:
        duration = float(duration)
        if not (duration > 0):  # NaN too
            raise AudioError(f"duration must be a positive number of seconds, got {duration!r}")
        duration = min(duration, MAX_DECODE_SECONDS)
    if max_seconds is not None:
        max_seconds = float(max_seconds)
        if not (max_seconds > 0) or not math.isfinite(max_seconds):
            raise ValueError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
        if duration is not None and duration > max_seconds:
            raise TooLong(
                f"the excerpt of {_name(path)} is {duration:g} s long; at most {max_seconds:g} s may be "
                "decoded here: choose a shorter duration"
            )
    p = check_file(path)
    # read one sample's worth more than allowed, to tell "exactly the limit" from "more"
    count_s = duration if max_seconds is None or duration is not None else max_seconds + 0.01
    try:
        data, sr = _read_soundfile(p, start, count_s)
    except AudioError:  # past the end, a nonsense rate, too long: ffmpeg would only take longer to say so
        raise
    except Exception as sf_error:  # libsndfile cannot read it: let ffmpeg try
        try:
            data, sr = _read_ffmpeg(p, start, count_s)
        except AudioError:
            raise
        except Exception as e2:
            raise AudioError(f"cannot decode {_name(path)}: {e2} (soundfile: {sf_error})") from None
    if data.shape[0] == 0:
        raise AudioError(f"no audio could be decoded from {_name(path)}")
    if max_seconds is not None and data.shape[0] > int(round(max_seconds * sr)):
        raise TooLong(
            f"{_name(path)} holds more than {max_seconds:g} s of audio after start={start:g} s (at most "
            f"{max_seconds:g} s may be decoded here): give a duration of at most {max_seconds:g} s"
        )
    if not np.isfinite(data).all():
        raise AudioError(f"{_name(path)} contains non-finite samples (NaN or infinity)")
    return data, sr


def to_mono(data: np.ndarray) -> np.ndarray:
    """(n, channels) → (n,) float32, the mean of the channels."""
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(y, np.float32)


def resample(y: np.ndarray, orig_sr: int, sr: int, path: PathLike = "audio") -> np.ndarray:
    """Mono float32 ``y`` from ``orig_sr`` to ``sr`` Hz: soxr's high quality, ``ceil(n * sr / orig_sr)``
    samples (the same as ``librosa.resample(res_type="soxr_hq")``)."""
    y = np.ascontiguousarray(y, np.float32)
    if int(orig_sr) == int(sr):
        return y
    import soxr

    n_out = int(np.ceil(y.shape[0] * float(sr) / orig_sr))
    if n_out * 4 > MAX_AUDIO_BYTES:  # sized from the samples decoded, before soxr allocates it
        raise TooLong(
            f"{_name(path)} would be {n_out * 4 / (1 << 30):.1f} GiB of samples once resampled from "
            f"{orig_sr} Hz to {sr} Hz (at most {MAX_AUDIO_BYTES >> 30} GiB): give a shorter duration"
        )
    try:
        out = soxr.resample(y, int(orig_sr), int(sr), quality="soxr_hq")
    except Exception as e:
        raise AudioError(f"cannot resample {_name(path)} from {orig_sr} Hz to {sr} Hz: {e}") from None
    out = out[:n_out] if out.shape[0] >= n_out else np.pad(out, (0, n_out - out.shape[0]))
    return np.ascontiguousarray(out, np.float32)


def load_audio(
    path: PathLike, *, sr: int, start: float = 0.0, duration: float | None = None, max_seconds: float | None = None
) -> np.ndarray:
    """Mono float32 samples of ``[start, start + duration)`` at ``sr`` Hz (any input rate/channels)."""
    data, orig = read_audio(path, start=start, duration=duration, max_seconds=max_seconds)
    return resample(to_mono(data), orig, int(sr), path)
