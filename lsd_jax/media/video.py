"""Frames -> a video file, streamed through the ffmpeg binary that ships with imageio-ffmpeg.

* :class:`VideoWriter` pipes raw RGB batches into ffmpeg's stdin (no whole video in memory) and
  encodes them in one of the formats of :mod:`lsd_jax.media.formats` (default H.264 MP4, yuv420p,
  ``+faststart``, AAC) at the exact frame rate, with the soundtrack muxed in. It writes to a hidden
  temporary file (a folder for a PNG sequence) beside the target and renames it into place only on
  a clean close; on any failure the temporary file is removed, an existing
  target is left untouched, and ffmpeg problems surface as :class:`~lsd_jax.errors.OutputError`
  carrying ffmpeg's last stderr lines. With ``live=path`` the same encoded streams also go, through
  ffmpeg's ``tee`` muxer, into a fragmented MP4 that grows every :data:`LIVE_FRAGMENT_S` seconds of
  video (a browser can play it while frames still arrive); the finished MP4 is byte for byte the
  one written without it.
* :func:`probe_video` and :func:`read_frames` inspect a written video (there is no ffprobe; we
  parse the same binary's output, :mod:`lsd_jax.media.ffmpeg`).
* :func:`join_segments` concatenates the segments of a multi-process render.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from .ffmpeg import ffmpeg_exe, parse_streams, probe, run_ffmpeg
from .formats import CRF, PNG_AUDIO, PRESET, RECIPE_FILE, check_encoder, choose_format
from .timing import fps_fraction

STDERR_TAIL_LINES = 20
__all__ = ["CRF", "PRESET", "VideoWriter", "join_segments", "probe_video", "read_frames"]
#: Seconds of video per fragment of a live copy (fragments need not start on a keyframe).
LIVE_FRAGMENT_S = 0.25


def _tee_path(path: Path) -> str:
    """``path`` as one output of ffmpeg's tee muxer (its separators and option brackets escaped)."""
    return re.sub(r"([\\'\[\]|:])", r"\\\1", str(path))


def _tail(lines: Any) -> str:
    text = "\n".join(line for line in lines if line.strip())
    return text if text else "(ffmpeg printed nothing)"


