"""A BigGAN-deep checkpoint folder as a Lucid Sonic Dreams style: ``render(song, style=<folder>)`` makes a video
with the song, frames that are the generator's images for the render's latents (truncation included), classes by
ImageNet name; parameters BigGAN cannot honour are clear errors."""

from __future__ import annotations

from pathlib import Path

import biggan_checkpoints as bc
import numpy as np
import pytest
from audio_signals import pitch_song, write

import lsd_jax
from lsd_jax.engine.pipeline import prepare
from lsd_jax.errors import ParamError
from lsd_jax.media.video import probe_video, read_frames

NAMES = ["goldfish", "daisy", "volcano"]  # 1, 985, 980


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    cfg = bc.biggan_config(128, channel_width=4)
    return bc.write_checkpoint(tmp_path_factory.mktemp("bg") / "biggan-deep-tiny", cfg, bc.random_state(cfg, 2))


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("song") / "song.mp3", pitch_song())


def _uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255)


@pytest.mark.slow
def test_render_with_a_biggan_folder_follows_the_music(folder, song, tmp_path) -> None:
    kw = dict(fps=8.0, classes=NAMES, truncation=0.6, seed=1)
    res = lsd_jax.render(song, style=str(folder), output=tmp_path / "v.mp4", progress=False, **kw)
    info = probe_video(res.path)
    assert (info["video_streams"], info["audio_streams"]) == (1, 1)
    assert info["n_frames"] == res.n_frames == 48 and info["fps"] == 8.0 and res.size == (128, 128)
    assert abs(info["audio_duration"] - 6.0) < 0.1
    frames = np.stack(list(read_frames(res.path))).astype(np.float32)

    prep = prepare(song, str(folder), progress=False, **kw)
    z, c = prep.inputs["z"], prep.inputs["c"]
    # classes by name: the mixture lives on goldfish/daisy/volcano, and follows the pitch (A, then C, then A)
    assert set(np.flatnonzero(c.sum(axis=0))) == {1, 985, 980}
    a, cc = int(np.argmax(c[12])), int(np.argmax(c[28]))  # 1.5 s (A4) and 3.5 s (C5)
    assert a != cc and int(np.argmax(c[44])) == a
    # each frame is the generator's image for the render's z and c, at the render's truncation
    g = lsd_jax.load_generator(folder)
    idx = [12, 28, 44]
    expect = _uint8(g(z[idx], c[idx], truncation_psi=0.6))
    wrong = _uint8(g(z[idx], c[idx], truncation_psi=0.2))
    err = np.abs(frames[idx] - expect).mean()
    assert err < 3.0, err  # H.264 (crf 18) rounding
    assert np.abs(frames[idx] - wrong).mean() > 3 * err, np.abs(frames[idx] - wrong).mean()  # truncation → statistics
    # and the pictures change with the music: more across the pitch change than within a section
    assert np.abs(frames[28] - frames[12]).mean() > 2 * np.abs(frames[13] - frames[12]).mean()


def test_biggan_parameter_errors_are_clear(folder, song, tmp_path) -> None:
    with pytest.raises(ParamError, match="truncation_psi.*BigGAN has no w space"):
        prepare(song, str(folder), truncation_psi=0.5, progress=False)
    with pytest.raises(ParamError, match="BigGAN: truncation must be in"):
        prepare(song, str(folder), truncation=0.0, progress=False)
    with pytest.raises(ParamError, match="did you mean 'goldfish'"):
        prepare(song, str(folder), classes=["goldfsh"], progress=False)
    with pytest.raises(ParamError, match="have no names; give class indices"):
        prepare(song, "default", classes=["goldfish"], progress=False)
