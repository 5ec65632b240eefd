"""The page's widgets, generated from the parameter table, and the page's values → params."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

import lsd_jax
from lsd_jax.params import PARAM, PARAMS, RenderParams, make_params, parse_value
from lsd_jax.web import form
from lsd_jax.web.config import AppConfig


def test_every_parameter_is_on_the_page_with_help():
    fields = {f.name for f in dataclasses.fields(RenderParams)} - {"custom_effects"}
    # keyframes come from keyframe_times + the uploaded keyframe images
    page = (set(form.PARAM_INPUTS) - form.PAGE_ONLY) | set(form.STEMS) | {"keyframes"}
    assert page == fields and form.KEYFRAME_IMAGES in form.INPUT_NAMES
    assert len(form.INPUT_NAMES) == len(set(form.INPUT_NAMES))
    assert form.INPUT_NAMES[:3] == ("song", "style", "style_file")
    for f in form.page_fields():
        assert f.help, f.name
        assert f.label and f.label != f.name, f.name  # a human label; the Python name is in the help line
        if f.name in PARAM:
            assert f.help == PARAM[f.name].help and f.group == PARAM[f.name].group and f.label == PARAM[f.name].label
    basic = {
        "pulse_react",
        "motion_react",
        "speed_fpm",
        "truncation",
        "contrast_strength",
        "flash_strength",
        "fps",
        "resolution",
        "start",
        "duration",
        "seed",
        "formats",  # the page's own: which aspects (one file each), see test_web_jobs
    }
    assert set(form.BASIC_NAMES) == basic
    # the page's defaults are the library's defaults, also as the browser sends them (an empty
    # Number shows and sends 0)
    assert make_params(**form.params_from_ui({})) == RenderParams()
    as_sent = {
        k: (0 if v is None else v)
        for k, v in form.ui_defaults().items()
        if k not in form.STEMS and k != form.KEYFRAME_IMAGES
    }
    assert make_params(**form.params_from_ui(as_sent)) == RenderParams()
    # on the page of a server, the excerpt starts at its configured length
    assert form.ui_defaults(AppConfig(excerpt_seconds=20))["duration"] == 20
    # ... and the song's form directs the video (direct="sections": the app's default, the library's is off)
    want = RenderParams(duration=30.0, direct="sections")
    assert make_params(**form.params_from_ui(form.ui_defaults(AppConfig()))) == want


def test_labels_show_the_python_name_in_the_help_line():
    box = form.component(next(f for f in form.page_fields() if f.name == "truncation_psi"))
    assert box.label == "StyleGAN truncation ψ (w space)" and box.info.startswith("truncation_psi: ")
    # the two truncations say how they differ
    assert "truncation_psi" in PARAM["truncation"].help and "truncation's" in PARAM["truncation_psi"].help


@pytest.mark.parametrize("max_resolution", [1024, 500])
def test_sliders_offer_only_valid_values(max_resolution):
    cfg = AppConfig(max_resolution=max_resolution)
    sliders = [f for f in form.page_fields(cfg) if f.kind == "slider"]
    assert {f.name for f in sliders} >= {"resolution", "fps", "pulse_react", "truncation_psi"}
    for f in sliders:
        positions = np.round(f.lo + f.step * np.arange(int((f.hi - f.lo) / f.step + 1e-9) + 1), 9)
        assert len(positions) >= 2 and positions[-1] <= f.hi + 1e-9, f.name
        for v in np.unique(np.r_[positions[:50], positions[-50:]]):
            kw = form.params_from_ui({f.name: float(v)})
            assert make_params(**kw) is not None  # every position is a valid value
    res = next(f for f in sliders if f.name == "resolution")
    assert res.lo == 0 and res.hi == max_resolution and res.step % 2 == 0 and res.note.startswith("0: native")
    for name in ("width", "height"):  # even sizes: the number boxes step by 2
        box = next(f for f in form.page_fields(cfg) if f.name == name)
        assert box.kind == "int" and box.step == 2 and box.hi == max_resolution
    fps = next(f for f in sliders if f.name == "fps")
    assert fps.hi == 60.0 < PARAM["fps"].hi  # the server's limit, tighter than the library's
    speed = next(f for f in form.page_fields(cfg) if f.name == "speed_fpm")  # a number, beat or bar
    assert speed.kind == "speed" and {"beat", "bar", "12"} <= set(speed.choices)
    for choice in speed.choices:
        assert make_params(**form.params_from_ui({"speed_fpm": choice})).speed_fpm == parse_value("speed_fpm", choice)


def test_widgets_follow_the_table():
    by_name = {f.name: f for f in form.page_fields()}
    for p in PARAMS:
        if p.name in form.NOT_ON_PAGE:
            continue
        f = by_name[p.name]
        if p.kind == "speed":
            assert f.kind == "speed" and parse_value(p.name, f.value) == p.default
        elif p.kind in ("number", "integer"):
            assert f.lo == (0 if p.zero_unset else p.lo) and (f.kind == "slider") == p.slider, p.name
        elif p.kind == "choice":
            assert f.kind == "radio" and f.choices == p.choices and f.value == p.default
        elif p.kind == "flag":
            assert f.kind == ("tristate" if p.optional else "checkbox")
        elif p.kind in ("indices", "times", "numbers"):
            assert f.kind == "text" and parse_value(p.name, f.value) == p.default
            assert p.example in f.note


def test_musical_controls_from_the_page():
    kw = form.params_from_ui(
        dict(
            speed_fpm="bar",
            band_react="0.4, 0.2, 0.3",
            noise_react=1.5,
            keyframe_times="10, 42.5",
            keyframe_images=["/up/a.png", "/up/b.png"],
        )
    )
    p = make_params(**kw)
    assert p.speed_fpm == "bar" and p.band_react == (0.4, 0.2, 0.3) and p.noise_react == 1.5
    assert p.keyframes == ((10.0, "/up/a.png"), (42.5, "/up/b.png"))
    assert make_params(**form.params_from_ui(dict(band_react="0.4"))).band_react == (0.4, 0.4, 0.4)
    one = form.params_from_ui(dict(keyframe_times="10", keyframe_images=["/up/a.png"]))
    assert one["keyframes"] == {10.0: "/up/a.png"}
    with pytest.raises(lsd_jax.ParamError, match="keyframe_times: give one time per keyframe image"):
        form.params_from_ui(dict(keyframe_times="10", keyframe_images=["/up/a.png", "/up/b.png"]))
    with pytest.raises(lsd_jax.ParamError, match="keyframe_times must be a number of seconds or comma-separated"):
        form.params_from_ui(dict(keyframe_times="ten", keyframe_images=["/up/a.png"]))
    assert form.params_from_ui(dict(speed_fpm="Beat"))["speed_fpm"] == "beat"
    assert form.params_from_ui(dict(speed_fpm=" 24 "))["speed_fpm"] == 24.0
    with pytest.raises(lsd_jax.ParamError, match="speed_fpm must be a number, beat or bar"):
        form.params_from_ui(dict(speed_fpm="on the downbeat"))


def test_widget_conventions():
    kw = form.params_from_ui(
        dict(
            resolution=0,
            duration=0,
            contrast_strength=0,
            contrast_percussive="full mix",
            flash_strength=0.25,
            flash_percussive="percussive part",
            classes="1, 5,9",
            class_shuffle_seconds="0, 12.5",
            width=None,
            seed=7.0,
        )
    )
    assert kw["resolution"] is None and kw["duration"] is None
    assert kw["contrast_strength"] is None and kw["contrast_percussive"] is None  # 0: the effect is off
    assert kw["flash_strength"] == 0.25 and kw["flash_percussive"] is True
    assert kw["classes"] == (1, 5, 9) and kw["class_shuffle_seconds"] == (0.0, 12.5)
    assert kw["seed"] == 7 and isinstance(kw["seed"], int)
    assert form.params_from_ui(dict(class_shuffle_seconds="4"))["class_shuffle_seconds"] == 4.0
    assert form.params_from_ui(dict(resolution=256.0))["resolution"] == 256  # a slider sends floats
    assert form.params_from_ui(dict(fps="24"))["fps"] == 24  # an API client may send text
    with pytest.raises(lsd_jax.ParamError, match="classes must be comma-separated class indices or names"):
        form.params_from_ui(dict(classes="1, 2.5"))
    assert form.params_from_ui(dict(classes="goldfish, 5"))["classes"] == ("goldfish", 5)  # names: the style resolves
    with pytest.raises(lsd_jax.ParamError, match="unknown parameter 'pulse_reakt' \\(did you mean 'pulse_react'"):
        form.params_from_ui(dict(pulse_reakt=1))
    with pytest.raises(lsd_jax.ParamError, match="fps needs a value"):
        form.params_from_ui(dict(fps=None))
    with pytest.raises(lsd_jax.ParamError, match="contrast_percussive must be one of default"):
        form.params_from_ui(dict(contrast_percussive="sometimes"))


@pytest.mark.parametrize(
    "name, text",
    [("classes", "1,2,3"), ("class_shuffle_seconds", "1.5,3"), ("band_react", "0.4"), ("band_edges_hz", "300,3000")],
)
def test_text_boxes_read_text_like_the_command_line(name, text):
    from lsd_jax.cli import build_parser

    ns = build_parser().parse_args(["render", "x.wav", f"--{name}", text])
    assert form.params_from_ui({name: text})[name] == getattr(ns, name) == parse_value(name, text)


def test_out_of_range_values_reach_the_table_which_names_the_parameter():
    slider = form.component(next(f for f in form.page_fields() if f.name == "pulse_react"))
    assert slider.preprocess(20) == 20  # not Gradio's unnamed range error ...
    with pytest.raises(lsd_jax.ParamError, match="pulse_react must be between 0 and 10, got 20"):
        make_params(**form.params_from_ui({"pulse_react": slider.preprocess(20)}))  # ... but the table's
    assert slider.get_block_name() == "slider" and slider.elem_id == "param-pulse_react"
    box = form.component(next(f for f in form.page_fields() if f.name == "seed"))
    with pytest.raises(gr.Error, match="seed must be a number"):
        box.preprocess([1])
    assert not Path(form.__file__).with_suffix(".pyi").exists()  # no Component subclass: Gradio writes no stub


def _user_catalogue(monkeypatch, tmp_path, urls):
    import json

    from lsd_jax.store.catalogue import USER_STYLES_ENV

    path = tmp_path / "user_styles.json"
    path.write_text(json.dumps({"schema": 1, "styles": [{"name": "far away", "urls": urls}]}))
    monkeypatch.setenv(USER_STYLES_ENV, str(path))


def test_style_menu_lists_the_default_first_then_what_this_server_can_get(monkeypatch, tmp_path):
    from lsd_jax.store.catalogue import fetchable, load_catalogue

    _user_catalogue(monkeypatch, tmp_path, ["ftp://example.org/far-away.pkl"])  # a scheme nothing fetches
    names = form.catalogue_names()
    cat = load_catalogue()
    assert names[0] == "default" and "wikiart" in names and "far away" in names
    choices = form.style_choices()
    assert choices[0] == ("default (embedded, no download)", "default")
    unfetchable = [n for n in names[1:] if not fetchable(cat[n])]
    assert "far away" in unfetchable
    assert [v for _, v in choices] == [n for n in names if n not in unfetchable]
    everything = form.style_choices(show_all=True)  # the ones it cannot get listed apart, after the others
    assert [v for _, v in everything] == [v for _, v in choices] + unfetchable
    marked = {v for label, v in everything if "— unavailable: lsd-jax cannot download from example.org" in label}
    assert marked == {"far away"} and {v for label, v in everything if "— unavailable: " in label} == set(unfetchable)


def test_a_broken_user_catalogue_does_not_take_the_menu_down(monkeypatch, caplog):
    import lsd_jax.store.catalogue

    def broken():
        raise lsd_jax.LsdError("user_styles.json is not JSON")

    monkeypatch.setattr(lsd_jax.store.catalogue, "load_catalogue", broken)
    assert form.catalogue_names() == ["default"] and form.style_choices() == [
        ("default (embedded, no download)", "default")
    ]
    assert "style catalogue unavailable" in caplog.text


def test_every_slider_is_marked_for_the_page_to_keep_typed_values():
    """Gradio's slider clamps a typed value into its range in the browser (500 fps became 60 without a word): the
    page's script keeps the value of every ``.lsd-checked`` slider (page.FIELDS_JS) for the table to refuse."""
    from lsd_jax.web import page

    sliders = [f for f in form.page_fields() if f.kind == "slider"]
    assert {"fps", "pulse_react", "resolution"} <= {f.name for f in sliders}
    for f in sliders:
        c = form.component(f)
        assert "lsd-checked" in c.elem_classes, f.name
        assert c.preprocess(f.hi * 10 + 1) == f.hi * 10 + 1 and c.preprocess(f.lo - 1) == f.lo - 1  # not clamped
    assert ".lsd-checked" in page.FIELDS_JS and "stopPropagation" in page.FIELDS_JS
