"""The app's work without Gradio: requests validated into jobs, previews, renders, per-request folders.

Renders are tiny (48 px, 3 s, 10 fps) so the file stays well under a minute on 2 cores.
"""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path

import numpy as np
import pytest
from app_songs import write_songs

import lsd_jax
from lsd_jax.params import make_params
from lsd_jax.video import probe_video, read_frames
from lsd_jax.web import jobs as J
from lsd_jax.web.config import AppConfig

TINY = dict(fps=8, resolution=32)
RENDER_VALUES = dict(fps=10, resolution=48, seed=3, speed_fpm=30, pulse_react=0.8, contrast_strength=0.4,
                     flash_strength=0.3, motion_randomness=0.7, classes="0, 3, 5")


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    return write_songs(tmp_path_factory.mktemp("songs"))


@pytest.fixture(scope="module")
def rendered(songs):
    calls = []
    values = dict(RENDER_VALUES, pulse_audio=str(songs["drums"]))
    raw = []  # the frames render() hands to the encoder, to check the preview bit for bit
    render_module = importlib.import_module("lsd_jax.pipeline")
    real_render_frames = render_module.render_frames

    def spy(*args, **kwargs):
        bound = inspect.signature(real_render_frames).bind(*args, **kwargs)
        sink = bound.arguments["sink"]
        bound.arguments["sink"] = lambda frames: (raw.append(frames.copy()), sink(frames))
        return real_render_frames(*bound.args, **bound.kwargs)

    with J.Jobs(keep=0.0) as jobs, pytest.MonkeyPatch.context() as mp:
        mp.setattr(render_module, "render_frames", spy)
        job = jobs.prepare(str(songs["song"]), "default", None, **values)
        video = jobs.render(job, lambda done, total: calls.append((done, total)))
        yield dict(video=video, calls=calls, job=job, values=values, raw=np.concatenate(raw), jobs=jobs)


def test_render_gives_an_mp4_and_reports_real_frames(rendered):
    info = probe_video(rendered["video"])
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert (info["width"], info["height"]) == (48, 48)
    n = info["n_frames"]
    assert n == 30 and len(rendered["raw"]) == n
    calls = rendered["calls"]
    assert calls and calls[-1] == (n, n) and all(a <= b for (a, _), (b, _) in zip(calls, calls[1:]))
    assert rendered["video"].name == "my_song.mp4"
    assert rendered["video"].parent.parent == rendered["jobs"].workdirs.root  # in the app's own folder


def test_snippet_reproduces_the_parameters(rendered, monkeypatch):
    job = rendered["job"]
    snippet = J.python_snippet(job)
    assert "/" not in snippet.replace("# ", "")  # no server paths, only the uploaded files' names
    captured = {}

    def fake_render(song, style=None, output="lsd.mp4", **kwargs):
        captured.update(song=song, style=style, output=output, kwargs=kwargs)
        return Path(output)

    monkeypatch.setattr(lsd_jax, "render", fake_render)
    exec(compile(snippet, "<snippet>", "exec"), {})
    assert captured["song"] == "my song.wav" and captured["style"] == "default"
    assert captured["output"] == "my_song.mp4"
    assert make_params(**captured["kwargs"]) == job.public_params
    assert job.public_params.pulse_audio == "drums.wav"
    assert job.public_params.replace(pulse_audio=job.params.pulse_audio) == job.params
    assert job.params.classes == (0, 3, 5) and job.params.seed == 3


