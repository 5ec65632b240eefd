"""OSC control of a live session (lsd_jax.live.osc) and the session's tempo (tap tempo, speed_fpm="beat").

Sessions run on the simulated clock (tests/sim_clock.py): between the test's ``clock.sleep`` calls the session's
time stands still, so "the next frame after the message" is exact on a loaded machine. Messages travel over real
UDP on 127.0.0.1; the real-time waits for them are generous bounds only to fail rather than hang."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from sim_clock import SimulatedClock

from lsd_jax import ParamError
from lsd_jax.live import osc
from lsd_jax.live.osc import OscControl
from lsd_jax.live.session import LIVE_PARAMS, LiveLatents, LiveRenderer, TapTempo, Tempo
from lsd_jax.params import make_params
from lsd_jax.styles.resolve import resolve_style

REAL_WAIT_S = 60.0  # real seconds to wait for a UDP reply or a handled message: only to fail, not hang


def _grey_style():
    def style(z, c):  # a host (NumPy) style, 0–255: colours that follow z, so the latents' scale shows in the image
        v = 128 + 100 * np.tanh(np.asarray(z)[:, None, None, :3])
        return np.broadcast_to(v, (z.shape[0], 16, 16, 3)).astype(np.float32)

    return resolve_style(style, input_shape=8, num_possible_classes=0)


def _replies(client, n: int) -> list[tuple[str, list]]:
    out = []
    deadline = time.monotonic() + REAL_WAIT_S
    while len(out) < n and time.monotonic() < deadline:
        for m in client.get_messages(1.0):
            out.append((m.address, list(m.params)))
            if len(out) == n:
                break
    return out


def _until(cond) -> None:
    deadline = time.monotonic() + REAL_WAIT_S
    while not cond():
        assert time.monotonic() < deadline, "the OSC message was never handled"
        time.sleep(0.005)


def test_dispatch_checks_each_message_by_the_parameter_table():
    r = LiveRenderer(None, resolution=32)
    with OscControl(r, port=0) as server:  # not started: handle() is the dispatch alone
        assert server.handle("/lsd/pulse_react", [1.25]) == [] and r.params.pulse_react == 1.25
        assert server.handle("/lsd/speed_fpm", ["beat"]) == [] and r.params.speed_fpm == "beat"
        assert server.handle("/lsd/seed", [7.0]) == [] and r.params.seed == 7  # controllers send floats
        assert server.handle("/lsd/flash_strength", ["0.5"]) == [] and r.params.flash_strength == 0.5
        bad = {
            ("/lsd/pulse_react", (99.0,)): "/lsd/pulse_react: pulse_react must be between 0 and 10, got 99",
            ("/lsd/pulse_react", ()): "/lsd/pulse_react: takes one value, got 0",
            ("/lsd/truncation", ("abc",)): "/lsd/truncation: truncation",
            ("/lsd/pulse_reac", (1.0,)): "/lsd/pulse_reac: unknown address (did you mean /lsd/pulse_react?)",
            ("/lsd/resolution", (64,)): "/lsd/resolution: unknown address",
            ("/lsd/style", ("nowhere",)): "style 'nowhere' is not loaded in this session (loaded: cppn, default)",
        }
        for (address, args), message in bad.items():
            replies = server.handle(address, args)
            assert len(replies) == 1 and replies[0][0] == "/lsd/error", replies
            assert message in replies[0][1][0], replies
        assert r.params.pulse_react == 1.25 and r.params.truncation == 1.0  # nothing bad was applied
        state = dict((a, v) for a, v in server.handle("/lsd/state", []))
        assert [a for a in state][: len(LIVE_PARAMS)] == [f"/lsd/state/{n}" for n in LIVE_PARAMS]
        assert state["/lsd/state/pulse_react"] == [1.25] and state["/lsd/state/contrast_strength"] == [0.0]
        assert state["/lsd/state/tempo_bpm"] == [120.0] and state["/lsd/state/styles"] == ["cppn", "default"]
    nobody = OscControl(lambda: None, port=0)
    try:
        assert "no live session is playing yet" in nobody.handle("/lsd/tap", [])[0][1][0]
    finally:
        nobody.close()


def test_apply_changes_checks_the_tempo_and_tells_listeners():
    r = LiveRenderer(None, resolution=32)
    seen = []
    r.add_change_listener(lambda t, c: seen.append(c))
    r.apply_changes({"tempo_bpm": 140, "beat_time": 1.5, "pulse_react": 2.0})
    assert r.tempo == Tempo(140.0, 1.5) and r.params.pulse_react == 2.0
    assert seen == [{"tempo_bpm": 140, "beat_time": 1.5, "pulse_react": 2.0}]  # one change set, as given
    for change, match in [
        ({"tempo_bpm": 5}, "tempo_bpm must be between 20 and 400"),
        ({"beat_time": math.nan}, "beat_time must be a number"),
        ({"tempo_bpm": 100, "pulse_react": -1}, "pulse_react"),
    ]:
        with pytest.raises(ParamError, match=match):
            r.apply_changes(change)
    assert r.tempo == Tempo(140.0, 1.5) and r.params.pulse_react == 2.0 and len(seen) == 1  # all or nothing


def test_tap_tempo_measures_the_taps_and_restarts_after_a_pause():
    taps = TapTempo()
    assert taps.tap(10.0) == (None, 10.0)  # one tap: the phase only
    for k in range(1, 5):
        bpm, beat = taps.tap(10.0 + 0.5 * k + (0.01 if k == 2 else 0.0))  # one tap 10 ms late
    assert bpm == pytest.approx(120.0, abs=1.0) and beat == 12.0
    assert taps.tap(20.0) == (None, 20.0)  # after a pause: a new count


def test_speed_fpm_beat_puts_keyframe_k_on_beat_k_and_continues_across_a_tempo_change():
    fps = 30.0
    lat = LiveLatents(8, 0, make_params(speed_fpm="beat", fps=fps), fps)
    params, tempo = lat.params, Tempo(120.0, 0.2)  # a beat every 0.5 s from 0.2 s (tick 6)
    phases = []
    for tick in range(60):
        lat.step(tick, 0.0, 0.0, np.zeros(12, np.float32), params, tempo)
        phases.append(lat.phase)
    phases = np.array(phases)
    beats = [6 + 15 * k for k in range(4)]  # ticks on the beats
    on = phases[beats]
    np.testing.assert_allclose(on, np.round(on), atol=1e-9)  # exactly on a keyframe at each beat
    np.testing.assert_allclose(np.diff(on), 1.0)  # one keyframe per beat
    k_before = math.floor(lat.phase)
    lat.step(60, 0.0, 0.0, np.zeros(12, np.float32), params, Tempo(90.0, 2.0))  # a new tap: the index goes on
    assert math.floor(lat.phase) == k_before
    bar = LiveLatents(8, 0, make_params(speed_fpm="bar", fps=fps), fps)
    for tick in range(0, 121, 15):
        bar.step(tick, 0.0, 0.0, np.zeros(12, np.float32), bar.params, Tempo(120.0, 0.0))
    assert bar.phase == pytest.approx(2.0)  # 4 s at 120 BPM: 8 beats, 2 bars


@pytest.mark.slow
def test_osc_messages_during_a_session_take_effect_at_the_next_frame():
    from pythonosc.udp_client import SimpleUDPClient

    clock, frames, changes = SimulatedClock(), [], []
    r = LiveRenderer(_grey_style(), fps=20.0, resolution=16, speed_fpm=0, adapt=False, clock=clock)
    r.add_listener(frames.append)
    r.add_change_listener(lambda t, c: changes.append((t, c)))
    with r, OscControl(r, port=0) as server:
        assert r.wait_frame(timeout=120) is not None, r.error  # the render thread takes part in the clock
        clock.sleep(0.5)
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/lsd/truncation", 0.1)
        _until(lambda: changes)
        t_change = changes[0][0]
        assert changes[0][1] == {"truncation": pytest.approx(0.1)}
        clock.sleep(0.5)
        level = np.array([np.abs(f.image.astype(np.float32) - 127.5).mean() for f in frames])
        due = np.array([f.t_due for f in frames])
        after = due > t_change
        first = int(np.argmax(after))
        assert first > 0 and after[first:].all()
        # the next frame rendered after the message is the first at the new truncation, and the frames react
        assert level[first] < 0.3 * level[first - 1], level
        assert level[first:].max() < 0.3 * level[:first].min(), level

        # malformed messages: each answered on /lsd/error; the session goes on
        client._sock.sendto(b"not osc at all", ("127.0.0.1", server.port))
        client.send_message("/lsd/pulse_react", "lots")
        client.send_message("/lsd/nothing", 1.0)
        errors = _replies(client, 3)
        assert [a for a, _ in errors] == ["/lsd/error"] * 3, errors
        assert "not an OSC message or bundle" in errors[0][1][0]
        assert errors[1][1][0].startswith("/lsd/pulse_react: ") and "lots" in errors[1][1][0]
        assert errors[2][1][0].startswith("/lsd/nothing: unknown address")

        # tap tempo: 4 taps 0.4 s apart of the session's time → 150 BPM, a beat on the last tap
        for k in range(4):
            n = server.handled
            client.send_message("/lsd/tap", [])
            _until(lambda n=n: server.handled > n)
            if k < 3:
                clock.sleep(0.4)
        t_tap = r.session_time()
        client.send_message("/lsd/state", [])
        state = dict(_replies(client, len(LIVE_PARAMS) + 4))
        assert state["/lsd/state/truncation"] == [pytest.approx(0.1)]
        assert state["/lsd/state/tempo_bpm"] == [pytest.approx(150.0, abs=0.5)]
        assert state["/lsd/state/beat_time"] == [pytest.approx(t_tap)]
        assert r.tempo.bpm == pytest.approx(150.0, abs=0.5)
        shown = len(frames)
        clock.sleep(0.3)
    assert r.error is None and len(frames) > shown  # still playing after the bad messages


def test_the_readme_lists_every_osc_address():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = "python -c 'from lsd_jax.live import osc; print(osc.markdown())'"
    assert osc.markdown() in readme, f"the README's OSC table is out of date; regenerate it: {table}"


def test_the_flags_refuse_a_bad_or_busy_port_naming_the_flag():
    import argparse

    ap = argparse.ArgumentParser()
    osc.add_arguments(ap)
    with pytest.raises(ParamError, match=r"--osc must be a UDP port \(0–65535\), got 70000"):
        osc.from_args(ap.parse_args(["--osc", "70000"]), lambda: None)
    assert osc.from_args(ap.parse_args([]), lambda: None) is None
    with OscControl(lambda: None, port=0) as busy:
        with pytest.raises(osc.OscError, match=f"--osc: cannot listen on 127.0.0.1:{busy.port}"):
            osc.from_args(ap.parse_args(["--osc", str(busy.port)]), lambda: None)


@pytest.mark.slow
def test_the_page_controls_the_newest_session_and_its_status_names_the_inputs():
    from lsd_jax.web.live_page import LiveConfig, LiveSessions

    sessions = LiveSessions(LiveConfig(resolution=32, fps=10.0))
    with OscControl(sessions.current, port=0) as server:
        assert "no live session is playing yet" in server.handle("/lsd/tap", [])[0][1][0]
        sessions.controls = server.describe()
        s = sessions.open(keep=True)
        try:
            assert sessions.current() is s.renderer
            assert server.handle("/lsd/pulse_react", [2.5]) == [] and s.renderer.params.pulse_react == 2.5
            reply = sessions.handle("frame", {"token": s.token, "wait": 1.0})
            assert reply["controls"] == f"OSC 127.0.0.1:{server.port}", reply
        finally:
            sessions.close_all()
    assert sessions.current() is None


@pytest.mark.slow
def test_osc_style_switches_back_to_a_style_the_session_has_played():
    import threading

    r = LiveRenderer(None, resolution=16, fps=10.0)
    loaded = threading.Event()
    r.set_style(_grey_style(), lambda error: loaded.set())  # as the page's menu does
    assert loaded.wait(REAL_WAIT_S) and r.style.name == "style"
    assert r.loaded_styles() == ["cppn", "default", "style"]
    with OscControl(r, port=0) as server:
        assert server.handle("/lsd/style", ["default"]) == []
        _until(lambda: r.style.name == "cppn")  # loaded and compiled on a background thread meanwhile
        assert "/lsd/style: takes one style name" in server.handle("/lsd/style", [3.0])[0][1][0]


@pytest.mark.slow
def test_speed_fpm_beat_plays_live_landing_on_the_tapped_beats():
    clock, frames = SimulatedClock(), []
    r = LiveRenderer(_grey_style(), fps=20.0, resolution=16, speed_fpm="beat", adapt=False, clock=clock)
    r.add_listener(frames.append)
    with r, OscControl(r, port=0) as server:
        assert r.wait_frame(timeout=120) is not None, r.error
        for _ in range(4):  # 150 BPM
            assert server.handle("/lsd/tap", []) == []
            clock.sleep(0.4)
        first = len(frames)
        clock.sleep(4.0)
    assert r.error is None and r.tempo.bpm == pytest.approx(150.0, abs=0.5)
    shown = frames[first:]
    images = np.stack([f.image.astype(np.float32) for f in shown])
    change = np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3))  # frame to frame
    t = np.array([(a.t_due + b.t_due) / 2 - r.t0 for a, b in zip(shown, shown[1:])])
    frac = np.array([r.tempo.beats(x) % 1.0 for x in t])
    near = change[(frac < 0.1) | (frac > 0.9)]
    middle = change[(frac > 0.35) & (frac < 0.65)]
    assert near.size >= 5 and middle.size >= 5
    # eased from keyframe to keyframe: still on each beat, moving fastest between beats
    assert middle.mean() > 2.5 * near.mean(), (middle.mean(), near.mean())
