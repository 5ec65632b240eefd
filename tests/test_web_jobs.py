"""The app's work without Gradio: requests validated into jobs, previews, renders, per-request folders.

Renders are tiny (48 px, 3 s, 10 fps) so the file stays well under a minute on 2 cores.
"""

from __future__ import annotations

import base64
import functools
import importlib
import inspect
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from app_songs import slow_batches, write_songs

import lsd_jax
from lsd_jax.engine.preview import loudest_frames
from lsd_jax.media.video import probe_video, read_frames
from lsd_jax.params import make_params
from lsd_jax.web import jobs as J
from lsd_jax.web import playback as L
from lsd_jax.web.config import AppConfig
from lsd_jax.web.speed import SpeedBook, estimate_text, speed_key

TINY = dict(fps=8, resolution=32)
RENDER_VALUES = dict(
    fps=10,
    resolution=48,
    seed=3,
    speed_fpm=30,
    pulse_react=0.8,
    contrast_strength=0.4,
    flash_strength=0.3,
    motion_randomness=0.7,
    classes="0, 3, 5",
)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    return write_songs(tmp_path_factory.mktemp("songs"))


@pytest.fixture(scope="module")
def rendered(songs):
    calls = []
    values = dict(RENDER_VALUES, pulse_audio=str(songs["drums"]))
    raw = []  # the frames render() hands to the encoder, to check the preview bit for bit
    render_module = importlib.import_module("lsd_jax.engine.pipeline")
    real_render_frames = render_module.render_frames

    @functools.wraps(real_render_frames)
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert loudest_frames(pulse, 3).tolist() == [10, 50, 90]
    assert loudest_frames(np.ones(4), 6).tolist() == [0, 1, 2, 3]


def test_too_long_a_song_is_refused_before_any_work(songs):
    cfg = AppConfig(max_seconds=5)
    with pytest.raises(lsd_jax.AudioError) as e:
        J.prepare_job(str(songs["long"]), cfg=cfg, **TINY)
    assert "8 s long" in str(e.value) and "at most 5 s" in str(e.value) and "start and duration" in str(e.value)
    job = J.prepare_job(str(songs["long"]), cfg=cfg, start=2, duration=4, **TINY)  # an excerpt fits
    assert (job.params.start, job.params.duration) == (2.0, 4.0)
    with pytest.raises(lsd_jax.AudioError, match="beyond the end"):
        J.prepare_job(str(songs["long"]), cfg=cfg, start=9, **TINY)


@pytest.mark.parametrize(
    "values, error, match",
    [
        (dict(resolution=2048), lsd_jax.ParamError, "resolution=2048 is above this server's limit of 1024"),
        (dict(fps=120), lsd_jax.ParamError, "fps=120 is above this server's limit of 60"),
        (dict(fps=500), lsd_jax.ParamError, "fps=500 is above this server's limit of 60"),  # not the table's 240
        (dict(width=64), lsd_jax.ParamError, "give both width and height"),
    ],
)
def test_server_limits(songs, values, error, match):
    with pytest.raises(error, match=match):
        J.prepare_job(str(songs["song"]), **{**TINY, **values})


def test_styles_are_names_from_the_list_or_uploaded_files(songs, tmp_path, monkeypatch):
    from lsd_jax.web.door import NOT_RECEIVED

    for style, style_file in ((str(tmp_path / "x.pkl"), None), ("default", str(songs["text"]))):
        with pytest.raises(lsd_jax.StyleError) as e:  # never a path on the server, whatever it holds
            J.prepare_job(str(songs["song"]), style, style_file, **TINY)
        assert str(e.value) == NOT_RECEIVED
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(songs["text"].parent))  # as if the visitor had uploaded it
    with pytest.raises(lsd_jax.StyleError, match="style file must be an NVIDIA StyleGAN .pkl"):
        J.prepare_job(str(songs["song"]), "default", str(songs["text"]), **TINY)
    with pytest.raises(lsd_jax.StyleError, match="unknown style"):
        J.prepare_job(str(songs["song"]), "no such style", None, **TINY)
    assert J.prepare_job(str(songs["song"]), "CPPN", None, **TINY).style == "default"


def test_bad_audio_is_refused(songs, tmp_path):
    with pytest.raises(lsd_jax.AudioError, match=r"notes\.mp3.*not an audio file"):
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


# --- visitors' runs: cancel, one per session, live copy, speed ----------------------------------------


def _wait(pred, timeout=300.0, step=0.01):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)


