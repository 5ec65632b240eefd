"""The web app in a real browser: Debian's Chromium driven by Playwright for Python.

Upload a song, change sliders, preview, render, and wait for the <video> to have a playable source;
bad input shows its problem next to the field and the page keeps working; the estimate before a
click; the video playing while later frames still render; Cancel, and closing the tab, stop a render
at once and the next visitor's renders; a double-click queues one job; the one-click examples; the
buttons right under the upload on a phone. The server runs in this process, so the tests look at
its jobs directly and slow its renders down (``slow_batches``) where they must act mid-render.
Screenshots go to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from app_songs import slow_batches
from conftest import free_port

from lsd_jax.audio.demo_song import write_demo_song
from lsd_jax.web import page as web_page
from lsd_jax.web.config import AppConfig
from lsd_jax.web.jobs import JobCancelled, Jobs

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 120_000


class App(str):
    """The served page's URL, with its Jobs."""

    jobs: Jobs


def _count_analyses(jobs: Jobs) -> Jobs:
    """``jobs.analyses``: the file of each upload analysis finished (the excerpt, the song's form), so that a
    test can wait until an upload's values (start, duration) reached the page before it types over them."""
    real, jobs.analyses = jobs.analysed, []

    def analysed(fn, *args):
        try:
            return real(fn, *args)
        finally:
            jobs.analyses.append(Path(str(args[0])).name if args else "")

    jobs.analysed = analysed
    return jobs


def _serve(cfg: AppConfig):
    jobs = _count_analyses(Jobs(cfg, keep=0.0))
    demo = web_page.build_app(cfg, jobs)
    port = free_port()
    web_page.launch(
        demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    # the page's showcase video renders when first asked for: here, before a test slows renders down (slow_batches),
    # so that it never holds the work slot that test's render waits for
    images = demo.lsd_page_images
    images.showcase()
    _wait(lambda: images.showcase()[0] != "making", timeout=300)
    url = App(f"http://127.0.0.1:{port}/")
    url.jobs = jobs
    return url, demo, jobs


@pytest.fixture(scope="module")
def app_url():
    url, demo, jobs = _serve(AppConfig(max_seconds=12, max_file_size="2mb", examples="off", warm_up=False))
    yield url
    demo.close()
    jobs.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); Playwright's own download is not used")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def _open(browser, url, **kwargs):
    page = browser.new_page(**{"viewport": {"width": 1400, "height": 1300}, **kwargs})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("#render-btn").wait_for()
    return page


@pytest.fixture(scope="module")
def page(browser, app_url):
    page = _open(browser, app_url)
    yield page
    page.close()


def _set_number(page, name: str, value: str) -> None:
    box = page.locator(f"#param-{name} input[type=number]").first
    box.fill(value)
    box.press("Enter")
    box.blur()


def _upload_song(page, path: Path, jobs: Jobs | None = None) -> None:
    """Upload ``path`` as the song; with ``jobs`` (:func:`_serve`'s), wait until its analysis set the page's start and
    duration (on a loaded machine it can land after the test typed a duration)."""
    seen = len(jobs.analyses) if jobs is not None else 0
    message = page.locator("#song [data-testid='status-tracker'] button[aria-label='Clear']")
    if message.count() and message.first.is_visible():  # a problem shown over the field: close it first
        message.first.click()
    clear = page.locator("#song .icon-button-wrapper button[aria-label='Clear']")  # not a message's close button
    if clear.count():
        clear.first.click()
    page.locator("#song input[type=file]").set_input_files(str(path))
    clear.first.wait_for()  # uploaded
    if jobs is not None:
        _wait(lambda: len(jobs.analyses) >= seen + 2, 300)  # the excerpt and the form
        page.wait_for_timeout(500)  # their values reach the page


def _toast_text(page) -> str:
    toast = page.locator('[data-testid="toast-body"]').last
    toast.wait_for(state="visible")
    return toast.inner_text()


def _close_toasts(page) -> None:
    for close in page.locator('[data-testid="toast-close"]').all():
        close.click()


def _wait_idle(page) -> None:
    """Until the visitor's job is over (the buttons are back)."""
    page.wait_for_function("() => !document.querySelector('#render-btn').disabled", timeout=TIMEOUT_MS)


