"""The CLI talks (issue 28): help texts with each command's own defaults, errors that suit a terminal user, stage lines
and an estimate before the bar, `lsd-jax preview` and `--excerpt loudest`."""

import argparse
import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from lsd_jax.cli import _estimate, _loudest_excerpt, _record_speed, _StageLines, build_parser, main
from lsd_jax.errors import DownloadError, ParamError
from lsd_jax.params import make_params
from lsd_jax.store.speeds import SpeedBook, load_speeds, save_speeds, speed_key


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


# ------------------------------------------------------------------------------------ stage lines and the estimate


@pytest.fixture(scope="module")
def loud_song(tmp_path_factory):
    """10 s at 22050 Hz: a quiet tone, loud from 6 s to 8 s."""
    sr = 22050
    t = np.arange(sr * 10) / sr
    y = 0.01 * np.sin(2 * np.pi * 440 * t)
    y[6 * sr : 8 * sr] *= 50
    path = tmp_path_factory.mktemp("talks") / "loud.wav"
    sf.write(path, y.astype(np.float32), sr)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LSD_JAX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_stage_lines_say_each_start_and_the_first_frames(capsys):
    lines = _StageLines(True)
    lines("decoding and analysing the song", None)
    lines("decoding and analysing the song", 2.5)  # an ordinary stage's end: its time is the next stamp
    lines("compiling (the first batch)", None)
    lines("compiling (the first batch)", 1.25)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert all(ln.startswith("lsd-jax: [") and " s] " in ln for ln in err)
    assert err[0].endswith("] decoding and analysing the song …")
    assert err[1].endswith("] compiling (the first batch) …")
    assert err[2].endswith("] compiled in 1.2 s (the first batch): rendering")
    quiet = _StageLines(False)
    quiet("loading the style", None)
    quiet.say("anything")
    assert capsys.readouterr().err == ""


def test_excerpt_loudest_picks_the_loud_stretch(loud_song, capsys):
    assert _loudest_excerpt(loud_song, "loudest:2", {}, _StageLines(False)) == {"start": 6.0, "duration": 2.0}
    assert _loudest_excerpt(loud_song, "Loudest", {}, _StageLines(False)) == {}  # 10 s song, 30 s: all of it
    for text, words in [("loud", "loudest:SECONDS"), ("loudest:x", "number of seconds"), ("loudest:0", "more than 0")]:
        with pytest.raises(ParamError, match=words):
            _loudest_excerpt(loud_song, text, {}, _StageLines(False))
    with pytest.raises(ParamError, match="leave out --start"):
        _loudest_excerpt(loud_song, "loudest", {"start": 1.0}, _StageLines(False))


def test_render_excerpt_errors_come_before_any_work(loud_song, tmp_path, capsys):
    assert main(["render", str(loud_song), "-o", str(tmp_path / "o.mp4"), "--excerpt", "loudest:2", "--duration", "3"])
    err = capsys.readouterr().err
    assert "lsd-jax: error: --excerpt chooses the start and length itself: leave out --duration" in err
    assert not (tmp_path / "o.mp4").exists()


def test_estimate_reads_this_machines_measured_speed(loud_song, cache, capsys):
    params = {"fps": 10.0, "resolution": 32}
    key, seconds, n = _estimate(loud_song, None, params, _StageLines(True))
    assert (seconds, n) == (10.0, 100)
    assert "100 frames (10.0 s at 10 fps); no estimate yet" in capsys.readouterr().err
    book = SpeedBook()
    book.record(key, frames_per_s=20.0, compile_s=3.0, source="render")
    book.record_preparation(2.0, 10.0)  # one job's: a constant until three lengths show a slope
    book.record_startup(3.0)  # importing JAX
    save_speeds(book)
    assert key == speed_key("default", make_params(**params))
    _estimate(loud_song, "default", params, _StageLines(True))
    err = capsys.readouterr().err
    # 3 s importing + 2 s preparing + 3 s compiling + 100 frames / 20 frames/s = 13 s, in 5 s steps; the parts add up
    assert (
        "estimate: about 15 s (3 s starting + 2 s preparing + 3 s compiling + 100 frames at 20.0 frames/s (5 s)), "
        "from the speeds earlier renders measured on this machine" in err
    )
    _estimate(loud_song, None, {**params, "start": 4.0, "duration": 2.0}, _StageLines(True))
    assert "20 frames (2.0 s at 10 fps); estimate: about 10 s" in capsys.readouterr().err  # 3 + 2 + 3 + 1, 5 s steps


