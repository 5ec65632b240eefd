"""The page: handlers called directly (errors as clear ``gr.Error``s), then the served app through
gradio_client. Renders are tiny (32 px, 3 s, 8 fps)."""

from __future__ import annotations

import os
import pickle
import re
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import pytest
import soundfile as sf
from app_songs import SR, slow_batches, write_songs
from conftest import free_port

from lsd_jax.media.video import probe_video
from lsd_jax.web import page
from lsd_jax.web.config import AppConfig
from lsd_jax.web.form import INPUT_NAMES, ui_defaults
from lsd_jax.web.jobs import JobCancelled, Jobs

TINY = dict(fps=8, resolution=32)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    return write_songs(tmp_path_factory.mktemp("songs"))


@pytest.fixture(scope="module")
def jobs():
    with Jobs(AppConfig(), keep=0.0) as j:
        yield j


def _error(excinfo) -> str:
    msg = excinfo.value.message
    assert "Traceback" not in msg
    assert "/" not in msg.replace("/ ", ""), f"a server path leaked: {msg}"
    return msg


def test_public_message_strips_server_paths():
    msg = page.public_message("cannot decode /tmp/gradio/3f2a/my song.mp3 (ffmpeg: /tmp/x/y.mp3: Invalid data)")
    assert msg == "cannot decode my song.mp3 (ffmpeg: y.mp3: Invalid data)"
    assert page.public_message("'/home/user/models/face.pkl' is corrupt") == "'face.pkl' is corrupt"
    assert (
        page.public_message("pulse_react must be between 0 and 10, got 20")
        == "pulse_react must be between 0 and 10, got 20"
    )
    assert page.public_message("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"


def test_public_message_strips_folders_with_spaces(monkeypatch, tmp_path):
    """Issue 18: a folder whose name holds a space used to leave the rest of the path in the message."""
    uploads = tmp_path / "my uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    f = f"{uploads}/0a1b2c/my song.mp3"
    assert (
        page.public_message(f"cannot decode {f} (ffmpeg: {f}: Invalid data)")
        == "cannot decode my song.mp3 (ffmpeg: my song.mp3: Invalid data)"
    )
    assert page.public_message(f"no room in {uploads}: disk full") == "no room in …: disk full"
    # folders the server does not know about: a name with spaces is a folder when a "/" follows it
    assert page.public_message("'/srv/my app/x y/face.pkl' is corrupt") == "'face.pkl' is corrupt"
    assert page.public_message("cannot read /home/a b/c d/x.wav: bad") == "cannot read x.wav: bad"
    assert (
        page.public_message("the output /a b/clip.mp4 is the input /a b/clip.mp4")
        == "the output clip.mp4 is the input clip.mp4"
    )
    assert page.public_message("choose 1/2 of it, and/or less") == "choose 1/2 of it, and/or less"


def test_no_server_path_in_errors_when_the_upload_folder_has_a_space(monkeypatch, tmp_path, jobs):
    import hostile
    import nvidia_pickles as nv

    from lsd_jax.errors import StyleError

    uploads = tmp_path / "gradio uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    folder = uploads / "9f8e7d"
    folder.mkdir(parents=True)
    text = folder / "my notes.mp3"
    text.write_text("these are notes\n" * 40)
    (folder / "my song.wav").write_bytes(b"")
    for song in (text, folder / "my song.wav"):
        with pytest.raises(gr.Error) as e:
            page.render_video(jobs, str(song), "default", None, **TINY)
        assert "uploads" not in _error(e) and "9f8e7d" not in e.value.message, e.value.message
    # an upload gone by the time its job runs (Gradio's cache cleaned it): the door names the file only
    song = write_songs(uploads / "a1b2")["song"]
    config, state, _ = hostile.small_generator()
    model = nv.write_torch_pickle(folder / "my model.pkl", config, state)
    job = jobs.prepare(str(song), "default", str(model), **TINY)
    model.unlink()
    with pytest.raises(StyleError, match="style file not found: my model.pkl") as raw:
        jobs.render(job)
    assert str(folder) not in str(raw.value)
    msg = page.user_error(raw.value).message
    assert "my model.pkl" in msg and "uploads" not in msg and "9f8e7d" not in msg and "/" not in msg, msg


def test_unexpected_errors_are_generic_and_logged(caplog):
    e = page.user_error(RuntimeError("secret /srv/app/state"))
    assert e.title == "Internal error" and "secret" not in e.message
    assert "secret /srv/app/state" in caplog.text
    assert page.user_error(MemoryError()).title == "Out of memory"


def test_render_handler_reports_frames_and_a_snippet(songs, jobs):
    calls = []
    video, snippet, status, files = page.render_video(
        jobs,
        str(songs["song"]),
        "default",
        None,
        seed=2,
        progress=lambda p, desc=None, unit=None: calls.append((p, desc, unit)),
        **TINY,
    )
    info = probe_video(video)
    assert (info["width"], info["n_frames"], info["audio_streams"]) == (32, 24, 1)
    assert calls[0] == (None, "Checking the request", None) and calls[-1] == ((24, 24), "Rendered 24 frames", "frames")
    assert "Rendered 24 frames at 8 fps" in status
    assert "lsd_jax.render(" in snippet and "seed=2," in snippet
    assert files is None  # no format ticked: one video


@pytest.mark.slow
def test_several_formats_render_one_file_each_and_the_player_shows_the_first(songs, jobs):
    """Issue 22: ticking 16:9 and 1:1 renders both from one job; the handler gives the first to the player and
    every file for download; the progress counts the frames of both."""
    calls = []
    video, snippet, status, files = page.render_video(
        jobs,
        str(songs["song"]),
        "default",
        None,
        formats=["1:1", "16:9"],
        progress=lambda p, desc=None, unit=None: calls.append((p, desc)),
        **TINY,
    )
    assert [Path(f).name for f in files] == ["my_song.16x9.mp4", "my_song.1x1.mp4"] and video == files[0]
    shapes = [(probe_video(f)["width"], probe_video(f)["height"], probe_video(f)["n_frames"]) for f in files]
    assert shapes == [(56, 32, 24), (32, 32, 24)]
    assert all(probe_video(f)["audio_streams"] == 1 for f in files)
    assert calls[-1] == ((48, 48), "Rendered 48 frames")
    frames = [p for p, _ in calls if isinstance(p, tuple)]
    assert all(a[0] <= b[0] for a, b in zip(frames, frames[1:])) and {t for _, t in frames} == {48}
    assert "2 files (16:9, 1:1) of 24 frames each" in status
    assert "lsd_jax.render_formats(" in snippet and "formats=['16:9', '1:1']," in snippet


def test_bad_audio_is_a_clear_error(songs, jobs):
    with pytest.raises(gr.Error) as e:
        page.render_video(jobs, str(songs["text"]), **TINY)
    msg = _error(e)
    assert "notes.mp3" in msg and "not an audio file" in msg and e.value.title == "Audio problem"
    with pytest.raises(gr.Error) as e:
        page.render_video(jobs, None, **TINY)
    assert "upload a song" in _error(e)


def test_silence_is_a_clear_error(songs, jobs):
    with pytest.raises(gr.Error) as e:
        page.preview_video(jobs, str(songs["silent"]), **TINY)
    msg = _error(e)
    assert "silent" in msg and "silent.wav" in msg
    with pytest.raises(gr.Error, match="silent"):
        page.render_video(jobs, str(songs["silent"]), **TINY)
    jobs.workdirs.sweep()  # finished renders' folders (keep=0) go; a failed one is already gone
    assert list(jobs.workdirs.root.glob("req-*")) == []


@pytest.mark.parametrize(
    "values, match",
    [
        (dict(pulse_react=20), "pulse_react must be between 0 and 10"),
        (dict(truncation=1.5), "truncation must be between 0 and 1"),
        (dict(resolution=34, width=33, height=20), "width must be even"),
        (dict(resolution=2048), "above this server's limit of 1024"),
        (dict(width=64), "give both width and height"),
        (dict(classes="1,2.5"), "classes must be comma-separated class indices or names"),
        (dict(classes="goldfish"), "class name, but the classes of style 'cppn' have no names"),
        (dict(band_react="1,2"), "band_react must be one number \\(for all\\) or 3 comma-separated numbers"),
    ],
)
def test_out_of_range_values_are_clear_errors(songs, jobs, values, match):
    with pytest.raises(gr.Error, match=match) as e:
        page.render_video(jobs, str(songs["song"]), **{**TINY, **values})
    _error(e)
    assert e.value.title == "Parameter problem"


def test_bad_styles_are_clear_errors_and_nothing_runs(songs, jobs, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # the uploads

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Evil()))
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"\x80\x04 this is not a network pickle")
    # found while the job loads it: said in the status line, not raised (an "Error" badge on the page: issue 27)
    for path, match in ((evil, "refusing to load"), (broken, "broken.pkl")):
        gallery, status = page.preview_video(jobs, str(songs["song"]), "default", str(path), **TINY)
        assert status.startswith("⚠ **Style problem**") and match in status, status
        assert "Traceback" not in status and str(tmp_path) not in status and not isinstance(gallery, list)
    assert not (tmp_path / "pwned").exists()
    text = tmp_path / songs["text"].name
    text.write_bytes(songs["text"].read_bytes())
    with pytest.raises(gr.Error, match="style file must be an NVIDIA StyleGAN .pkl") as e:
        page.preview_video(jobs, str(songs["song"]), "default", str(text), **TINY)
    # a style is a name from the list or an upload, never another path on the server
    for style in ("no such style", str(songs["song"].parent / "evil.pkl")):
        with pytest.raises(gr.Error, match="unknown style|must be uploaded to this server") as e:
            page.preview_video(jobs, str(songs["song"]), style, None, **TINY)
        _error(e)


