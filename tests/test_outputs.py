"""lsd_jax.media.outputs: a render or a conversion never writes over one of its inputs (issue 18), and bad output
arguments are clear errors before any work."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import lsd_jax
from lsd_jax.errors import OutputError, ParamError
from lsd_jax.media import outputs
from lsd_jax.params import make_params


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    p = tmp_path / "clip.mp4"
    p.write_bytes(os.urandom(4096))  # the check runs before the song is read: any bytes will do
    return p


def _same_file_names(clip: Path) -> dict[str, Path]:
    d = clip.parent
    os.symlink(clip, d / "link.mp4")
    os.link(clip, d / "hard.mp4")
    (d / "sub").mkdir()
    return {
        "same path": clip,
        "relative": Path(os.path.relpath(clip)),
        "dotted": d / "sub" / ".." / "clip.mp4",
        "symlink": d / "link.mp4",
        "hard link": d / "hard.mp4",
        "no suffix": d / "clip",
    }


@pytest.mark.parametrize("case", ["same path", "relative", "dotted", "symlink", "hard link", "no suffix"])
def test_render_refuses_to_write_over_its_song(clip: Path, case: str) -> None:
    before = _digest(clip)
    out = _same_file_names(clip)[case]
    with pytest.raises(OutputError, match="refusing to write over it"):
        lsd_jax.render(clip, output=out, progress=False)
    assert _digest(clip) == before and not any(p.suffix == ".tmp" for p in clip.parent.iterdir())


@pytest.mark.parametrize(
    "field", ["pulse_audio", "motion_audio", "class_audio", "contrast_audio", "flash_audio", "output_audio"]
)
def test_render_refuses_to_write_over_a_stem_or_the_output_audio(tmp_path: Path, clip: Path, field: str) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    before = _digest(clip)
    with pytest.raises(OutputError, match="is the input"):
        lsd_jax.render(song, output=clip, progress=False, **{field: str(clip)})
    assert _digest(clip) == before


def test_style_file_and_keyframe_images_are_inputs_too(tmp_path: Path, clip: Path) -> None:
    params = make_params(keyframes={1.0: str(clip)})
    with pytest.raises(OutputError):
        outputs.resolve_output(clip, outputs.render_inputs(tmp_path / "s.wav", None, params))
    with pytest.raises(OutputError):
        outputs.resolve_output(clip, outputs.render_inputs(tmp_path / "s.wav", clip, make_params()))


def test_other_outputs_are_fine(tmp_path: Path, clip: Path) -> None:
    params = make_params(output_audio=str(clip))
    got = outputs.resolve_output(tmp_path / "video", outputs.render_inputs(clip, "default", params))
    assert got == tmp_path / "video.mp4"


@pytest.mark.parametrize(
    "bad,err,match",
    [
        (123, ParamError, "must be a file path"),
        (None, ParamError, "must be a file path"),
        (b"x.mp4", ParamError, "must be a file path"),
        (["x.mp4"], ParamError, "must be a file path"),
        ("", ParamError, "must name a file"),
        ("x.avi", ParamError, "must be an .mp4"),
    ],
)
def test_output_argument_type_and_suffix(bad, err, match) -> None:
    with pytest.raises(err, match=match):
        outputs.resolve_output(bad)
    with pytest.raises(err, match=match):
        lsd_jax.render("song.wav", output=bad, progress=False)


def test_output_into_a_directory_or_a_missing_or_unwritable_folder(tmp_path: Path) -> None:
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        outputs.resolve_output(tmp_path / "dir.mp4")
    with pytest.raises(OutputError, match="does not exist"):
        outputs.resolve_output(tmp_path / "nope" / "o.mp4")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="does not exist"):
        outputs.writable_output(tmp_path / "file" / "o.npz", what="converted file")


def test_default_output_never_names_the_song(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "song.wav").write_bytes(b"x")
    assert outputs.default_output(Path("clip.mp4")) == Path("clip.lsd.mp4")
    assert outputs.default_output(tmp_path / "clip.mp4") == Path("clip.lsd.mp4")
    assert outputs.default_output(Path("song.wav")) == Path("song.mp4")
    assert outputs.default_output(Path("song.wav"), ["song.mp4"]) == Path("song.lsd.mp4")
    elsewhere = tmp_path / "music"
    elsewhere.mkdir()
    (elsewhere / "clip.mp4").write_bytes(b"y")
    assert outputs.default_output(elsewhere / "clip.mp4") == Path("clip.mp4")  # the current folder's, not the song
