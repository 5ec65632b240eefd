"""Output formats (lsd_jax/media/formats.py): one end-to-end render per format, probed with ``ffmpeg -i``
(imageio-ffmpeg ships no ffprobe), and the choice of format by name and codec with its errors."""

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import lsd_jax
from lsd_jax import OutputError, ParamError
from lsd_jax.media import formats
from lsd_jax.media.ffmpeg import probe, run_ffmpeg
from lsd_jax.media.formats import FORMATS, choose_format
from lsd_jax.media.outputs import resolve_output
from lsd_jax.media.video import VideoWriter, probe_video

FPS = 12.0  # YouTube's GOP: half the frame rate = 6 frames
SR = 22050


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """One second of a pulsing tone."""
    t = np.arange(SR) / SR
    y = 0.5 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, y.astype(np.float32), SR)
    return path


def render(song: Path, output: Path, **kw) -> Path:
    return lsd_jax.render(song, output=output, resolution=32, fps=FPS, progress=False, **kw).path


def frame_types(path: Path) -> list[str]:
    """The picture type (I, P, B) of each frame in presentation order (ffmpeg's showinfo filter)."""
    res = run_ffmpeg(["-i", str(path), "-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-"])
    return re.findall(r"\btype:([IPB])\b", res.stderr.decode("utf-8", "replace"))


CONTAINERS = [  # output name, codec, video codec, pixel format, audio codec (None: no sound)
    ("v.mp4", "auto", "h264", "yuv420p", "aac"),
    ("v.mp4", "h265", "hevc", "yuv420p", "aac"),
    ("v.mov", "auto", "prores", "yuv422p10le", "pcm_s16le"),
    ("v.mov", "prores4444", "prores", "yuv444p12le", "pcm_s16le"),  # prores_ks stores 4444 as 12 bit
    ("v.mov", "hap", "hap", "rgb0", "pcm_s16le"),
    ("v.webm", "auto", "vp9", "yuv420p", "opus"),
    ("v.gif", "auto", "gif", "bgra", None),  # ffmpeg's GIF decoder outputs bgra
    ("v.webp", "auto", "webp_anim", "argb", None),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,codec,vcodec,pix_fmt,acodec", CONTAINERS, ids=[f"{c[0]}-{c[1]}" for c in CONTAINERS])
def test_each_format_end_to_end(song, tmp_path, name, codec, vcodec, pix_fmt, acodec) -> None:
    out = render(song, tmp_path / name, codec=codec)
    assert out == tmp_path / name
    info = probe_video(out)
    assert (info["video_codec"], info["pix_fmt"]) == (vcodec, pix_fmt)
    assert (info["width"], info["height"]) == (32, 32)
    assert info["n_frames"] == 12 and info["fps"] == pytest.approx(FPS, rel=0.01)
    assert info["audio_codec"] == acodec and info["audio_streams"] == (acodec is not None)
    if acodec is not None:
        assert info["audio_sample_rate"] == 48000  # YouTube's rate; pcm and opus are there too
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


@pytest.mark.slow
def test_h264_follows_youtubes_recommended_settings(song, tmp_path) -> None:
    out = render(song, tmp_path / "yt.mp4", duration=None)
    header = probe(out)[1]
    assert re.search(r"Video: h264 \(High\)", header)
    assert re.search(r"Audio: aac \(LC\).*48000 Hz", header)
    types = frame_types(out)
    assert len(types) == 12
    assert [i for i, t in enumerate(types) if t == "I"] == [0, 6]  # a keyframe every half second
    assert "B" in types
    sei = out.read_bytes()  # x264 writes its settings into the stream
    assert b"bframes=2 " in sei and b"open_gop=0" in sei and b"keyint=6 " in sei


@pytest.mark.slow
def test_png_sequence_is_a_folder_with_the_soundtrack(song, tmp_path) -> None:
    out = render(song, f"{tmp_path}/frames/")
    assert out == tmp_path / "frames" and out.is_dir()
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"frame_{i:05d}.png" for i in range(12)] + ["audio.wav", "recipe.json"])
    info = sf.info(out / "audio.wav")
    assert info.subtype == "PCM_16" and info.duration == pytest.approx(1.0, abs=0.01)
    assert probe_video(out / "frame_00011.png")["width"] == 32
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]  # the temporary folder was renamed
    # a pattern names the files; a bare pattern gets its own folder
    out = render(song, tmp_path / "shots" / "shot_%03d.png")
    assert sorted(out.glob("shot_*.png"))[-1].name == "shot_011.png"
    with pytest.raises(OutputError, match="not empty"):
        render(song, f"{tmp_path}/frames/")


def test_the_format_follows_the_name_or_the_codec(tmp_path) -> None:
    assert choose_format("x")[0].name == "h264" and choose_format("x")[1] == Path("x.mp4")
    assert choose_format("x", "prores") == (FORMATS["prores"], Path("x.mov"))
    assert choose_format("x.MOV")[0].name == "prores"
    assert choose_format("x.mp4", "h265")[0].name == "h265"
    assert choose_format("out/") == (FORMATS["png"], Path("out/frame_%05d.png"))
    assert choose_format("shot_%05d.png") == (FORMATS["png"], Path("shot/shot_%05d.png"))
    assert choose_format("x", "png") == (FORMATS["png"], Path("x/frame_%05d.png"))
    (tmp_path / "dir").mkdir()  # only a trailing slash or a pattern says "PNG folder"
    assert choose_format(tmp_path / "dir")[0].name == "h264"