def test_a_render_records_its_speed_for_the_next_estimate(cache):
    from lsd_jax.engine.pipeline import Timings

    key = speed_key("default", make_params(fps=10.0, resolution=32))
    t = Timings(frames=6.0, total=10.0, compile=2.0, first_batch=8, n_frames=88)
    _record_speed(key, SimpleNamespace(timings=t, fps=10.0, n_frames=88), import_s=2.5)
    got = load_speeds().get(key)
    assert got is not None and got.source == "render"
    np.testing.assert_allclose(got.frames_per_s, 80 / 4.0)  # the frames after the first batch, over their time
    np.testing.assert_allclose(got.compile_s, 2.0 - 8 / 20.0)  # the first batch's time beyond its frames
    e = load_speeds().estimate(key, 8.8, 10.0)
    np.testing.assert_allclose(e.seconds, 4.0 / 8.8 * 8.8 + 1.6 + 88 / 20.0)
    assert load_speeds().startup_s == 2.5
    # a second render: the mean of both (a shared machine varies from run to run)
    t2 = Timings(frames=3.0, total=5.0, compile=1.0, first_batch=8, n_frames=88)  # 40 frames/s, 2 s preparing
    _record_speed(key, SimpleNamespace(timings=t2, fps=10.0, n_frames=88), import_s=1.5)
    book = load_speeds()
    np.testing.assert_allclose(book.get(key).frames_per_s, 2 / (1 / 20 + 1 / 40))  # the mean time per frame
    np.testing.assert_allclose(book.get(key).compile_s, (1.6 + (1.0 - 8 / 40)) / 2)
    np.testing.assert_allclose([book.prep_seconds(8.8), book.startup_s], [(4.0 + 2.0) / 2, 2.0])
    before = json.loads((cache / "speeds.json").read_text())
    _record_speed(key, SimpleNamespace(timings=Timings(n_frames=8, first_batch=8, compile=1.0), fps=10.0, n_frames=8))
    assert json.loads((cache / "speeds.json").read_text()) == before  # one batch: nothing to measure, nothing kept


