"""The web app in a real browser: Debian's Chromium driven by Playwright for Python.

Upload a song, change sliders, preview, render, and wait for the <video> to have a playable source;
then a bad upload shows a clear message and the page keeps working. Screenshots go to
``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lsd_jax.demo import write_demo_song
from lsd_jax.web import page as web_page
from lsd_jax.web.config import AppConfig
from lsd_jax.web.jobs import Jobs

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    cfg = AppConfig(max_seconds=6, max_file_size="2mb")
    with Jobs(cfg, keep=0.0) as jobs:
        demo = web_page.build_app(cfg, jobs)
        port = _free_port()
        web_page.launch(demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        ssr_mode=False)
        yield f"http://127.0.0.1:{port}/"
        demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); Playwright's own download is not used")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app_url)
        page.locator("#render-btn").wait_for()
        yield page
        browser.close()


def _set_number(page, name: str, value: str) -> None:
    box = page.locator(f"#param-{name} input[type=number]").first
    box.fill(value)
    box.press("Enter")
    box.blur()


def _upload_song(page, path: Path) -> None:
    clear = page.locator("#song button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#song input[type=file]").set_input_files(str(path))
    page.locator("#song button[aria-label='Clear']").wait_for()  # uploaded


def _toast_text(page) -> str:
    toast = page.locator('[data-testid="toast-body"]').last
    toast.wait_for(state="visible")
    return toast.inner_text()


def test_upload_preview_render_and_play(page, tmp_path):
    from playwright.sync_api import expect

    song = write_demo_song(tmp_path / "beat.wav", seconds=3.0)
    _upload_song(page, song)
    _set_number(page, "fps", "8")
    _set_number(page, "resolution", "32")
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

    page.locator("#render-btn").click()
    video = page.locator("#video video")
    video.wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#video video');"
        " return v && v.currentSrc && v.readyState >= 1 && v.videoWidth > 0; }", timeout=TIMEOUT_MS)
    info = video.evaluate("v => ({src: v.currentSrc, w: v.videoWidth, h: v.videoHeight, d: v.duration,"
                          " mp4: v.canPlayType('video/mp4; codecs=\"avc1.42E01E\"')})")
    assert info["src"].endswith(".mp4") and (info["w"], info["h"]) == (32, 32), info
    assert abs(info["d"] - 3.0) < 0.3, info
    snippet = page.locator("#snippet").inner_text()
    assert "lsd_jax.render(" in snippet and "pulse_react=1.2" in snippet and "seed=5" in snippet
    assert "'beat.wav'" in snippet and "classes=[0, 3, 5]" in snippet
    assert "Rendered 24 frames" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "app-rendered.png"), full_page=True)


def test_bad_upload_shows_a_clear_message_and_the_page_keeps_working(page, tmp_path):
    bad = tmp_path / "holiday.mp3"
    bad.write_text("this is a text file, not music\n" * 50)
    _upload_song(page, bad)
    page.locator("#preview-btn").click()
    text = _toast_text(page)
    assert "holiday.mp3" in text and "not an audio file" in text, text
    assert "Traceback" not in text and "/tmp" not in text
    page.wait_for_timeout(800)  # the toast's fade-in
    page.screenshot(path=str(ARTIFACTS / "app-error.png"))
    for close in page.locator('[data-testid="toast-close"]').all():
        close.click()

    # an out-of-range value names the parameter, then a good song still previews
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(22050, np.float32), 22050)
    _upload_song(page, quiet)
    page.locator("#preview-btn").click()
    assert "silent" in _toast_text(page)
    for close in page.locator('[data-testid="toast-close"]').all():
        close.click()
    _upload_song(page, write_demo_song(tmp_path / "again.wav", seconds=2.0))
    page.locator("#preview-btn").click()
    page.wait_for_function("() => document.querySelector('#status')?.innerText.includes('again.wav')",
                           timeout=TIMEOUT_MS)