@pytest.mark.parametrize(
    "output,codec,match",
    [
        ("x.mp4", "prores", r"codec 'prores' does not go in a \.mp4 file.*\.mp4 takes h264, h265"),
        ("x.gif", "vp9", "codec 'vp9' does not go in a .gif"),
        ("x.avi", "auto", "output must be an .mp4, .mov"),
        ("out/", "h264", "does not write a folder of images"),
        ("x.mp4", "mpeg2", "codec must be one of auto, h264"),
        ("s_%03d.jpg", "auto", "must end in .png"),
    ],
)
def test_a_codec_that_does_not_fit_the_name_is_refused(output, codec, match) -> None:
    with pytest.raises(ParamError, match=match):
        choose_format(output, codec)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(codec="h264", quality=60), r"quality must be in 0\.\.51 for h264"),
        (dict(codec="prores", quality=10), "quality: the prores format has no quality setting"),
        (dict(codec="gif", lossless=True), "lossless: the gif format has no lossless mode"),
        (dict(quality=10, lossless=True), "quality: give quality or lossless, not both"),
        (dict(quality=101), "quality"),
        (dict(codec="xvid"), "codec"),
    ],
)
def test_bad_settings_name_the_field_before_any_work(song, tmp_path, kw, match) -> None:
    with pytest.raises(ParamError, match=match):
        lsd_jax.render(song, output=tmp_path / "x", progress=False, **kw)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_encoder_names_the_format(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(formats, "_encoders", lambda: frozenset({"libx264"}))
    with pytest.raises(OutputError, match="the vp9 format needs ffmpeg's libvpx-vp9 encoder"):
        VideoWriter(tmp_path / "x.webm", fps=10, size=(16, 16))
    assert list(tmp_path.iterdir()) == []


def test_every_format_in_the_table_has_its_encoder_in_this_ffmpeg() -> None:
    for fmt in FORMATS.values():
        formats.check_encoder(fmt)  # raises OutputError naming the format


def test_sizes_each_format_accepts(tmp_path) -> None:
    with pytest.raises(OutputError, match="a multiple of 4 for hap"):
        VideoWriter(tmp_path / "x.mov", codec="hap", fps=10, size=(18, 18))
    with pytest.raises(OutputError, match="even for h264"):
        VideoWriter(tmp_path / "x.mp4", fps=10, size=(15, 16))
    frames = np.zeros((3, 15, 17, 3), np.uint8)  # GIF has no chroma subsampling: any size
    with VideoWriter(tmp_path / "x.gif", fps=10, size=(15, 17)) as vw:
        vw.write(frames)
    assert probe_video(tmp_path / "x.gif")["n_frames"] == 3


def test_a_failed_png_sequence_leaves_no_folder(tmp_path) -> None:
    with pytest.raises(RuntimeError), VideoWriter(f"{tmp_path}/seq/", fps=10, size=(8, 8)) as vw:
        vw.write(np.zeros((2, 8, 8, 3), np.uint8))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_recipe_text_goes_into_the_container_or_the_folder(tmp_path) -> None:
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    for name in ("x.mp4", "x.mov", "x.webm", "seq/"):
        with VideoWriter(f"{tmp_path}/{name}", fps=10, size=(16, 16), recipe='{"seed": 3}') as vw:
            vw.write(frames)
    for name in ("x.mp4", "x.mov", "x.webm"):
        assert re.search(r'(?i)comment\s*: \{"seed": 3\}', probe(tmp_path / name)[1])
    assert (tmp_path / "seq" / "recipe.json").read_text() == '{"seed": 3}\n'


def test_resolve_output_checks_a_png_folder_up_front(tmp_path) -> None:
    assert resolve_output(f"{tmp_path}/shots/") == tmp_path / "shots" / "frame_%05d.png"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.txt").write_text("x")
    with pytest.raises(OutputError, match="exists and is not empty"):
        resolve_output(f"{tmp_path}/full/")
    with pytest.raises(OutputError, match="does not exist"):
        resolve_output(f"{tmp_path}/no/such/shots/")


def test_the_readme_lists_every_format() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Output formats", 1)[1].split("\n### ", 1)[0]
    for name, fmt in FORMATS.items():
        assert re.search(rf"^\| `[^`]*\{fmt.suffix}[^|]*\| `{name}`", section, re.M) or (
            fmt.sequence and f"| `{name}` |" in section
        ), name


# --- the app's format choice (lsd_jax/web/jobs.py)


def test_the_app_names_the_video_by_its_format_and_refuses_png(song) -> None:
    from lsd_jax.web import jobs

    for codec, name in (("auto", "song.mp4"), ("h265", "song.mp4"), ("prores", "song.mov"), ("gif", "song.gif")):
        job = jobs.prepare_job(str(song), codec=codec, resolution=32)
        assert jobs.output_name(job) == name
        assert jobs.wants_live_copy(job) == (codec in ("auto", "h265"))
    with pytest.raises(ParamError, match="codec: the app delivers one file"):
        jobs.prepare_job(str(song), codec="png")
    loop = jobs.prepare_job(str(song), loop_seconds=0.5, resolution=32)
    assert loop.seconds == 0.5  # a loop is its own excerpt (estimates and limits)