class VideoWriter:
    """Stream uint8 RGB frames into a video file (by default an H.264 + AAC MP4).

    ``VideoWriter(path, fps=43, size=(H, W), audio=(samples, sr))`` is a context manager;
    ``write(frames)`` takes a (B, H, W, 3) (or (H, W, 3)) uint8 array. ``audio`` is None, a tuple
    ``(samples (n,) or (n, channels), sample_rate)`` or the path of an audio file (dropped by formats
    without sound). ``codec``, ``quality``, ``lossless``: the format (:func:`~lsd_jax.media.formats.choose_format`,
    by the path's suffix when ``"auto"``) and its settings. ``recipe``: text stored in the container's
    ``comment`` tag (a PNG sequence: ``recipe.json`` in its folder). ``live``: also write the encoded
    streams, as they come, into this fragmented MP4 (removed if the writer aborts; MP4 formats only).
    ``path`` after construction: the final file (for a PNG sequence its folder).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float | Fraction,
        size: tuple[int, int],
        audio: tuple[np.ndarray, int] | str | os.PathLike[str] | None = None,
        codec: str = "auto",
        quality: int | None = None,
        lossless: bool = False,
        preset: str = PRESET,
        recipe: str | None = None,
        live: str | os.PathLike[str] | None = None,
    ):
        self.format, target = choose_format(path, codec, add_suffix=False)
        # a PNG sequence: ffmpeg writes ``pattern`` into a temporary folder renamed to ``path``
        self.pattern = target.name if self.format.sequence else None
        self.path = target.parent if self.format.sequence else target
        self.live = Path(live).expanduser().resolve() if live is not None else None
        try:
            self.fps = fps_fraction(fps)
        except (TypeError, ValueError) as e:
            raise OutputError(f"invalid frame rate for {self.path.name}: {e}") from None
        try:
            h, w = (int(v) for v in size)
        except (TypeError, ValueError):
            raise OutputError(f"size must be (height, width), got {size!r}") from None
        m = self.format.multiple
        if h <= 0 or w <= 0 or h % m or w % m:
            even = "even" if m == 2 else f"a multiple of {m}"
            raise OutputError(
                f"video size must be positive and {even} for {self.format.name} ({self.format.pix_fmt}), "
                f"got {h}x{w} (HxW)"
            )
        if live is not None and self.format.muxer != "mp4":
            raise OutputError(f"a live copy needs an MP4 output (h264 or h265), not {self.format.name}")
        self.size = (h, w)
        self.video_args = self.format.video_args(self.fps, quality, bool(lossless), str(preset))
        self.recipe = recipe
        self.preset = str(preset)
        self.n_frames = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_thread: threading.Thread | None = None
        self._wav: Path | None = None
        self._closed = False

        parent = self.path.resolve().parent
        if not parent.exists():
            raise OutputError(f"output directory does not exist: {parent}")
        if not parent.is_dir():
            raise OutputError(f"output directory is not a directory: {parent}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"output directory is not writable: {parent}")
        if self.format.sequence:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise OutputError(f"the PNG folder {self.path} exists and is not empty: refusing to write into it")
        elif self.path.is_dir():
            raise OutputError(f"output path is a directory: {self.path} (end it with / for a PNG sequence)")
        check_encoder(self.format)
        self.tmp = parent / f".{self.path.name}.{uuid.uuid4().hex[:10]}.part"

        try:
            if self.format.sequence:
                self.tmp.mkdir()
                if recipe is not None:
                    (self.tmp / RECIPE_FILE).write_text(recipe + "\n")
            audio_input = self._prepare_audio(audio if self.format.audio is not None else None)
            self._start(audio_input)
        except BaseException:
            self._cleanup()
            raise

    # --- setup
    def _prepare_audio(self, audio: Any) -> str | None:
        if audio is None:
            return None
        if isinstance(audio, (str, os.PathLike)):
            p = Path(audio).expanduser()
            if not p.is_file():
                raise OutputError(f"audio file for {self.path.name} not found: {p}")
            return str(p)
        try:
            samples, sr = audio
            samples = np.asarray(samples, np.float32)
            sr = int(sr)
        except (TypeError, ValueError):
            raise OutputError("audio must be None, a path, or a tuple (samples, sample_rate)") from None
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.shape[0] == 0 or sr <= 0:
            raise OutputError(
                f"audio must be a non-empty (samples[, channels]) array with sr > 0, got shape {samples.shape}, sr {sr}"
            )
        import soundfile as sf

        fd, name = tempfile.mkstemp(prefix="lsd-jax-audio-", suffix=".wav")
        os.close(fd)
        self._wav = Path(name)
        try:
            sf.write(name, np.clip(samples, -1.0, 1.0), sr, subtype="FLOAT", format="WAV")
        except Exception as e:
            raise OutputError(f"cannot write the temporary soundtrack {name}: {e}") from None
        return name

    def _start(self, audio_input: str | None) -> None:
        h, w = self.size
        cmd = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "warning",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-video_size",
            f"{w}x{h}",
            "-framerate",
            f"{self.fps.numerator}/{self.fps.denominator}",
            "-i",
            "pipe:0",
        ]
        if audio_input is not None:
            cmd += ["-i", audio_input]
        fmt = self.format
        sound = audio_input is not None
        cmd += ["-map", "0:v:0", *self.video_args]
        if self.recipe is not None and fmt.metadata:
            cmd += ["-metadata", f"comment={self.recipe}"]
        if fmt.sequence:
            cmd += ["-f", fmt.muxer, str(self.tmp / str(self.pattern))]
            if sound:  # the soundtrack beside the frames, a second output of the same run
                cmd += ["-map", "1:a:0", *(fmt.audio or ()), str(self.tmp / PNG_AUDIO)]
        elif sound:
            cmd += ["-map", "1:a:0", *(fmt.audio or ())]
        if fmt.sequence:
            pass
        elif self.live is None:
            cmd += ["-movflags", "+faststart"] if fmt.muxer in ("mp4", "mov") else []
            cmd += ["-f", fmt.muxer, str(self.tmp)]
        else:  # one encode, two files; global headers are what the mp4 muxer alone asks the encoders for
            fragments = (
                "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets"  # video from t=0
                f":frag_duration={round(LIVE_FRAGMENT_S * 1e6)}:flush_packets=1"
            )  # on disk at once
            outputs = [
                f"[f=mp4:movflags=+faststart]{_tee_path(self.tmp)}",
                f"[f=mp4:movflags={fragments}]{_tee_path(self.live)}",
            ]
            cmd += ["-flags", "+global_header", "-f", "tee", "|".join(outputs)]
        self.cmd = cmd
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=False
            )
        except OSError as e:
            raise OutputError(f"cannot start ffmpeg ({cmd[0]}): {e}") from None
        self._stderr_thread = threading.Thread(target=self._drain, name="lsd-jax-ffmpeg-stderr", daemon=True)
        self._stderr_thread.start()

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in iter(self._proc.stderr.readline, b""):
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())

    # --- use
    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def write(self, frames: np.ndarray) -> None:
        """Append frames: uint8 (B, H, W, 3) or (H, W, 3), RGB."""
        if self._closed or self._proc is None:
            raise OutputError(f"the video writer for {self.path.name} is closed")
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        h, w = self.size
        if frames.ndim != 4 or frames.shape[1:] != (h, w, 3):
            self.abort()
            raise OutputError(f"frames must have shape (B, {h}, {w}, 3) for {self.path.name}, got {frames.shape}")
        if frames.dtype != np.uint8:
            self.abort()
            raise OutputError(f"frames must be uint8, got {frames.dtype}")
        if frames.shape[0] == 0:
            return
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frames)).cast("B"))
        except (OSError, ValueError) as e:
            self._fail(f"ffmpeg stopped accepting frames ({e})")
        self.n_frames += frames.shape[0]

    def close(self) -> Path:
        """Finish encoding and move the video into place. Returns the final path."""
        if self._closed:
            return self.path
        if self._proc is None:
            raise OutputError(f"the video writer for {self.path.name} was not started")
        if self.n_frames == 0:
            self.abort()
            raise OutputError(f"no frames were written to {self.path.name}")
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            rc = self._proc.wait()
        except BaseException:
            self.abort()
            raise
        self._join_stderr()
        if rc != 0:
            self._fail(f"ffmpeg exited with status {rc}")
        if self.format.sequence:
            if not any(self.tmp.glob("*.png")):
                self._fail("ffmpeg produced no frames")
        elif not self.tmp.is_file() or self.tmp.stat().st_size == 0:
            self._fail("ffmpeg produced no output file")
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:
            self._fail(f"cannot move the finished video into place: {e}")
        self._closed = self._finished = True
        self._cleanup()
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove every temporary file; the target is never touched."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
        self._join_stderr()
        self._cleanup()

    # --- internals
    def _fail(self, what: str) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:  # let ffmpeg finish printing why it failed
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._join_stderr()
        tail = _tail(self._stderr)
        rc = proc.returncode if proc is not None else None
        if rc is not None and rc < 0:
            import signal

            try:
                what += f" (ffmpeg was killed by {signal.Signals(-rc).name}: {signal.strsignal(-rc)})"
            except ValueError:
                what += f" (ffmpeg was killed by signal {-rc})"
        self.abort()
        raise OutputError(f"writing {self.path} failed: {what}; ffmpeg said:\n{tail}")

    def _join_stderr(self) -> None:
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=10)

    def _cleanup(self) -> None:
        partial_live = None if getattr(self, "_finished", False) else getattr(self, "live", None)
        for p in (self.tmp if hasattr(self, "tmp") else None, self._wav, partial_live):
            if p is not None:
                try:
                    if p.is_dir():  # a PNG sequence's temporary folder
                        shutil.rmtree(p, ignore_errors=True)
                        continue
                    p.unlink()
                except FileNotFoundError:
                    pass
                except OSError:  # pragma: no cover
                    pass
        self._wav = None
        if self._proc is not None:
            for f in (self._proc.stdin, self._proc.stderr):
                try:
                    if f is not None and not f.closed and (self._proc.poll() is not None):
                        f.close()
                except (OSError, ValueError):
                    pass

    def __del__(self) -> None:  # a writer dropped without close(): never leave ffmpeg or files behind
        try:
            if not self._closed:
                self.abort()
        except Exception:
            pass


# --- inspection --------------------------------------------------------------------------------

_TB_RE = re.compile(r"^#tb (\d+): (\d+)/(\d+)")


def _count_decoded_frames(p: Path) -> int:
    res = run_ffmpeg(["-i", str(p), "-map", "0:v:0", "-f", "null", "-"])
    err = res.stderr.decode("utf-8", "replace")
    if res.returncode != 0:
        raise OutputError(f"cannot decode the video stream of {p}: {_tail(err.splitlines()[-STDERR_TAIL_LINES:])}")
    counts = re.findall(r"frame=\s*(\d+)", err)
    if not counts:
        raise OutputError(f"cannot count the frames of {p}")
    return int(counts[-1])


def probe_video(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Streams, size, exact fps and frame count, durations and codecs of a video file.

    Keys: video_streams, audio_streams, width, height, fps (float, exact: frames over the summed
    packet durations), n_frames (frames decoded from the first video stream), duration (container,
    s), video_duration, audio_duration (s, from the packets, without the AAC priming), video_codec,
    audio_codec, pix_fmt, audio_sample_rate, audio_channels.
    """
    p = Path(path)
    if not p.is_file():
        raise OutputError(f"video not found: {p}")
    res = run_ffmpeg(["-i", str(p), "-map", "0", "-c", "copy", "-f", "framecrc", "-"])
    err = res.stderr.decode("utf-8", "replace")
    if res.returncode != 0:
        raise OutputError(f"cannot read {p}: {_tail(err.splitlines()[-STDERR_TAIL_LINES:])}")
    header = parse_streams(err)
    video = [s for s in header["streams"] if s["kind"] == "video"]
    audio = [s for s in header["streams"] if s["kind"] == "audio"]
    v, a = (video[0] if video else {}), (audio[0] if audio else {})
    info: dict[str, Any] = dict(
        video_streams=len(video),
        audio_streams=len(audio),
        width=v.get("width"),
        height=v.get("height"),
        fps=None,
        n_frames=0,
        duration=header["duration"],
        video_duration=None,
        audio_duration=None,
        video_codec=v.get("codec"),
        audio_codec=a.get("codec"),
        pix_fmt=v.get("pix_fmt"),
        audio_sample_rate=a.get("sample_rate"),
        audio_channels=a.get("channels"),
    )
    # packets of the stream copy: index, dts, pts, duration, size, crc (output stream order = input)
    tbs: dict[int, Fraction] = {}
    durs: dict[int, int] = collections.defaultdict(int)
    counts: dict[int, int] = collections.defaultdict(int)
    first: dict[int, int] = {}
    end: dict[int, int] = {}
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        m = _TB_RE.match(line)
        if m:
            tbs[int(m[1])] = Fraction(int(m[2]), int(m[3]))
            continue
        if line.startswith("#") or not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            si, pts, dur = int(fields[0]), int(fields[2]), int(fields[3])
        except (IndexError, ValueError):
            continue
        durs[si] += dur
        counts[si] += 1
        first[si] = min(first.get(si, pts), pts)
        end[si] = max(end.get(si, pts + dur), pts + dur)
    order = [s["index"] for s in header["streams"]]
    v_out = order.index(v["index"]) if v else None
    a_out = order.index(a["index"]) if a else None
    if v_out is not None and v_out in tbs and durs[v_out] > 0:
        vdur = durs[v_out] * tbs[v_out]
        info["video_duration"] = float(vdur)
        info["fps"] = float(Fraction(counts[v_out]) / vdur)
    if a_out is not None and a_out in tbs and a_out in end:
        info["audio_duration"] = float((end[a_out] - max(0, first[a_out])) * tbs[a_out])
    if v:
        info["n_frames"] = _count_decoded_frames(p)
    return info


