"""The recipe inside every video (lsd_jax/media/recipe.py): written by every render, printed by
``lsd-jax recipe``, rendered again by ``lsd-jax render --recipe`` (byte-identical at the same settings), read by
``lsd_jax.read_recipe``; a tampered or foreign recipe is refused naming the field."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import lsd_jax
from lsd_jax import OutputError, ParamError
from lsd_jax.cli import main
from lsd_jax.media.recipe import make_recipe, parse_recipe, recipe_of, recipe_text, sha256_of
from lsd_jax.media.video import VideoWriter, read_frames

SR = 22050
KW = dict(resolution=32, fps=12.0, progress=False)


def write_song(path: Path, hz: float = 220.0) -> Path:
    t = np.arange(SR) / SR
    sf.write(path, (0.5 * np.sin(2 * np.pi * hz * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype(np.float32), SR)
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A working folder holding song.wav (recipes name files relative to it)."""
    monkeypatch.chdir(tmp_path)
    write_song(tmp_path / "song.wav")
    return tmp_path


def a_recipe(**params) -> dict:
    return make_recipe(lsd_jax.make_params(**params), "song.wav", ("default", None), version="0.1.0")


@pytest.mark.slow
def test_render_again_from_the_recipe_is_byte_identical_and_a_flag_changes_one_value(workdir, capsys) -> None:
    lsd_jax.render("song.wav", output="take.mp4", seed=3, pulse_react=0.8, **KW)
    rec = lsd_jax.read_recipe("take.mp4")
    assert (rec.song, rec.song_sha256, rec.style, rec.style_sha256) == (
        "song.wav",
        sha256_of("song.wav"),
        "default",
        None,
    )
    assert rec.params == lsd_jax.make_params(seed=3, pulse_react=0.8, resolution=32, fps=12.0)
    assert rec.version == lsd_jax.__version__

    assert main(["render", "--recipe", "take.mp4", "-o", "again.mp4", "--quiet"]) == 0
    assert Path("again.mp4").read_bytes() == Path("take.mp4").read_bytes()

    assert main(["render", "--recipe", "take.mp4", "-o", "seed4.mp4", "--seed", "4", "--quiet"]) == 0
    a, b = json.loads(recipe_of("take.mp4")), json.loads(recipe_of("seed4.mp4"))
    changed = {k for k in a["params"] if a["params"][k] != b["params"][k]}
    assert changed == {"seed"} and {k: a[k] for k in a if k != "params"} == {k: b[k] for k in b if k != "params"}
    assert not np.array_equal(next(read_frames("take.mp4")), next(read_frames("seed4.mp4")))

    capsys.readouterr()
    assert main(["recipe", "take.mp4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == a and printed["params"]["seed"] == 3


@pytest.mark.slow
def test_png_folder_carries_its_recipe_and_gif_has_none(workdir) -> None:
    lsd_jax.render("song.wav", output="frames/", seed=7, **KW)
    assert json.loads(Path("frames/recipe.json").read_text())["params"]["seed"] == 7
    assert lsd_jax.read_recipe("frames").params.seed == 7
    lsd_jax.render("song.wav", output="loop.gif", **KW)
    with pytest.raises(OutputError, match="loop.gif has no lsd-jax recipe"):
        lsd_jax.read_recipe("loop.gif")


@pytest.mark.slow
def test_a_changed_song_and_an_output_over_the_recipe_video_are_refused(workdir, capsys) -> None:
    lsd_jax.render("song.wav", output="take.mp4", **KW)
    assert main(["render", "--recipe", "take.mp4", "-o", "take.mp4", "--quiet"]) == 2
    assert "refusing to write over it" in capsys.readouterr().err
    write_song(workdir / "song.wav", hz=330.0)
    assert main(["render", "--recipe", "take.mp4", "-o", "x.mp4", "--quiet"]) == 2
    assert "song: song.wav is not the recipe's song (its sha256 differs)" in capsys.readouterr().err
    Path("song.wav").unlink()
    with pytest.raises(ParamError, match="song: song.wav .from the recipe. is not in the working folder"):
        lsd_jax.from_recipe("take.mp4")
    assert not Path("x.mp4").exists()


def test_a_recipe_round_trips_every_parameter(workdir) -> None:
    (workdir / "stems").mkdir()
    params = dict(seed=9, classes=[1, 2], band_react=[0.1, 0.2, 0.3], pulse_audio="stems/drums.wav", codec="vp9")
    params |= dict(keyframes={1.5: "stems/a.png"}, speed_fpm="beat", quality=30)
    text = recipe_text(a_recipe(**params))
    assert "\n" not in text and json.loads(text)["params"]["pulse_audio"] == "stems/drums.wav"
    assert parse_recipe(text).params == lsd_jax.make_params(**params)


def test_files_outside_the_working_folder_are_stored_by_name(workdir, tmp_path_factory) -> None:
    elsewhere = write_song(tmp_path_factory.mktemp("elsewhere") / "far.wav")
    rec = make_recipe(lsd_jax.make_params(motion_audio=str(elsewhere)), elsewhere, ("default", None), version="x")
    assert rec["song"]["file"] == "far.wav" and rec["params"]["motion_audio"] == "far.wav"


def tampered(change) -> str:
    rec = a_recipe()
    change(rec)
    return json.dumps(rec)


@pytest.mark.parametrize(
    "text,match",
    [
        ('{"lsd_jax_recipe": 1, "params": {', "recipe: not valid JSON"),
        ("[1, 2]", "recipe must be an object"),
        (tampered(lambda r: r.update(extra=1)), "unknown key recipe.extra"),
        (tampered(lambda r: r["song"].update(url="x")), "unknown key song.url"),
        (tampered(lambda r: r["params"].update(pulse_reac=1)), r"unknown parameter 'pulse_reac' \(did you mean"),
        (tampered(lambda r: r["params"].update(custom_effects=[])), "unknown parameter 'custom_effects'"),
        (tampered(lambda r: r["params"].update(pulse_react=99)), "recipe: params.pulse_react must be between 0 and 10"),
        (tampered(lambda r: r["params"].update(fps="fast")), "params.fps must be a number"),
        (
            tampered(lambda r: r["params"].update(pulse_audio="/etc/passwd")),
            "params.pulse_audio '/etc/passwd' is outside",
        ),
        (tampered(lambda r: r["params"].update(flash_audio="../up.wav")), "params.flash_audio '../up.wav' is outside"),
        (tampered(lambda r: r["params"].update(keyframes=[[1, "~/x.png"]])), "params.keyframes '~/x.png' is outside"),
        (tampered(lambda r: r["params"].update(keyframes="a.png")), "params.keyframes must be a list"),
        (tampered(lambda r: r["song"].update(file="/tmp/song.wav")), "song.file '/tmp/song.wav' is outside"),
        (tampered(lambda r: r["song"].update(sha256="abc")), "song.sha256 must be 64 lower-case hex digits"),
        (tampered(lambda r: r["style"].update(name="../m.pkl", sha256="0" * 64)), "style.name '../m.pkl' is outside"),
        (tampered(lambda r: r["style"].update(name="<python Style>")), "style.name: the video was made with a Python"),
        (tampered(lambda r: r.pop("style")), "style is missing"),
        (tampered(lambda r: r.update(lsd_jax_recipe=2)), "lsd_jax_recipe must be 1"),
    ],
)
def test_a_tampered_or_foreign_recipe_is_refused_naming_the_field(workdir, text, match) -> None:
    with pytest.raises(ParamError, match=match):
        parse_recipe(text)


def test_a_symlink_out_of_the_working_folder_is_refused(workdir, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (workdir / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ParamError, match="params.pulse_audio 'link/x.wav' leads outside the working folder"):
        parse_recipe(tampered(lambda r: r["params"].update(pulse_audio="link/x.wav")))


def test_a_foreign_video_with_a_bad_recipe_fails_cleanly_on_the_command_line(workdir, capsys) -> None:
    for name, comment in (("bad.mp4", '{"lsd_jax_recipe": 1, "version": '), ("plain.mp4", None)):
        with VideoWriter(name, fps=10, size=(16, 16), recipe=comment) as vw:
            vw.write(np.zeros((2, 16, 16, 3), np.uint8))
    assert main(["recipe", "plain.mp4"]) == 2
    assert "plain.mp4 has no lsd-jax recipe" in capsys.readouterr().err
    assert main(["render", "--recipe", "bad.mp4", "-o", "x.mp4"]) == 2
    assert re.search(r"lsd-jax: error: recipe: not valid JSON", capsys.readouterr().err)
    assert main(["render"]) == 2
    assert "song: give the song to render" in capsys.readouterr().err
    assert not Path("x.mp4").exists()


def test_a_recipe_with_equals_semicolons_and_newlines_survives_the_metadata(workdir) -> None:
    text = recipe_text(a_recipe(pulse_audio="a=b;c#d\\e.wav"))
    with VideoWriter("odd.mp4", fps=10, size=(16, 16), recipe=text) as vw:
        vw.write(np.zeros((2, 16, 16, 3), np.uint8))
    assert recipe_of("odd.mp4") == text


# --- the app: "render again" fills the form from a video's recipe (lsd_jax/web/form.py, page.py)


def test_the_form_shows_any_recipe_and_reads_it_back() -> None:
    from lsd_jax.web.form import params_from_ui, ui_values

    cases = [
        lsd_jax.RenderParams(),
        lsd_jax.make_params(seed=5, codec="gif", loop_bars=2, classes=[1, 2], speed_fpm="beat", quality=20),
        lsd_jax.make_params(contrast_strength=0.3, band_react=[0.1, 0.2, 0.3], soundtrack=False, resolution=128),
        lsd_jax.make_params(class_shuffle_seconds=[1, 2.5], keyframe_w_plus=False, duration=3, width=64, height=32),
    ]
    for params in cases:
        assert lsd_jax.make_params(**params_from_ui(ui_values(params))) == params
    on = lsd_jax.make_params(flash_percussive=False)  # on at its default strength: the page shows 0.5
    back = lsd_jax.make_params(**params_from_ui(ui_values(on)))
    assert (back.flash_on, back.effect_strength("flash"), back.flash_percussive) == (True, 0.5, False)


@pytest.mark.slow
def test_the_page_fills_the_form_from_a_video_and_refuses_a_bad_one(workdir) -> None:
    from lsd_jax.web import page
    from lsd_jax.web.config import AppConfig
    from lsd_jax.web.form import recipe_to_ui

    lsd_jax.render("song.wav", output="take.mp4", seed=11, pulse_react=0.9, motion_audio="song.wav", **KW)
    values, note = recipe_to_ui(workdir / "take.mp4")
    assert (values["seed"], values["pulse_react"], values["resolution"], values["style"]) == (11, 0.9, 32, "default")
    assert "upload the song song.wav" in note and "motion_audio song.wav" in note

    demo = page.build_app(AppConfig(examples="off", warm_up=False))
    try:
        fn = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "_from_recipe")
        out = fn(str(workdir / "take.mp4"))
        assert 11 in out and out[-1].startswith("Loaded the recipe of take.mp4")
        with VideoWriter("bad.mp4", fps=10, size=(16, 16), recipe='{"lsd_jax_recipe": 1') as vw:
            vw.write(np.zeros((2, 16, 16, 3), np.uint8))
        out = fn(str(workdir / "bad.mp4"))
        assert "recipe: not valid JSON" in out[-1] and str(workdir) not in out[-1]  # no server path shown
    finally:
        demo.close()
