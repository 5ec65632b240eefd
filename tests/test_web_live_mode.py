"""The web app's Live page (lsd_jax.web.live_page): sessions, their checks, and a real browser with a fake
microphone."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from audio_signals import click_track, write
from conftest import free_port

from lsd_jax.web import live_page
from lsd_jax.web.live_page import LiveConfig, LiveSessions, Queued, WaitLine, _Session, wait_estimate

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
        queued = sessions.handle("open", {})  # one at a time: the next visitor waits in line
        assert queued["queued"] and queued["position"] == 1 and "next in line" in queued["text"]
        sessions.line.leave(queued["ticket"])
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
    jobs = Jobs(cfg, keep=0.0)  # open until the page closes (its examples render from its folders)
    try:
        demo = web_page.build_app(cfg, jobs)
    finally:
        del os.environ["LSD_JAX_LIVE_RESOLUTION"]
    port = free_port()
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
        jobs.close()
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


# --- slots and the line, on a simulated clock ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeRenderer:
    """What the slot logic touches of a LiveRenderer (no JAX: these tests are about who holds a slot when)."""

    def __init__(self) -> None:
        self.closed = False
        self.pushed = 0

    def close(self) -> None:
        self.closed = True

    def push(self, x, sr, tag=None) -> None:
        self.pushed += len(x)


def _held(sessions: LiveSessions, token: str, clock: Clock, client: str | None = None) -> _Session:
    """A visitor's session in a slot since now (as LiveSessions.open leaves it, without compiling anything)."""
    s = _Session(token, FakeRenderer(), clock(), client=client, opened=clock(), last_audio=clock())
    sessions._sessions[token] = s
    return s


def _ask(sessions: LiveSessions, ticket: str) -> Queued | None:
    with sessions._lock:
        try:
            sessions.admit(ticket)
        except Queued as q:
            return q
    return None


def test_the_line_keeps_order_and_drops_who_stopped_asking():
    line = WaitLine(timeout_s=3.0)
    assert line.place("a", 0.0) == 1 and line.place("b", 0.5) == 2 and line.place("c", 1.0) == 3
    assert line.place("a", 2.0) == 1  # asking again keeps the place
    assert line.drop_stale(3.4) == []  # b asked 2.9 s ago: still within 3 s
    assert line.drop_stale(3.6) == ["b"]  # b's tab was closed
    assert line.place("c", 3.6) == 2
    line.leave("a")
    assert line.place("c", 3.7) == 1 and line.place("b", 3.7) == 2  # b comes back at the end


def test_wait_estimates_count_the_slots_freeing_in_order():
    assert wait_estimate([40.0], 1, 100.0) == 40.0
    assert wait_estimate([40.0], 2, 100.0) == 140.0  # after the next visitor's whole session
    assert wait_estimate([70.0, 10.0], 2, 100.0) == 70.0
    assert wait_estimate([70.0, 10.0], 3, 100.0) == 110.0
    assert wait_estimate([float("inf")], 1, 100.0) is None  # the server's own session never ends by itself
    assert live_page.ordinal(2) == "2nd" and live_page.ordinal(11) == "11th" and live_page.ordinal(23) == "23rd"
    assert "you are 2nd in line, ~41 s at most" in live_page.queue_text(2, 40.2)
    assert "next in line, until a session ends" in live_page.queue_text(1, None)


def test_a_second_visitor_waits_in_line_and_gets_the_slot_when_it_frees():
    clock = Clock()
    sessions = LiveSessions(LiveConfig(sessions=1, max_s=600.0, quiet_s=60.0), clock=clock)
    first = _held(sessions, "first", clock)
    clock.t += 100
    q = _ask(sessions, "b")
    assert (q.position, q.eta_s) == (1, 500.0)  # the first session ends 600 s after it opened, at the latest
    q = _ask(sessions, "c")
    assert (q.position, q.eta_s) == (2, 1100.0)
    clock.t += 1
    assert _ask(sessions, "b").position == 1  # asking again (every second) keeps the place
    sessions.leave(token="first")  # the first tab closes (its goodbye beacon)
    assert first.renderer.closed and "first" not in sessions._sessions
    assert _ask(sessions, "c").position == 2  # the free slot is b's: c does not jump the line
    assert _ask(sessions, "b") is None  # b's turn: admitted, out of the line
    assert len(sessions.line) == 1
    sessions._sessions["b"] = None  # b holds the slot (compiling)
    q = _ask(sessions, "c")
    assert q.position == 1 and q.eta_s is None  # b's session is still starting: no end to count on yet


