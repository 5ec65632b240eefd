"""The web app: its handlers called directly, then the served page through gradio_client.

Renders are tiny (32-48 px, 3 s, 8-10 fps) so the whole file stays well under two minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pickle
import shutil
import socket
import time
from pathlib import Path

import gradio as gr
import httpx
import numpy as np
import pytest
import soundfile as sf

import lsd_jax
from lsd_jax import webapp
from lsd_jax.demo import write_demo_song
from lsd_jax.params import RenderParams, make_params
from lsd_jax.video import probe_video, read_frames

SR = 22050
TINY = dict(fps=8, resolution=32)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    d = tmp_path_factory.mktemp("songs")
    song = write_demo_song(d / "my song.wav", seconds=3.0)
    drums = d / "drums.wav"
    shutil.copy(song, drums)
    sf.write(d / "silent.wav", np.zeros(SR * 2, np.float32), SR)
    (d / "notes.mp3").write_text("these are my notes, not an mp3\n" * 20)
    sf.write(d / "long.wav", (0.3 * np.sin(np.arange(8000 * 8) * 0.05)).astype(np.float32), 8000, subtype="PCM_16")
    return dict(song=song, drums=drums, silent=d / "silent.wav", text=d / "notes.mp3", long=d / "long.wav")


def _error(excinfo) -> str:
    msg = excinfo.value.message
    assert "Traceback" not in msg
    assert "/" not in msg.replace("/ ", ""), f"a server path leaked: {msg}"
    return msg


# --- the page's parameters ------------------------------------------------------------------------


def test_every_parameter_is_on_the_page_with_help():
    fields = {f.name for f in dataclasses.fields(RenderParams)} - {"custom_effects"}
    # keyframes come from keyframe_times + the uploaded keyframe images
    page = (set(webapp.PARAM_INPUTS) - webapp.PAGE_ONLY) | set(webapp.STEMS) | {"keyframes"}
    assert page == fields and webapp.KEYFRAME_IMAGES in webapp.INPUT_NAMES
    assert len(webapp.INPUT_NAMES) == len(set(webapp.INPUT_NAMES))
    for name in fields:
        assert lsd_jax.params.param_help()[name]
    basic = {"pulse_react", "motion_react", "speed_fpm", "truncation", "contrast_strength", "flash_strength",
             "fps", "resolution", "start", "duration", "seed"}
    assert set(webapp.BASIC_NAMES) == basic
    # the page's defaults are the library's defaults, also as the browser sends them (an empty
    # Number shows and sends 0)
    assert make_params(**webapp.params_from_ui({})) == RenderParams()
    as_sent = {k: (0 if v is None else v) for k, v in webapp.ui_defaults().items()
               if k not in webapp.STEMS and k != webapp.KEYFRAME_IMAGES}
    assert make_params(**webapp.params_from_ui(as_sent)) == RenderParams()


def test_musical_controls_from_the_page():
    kw = webapp.params_from_ui(dict(speed_lock="on the bar", band_react="0.4, 0.2, 0.3", noise_react=1.5,
                                    keyframe_times="10, 42.5", keyframe_images=["/up/a.png", "/up/b.png"]))
    p = make_params(**kw)
    assert p.speed_fpm == "bar" and p.band_react == (0.4, 0.2, 0.3) and p.noise_react == 1.5
    assert p.keyframes == ((10.0, "/up/a.png"), (42.5, "/up/b.png"))
    with pytest.raises(lsd_jax.ParamError, match="one keyframe time per keyframe image"):
        webapp.params_from_ui(dict(keyframe_times="10", keyframe_images=["/up/a.png", "/up/b.png"]))


def test_widget_conventions():
    kw = webapp.params_from_ui(dict(resolution=0, duration=0, contrast_strength=0, contrast_percussive="full mix",
                                    flash_strength=0.25, flash_percussive="percussive part", classes="1, 5,9",
                                    class_shuffle_seconds="0, 12.5", width=None, seed=7.0))
    assert kw["resolution"] is None and kw["duration"] is None
    assert kw["contrast_strength"] is None and kw["contrast_percussive"] is None  # 0: the effect is off
    assert kw["flash_strength"] == 0.25 and kw["flash_percussive"] is True
    assert kw["classes"] == (1, 5, 9) and kw["class_shuffle_seconds"] == (0.0, 12.5)
    assert kw["seed"] == 7 and isinstance(kw["seed"], int)
    assert webapp.params_from_ui(dict(class_shuffle_seconds="4"))["class_shuffle_seconds"] == 4.0
    with pytest.raises(lsd_jax.ParamError, match="classes"):
        webapp.params_from_ui(dict(classes="one, two"))
    with pytest.raises(lsd_jax.ParamError, match="unknown parameter 'pulse_reakt'"):
        webapp.params_from_ui(dict(pulse_reakt=1))


def test_public_message_strips_server_paths():
    msg = webapp.public_message("cannot decode /tmp/gradio/3f2a/my song.mp3 (ffmpeg: /tmp/x/y.mp3: Invalid data)")
    assert msg == "cannot decode my song.mp3 (ffmpeg: y.mp3: Invalid data)"
    assert webapp.public_message("'/home/user/models/face.pkl' is corrupt") == "'face.pkl' is corrupt"
    assert webapp.public_message("pulse_react must be between 0 and 10, got 20") == \
        "pulse_react must be between 0 and 10, got 20"
    assert webapp.public_message("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"


def test_out_of_range_slider_values_name_the_parameter():
    demo = webapp.build_app(webapp.AppConfig())
    slider = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "pulse_react")
    with pytest.raises(gr.Error, match="pulse_react: Value 20 is greater than maximum value 10"):
        slider.preprocess(20)
    assert slider.get_block_name() == "slider"
    assert not Path(webapp.__file__).with_suffix(".pyi").exists()  # no Component subclass: Gradio writes no stub


# --- handlers, called directly ----------------------------------------------------------------------

RENDER_VALUES = dict(fps=10, resolution=48, seed=3, speed_fpm=30, pulse_react=0.8, contrast_strength=0.4,
                     flash_strength=0.3, motion_randomness=0.7, classes="0, 3, 5")


@pytest.fixture(scope="module")
def rendered(songs):
    calls = []
    workdirs = webapp.Workdirs(keep=0.0)
    values = dict(RENDER_VALUES, pulse_audio=str(songs["drums"]))
    raw = []  # the frames render() hands to the encoder, to check the preview bit for bit
    render_module = importlib.import_module("lsd_jax.pipeline")
    real_render_frames = render_module.render_frames

    def spy(*args, **kwargs):
        bound = inspect.signature(real_render_frames).bind(*args, **kwargs)
        sink = bound.arguments["sink"]
        bound.arguments["sink"] = lambda frames: (raw.append(frames.copy()), sink(frames))
        return real_render_frames(*bound.args, **bound.kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render_module, "render_frames", spy)
        video, snippet, status = webapp.render_video(
            str(songs["song"]), "default", None, workdirs=workdirs,
            progress=lambda p, desc=None, unit=None: calls.append(p), **values)
    job = webapp.prepare_job(str(songs["song"]), "default", None, **values)
    yield dict(video=Path(video), snippet=snippet, status=status, calls=calls, job=job, values=values,
               workdirs=workdirs, raw=np.concatenate(raw))
    workdirs.close()


def test_render_gives_an_mp4_and_follows_the_frames(rendered):
    info = probe_video(rendered["video"])
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert (info["width"], info["height"]) == (48, 48)
    n = info["n_frames"]
    assert n == 30
    frame_reports = [c for c in rendered["calls"] if isinstance(c, tuple)]
    assert frame_reports and frame_reports[-1] == (n, n)
    assert all(a <= b for (a, _), (b, _) in zip(frame_reports, frame_reports[1:]))
    assert f"Rendered {n} frames" in rendered["status"]
    assert rendered["video"].name == "my_song.mp4"


def test_snippet_reproduces_the_parameters(rendered, monkeypatch):
    snippet, job = rendered["snippet"], rendered["job"]
    assert "/" not in snippet.replace("# ", "")  # no server paths, only the uploaded files' names
    captured = {}

    def fake_render(song, style=None, output="lsd.mp4", **kwargs):
        captured.update(song=song, style=style, output=output, kwargs=kwargs)
        return Path(output)

    monkeypatch.setattr(lsd_jax, "render", fake_render)
    exec(compile(snippet, "<snippet>", "exec"), {})
    assert captured["song"] == "my song.wav" and captured["style"] == "default"
    assert make_params(**captured["kwargs"]) == job.public_params
    assert job.public_params.pulse_audio == "drums.wav"
    assert job.public_params.replace(pulse_audio=job.params.pulse_audio) == job.params
    assert job.params.classes == (0, 3, 5) and job.params.seed == 3


def test_preview_stills_are_frames_of_the_full_render(rendered, songs):
    items, status = webapp.preview_video(str(songs["song"]), "default", None, **rendered["values"])
    assert len(items) == 6 and "loudest" in status
    job = rendered["job"]
    pv = webapp.preview_job(job, 6)
    decoded = np.stack([f.astype(np.float32) for f in read_frames(rendered["video"])])
    assert [c for _, c in items] == [f"{webapp._clock(t)} · frame {i}" for t, i in zip(pv.times, pv.indices)]
    # bit for bit the frames the full render encoded ...
    assert np.array_equal(np.stack([still for still, _ in items]), rendered["raw"][pv.indices])
    # ... and, decoded from the MP4, equal within H.264's error (luma: yuv420p halves the chroma of
    # this busy 48 px picture), and far from every other frame
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    decoded_y = decoded @ luma
    for (still, _), i in zip(items, pv.indices):
        err = np.abs((still.astype(np.float32) @ luma)[None] - decoded_y).mean(axis=(1, 2))
        assert err[i] < 8.0, (i, err[i])
        assert int(np.argmin(err)) == i and np.sort(err)[1] > 3 * err[i], (i, np.sort(err)[:3])
    # the stills sit on the song's loudest moments and are spread out
    assert len(set(pv.indices.tolist())) == 6 and np.all(np.diff(pv.indices) >= 30 // 12)


def test_loudest_frames():
    pulse = np.zeros(100)
    pulse[[10, 11, 12, 50, 90]] = [1.0, 0.99, 0.98, 0.7, 0.5]
    assert webapp.loudest_frames(pulse, 3).tolist() == [10, 50, 90]
    assert webapp.loudest_frames(np.ones(4), 6).tolist() == [0, 1, 2, 3]


def test_bad_audio_is_a_clear_error(songs):
    with pytest.raises(gr.Error) as e:
        webapp.render_video(str(songs["text"]), **TINY)
    msg = _error(e)
    assert "notes.mp3" in msg and "not an audio file" in msg
    with pytest.raises(gr.Error) as e:
        webapp.render_video(None, **TINY)
    assert "upload a song" in _error(e)


def test_silence_is_a_clear_error(songs):
    with pytest.raises(gr.Error) as e:
        webapp.preview_video(str(songs["silent"]), **TINY)
    msg = _error(e)
    assert "silent" in msg and "silent.wav" in msg


def test_too_long_a_song_is_refused_before_any_work(songs):
    cfg = webapp.AppConfig(max_seconds=5)
    with pytest.raises(gr.Error) as e:
        webapp.render_video(str(songs["long"]), cfg=cfg, **TINY)
    msg = _error(e)
    assert "8 s long" in msg and "at most 5 s" in msg and "start and duration" in msg
    job = webapp.prepare_job(str(songs["long"]), cfg=cfg, start=2, duration=4, **TINY)  # an excerpt fits
    assert (job.params.start, job.params.duration) == (2.0, 4.0)
    with pytest.raises(gr.Error) as e:
        webapp.render_video(str(songs["long"]), cfg=cfg, start=9, **TINY)
    assert "beyond the end" in _error(e)


@pytest.mark.parametrize("values, match", [
    (dict(pulse_react=20), "pulse_react must be between 0 and 10"),
    (dict(truncation=1.5), "truncation must be between 0 and 1"),
    (dict(resolution=34, width=33, height=20), "width must be even"),
    (dict(resolution=2048), "above this server's limit of 1024"),
    (dict(width=64), "give both width and height"),
    (dict(classes="a,b"), "classes must be comma-separated"),
])
def test_out_of_range_values_are_clear_errors(songs, values, match):
    with pytest.raises(gr.Error, match=match) as e:
        webapp.render_video(str(songs["song"]), **{**TINY, **values})
    _error(e)


def test_bad_styles_are_clear_errors_and_nothing_runs(songs, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Evil()))
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"\x80\x04 this is not a network pickle")
    for path, match in ((evil, "refusing to load"), (broken, "broken.pkl")):
        with pytest.raises(gr.Error, match=match) as e:
            webapp.preview_video(str(songs["song"]), "default", str(path), **TINY)
        _error(e)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(gr.Error, match="style file must be an NVIDIA StyleGAN .pkl") as e:
        webapp.preview_video(str(songs["song"]), "default", str(songs["text"]), **TINY)
    # a style name is a name from the list, never a path on the server
    with pytest.raises(gr.Error, match="unknown style") as e:
        webapp.preview_video(str(songs["song"]), str(evil), None, **TINY)
    _error(e)


def test_failed_requests_leave_no_temp_folder_and_finished_ones_are_swept(songs, tmp_path):
    wd = webapp.Workdirs(keep=60.0, parent=tmp_path)
    with pytest.raises(gr.Error):
        webapp.render_video(str(songs["silent"]), workdirs=wd, **TINY)
    assert list(wd.root.iterdir()) == []
    d = wd.new()
    (d / "video.mp4").write_bytes(b"x")
    wd.finish(d)
    wd.sweep(now=time.monotonic() + 1)
    assert d.exists()
    wd.sweep(now=time.monotonic() + 61)
    assert not d.exists()
    wd.close()
    assert not list(tmp_path.iterdir())


def test_config_from_env():
    cfg = webapp.AppConfig.from_env({"LSD_JAX_MAX_SECONDS": "90", "LSD_JAX_MAX_FILE_SIZE": "5mb",
                                     "LSD_JAX_CONCURRENCY": "2"})
    assert (cfg.max_seconds, cfg.max_file_size, cfg.concurrency) == (90.0, "5mb", 2)
    with pytest.raises(SystemExit, match="LSD_JAX_MAX_SECONDS"):
        webapp.AppConfig.from_env({"LSD_JAX_MAX_SECONDS": "ten"})


# --- the served app, through gradio_client ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cfg = webapp.AppConfig(max_seconds=6, max_file_size="300kb", concurrency=1)
    workdirs = webapp.Workdirs(keep=0.0)
    demo = webapp.build_app(cfg, workdirs)
    port = free_port()
    webapp.launch(demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                  ssr_mode=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    workdirs.close()


def test_api_render_then_error_then_still_serving(served, songs, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(served, verbose=False, download_files=str(tmp_path))
    api = client.view_api(print_info=False, return_format="dict")
    assert {"/render", "/preview"} <= set(api["named_endpoints"])

    video, snippet, status = client.predict(handle_file(str(songs["song"])), fps=8, resolution=32, seed=1,
                                            api_name="/render")
    path = Path(video["video"] if isinstance(video, dict) else video)
    info = probe_video(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert (info["width"], info["height"]) == (32, 32) and info["n_frames"] == 24
    assert "lsd_jax.render(" in snippet and "seed=1" in snippet and "'my song.wav'" in snippet

    with pytest.raises(AppError, match="not an audio file"):
        client.predict(handle_file(str(songs["text"])), fps=8, resolution=32, api_name="/render")
    with pytest.raises(AppError, match="at most 6 s"):
        client.predict(handle_file(str(songs["long"])), fps=8, resolution=32, api_name="/render")
    with pytest.raises(AppError, match="pulse_react"):
        client.predict(handle_file(str(songs["song"])), fps=8, resolution=32, pulse_react=50, api_name="/render")
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(SR * 10, np.float32), SR)  # ~880 kB > 300 kB
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # the client reads the limit ...
        client.predict(handle_file(str(big)), fps=8, resolution=32, api_name="/render")
    with big.open("rb") as f:  # ... which the server enforces
        r = httpx.post(served + "gradio_api/upload", files={"files": ("big.wav", f, "audio/wav")}, timeout=30)
    assert r.status_code == 413, r.text

    # still serving
    stills, status = client.predict(handle_file(str(songs["song"])), fps=8, resolution=32, seed=1,
                                    api_name="/preview")
    assert len(stills) == 6 and "loudest" in status
