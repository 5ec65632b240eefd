"""The CLI talks (issue 28): help texts with each command's own defaults, errors that suit a terminal user."""

import argparse

import pytest

from lsd_jax.cli import build_parser, main
from lsd_jax.errors import DownloadError


def _subparser(name: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def _help_of(ap: argparse.ArgumentParser, flag: str) -> str:
    (action,) = [a for a in ap._actions if flag in a.option_strings]
    return action.help


def test_live_help_shows_live_defaults_and_safetensors(capsys):
    from lsd_jax.web.live_page import build_parser as live_parser

    ap = live_parser()
    assert _help_of(ap, "--fps").endswith("default: 30]")
    assert _help_of(ap, "--resolution").endswith("default: 256]")
    assert ".safetensors" in _help_of(ap, "--style") and ".npz" not in _help_of(ap, "--style")
    with pytest.raises(SystemExit):
        main(["live", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: 30]" in out and "default: 256]" in out and "default: 43" not in out


def test_render_help_keeps_render_defaults():
    r = _subparser("render")
    assert _help_of(r, "--fps").endswith("default: 43]")
    assert _help_of(r, "--resolution").endswith("(512 for the default)]")


def test_demo_help_has_help_for_every_flag_and_its_own_defaults():
    d = _subparser("demo")
    missing = [a.option_strings for a in d._actions if a.help is None]
    assert missing == []
    assert _help_of(d, "--resolution").endswith("default: 256]")
    assert _help_of(d, "--contrast-strength").endswith("default: 0.3]")


def test_dmv_without_a_model_says_model_folder(monkeypatch, tmp_path, capsys):
    import lsd_jax.dmv.pipeline as dmv

    def offline(*a, **k):
        raise DownloadError("Cannot download https://x/biggan.bin: offline.")

    monkeypatch.setattr(dmv, "deep_music_visualizer", offline)
    assert main(["dmv", str(tmp_path / "song.wav")]) == 2
    err = capsys.readouterr().err
    assert "--model FOLDER" in err and "offline" in err and "Traceback" not in err
    assert main(["dmv", str(tmp_path / "song.wav"), "--model", "x"]) == 2  # a model given: its own error, as is
    assert "--model FOLDER" not in capsys.readouterr().err


def test_a_misspelt_style_points_to_lsd_jax_styles(capsys):
    from lsd_jax.store.catalogue import find_style

    with pytest.raises(Exception) as ei:
        find_style("wikiartt")
    assert "`lsd-jax styles`" in str(ei.value) and "show_styles" not in str(ei.value)
