"""Streaming MP4 writer and probing (lsd_jax.media.video)."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from audio_signals import stereo, tone, write

from lsd_jax.errors import OutputError
from lsd_jax.media.video import VideoWriter, fps_fraction, probe_video, read_frames, run_ffmpeg

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [20, 20, 20], [200, 120, 40]], np.uint8)


def solid_frames(n: int, h: int, w: int, per_colour: int = 8) -> np.ndarray:
    idx = (np.arange(n) // per_colour) % len(COLOURS)
    return np.broadcast_to(COLOURS[idx][:, None, None, :], (n, h, w, 3)).copy()


def hidden_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Route tempfile (the soundtrack wav) into a folder of our own, to see it is removed."""
    d = tmp_path / "systmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def test_clip_with_audio_has_the_right_streams_size_fps_and_frames(tmp_path, private_tmp):
    fps, h, w, n = 43.0, 180, 320, 65  # 16:9, 65 frames = 1.5116 s
    sr = 44100
    sound = stereo(tone(440, 1.5, sr), tone(660, 1.5, sr))
    out = tmp_path / "clip.mp4"
    frames = solid_frames(n, h, w)
    with VideoWriter(out, fps=fps, size=(h, w), audio=(sound, sr)) as vw:
        for i in range(0, n, 16):  # batches, the last one short
            vw.write(frames[i : i + 16])
    info = probe_video(out)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert info["video_codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["audio_codec"] == "aac" and info["audio_channels"] == 2 and info["audio_sample_rate"] == 48000
    assert (info["width"], info["height"]) == (w, h)
    assert info["n_frames"] == n
    assert info["fps"] == 43.0
    assert info["video_duration"] == pytest.approx(n / fps, abs=1e-9)
    assert info["audio_duration"] == pytest.approx(1.5, abs=0.01)
    assert hidden_files(tmp_path) == [] and list(private_tmp.iterdir()) == []  # temp video and wav gone

    got = np.stack(list(read_frames(out)))
    assert got.shape == (n, h, w, 3)
    err = np.abs(got.astype(int) - frames.astype(int))
    assert err.mean() < 2 and np.percentile(err, 99) <= 6


@pytest.mark.parametrize(
    "fps, expected",
    [
        (24.0, Fraction(24)),
        (25.0, Fraction(25)),
        (29.97, Fraction(2997, 100)),
        (30000 / 1001, Fraction(30000, 1001)),
        (30.0, Fraction(30)),
        (43.0, Fraction(43)),
        (60.0, Fraction(60)),
        (Fraction(24000, 1001), Fraction(24000, 1001)),
        (12.345, Fraction(12345, 1000)),
    ],
)
def test_frame_rate_is_exact(tmp_path, fps, expected):
    assert fps_fraction(fps) == expected
    out = tmp_path / "r.mp4"
    with VideoWriter(out, fps=fps, size=(36, 64), preset="ultrafast") as vw:
        vw.write(solid_frames(12, 36, 64))
    info = probe_video(out)
    assert info["n_frames"] == 12 and info["audio_streams"] == 0
    assert info["fps"] == pytest.approx(float(expected), rel=1e-12)


def test_audio_from_a_file_path(tmp_path):
    song = write(tmp_path / "song.flac", tone(330, 1.0, 48000), 48000)
    out = tmp_path / "p.mp4"
    with VideoWriter(out, fps=10, size=(32, 32), audio=str(song), preset="ultrafast") as vw:
        vw.write(solid_frames(10, 32, 32))
    info = probe_video(out)
    assert info["audio_streams"] == 1 and info["audio_codec"] == "aac"
    assert info["audio_duration"] == pytest.approx(1.0, abs=0.01)


def test_a_successful_write_replaces_an_existing_target(tmp_path):
    out = tmp_path / "v.mp4"
    out.write_bytes(b"old")
    with VideoWriter(out, fps=8, size=(16, 16), preset="ultrafast") as vw:
        vw.write(solid_frames(4, 16, 16))
    assert out.read_bytes()[4:8] == b"ftyp" and probe_video(out)["n_frames"] == 4
    assert hidden_files(tmp_path) == []


@pytest.fixture
def existing(tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"an earlier render")
    return out


def assert_untouched(out: Path) -> None:
    assert out.read_bytes() == b"an earlier render"
    assert hidden_files(out.parent) == []


def test_exception_inside_with_leaves_no_temp_file_and_the_target_alone(existing, private_tmp):
    sound = tone(440, 1.0)
    with pytest.raises(ZeroDivisionError), VideoWriter(existing, fps=10, size=(32, 32), audio=(sound, 22050)) as vw:
        vw.write(solid_frames(5, 32, 32))
        raise ZeroDivisionError("an error while writing")
    assert_untouched(existing)
    assert list(private_tmp.iterdir()) == []
    assert vw._proc is not None and vw._proc.poll() is not None  # ffmpeg is gone


def test_wrong_frame_size_or_dtype_is_an_output_error_and_leaves_nothing(existing):
    with pytest.raises(OutputError, match=r"shape \(B, 32, 32, 3\)"):
        with VideoWriter(existing, fps=10, size=(32, 32)) as vw:
            vw.write(solid_frames(3, 32, 32))
            vw.write(solid_frames(3, 32, 48))
    assert_untouched(existing)
    with pytest.raises(OutputError, match="uint8"), VideoWriter(existing, fps=10, size=(32, 32)) as vw:
        vw.write(solid_frames(3, 32, 32).astype(np.float32))
    assert_untouched(existing)


def test_ffmpeg_failure_is_an_output_error_with_its_message(existing):
    with pytest.raises(OutputError, match=r"(?s)keep\.mp4.*ffmpeg said:.*preset"):
        with VideoWriter(existing, fps=10, size=(32, 32), preset="no-such-preset") as vw:
            for _ in range(20):
                vw.write(solid_frames(8, 32, 32))
    assert_untouched(existing)


@pytest.mark.filterwarnings("ignore:os.fork")  # preexec_fn forks; JAX warns about that
def test_disk_full_while_encoding_is_an_output_error_and_leaves_nothing(existing, monkeypatch):
    """The file-size limit makes ffmpeg's writes fail as on a full disk (no root needed)."""
    real_popen = subprocess.Popen

    def limited(*args, **kwargs):
        kwargs["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", limited)
    rng = np.random.default_rng(0)
    with pytest.raises(OutputError, match=r"writing .*keep\.mp4 failed"):
        with VideoWriter(existing, fps=10, size=(64, 64), preset="ultrafast") as vw:
            for _ in range(10):  # noise does not compress: far more than 32 KiB
                vw.write(rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8))
    assert_untouched(existing)


