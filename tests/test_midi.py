"""MIDI control of a live session (lsd_jax.live.midi): mido messages fed to the handler with their times (no ports,
no running session: the changes arrive through the renderer's one door, apply_changes), and a real port where the
OS has a MIDI system."""

from __future__ import annotations

import json
import time

import mido
import pytest

from lsd_jax.live import midi
from lsd_jax.live.midi import MidiControl, MidiError, MidiMap
from lsd_jax.live.session import LiveRenderer, Tempo
from lsd_jax.params import PARAM


def cc(control: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=channel)


@pytest.fixture(scope="module")
def renderer():
    return LiveRenderer(None, resolution=32)  # never started: apply_changes works on it alone


def test_control_changes_span_the_tables_range_and_unknown_ones_are_ignored(renderer):
    mapping = MidiMap({(21, None): "pulse_react", (22, 1): "truncation", (23, None): "seed", (24, None): "speed_fpm"})
    control = MidiControl(renderer, mapping)
    before = renderer.params
    control.handle(cc(21, 127))
    assert renderer.params.pulse_react == PARAM["pulse_react"].hi == 10.0
    control.handle(cc(21, 0))
    assert renderer.params.pulse_react == 0.0
    control.handle(cc(22, 64, channel=1))  # channel 2 as devices count
    assert renderer.params.truncation == pytest.approx(64 / 127)
    control.handle(cc(22, 0, channel=0))  # the same controller on another channel: not mapped
    assert renderer.params.truncation == pytest.approx(64 / 127)
    control.handle(cc(24, 127))  # the slider's top (ui_hi) where the table's range is open-ended
    assert renderer.params.speed_fpm == PARAM["speed_fpm"].ui_hi
    control.handle(cc(23, 1))
    assert isinstance(renderer.params.seed, int)
    changed = renderer.params
    control.handle(cc(99, 100))  # unknown controller
    control.handle(mido.Message("note_on", note=60))  # not a control message
    assert renderer.params == changed != before


def test_the_map_file_round_trips_and_a_bad_entry_is_named(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"cc 21": "pulse_react", "CC 22 ch 16": "motion_react"}))
    m = MidiMap.load(path)
    assert m.entries == {(21, None): "pulse_react", (22, 15): "motion_react"}
    assert m.lookup(21, 3) == "pulse_react" and m.lookup(22, 15) == "motion_react" and m.lookup(22, 0) is None
    m.save(tmp_path / "again.json")
    assert MidiMap.load(tmp_path / "again.json").entries == m.entries
    for raw, message in [
        ({"cc 21": "resolution"}, "entry 'cc 21': 'resolution' is not a live parameter"),
        ({"cc 200": "pulse_react"}, "entry 'cc 200': the controller number must be 0–127, got 200"),
        ({"cc 21 ch 0": "pulse_react"}, "entry 'cc 21 ch 0': the channel must be 1–16, got 0"),
        ({"knob 1": "pulse_react"}, "entry 'knob 1': a key is"),
        (["cc 21"], "must be a JSON object"),
    ]:
        path.write_text(json.dumps(raw))
        with pytest.raises(MidiError, match=f"--midi-map {path}: {message}"):
            MidiMap.load(path)
    path.write_text("{nope")
    with pytest.raises(MidiError, match="not JSON"):
        MidiMap.load(path)


def test_learn_maps_the_last_control_moved_to_the_next_slider_set_and_saves_it(tmp_path):
    r = LiveRenderer(None, resolution=32)
    said = []
    control = MidiControl(r, MidiMap(), map_path=tmp_path / "learned.json", learn=True, say=said.append)
    control.handle(cc(30, 10, channel=2))
    r.update(motion_randomness=0.3)  # the page's slider (through the same door)
    assert said == [f"MIDI learn: cc 30 ch 3 → motion_randomness; saved {tmp_path / 'learned.json'}"]
    assert json.loads((tmp_path / "learned.json").read_text()) == {"cc 30 ch 3": "motion_randomness"}
    control.handle(cc(30, 127, channel=2))  # now it moves the slider's parameter
    assert r.params.motion_randomness == 1.0 and len(said) == 1  # its own change is not learned again
    r.update(pulse_react=2.0)  # a slider after a mapped control moved: nothing learned (it plays, never remaps)
    assert len(said) == 1


def _ticks(control: MidiControl, bpm: float, n: int, t0: float, jitter: float = 0.0) -> float:
    dt = 60.0 / bpm / 24
    for k in range(n):
        control.handle(mido.Message("clock"), t0 + k * dt + (jitter if k % 7 == 3 else 0.0))
    return dt


