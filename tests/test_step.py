"""lsd_jax.step: render settings are step inputs, so renders that differ only in them compile nothing new."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import soundfile as sf

import lsd_jax
import nvidia_pickles as nv
from lsd_jax.params import make_params
from lsd_jax.step import CUTOFF_ALL, render_settings
from sg2_state import random_sg2_state, sg2_config

BACKEND_COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: BACKEND_COMPILES.append(event)
    if event == "/jax/core/compile/backend_compile_duration" else None)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("step")
    t = np.arange(22050 * 2) / 22050
    sf.write(d / "song.wav", (0.4 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(9 * t))).astype(np.float32), 22050)
    config = sg2_config(img_resolution=16, z_dim=20)  # a network no other test renders
    return d / "song.wav", nv.write_torch_pickle(d / "g.pkl", config, random_sg2_state(config, 6))


def test_render_settings_are_arrays():
    s = render_settings(make_params(truncation_psi=0.5, truncation_cutoff=3, noise_mode="random"))
    assert s["truncation_psi"].dtype == np.float32 and float(s["truncation_psi"]) == 0.5
    assert s["truncation_cutoff"].dtype == np.int32 and int(s["truncation_cutoff"]) == 3
    assert int(s["noise_mode"]) == 1
    assert int(render_settings(make_params())["truncation_cutoff"]) == CUTOFF_ALL


def test_a_new_psi_cutoff_noise_mode_or_noise_react_compiles_nothing(files, tmp_path):
    song, pkl = files
    kw = dict(fps=8.0, progress=False)
    first = lsd_jax.render(song, style=str(pkl), output=tmp_path / "a.mp4", truncation_psi=0.7, **kw)
    before = len(BACKEND_COMPILES)
    second = lsd_jax.render(song, style=str(pkl), output=tmp_path / "b.mp4", truncation_psi=0.4, **kw)
    assert len(BACKEND_COMPILES) - before == 0  # the second render, with another psi, compiles nothing
    third = lsd_jax.render(song, style=str(pkl), output=tmp_path / "c.mp4", truncation_psi=1.0, truncation_cutoff=3,
                           noise_mode="random", noise_react=2.0, **kw)
    assert len(BACKEND_COMPILES) - before == 0
    frames = [np.stack(list(lsd_jax.video.read_frames(r.path))).astype(np.float32) for r in (first, second, third)]
    assert np.abs(frames[0] - frames[1]).mean() > 1.0 and np.abs(frames[1] - frames[2]).mean() > 1.0  # settings act


def test_truncation_in_the_step_matches_the_generator(files):
    from lsd_jax.generator import load_generator
    from lsd_jax.styles import resolve_style

    _, pkl = files
    style = resolve_style(str(pkl))
    gen = load_generator(pkl)
    z = np.random.default_rng(0).standard_normal((3, gen.z_dim)).astype(np.float32)
    c = np.zeros((3, 0), np.float32)
    for psi, cutoff in ((1.0, None), (0.5, None), (0.5, 2), (-0.3, 5)):
        got = style.images({"z": z, "c": c}, settings=render_settings(make_params(truncation_psi=psi,
                                                                                   truncation_cutoff=cutoff)))
        want = gen(z, truncation_psi=psi, truncation_cutoff=cutoff)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
