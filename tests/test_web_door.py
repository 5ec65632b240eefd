"""Issue 29, hostile inputs round 3: one door for a visitor's style (lsd_jax.web.door) on every page, and a queue
that holds (lsd_jax.web.jobs work slots, per-client limits, the bounded upload analysis, stale conversion folders)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import hostile
import nvidia_pickles as nv
import pytest
from app_songs import write_songs

from lsd_jax.errors import ParamError, StyleError
from lsd_jax.memory import Budget
from lsd_jax.store import sandbox
from lsd_jax.web import door
from lsd_jax.web import jobs as J
from lsd_jax.web.config import AppConfig, client_key
from lsd_jax.web.live_page import LiveConfig, LiveSessions

pytestmark = pytest.mark.timeout(300)
TINY = dict(fps=8, resolution=32, duration=1.0)
SECRET = "config_path=/srv/x\tAPI_TOKEN=hunter2-top-secret"


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    """Gradio's upload folder for this test: the files the app received."""
    folder = tmp_path / "gradio uploads"
    (folder / "0a1b2c").mkdir(parents=True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    return write_songs(tmp_path_factory.mktemp("songs"))


def _sessions() -> LiveSessions:
    return LiveSessions(LiveConfig(sessions=1, resolution=32, fps=20.0))


def _leaks(message: str, *paths: Path) -> list[str]:
    """What of a server file (its content, its folder, its name) ``message`` gives away."""
    bad = ["hunter2", "API_TOKEN", "onfig_path", "srv"]
    for p in paths:
        bad += [str(p.parent), p.name]
    return [b for b in bad if b in message]


# --- one door ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["c.env", "config.pkl", "gone.pkl"])
def test_the_live_page_refuses_a_server_path_and_quotes_nothing(tmp_path, uploads, name):
    """BAD L1: ``live_open`` read any server file and quoted its first line; whether a path exists showed too. Now
    a path outside the uploads is refused before it is opened, with one message for a file and for nothing."""
    secret = tmp_path / "srv" / name
    secret.parent.mkdir()
    if name != "gone.pkl":
        secret.write_text(SECRET + "\nmore\n")
    sessions = _sessions()
    try:
        r = sessions.handle("open", {"style": str(secret)})
        assert "token" not in r and r["error"] == door.NOT_RECEIVED, r
        assert not _leaks(r["error"], secret), r["error"]
        link = uploads / "0a1b2c" / "model.pkl"  # a link in the upload folder leads nowhere else either
        link.symlink_to(secret)
        assert sessions.handle("open", {"style": str(link)})["error"] == door.NOT_RECEIVED
    finally:
        sessions.close_all()


def test_the_operators_own_style_is_not_a_visitors(tmp_path, uploads):
    """``lsd-jax live --style ./model.pkl``: the page offers the operator's file first, and gets it; a visitor's
    other path is still refused."""
    config, state, _ = hostile.small_generator()
    model = nv.write_torch_pickle(tmp_path / "mine.pkl", config, state)
    sessions = LiveSessions(LiveConfig(sessions=1, resolution=32, fps=20.0, style=str(model)))
    try:
        assert sessions.handle("open", {"style": str(tmp_path / "other.pkl")})["error"] == door.NOT_RECEIVED
        r = sessions.handle("open", {"style": str(model)})
        assert r["style"] == str(model) and "token" in r, r
        assert sessions.reap(now=sessions.get(r["token"]).opened + 1801) == [r["token"]]  # still a visitor's session
    finally:
        sessions.close_all()


def test_every_face_refuses_proc_files_at_once(uploads, songs, monkeypatch):
    """BAD L3: ``/proc/self/pagemap`` was hashed (~275 GB). Now no face opens it: nothing is hashed or loaded."""
    from lsd_jax.store import weights

    def never(*args, **kwargs):
        raise AssertionError("a server file was opened")

    monkeypatch.setattr(weights, "sha256_file", never)
    monkeypatch.setattr(weights, "load_with_hash", never)
    sessions = _sessions()
    try:
        assert sessions.handle("open", {"style": "/proc/self/pagemap"})["error"] == door.NOT_RECEIVED
    finally:
        sessions.close_all()
    with J.Jobs(AppConfig(warm_up=False), keep=0.0) as jobs:
        for style, style_file in (
            ("/proc/self/pagemap", None),
            ("default", "/proc/self/pagemap"),
            ("../../proc/self/pagemap", None),
            ("~/.ssh/id_rsa.pkl", None),
        ):
            with pytest.raises(StyleError) as e:
                jobs.prepare(str(songs["song"]), style, style_file, **TINY)
            assert str(e.value) == door.NOT_RECEIVED
    with pytest.raises(StyleError):  # a choice that reached the loader some other way is checked again
        door.load_visitor_style("/proc/self/pagemap")


def test_an_upload_is_accepted_by_name_and_a_catalogue_name_is_never_a_path(uploads, tmp_path, monkeypatch):
    config, state, _ = hostile.small_generator()
    model = nv.write_torch_pickle(uploads / "0a1b2c" / "my model.pkl", config, state)
    assert door.visitor_style("default", str(model)) == (str(model.resolve()), "my model.pkl")
    assert door.visitor_style(str(model)) == (str(model.resolve()), "my model.pkl")  # the Live page's way
    assert door.visitor_style("DEFAULT") == ("default", "default")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not a style").write_text(SECRET)  # a file in the working directory named like a style
    with pytest.raises(StyleError, match="unknown style 'not a style'"):
        door.visitor_style("not a style")
    with pytest.raises(StyleError, match="must be an NVIDIA StyleGAN .pkl"):
        door.received_file(write_songs(uploads / "d")["song"])


def test_an_upload_too_large_for_memory_is_refused_on_the_live_page_as_on_preview(uploads, songs, monkeypatch):
    """BAD L2: an upload that Preview refuses (its frame needs more memory than is free) crashed the server through
    the Live page, which skipped the sandbox and the memory check. With little memory free, both refuse it."""
    from lsd_jax import memory

    config, state, _ = hostile.small_generator()
    model = nv.write_torch_pickle(uploads / "0a1b2c" / "big.pkl", config, state)
    converted = []
    real = sandbox.convert_isolated
    monkeypatch.setattr(sandbox, "convert_isolated", lambda *a, **k: (converted.append(a[0]), real(*a, **k))[1])
    monkeypatch.setattr(memory, "free_memory", lambda: Budget(64, "on this machine"))
    with J.Jobs(AppConfig(warm_up=False), keep=0.0) as jobs:
        job = jobs.prepare(str(songs["song"]), "default", str(model), **TINY)
        with pytest.raises(ParamError, match="more than the 64 bytes of memory free") as preview:
            jobs.preview(job)
    sessions = _sessions()
    try:
        r = sessions.handle("open", {"style": str(model)})
        assert "token" not in r and "more than the 64 bytes of memory free" in r["error"], r
        assert str(uploads) not in r["error"] and "for its weights alone" in str(preview.value) + r["error"]
        again = sessions.handle("open", {})["error"]  # the default style does not fit either; the place is free
        assert "memory free" in again and "in use" not in again
    finally:
        sessions.close_all()
    assert converted and all(Path(p).name == "big.pkl" for p in converted)  # in the sandbox, on both pages


def test_a_live_style_change_goes_through_the_same_door(tmp_path):
    sessions = _sessions()
    try:
        token = sessions.handle("open", {})["token"]
        secret = tmp_path / "c.env"
        secret.write_text(SECRET)
        r = sessions.handle("set", {"token": token, "style": str(secret)})
        assert r["error"] == door.NOT_RECEIVED and not _leaks(r["error"], secret)
    finally:
        sessions.close_all()


# --- a queue that holds --------------------------------------------------------------------------------------

MARK = "lsd-jax-test-slow-conversion"


def _slow_children() -> int:
    """This process's children running the fake conversion, counted from /proc (not from the sandbox's books)."""
    n = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and MARK.encode() in (d / "cmdline").read_bytes():
                n += 1
        except (OSError, IndexError, ValueError):
            continue
    return n


@pytest.fixture
def slow_conversion(monkeypatch):
    """Every sandboxed conversion is a child that sleeps for a minute (a slow 60 MB pickle)."""
    monkeypatch.setattr(sandbox, "_command", lambda: [sys.executable, "-c", f"import time; time.sleep(60)  # {MARK}"])


def _upload(uploads: Path, i: int) -> Path:
    p = uploads / "0a1b2c" / f"slow{i}.pkl"
    p.write_bytes(b"\x80\x04" + os.urandom(64) + b".")  # fresh bytes: never in the conversion cache
    return p


def _until(cond, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit  # generous: only to fail rather than hang on a loaded machine
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_cancel_then_submit_never_runs_two_jobs_at_once(uploads, songs, slow_conversion):
    """BAD J1: a cancelled job's conversion ran on while the queue started the next (10 rounds: 10 at once). With
    LSD_JAX_CONCURRENCY=1, a watcher counts conversion children and jobs at work through 10 cancel-then-submit
    rounds: never more than one."""
    worst = {"children": 0, "working": 0}
    stop = threading.Event()
    with J.Jobs(AppConfig(concurrency=1, per_client=100, warm_up=False), keep=0.0) as jobs:

        def watch() -> None:
            while not stop.is_set():
                worst["children"] = max(worst["children"], _slow_children(), sandbox.children())
                worst["working"] = max(worst["working"], jobs.working())
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        runs = []
        try:
            for i in range(10):
                job = jobs.prepare(str(songs["song"]), "default", str(_upload(uploads, i)), **TINY)
                run = jobs.start_run("preview", job, session=f"s{i}", client="203.0.113.9")
                runs.append(run)
                _until(lambda run=run: sandbox.children() == 1 and run.working, "the conversion to start")
                jobs.cancel(f"s{i}")  # and at once the next round's job
            _until(lambda: all(r.finished() for r in runs), "the runs to end")
        finally:
            stop.set()
            watcher.join()
    assert worst == {"children": 1, "working": 1}, worst
    assert all(isinstance(r.error, J.JobCancelled) for r in runs), [r.error for r in runs]
    assert _slow_children() == 0 and sandbox.children() == 0


def test_a_job_waits_for_a_cancelled_one_to_stop(uploads, songs, slow_conversion, monkeypatch):
    """The slot is held until the cancelled job's work has stopped: the next waits, then runs."""
    kill = []
    real_kill = sandbox._kill
    gate = threading.Event()

    def slow_kill(proc):  # the cancelled conversion takes a while to stop
        gate.wait(30)
        kill.append(proc.pid)
        real_kill(proc)

    monkeypatch.setattr(sandbox, "_kill", slow_kill)
    with J.Jobs(AppConfig(concurrency=1, warm_up=False), keep=0.0) as jobs:
        first = jobs.start_run(
            "preview", jobs.prepare(str(songs["song"]), "default", str(_upload(uploads, 0)), **TINY), session="a"
        )
        _until(lambda: sandbox.children() == 1, "the conversion to start")
        jobs.cancel("a")
        second = jobs.start_run("preview", jobs.prepare(str(songs["song"]), **TINY), session="b")
        time.sleep(0.5)  # (time for a wrong second job to start: the assertion below does not depend on it)
        assert first.working and not second.working and jobs.working() == 1
        gate.set()
        _until(second.finished, "the second job")
        assert second.error is None and len(second.result.frames) > 0 and kill


def test_a_job_waiting_for_its_slot_says_so(songs):
    from lsd_jax.web import page

    with J.Jobs(AppConfig(warm_up=False), keep=0.0) as jobs:
        run = J.Run("render", jobs.prepare(str(songs["song"]), **TINY))
        assert page._progress_line(jobs, run)[1].startswith("Waiting for the server (the job before yours is stopping)")
        run.working = True
        assert page._progress_line(jobs, run)[1].startswith("Rendering: analysing the song")


def test_per_client_limit_counts_a_cancelled_job_until_it_stops(uploads, songs, slow_conversion):
    """UGLY: one client with many sessions filled the queue. A client (by address, whatever its sessions) has
    ``per_client`` jobs at once, a cancelled one counted until its work stopped."""
    with J.Jobs(AppConfig(concurrency=1, per_client=1, warm_up=False), keep=0.0) as jobs:
        job = jobs.prepare(str(songs["song"]), "default", str(_upload(uploads, 0)), **TINY)
        run = jobs.start_run("preview", job, session="s1", client="198.51.100.7")
        with pytest.raises(J.Busy, match="at most 1 job"):
            jobs.start_run("preview", job, session="s2", client="198.51.100.7")
        other = jobs.start_run("preview", job, session="s3", client="198.51.100.8")  # another visitor may queue
        jobs.cancel("s1")
        jobs.cancel("s3")
        _until(lambda: run.finished() and other.finished(), "the runs to end")
        jobs.start_run("preview", job, session="s2", client="198.51.100.7")
        jobs.cancel("s2")


def test_client_key_trusts_only_the_proxys_entry():
    class Req:
        def __init__(self, host, forwarded=None):
            self.client = type("C", (), {"host": host})()
            self.headers = {"x-forwarded-for": forwarded} if forwarded else {}

    assert client_key(Req("10.0.0.1", "1.1.1.1, 203.0.113.5")) == "10.0.0.1"
    assert client_key(Req("10.0.0.1", "1.1.1.1, 203.0.113.5"), forwarded=True) == "203.0.113.5"
    assert client_key(Req("10.0.0.1"), forwarded=True) == "10.0.0.1" and client_key(None) is None
    assert AppConfig.from_env({"SPACE_ID": "me/app"}).forwarded and not AppConfig.from_env({}).forwarded


def test_upload_analysis_goes_through_the_bounded_pool(monkeypatch, tmp_path):
    """BAD J2: the upload handler analysed every song at once, unqueued (three calls: ~2.4 GB each). Now it is a
    queued event of its own (one at a time) and Jobs.excerpt_start lets ANALYSIS_AT_ONCE run together."""
    inside, most, gate = [0], [0], threading.Event()
    lock = threading.Lock()

    def fake(song, seconds):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        gate.wait(30)
        with lock:
            inside[0] -= 1
        return 1.5

    monkeypatch.setattr(J, "loudest_stretch", fake)
    with J.Jobs(AppConfig(warm_up=False), keep=0.0, parent=tmp_path) as jobs:
        out = []
        threads = [threading.Thread(target=lambda: out.append(jobs.excerpt_start("x.flac", 30.0))) for _ in range(4)]
        for t in threads:
            t.start()
        _until(lambda: inside[0] == 1, "one analysis")
        time.sleep(0.3)  # (room for a wrong second one to enter: the count below does not depend on it)
        gate.set()
        for t in threads:
            t.join()
    assert most[0] == J.ANALYSIS_AT_ONCE == 1 and out == [1.5] * 4


def test_the_page_queues_the_upload_analysis(monkeypatch):
    from lsd_jax.web import page

    monkeypatch.setenv("LSD_JAX_LIVE_SESSIONS", "1")
    cfg = AppConfig(warm_up=False, examples="off")
    demo = page.build_app(cfg)
    try:
        upload = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "_excerpt"]
        assert len(upload) == 1 and upload[0].queue and upload[0].concurrency_limit == 1, upload
        assert upload[0].concurrency_id == "lsd-jax-upload"
    finally:
        demo.close()


# --- live sessions that end ----------------------------------------------------------------------------------


def test_a_live_session_that_only_polls_is_released_and_a_client_holds_one():
    """UGLY: a visitor held the single live session for ever by polling. A session without audio for
    ``quiet_s`` is closed (simulated clock: ``reap(now)``), and one address holds ``per_client`` sessions."""
    sessions = LiveSessions(LiveConfig(sessions=2, resolution=32, fps=20.0, quiet_s=5.0, max_s=100.0))
    try:
        a = sessions.handle("open", {"_client": "192.0.2.1"})["token"]
        assert "already have 1 live session" in sessions.handle("open", {"_client": "192.0.2.1"})["error"]
        b = sessions.handle("open", {"_client": "192.0.2.2"})["token"]
        for token in (a, b):
            sessions.handle("frame", {"token": token, "wait": 0})  # both poll
        pcm = __import__("base64").b64encode(bytes(3200)).decode()
        assert sessions.handle("audio", {"token": b, "pcm": pcm, "sr": 16000}) == {"ok": True}  # b gets audio
        now = sessions.get(b).last_audio + 4.0  # 4 s on: a's audio stopped 5 s ago at least
        sessions.get(a).last_audio -= 1.5
        sessions.get(a).last_seen = sessions.get(b).last_seen = now  # both tabs still poll: only quiet counts
        assert sessions.reap(now=now) == [a]
        assert "has ended" in sessions.handle("frame", {"token": a})["error"]
        assert sessions.reap(now=sessions.get(b).opened + 100.5) == [b]  # max_s: whatever it does
    finally:
        sessions.close_all()


# --- stale conversion folders ---------------------------------------------------------------------------------


def test_a_killed_parents_conversion_folder_is_removed_at_the_next_start(tmp_path, monkeypatch):
    import tempfile

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{sandbox.PREFIX}{dead.pid}-abc123"
    alive = tmp_path / f"{sandbox.PREFIX}{os.getppid()}-def456"
    foreign = tmp_path / f"{sandbox.PREFIX}xyz"  # no owner in its name: not ours to judge
    for d in (stale, alive, foreign):
        d.mkdir()
        (d / "state-0.npy").write_bytes(b"x")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with J.Jobs(AppConfig(warm_up=False), keep=0.0, parent=tmp_path / "app").start():
        pass
    assert not stale.exists() and alive.is_dir() and foreign.is_dir()


def test_a_conversion_folder_names_its_owner(uploads, slow_conversion, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cancel = threading.Event()
    done = []

    def convert():
        with sandbox.cancel_scope(cancel):
            try:
                sandbox.convert_isolated(_upload(uploads, 0))
            except sandbox.ConversionCancelled as e:
                done.append(e)

    t = threading.Thread(target=convert)
    t.start()
    _until(lambda: sandbox.children() == 1, "the conversion")
    assert [d.name.split("-")[3] for d in tmp_path.glob(sandbox.PREFIX + "*")] == [str(os.getpid())]
    cancel.set()
    t.join()
    assert done and _slow_children() == 0 and not list(tmp_path.glob(sandbox.PREFIX + "*"))
