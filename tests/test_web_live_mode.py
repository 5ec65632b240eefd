"""The web app's Live page (lsd_jax.web.live_page): sessions, their checks, and a real browser with a fake
microphone."""

from __future__ import annotations

import base64
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from audio_signals import click_track, write

from lsd_jax.web.live_page import LiveConfig, LiveSessions

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def _pcm(x: np.ndarray) -> str:
    return base64.b64encode((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()).decode()


@pytest.mark.slow
def test_sessions_take_audio_give_frames_and_refuse_what_they_cannot_serve():
    sessions = LiveSessions(LiveConfig(sessions=1, resolution=32, fps=20.0))
    try:
        r = sessions.handle("open", {})
        token = r["token"]
        assert r["size"] == [32, 32] and set(r["values"]) >= {"pulse_react", "truncation"}
        assert "in use" in sessions.handle("open", {})["error"]  # one at a time
        sr = 16000
        clicks = click_track([0.05, 0.3], 0.5, sr)
        assert sessions.handle("audio", {"token": token, "pcm": _pcm(clicks), "sr": sr, "t": 123.0}) == {"ok": True}
        f = sessions.handle("frame", {"token": token, "after": -1})
        assert f["w"] == 32 and base64.b64decode(f["jpeg"])[:2] == b"\xff\xd8"  # a JPEG
        f = sessions.handle("frame", {"token": token, "after": f["seq"]})
        assert f["tag"] == 123.0 and f["stats"]["audio_s"] == 0.5
        assert (
            sessions.handle("set", {"token": token, "changes": {"pulse_react": 2, "flash_strength": 0}})["values"][
                "pulse_react"
            ]
            == 2.0
        )
        for bad, match in [
            ({"changes": {"resolution": 64}}, "cannot change"),
            ({"changes": {"pulse_react": 99}}, "pulse_react must be"),
        ]:
            assert match in sessions.handle("set", {"token": token, **bad})["error"]
        for bad, match in [
            ({"pcm": "%%%", "sr": sr}, "base64"),
            ({"pcm": _pcm(clicks), "sr": 5}, "sample rate"),
            ({"pcm": _pcm(np.zeros(3 * sr)), "sr": sr}, "at most 2 s"),
        ]:
            assert match in sessions.handle("audio", {"token": token, **bad})["error"]
        sessions.handle("close", {"token": token})
        assert "has ended" in sessions.handle("frame", {"token": token})["error"]
        assert "token" in sessions.handle("open", {})  # the place is free again
    finally:
        sessions.close_all()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
def test_a_fake_microphone_playing_clicks_kicks_the_frames_in_the_live_page(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); Playwright's own download is not used")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    from lsd_jax.web import page as web_page
    from lsd_jax.web.config import AppConfig
    from lsd_jax.web.jobs import Jobs

    sr, every = 48000, 0.5
    wav = write(tmp_path / "clicks.wav", click_track([every / 2 + every * k for k in range(8)], 4.0, sr), sr)
    cfg = AppConfig(max_seconds=6, max_file_size="2mb")
    os.environ["LSD_JAX_LIVE_RESOLUTION"] = "96"
    try:
        with Jobs(cfg, keep=0.0) as jobs:
            demo = web_page.build_app(cfg, jobs)
    finally:
        del os.environ["LSD_JAX_LIVE_RESOLUTION"]
    port = _free_port()
    web_page.launch(
        demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    ARTIFACTS.mkdir(exist_ok=True)
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/live")
            page.locator("#live-mode .lsdm-mic").click()
            page.wait_for_function("() => window.lsdLive && window.lsdLive.frames.length > 5")
            for name, value in (("motion_react", "0"), ("speed_fpm", "0"), ("pulse_react", "1.5")):  # live sliders
                page.locator(f'#live-mode [data-name="{name}"]').evaluate(
                    "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value
                )
            page.wait_for_timeout(1000)
            start = page.evaluate("() => window.lsdLive.frames.length")
            rises = (
                f"window.lsdLive.frames.slice({start})"
                ".filter((f, i, a) => i && f.pulse >= 0.5 && a[i - 1].pulse < 0.5).length"
            )
            page.wait_for_function(f"() => window.lsdLive.frames.length > {start} + 90 && {rises} >= 8")
            page.screenshot(path=str(ARTIFACTS / "live-page.png"), full_page=True)
            log = page.evaluate("() => window.lsdLive")
            browser.close()
    finally:
        demo.close()
    (ARTIFACTS / "live-page-log.json").write_text(json.dumps(log))
    assert not log["errors"], log["errors"]
    frames = log["frames"][start:]
    pulse = np.array([f["pulse"] for f in frames])
    diff = np.array([f["diff"] for f in frames])
    recv = np.array([f["recv"] for f in frames]) / 1000.0
    rises = np.flatnonzero((pulse[1:] >= 0.5) & (pulse[:-1] < 0.5)) + 1
    # on the audio's own clock (what the browser sent, however late it came): each kick is a click
    at = np.array([f["pulse_at"] for f in frames])
    periods = np.diff(at[rises]) / every
    assert len(rises) >= 8 and np.all(np.abs(periods - np.round(periods)) < 0.1), periods
    # (each click, if the machine keeps up: on a loaded one the audio comes in bursts and a frame takes several)
    width = np.array([f["w"] for f in frames])
    same = np.concatenate([[False], width[1:] == width[:-1]])  # a resolution change redraws everything
    kicked = np.concatenate([diff[r : r + 2][same[r : r + 2]] for r in rises])
    calm = diff[same & (pulse < 0.05) & (np.roll(pulse, 1) < 0.05) & (np.roll(pulse, 2) < 0.05)]
    assert calm.size > 10 and np.median(kicked) > 4 * np.median(calm), (kicked, calm)  # the picture kicks
    lat = np.array(log["latency"])
    print(
        f"\nlive page: {len(frames) / (recv[-1] - recv[0]):.1f} frames/s received, audio block sent → frame drawn "
        f"p50 {np.median(lat):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms"
    )


@pytest.mark.slow
@pytest.mark.timing
def test_cli_plays_a_file_in_real_time_and_records_what_was_shown(tmp_path, capsys):
    from lsd_jax.cli import main
    from lsd_jax.media.video import probe_video

    song = write(tmp_path / "clicks.wav", click_track([0.3, 0.8, 1.3], 1.6, 22050), 22050)
    out = tmp_path / "shown.mp4"
    assert (
        main(
            [
                "live",
                "--input",
                str(song),
                "--record",
                str(out),
                "--no-serve",
                "--resolution",
                "32",
                "--fps",
                "24",
                "--pulse-react",
                "1.2",
            ]
        )
        == 0
    )
    assert "frames shown" in capsys.readouterr().out
    info = probe_video(out)
    assert (info["width"], info["audio_streams"]) == (32, 1) and abs(info["audio_duration"] - 1.6) < 0.15, info
    assert info["n_frames"] >= 0.9 * 1.6 * 24
    assert main(["live", "--no-serve"]) == 2
    assert "needs --input" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*part*"))  # nothing half-written left behind
