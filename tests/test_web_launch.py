"""What :func:`lsd_jax.web.page.launch` adds around the page: the link-preview metadata, the preview image and the
favicon (served, real images), and the removal of the app's files in Gradio's temp folder when it stops."""

from __future__ import annotations

import html
import io
import re
import socket
import urllib.request

import numpy as np
import pytest
from PIL import Image

from lsd_jax.web import page
from lsd_jax.web.config import AppConfig


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    cfg = AppConfig(max_seconds=6, concurrency=1, examples="off", warm_up=False)
    demo = page.build_app(cfg)
    port = _port()
    page.launch(
        demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    yield f"http://127.0.0.1:{port}"
    demo.close()


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


def test_the_preview_url_is_absolute_on_a_space(monkeypatch):
    monkeypatch.setenv("SPACE_HOST", "someone-lsd-jax.hf.space")
    assert page._public_url(page.PREVIEW_URL) == "https://someone-lsd-jax.hf.space/lsd-jax/preview.jpg"
    monkeypatch.delenv("SPACE_HOST")
    assert page._public_url(page.PREVIEW_URL) == page.PREVIEW_URL
