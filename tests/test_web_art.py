"""The page's art without a browser: the examples' start-up note (a simulated clock), the showcase video and the
examples' thumbnails as the server serves them."""

from __future__ import annotations

import io
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from PIL import Image

from lsd_jax.web import examples as ex
from lsd_jax.web import page
from lsd_jax.web.config import AppConfig


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_start_up_note_says_how_far_the_examples_are_and_about_how_long_is_left():
    clock, ready = Clock(), [0]
    prep = ex.Preparing(3, lambda: ready[0], guess_s=30.0, clock=clock)
    assert "(0 of 3 ready): about 30 s left" in prep.note()  # before the rendering began: the guess
    prep.begin()
    clock.t += 12
    assert "(0 of 3 ready): about 20 s left" in prep.note()  # the guess, less the time spent
    clock.t += 40
    assert "about 5 s left" in prep.note()  # longer than guessed: a few seconds more, never a negative time
    ready[0] = 2  # two done in 52 s: the third takes about 26 s more
    assert "(2 of 3 ready): about 25 s left" in prep.note()
    prep.finish()
    assert prep.note() == ""
    assert list(prep.lines(tick=0.01)) == [""]


def test_the_start_up_note_ends_when_the_examples_are_ready():
    ready = [0]
    prep = ex.Preparing(3, lambda: ready[0])
    prep.begin()
    lines = prep.lines(tick=0.01)
    first = next(lines)
    assert first.startswith("⏳ **Preparing the examples** (0 of 3 ready)")
    ready[0] = 1
    assert "(1 of 3 ready)" in next(lines)  # a new line when it changes
    prep.finish()
    assert next(lines) == ""
    assert next(lines, None) is None


def test_the_showcase_and_thumbnails_fit_the_server_s_limits():
    values = ex.showcase_values(max_seconds=2, max_resolution=100)
    assert values["duration"] == 2 and values["resolution"] == 96 and values["fps"] == 24
    assert ex.seeds() == [v["seed"] for _, v in ex.EXAMPLES] and len(set(ex.seeds())) == len(ex.EXAMPLES)
    assert all(page.THUMB_URL.format(i) in page.CSS for i in range(len(ex.EXAMPLES)))  # each button shows its own


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:  # an image's first request renders it (JAX compiles)
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


@pytest.mark.slow
def test_the_server_renders_the_showcase_once_asked_and_serves_the_thumbnails():
    cfg = AppConfig(max_seconds=6, max_resolution=128, concurrency=1, examples="off", warm_up=False)
    demo = page.build_app(cfg)
    port = _port()
    page.launch(
        demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    url = f"http://127.0.0.1:{port}"
    try:
        status, headers, _ = _get(url + page.SHOWCASE_URL)
        assert status == 503 and headers["Retry-After"] == "2"  # rendering now: the page asks again
        deadline = time.monotonic() + 300  # only to fail rather than hang: it renders in seconds
        while status != 200:
            assert time.monotonic() < deadline and status == 503, status
            time.sleep(0.5)
            status, headers, body = _get(url + page.SHOWCASE_URL)
        assert headers["content-type"] == "video/mp4" and body[4:8] == b"ftyp" and 10_000 < len(body) < 2_000_000
        for i in range(len(ex.EXAMPLES)):
            status, headers, body = _get(url + page.THUMB_URL.format(i))
            thumb = Image.open(io.BytesIO(body))
            assert status == 200 and thumb.format == "JPEG" and thumb.size == (page.THUMB_SIZE, page.THUMB_SIZE)
        assert _get(url + page.THUMB_URL.format(len(ex.EXAMPLES)))[0] == 404  # no such example
    finally:
        demo.close()


@pytest.mark.slow
def test_the_note_follows_the_examples_rendering_at_start_up():
    import asyncio

    cfg = AppConfig(max_seconds=1, max_resolution=32, concurrency=1, examples="eager", warm_up=False)
    demo = page.build_app(cfg)
    try:
        note = demo.lsd_preparing
        assert "(0 of 3 ready)" in note.note()
        asyncio.run(demo.run_extra_startup_events())  # what Gradio runs at launch: the examples render
        assert note.note() == ""
        assert note._ready() == 3  # counted from the cache Gradio wrote (its rows, less the header)
    finally:
        demo.close()