def _running(jobs: Jobs):
    return [r for r in jobs._runs if not r.finished()]


def _wait(pred, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_upload_preview_render_and_play(page, tmp_path):
    from playwright.sync_api import expect

    song = write_demo_song(tmp_path / "beat.wav", seconds=3.0)
    _set_number(page, "fps", "8")  # before the upload: the estimate measures this size, not the default
    _set_number(page, "resolution", "32")
    _upload_song(page, song)
    _set_number(page, "pulse_react", "1.2")
    _set_number(page, "seed", "5")
    page.get_by_text("Advanced parameters").click()
    classes = page.locator("#param-classes input").first
    classes.wait_for(state="visible")
    page.wait_for_timeout(300)  # the accordion's widgets take their initial values when first shown
    classes.fill("0, 3, 5")
    classes.blur()
    expect(classes).to_have_value("0, 3, 5")

    page.locator("#preview-btn").click()
    page.locator("#preview-gallery img").nth(5).wait_for()
    assert page.locator("#preview-gallery img").count() >= 6
    page.screenshot(path=str(ARTIFACTS / "app-preview.png"), full_page=True)
    _wait_idle(page)

    page.locator("#render-btn").click()
    video = page.locator("#video video")
    video.wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#video video');"
        " return v && v.currentSrc && v.readyState >= 1 && v.videoWidth > 0; }",
        timeout=TIMEOUT_MS,
    )
    info = video.evaluate(
        "v => ({src: v.currentSrc, w: v.videoWidth, h: v.videoHeight, d: v.duration,"
        " mp4: v.canPlayType('video/mp4; codecs=\"avc1.42E01E\"')})"
    )
    assert info["src"].endswith(".mp4") and (info["w"], info["h"]) == (32, 32), info
    assert abs(info["d"] - 3.0) < 0.3, info
    snippet = page.locator("#snippet").inner_text()
    assert "lsd_jax.render(" in snippet and "pulse_react=1.2" in snippet and "seed=5" in snippet
    assert "'beat.wav'" in snippet and "classes=[0, 3, 5]" in snippet
    assert "Rendered 24 frames" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "app-rendered.png"), full_page=True)
    _wait_idle(page)


def test_problems_show_next_to_their_field_and_the_page_keeps_working(page, tmp_path):
    bad = tmp_path / "holiday.mp3"
    bad.write_text("this is a text file, not music\n" * 50)
    _upload_song(page, bad)
    page.locator("#preview-btn").click()
    page.wait_for_function("() => document.querySelector('#song').innerText.includes('not an audio file')")
    text = page.locator("#song").inner_text()
    assert "holiday.mp3" in text and "Traceback" not in text and "/tmp" not in text
    assert page.locator("#preview-btn").is_enabled() and page.locator("#render-btn").is_enabled()  # nothing ran
    # and the line above the buttons keeps saying it
    page.wait_for_function("() => document.querySelector('#estimate').innerText.includes('not an audio file')")
    page.screenshot(path=str(ARTIFACTS / "app-error.png"))

    # a value the library refuses is marked on its own field
    _upload_song(page, write_demo_song(tmp_path / "ok.wav", seconds=2.0))
    _set_number(page, "resolution", "33")
    page.locator("#render-btn").click()
    page.wait_for_function("() => document.querySelector('#param-resolution').innerText.includes('must be even')")
    assert "must be even" not in page.locator("#song").inner_text()
    _set_number(page, "resolution", "32")
    _set_number(page, "fps", "8")

    # a problem found while working: a toast, and the status keeps it
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(22050, np.float32), 22050)
    _upload_song(page, quiet)
    page.locator("#preview-btn").click()
    assert "silent" in _toast_text(page)
    _close_toasts(page)
    assert "silent" in page.locator("#status").inner_text()
    _wait_idle(page)
    _upload_song(page, write_demo_song(tmp_path / "again.wav", seconds=2.0))
    page.locator("#preview-btn").click()
    page.wait_for_function(
        "() => document.querySelector('#status')?.innerText.includes('again.wav')", timeout=TIMEOUT_MS
    )
    _wait_idle(page)


