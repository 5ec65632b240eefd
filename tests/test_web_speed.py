"""The one model of this server's speed: the estimate before a job (its parts add up), the time left during it,
the wait for the jobs ahead, refreshed by each job's measurement. Simulated clocks and hand-made runs: no
wall-clock timing is asserted here (the real-time check is tests/test_bench.py's, slow)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lsd_jax.audio.demo_song import write_demo_song
from lsd_jax.params import make_params
from lsd_jax.store.speeds import SpeedBook, fit_preparation, queue_wait, round_time, speed_key
from lsd_jax.web import jobs as J
from lsd_jax.web.config import AppConfig, duration_text
from lsd_jax.web.speed import estimate_text


def _seconds(text: str) -> float:
    """'2 min 15 s' -> 135."""
    m = re.fullmatch(r"(?:(\d+) min)?\s*(?:(\d+(?:\.\d+)?) s)?", text.strip())
    assert m and any(m.groups()), text
    return 60 * float(m.group(1) or 0) + float(m.group(2) or 0)


def test_preparation_is_fixed_until_three_lengths_show_a_slope():
    assert fit_preparation([]) is None
    # the case: a 4 s calibration that took 5 s must not make a 30 s job's preparation 38 s
    assert fit_preparation([(4.0, 5.0)]) == (5.0, 0.0)
    assert fit_preparation([(10.0, 2.0), (20.0, 9.0)]) == (5.5, 0.0)  # one noisy pair: no slope from it
    fixed, per_s = fit_preparation([(10.0, 2.0), (20.0, 3.0), (40.0, 5.0)])
    np.testing.assert_allclose([fixed, per_s], [1.0, 0.1], atol=1e-9)
    assert fit_preparation([(10.0, 3.0), (20.0, 2.0), (40.0, 1.0)])[1] == 0.0  # longer was quicker: a constant
    fixed, per_s = fit_preparation([(10.0, 0.5), (20.0, 2.0), (40.0, 5.0)])  # the line would start below 0
    assert fixed == 0.0 and per_s > 0


def test_queue_wait_adds_the_running_jobs_time_left_and_the_queued_estimates():
    assert queue_wait([], [], 1) == 0.0
    assert queue_wait([100.0], [], 1) == 100.0  # the issue's: 100 s left on the job ahead is 100 s, not 18-20
    assert queue_wait([100.0], [30.0, 20.0], 1) == 150.0
    assert queue_wait([100.0], [], 2) == 0.0  # a free slot
    assert queue_wait([100.0], [30.0], 2) == 30.0  # taken first by the job queued before
    assert queue_wait([100.0, 40.0], [30.0], 2) == 70.0  # the first to free takes the queued job


def test_the_estimate_s_parts_add_up_to_its_total():
    book = SpeedBook()
    key = ("k",)
    book.record(key, 21.4, 6.0, "calibration")
    book.record_preparation(14.0, 30.0)
    e = book.estimate(key, 30.0, 30)
    assert e.n_frames == 900 and e.compiled
    np.testing.assert_allclose([e.seconds, e.prep_s, e.compile_s], [14.0 + 900 / 21.4, 14.0, 0.0])
    text = estimate_text(e, 30.0, 30)
    total = _seconds(re.search(r"about ([^*]+)\*\*", text).group(1))
    parts = re.search(r"fps: (.*), as this server", text).group(1)
    prep = _seconds(re.search(r"(\S+ s) preparing", parts).group(1))
    frames = _seconds(re.search(r"frames/s \(([^)]+)\)", parts).group(1))
    assert "900 frames at 21.4 frames/s" in parts
    # one sentence's numbers agree: the total is the parts' sum, rounded to the estimate's 5 s steps
    assert abs(total - (prep + frames)) <= 2.5 + 1.0, text
    assert total == round_time(e.seconds)
    # a process that has not compiled the step counts compiling as a part of its own
    fresh = SpeedBook.from_json(book.to_json())
    e2 = fresh.estimate(key, 30.0, 30)
    assert not e2.compiled and e2.compile_s == 6.0 and "6 s compiling" in estimate_text(e2, 30.0, 30)
    np.testing.assert_allclose(e2.seconds, e.seconds + 6.0)


def test_a_render_after_a_render_keeps_the_mean_and_calibrations_yield_to_jobs():
    book = SpeedBook()
    book.record(("k",), 20.0, 2.0, "render")
    book.record(("k",), 40.0, None, "render")
    np.testing.assert_allclose(book.get(("k",)).frames_per_s, 2 / (1 / 20 + 1 / 40))  # the mean time per frame
    assert book.get(("k",)).compile_s == 2.0
    book.record_preparation(9.0, 4.0, "calibration")
    assert book.prep_seconds(30.0) == 9.0
    book.record_preparation(2.0, 30.0)  # a visitor's job: the calibration no longer counts
    assert book.prep_seconds(30.0) == 2.0 and book.prep_seconds(60.0) == 2.0
    again = SpeedBook.from_json(book.to_json())
    assert again.prep_seconds(30.0) == 2.0 and again.get(("k",)) == book.get(("k",))


def _job(seconds: float = 30.0, fps: float = 10.0) -> J.Job:
    p = make_params(fps=fps, resolution=32)
    return J.Job("song.wav", "song.wav", "default", "'default'", p, p, seconds=seconds)


def _measured(jobs: J.Jobs, job: J.Job, fps: float = 10.0, prep: float = 5.0) -> None:
    jobs.speeds.record(speed_key(job.style, job.params), fps, 0.0, "render")
    jobs.speeds.record_preparation(prep, job.seconds)


def _end(jobs: J.Jobs) -> None:
    for r in jobs._runs:  # hand-made runs have no thread: done, so closing the jobs does not wait for them
        r._done.set()


def test_time_left_and_queue_wait_follow_the_runs_on_a_simulated_clock():
    with J.Jobs(AppConfig(concurrency=1, warm_up=False), keep=0.0) as jobs:
        job = _job()  # 300 frames
        _measured(jobs, job)  # 10 frames/s, 5 s preparing: 35 s in all
        assert jobs.known_estimate(job).seconds == pytest.approx(35.0)
        now = J.time.monotonic()  # queue_wait reads the clock itself: the runs' times are set from it
        ahead = J.Run("render", job, session="a")
        ahead.started = now - 30
        assert jobs.remaining(ahead, now) == pytest.approx(35.0)  # waiting for a slot: the whole estimate
        ahead.working, ahead.working_since = True, now - 2
        assert jobs.remaining(ahead, now) == pytest.approx(33.0)  # preparing: the estimate less what it worked
        ahead.first_frames_at, ahead.first_frames_done, ahead.frames = now - 10, 0, (50, 300)
        assert jobs.remaining(ahead, now) == pytest.approx(250 / 5.0)  # its own rate so far: 5 frames/s
        queued = J.Run("render", _job(seconds=10.0), session="b")  # 100 frames: 15 s
        jobs._runs += [ahead, queued]
        jobs._reserved.add("c")  # clicked, still in the page's queue: counted as the asker's own estimate
        ahead.first_frames_at = None  # preparing again, 2 s in: about 33 s left (the real clock moves on a little)
        wait, n = jobs.queue_wait("mine", own_s=20.0)
        assert n == 3 and wait == pytest.approx(33.0 + 15.0 + 20.0, abs=1.0)
        wait, n = jobs.queue_wait("b", own_s=20.0)  # b's own job is not ahead of b
        assert n == 2 and wait == pytest.approx(33.0 + 20.0, abs=1.0)
        _end(jobs)


def test_the_progress_line_says_the_wait_for_the_job_ahead_then_the_time_left():
    page = pytest.importorskip("lsd_jax.web.page")
    with J.Jobs(AppConfig(concurrency=1, warm_up=False), keep=0.0) as jobs:
        job = _job()
        _measured(jobs, job)
        ahead, mine = J.Run("render", job, session="a"), J.Run("render", job, session="b")
        ahead.working = True
        ahead.working_since = ahead.first_frames_at = J.time.monotonic() - 100
        ahead.frames = (200, 300)  # 2 frames/s so far: 50 s left
        jobs._runs += [ahead, mine]
        _, line = page._progress_line(jobs, mine)
        assert "Waiting for the server (1 job ahead): about 0:5" in line, line  # 0:50, or 0:49 a moment later
        mine.working, mine.working_since = True, J.time.monotonic()
        _, line = page._progress_line(jobs, mine)
        assert "analysing the song and compiling · about 0:35 left" in line, line  # the estimate shown before
        _end(jobs)


def test_the_estimate_line_is_refreshed_by_a_measurement_and_says_the_wait(tmp_path):
    page = pytest.importorskip("lsd_jax.web.page")
    song = str(write_demo_song(tmp_path / "song.wav", seconds=12.0))
    values = {"fps": 10, "resolution": 32, "start": 0, "duration": 10}
    with J.Jobs(AppConfig(concurrency=1, warm_up=False), keep=0.0) as jobs:
        job = jobs.prepare(song, "default", None, **values)
        _measured(jobs, job, fps=10.0, prep=2.0)  # 100 frames: 2 + 10 s
        line = page.estimate_line(jobs, song, "default", None, **values)
        assert f"about {duration_text(round_time(12.0))}**" in line and "busy" not in line, line
        _measured(jobs, job, fps=30.0, prep=2.0)  # the next job measured 30 frames/s: the mean time per frame
        line = page.estimate_line(jobs, song, "default", None, **values)
        assert "100 frames at 15.0 frames/s" in line, line
        ahead = J.Run("render", job, session="other")
        jobs._runs.append(ahead)  # waiting for its slot: its whole estimate (2 + 100 / 15 s) is ahead of mine
        line = page.estimate_line(jobs, song, "default", None, "me", **values)
        assert "The server is busy (1 job ahead): yours would start in about 10 s." in line, line
        _end(jobs)


def test_work_slots_serve_the_jobs_in_the_order_they_asked():
    import threading

    with J.Jobs(AppConfig(concurrency=1, warm_up=False), keep=0.0) as jobs:
        order, release = [], threading.Event()
        waiters = [J.Run("render", _job(), session=s) for s in "abcd"]

        def hold() -> None:
            with jobs.slot():
                release.wait(30)

        def wait_for_slot(run: J.Run) -> None:
            try:
                with jobs.slot(run):
                    order.append(run.session)
            except J.JobCancelled:
                order.append(f"{run.session} cancelled")

        holder = threading.Thread(target=hold)
        holder.start()
        threads = []
        for run in waiters:  # each joins the line before the next asks
            threads.append(threading.Thread(target=wait_for_slot, args=(run,)))
            threads[-1].start()
            while run not in jobs._slots_line:
                J.time.sleep(0.005)
        waiters[2].cancel()  # a cancelled one leaves the line without its turn
        while waiters[2] in jobs._slots_line:
            J.time.sleep(0.005)
        release.set()
        for t in [holder, *threads]:
            t.join(30)
        assert order == ["c cancelled", "a", "b", "d"]
        assert jobs._slots_free == 1 and not jobs._slots_line


def test_a_waiting_job_counts_only_the_jobs_ahead_of_it_in_the_line():
    with J.Jobs(AppConfig(concurrency=1, warm_up=False), keep=0.0) as jobs:
        job = _job()
        _measured(jobs, job)  # 35 s a job
        at_work, first, mine, later = (J.Run("render", job, session=s) for s in ("w", "f", "m", "l"))
        at_work.working, at_work.working_since = True, J.time.monotonic()  # preparing: about 35 s left
        jobs._runs += [at_work, later, first, mine]
        jobs._slots_line += [first, mine, later]  # the order they asked for a slot (not the list's)
        wait, n = jobs.queue_wait(mine.session, 35.0, mine)
        assert n == 2 and wait == pytest.approx(35.0 + 35.0, abs=1.0)  # the one at work and the one before mine
        wait, n = jobs.queue_wait("new", 35.0)  # a new job: behind all four
        assert n == 4 and wait == pytest.approx(4 * 35.0, abs=1.0)
        jobs._slots_line.clear()
        _end(jobs)
