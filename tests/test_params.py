import dataclasses

import pytest

from lsd_jax import EffectsGenerator, ParamError, RenderParams, make_params


def test_defaults_follow_lucid_sonic_dreams():
    p = RenderParams()
    assert (p.fps, p.speed_fpm, p.pulse_react, p.motion_react, p.motion_randomness, p.truncation) == (
        43.0, 12.0, 0.5, 0.5, 0.5, 1.0)
    assert (p.pulse_percussive, p.pulse_harmonic, p.motion_percussive, p.motion_harmonic) == (True, False, False, True)
    assert (p.class_pitch_react, p.class_smooth_seconds, p.class_complexity, p.class_shuffle_strength) == (
        0.5, 1.0, 1.0, 0.5)
    assert not p.contrast_on and not p.flash_on


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RenderParams().fps = 30  # type: ignore[misc]


@pytest.mark.parametrize("name", ["motion_randomness", "truncation", "class_shuffle_strength",
                                  "contrast_strength", "flash_strength"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_unit_interval_params_rejected(name, value):
    with pytest.raises(ParamError, match=name):
        make_params(**{name: value})


@pytest.mark.parametrize("kwargs, match", [
    ({"fps": 0}, "fps"), ({"fps": 1e6}, "fps"), ({"fps": float("nan")}, "fps"),
    ({"resolution": 15}, "resolution"), ({"resolution": 99}, "even"), ({"resolution": 10**6}, "resolution"),
    ({"width": 320}, "both width and height"), ({"speed_fpm": -1}, "speed_fpm"),
    ({"speed_fpm": 43 * 60 + 1}, "speed_fpm"), ({"pulse_react": 1e9}, "pulse_react"),
    ({"start": -1}, "start"), ({"duration": 0}, "duration"), ({"batch_size": 0}, "batch_size"),
    ({"seed": -3}, "seed"), ({"seed": 1.5}, "seed"), ({"pulse_mode": "beat"}, "pulse_mode"),
    ({"noise_mode": "x"}, "noise_mode"), ({"classes": []}, "classes"), ({"classes": "abc"}, "classes"),
    ({"classes": [1, -2]}, "classes"), ({"class_shuffle_seconds": 0}, "class_shuffle_seconds"),
    ({"pulse_percussive": "yes"}, "pulse_percussive"), ({"custom_effects": [print]}, "EffectsGenerator"),
    ({"fps": True}, "fps"),
])
def test_bad_values_name_the_problem(kwargs, match):
    with pytest.raises(ParamError, match=match):
        make_params(**kwargs)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ParamError, match="did you mean 'pulse_react'"):
        make_params(pulse_reac=0.3)


def test_lsd_bugs_fixed_for_effect_switches():
    p = make_params(contrast_strength=0.0, flash_percussive=False)
    assert p.contrast_on and p.effect_strength("contrast") == 0.0
    assert p.flash_on and p.effect_percussive("flash") is False and p.effect_strength("flash") == 0.5
    assert make_params(contrast_audio="x.wav").contrast_on


def test_normalises_types():
    p = make_params(fps=30, classes=[3, 1], class_shuffle_seconds=[1, 2.5], custom_effects=EffectsGenerator(
        lambda a, s, m: a))
    assert isinstance(p.fps, float) and p.classes == (3, 1) and p.class_shuffle_seconds == (1.0, 2.5)
    assert len(p.custom_effects) == 1
    assert p.replace(seed=4).seed == 4 and p.replace(seed=4).classes == (3, 1)


def test_to_kwargs_round_trips():
    p = make_params(fps=30, classes=[3, 1], pulse_react=1.2)
    assert make_params(**p.to_kwargs()) == p
