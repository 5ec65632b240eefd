import dataclasses
import re
import types
import typing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsd_jax import EffectsGenerator, ParamError, RenderParams, make_params
from lsd_jax import params as P


def test_defaults_follow_lucid_sonic_dreams():
    p = RenderParams()
    assert (p.fps, p.speed_fpm, p.pulse_react, p.motion_react, p.motion_randomness, p.truncation) == (
        43.0,
        12.0,
        0.5,
        0.5,
        0.5,
        1.0,
    )
    assert (p.pulse_percussive, p.pulse_harmonic, p.motion_percussive, p.motion_harmonic) == (True, False, False, True)
    assert (p.class_pitch_react, p.class_smooth_seconds, p.class_complexity, p.class_shuffle_strength) == (
        0.5,
        1.0,
        1.0,
        0.5,
    )
    assert not p.contrast_on and not p.flash_on


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RenderParams().fps = 30  # type: ignore[misc]


@pytest.mark.parametrize(
    "name", ["motion_randomness", "truncation", "class_shuffle_strength", "contrast_strength", "flash_strength"]
)
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_unit_interval_params_rejected(name, value):
    with pytest.raises(ParamError, match=name):
        make_params(**{name: value})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fps": 0}, "fps"),
        ({"fps": 1e6}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"resolution": 15}, "resolution"),
        ({"resolution": 99}, "even"),
        ({"resolution": 10**6}, "resolution"),
        ({"width": 320}, "both width and height"),
        ({"speed_fpm": -1}, "speed_fpm"),
        ({"speed_fpm": 43 * 60 + 1}, "speed_fpm"),
        ({"pulse_react": 1e9}, "pulse_react"),
        ({"start": -1}, "start"),
        ({"duration": 0}, "duration"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -3}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"pulse_mode": "beat"}, "pulse_mode"),
        ({"noise_mode": "x"}, "noise_mode"),
        ({"classes": []}, "classes"),
        ({"classes": "abc"}, "classes"),
        ({"classes": [1, -2]}, "classes"),
        ({"class_shuffle_seconds": 0}, "class_shuffle_seconds"),
        ({"pulse_percussive": "yes"}, "pulse_percussive"),
        ({"custom_effects": [print]}, "EffectsGenerator"),
        ({"fps": True}, "fps"),
    ],
)
def test_bad_values_name_the_problem(kwargs, match):
    with pytest.raises(ParamError, match=match):
        make_params(**kwargs)


def test_chroma_is_a_choice_of_stft_or_cqt_and_live_mode_refuses_cqt():
    assert make_params().chroma == "stft" and make_params(chroma="cqt").chroma == "cqt"
    assert P.parse_value("chroma", "cqt") == "cqt"
    with pytest.raises(ParamError, match="chroma must be one of stft, cqt; got 'CQT'"):
        make_params(chroma="CQT")
    from lsd_jax.live.session import LIVE_PARAMS, SUPPORTED_PARAMS, LiveRenderer

    assert "chroma" not in SUPPORTED_PARAMS and "chroma" not in LIVE_PARAMS  # no live flag, no slider
    LiveRenderer._check(make_params())
    with pytest.raises(ParamError, match="chroma='cqt'.*live mode computes the STFT chroma"):
        LiveRenderer._check(make_params(chroma="cqt"))


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ParamError, match="did you mean 'pulse_react'"):
        make_params(pulse_reac=0.3)


def test_lsd_bugs_fixed_for_effect_switches():
    p = make_params(contrast_strength=0.0, flash_percussive=False)
    assert p.contrast_on and p.effect_strength("contrast") == 0.0
    assert p.flash_on and p.effect_percussive("flash") is False and p.effect_strength("flash") == 0.5
    assert make_params(contrast_audio="x.wav").contrast_on


def test_normalises_types():
    p = make_params(
        fps=30, classes=[3, 1], class_shuffle_seconds=[1, 2.5], custom_effects=EffectsGenerator(lambda a, s, m: a)
    )
    assert isinstance(p.fps, float) and p.classes == (3, 1) and p.class_shuffle_seconds == (1.0, 2.5)
    assert len(p.custom_effects) == 1
    assert p.replace(seed=4).seed == 4 and p.replace(seed=4).classes == (3, 1)


def test_to_kwargs_round_trips():
    p = make_params(fps=30, classes=[3, 1], pulse_react=1.2)
    assert make_params(**p.to_kwargs()) == p


# --- the parameter table -------------------------------------------------------------------------------