def test_failure_to_move_into_place_is_an_output_error(existing, monkeypatch):
    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OutputError, match="No space left"):
        with VideoWriter(existing, fps=10, size=(16, 16), preset="ultrafast") as vw:
            vw.write(solid_frames(3, 16, 16))
    monkeypatch.undo()
    assert_untouched(existing)


def test_no_frames_is_an_output_error(existing):
    with pytest.raises(OutputError, match="no frames"), VideoWriter(existing, fps=10, size=(16, 16)):
        pass
    assert_untouched(existing)


def test_output_directory_is_checked_up_front(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "such" / "x.mp4", fps=10, size=(16, 16))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        VideoWriter(tmp_path / "file" / "x.mp4", fps=10, size=(16, 16))
    with pytest.raises(OutputError, match="is a directory"):
        VideoWriter(tmp_path, fps=10, size=(16, 16))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root writes anywhere: simulate what a user would see
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == ro else real(p, m))
        with pytest.raises(OutputError, match="not writable"):
            VideoWriter(ro / "x.mp4", fps=10, size=(16, 16))
    finally:
        ro.chmod(0o700)
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("size", [(31, 32), (32, 33), (0, 32)])
def test_odd_or_empty_sizes_are_refused(tmp_path, size):
    with pytest.raises(OutputError, match="even"):
        VideoWriter(tmp_path / "x.mp4", fps=10, size=size)


def test_bad_audio_argument(tmp_path):
    with pytest.raises(OutputError, match="not found"):
        VideoWriter(tmp_path / "x.mp4", fps=10, size=(16, 16), audio=tmp_path / "missing.wav")
    with pytest.raises(OutputError, match="non-empty"):
        VideoWriter(tmp_path / "x.mp4", fps=10, size=(16, 16), audio=(np.zeros(0), 22050))
    assert hidden_files(tmp_path) == []


def test_probe_and_read_a_missing_file(tmp_path):
    with pytest.raises(OutputError, match="not found"):
        probe_video(tmp_path / "none.mp4")
    with pytest.raises(OutputError, match="not found"):
        next(iter(read_frames(tmp_path / "none.mp4")))


def _boxes(data: bytes) -> list[bytes]:
    """The top-level MP4 box types of ``data``."""
    out, i = [], 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        out.append(data[i + 4 : i + 8])
        if size < 8:
            break
        i += size
    return out


def test_a_live_copy_leaves_the_mp4_byte_for_byte_the_same(tmp_path):
    n, h, w, sr = 50, 64, 96, 22050
    rng = np.random.default_rng(1)
    frames = np.clip(solid_frames(n, h, w).astype(int) + rng.integers(-30, 30, (n, h, w, 3)), 0, 255).astype(np.uint8)
    sound = (tone(330, n / 25, sr), sr)
    odd = tmp_path / "odd [dir]: a|b, 'c'"  # the tee muxer's separators in both paths
    odd.mkdir()
    for name, live in (("plain.mp4", None), ("teed.mp4", odd / "live [1].mp4")):
        with VideoWriter(odd / name, fps=25, size=(h, w), audio=sound, live=live) as vw:
            vw.write(frames)
    assert (odd / "plain.mp4").read_bytes() == (odd / "teed.mp4").read_bytes()
    live = (odd / "live [1].mp4").read_bytes()
    boxes = _boxes(live)
    assert boxes[:2] == [b"ftyp", b"moov"] and boxes.count(b"moof") >= 3, boxes  # fragments every 0.5 s
    res = run_ffmpeg(
        [
            "-i",
            str(odd / "live [1].mp4"),
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ]
    )  # each coded frame once (no edit list: it may start late)
    decoded = np.frombuffer(res.stdout, np.uint8).reshape(-1, h, w, 3)
    assert decoded.shape == frames.shape
    assert np.array_equal(decoded, np.stack(list(read_frames(odd / "plain.mp4"))))  # the same encoded frames
    assert hidden_files(odd) == []


def test_an_aborted_writer_removes_its_live_copy(tmp_path):
    live = tmp_path / "live.mp4"
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "x.mp4", fps=25, size=(32, 32), live=live) as vw:
        vw.write(solid_frames(30, 32, 32))
        raise RuntimeError("stop")
    assert not live.exists() and not (tmp_path / "x.mp4").exists() and hidden_files(tmp_path) == []