def test_the_estimate_shows_before_a_click_and_follows_the_values(page, app_url, tmp_path):
    _set_number(page, "fps", "24")
    _set_number(page, "resolution", "64")
    _upload_song(page, write_demo_song(tmp_path / "twelve.wav", seconds=12.0))
    page.wait_for_function(
        "() => { const t = document.querySelector('#estimate').innerText;"
        " return t.includes('Estimated') && t.includes('288 frames'); }"
    )
    text = page.locator("#estimate").inner_text()
    assert "Estimated render time: about" in text and "12 s of music at 24 fps" in text and "frames/s" in text, text
    _set_number(page, "fps", "12")
    page.wait_for_function(
        "() => { const t = document.querySelector('#estimate').innerText;"
        " return t.includes('Estimated') && t.includes('144 frames'); }"
    )
    assert "Estimated render time: about" in page.locator("#estimate").inner_text()


@pytest.mark.timing
def test_the_video_plays_while_later_frames_still_render(page, app_url, tmp_path):
    jobs = app_url.jobs
    _set_number(page, "fps", "24")
    _set_number(page, "resolution", "128")
    _upload_song(page, write_demo_song(tmp_path / "twelve.wav", seconds=12.0))
    seen = None
    # 288 frames, 32 a batch; after 4 batches (5.3 s of video) the render waits until the video was seen playing
    # (or the run was cancelled: a failed test's server closing), so that it cannot end first on a loaded machine
    with slow_batches(0.4, until=lambda: seen is not None or any(r.cancelled for r in jobs._runs), free=4):
        page.locator("#render-btn").click()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            st = page.evaluate(
                "() => { const v = document.querySelector('#live video'); return v ? "
                "{played: v.dataset.playedAt || null, t: v.currentTime, paused: v.paused} : null }"
            )
            running = _running(jobs)
            if st and st["played"] and st["t"] > 0.2 and running:
                seen = (st, running[0].frames)
                break
            page.wait_for_timeout(100)
        assert seen is not None, "the live video never played during the render"
        (st, (done, total)) = seen
        assert done < total and page.locator("#render-btn").is_disabled(), seen
        page.screenshot(path=str(ARTIFACTS / "app-playing-while-rendering.png"))
        _wait_idle(page)
    page.wait_for_function(
        "() => { const v = document.querySelector('#video video');"
        " return v && v.currentSrc.endsWith('.mp4') && v.readyState >= 1; }"
    )
    assert page.locator("#live .lsd-live").get_attribute("hidden") is not None  # the finished MP4 took over
    print(f"live video playing at {st['t']:.2f} s while frame {done} of {total} rendered")


@pytest.mark.timing
def test_a_double_click_queues_one_job_and_cancel_stops_it(page, app_url, tmp_path, monkeypatch):
    jobs = app_url.jobs
    started = []
    real = jobs.start_run
    monkeypatch.setattr(jobs, "start_run", lambda *a, **k: started.append(real(*a, **k)) or started[-1])
    _set_number(page, "fps", "24")
    _set_number(page, "resolution", "32")
    _upload_song(page, write_demo_song(tmp_path / "twelve.wav", seconds=12.0))
    # after its first batch the render waits for the Cancel: it cannot end first however slow the clicks arrive
    with slow_batches(0.2, until=lambda: started[0].cancelled):
        page.locator("#render-btn").dblclick()
        page.wait_for_function(
            "() => document.querySelector('#render-btn').disabled && document.querySelector('#preview-btn').disabled"
        )
        assert page.locator("#cancel-btn").is_visible()
        _wait(lambda: started and started[0].frames[0] > 0)
        page.locator("#render-btn").click(force=True)  # disabled: nothing happens
        page.wait_for_timeout(500)
        assert len(started) == 1
        t0 = time.monotonic()
        page.locator("#cancel-btn").click()
        # a render that ignored the Cancel would wait forever: the bound is only to fail rather than hang (generous:
        # the click's round trip through the browser and Gradio takes seconds on a loaded machine)
        _wait(started[0].finished, timeout=60)
        stopped = time.monotonic() - t0
    assert isinstance(started[0].error, JobCancelled), (stopped, started[0].error)
    assert not started[0].workdir.exists()
    _wait_idle(page)
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Cancelled')")
    assert not page.locator("#cancel-btn").is_visible() and len(started) == 1
    print(f"Cancel: the render stopped {stopped:.2f} s after the click")