def test_a_new_visitor_queues_behind_one_already_waiting_for_a_free_slot():
    clock = Clock()
    sessions = LiveSessions(LiveConfig(sessions=1, max_s=600.0), clock=clock)
    _held(sessions, "first", clock)
    assert _ask(sessions, "b").position == 1
    sessions.leave(token="first")
    q = _ask(sessions, "late")  # b has not asked again yet: the slot is b's
    assert q.position == 2 and q.eta_s == 600.0  # after b's whole session


def test_a_waiter_who_closed_the_tab_loses_the_place_and_a_leaving_ticket_goes_at_once():
    clock = Clock()
    sessions = LiveSessions(LiveConfig(sessions=1), clock=clock)
    _held(sessions, "first", clock)
    _ask(sessions, "gone")
    _ask(sessions, "stays")
    clock.t += 2.0
    assert _ask(sessions, "stays").position == 2
    clock.t += live_page.WAIT_S - 1.0  # "gone" last asked WAIT_S + 1 s ago
    assert _ask(sessions, "stays").position == 1
    sessions.leave(ticket="stays")
    assert len(sessions.line) == 0


def test_a_closed_tab_frees_its_slot_within_the_heartbeat_and_an_idle_tab_after_the_quiet_time():
    clock = Clock()
    sessions = LiveSessions(LiveConfig(sessions=2, quiet_s=60.0, max_s=1800.0), clock=clock)
    polled = _held(sessions, "polled", clock)
    closed = _held(sessions, "closed", clock)
    start = clock()
    while clock() < start + live_page.IDLE_S - 0.25:  # the open tab polls frames; the closed one went quiet
        clock.t += 0.25
        sessions.get("polled")
        assert sessions.reap() == []
    clock.t = start + live_page.IDLE_S + 0.25
    sessions.get("polled")
    assert sessions.reap() == ["closed"]  # the janitor reaps every SWEEP_S: free within IDLE_S + SWEEP_S
    assert closed.renderer.closed and not polled.renderer.closed
    assert live_page.IDLE_S + live_page.SWEEP_S <= 3.5

    silence, sound = np.zeros(480), 0.3 * np.sin(np.arange(480) / 3)
    clock.t += 30
    sessions.get("polled")
    sessions.handle("audio", {"token": "polled", "pcm": _pcm(sound), "sr": 48000})  # sound: not idle
    for _ in range(59):
        clock.t += 1
        assert sessions.handle("audio", {"token": "polled", "pcm": _pcm(silence), "sr": 48000}) == {"ok": True}
        assert sessions.reap() == []  # silence for under quiet_s
    clock.t += 1.5
    sessions.get("polled")
    assert sessions.reap() == ["polled"]  # an open tab that heard only silence for quiet_s is closed
    assert polled.renderer.closed and polled.renderer.pushed == 60 * 480


def test_the_page_states_the_session_rules():
    cfg = LiveConfig(sessions=2, quiet_s=45.0, max_s=900.0)
    text = live_page.limits_text(cfg)
    assert "after 45 s without sound" in text and "15 min at most" in text and "runs 2 at a time" in text
    html = live_page.panel_html({n: 0.0 for n in live_page.LIVE_PARAMS}, ["default"], note=text)
    assert "after 45 s without sound" in html


# --- the Live page in a browser: the line, a closed tab, dark mode ---------------------------------------------------

#: The colours an element is drawn with: its text colour, and the first opaque background up its ancestors.
COLOURS_JS = """els => els.map(el => {
  const cs = getComputedStyle(el); let bg = null;
  for (let e = el; e; e = e.parentElement) {
    const b = getComputedStyle(e).backgroundColor;
    const m = b.match(/[\\d.]+/g); if (m && (m.length < 4 || Number(m[3]) > 0.5)) { bg = b; break; }
  }
  return {what: el.className || el.tagName, color: cs.color, background: bg || 'rgb(255, 255, 255)'};
})"""


