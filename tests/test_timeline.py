"""Timelines (issue 24, item 2): a numeric parameter may be ``{when: value}``; it reaches the scans and the step as
one value per frame, so a timeline never recompiles."""

from __future__ import annotations

import json
from types import SimpleNamespace

import chex
import jax
import numpy as np
import pytest
import soundfile as sf
from audio_signals import SR, click_track

from lsd_jax.cli import build_parser
from lsd_jax.engine import timeline as tl
from lsd_jax.engine.latents import make_latents
from lsd_jax.engine.pipeline import prepare
from lsd_jax.errors import ParamError
from lsd_jax.flags import params_from
from lsd_jax.params import PARAM, Timeline, make_params, parse_value

BACKEND_COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: (
        BACKEND_COMPILES.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
    )
)


# --- parsing -----------------------------------------------------------------------------------------------------


def test_every_key_form_parses_to_a_timeline():
    p = make_params(pulse_react={0: 0.3, "12.5": 0.4, "64b": 0.5, "16bar": 1.5, "B": 1.0, "s3": 0.2, "drop": 2.0})
    assert isinstance(p.pulse_react, Timeline)
    assert p.pulse_react.points == (
        (0.0, 0.3),
        (12.5, 0.4),
        ("64b", 0.5),
        ("16bar", 1.5),
        ("B", 1.0),
        ("s3", 0.2),
        ("drop", 2.0),
    )
    assert p.pulse_react.interp == "step"  # the default: hold until the next point
    assert make_params(motion_react={"0": 0.1, "2 beats": 0.2, "3 bars": 0.3}).motion_react.points == (
        (0.0, 0.1),
        ("2b", 0.2),
        ("3bar", 0.3),
    )


@pytest.mark.parametrize("interp", ["step", "linear", "smooth"])
def test_interp_modes_and_text_round_trip(interp):
    p = make_params(flash_strength={"0": 0.1, "4bar": 0.9, "interp": interp})
    assert p.flash_strength.interp == interp and p.flash_on  # a timeline turns the effect on
    text = PARAM["flash_strength"].format(p.flash_strength)
    assert make_params(flash_strength=parse_value("flash_strength", text)) == p


def test_a_plain_number_stays_a_number():
    assert make_params(pulse_react=0.7).pulse_react == 0.7
    assert parse_value("pulse_react", "0.7") == 0.7


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"9x": 1.0}, "pulse_react: '9x' is not a time"),
        ({"0": 11.0}, "pulse_react: 0: the value must be between 0 and 10, got 11"),
        ({"16bar": "lots"}, "pulse_react: \"16bar\": 'lots' is not a number"),
        ({"0": True}, "pulse_react: 0: the value must be a number, got True"),
        ({}, "pulse_react: a timeline needs at least one"),
        ({"0": 1.0, "interp": "cubic"}, "pulse_react: interp must be one of step, linear, smooth"),
        ({"s0": 1.0}, "pulse_react: 's0': sections are counted from s1"),
        ({-2: 1.0}, "pulse_react: -2: a time must be >= 0 seconds"),
    ],
)
def test_parse_errors_name_the_parameter_and_the_entry(value, message):
    with pytest.raises(ParamError) as e:
        make_params(pulse_react=value)
    assert message in str(e.value)


def test_a_parameter_that_cannot_change_over_the_song_says_so():
    with pytest.raises(ParamError, match="fps cannot change over the song"):
        make_params(fps={"0": 30})
    with pytest.raises(ParamError, match=r"pulse_react: 'x' is not WHEN:VALUE"):
        parse_value("pulse_react", "0:0.3, x")
    with pytest.raises(ParamError, match=r"pulse_react must be a number or a timeline WHEN:VALUE"):
        parse_value("pulse_react", "lots")


# --- resolving keys to per-frame values ------------------------------------------------------------------------