def test_midi_clock_sets_the_tempo_and_the_beat_phase():
    r = LiveRenderer(None, resolution=32, speed_fpm="beat")
    changes = []
    r.add_change_listener(lambda t, c: changes.append(c))
    control = MidiControl(r)
    control.handle(mido.Message("start"), 9.9)
    dt = _ticks(control, 120.0, 24, 10.0, jitter=0.002)  # one beat of ticks, some 2 ms late
    assert control.tempo() == pytest.approx(120.0, abs=0.5)
    assert changes == [{"beat_time": 10.0}]  # beat 0: the phase (no tempo from one tick)
    control.handle(mido.Message("clock"), 10.0 + 24 * dt)  # beat 1
    assert r.tempo.bpm == pytest.approx(120.0, abs=0.5) and r.tempo.beat_time == pytest.approx(10.5)
    # a faster clock: the tempo follows within the window (2 beats); song position 4 (sixteenths) = beat 1
    control.handle(mido.Message("stop"), 11.0)
    control.handle(mido.Message("songpos", pos=4), 11.0)
    control.handle(mido.Message("continue"), 11.0)
    changes.clear()
    _ticks(control, 150.0, 49, 11.1)
    assert r.tempo.bpm == pytest.approx(150.0, abs=0.5)
    beats = [c["beat_time"] for c in changes]
    assert beats == pytest.approx([11.1 + k * 0.4 for k in range(3)])  # the ticks on beats 1, 2, 3
    stopped = r.tempo
    control.handle(mido.Message("stop"), 12.5)
    _ticks(control, 90.0, 30, 12.6)
    assert r.tempo == stopped  # stopped: ticks measure but do not move the phase
    assert isinstance(r.tempo, Tempo)


def test_no_midi_system_is_one_line_naming_the_flag(monkeypatch):
    import rtmidi

    def fail():
        raise rtmidi.SystemError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(mido, "get_input_names", fail)
    with pytest.raises(MidiError) as e:
        midi.input_names()
    text = str(e.value)
    assert text.startswith("--midi: this machine has no MIDI system") and "\n" not in text
    assert "ALSA sequencer client" in text
    monkeypatch.setattr(mido, "get_input_names", lambda: [])
    with pytest.raises(MidiError, match="--midi: no MIDI input ports"):
        midi.open_input(None, print)


def test_the_flags_need_each_other(tmp_path):
    import argparse

    ap = argparse.ArgumentParser()
    midi.add_arguments(ap)
    assert midi.from_args(ap.parse_args([]), lambda: None) is None
    with pytest.raises(MidiError, match="need --midi"):
        midi.from_args(ap.parse_args(["--midi-map", "x.json"]), lambda: None)
    with pytest.raises(MidiError, match="--midi-learn needs --midi-map"):
        midi.from_args(ap.parse_args(["--midi", "--midi-learn"]), lambda: None)
    with pytest.raises(MidiError, match="--midi-map .*missing.json: cannot read it"):
        midi.from_args(ap.parse_args(["--midi", "--midi-map", str(tmp_path / "missing.json")]), lambda: None)


def _midi_system() -> str | None:
    """None where rtmidi can open the OS's MIDI system (a real probe), else why not."""
    try:
        midi.input_names()
        return None
    except MidiError as e:
        return str(e)


@pytest.mark.skipif(_midi_system() is not None, reason=f"no MIDI system here: {_midi_system()}")
def test_a_real_port_carries_control_changes(tmp_path):
    r = LiveRenderer(None, resolution=32)
    name = "lsd-jax test controller"
    with mido.open_output(name, virtual=True) as out:  # a virtual port the OS's MIDI system offers as an input
        control = MidiControl(r, MidiMap({(21, None): "pulse_react"})).open(name)
        try:
            assert name in control.port_name
            out.send(cc(21, 127))
            deadline = time.monotonic() + 30  # generous: only to fail, not hang
            while r.params.pulse_react != 10.0 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            control.close()
    assert r.params.pulse_react == 10.0


def test_lsd_jax_live_midi_without_a_midi_system_is_one_line_and_no_traceback(monkeypatch, capsys):
    import rtmidi

    from lsd_jax.cli import main

    def fail():
        raise rtmidi.SystemError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(mido, "get_input_names", fail)  # as on a machine without /dev/snd/seq
    assert main(["live", "--midi", "--input", "song.wav", "--no-serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lsd-jax live: error: --midi: this machine has no MIDI system") and err.count("\n") == 1, err
