"""The app's MCP server (Gradio's, ``launch(mcp_server=True)``): an MCP client lists the tools, reads the render
tool's parameters as documented by the parameter table, and calls it on a tiny job."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest

from lsd_jax.audio.demo_song import write_demo_song
from lsd_jax.media.video import probe_video
from lsd_jax.params import PARAM
from lsd_jax.web import page
from lsd_jax.web.config import AppConfig
from lsd_jax.web.form import INPUT_NAMES, page_fields


def test_the_tool_doc_documents_every_input_from_the_table():
    import gradio.utils

    doc = page.tool_doc("Render a music video.", page_fields(AppConfig(max_resolution=512)))
    description, params, _ = gradio.utils.get_function_description(
        page._bind(lambda *a, **k: None, INPUT_NAMES, progress=False)
    )
    assert set(params) == set(INPUT_NAMES)  # Gradio names the tool's parameters after the handler's
    lines = dict(line.strip().split(": ", 1) for line in doc.split("Args:\n")[1].splitlines() if line.strip())
    assert set(lines) == set(INPUT_NAMES)
    assert lines["pulse_react"].startswith(f"(number; {PARAM['pulse_react'].range_text()}) ")
    assert PARAM["pulse_react"].help in lines["pulse_react"]
    assert "this server: at most 512" in lines["resolution"]  # the server's limit, tighter than the table's
    assert lines["pulse_mode"].startswith("(one of 'loudness', 'onset')")
    assert all("\n" not in v and v for v in lines.values())  # Gradio reads one line per parameter


async def _session(url: str, fn):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(f"{url}/gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await fn(session)


@pytest.mark.slow
def test_an_mcp_client_lists_the_render_tool_with_the_tables_help(served):
    tools = asyncio.run(_session(served, lambda s: s.list_tools())).tools
    by_name = {t.name: t for t in tools}
    assert set(by_name) == {"render", "preview"}  # no internal event (upload, estimate, live, cancel) is a tool
    props = by_name["render"].inputSchema["properties"]
    assert list(props) == list(INPUT_NAMES)
    assert props["pulse_react"]["type"] == "number"
    assert PARAM["pulse_react"].help in props["pulse_react"]["description"]
    assert PARAM["pulse_react"].range_text() in props["pulse_react"]["description"]
    assert PARAM["fps"].help in props["fps"]["description"] and "this server: at most" in props["fps"]["description"]
    assert "Render a music video" in by_name["render"].description


def mcp_render(url: str, song: Path):
    """The render tool's result for a tiny job on ``song`` (sent as a base64 data URL)."""
    data = "data:audio/wav;base64," + base64.b64encode(song.read_bytes()).decode()
    args = {"song": data, "fps": 8, "resolution": 32, "duration": 2, "seed": 3}
    return asyncio.run(_session(url, lambda s: s.call_tool("render", args)))


@pytest.mark.slow
def test_an_mcp_client_renders_a_tiny_video(served, tmp_path):
    song = write_demo_song(tmp_path / "demo.wav", seconds=3.0)
    result = mcp_render(served, song)
    assert not result.isError, result.content
    texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    urls = [u for t in texts for u in _urls(t) if u.endswith(".mp4")]
    assert urls, texts
    import urllib.request

    out = tmp_path / "out.mp4"
    with urllib.request.urlopen(urls[0], timeout=60) as r:  # the video, served by the app
        out.write_bytes(r.read())
    info = probe_video(out)
    assert (info["width"], info["height"]) == (32, 32) and info["n_frames"] == 16
    assert any("lsd_jax.render(" in t for t in texts)  # the snippet that reproduces it


def _urls(text: str) -> list[str]:
    """The URLs in a tool result's text (Gradio writes the outputs as a list, a file as a dict with its URL)."""
    return re.findall(r"https?://[^\s'\"]+", text)