def test_preview_stills_are_frames_of_the_full_render(rendered):
    pv = rendered["jobs"].preview(rendered["job"])
    assert len(pv.indices) == AppConfig().preview_stills == 6
    # bit for bit the frames the full render encoded ...
    assert np.array_equal(pv.frames, rendered["raw"][pv.indices])
    assert np.allclose(pv.times, pv.indices / 10.0)
    # ... and, decoded from the MP4, equal within H.264's error (luma: yuv420p halves the chroma of
    # this busy 48 px picture), and far from every other frame
    decoded = np.stack([f.astype(np.float32) for f in read_frames(rendered["video"])])
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    decoded_y = decoded @ luma
    for still, i in zip(pv.frames, pv.indices):
        err = np.abs((still.astype(np.float32) @ luma)[None] - decoded_y).mean(axis=(1, 2))
        assert err[i] < 8.0, (i, err[i])
        assert int(np.argmin(err)) == i and np.sort(err)[1] > 3 * err[i], (i, np.sort(err)[:3])
    # the stills sit on the song's loudest moments and are spread out
    assert len(set(pv.indices.tolist())) == 6 and np.all(np.diff(pv.indices) >= 30 // 12)


def test_loudest_frames():
    pulse = np.zeros(100)
    pulse[[10, 11, 12, 50, 90]] = [1.0, 0.99, 0.98, 0.7, 0.5]
    assert J.loudest_frames(pulse, 3).tolist() == [10, 50, 90]
    assert J.loudest_frames(np.ones(4), 6).tolist() == [0, 1, 2, 3]


def test_too_long_a_song_is_refused_before_any_work(songs):
    cfg = AppConfig(max_seconds=5)
    with pytest.raises(lsd_jax.AudioError) as e:
        J.prepare_job(str(songs["long"]), cfg=cfg, **TINY)
    assert "8 s long" in str(e.value) and "at most 5 s" in str(e.value) and "start and duration" in str(e.value)
    job = J.prepare_job(str(songs["long"]), cfg=cfg, start=2, duration=4, **TINY)  # an excerpt fits
    assert (job.params.start, job.params.duration) == (2.0, 4.0)
    with pytest.raises(lsd_jax.AudioError, match="beyond the end"):
        J.prepare_job(str(songs["long"]), cfg=cfg, start=9, **TINY)


@pytest.mark.parametrize("values, error, match", [
    (dict(resolution=2048), lsd_jax.ParamError, "resolution=2048 is above this server's limit of 1024"),
    (dict(fps=120), lsd_jax.ParamError, "fps=120 is above this server's limit of 60"),
    (dict(width=64), lsd_jax.ParamError, "give both width and height"),
])
def test_server_limits(songs, values, error, match):
    with pytest.raises(error, match=match):
        J.prepare_job(str(songs["song"]), **{**TINY, **values})


def test_styles_are_names_from_the_list_or_uploaded_files(songs, tmp_path):
    with pytest.raises(lsd_jax.StyleError, match="style file must be an NVIDIA StyleGAN .pkl"):
        J.prepare_job(str(songs["song"]), "default", str(songs["text"]), **TINY)
    with pytest.raises(lsd_jax.StyleError, match="unknown style"):  # never a path on the server
        J.prepare_job(str(songs["song"]), str(tmp_path / "x.pkl"), None, **TINY)
    assert J.prepare_job(str(songs["song"]), "CPPN", None, **TINY).style == "default"


def test_bad_audio_is_refused(songs, tmp_path):
    with pytest.raises(lsd_jax.AudioError, match="notes.mp3 is not an audio file"):
        J.prepare_job(str(songs["text"]), **TINY)
    with pytest.raises(lsd_jax.AudioError, match="upload a song"):
        J.prepare_job(None, **TINY)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(lsd_jax.AudioError, match="empty"):
        J.prepare_job(str(tmp_path / "empty.wav"), **TINY)


def test_failed_renders_leave_no_folder_and_finished_ones_are_swept(songs, tmp_path):
    with J.Jobs(AppConfig(), keep=60.0, parent=tmp_path) as jobs:
        job = jobs.prepare(str(songs["silent"]), **TINY)  # valid, but silent: the render refuses it
        with pytest.raises(lsd_jax.AudioError, match="silent"):
            jobs.render(job)
        assert list(jobs.workdirs.root.glob("req-*")) == []
        wd = jobs.workdirs
        d = wd.new()
        (d / "video.mp4").write_bytes(b"x")
        wd.finish(d)
        wd.sweep(now=time.monotonic() + 1)
        assert d.exists()
        wd.sweep(now=time.monotonic() + 61)
        assert not d.exists()
        kept = wd.new()
        wd.finish(kept)
    assert not kept.exists() and not list(tmp_path.iterdir())  # closing removes everything


def test_the_sweeper_runs_until_close(tmp_path):
    jobs = J.Jobs(keep=0.0, parent=tmp_path).start(sweep_interval=0.05)
    d = jobs.workdirs.new()
    jobs.workdirs.finish(d)
    deadline = time.monotonic() + 10
    while d.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not d.exists()
    thread = jobs.workdirs._thread
    jobs.close()
    thread.join(timeout=5)
    assert not thread.is_alive() and not list(tmp_path.iterdir())