@pytest.mark.slow
@pytest.mark.timing
def test_a_cancelled_render_stops_mid_way_and_leaves_nothing(songs, tmp_path):
    with J.Jobs(keep=0.0, parent=tmp_path) as jobs, slow_batches(0.15):
        job = jobs.prepare(str(songs["long"]), fps=20, resolution=32, batch_size=4, duration=5)  # 100 frames
        run = jobs.start_run("render", job, session="a")
        _wait(lambda: run.frames[0] >= 8 or run.finished())
        assert run.error is None and not run.finished()
        with pytest.raises(J.Busy, match="still running"):  # one job per visitor
            jobs.start_run("render", job, session="a")
        t0 = time.monotonic()
        assert jobs.cancel("a") == 1
        assert run.wait(30)
        stopped = time.monotonic() - t0
        # the frame count says it stopped mid-way; the time bound is generous (a 0.15 s batch, but a loaded machine
        # may take seconds more): only a cancel that waited for the whole render (25 batches) could fail both
        assert stopped < 10.0 and isinstance(run.error, J.JobCancelled) and run.frames[0] < 100
        assert list(jobs.workdirs.root.glob("req-*")) == [] and not list(tmp_path.rglob("*.part"))
        again = jobs.start_run("render", jobs.prepare(str(songs["song"]), **TINY), session="a")  # not busy now
        assert again.wait(120) and again.error is None and probe_video(again.result)["n_frames"] == 24
        assert jobs.cancel("a") == 0  # a finished render is not "cancelled" afterwards


@pytest.mark.slow
def test_a_cancel_before_the_booked_job_starts_refuses_that_job(songs, tmp_path):
    """Issue 28: a Cancel between the click (the page's booking) and the handler's start_run found no run to stop;
    the run then started and rendered on with nobody to stop it. The booking remembers the Cancel now."""
    with J.Jobs(keep=0.0, parent=tmp_path) as jobs:
        job = jobs.prepare(str(songs["song"]), **TINY)
        assert jobs.reserve("p") and not jobs.reserve("p")  # a double-click books one job
        assert jobs.cancel("p") == 1  # the page says "Cancelled"
        with pytest.raises(J.JobCancelled, match="render cancelled"):
            jobs.start_run("render", job, session="p")
        assert jobs._runs == [] and jobs.cancel("p") == 0
        assert jobs.reserve("p")  # the next click is a new job
        run = jobs.start_run("render", job, session="p")
        assert run.wait(120) and run.error is None
        jobs.release("p")
        assert jobs.start_run("render", job, session="q").wait(120)  # a session that never booked is not refused


@pytest.mark.slow
def test_cancel_counts_a_run_its_handler_stopped_a_moment_before(songs, tmp_path):
    """A Cancel click makes Gradio close the run's handler (which cancels the run) and call the page's cancel:
    in either order, the page is told that a job was cancelled."""
    with J.Jobs(keep=0.0, parent=tmp_path) as jobs, slow_batches(0.15):
        run = jobs.start_run(
            "render", jobs.prepare(str(songs["long"]), fps=20, resolution=32, batch_size=4, duration=5), session="b"
        )
        _wait(lambda: run.frames[0] >= 4 or run.finished())
        run.cancel()  # the handler's generator closed first
        assert run.wait(10) and isinstance(run.error, J.JobCancelled)
        assert jobs.cancel("b") == 1
        assert jobs.cancel("someone else") == 0


@pytest.mark.slow
def test_a_live_copy_streams_while_the_render_runs(songs, tmp_path):
    with J.Jobs(keep=60.0, parent=tmp_path) as jobs, slow_batches(0.1):
        job = jobs.prepare(str(songs["long"]), fps=20, resolution=48, batch_size=4, seed=4)  # 160 frames
        assert jobs.live.chunk("no such token", 0) == {"data": "", "done": True}
        token = jobs.live.open("s")
        assert jobs.live.chunk(token, 0) == {"data": "", "done": False}  # waiting for a render
        run = jobs.start_run("render", job, session="s")
        got, first_at, codecs = bytearray(), None, None
        while True:
            r = jobs.live.chunk(token, len(got))
            if r["data"]:
                if not got:
                    first_at, codecs = run.frames[0], r["codecs"]
                got += base64.b64decode(r["data"])
            if r["done"]:
                break
            time.sleep(0.05)
        assert run.error is None and first_at is not None and first_at <= 120  # bytes came 2 s before the end
        assert codecs.startswith("avc1.64") and codecs.endswith("mp4a.40.2")
        assert L.init_segment(bytes(got)) > 0 and bytes(got) == run.live.read_bytes()
        live = tmp_path / "live.mp4"
        live.write_bytes(got)
        a, b = _decoded(live, 48), _decoded(run.result, 48)
        assert a.shape == b.shape == (160, 48, 48, 3) and np.array_equal(a, b)  # the same encoded frames