# what each kind may hold, as the field's annotation says it
KIND_TYPES = {
    P.NUMBER: {float},
    P.INTEGER: {int},
    P.FLAG: {bool},
    P.CHOICE: {str},
    P.PATH: {str},
    P.INDICES: {tuple},
    P.TIMES: {float, tuple},
    P.NUMBERS: {tuple},
    P.SPEED: {float, str},
    P.KEYFRAMES: {tuple},
    P.EFFECTS: {tuple},
}
# Lucid Sonic Dreams' hallucinate() defaults (its docs' parameter table), where ours are the same
LSD_DEFAULTS = dict(
    fps=43,
    resolution=None,
    start=0,
    duration=None,
    speed_fpm=12,
    pulse_percussive=True,
    pulse_harmonic=False,
    pulse_react=0.5,
    motion_percussive=False,
    motion_harmonic=True,
    motion_react=0.5,
    motion_randomness=0.5,
    truncation=1,
    classes=None,
    dominant_classes_first=False,
    class_pitch_react=0.5,
    class_smooth_seconds=1,
    class_complexity=1,
    class_shuffle_seconds=None,
    class_shuffle_strength=0.5,
    contrast_strength=None,
    contrast_percussive=None,
    flash_strength=None,
    flash_percussive=None,
    output_audio=None,
    pulse_audio=None,
    motion_audio=None,
    class_audio=None,
    contrast_audio=None,
    flash_audio=None,
)


def test_every_field_has_one_complete_row():
    hints = typing.get_type_hints(RenderParams)
    assert [p.name for p in P.PARAMS] == [f.name for f in dataclasses.fields(RenderParams)]
    for p in P.PARAMS:
        assert p.help and "\n" not in p.help and p.group in P.GROUPS, p
        hint = hints[p.name]
        args = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        origins = {typing.get_origin(a) or a for a in args}
        assert (type(None) in origins) == p.optional, p.name
        assert origins - {type(None)} == KIND_TYPES[p.kind], p.name
        assert p.kind != P.CHOICE or p.default in p.choices
        assert not (p.kind == P.FLAG and p.optional) or None in dict(p.labels).values(), p.name  # a radio's labels
        assert p.kind not in (P.NUMBER, P.INTEGER) or p.lo is not None, p.name  # every number has a range
        if p.slider:  # a slider needs both ends and a step
            assert p.step and (p.ui_hi or p.hi) is not None, p.name
    assert set(P.GROUPS) == {p.group for p in P.PARAMS}


def test_lucid_sonic_dreams_names_and_defaults():
    lsd = {p.name: p for p in P.PARAMS if p.lsd}
    assert set(LSD_DEFAULTS) | {"batch_size", "custom_effects"} == set(lsd)
    for name, default in LSD_DEFAULTS.items():
        assert lsd[name].lsd == name and lsd[name].default == default, name
    assert lsd["batch_size"].lsd_note  # LSD's default is 1; ours is automatic


@pytest.mark.parametrize(
    "p", [p for p in P.PARAMS if p.kind in (P.NUMBER, P.INTEGER) and p.lo is not None], ids=lambda p: p.name
)
def test_ranges_come_from_the_table(p):
    lo = p.lo + (2 if p.even and p.lo % 2 else 0)
    base = {"width": 64, "height": 64} if p.name in ("width", "height") else {}

    def make(v):
        return make_params(**{**base, p.name: v})

    if not p.lo_open:
        assert getattr(make(lo), p.name) == lo
    with pytest.raises(ParamError, match=rf"^{p.name} must be"):
        make(p.lo - (1 if p.kind == P.INTEGER else 1e-3) if not p.lo_open else p.lo)
    if p.hi is not None:
        assert getattr(make(p.hi), p.name) == p.hi
        with pytest.raises(ParamError, match=rf"^{p.name} must be"):
            make(p.hi + (2 if p.kind == P.INTEGER else 1e-3))


def test_single_band_react_number_is_all_three_bands():
    assert make_params(band_react=0.4).band_react == (0.4, 0.4, 0.4)
    with pytest.raises(ParamError, match="band_edges_hz"):
        make_params(band_edges_hz=300)
    with pytest.raises(ParamError, match="band_edges_hz must be increasing"):
        make_params(band_edges_hz=(2000, 250))
    with pytest.raises(ParamError, match="band_react must be between 0 and 10"):
        make_params(band_react=(0.1, 11, 0))


# --- the one text parser -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text, value",
    [
        ("classes", "1,2,3", (1, 2, 3)),
        ("classes", " 1; 5 ,9 ", (1, 5, 9)),
        ("classes", "", None),
        ("class_shuffle_seconds", "4", 4.0),
        ("class_shuffle_seconds", "1.5,3", (1.5, 3.0)),
        ("class_shuffle_seconds", "4,", (4.0,)),
        ("class_shuffle_seconds", "none", None),
        ("band_react", "0.4", (0.4, 0.4, 0.4)),
        ("band_react", "0.4, 0.2, 0.3", (0.4, 0.2, 0.3)),
        ("band_react", "", (0.0, 0.0, 0.0)),
        ("band_edges_hz", "300,3000", (300.0, 3000.0)),
        ("speed_fpm", "beat", "beat"),
        ("speed_fpm", "Bar", "bar"),
        ("speed_fpm", "24", 24.0),
        ("keyframes", "42=cover.png,60=x.png", {42.0: "cover.png", 60.0: "x.png"}),
        ("keyframes", "1.5 = my cover=1.png", {1.5: "my cover=1.png"}),
        ("pulse_percussive", "off", False),
        ("flash_percussive", "Yes", True),
        ("flash_percussive", "none", None),
        ("seed", "7", 7),
        ("fps", "29.97", 29.97),
        ("pulse_mode", "Onset", "onset"),
        ("duration", "none", None),
        ("pulse_audio", " drums.wav ", "drums.wav"),
    ],
)
def test_parse_value(name, text, value):
    assert P.parse_value(name, text) == value
    make_params(**{name: value})  # and it is what make_params takes
    if not isinstance(value, str):
        assert P.parse_value(name, value) is value  # anything but text passes unchanged