@pytest.mark.slow  # a Python process that imports lsd_jax (about 2 s on a loaded 2-core machine)
def test_first_stage_line_comes_before_jax_is_imported(loud_song, tmp_path):
    # Timing it would fail on a loaded machine; the order is what makes it fast: the first lines (and the estimate)
    # are printed before JAX is imported. A stand-in engine keeps the child from importing JAX at all.
    code = textwrap.dedent(
        f"""
        import io, json, sys, types
        from lsd_jax import cli
        seen = []
        class Err(io.StringIO):
            def write(self, s):
                if s.strip():
                    seen.append([s.strip(), "jax" in sys.modules])
                return len(s)
        sys.stderr = Err()
        fake = types.ModuleType("lsd_jax.engine.pipeline")
        def render(*a, **k):
            raise cli.LsdError("stand-in engine")
        fake.render = render
        sys.modules["lsd_jax.engine.pipeline"] = fake
        rc = cli.main(["render", {str(loud_song)!r}, "-o", {str(tmp_path / "o.mp4")!r}])
        print(json.dumps([rc, seen]))
        """
    )
    env = {**__import__("os").environ, "LSD_JAX_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    rc, seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert rc == 2 and seen[-1][0] == "lsd-jax: error: stand-in engine"
    texts = [s for s, _ in seen]
    assert texts[0].startswith("lsd-jax: [") and texts[0].endswith("starting …")
    assert "no estimate yet" in texts[1] and texts[2].endswith("importing JAX …")
    assert not any(jax for _, jax in seen), "JAX was imported before the render started"


def test_speeds_file_round_trips_and_a_bad_file_is_an_empty_book(cache):
    key = speed_key("wikiart", make_params(resolution=64, fps=20.0))
    book = SpeedBook()
    book.record(key, 12.5, 4.0, "render")
    book.record_preparation(3.0, 30.0)
    book.record_startup(1.5)
    save_speeds(book)
    again = load_speeds()
    assert again.get(key) == book.get(key) and again.startup_s == 1.5
    assert not again.estimate(key, 30.0, 20.0).compiled  # a new process compiles again: the estimate counts it
    np.testing.assert_allclose(again.estimate(key, 30.0, 20.0).seconds, 3.0 + 4.0 + 600 / 12.5)
    (cache / "speeds.json").write_text("{not json")
    assert load_speeds().get(key) is None
    (cache / "speeds.json").write_text(json.dumps({"speeds": [[["x"], "fast", 1, "render"], [["y"], -1, 0, "r"]]}))
    assert load_speeds().get(("x",)) is None and load_speeds().get(("y",)) is None


def test_measured_speed_from_progress_marks():
    from lsd_jax.store.speeds import measured_speed

    assert measured_speed([(5.0, 8)], 0.0) is None  # one mark: no rate
    fps, head = measured_speed([(5.0, 8), (7.0, 48)], 0.0)
    np.testing.assert_allclose([fps, head], [20.0, 5.0 - 8 / 20.0])


def test_preview_refuses_bad_counts_and_a_file_as_folder(loud_song, tmp_path, capsys):
    assert main(["preview", str(loud_song), "--stills", "0"]) == 2
    assert "--stills: give 1 to 100 stills, got 0" in capsys.readouterr().err
    (tmp_path / "f").write_text("")
    assert main(["preview", str(loud_song), "-o", str(tmp_path / "f")]) == 2
    assert "is a file; give a folder for the stills" in capsys.readouterr().err


@pytest.mark.slow  # a tiny render: analysis, latents, one compile
def test_render_reports_each_stage_and_the_bar_waits_for_the_first_frames(loud_song, tmp_path):
    from lsd_jax.engine.pipeline import render

    events: list[tuple] = []
    res = render(
        loud_song,
        output=tmp_path / "o.mp4",
        resolution=32,
        fps=10.0,
        duration=3.0,
        batch_size=8,
        stage=lambda what, s: events.append(("stage", what, s)),
        progress=lambda done, n: events.append(("frames", done, n)),
    )
    stages = [e for e in events if e[0] == "stage"]
    names = [w for _, w, s in stages if s is None]
    assert names == [
        "loading the style",
        "decoding and analysing the song",
        "computing the latents",
        "building the frame step",
        "compiling (the first batch)",
    ]  # no keyframes: no projection stage
    for _, what, s in stages:  # each start is followed by its end, with its seconds
        if s is None:
            (end,) = [e for e in stages if e[1] == what and e[2] is not None]
            assert end[2] >= 0 and stages.index(end) == stages.index(("stage", what, None)) + 1
    first_frames = next(i for i, e in enumerate(events) if e[0] == "frames")
    assert events[first_frames - 1][:2] == ("stage", "compiling (the first batch)")  # ended at the first frames
    assert events[-1] == ("frames", 30, 30)
    t = res.timings
    assert t.first_batch == 8 and t.compile is not None and 0 < t.compile <= t.frames
    assert t.frames_per_s() is not None and t.frames_per_s() > 0


@pytest.mark.slow  # a tiny prepare and three stills
def test_preview_writes_stills_at_the_loudest_moments(loud_song, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "stills"
    args = ["--resolution", "32", "--fps", "10", "--seed", "3"]
    assert main(["preview", str(loud_song), "-o", str(out), "--stills", "3", *args]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 and names[0].startswith("01-at-")
    times = [float(n.split("-at-")[1][:-5]) for n in names]
    assert times == sorted(times) and all(0 <= t < 10 for t in times)
    assert sum(5.5 <= t <= 8.5 for t in times) >= 2  # the pulse's peaks: the loud part's (and the song's onset)
    with Image.open(out / names[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    assert f"wrote 3 stills to {out}" in capsys.readouterr().out
