"""End to end with a StyleGAN3 style: the music rotates and slides the image (issue 4)."""

import numpy as np
import nvidia_pickles_sg3 as nv3
import pytest
import soundfile as sf
from sg3_state import random_sg3_state, sg3_config

import lsd_jax
from lsd_jax import ParamError
from lsd_jax.engine.latents import transform_path
from lsd_jax.engine.pipeline import prepare
from lsd_jax.media.video import probe_video


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    d = tmp_path_factory.mktemp("sg3")
    t = np.arange(22050 * 4) / 22050
    loud = (t > 2.0).astype(np.float32)  # quiet first half, loud second half
    y = (0.02 + 0.5 * loud) * np.sin(2 * np.pi * 262 * t) + 0.3 * (np.mod(t, 0.5) < 0.01)
    sf.write(d / "song.wav", y.astype(np.float32), 22050)
    return d / "song.wav"


@pytest.fixture(scope="module", params=["t", "r"])
def sg3_pkl(request, tmp_path_factory):
    config = sg3_config(kind=request.param, img_resolution=16, num_layers=4, c_dim=3)
    return nv3.write_pickle(
        tmp_path_factory.mktemp("pkl") / f"sg3{request.param}.pkl", config, random_sg3_state(config, 4)
    )


@pytest.mark.slow
def test_transform_path_follows_motion():
    motion = np.r_[np.zeros(10), np.ones(10)].astype(np.float32)
    p = lsd_jax.make_params(rotate_react=0.5, translate_react=0.25, seed=1)
    angle, tx, ty = transform_path(motion, p, fps=10.0)
    assert np.all(angle[:10] == 0) and np.all(tx[:10] == 0) and np.all(ty[:10] == 0)  # still music: still image
    np.testing.assert_allclose(abs(angle[-1]), 2 * np.pi * 0.5 * 10 / 10, rtol=1e-5)  # 0.5 turn/s for 1 s
    np.testing.assert_allclose(np.hypot(np.diff(tx[10:]), np.diff(ty[10:])), 0.25 / 10, rtol=1e-4)


@pytest.mark.slow
def test_stylegan3_render_with_rotation_and_translation(song, sg3_pkl, tmp_path):
    kw = dict(fps=8.0, speed_fpm=0, pulse_react=0.0, motion_react=0.0, class_pitch_react=0.0)
    still = prepare(song, str(sg3_pkl), progress=False, **kw)
    moving = prepare(song, str(sg3_pkl), progress=False, rotate_react=0.5, translate_react=0.3, **kw)
    assert "transform" in moving.inputs and moving.inputs["transform"].shape == (moving.n_frames, 3, 3)
    a = still.frames(np.arange(still.n_frames)).astype(np.float32)
    b = moving.frames(np.arange(moving.n_frames)).astype(np.float32)
    # nothing else moves, so the difference is the transform, which grows once the music gets loud
    diff = np.abs(a - b).mean(axis=(1, 2, 3))
    assert diff[:12].max() < 1.0 and diff[16:].max() > 3.0, diff
    out = lsd_jax.render(
        song,
        style=str(sg3_pkl),
        output=tmp_path / "sg3.mp4",
        rotate_react=0.5,
        translate_react=0.3,
        truncation_psi=0.7,
        progress=False,
        fps=8.0,
    )
    info = probe_video(out)
    assert (info["width"], info["height"], info["n_frames"], info["audio_streams"]) == (16, 16, 32, 1)


@pytest.mark.slow
def test_rotation_needs_a_stylegan3_style(song, tmp_path):
    with pytest.raises(ParamError, match="StyleGAN3"):
        lsd_jax.render(song, output=tmp_path / "x.mp4", rotate_react=0.5, progress=False)
