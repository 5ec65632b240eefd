"""Deep Music Visualizer mode end to end: ``lsd-jax dmv song.mp3`` on a tiny random BigGAN-deep checkpoint makes a
video at exactly 22050/frame_length fps with the song, whose frames are the generator's images for DMV's vectors
and change with the music; bad input is a clear error before any work."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import biggan_checkpoints as bc
import numpy as np
import pytest
from audio_signals import pitch_song, write

import lsd_jax
from lsd_jax.cli import main
from lsd_jax.dmv import vectors as dmv
from lsd_jax.dmv.params import make_dmv_params
from lsd_jax.errors import OutputError, ParamError, StyleError
from lsd_jax.media.decode import read_audio, to_mono
from lsd_jax.media.video import probe_video, read_frames

CLASSES = [
    "goldfish",
    "daisy",
    "volcano",
    "coral reef",
    "jellyfish",
    "tabby",
    "lemon",
    "fig",
    "bubble",
    "alp",
    "tench",
    "valley",
]
# frame_length 2048: 22050/2048 ≈ 10.77 fps, so the 6 s song is 64 analysis frames (a short test, an odd rate)
ARGS = dict(frame_length=2048, smooth_factor=8, batch_size=8, truncation=0.5, pitch_sensitivity=290, seed=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    cfg = bc.biggan_config(128, channel_width=4)
    return bc.write_checkpoint(tmp_path_factory.mktemp("bg") / "biggan-deep-tiny", cfg, bc.random_state(cfg, 4), "zip")


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("song") / "song.mp3", pitch_song())


def _uint8(images) -> np.ndarray:
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255)


@pytest.mark.slow
def test_cli_dmv_makes_the_video_of_dmvs_vectors(folder, song, tmp_path, capsys) -> None:
    out = tmp_path / "dmv.mp4"
    argv = [
        "dmv",
        str(song),
        "--model",
        str(folder),
        "-o",
        str(out),
        "--quiet",
        "--classes",
        ",".join(CLASSES),
        "--resolution",
        "128",
    ]
    for k, v in ARGS.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out

    # the vectors, computed independently through the algorithm's API
    p = make_dmv_params(classes=CLASSES, resolution=128, **ARGS)
    data, sr = read_audio(song)
    vec = dmv.deep_music_vectors(dmv.dmv_features(to_mono(data), sr, p.frame_length), p)
    n = vec.n_frames
    assert n > 0 and n % p.batch_size == 0

    info = probe_video(out)
    assert (info["video_streams"], info["audio_streams"]) == (1, 1)
    assert info["n_frames"] == n and (info["width"], info["height"]) == (128, 128)
    assert Fraction(info["fps"]).limit_denominator(10_000) == Fraction(22050, 2048)  # exact, not rounded
    assert abs(info["audio_duration"] - n * 2048 / 22050) < 0.05  # the song, cut to the video's length

    frames = np.stack(list(read_frames(out))).astype(np.float32)
    g = lsd_jax.load_generator(folder)
    fps = float(p.fps)
    quiet, loud = int(1.0 * fps), int(3.0 * fps)  # A4 (quiet) and C5 (loud)
    idx = [quiet, loud, n - 1]
    expect = _uint8(g(vec.noise[idx], vec.class_vectors()[idx], truncation_psi=p.truncation))
    err = np.abs(frames[idx] - expect).mean()
    assert err < 3.0, err  # H.264 rounding: these are exactly DMV's frames
    # frames change with the music: the loud passage moves the noise (and the picture) more than the quiet one
    step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert step[int(2.3 * fps) : int(3.8 * fps)].mean() > 2 * step[int(0.3 * fps) : int(1.8 * fps)].mean()
    # and the pitch change moves the class mixture: the dominant class differs between A4 and C5
    cv = vec.class_vectors()
    assert np.argmax(cv[quiet]) != np.argmax(cv[loud])


def test_python_api_and_clear_errors(folder, song, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ParamError, match="did you mean 'pitch_sensitivity'"):
        lsd_jax.deep_music_visualizer(song, folder, pitch_sensitivty=200)
    with pytest.raises(ParamError, match="resolution must be one of 128, 256, 512"):
        lsd_jax.deep_music_visualizer(song, folder, resolution=300)
    clip = write(tmp_path / "clip.mp4", pitch_song(0.5))  # a song in an .mp4: the output must not be it
    with pytest.raises(OutputError, match="refusing to write over it"):
        lsd_jax.deep_music_visualizer(clip, folder, output_file=clip)
    with pytest.raises(StyleError, match="drives a BigGAN-deep model"):
        lsd_jax.deep_music_visualizer(song, "default", output_file=out / "x.mp4")
    with pytest.raises(ParamError, match="truncation must be"):
        lsd_jax.deep_music_visualizer(song, folder, truncation=0, output_file=out / "x.mp4")
    assert not list(out.iterdir())  # nothing written


@pytest.mark.slow
def test_dmv_renders_through_the_render_writer_loop_with_batch_size_as_an_upper_bound(
    folder, song, tmp_path, monkeypatch
) -> None:
    """DMV mode runs the render's own step builder and writer loop (lsd_jax.engine.pipeline.render_frames is what
    both call); its batch_size bounds the frames per step, which the memory check may lower further."""
    from lsd_jax.engine import pipeline

    seen = []
    real = pipeline.render_frames

    def spy(step, inputs, plan, sink, progress=None):
        seen.append((step.batch, inputs["z"].shape[0]))
        return real(step, inputs, plan, sink, progress)

    monkeypatch.setattr(pipeline, "render_frames", spy)
    out = lsd_jax.deep_music_visualizer(
        song, folder, output_file=tmp_path / "d.mp4", resolution=128, **{**ARGS, "duration": 2.0}, progress=False
    )
    assert len(seen) == 1 and 1 <= seen[0][0] <= ARGS["batch_size"] and seen[0][1] == out.n_frames
    assert probe_video(out)["n_frames"] == out.n_frames


@pytest.mark.slow
def test_dmv_makes_a_wide_video_natively_and_crop_as_before(folder, song, tmp_path) -> None:
    """Issue 22: width/height of another aspect than the model's square: with frame_fit "native" (the default)
    BigGAN-deep widens its feature maps itself, so the centre of the wide frame is the whole square frame (its
    full height); "crop" cuts the square's middle band and blows it up, as before."""
    kw = dict(ARGS, duration=1.0, progress=False)  # one batch of 8 frames
    out = {}
    for name, extra in (
        ("square", {}),
        ("native", dict(width=228, height=128)),
        ("crop", dict(width=228, height=128, frame_fit="crop")),
    ):
        r = lsd_jax.deep_music_visualizer(
            song, folder, output_file=tmp_path / f"{name}.mp4", resolution=128, **kw, **extra
        )
        out[name] = np.stack(list(read_frames(r.path))).astype(np.float64)
        assert r.size == ((128, 128) if name == "square" else (128, 228))
    assert out["native"].shape[1:] == (128, 228, 3) and out["crop"].shape == out["native"].shape
    square, native, crop = (out[k][:, :, 50:178] if k != "square" else out[k] for k in ("square", "native", "crop"))
    assert np.abs(native - square).mean() < 0.5 * np.abs(crop - square).mean()