def read_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode a video's first video stream: yields (H, W, 3) uint8 RGB frames, streaming."""
    p = Path(path)
    if not p.is_file():
        raise OutputError(f"video not found: {p}")
    video = [s for s in probe(p)[0]["streams"] if s["kind"] == "video" and "width" in s]
    if not video:
        raise OutputError(f"no video stream in {p}")
    w, h = video[0]["width"], video[0]["height"]
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        str(p),
        "-map",
        "0:v:0",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=False)
    size = w * h * 3
    try:
        assert proc.stdout is not None
        while True:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def join_segments(
    segments: list[Path],
    path: str | os.PathLike[str],
    *,
    fps: float | Fraction,
    audio: tuple[np.ndarray, int] | str | os.PathLike[str] | None = None,
    audio_bitrate: str = "192k",
) -> Path:
    """Concatenate H.264 segments (same size and fps) without re-encoding, mux the soundtrack as
    AAC, and move the result into place atomically. Used by multi-process renders."""
    path = Path(path).expanduser()
    for seg in segments:
        if not Path(seg).is_file():
            raise OutputError(f"segment missing: {seg}")
    parent = path.resolve().parent
    tmp = parent / f".{path.name}.{uuid.uuid4().hex[:10]}.part"
    with tempfile.TemporaryDirectory(prefix="lsd-jax-join-") as d:
        listing = Path(d) / "segments.txt"
        listing.write_text("".join(f"file '{Path(s).resolve()}'\n" for s in segments))
        args = ["-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
        if audio is not None:
            if isinstance(audio, (str, os.PathLike)):
                audio_path = str(audio)
            else:
                import soundfile as sf

                samples, sr = audio
                audio_path = str(Path(d) / "audio.wav")
                sf.write(audio_path, np.clip(np.asarray(samples, np.float32), -1.0, 1.0), int(sr), subtype="FLOAT")
            args += ["-i", audio_path, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", audio_bitrate]
        else:
            args += ["-map", "0:v:0"]
        f = fps_fraction(fps)
        args += [
            "-c:v",
            "copy",
            "-r",
            f"{f.numerator}/{f.denominator}",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(tmp),
        ]
        try:
            res = run_ffmpeg(args)
            if res.returncode != 0 or not tmp.is_file():
                raise OutputError(
                    f"joining {len(segments)} segments into {path.name} failed: "
                    f"{res.stderr.decode('utf-8', 'replace').strip()[-2000:]}"
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