def _decoded(path, size):
    """Every coded frame of the video, once (the live copy has no edit list, so its first frame may start a
    frame late; a constant-rate decode would repeat it)."""
    from lsd_jax.media.video import run_ffmpeg

    res = run_ffmpeg(
        ["-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return np.frombuffer(res.stdout, np.uint8).reshape(-1, size, size, 3)


@pytest.mark.slow
def test_the_snippet_reproduces_the_page_s_mp4_byte_for_byte(songs, tmp_path):
    """What the page renders (with its live copy) is the very MP4 that the snippet's lsd_jax.render makes."""
    with J.Jobs(keep=60.0, parent=tmp_path / "app") as jobs:
        values = dict(RENDER_VALUES, fps=12, pulse_audio=str(songs["drums"]))
        job = jobs.prepare(str(songs["song"]), **values)
        jobs.live.open("s")
        run = jobs.start_run("render", job, session="s")
        assert run.wait(300) and run.error is None and run.live is not None and run.live.is_file()
        here = tmp_path / "user"
        here.mkdir()
        for name in ("song", "drums"):
            shutil.copy(songs[name], here / songs[name].name)
        code = J.python_snippet(job)
        res = subprocess.run(
            [sys.executable, "-c", code],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYTHONPATH": str(Path(lsd_jax.__file__).parent.parent)},
        )
        assert res.returncode == 0, res.stderr[-3000:]
        assert (here / J.output_name(job)).read_bytes() == Path(run.result).read_bytes()


@pytest.mark.slow
def test_preview_and_render_record_this_server_s_speed(songs, tmp_path):
    with J.Jobs(keep=0.0, parent=tmp_path) as jobs:
        job = jobs.prepare(str(songs["song"]), fps=10, resolution=64, batch_size=8)  # 4 batches
        key = speed_key(job.style, job.params)
        est = jobs.estimate(job)  # the default style is measured at first use
        known = jobs.speeds.get(key)
        assert known.source == "calibration" and known.frames_per_s > 0
        assert est.n_frames == job.n_frames == 30 and est.seconds > 0 and est.compiled
        t0 = time.perf_counter()
        jobs.render(job)
        took = time.perf_counter() - t0
        assert jobs.speeds.get(key).source == "render"
        # of the right size: both measured here a moment apart (a loaded machine slows both), within 5x + 2 s
        assert took < est.seconds * 5 + 2 and est.seconds < took * 5 + 2, (est, took)
        other = jobs.prepare(str(songs["song"]), fps=10, resolution=48, contrast_strength=0.5)
        assert jobs.speeds.get(speed_key(other.style, other.params)) is None
        jobs.preview(other)  # a preview measures its style and size too
        assert jobs.speeds.get(speed_key(other.style, other.params)).source == "preview"


def test_speed_book_and_estimate_text():
    book = SpeedBook()
    assert book.estimate("k", 30.0, 43).seconds is None
    text = estimate_text(book.estimate("k", 30.0, 43), 30.0, 43)
    assert "not measured yet" in text and "1290 frames" in text
    book.record("k", 20.0, 3.0, "calibration")
    book.record_preparation(1.0, 10.0)  # one job: 1 s, whatever its length (no slope from one sample)
    e = book.estimate("k", 30.0, 43)
    assert e.n_frames == 1290 and math.isclose(e.seconds, 1.0 + 1290 / 20 + 0)  # compiled once measured
    book.record("k", 10.0, None, "render")
    book.record("k", 40.0, 0.0, "calibration")  # a calibration does not replace a whole render's speed
    assert book.get("k").frames_per_s == 10.0 and book.get("k").compile_s == 3.0
    assert (
        "about 2 min 15 s** for 30 s of music at 43 fps: 1 s preparing + 1290 frames at 10.0 frames/s (2 min 9 s)"
        in (estimate_text(book.estimate("k", 30.0, 43), 30.0, 43))
    )
    book.record_preparation(10.0, 1.0, "calibration")  # a short synthetic song does not replace a job's
    assert book.estimate("k", 30.0, 43).seconds == pytest.approx(1.0 + 129.0)


def test_folders_of_dead_app_processes_are_swept_at_start(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / (J.ROOT_PREFIX + "old")
    (stale / "req-x").mkdir(parents=True)
    (stale / J.OWNER_FILE).write_text(str(dead.pid))
    alive = tmp_path / (J.ROOT_PREFIX + "other")
    alive.mkdir()
    (alive / J.OWNER_FILE).write_text(str(os.getppid()))  # another live app's
    with J.Jobs(keep=0.0, parent=tmp_path).start() as jobs:
        assert not stale.exists() and alive.exists()
        assert (jobs.workdirs.root / J.OWNER_FILE).read_text() == str(os.getpid())


def test_a_style_this_server_cannot_download_is_a_clear_error(songs, tmp_path, monkeypatch):
    import json

    from lsd_jax.store.catalogue import USER_STYLES_ENV

    path = tmp_path / "user_styles.json"
    path.write_text(json.dumps({"schema": 1, "styles": [{"name": "far away", "urls": ["ftp://example.org/x.pkl"]}]}))
    monkeypatch.setenv(USER_STYLES_ENV, str(path))
    with pytest.raises(
        lsd_jax.StyleError,
        match="'far away' cannot be used on this server .*cannot download from example.org.*upload it",
    ):
        J.prepare_job(str(songs["song"]), "far away", None, **TINY)


# --------------------------------------------------------------------------------------------------
# A public server's limits (issue 18): each bad request in a child process under an address-space limit, then a
# normal render in the same process, so a regression fails the test instead of taking the machine down.

BOUNDED_MB = 4096  # JAX alone reserves ~1.5 GB of address space


def _bounded_requests(tmp_path, items, max_seconds=600.0, timeout=240.0):
    import hostile

    report = hostile.run_bounded(
        "bounded_app:requests", items, str(tmp_path), max_seconds, memory_mb=BOUNDED_MB, timeout=timeout
    )
    assert report["error"] is None, report  # the child itself carried on
    return report["value"]


@pytest.mark.slow
def test_resource_bomb_uploads_are_clear_errors_and_the_next_render_works(songs, tmp_path, monkeypatch):
    """Uploaded .pkl files are converted in a separate, limited process: each bomb is a clear error naming the
    upload (not its folder), quickly; a normal upload and the default style render right after."""
    import hostile
    import nvidia_pickles as nv

    uploads = tmp_path / "upload dir with spaces"
    uploads.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))  # the files the app received (the child inherits it)
    bombs = {
        "keys.pkl": hostile.key_bomb("dict-key", 80),
        "tree.pkl": hostile.shared_module_tree(40),
        "same.pkl": hostile.many_references(3000, 1 << 18, "same"),
        "views.pkl": hostile.many_references(2000, 1 << 19, "views"),
        "memo.pkl": hostile.memo_bomb(1 << 31),
    }
    for name, data in bombs.items():
        (uploads / name).write_bytes(data)
    config, state, _ = hostile.small_generator()
    good = nv.write_torch_pickle(uploads / "good.pkl", config, state)
    song = str(songs["song"])
    items = [{"song": song, "style_file": str(uploads / name), "values": TINY} for name in bombs]
    items += [{"song": song, "style_file": str(good), "values": TINY}, {"song": song, "values": TINY}]
    got = _bounded_requests(tmp_path, items)
    for name, result in zip(bombs, got):
        assert "LsdError" in result["mro"] and result["error"] in ("ConversionError", "PickleSecurityError"), result
        assert f"'{name}'" in result["message"] and "upload dir" not in result["message"], result
        assert result["seconds"] < 30, result  # refused, not worked through (generous, for a loaded machine)
    assert [r["frames"] for r in got[-2:]] == [24, 24], got[-2:]  # 3 s at 8 fps, each


@pytest.mark.slow
def test_a_batch_too_large_for_memory_is_refused_before_compiling(songs, tmp_path):
    """At 1024x1024 a batch of 4096 frames needs terabytes: a clear error naming a batch that fits, from the app and
    the library alike, instead of XLA aborting the process; the next render works."""
    song = str(songs["song"])
    huge = dict(TINY, resolution=1024, batch_size=4096)
    got = _bounded_requests(
        tmp_path,
        [
            {"song": song, "values": huge},
            {"via": "library", "song": song, "values": huge},
            {"song": song, "values": TINY},
        ],
    )
    for result in got[:2]:
        assert result["error"] == "ParamError", result
        assert "batch_size=4096 at 1024x1024 needs about" in result["message"], result
        assert "under this process's address-space limit: use batch_size=" in result["message"], result
        assert result["seconds"] < 30, result  # refused, not worked through (generous, for a loaded machine)
    assert got[2]["frames"] == 24, got[2]


def test_the_duration_limit_holds_on_the_audio_decoded(tmp_path, monkeypatch):
    """A song whose header says 1 s but that decodes to 13 s, on a server limited to 5 s: the request passes the
    header check, then the preview and the render refuse it (on what is decoded); a normal render works after."""
    import soundfile as sf

    from lsd_jax.errors import AudioError
    from lsd_jax.media import decode

    t = np.arange(22050 * 12) / 22050
    first, rest = tmp_path / "a.mp3", tmp_path / "b.mp3"
    sf.write(first, (0.3 * np.sin(2 * np.pi * 440 * t[:22050])).astype(np.float32), 22050)
    sf.write(rest, (0.3 * np.sin(2 * np.pi * 660 * t) * (1 + np.sin(3 * t))).astype(np.float32), 22050)
    song = tmp_path / "lying.mp3"
    song.write_bytes(first.read_bytes() + rest.read_bytes())

    def unreadable(*args, **kwargs):  # decoded by ffmpeg, as an .m4a would be: all 13 s of it
        raise RuntimeError("libsndfile cannot read it")

    monkeypatch.setattr(decode, "_read_soundfile", unreadable)
    with J.Jobs(AppConfig(max_seconds=5.0, warm_up=False), keep=0.0, parent=tmp_path) as jobs:
        job = jobs.prepare(str(song), "default", None, **TINY)
        assert job.seconds < 1.5 and job.max_seconds == 5.0  # the header's claim got past the first check
        for run in (jobs.preview, jobs.render):
            with pytest.raises(AudioError, match=r"lying\.mp3 holds more than 5 s of audio"):
                run(job)
        ok = jobs.prepare(str(song), "default", None, **dict(TINY, duration=2.0))
        assert probe_video(jobs.render(ok))["n_frames"] == 16


@pytest.mark.slow
def test_uploads_and_catalogue_files_are_converted_in_the_sandbox(songs, tmp_path, monkeypatch):
    """With the loader's own limits off, what stops a bomb is the separate process's: its time limit (a hang) and
    its address-space limit, so the uploads (and a catalogue style's downloaded file: the catalogue's links are
    third-party files) are converted there and this process carries on."""
    import json

    import hostile
    from test_sandbox import NO_LIMITS

    from lsd_jax.errors import ConversionError
    from lsd_jax.store import sandbox
    from lsd_jax.store.catalogue import USER_STYLES_ENV, install_style_file

    monkeypatch.setattr(
        sandbox,
        "convert_isolated",
        functools.partial(sandbox.convert_isolated, timeout=2, memory_bytes=768 << 20, limits=NO_LIMITS),
    )
    (tmp_path / "hang.pkl").write_bytes(hostile.key_bomb("dict-key", 80))
    (tmp_path / "memo.pkl").write_bytes(hostile.memo_bomb(1 << 31))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # uploads: the files the app received
    with J.Jobs(keep=0.0, parent=tmp_path) as jobs:
        for name, match in (("hang.pkl", "took longer than 2 s and was stopped"), ("memo.pkl", "memory")):
            job = jobs.prepare(str(songs["song"]), "default", str(tmp_path / name), **TINY)
            t = time.monotonic()
            with pytest.raises(ConversionError, match=match):
                jobs.render(job)
            assert time.monotonic() - t < 15  # the sandbox's 2 s limit and its kill (generous, for a loaded machine)
        catalogue = tmp_path / "user_styles.json"
        catalogue.write_text(
            json.dumps({"schema": 1, "styles": [{"name": "far hang", "urls": ["https://example.org/hang.pkl"]}]})
        )
        monkeypatch.setenv(USER_STYLES_ENV, str(catalogue))
        install_style_file("far hang", tmp_path / "hang.pkl", progress=False)  # as if downloaded
        job = jobs.prepare(str(songs["song"]), "far hang", None, **TINY)
        with pytest.raises(ConversionError, match="took longer than 2 s and was stopped"):
            jobs.preview(job)
        assert probe_video(jobs.render(jobs.prepare(str(songs["song"]), "default", None, **TINY)))["n_frames"] == 24


def test_format_checkboxes_make_one_file_of_an_aspect_or_several_within_the_limits(songs):
    """Issue 22: none ticked leaves the job as it was; one sets width and height (one file of that aspect);
    several keep one job whose files share the shorter side, every file within the server's size limit."""
    song = str(songs["song"])
    plain = J.prepare_job(song, **TINY)
    assert plain.formats == () and plain.params == J.prepare_job(song, formats=[], **TINY).params
    assert plain.file_params() == [plain.params] and plain.total_frames == plain.n_frames
    one = J.prepare_job(song, formats=["9:16"], **TINY)
    assert one.formats == () and (one.params.width, one.params.height) == (32, 56)
    assert "render(" in J.python_snippet(one) and "height=56" in J.python_snippet(one)
    several = J.prepare_job(song, formats=["1:1", "16:9"], **TINY)  # the page's order, whatever the ticks'
    assert several.formats == ("16:9", "1:1") and several.params.resolution == 32
    assert several.sizes == [(32, 56), (32, 32)] and several.total_frames == 2 * several.n_frames
    assert [(p.height, p.width) for p in several.file_params()] == several.sizes
    assert not J.wants_live_copy(several)
    snippet = J.python_snippet(several)
    assert "lsd_jax.render_formats(" in snippet and "formats=['16:9', '1:1']," in snippet
    # resolution unset: the largest shorter side (at most 1080) that keeps each file within the limit
    cfg = AppConfig(max_resolution=64)
    auto = J.prepare_job(song, cfg=cfg, fps=8, formats=["16:9", "9:16", "1:1"])
    assert auto.params.resolution == 36 and max(max(s) for s in auto.sizes) <= 64
    assert J.prepare_job(song, fps=8, formats=["16:9", "1:1"]).params.resolution == 576  # 1024-px default limit


@pytest.mark.parametrize(
    "values, match",
    [
        (
            dict(resolution=48, formats=["16:9", "1:1"]),
            "formats: 16:9 at resolution 48 is 86×48, above .* 64 pixels; choose resolution 36 or less",
        ),
        (dict(resolution=48, formats=["9:16"]), "formats: 9:16 at resolution 48 is 48×86"),
        (dict(width=64, height=32, formats=["16:9", "1:1"]), "formats: tick formats or give width and height"),
        (dict(resolution=32, formats=["4:3"]), "formats: '4:3' is not one of 16:9, 9:16, 1:1"),
    ],
)
def test_format_combinations_above_the_limits_are_refused_at_the_formats_field(songs, values, match):
    with pytest.raises(lsd_jax.ParamError, match=match):
        J.prepare_job(str(songs["song"]), cfg=AppConfig(max_resolution=64), fps=8, **values)


def test_several_formats_are_no_more_work_than_the_largest_single_render(songs):
    # 8 s of music: one 64×64 video fits the limits; 16:9 + 9:16 + 1:1 at 36 px is 1.44× its pixels, 16:9 + 1:1 0.88×
    cfg = AppConfig(max_resolution=64, max_seconds=8)
    J.prepare_job(str(songs["long"]), cfg=cfg, fps=8, resolution=64)
    with pytest.raises(lsd_jax.ParamError, match=r"formats: 3 files of 8 s at these sizes are more work"):
        J.prepare_job(str(songs["long"]), cfg=cfg, fps=8, formats=["16:9", "9:16", "1:1"])
    assert J.prepare_job(str(songs["long"]), cfg=cfg, fps=8, formats=["16:9", "1:1"]).formats == ("16:9", "1:1")


def test_a_several_formats_estimate_adds_the_files_and_prepares_once():
    book = SpeedBook()
    book.record_preparation(2.0, 10.0)
    params = [make_params(width=w, height=h, fps=10) for w, h in ((64, 36), (36, 36))]
    for p, fps in zip(params, (50.0, 100.0), strict=True):
        book.record(speed_key("default", p), fps, None, "calibration")
    ests = [book.estimate(speed_key("default", p), 10.0, 10) for p in params]
    both = book.combine(ests, 10.0)
    assert both.n_frames == 200 and both.seconds == pytest.approx(2.0 + 100 / 50 + 100 / 100)
    assert both.frames_per_s == pytest.approx(200 / 3)
    assert book.combine(ests[:1], 10.0) == ests[0]
    unknown = book.estimate(speed_key("default", make_params(resolution=16)), 10.0, 10)
    assert book.combine([ests[0], unknown], 10.0).seconds is None
