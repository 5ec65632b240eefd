"""What :func:`lsd_jax.web.page.launch` adds around the page: the link-preview metadata, the preview image and the
favicon (served, real images), and the removal of the app's files in Gradio's temp folder when it stops."""

from __future__ import annotations

import html
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from PIL import Image

from lsd_jax.audio.demo_song import write_demo_song
from lsd_jax.web import page
from lsd_jax.web.config import AppConfig

ROOT = Path(__file__).resolve().parents[1]


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=120) as r:  # the first image request may render it (JAX compiles)
        return r.status, r.headers.get("content-type", ""), r.read()


def _meta(text: str) -> dict[str, str]:
    found = {}
    for tag in re.findall(r"<meta\s[^>]*>", text, flags=re.S):
        key = re.search(r'(?:property|name)="([^"]+)"', tag)
        value = re.search(r'content="([^"]*)"', tag, flags=re.S)
        if key and value:
            found.setdefault(key.group(1), html.unescape(value.group(1)))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/", "/live"])
def test_the_pages_carry_title_description_preview_image_and_favicon(served, path):
    status, _, body = _get(served + path)
    text = body.decode()
    assert status == 200
    meta = _meta(text)
    assert meta["og:title"] == page.TITLE and meta["twitter:title"] == page.TITLE
    assert meta["og:description"] == page.DESCRIPTION and meta["description"] == page.DESCRIPTION
    assert meta["twitter:description"] == page.DESCRIPTION
    assert meta["og:image"] == page.PREVIEW_URL == meta["twitter:image"]
    assert meta["twitter:card"] == "summary_large_image"
    assert f'<link rel="icon" type="image/png" href="{page.FAVICON_URL}"' in text
    assert "Click to try out the app!" not in text and 'content="Gradio"' not in text  # Gradio's placeholders


@pytest.mark.slow
def test_the_preview_image_and_favicon_are_served_images(served):
    status, kind, body = _get(served + page.PREVIEW_URL)
    assert status == 200 and kind == "image/jpeg"
    preview = Image.open(io.BytesIO(body))
    h, w = page.PREVIEW_SIZE
    assert preview.format == "JPEG" and preview.size == (w, h)
    assert len(body) < 300_000  # small enough for a link preview
    pixels = np.asarray(preview.convert("L").resize((16, 8)), dtype=float)
    assert pixels.max() - pixels.min() > 40  # a picture, not a flat fill

    status, kind, body = _get(served + page.FAVICON_URL)
    assert status == 200 and kind == "image/png"
    icon = Image.open(io.BytesIO(body))
    assert icon.format == "PNG" and icon.size == (page.FAVICON_SIZE, page.FAVICON_SIZE)


@pytest.mark.slow
def test_a_closing_tabs_beacon_ends_its_live_session_and_its_place_in_line(served):
    from lsd_jax.web import live_page

    sessions = served.demo.lsd_live
    renderer = type("R", (), {"closed": False, "close": lambda self: setattr(self, "closed", True)})()
    sessions._sessions["tok"] = live_page._Session("tok", renderer, 0.0, opened=0.0, last_audio=0.0)
    sessions.line.place("waiting", sessions.clock())
    body = b"token=tok&ticket=waiting"  # what navigator.sendBeacon(url, URLSearchParams) posts
    req = urllib.request.Request(served + live_page.LEAVE_URL, data=body, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 204
    assert "tok" not in sessions._sessions and renderer.closed and len(sessions.line) == 0


def test_the_preview_url_is_absolute_on_a_space(monkeypatch):
    monkeypatch.setenv("SPACE_HOST", "someone-lsd-jax.hf.space")
    assert page._public_url(page.PREVIEW_URL) == "https://someone-lsd-jax.hf.space/lsd-jax/preview.jpg"
    monkeypatch.delenv("SPACE_HOST")
    assert page._public_url(page.PREVIEW_URL) == page.PREVIEW_URL


# --- the app's files in Gradio's temp folder go when it stops ------------------------------------------------------


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def _render_and_preview(url: str, song: Path, tmp: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=str(tmp))
    client.predict(handle_file(str(song)), fps=8, resolution=32, duration=2, api_name="/render")
    client.predict(handle_file(str(song)), fps=8, resolution=32, duration=2, api_name="/preview")


@pytest.mark.slow
def test_closing_the_app_removes_the_files_gradio_recorded_for_it_and_no_others(tmp_path, monkeypatch):
    cache = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))  # read when the Blocks are made
    other = cache / "0123abcd" / "another app's video.mp4"  # another app using the same temp folder
    other.parent.mkdir(parents=True)
    other.write_bytes(b"not ours")
    song = write_demo_song(tmp_path / "song.wav", seconds=3.0)
    cfg = AppConfig(max_seconds=6, concurrency=1, examples="off", warm_up=False)
    demo = page.build_app(cfg)
    port = free_port()
    page.launch(
        demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    try:
        _render_and_preview(f"http://127.0.0.1:{port}/", song, tmp_path / "client")
        recorded = {Path(f) for temp in demo.temp_file_sets for f in temp}
        assert ".wav" in {p.suffix for p in recorded}  # the upload at least (what else depends on Gradio's copies)
        assert recorded <= _files(cache)
    finally:
        demo.close()
    assert not recorded & _files(cache)
    assert other.read_bytes() == b"not ours"


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_app_stopped_by_a_signal_leaves_nothing_in_gradios_temp_folder(tmp_path, stop):
    base = tmp_path / "gradio"
    other = base / "0123abcd" / "another app's video.mp4"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"not ours")
    song = write_demo_song(tmp_path / "song.wav", seconds=3.0)
    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(base), "LSD_JAX_WARM_UP": "0", "LSD_JAX_EXAMPLES": "off"}
    env.pop("SPACE_HOST", None)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300  # generous: importing JAX and Gradio on a loaded, shared machine
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).close()
                break
            except OSError:
                time.sleep(1)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        own = [d for d in base.iterdir() if d.name.startswith("lsd-jax-")]
        assert len(own) == 1  # the app's own folder inside the usual one
        _render_and_preview(f"http://127.0.0.1:{port}/", song, tmp_path / "client")
        assert {p.suffix for p in _files(own[0])} >= {".wav", ".mp4", ".webp"}
        if stop == signal.SIGTERM:  # an MCP call's song, sent as a base64 data URL, is written by Gradio too
            from test_web_mcp import mcp_render

            assert not mcp_render(f"http://127.0.0.1:{port}", song).isError
        proc.send_signal(stop)
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not own[0].exists()
    assert _files(base) == {other}