@pytest.mark.timing
def test_closing_the_tab_cancels_its_render_and_the_next_visitor_s_renders(browser, app_url, tmp_path):
    jobs = app_url.jobs
    song = write_demo_song(tmp_path / "twelve.wav", seconds=12.0)
    first = _open(browser, app_url)
    _set_number(first, "fps", "48")
    _set_number(first, "resolution", "32")
    _upload_song(first, song)
    box = []
    # 576 frames, 32 a batch; after its first batch the render waits for its cancel (it cannot end first however
    # slow the browser is on a loaded machine); the next visitor's render is one batch
    with slow_batches(0.5, until=lambda: bool(box) and box[0].cancelled):
        first.locator("#render-btn").click()
        _wait(lambda: any(r.frames[0] > 0 for r in _running(jobs)))
        (run,) = _running(jobs)
        box.append(run)
        second = _open(browser, app_url)  # the next visitor, waiting behind it
        _set_number(second, "fps", "8")
        _set_number(second, "resolution", "32")
        _upload_song(second, write_demo_song(tmp_path / "short.wav", seconds=2.0))
        second.locator("#render-btn").click()
        second.wait_for_function("() => document.querySelector('#render-btn').disabled")
        t0 = time.monotonic()
        first.close()
        # a render the closed tab did not cancel would wait forever: these bounds only fail rather than hang
        # (generous: the page's unload reaches the server in seconds on a loaded machine)
        _wait(run.finished, timeout=60)
        stopped = time.monotonic() - t0
        _wait(lambda: any(r is not run for r in jobs._runs), timeout=60)
        started = next(r for r in jobs._runs if r is not run).started - t0
    assert isinstance(run.error, JobCancelled), (stopped, run.error)
    assert not run.workdir.exists()
    second.wait_for_function(
        "() => { const v = document.querySelector('#video video');"
        " return v && v.currentSrc.endsWith('.mp4') && v.readyState >= 1; }"
    )
    assert "Rendered 16 frames" in second.locator("#status").inner_text()
    second.close()
    print(f"closed tab: its render stopped {stopped:.2f} s later; the next visitor's started after {started:.2f} s")


def test_an_example_plays_in_one_click(browser):
    # the examples render when the app starts (here within this server's small limits)
    t0 = time.monotonic()
    url, demo, jobs = _serve(AppConfig(max_seconds=2, max_resolution=64, examples="eager", warm_up=False))
    started = time.monotonic() - t0
    try:
        page = _open(browser, url)
        page.locator("#examples").get_by_text("Pulse: the kick drum punches").click()
        page.wait_for_function(
            "() => { const v = document.querySelector('#video video');"
            " return v && v.currentSrc.endsWith('.mp4') && v.readyState >= 1; }",
            timeout=30_000,
        )
        info = page.locator("#video video").evaluate("v => ({w: v.videoWidth, d: v.duration})")
        assert info["w"] == 64 and abs(info["d"] - 2.0) < 0.3, info
        assert "write_demo_song" in page.locator("#snippet").inner_text()
        assert page.locator("#param-pulse_react input[type=number]").first.input_value() == "1.5"
        assert not _running(jobs)  # served from the cache, nothing rendered on click
        page.screenshot(path=str(ARTIFACTS / "app-example.png"))
        page.close()
    finally:
        demo.close()
        jobs.close()
    print(f"start-up with three cached examples (64 px, 2 s): {started:.1f} s")


def test_on_a_phone_the_buttons_sit_right_under_the_upload(browser, app_url):
    phone = _open(browser, app_url, viewport={"width": 390, "height": 844}, is_mobile=True)
    song = phone.locator("#song").bounding_box()
    buttons = phone.locator("#buttons").bounding_box()
    video = phone.locator("#status").bounding_box()  # the outputs begin with the progress line
    params = phone.locator("#param-pulse_react").bounding_box()
    assert 0 <= buttons["y"] - (song["y"] + song["height"]) < 40, (song, buttons)
    assert buttons["y"] + buttons["height"] < 844  # on the first screen
    assert buttons["y"] < video["y"] < params["y"]  # the outputs before the parameters
    phone.screenshot(path=str(ARTIFACTS / "app-phone.png"))
    phone.close()