@pytest.mark.slow
def test_the_app_owns_its_jobs_unless_given_some():
    demo = page.build_app(AppConfig(max_resolution=500, warm_up=False))
    own = demo.lsd_jobs
    assert own.cfg.max_resolution == 500 and own.workdirs._thread.is_alive()
    root = own.workdirs.root
    slider = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "param-resolution")
    assert (slider.minimum, slider.maximum, slider.step) == (0, 500, 16)
    demo.close()
    assert not root.exists() and own.workdirs._stop.is_set()
    with Jobs(AppConfig(warm_up=False, examples="off"), keep=0.0) as mine:
        demo = page.build_app(jobs=mine)
        assert demo.lsd_jobs is mine and demo.lsd_config is mine.cfg
        root = mine.workdirs.root
        demo.close()
        assert root.exists()  # the caller's to close


def test_main_serves_with_the_flags_and_closes_the_app_when_the_server_stops(monkeypatch):
    seen = {}
    monkeypatch.setenv("LSD_JAX_WARM_UP", "0")
    monkeypatch.setenv("LSD_JAX_EXAMPLES", "off")

    def fake_launch(demo, cfg, **server):  # what Blocks.launch does when interrupted: return
        seen.update(demo=demo, cfg=cfg, server=server, root=demo.lsd_jobs.workdirs.root)

    monkeypatch.setattr(page, "launch", fake_launch)
    page.main(["--port", "7861", "--max-seconds", "30"])
    assert seen["cfg"].max_seconds == 30 and seen["server"] == {"server_name": None, "server_port": 7861}
    assert seen["demo"].lsd_config is seen["cfg"]
    assert not seen["root"].exists() and seen["demo"].lsd_jobs.workdirs._stop.is_set()


