"""Styles that work here: the page's menu (and the Live page's: the same function) marks the styles this server
cannot get, with the reason, before any click; choosing one is refused at the style field; a failed download
tells a visitor what they can do (never a command); an uploaded style file is a style of that visitor's session."""

from __future__ import annotations

import re
import socket

import pytest

from lsd_jax.audio.demo_song import write_demo_song
from lsd_jax.errors import DownloadError
from lsd_jax.store import catalogue as cat
from lsd_jax.store import reach
from lsd_jax.web import form
from lsd_jax.web import jobs as J
from lsd_jax.web.config import AppConfig

try:
    from http_server import FileServer
except ImportError:  # tests/ collected as a package
    from tests.http_server import FileServer

page = pytest.importorskip("lsd_jax.web.page")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def probed(tmp_path, monkeypatch):
    """A catalogue of two styles, one on a host that refuses connections, probed as the app does at launch."""
    monkeypatch.setenv("LSD_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(cat.USER_STYLES_ENV, str(tmp_path / "user_styles.json"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    monkeypatch.setattr(cat, "PROBES", reach.HostProbes(timeout=2.0))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with FileServer() as up:  # a host that answers (any answer counts, a 404 too)
        cat.add_style("near", up.url("/near.pkl"), resolution=256)
        cat.add_style("far", f"http://127.0.0.1:{closed}/far.pkl", resolution=256)
        entries = cat.load_catalogue()
        monkeypatch.setattr(cat, "load_catalogue", lambda: {k: entries[k] for k in ("near", "far")})
        cat.PROBES.check([entries["far"].url])  # the other host is not probed yet: unknown is worth a try
        yield tmp_path


@pytest.mark.slow  # builds the whole app (about 3 s)
def test_the_app_probes_at_launch_and_both_pages_list_the_same_styles(probed):
    import gradio as gr

    demo = page.build_app(AppConfig(warm_up=False, examples="off"))
    try:
        (menu,) = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and b.elem_id == "style"]
        assert [v for _, v in menu.choices] == ["default", "near"]  # "far": its host refused the probe
        live = [b for b in demo.blocks.values() if 'class="lsdm-style"' in str(getattr(b, "html_template", ""))]
        assert live, "the Live page's style menu"
        for panel in live:  # the Live page's menu: the same list
            options = re.findall(r'<option value="([^"]*)"', panel.html_template)
            assert options == ["default", "near"], options
        (box,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "show-all-styles"]
        assert box.label == page.unavailable_label() and "1 style this server cannot use now" in box.label
        assert cat.PROBES.known(cat.find_style("near").url)  # probed at launch (an answer: reachable)
    finally:
        demo.close()


def test_the_menu_lists_unreachable_styles_apart_with_the_reason(probed):
    assert [v for _, v in form.style_choices()] == ["default", "near"]  # what works here, before any click
    everything = form.style_choices(show_all=True)
    assert everything[-1] == ("far (256 px) — unavailable: 127.0.0.1 refused the connection", "far")
    assert [v for _, v in everything] == ["default", "near", "far"]  # apart: after the ones that work
    assert page.style_menu(True, None) == everything  # the page's menu is the same list (as is the Live page's)
    # the box that lists them says how many there are and why, before any click
    assert (
        page.unavailable_label()
        == "also list the 1 style this server cannot use now (127.0.0.1 refused the connection)"
    )


def test_choosing_an_unavailable_style_is_refused_at_its_field_with_the_reason(probed):
    song = str(write_demo_song(probed / "song.wav", seconds=2.0))
    with J.Jobs(AppConfig(warm_up=False), keep=0.0) as jobs:
        checks = page.validate(jobs, {"song": song, "style": "far", "style_file": None})
    problems = {n: c["message"] for n, c in zip(page.INPUT_NAMES, checks, strict=True) if not c["is_valid"]}
    assert list(problems) == ["style"], problems
    assert "cannot be used on this server (127.0.0.1 refused the connection)" in problems["style"]
    assert "upload it under 'or upload a style'" in problems["style"] and "lsd-jax styles" not in problems["style"]


def test_a_failed_download_shows_the_visitor_advice_not_a_command():
    err = DownloadError("Cannot download style 'x' (offline). Download it, then run: lsd-jax styles --add x FILE")
    err.visitor_message = f"Cannot download style 'x' (offline). {cat.VISITOR_ADVICE}"
    shown = page.user_error(err).message
    assert "lsd-jax" not in shown and "upload it under" in shown
    assert "lsd-jax styles --add" in page.user_error(DownloadError("plain: lsd-jax styles --add")).message  # others


def test_an_uploaded_style_file_is_a_style_of_the_visitor_s_session(probed):
    upload = probed / "uploads" / "abc123" / "my-model.pkl"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"\x80\x04not really a model")
    menu = page.style_menu(False, str(upload))
    assert menu[-1] == ("my-model.pkl (your upload, this session only)", str(upload))
    assert [v for _, v in menu[:-1]] == ["default", "near"] and page.style_menu(False, None) == menu[:-1]
    # chosen in the menu (without the file box), the door takes it as the upload it is
    style, code = J.visitor_style(menu[-1][1])
    assert style == str(upload.resolve()) and code == "my-model.pkl"


def test_a_style_that_fails_in_the_job_is_said_in_the_status_line_not_an_error_badge(probed):
    """Issue 27: "near" passes the field's check (its host answers) but its file is not there (404). The stream ends
    with the problem in the status line, raising nothing (a raised gr.Error is an "Error" badge on the stills)."""
    song = str(write_demo_song(probed / "song.wav", seconds=2.0))
    with J.Jobs(AppConfig(warm_up=False), keep=0.0) as jobs:
        checks = page.validate(jobs, {"song": song, "style": "near", "style_file": None, "fps": 8, "resolution": 32})
        assert all(c["is_valid"] for c in checks)
        updates = list(page.preview_stream(jobs, song, "near", None, fps=8, resolution=32))
    gallery, status = updates[-1]
    assert status.startswith("⚠ **Style problem**") and "near" in status, status
    assert "dead link" in status and "upload it under 'or upload a style'" in status and "lsd-jax styles" not in status
    assert not isinstance(gallery, list)  # no stills: the gallery keeps what it showed