def _luminance(css: str) -> float:
    r, g, b = (float(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    """WCAG's contrast ratio of two CSS rgb() colours (1 to 21)."""
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_contrast_is_wcags():
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21.0)
    assert contrast("rgb(119, 119, 119)", "rgb(255, 255, 255)") == pytest.approx(4.48, abs=0.01)


@pytest.mark.browser
def test_a_second_visitor_waits_in_line_and_a_closed_tab_frees_the_slot(tmp_path, monkeypatch):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); Playwright's own download is not used")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    from lsd_jax.web import page as web_page
    from lsd_jax.web.config import AppConfig

    sr = 48000
    wav = write(tmp_path / "clicks.wav", click_track([0.25 + 0.5 * k for k in range(8)], 4.0, sr), sr)
    cfg = AppConfig(max_seconds=6, max_file_size="2mb", examples="off", warm_up=False)
    monkeypatch.setenv("LSD_JAX_LIVE_RESOLUTION", "64")
    monkeypatch.setenv("LSD_JAX_LIVE_SESSIONS", "1")
    monkeypatch.setenv("LSD_JAX_LIVE_PER_CLIENT", "2")  # both pages come from 127.0.0.1
    demo = web_page.build_app(cfg)
    sessions = demo.lsd_live
    port = free_port()
    web_page.launch(
        demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    url = f"http://127.0.0.1:{port}/live"
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            first = browser.new_context().new_page()
            first.set_default_timeout(180_000)  # the first session compiles its frame step on a loaded machine
            first.goto(url)
            first.locator("#live-mode .lsdm-mic").click()
            first.wait_for_function("() => window.lsdLive && window.lsdLive.frames.length > 3")
            token = first.evaluate("() => window.lsdLive.token")

            second = browser.new_context(color_scheme="dark").new_page()  # (dark mode: checked below)
            second.set_default_timeout(180_000)
            second.goto(url)
            second.locator("#live-mode .lsdm-mic").click()
            second.wait_for_function("() => window.lsdLive && window.lsdLive.state === 'queued'")
            status = second.locator("#live-mode .lsdm-status").inner_text()
            assert "you are next in line" in status and "s at most" in status, status
            assert second.evaluate("() => window.lsdLive.queue.position") == 1
            assert not second.evaluate("() => window.lsdLive.errors"), "a waiting visitor is not told to try again"
            note = second.locator("#live-mode .lsdm-note").inner_text()
            assert f"after {sessions.cfg.quiet_s:g} s without sound" in note  # the stated idle time

            # dark mode: the panel's controls are drawn in the theme's dark colours, readable
            assert second.evaluate("() => document.body.classList.contains('dark')")
            els = second.locator(
                "#live-mode select, #live-mode select option, #live-mode button:not(:disabled), "
                "#live-mode .lsdm-sliders label span, #live-mode .lsdm-status, #live-mode .lsdm-note"
            ).evaluate_all(COLOURS_JS)
            assert len(els) > 10
            low = [(e["what"], round(contrast(e["color"], e["background"]), 2)) for e in els]
            assert all(c >= 4.5 for _, c in low), low  # WCAG AA for text
            select = next(e for e in els if e["what"] == "lsdm-style")
            assert _luminance(select["background"]) < 0.2  # a dark menu, not a white box in a dark page

            # the first tab closes: its goodbye beacon ends the session; the waiting visitor gets the slot
            first.close(run_before_unload=True)
            deadline = time.monotonic() + 30  # generous: the beacon ends it at once, the heartbeat within 3.5 s;
            while token in sessions._sessions and time.monotonic() < deadline:  # closing joins the render thread
                time.sleep(0.1)
            assert token not in sessions._sessions
            assert sessions.goodbyes >= 1  # the page's pagehide beacon came (not only the heartbeat's timeout)
            second.wait_for_function(
                "() => window.lsdLive.state === 'running' && window.lsdLive.frames.length > 3"
            )  # asks every second, then compiles its first frame (180 s bound: a loaded, shared machine)
            assert second.evaluate("() => window.lsdLive.queue") is None
            browser.close()
    finally:
        demo.close()