def test_step_linear_and_smooth_between_points():
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    step = tl.resolve("pulse_react", Timeline(((1.0, 0.0), (3.0, 1.0))), times)
    np.testing.assert_array_equal(step, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])  # held before the first, after the last
    linear = tl.resolve("pulse_react", Timeline(((1.0, 0.0), (3.0, 1.0)), "linear"), times)
    np.testing.assert_allclose(linear, [0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    smooth = tl.resolve("pulse_react", Timeline(((1.0, 0.0), (5.0, 1.0)), "smooth"), times)
    np.testing.assert_allclose(smooth, [0.0, 0.0, 0.15625, 0.5, 0.84375, 1.0])  # smoothstep: eased at both ends
    chex.assert_type(step, np.float32)


def test_beats_and_bars_resolve_from_the_song_beats():
    beats = np.arange(36) * 0.5  # 120 BPM: bar k starts at 2k seconds (every 4th beat)
    times = np.arange(0, 18, 0.25)
    v = tl.resolve(
        "pulse_react", make_params(pulse_react={"0": 0.0, "8b": 1.0, "3bar": 2.0}).pulse_react, times, beats=beats
    )
    np.testing.assert_array_equal(v[times < 4.0], 0.0)
    np.testing.assert_array_equal(v[(times >= 4.0) & (times < 6.0)], 1.0)
    np.testing.assert_array_equal(v[times >= 6.0], 2.0)
    half = tl.resolve("pulse_react", Timeline((("0b", 0.0), ("1.5b", 1.0))), np.array([0.7, 0.75]), beats=beats)
    np.testing.assert_array_equal(half, [0.0, 1.0])  # beat 1.5: halfway between beats 1 and 2


def test_a_key_after_the_song_names_its_last_bar():
    beats = np.arange(36) * 0.5  # 36 beats: bars 0..8
    with pytest.raises(ParamError) as e:
        tl.resolve("pulse_react", Timeline(((0.0, 0.3), ("9bar", 1.5))), np.zeros(3), beats=beats)
    assert str(e.value) == 'pulse_react: "9bar" is after the song\'s last bar (8)'
    with pytest.raises(ParamError, match="needs the song's beats, and none were found"):
        tl.resolve("pulse_react", Timeline((("4b", 1.0),)), np.zeros(3))


def _structure():
    """A hand-made analysis: sections A B A C (10 s each), a drop at 25 s."""
    sections = [SimpleNamespace(start=10.0 * i, end=10.0 * (i + 1), label=x) for i, x in enumerate("ABAC")]
    beats = np.arange(80) * 0.5
    return SimpleNamespace(beats=beats, downbeats=beats[::4], sections=sections, drops=[25.0])


def test_section_keys_resolve_from_the_analysis():
    times = np.arange(0.0, 40.0, 1.0)
    v = tl.resolve("motion_react", Timeline((("A", 1.0), ("B", 2.0), ("drop", 5.0))), times, structure=_structure())
    expect = np.select([times < 10, times < 20, times < 25, times < 30], [1.0, 2.0, 1.0, 5.0], 5.0)
    np.testing.assert_array_equal(v, expect)  # each A section restarts at 1.0; the drop lands inside the second A
    s3 = tl.resolve("motion_react", Timeline(((0.0, 0.0), ("s3", 1.0))), times, structure=_structure())
    assert s3[19] == 0.0 and s3[20] == 1.0
    bars = tl.resolve("motion_react", Timeline(((0.0, 0.0), ("2bar", 1.0))), times, structure=_structure())
    assert bars[3] == 0.0 and bars[4] == 1.0  # the analysis' downbeats: bar 2 at 4 s


def test_section_key_errors():
    with pytest.raises(ParamError, match='pulse_react: "B": section keys need the song\'s analysis'):
        tl.resolve("pulse_react", Timeline((("B", 1.0),)), np.zeros(2))
    with pytest.raises(ParamError, match="the song has no section D"):
        tl.resolve("pulse_react", Timeline((("D", 1.0),)), np.zeros(2), structure=_structure())
    with pytest.raises(ParamError, match=r"\"s5\" is after the song's last section \(s4\)"):
        tl.resolve("pulse_react", Timeline((("s5", 1.0),)), np.zeros(2), structure=_structure())


def test_frame_values_are_one_array_per_timeline_parameter():
    p = make_params(pulse_react={"0": 0.2, "1": 0.8}, fps=10.0, start=0.5)
    v = tl.frame_values(p, 20, 10.0)
    assert set(v) == set(tl.TIMELINE_PARAMS)
    for a in v.values():
        chex.assert_shape(a, (20,))
        chex.assert_type(a, np.float32)
    np.testing.assert_array_equal(v["pulse_react"][:5], np.float32(0.2))  # frame i is at 0.5 + i/10 s of the song
    np.testing.assert_array_equal(v["pulse_react"][5:], np.float32(0.8))
    np.testing.assert_array_equal(v["motion_react"], np.float32(0.5))  # a number: a constant array
    np.testing.assert_array_equal(
        v["contrast_strength"], np.float32(0.5)
    )  # unset: its default strength (the effect is off)


# --- into the latents and the render ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_pulse_changes_at_the_given_time_in_the_latents():
    n, fps = 40, 10.0
    rng = np.random.default_rng(0)
    pulse, motion, chroma = rng.random(n), rng.random(n), rng.random((n, 12))
    kw = dict(fps=fps, z_dim=6, c_dim=0)
    calm = make_latents(pulse, motion, chroma, make_params(pulse_react=0.0), **kw).z
    timed = make_latents(pulse, motion, chroma, make_params(pulse_react={"0": 0.0, "2": 3.0}), **kw).z
    np.testing.assert_array_equal(timed[:20], calm[:20])  # before 2 s: exactly the calm latents
    assert np.abs(timed[20:] - calm[20:]).min() > 0  # from 2 s on every frame kicks
    same = make_latents(pulse, motion, chroma, make_params(pulse_react={"0": 0.0}), **kw).z
    np.testing.assert_array_equal(same, calm)  # a one-point timeline is that constant


@pytest.fixture(scope="module")
def beat_song(tmp_path_factory):
    d = tmp_path_factory.mktemp("timeline")
    seconds = 4.0
    sf.write(d / "beats.wav", click_track(list(np.arange(0.25, seconds, 0.5)), seconds), SR)
    return d / "beats.wav"


@pytest.mark.slow
def test_a_render_with_a_timeline_compiles_nothing_new_and_reacts_after_its_time(beat_song, tmp_path):
    kw = dict(fps=10.0, resolution=32, progress=False, seed=3)
    a = prepare(beat_song, pulse_react=0.0, flash_strength=0.0, **kw)
    frames_a = np.asarray(a.frames(np.arange(a.n_frames)))
    before = len(BACKEND_COMPILES)
    b = prepare(beat_song, pulse_react={"0": 0.0, "2": 2.0}, flash_strength={"0": 0.0, "2b": 0.8}, **kw)
    frames_b = np.asarray(b.frames(np.arange(b.n_frames)))
    assert len(BACKEND_COMPILES) - before == 0  # the timelines are per-frame arrays of the same shapes
    first_flash = int(round((np.asarray(b.features.beats.beat_times)[2]) * 10.0))
    cut = min(20, first_flash)
    np.testing.assert_array_equal(frames_b[:cut], frames_a[:cut])  # before both points: the same video
    assert np.abs(frames_b[20:].astype(int) - frames_a[20:]).mean() > 1.0  # after 2 s it reacts


# --- command line ----------------------------------------------------------------------------------------------


def test_cli_flag_takes_a_timeline():
    ns = build_parser().parse_args(["render", "s.wav", "--pulse-react", "0:0.3,16bar:1.5,interp:linear"])
    p = make_params(**params_from(ns))
    assert p.pulse_react == Timeline(((0.0, 0.3), ("16bar", 1.5)), "linear")


def test_timeline_file_holds_all_parameters_and_flags_win(tmp_path):
    f = tmp_path / "timeline.json"
    f.write_text(
        json.dumps({"pulse_react": {"0": 0.3, "16bar": 1.5}, "motion_react": 0.2, "flash_strength": "0:0,8:1"})
    )
    ns = build_parser().parse_args(["render", "s.wav", "--timeline", str(f), "--motion-react", "0.9"])
    p = make_params(**params_from(ns))
    assert p.pulse_react == Timeline(((0.0, 0.3), ("16bar", 1.5)))
    assert p.flash_strength == Timeline(((0.0, 0.0), (8.0, 1.0)))
    assert p.motion_react == 0.9  # the flag given wins over the file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "must hold one JSON object"),
        ('{"pulse_reac": 1}', "unknown parameter 'pulse_reac' (did you mean 'pulse_react'?)"),
        ('{"pulse_react": {"9x": 1}}', "pulse_react: '9x' is not a time"),
    ],
)
def test_timeline_file_errors_name_the_file(tmp_path, text, message):
    f = tmp_path / "t.json"
    f.write_text(text)
    ns = build_parser().parse_args(["render", "s.wav", "--timeline", str(f)])
    with pytest.raises(ParamError) as e:
        make_params(**params_from(ns))
    assert str(f) in str(e.value) and message in str(e.value)
    missing = build_parser().parse_args(["render", "s.wav", "--timeline", str(tmp_path / "none.json")])
    with pytest.raises(ParamError, match="timeline: cannot read"):
        params_from(missing)