@pytest.mark.parametrize(
    "name, text, form",
    [
        ("classes", "1, 2.5", "comma-separated class indices or names, e.g. 1, 5, 9 or goldfish, daisy"),
        ("class_shuffle_seconds", "4 s", "a number of seconds or comma-separated times"),
        ("band_react", "0.4,0.2", "one number (for all) or 3 comma-separated numbers"),
        ("band_edges_hz", "300", "2 comma-separated numbers"),
        ("speed_fpm", "fast", "a number, beat or bar"),
        ("keyframes", "cover.png", "comma-separated TIME=IMAGE pairs"),
        ("keyframes", "x=cover.png", "comma-separated TIME=IMAGE pairs"),
        ("pulse_percussive", "maybe", "true or false"),
        ("fps", "nan", "a number"),
        ("seed", "seven", "a whole number"),
    ],
)
def test_parse_errors_name_the_parameter_the_text_and_the_form(name, text, form):
    with pytest.raises(ParamError) as e:
        P.parse_value(name, text)
    msg = str(e.value)
    assert msg.startswith(f"{name} must be ") and repr(text) in msg and form in msg, msg


def test_parse_rejects_unknown_names_and_python_only_values():
    with pytest.raises(ParamError, match="did you mean 'band_react'"):
        P.parse_value("band_reacts", "1")
    with pytest.raises(ParamError, match=r"custom_effects must be a list of lsd_jax.EffectsGenerator \(Python only\)"):
        P.parse_value("custom_effects", "x")


def test_table_examples_parse():
    for p in P.PARAMS:
        for example in filter(None, p.example.split(" or ")):
            make_params(**{p.name: p.parse(example)})


def _valid(p: P.Param) -> st.SearchStrategy:
    """Valid values of ``p`` (integers and floats that text can represent)."""
    lo = p.lo if p.lo is not None else -1e6
    hi = p.hi if p.hi is not None else lo + 1e4
    floats = st.floats(lo, hi, exclude_min=p.lo_open, allow_nan=False)
    if p.kind == P.NUMBER:
        return floats
    if p.kind == P.INTEGER:
        ints = st.integers(int(lo), int(hi))
        return ints.map(lambda v: v - v % 2 if v % 2 else v).filter(lambda v: v >= lo) if p.even else ints
    if p.kind == P.FLAG:
        return st.booleans()
    if p.kind == P.CHOICE:
        return st.sampled_from(p.choices)
    if p.kind == P.PATH:
        return st.from_regex(r"[A-Za-z0-9_./-]{1,20}", fullmatch=True).filter(lambda s: s.lower() != "none")
    if p.kind == P.INDICES:
        return st.lists(st.integers(0, 999), min_size=1, max_size=12).map(tuple)
    if p.kind == P.TIMES:
        return st.floats(1e-3, 1e4) | st.lists(st.floats(0, 1e4), min_size=1, max_size=5).map(tuple)
    if p.kind == P.NUMBERS:
        return st.lists(floats, min_size=p.size, max_size=p.size).map(tuple)
    if p.kind == P.SPEED:
        return st.floats(0, 60) | st.sampled_from(P.SPEED_MODES)
    if p.kind == P.KEYFRAMES:
        return st.dictionaries(
            st.floats(0, 1e4), st.from_regex(r"[A-Za-z0-9_./-]{1,12}", fullmatch=True), min_size=1, max_size=4
        )
    raise AssertionError(p.kind)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.sampled_from([p for p in P.PARAMS if not p.api_only]).flatmap(lambda p: st.tuples(st.just(p), _valid(p))))
def test_format_then_parse_round_trips(case):
    p, value = case
    text = p.format(value)
    assert isinstance(text, str)
    assert p.check(p.parse(text)) == p.check(value), (p.name, value, text)


# --- the README's parameter reference ------------------------------------------------------------------


def test_readme_holds_the_generated_reference():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(P.MARKDOWN_BEGIN) + ".*?" + re.escape(P.MARKDOWN_END), readme, re.S)
    assert found, "README.md has no generated parameter reference: paste `lsd-jax params --markdown` into it"
    assert found.group(0) == P.markdown(), "README.md's parameter reference is stale: run `lsd-jax params --markdown`"
    for p in P.PARAMS:  # every parameter, with its range and default
        row = next(line for line in P.markdown().splitlines() if line.startswith(f"| `{p.name}` |"))
        assert P._md(p.range_text()) in row and p.help.replace("|", "\\|") in row