def test_handlers_take_the_inputs_by_name():
    bound = page._bind(lambda *a, **k: (a, k), INPUT_NAMES)
    (song, style, style_file), kwargs = bound("s.wav", pulse_react=0.9)
    assert (song, style, style_file) == ("s.wav", "default", None)
    assert kwargs["pulse_react"] == 0.9 and kwargs["fps"] == ui_defaults()["fps"] and "progress" in kwargs


# --- the served app, through gradio_client ------------------------------------------------------------


class Served(str):
    """The served app's URL, with its Jobs (the test runs in the server's process)."""

    jobs: Jobs


@pytest.fixture(scope="module")
def served():
    cfg = AppConfig(max_seconds=6, max_file_size="300kb", concurrency=1, examples="off", warm_up=False)
    with Jobs(cfg, keep=0.0) as jobs:
        demo = page.build_app(cfg, jobs)
        port = free_port()
        page.launch(
            demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
        )
        url = Served(f"http://127.0.0.1:{port}/")
        url.jobs = jobs
        jobs.demo = demo  # (the test reads Gradio's queue)
        yield url
        demo.close()


@pytest.mark.slow
def test_api_render_then_error_then_still_serving(served, songs, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError, ValidationError

    client = Client(served, verbose=False, download_files=str(tmp_path))
    api = client.view_api(print_info=False, return_format="dict")
    assert {"/render", "/preview"} <= set(api["named_endpoints"])
    names = [p["parameter_name"] for p in api["named_endpoints"]["/render"]["parameters"]]
    assert names == list(INPUT_NAMES)

    video, snippet, status, files = client.predict(
        handle_file(str(songs["song"])), fps=8, resolution=32, seed=1, api_name="/render"
    )
    assert files is None  # no format ticked: one video
    path = Path(video["video"] if isinstance(video, dict) else video)
    info = probe_video(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert (info["width"], info["height"]) == (32, 32) and info["n_frames"] == 24
    assert "lsd_jax.render(" in snippet and "seed=1" in snippet and "'my song.wav'" in snippet

    # problems are reported by field before anything is queued
    with pytest.raises(ValidationError, match="song: cannot decode notes.mp3: not an audio file"):
        client.predict(handle_file(str(songs["text"])), fps=8, resolution=32, api_name="/render")
    with pytest.raises(ValidationError, match="duration: the excerpt is 8 s long; this server renders at most 6 s"):
        client.predict(handle_file(str(songs["long"])), fps=8, resolution=32, api_name="/render")
    with pytest.raises(ValidationError, match="resolution: resolution must be even"):
        client.predict(handle_file(str(songs["song"])), fps=8, resolution=33, api_name="/render")
    with pytest.raises(AppError, match="silent"):  # found while working: an error of the call itself
        client.predict(handle_file(str(songs["silent"])), fps=8, resolution=32, api_name="/render")
    with pytest.raises(ValidationError, match="pulse_react: pulse_react must be between 0 and 10, got 50"):
        client.predict(handle_file(str(songs["song"])), fps=8, resolution=32, pulse_react=50, api_name="/render")
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(SR * 10, np.float32), SR)  # ~880 kB > 300 kB
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # the client reads the limit ...
        client.predict(handle_file(str(big)), fps=8, resolution=32, api_name="/render")
    with big.open("rb") as f:  # ... which the server enforces
        r = httpx.post(served + "gradio_api/upload", files={"files": ("big.wav", f, "audio/wav")}, timeout=30)
    assert r.status_code == 413, r.text

    # still serving
    with pytest.raises(ValidationError, match="band_react must be one number"):  # text read by the table's parser
        client.predict(handle_file(str(songs["song"])), fps=8, resolution=32, band_react="1,2", api_name="/preview")
    stills, status = client.predict(
        handle_file(str(songs["song"])), fps=8, resolution=32, seed=1, classes="0; 3", api_name="/preview"
    )
    assert len(stills) == 6 and "loudest" in status


def test_layout_rows():
    from lsd_jax.web.form import page_fields

    rows = page._rows([f for f in page_fields() if f.group == "basic"])
    assert [[f.name for f in row] for row in rows] == [
        ["pulse_react", "motion_react"],
        ["speed_fpm", "truncation"],
        ["contrast_strength", "flash_strength"],
        ["fps", "resolution"],
        ["start", "duration", "seed"],
        ["formats"],
    ]
    motion = page._rows([f for f in page_fields() if f.group == "motion"])
    assert [len(r) for r in motion] == [2, 4, 1] and {f.kind for f in motion[1]} == {"checkbox"}


def _wait(pred, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.timing
def test_a_client_cancels_a_job_and_the_queue_serves_the_next_at_once(served, songs, tmp_path):
    from gradio_client import Client, handle_file

    jobs = served.jobs
    first = Client(served, verbose=False, download_files=str(tmp_path / "a"))
    second = Client(served, verbose=False, download_files=str(tmp_path / "b"))
    box = []
    # 120 frames, 4 a batch; after its first batch the render waits for its cancel (it cannot end first however
    # slow the client is on a loaded machine)
    with slow_batches(0.2, until=lambda: bool(box) and box[0].cancelled):
        long = first.submit(
            handle_file(str(songs["long"])), fps=20, resolution=32, batch_size=4, duration=6, api_name="/render"
        )
        _wait(lambda: any(r.frames[0] > 0 for r in jobs._runs if not r.finished()))
        (run,) = [r for r in jobs._runs if not r.finished()]
        box.append(run)
        waiting = second.submit(handle_file(str(songs["song"])), fps=8, resolution=32, api_name="/render")
        time.sleep(0.5)  # queued behind the first (one job at a time): waiting for its work slot
        assert [r for r in jobs._runs if r.working] == [run]
        t0 = time.monotonic()
        long.cancel()
        # bounds only to fail rather than hang (generous: a loaded machine); a render that ignored the cancel would
        # have rendered all its frames, which the count below catches
        _wait(run.finished, timeout=60)
        stopped = time.monotonic() - t0
        _wait(lambda: any(r is not run and r.working_since for r in jobs._runs), timeout=60)
        started = next(r for r in jobs._runs if r is not run).working_since - t0
        video, snippet, status, files = waiting.result(timeout=300)
    assert isinstance(run.error, JobCancelled) and run.frames[0] < 120, (stopped, run.error, run.frames)
    assert started >= 0, started  # the next job started after the Cancel, once the first had stopped
    assert run.workdir is not None and not run.workdir.exists()  # its files went with it
    path = Path(video["video"] if isinstance(video, dict) else video)
    assert probe_video(path)["n_frames"] == 24 and "Rendered 24 frames" in status and files is None
    print(
        f"cancel: the render stopped {stopped:.2f} s after the client's cancel; the next started after {started:.2f} s"
    )


@pytest.mark.slow
def test_one_address_queues_at_most_per_client_jobs_whatever_its_sessions(served, songs, tmp_path):
    """UGLY (issue 29): one client with 17 sessions filled the queue for everyone. Gradio's queue takes at most
    ``per_client`` render/preview events from one address (refused when it queues them: its validator)."""
    from gradio_client import Client, handle_file

    jobs = served.jobs
    assert jobs.cfg.per_client == 2
    clients = [Client(served, verbose=False, download_files=str(tmp_path / str(i))) for i in range(3)]
    with slow_batches(0.2):
        held = [
            clients[0].submit(
                handle_file(str(songs["long"])), fps=20, resolution=32, batch_size=4, duration=6, api_name="/render"
            )
        ]
        _wait(lambda: any(r.frames[0] > 0 for r in jobs._runs if not r.finished()))
        held.append(clients[1].submit(handle_file(str(songs["song"])), fps=8, resolution=32, api_name="/preview"))
        _wait(lambda: page.queued_by(jobs.demo, "127.0.0.1", page.RENDER_QUEUE) == 2)
        with pytest.raises(Exception, match="at most 2 job"):
            clients[2].predict(handle_file(str(songs["song"])), fps=8, resolution=32, api_name="/preview")
        for job in held:
            job.cancel()
    _wait(lambda: all(r.finished() for r in jobs._runs), timeout=30)


def test_the_api_is_named_and_described(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    text = client.view_api(print_info=False, return_format="str")
    assert "FileData class" not in text and "an audio file: handle_file('song.mp3')" in text
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/render", "/preview"}  # the page's own steps are private
    render = api["named_endpoints"]["/render"]
    assert [r["label"] for r in render["returns"]] == ["video", "python", "status", "all formats (download)"]
    assert [r["label"] for r in api["named_endpoints"]["/preview"]["returns"]] == ["stills", "status"]
    assert render["description"].startswith("Render a music video.")
    speed = next(p for p in render["parameters"] if p["parameter_name"] == "speed_fpm")
    assert speed["python_type"]["type"] == "str" and speed["parameter_default"] == "12"


def test_the_page_has_social_preview_tags(served):
    html_text = httpx.get(served, timeout=30).text
    assert re.search(r'property="og:description"\s+content="' + re.escape(page.DESCRIPTION) + '"', html_text)
    assert re.search(r'name="twitter:description"\s+content="' + re.escape(page.DESCRIPTION) + '"', html_text)
    assert f'<meta property="og:title" content="{page.TITLE}"' in html_text


def test_problems_are_put_next_to_the_field_that_caused_them(songs, jobs):
    values = {**ui_defaults(), "song": str(songs["song"]), "style": "default", "style_file": None}
    assert all(v["is_valid"] for v in page.validate(jobs, values))

    def bad(**changes):
        result = page.validate(jobs, {**values, **changes})
        return {n: v["message"] for n, v in zip(INPUT_NAMES, result) if not v["is_valid"]}

    assert bad(resolution=33) == {"resolution": "resolution must be even (H.264 with yuv420p needs even sizes), got 33"}
    assert list(bad(speed_fpm="fast")) == ["speed_fpm"]
    assert list(bad(song=str(songs["text"]))) == ["song"]
    assert list(bad(start=10)) == ["start"]
    assert list(bad(width=64)) == ["width"]
    assert list(bad(style="no such style")) == ["style"]
    assert list(bad(style_file=str(songs["text"]))) == ["style_file"]
    assert list(bad(keyframe_times="1, 2")) == ["keyframe_times"]
    assert list(bad(formats=["16:9", "1:1"], resolution=1024)) == ["formats"]  # 1820 px wide: above the limit
    assert list(bad(formats=["16:9", "1:1"], width=64, height=32)) == ["formats"]


def test_a_field_s_problem_is_cleared_by_no_event_but_the_next_render_or_preview(jobs):
    """Gradio clears the problems shown at an event's inputs when that event's first answer comes: a server event
    reading a number on its change (the estimate's copy) cleared, on a loaded server, the problem a Render click had
    just shown there (issue 27, seen in CI). The page copies the numbers itself; only the Render and Preview chains
    send the form's fields to the server (the song and styles: their own copy events, on their own change)."""
    cfg = AppConfig(max_seconds=6, concurrency=1, examples="off", warm_up=False)
    demo = page.build_app(cfg, jobs)
    blocks = {b._id: b for b in demo.blocks.values()}
    copied = {f"param-{n}" for n in page.ESTIMATE_INPUTS if n not in page.SERVER_COPIED}
    readers = set()
    for dep in demo.config["dependencies"]:
        fields = [blocks[i].elem_id for i in dep["inputs"] if str(blocks[i].elem_id).startswith("param-")]
        if dep["backend_fn"] and fields:
            readers.add(demo.fns[dep["id"]].name)
        if any(getattr(blocks.get(t), "elem_id", None) in copied for t, _ in dep["targets"]):
            assert not dep["backend_fn"] and dep["js"], dep  # a script in the page: no request, nothing cleared
    assert readers == {"begin_render", "render", "begin_preview", "preview"}


def test_the_estimate_takes_only_numbers_from_the_page_s_copy(jobs):
    """The page's copy is a JSON any client can send: a song or a style in it is not read (files and styles come
    from the server's own copy, which Gradio checked), and a bad number is a line, not an error."""
    cfg = AppConfig(max_seconds=6, concurrency=1, examples="off", warm_up=False)
    demo = page.build_app(cfg, jobs)
    estimate = next(f.fn for f in demo.fns.values() if f.name == "_estimate")  # (one per trigger)
    request = SimpleNamespace(session_hash="s")
    hostile = {"song": "/etc/passwd", "style": "/tmp/evil.pkl", "style_file": "/tmp/evil.pkl", "fps": "many"}
    (line,) = list(estimate({}, hostile, request))
    assert line.startswith("Render time: fix this first: fps") and "passwd" not in line and "evil" not in line
    for junk in (["fps", 8], "x", None, 3):
        assert list(estimate({}, junk, request)) == [page.estimate_line(jobs, None, "default", None, "s")]


# --- the song's form on the page: its picture after upload, per-section values ----------------------------------


@pytest.fixture(scope="module")
def form_song(tmp_path_factory):
    """tests/test_structure.py's song of known form (A B A, a build, a drop at 30 s) as a file."""
    from test_structure import PLAN, song
    from test_structure import SR as FORM_SR

    path = tmp_path_factory.mktemp("form") / "form song.wav"
    sf.write(path, song(PLAN)[0], FORM_SR)
    return path


def _png(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="png")
    return buf.getvalue()


@pytest.mark.slow
def test_the_upload_shows_the_songs_form_and_a_table_of_its_sections(form_song, songs):
    """The upload handler (queued, one at a time) also analyses the song's form: the picture beside the song, and
    the per-section table's rows (its labels, a drop row), cells empty; a song it cannot read hides both."""
    from lsd_jax.web import sections

    cfg = AppConfig(warm_up=False, examples="off")
    demo = page.build_app(cfg)
    try:
        (upload,) = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "_excerpt"]
        assert [getattr(o, "elem_id", None) for o in upload.outputs][2:] == ["song-form", "section-values"]
        start, duration, picture, table = upload.fn(str(form_song))
        assert duration == cfg.excerpt_seconds and 0 <= start <= 38.0 - cfg.excerpt_seconds
        assert picture["visible"] and table["visible"]
        image = picture["value"]
        assert image.size == sections.PICTURE_SIZE  # small: the song column's width, 150 px high
        png = _png(image)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and 1_000 < len(png) < 200_000, len(png)
        pixels = np.asarray(image)
        assert pixels.std() > 10  # a drawing, not a blank
        assert (pixels[:, :, 0] > 200).any() and (pixels[:, :, 1] < 80).any()  # the drop's red line is there
        rows = table["value"]
        labels = [r[0] for r in rows]
        assert labels[0] == "A" and labels[-1] == "drop" and len(labels) == len(set(labels)) >= 3, labels
        assert all(cell == "" for r in rows for cell in r[1:]) and all(len(r) == len(sections.HEADERS) for r in rows)
        # values already in the table (a recipe loaded before the song) stay for the labels the song has
        kept = upload.fn(str(form_song), [["B", "1.5", "", "", "0.2"], ["Z", "3", "", "", ""]])[3]["value"]
        assert kept[1] == ["B", "1.5", "", "", "0.2"] and "Z" not in [r[0] for r in kept] and kept[0][1:] == [""] * 4
        # a file that is not audio: no picture, no table (the render's checks say why)
        gone = upload.fn(str(songs["text"]))
        assert gone[2]["visible"] is False and gone[3]["visible"] is False and gone[3]["value"] == []
    finally:
        demo.close()


def test_the_form_picture_goes_through_the_bounded_analysis_pool(form_song, monkeypatch):
    """Jobs.analysed runs the form's analysis like the excerpt's: one at a time, None when the pool stays busy."""
    from lsd_jax.web import jobs as J
    from lsd_jax.web import sections

    with Jobs(AppConfig(warm_up=False), keep=0.0) as j:
        monkeypatch.setattr(J, "ANALYSIS_WAIT_S", 0.0)
        assert j._analysing.acquire(timeout=1)  # the pool is busy with another upload
        try:
            assert j.analysed(sections.form_picture, str(form_song)) is None
        finally:
            j._analysing.release()
        form, picture = j.analysed(sections.form_picture, str(form_song))
    assert [s.label for s in form.sections][:3] == ["A", "B", "A"] and picture.size == sections.PICTURE_SIZE


def test_per_section_values_become_timelines_keyed_by_section():
    from lsd_jax.params import Timeline, make_params
    from lsd_jax.web.form import params_from_ui

    table = [["A", "", "0.2", "", ""], ["B", "1.5", "", "0.7", ""], ["drop", "3", "", "", ""]]
    kw = params_from_ui({"pulse_react": 0.9, "section_values": table})
    assert kw["pulse_react"] == {"A": 0.9, "B": 1.5, "drop": 3.0}  # an empty cell: the slider's value
    assert kw["motion_react"] == {"A": 0.2, "B": ui_defaults()["motion_react"]}  # an empty drop cell: no point
    assert kw["contrast_strength"] == {"A": 0.0, "B": 0.7}  # the slider at 0 (off): off in A, on in B
    assert "flash_strength" not in kw or kw["flash_strength"] is None  # no cell filled: the slider's value stands
    p = make_params(**kw)
    assert isinstance(p.pulse_react, Timeline) and p.pulse_react.needs_sections
    assert p.contrast_on and not p.flash_on
    # an empty table, or one without a filled cell, changes nothing
    assert params_from_ui({"section_values": [["A", "", "", "", ""]]}) == params_from_ui({})
    assert params_from_ui({"section_values": None}) == params_from_ui({})
    assert params_from_ui({"section_values": [[]]}) == params_from_ui({})  # how an empty table is sent
    # Gradio's payload (headers and data, as an API client sends it) and a pandas table read alike
    payload = {"headers": ["section", "pulse_react"], "data": [["A", 0.1], ["B", 2]]}
    assert params_from_ui({"section_values": payload})["pulse_react"] == {"A": 0.1, "B": 2.0}
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([["A", "0.1", None, None, None]], columns=["section", *p_names()])
    assert params_from_ui({"section_values": frame})["pulse_react"] == {"A": 0.1}


def p_names():
    from lsd_jax.web.sections import SECTION_PARAMS

    return SECTION_PARAMS


@pytest.mark.parametrize(
    "table, message",
    [
        ([["B", "loud", "", "", ""]], "section_values: section B, pulse_react: 'loud' is not a number"),
        ([["A", "", "", "", "9"]], "section_values: section A, flash_strength must be between 0 and 1, got 9"),
        ([["b", "1", "", "", ""]], "section_values: 'b' is not a section label (A, B, …) or \"drop\""),
        ([["A", "1", "", "", ""], ["A", "2", "", "", ""]], "section_values: section A is listed twice"),
        ({"headers": ["section", "speed"], "data": [["A", 1]]}, "section_values: the columns are section, pulse_react"),
    ],
)
def test_a_bad_cell_names_the_section_and_the_parameter(table, message):
    from lsd_jax.errors import ParamError
    from lsd_jax.web.form import params_from_ui

    with pytest.raises(ParamError) as e:
        params_from_ui({"section_values": table})
    assert str(e.value).startswith(message), str(e.value)


def test_per_section_values_reach_the_snippet_and_bad_cells_the_tables_field(songs, jobs):
    values = {**ui_defaults(), "song": str(songs["song"]), "style": "default", "style_file": None}
    table = [["A", "0.3", "", "", ""], ["B", "1.2", "", "", ""]]
    rest = {k: v for k, v in values.items() if k not in ("song", "style", "style_file")}
    job = jobs.prepare(values["song"], "default", None, **{**rest, "section_values": table})
    snippet = page.python_snippet(job)
    assert "pulse_react={'A': 0.3, 'B': 1.2}," in snippet, snippet
    compile(snippet, "snippet", "exec")  # runnable Python (a dict, not a Timeline's repr)
    result = page.validate(jobs, {**values, "section_values": [["B", "x", "", "", ""]]})
    bad = {n: v["message"] for n, v in zip(INPUT_NAMES, result) if not v["is_valid"]}
    assert bad == {"section_values": "section_values: section B, pulse_react: 'x' is not a number"}


@pytest.mark.slow
def test_an_api_client_gives_per_section_values(served, songs, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import ValidationError

    from lsd_jax.audio.structure import analyze
    from lsd_jax.web.sections import HEADERS

    client = Client(served, verbose=False, download_files=str(tmp_path))
    first = analyze(songs["song"]).sections[0].label
    table = {"headers": list(HEADERS), "data": [[first, "1.5", "", "", ""]]}
    video, snippet, status, files = client.predict(
        handle_file(str(songs["song"])), fps=8, resolution=32, section_values=table, api_name="/render"
    )
    assert probe_video(Path(video["video"] if isinstance(video, dict) else video))["n_frames"] == 24
    assert f"pulse_react={{{first!r}: 1.5}}," in snippet, snippet
    bad = {"headers": ["section", "motion_react"], "data": [[first, "lots"]]}  # some columns, by their headers
    with pytest.raises(ValidationError, match=f"section_values: section {first}, motion_react: 'lots' is not a number"):
        client.predict(handle_file(str(songs["song"])), fps=8, resolution=32, section_values=bad, api_name="/render")


def test_a_recipe_with_per_section_values_fills_the_table_and_reads_back():
    """Render again: a video's recipe with timelines keyed by section shows them in the table (the slider shows the
    first value) and the page reads back the same parameters; a timeline by seconds shows its first value only."""
    from lsd_jax.params import make_params
    from lsd_jax.web.form import params_from_ui, ui_values

    params = make_params(pulse_react={"A": 0.3, "B": 1.2, "drop": 2}, contrast_strength={"A": 0, "B": 0.5})
    values = ui_values(params)
    table = [["A", "0.3", "", "0", ""], ["B", "1.2", "", "0.5", ""], ["drop", "2", "", "", ""]]
    assert values["section_values"] == table
    assert values["pulse_react"] == 0.3
    assert make_params(**params_from_ui(values)) == params
    assert ui_values(make_params())["section_values"] == []
    by_time = ui_values(make_params(motion_react={"0": 0.2, "10": 0.4}))
    assert by_time["motion_react"] == 0.2 and by_time["section_values"] == []


def test_a_payload_that_is_no_table_is_named_at_the_field():
    from gradio.components.dataframe import DataframeData

    from lsd_jax.web import sections

    _, table = sections.widgets()
    rows = table.preprocess(DataframeData(headers=["section", "flash_strength"], data=[["A", "0.2"]]))
    assert list(rows.columns) == ["section", "flash_strength"]  # by its headers
    with pytest.raises(gr.Error, match="section_values: not a table of section values"):
        table.preprocess(DataframeData(headers=["section", "pulse_react"], data=[["A", "1", "2"]]))


# --------------------------------------------------------------------------------------------------
# Issue 27: the snippets of the examples, Cancel as an outcome, field messages as text


def test_csv_unescaped_undoes_gradios_csv_escape_exactly():
    from gradio.utils import sanitize_value_for_csv

    snippet = "import lsd_jax\n\nlsd_jax.render(\n    'a.wav',\n    seed=-1,\n)\n"
    for text in (snippet, "-1", "=x", "@a", "plain", "'quoted' stays", "a,-b", "", "'x,\n"):
        assert page.csv_unescaped(sanitize_value_for_csv(text)) == text, text
    assert sanitize_value_for_csv(snippet) == "'" + snippet  # what the example cache wrote (",\n")
    assert page.csv_unescaped("'not an escape") == "'not an escape" and page.csv_unescaped(None) is None


def test_the_snippet_box_reads_back_what_the_example_cache_wrote(tmp_path):
    """Gradio's example cache: CSVLogger.flag writes the outputs, Examples.load_from_cache reads them back through
    each component's read_from_flag."""
    from gradio.flagging import CSVLogger

    snippet = "import lsd_jax\n\nlsd_jax.render(\n    'a.wav',\n    fps=8,\n)\n"
    with gr.Blocks():
        code = page._read_back_unescaped(gr.Code(language="python"))
        plain = gr.Code(language="python")
    logger = CSVLogger(simplify_file_data=False, verbose=False, dataset_file_name="log.csv")
    logger.setup([code], tmp_path)
    logger.flag([snippet])
    import csv

    with open(tmp_path / "log.csv", encoding="utf-8") as f:
        (cell,) = list(csv.reader(f))[1][:1]
    assert plain.read_from_flag(cell) == "'" + snippet  # Gradio's own: the stray quote (issue 27)
    shown = code.read_from_flag(cell)
    assert shown == snippet
    compile(shown, "snippet.py", "exec")


def test_a_cancelled_job_ends_with_a_status_line_not_an_error(jobs, songs):
    """Cancel (the visitor's, a client's, a closed tab's) is an outcome: the stream ends with the status line and
    raises nothing (a raised gr.Error is a red toast and an "Error" badge on the page)."""
    # no batch is handed on before the cancel (a tiny job is one batch: it could end before the first status line)
    with slow_batches(0.2, until=lambda: any(r.cancelled for r in jobs._runs), free=0):
        stream = page.render_stream(jobs, str(songs["song"]), session="cancel-me", **TINY)
        first = next(stream)
        assert first[2] is not None
        jobs.cancel("cancel-me")
        rest = list(stream)
    assert rest and rest[-1][2] == page.CANCELLED and rest[-1][0] is not None  # skip() updates, the status last


def test_outcome_says_cancel_and_style_problems_raises_the_rest():
    from lsd_jax.errors import AudioError, StyleError

    assert page._outcome(JobCancelled("x")) == page.CANCELLED
    line = page._outcome(StyleError("cannot download face.pkl: host gone"))
    assert "Style problem" in line and "cannot download face.pkl" in line
    assert page._outcome(AudioError("bad")) is None and page._outcome(None) is None
    with pytest.raises(gr.Error, match="bad"):
        list(page._ended(AudioError("bad")))
    assert list(page._ended(JobCancelled("x"))) == [page.CANCELLED]


def test_a_field_s_message_is_plain_text(songs, jobs):
    """The field shows its message as text: "> 0" must not arrive as "&gt; 0" (the toast's HTML-escaped one)."""
    from lsd_jax.errors import ParamError

    e = ParamError("duration must be > 0, got -1")
    assert page.field_message(e) == "duration must be > 0, got -1"
    assert page.user_error(e).message == "duration must be &gt; 0, got -1"  # a toast renders HTML
    assert page.field_message(ParamError("cannot read /srv/x/a <b>.wav")) == "cannot read a <b>.wav"
    values = {**ui_defaults(), "song": str(songs["song"]), "style": "default", "style_file": None, "duration": -1}
    result = page.validate(jobs, values)
    bad = {n: v["message"] for n, v in zip(INPUT_NAMES, result) if not v["is_valid"]}
    assert bad == {"duration": "duration must be > 0, got -1"}


@pytest.mark.slow
def test_an_example_s_snippet_reproduces_its_video_byte_for_byte(tmp_path, monkeypatch):
    """The README: the snippet under the video makes the same MP4, byte for byte. Here an example's (its demo
    song written by the snippet itself), run as a script in an empty folder."""
    import lsd_jax.web.examples as ex

    cfg = AppConfig(max_seconds=2, max_resolution=64, examples="off", warm_up=False)
    with Jobs(cfg, keep=0.0) as mine:
        song = str(mine.example_song(ex.SECONDS))
        row = dict(zip(ex.INPUTS, ex.rows(song, cfg.max_seconds, cfg.max_resolution)[0]))
        values = {k: v for k, v in row.items() if k not in ("song", "style")}
        video, snippet, _ = page._example_fn(mine)(song, row["style"], None, **values)
        made = Path(video).read_bytes()
    here = tmp_path / "run"
    here.mkdir()
    monkeypatch.chdir(here)
    exec(compile(snippet, "snippet.py", "exec"), {"__name__": "__main__"})
    (out,) = [p for p in here.iterdir() if p.suffix == ".mp4"]
    again = out.read_bytes()
    assert len(again) == len(made) and again == made, (len(again), len(made))
