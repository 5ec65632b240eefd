"""Deep Music Visualizer mode's parameter table: one row per DMVParams field, DMV's defaults, text parsing, the
command line's flags and the README's table all from it."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import Path

import pytest

from lsd_jax.cli import build_parser, main
from lsd_jax.dmv.params import (
    DMV_MARKDOWN_BEGIN,
    DMV_MARKDOWN_END,
    DMV_PARAM,
    DMV_PARAMS,
    DMVParams,
    dmv_markdown,
    make_dmv_params,
)
from lsd_jax.errors import ParamError


def test_table_is_the_dataclass_with_dmvs_defaults() -> None:
    assert [p.name for p in DMV_PARAMS] == [f.name for f in dataclasses.fields(DMVParams)]
    defaults = {p.name: p.default for p in DMV_PARAMS}
    assert defaults == {
        "resolution": 512,
        "width": None,  # ours (issue 22): another aspect, made by the generator (frame_fit)
        "height": None,
        "frame_fit": "native",
        "duration": None,
        "pitch_sensitivity": 220,
        "tempo_sensitivity": 0.25,
        "depth": 1.0,
        "classes": None,
        "num_classes": 12,
        "sort_classes_by_power": False,
        "jitter": 0.5,
        "frame_length": 512,
        "truncation": 1.0,
        "smooth_factor": 20,
        "batch_size": 30,
        "output_file": "output.mp4",
        "seed": 0,
    }
    assert DMV_PARAM["seed"].lsd is None and DMV_PARAM["jitter"].lsd == "jitter"  # seed is ours, the rest DMV's
    assert all(DMV_PARAM[n].lsd is None for n in ("width", "height", "frame_fit"))
    p = DMVParams()
    assert p.fps == Fraction(22050, 512) and isinstance(p.resolution, int)
    assert p.size == (512, 512) and DMVParams(width=64, height=36).size == (36, 64)
    with pytest.raises(ParamError, match="give both width and height"):
        DMVParams(width=64)


@pytest.mark.parametrize(
    "name, text, value",
    [
        ("resolution", "256", 256),
        ("classes", "goldfish, 5, n01440764", (1, 5, 0)),
        ("duration", "none", None),
        ("sort_classes_by_power", "yes", True),
        ("output_file", "a b.mp4", "a b.mp4"),
        ("frame_length", "1024", 1024),
    ],
)
def test_text_values_parse_through_the_table(name, text, value) -> None:
    parsed = DMV_PARAM[name].parse(text)
    kw = {name: parsed}
    if name == "classes":
        kw["num_classes"] = 3
    assert getattr(make_dmv_params(**kw), name) == value


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(resolution=300), "resolution must be one of 128, 256, 512"),
        (dict(resolution=True), "resolution"),
        (dict(frame_length=500), "multiple of 64"),
        (dict(depth=0), "depth must be > 0"),
        (dict(classes=["goldfsh"] * 12), "did you mean"),
        (dict(pitch_sensitivity=300), "pitch_sensitivity"),
        (dict(output_file=""), "output_file must be a file name"),
        (dict(tempo_sensitivty=1), "did you mean"),
    ],
)
def test_bad_values_are_clear_errors(kw, match) -> None:
    with pytest.raises(ParamError, match=match):
        make_dmv_params(**kw)


def test_cli_flags_come_from_the_table(capsys) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["dmv"]
    flags = {opt for a in sub._actions for opt in a.option_strings}
    for p in DMV_PARAMS:
        assert f"--{p.name.replace('_', '-')}" in flags and f"--{p.name}" in flags or "_" not in p.name
        action = next(a for a in sub._actions if f"--{p.name.replace('_', '-')}" in a.option_strings)
        assert p.help in action.help.replace("%%", "%") and p.default_text() in action.help
    ns = build_parser().parse_args(
        [
            "dmv",
            "s.mp3",
            "--pitch_sensitivity",
            "250",
            "--classes",
            "goldfish,daisy",
            "--resolution",
            "128",
            "-o",
            "x.mp4",
        ]
    )
    assert (ns.pitch_sensitivity, ns.classes, ns.resolution, ns.output_file) == (
        250,
        ("goldfish", "daisy"),
        128,
        "x.mp4",
    )
    assert main(["dmv", "s.mp3", "--resolution", "300"]) == 2  # checked by the table before any work
    assert "resolution must be one of 128, 256, 512" in capsys.readouterr().err


def test_readme_holds_the_generated_table(capsys) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(DMV_MARKDOWN_BEGIN) + ".*?" + re.escape(DMV_MARKDOWN_END), readme, re.S)
    assert found, "README.md has no DMV parameter table: paste `lsd-jax params --dmv --markdown` into it"
    assert found.group(0) == dmv_markdown(), "README.md's DMV table is stale: run `lsd-jax params --dmv --markdown`"
    assert main(["params", "--dmv", "--markdown"]) == 0
    assert capsys.readouterr().out == dmv_markdown() + "\n"
    assert main(["params", "--dmv"]) == 0
    assert "pitch_sensitivity" in capsys.readouterr().out