# --- live mode -------------------------------------------------------------------------------------------------


def test_live_follows_seconds_and_refuses_beats_bars_and_sections():
    p = make_params(pulse_react={"0": 0.2, "3": 0.9}, contrast_strength={"0": 0.1, "3": 0.4, "interp": "linear"})
    at = tl.params_at(p, 1.5)
    assert at.pulse_react == pytest.approx(0.2) and at.contrast_strength == pytest.approx(0.25)
    assert tl.params_at(p, 4.0).pulse_react == pytest.approx(0.9)
    plain = make_params(pulse_react=0.4)
    assert tl.params_at(plain, 9.0) is plain  # no timeline: the same object, nothing resolved
    for key in ("8b", "2bar", "B", "drop"):
        with pytest.raises(ParamError, match="pulse_react: live mode follows a timeline keyed by seconds"):
            tl.check_live(make_params(pulse_react={"0": 0.1, key: 0.5}))


def test_a_recipe_keeps_its_timelines(tmp_path):
    from lsd_jax.media.recipe import make_recipe, parse_recipe, recipe_text

    p = make_params(pulse_react={"0": 0.3, "16bar": 1.5, "interp": "smooth"}, contrast_strength={12.5: 0.2})
    text = recipe_text(make_recipe(p, tmp_path / "song.wav", ("default", None), version="0", cwd=tmp_path))
    back = parse_recipe(text, tmp_path).params
    assert (back.pulse_react, back.contrast_strength) == (p.pulse_react, p.contrast_strength)


