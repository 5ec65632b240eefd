"""The compiled frame step: compiles once, shards over devices and processes, bf16, clear OOM errors."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import nvidia_pickles as nv
import pytest
import soundfile as sf
from conftest import free_port
from sg2_state import random_sg2_state, sg2_config

import lsd_jax
from lsd_jax import ParamError
from lsd_jax.engine.pipeline import prepare, render_frames
from lsd_jax.engine.step import EffectPlan, make_frame_step
from lsd_jax.media.video import probe_video, read_frames
from lsd_jax.styles.resolve import cppn_style

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).parent.parent

_COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: _COMPILES.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    d = tmp_path_factory.mktemp("tp")
    t = np.arange(22050 * 5) / 22050
    y = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) + 0.2 * (np.mod(t, 0.5) < 0.01)
    sf.write(d / "song.wav", y.astype(np.float32), 22050)
    return d / "song.wav"


@pytest.fixture(scope="module")
def sg2_pkl(tmp_path_factory):
    config = sg2_config(img_resolution=32, c_dim=3)
    return nv.write_torch_pickle(tmp_path_factory.mktemp("pkl") / "g.pkl", config, random_sg2_state(config, 2))


@pytest.mark.slow
@pytest.mark.parametrize("style", ["default", "sg2"])
def test_the_frame_step_compiles_once_per_render(style, sg2_pkl):
    # a style of its own (steps are cached by value: a z size no other test uses), so no earlier test has
    # compiled a step for it
    st = cppn_style(z_dim=509) if style == "default" else lsd_jax.styles.resolve.resolve_style(str(sg2_pkl))
    plan = EffectPlan(((lsd_jax.contrast_effect, 0.5),), ())
    step = make_frame_step(st, (32, 32), plan, 8)
    rng = np.random.default_rng(0)
    n = 23  # not a multiple of the batch: the last batch is padded, not recompiled
    z = rng.normal(size=(n, st.z_dim)).astype(np.float32)
    c = rng.random((n, st.c_dim)).astype(np.float32)
    amps = rng.random((n, 1)).astype(np.float32)
    got = []
    before = len(_COMPILES)
    render_frames(step, {"z": z, "c": c, "amps": amps}, plan, got.append)
    assert len(_COMPILES) - before == 1
    assert sum(g.shape[0] for g in got) == n
    before = len(_COMPILES)
    render_frames(
        step, {"z": z[:5], "c": c[:5], "amps": amps[:5]}, plan, got.append
    )  # a second, shorter song: no compile
    assert len(_COMPILES) == before


@pytest.mark.slow
@pytest.mark.parametrize("style", ["default", "sg2"])
def test_four_devices_render_the_same_frames_as_one(style, song, sg2_pkl, tmp_path):
    style_arg = "default" if style == "default" else str(sg2_pkl)
    # the same work per device (one frame each), so even float rounding must agree
    outs = {}
    for n_dev, batch in ((1, 1), (4, 3)):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}", JAX_PLATFORMS="cpu")
        out = tmp_path / f"frames{n_dev}.npz"
        subprocess.run(
            [sys.executable, str(SCRIPTS / "frames_on_devices.py"), str(song), str(out), style_arg, str(batch)],
            check=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )
        outs[n_dev] = np.load(out)
    assert int(outs[4]["devices"]) == 4 and int(outs[1]["devices"]) == 1
    assert int(outs[4]["batch"]) == 4  # batch 3 rounded up to a multiple of 4 devices: one frame per device
    assert outs[1]["frames"].shape == (24, 32, 32, 3)
    np.testing.assert_array_equal(outs[4]["frames"], outs[1]["frames"])


@pytest.mark.slow
@pytest.mark.parametrize("style", ["default", "sg2"])
def test_bfloat16_is_close_to_float32(song, style, sg2_pkl):
    style_arg = "default" if style == "default" else str(sg2_pkl)
    f32 = prepare(song, style_arg, fps=8.0, resolution=32, duration=2.0, progress=False)
    bf16 = prepare(song, style_arg, fps=8.0, resolution=32, duration=2.0, compute_dtype="bfloat16", progress=False)
    a = f32.frames(np.arange(f32.n_frames)).astype(np.float32)
    b = bf16.frames(np.arange(bf16.n_frames)).astype(np.float32)
    err = np.abs(a - b).mean()
    assert 0 < err < 12, err  # approximate, but the same picture


def test_a_batch_that_does_not_fit_is_a_clear_error(song):
    prep = prepare(song, fps=8.0, resolution=32, duration=2.0, batch_size=16, progress=False)

    def oom(*args):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 123456789 bytes.")

    step = prep.step.__class__(oom, prep.step.variables, prep.step.batch, prep.step.devices)
    with pytest.raises(ParamError, match="batch_size=16 does not fit.*smaller batch_size"):
        render_frames(step, prep.inputs, prep.plan, lambda f: None)


@pytest.mark.slow
def test_two_processes_render_one_video(song, tmp_path):
    out = tmp_path / "joined.mp4"
    port = str(free_port())
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPTS / "distributed_render.py"), port, "2", str(i), str(song), str(out)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    info = probe_video(out)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1 and info["n_frames"] == 32
    assert abs(info["fps"] - 8.0) < 1e-6 and abs(info["audio_duration"] - 4.0) < 0.1
    assert not list(tmp_path.glob(".*segment*")), "segments removed"
    single = lsd_jax.render(song, output=tmp_path / "single.mp4", fps=8.0, resolution=32, duration=4.0, progress=False)
    a = np.stack(list(read_frames(out))).astype(np.float32)
    b = np.stack(list(read_frames(single))).astype(np.float32)
    assert np.abs(a - b).mean() < 2.0  # same frames, encoded in two segments