@pytest.mark.slow
def test_a_live_session_refuses_a_bar_timeline_and_takes_a_seconds_one():
    from lsd_jax.live.session import LiveRenderer

    with pytest.raises(ParamError, match="flash_strength: live mode follows a timeline keyed by seconds"):
        LiveRenderer(None, resolution=32, flash_strength={"0": 0.1, "4bar": 0.9})
    r = LiveRenderer(None, resolution=32, pulse_react={"0": 0.1, "2": 1.0})
    assert r.update(motion_react={"0": 0.2, "5": 0.4}).motion_react == Timeline(((0.0, 0.2), (5.0, 0.4)))
    with pytest.raises(ParamError, match="motion_react: live mode"):
        r.update(motion_react={"0": 0.2, "drop": 0.4})


@pytest.mark.slow
def test_a_live_session_runs_with_a_seconds_timeline():
    import time

    from lsd_jax.live.session import LiveRenderer

    frames = []
    r = LiveRenderer(
        None,
        resolution=16,
        fps=10.0,
        adapt=False,
        pulse_react={"0": 0.1, "0.5": 1.0},
        flash_strength={"0": 0.0, "1": 0.5},
    )
    r.add_listener(frames.append)
    with r:
        time.sleep(2.0)  # the clock is real here: this asks only that frames come and nothing fails
    assert r.error is None and len(frames) >= 2


def test_section_keys_analyse_the_songs_form_once_and_only_when_used(beat_song, monkeypatch):
    """A timeline keyed by a section or a drop makes prepare analyse the song's form (lsd_jax.audio.structure,
    cached per song); one keyed by seconds or beats does not."""
    from lsd_jax.audio import structure as st
    from lsd_jax.engine.pipeline import prepare

    calls = []

    def analyze(song, **kw):
        calls.append(str(song))
        form = _structure()
        form.sections = [SimpleNamespace(start=2.0 * i, end=2.0 * (i + 1), label=x) for i, x in enumerate("AB")]
        return form

    monkeypatch.setattr(st, "analyze", analyze)
    kw = dict(resolution=16, fps=8.0, progress=False)
    prepare(beat_song, pulse_react={"0": 0.0, "2b": 1.0}, **kw)
    assert calls == []
    timed = np.asarray(prepare(beat_song, pulse_react={"A": 0.0, "B": 2.0}, **kw).latents.z)
    assert calls == [str(beat_song)]
    calm = np.asarray(prepare(beat_song, pulse_react=0.0, **kw).latents.z)
    chex.assert_equal_shape([timed, calm])
    np.testing.assert_array_equal(timed[:16], calm[:16])  # section A (0-2 s at 8 fps): the calm latents
    assert np.abs(timed[16:] - calm[16:]).max() > 0  # section B pulses
