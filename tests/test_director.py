"""direct="sections" (issue 24, item 3): the song's form directs the video — a region of latent space and a class
palette per section label, intensity from the section's loudness, a hit on a drop; the user's timelines win."""

from __future__ import annotations

from types import SimpleNamespace

import chex
import numpy as np
import pytest
import soundfile as sf
from audio_signals import SR, click_track

from lsd_jax.engine import timeline as tl
from lsd_jax.engine.latents import class_schedule, make_latents
from lsd_jax.params import make_params

FPS = 10.0


def _form(plan: str = "ABAC", seconds: float = 8.0, drop: float | None = 24.0, loudness=None):
    """A stand-in analysis: ``plan``'s sections of ``seconds`` each, downbeats every 2 s, a drop at ``drop``
    (on the start of the C section by default)."""
    loudness = loudness or {"A": -20.0, "B": -14.0, "C": -8.0}
    sections = [
        SimpleNamespace(start=seconds * i, end=seconds * (i + 1), label=x, loudness=loudness[x])
        for i, x in enumerate(plan)
    ]
    beats = np.arange(0.0, seconds * len(plan), 0.5)
    return SimpleNamespace(beats=beats, downbeats=beats[::4], sections=sections, drops=[] if drop is None else [drop])


def _times(form, fps: float = FPS) -> np.ndarray:
    return tl.frame_times(int(form.sections[-1].end * fps), fps)


def test_direction_gives_a_repeated_label_its_region_and_palette_and_cuts_on_the_drop():
    form = _form()
    d = tl.direction(_times(form), form)
    f = lambda s: int(s * FPS)  # noqa: E731  (frame at s seconds)
    chex.assert_shape([d.region, d.prev, d.weight, d.palette, d.loudness, d.hit], (f(32),))
    assert d.n_regions == 3
    assert d.region[f(1)] == d.region[f(17)] != d.region[f(9)]  # A, B, A again
    assert d.palette[f(1)] == d.palette[f(17)] != d.palette[f(9)] != d.palette[f(25)]
    # an ordinary boundary glides over EASE_SECONDS; the drop (C's start) cuts
    assert 0.0 <= d.weight[f(8)] < 0.1 and d.prev[f(8)] == d.region[f(1)]
    assert d.weight[f(9)] == 1.0
    assert d.weight[f(24)] == 1.0 and d.region[f(24)] != d.region[f(23)]
    # loudness: the louder section, the higher the factor, within the range
    assert d.loudness[f(1)] < d.loudness[f(9)] < d.loudness[f(25)]
    assert tl.INTENSITY_RANGE[0] <= d.loudness.min() and d.loudness.max() <= tl.INTENSITY_RANGE[1]
    # the hit: 1 on the drop, decaying, nothing before
    assert d.hit[f(24)] == pytest.approx(1.0) and d.hit[f(23)] == 0.0 and d.hit[f(27)] < 0.01


def test_a_drop_inside_a_section_opens_a_new_region_on_the_downbeat():
    form = _form("AB", drop=12.1)  # inside B; the nearest downbeat is 12 s
    d = tl.direction(_times(form), form)
    assert d.n_regions == 3
    assert d.region[119] != d.region[120] and d.weight[120] == 1.0  # cut at 12 s (snapped to the downbeat)
    assert d.palette[119] == d.palette[120]  # still B's classes
    assert d.hit[120] == pytest.approx(1.0)


def test_intensity_follows_loudness_and_the_users_timelines_win():
    form = _form()
    times = _times(form)
    d = tl.direction(times, form)
    params = make_params(pulse_react=0.5, motion_react={"0": 0.3, "10": 0.6}, flash_strength=0.4)
    values = tl.frame_values(params, len(times), FPS)
    out = tl.direct_values(params, values, d)
    np.testing.assert_array_equal(out["motion_react"], values["motion_react"])  # the user's timeline, untouched
    want = 0.5 * d.loudness * (1 + tl.HIT_GAIN * d.hit)
    np.testing.assert_allclose(out["pulse_react"], want, rtol=1e-6)
    assert out["pulse_react"][int(24 * FPS)] > 2 * out["pulse_react"][int(23 * FPS)]  # the drop's hit
    np.testing.assert_array_equal(out["class_complexity"], values["class_complexity"])  # not an intensity


def _latents(form, direction: bool, c_dim: int = 0):
    n = int(form.sections[-1].end * FPS)
    rng = np.random.default_rng(0)
    pulse, motion, chroma = rng.random(n), rng.random(n), rng.random((n, 12))
    params = make_params(speed_fpm=12)
    d = tl.direction(_times(form), form) if direction else None
    return make_latents(pulse, motion, chroma, params, fps=FPS, z_dim=16, c_dim=c_dim, direction=d)


@pytest.mark.slow
def test_latents_jump_at_boundaries_and_the_drop_and_a_repeated_part_returns():
    form = _form("ABACA", drop=24.0)
    z = _latents(form, True).z
    step = np.linalg.norm(np.diff(z, axis=0), axis=1)  # (N-1,) change from frame i to i+1
    # the largest changes: at the boundaries (8, 16, 32 s glide over EASE_SECONDS; 24 s, the drop, cuts)
    top = np.sort(np.argsort(step)[-4:]) + 1
    bounds = np.array([8.0, 16.0, 24.0, 32.0]) * FPS
    assert np.all(np.min(np.abs(top[:, None] - bounds[None, :]), axis=1) <= tl.EASE_SECONDS * FPS), top
    assert step[int(24 * FPS) - 1] == step.max()  # the drop cuts: the biggest jump of all
    # repeated sections look alike: mean distance between two A's below that between A and B
    f = lambda a, b: z[int(a * FPS) : int(b * FPS)]  # noqa: E731
    dist = lambda x, y: float(np.linalg.norm(x.mean(0) - y.mean(0)))  # noqa: E731
    a1, b, a2 = f(1, 8), f(9, 16), f(17, 24)
    assert dist(a1, a2) < 0.5 * dist(a1, b)
    plain = _latents(form, False).z
    assert dist(plain[10:80], plain[170:240]) > dist(a1, a2)  # without the director the two A's are not alike


def test_each_label_its_own_classes():
    n = 40
    chroma = np.random.default_rng(1).random((n, 12))
    params = make_params()
    palette = np.repeat([0, 1, 0, 2], 10)
    table = class_schedule(params, 1000, chroma, FPS, palette)
    plain = class_schedule(params, 1000, chroma, FPS)
    np.testing.assert_array_equal(table[:10], plain[:10])  # palette 0: the classes as they were
    np.testing.assert_array_equal(table[20:30], table[:10])  # A again: its classes again
    assert not np.array_equal(table[10:20], table[:10]) and not np.array_equal(table[30:], table[10:20])


def test_direct_is_a_choice_of_the_table_off_by_default():
    from lsd_jax.cli import build_parser
    from lsd_jax.errors import ParamError
    from lsd_jax.flags import params_from

    assert make_params().direct == "off"
    args = build_parser().parse_args(["render", "song.mp3", "--direct", "sections"])
    assert params_from(args)["direct"] == "sections"
    with pytest.raises(ParamError, match="direct must be one of off, sections"):
        make_params(direct="chorus")


@pytest.fixture(scope="module")
def click_song(tmp_path_factory):
    d = tmp_path_factory.mktemp("director")
    seconds = 6.0
    sf.write(d / "clicks.wav", click_track(list(np.arange(0.25, seconds, 0.5)), seconds), SR)
    return d / "clicks.wav"


def _stand_in(monkeypatch, calls):
    from lsd_jax.audio import structure as st

    def analyze(song, **kw):
        calls.append(str(song))
        return _form("ABA", seconds=2.0, drop=4.0)

    monkeypatch.setattr(st, "analyze", analyze)


@pytest.mark.slow
def test_prepare_directs_only_when_asked(click_song, monkeypatch):
    from lsd_jax.engine.pipeline import prepare

    calls: list[str] = []
    _stand_in(monkeypatch, calls)
    kw = dict(resolution=16, fps=FPS, progress=False, seed=2)
    plain = prepare(click_song, **kw)
    off = prepare(click_song, direct="off", **kw)
    assert calls == []  # off: the form is not even analysed
    np.testing.assert_array_equal(np.asarray(off.latents.z), np.asarray(plain.latents.z))
    np.testing.assert_array_equal(np.asarray(off.inputs["amps"]), np.asarray(plain.inputs["amps"]))
    directed = prepare(click_song, direct="sections", **kw)
    assert calls == [str(click_song)]
    z = np.asarray(directed.latents.z)
    chex.assert_equal_shape([z, np.asarray(plain.latents.z)])
    step = np.linalg.norm(np.diff(z, axis=0), axis=1)
    assert step[int(4 * FPS) - 1] == step.max()  # the drop at 4 s: the biggest jump


@pytest.mark.slow
def test_directed_frames_change_most_at_the_drop_and_compile_nothing_new(click_song, monkeypatch):
    from test_timeline import BACKEND_COMPILES

    from lsd_jax.engine.pipeline import prepare

    _stand_in(monkeypatch, [])
    kw = dict(resolution=32, fps=FPS, progress=False, seed=2)
    plain = prepare(click_song, **kw)
    np.asarray(plain.frames(np.arange(plain.n_frames)))
    before = len(BACKEND_COMPILES)
    directed = prepare(click_song, direct="sections", **kw)
    frames = np.asarray(directed.frames(np.arange(directed.n_frames))).astype(np.float32)
    assert len(BACKEND_COMPILES) - before == 0  # the director's values are per-frame arrays of the same shapes
    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # (N-1,)
    assert int(np.argmax(change)) + 1 == int(4 * FPS)  # the drop: the biggest change of the video
    a1, a2, b = frames[5:20].mean(0), frames[45:60].mean(0), frames[25:40].mean(0)
    assert np.abs(a1 - a2).mean() < np.abs(a1 - b).mean()  # the two A's look alike


def test_the_app_directs_by_default_and_the_library_does_not():
    from lsd_jax.web import form
    from lsd_jax.web.config import AppConfig

    assert form.ui_defaults(AppConfig())["direct"] == "sections"  # the app's page
    assert form.ui_defaults()["direct"] == "off"  # the library's defaults
    assert make_params(**form.params_from_ui({"direct": "sections"})).direct == "sections"


def test_a_live_session_ignores_sections_with_a_note():
    from lsd_jax.live.session import LiveRenderer

    with pytest.warns(UserWarning, match="direct='sections' needs the whole song's form; live mode ignores it"):
        r = LiveRenderer(None, resolution=32, direct="sections")
    assert r.params.direct == "sections"  # taken as given, unused


@pytest.mark.slow
def test_a_song_without_a_form_renders_undirected_with_a_warning(click_song, monkeypatch):
    from lsd_jax.audio import structure as st
    from lsd_jax.engine.pipeline import prepare
    from lsd_jax.errors import AudioError

    def analyze(song, **kw):
        raise AudioError("the song is silent or empty: there is no form to analyse")

    monkeypatch.setattr(st, "analyze", analyze)
    kw = dict(resolution=16, fps=FPS, progress=False, seed=2)
    with pytest.warns(UserWarning, match='direct="sections": the song is silent or empty'):
        directed = prepare(click_song, direct="sections", **kw)
    plain = prepare(click_song, **kw)
    np.testing.assert_array_equal(np.asarray(directed.latents.z), np.asarray(plain.latents.z))
    with pytest.raises(AudioError, match="silent"):  # a timeline keyed by sections still needs the form
        prepare(click_song, pulse_react={"A": 1.0}, **kw)


@pytest.mark.slow
def test_on_a_synthetic_song_the_latents_change_most_at_its_boundaries_and_drop():
    """The real analysis of tests/test_structure.py's song (A B A build drop; boundaries 8, 16, 24, 30 s, the drop
    at 30 s): with a calm path (no pulse, steady motion) the director's changes stand out."""
    from test_structure import PLAN, TRUE_BOUNDS, song

    from lsd_jax.audio.structure import SR as FORM_SR
    from lsd_jax.audio.structure import analyze_signal

    y, _ = song(PLAN)
    form = analyze_signal(y, FORM_SR)
    n = int(len(y) / FORM_SR * FPS)
    d = tl.direction(tl.frame_times(n, FPS), form)
    chroma = np.random.default_rng(0).random((n, 12))
    z = make_latents(np.zeros(n), np.full(n, 0.5), chroma, make_params(), fps=FPS, z_dim=16, c_dim=0, direction=d).z
    w = int(tl.EASE_SECONDS * FPS)
    change = np.linalg.norm(z[w:] - z[:-w], axis=1)  # (N-w,) over a glide's length, frames i .. i+w
    mid = (np.arange(len(change)) + w / 2) / FPS  # the middle of each window, seconds
    near = np.abs(mid[:, None] - TRUE_BOUNDS[None, :]) <= 1.0  # (N-w, 4): within a second of each boundary
    elsewhere = change[~near.any(axis=1)].max()
    for k, b in enumerate(TRUE_BOUNDS):  # each boundary's change beats every change away from them
        assert change[near[:, k]].max() > elsewhere, (b, change[near[:, k]].max(), elsewhere)
    step = np.linalg.norm(np.diff(z, axis=0), axis=1)
    assert abs((np.argmax(step) + 1) / FPS - 30.0) <= 0.5  # the drop cuts: the biggest step, within a beat
    a1, b, a2 = z[int(1 * FPS) : int(7 * FPS)], z[int(9 * FPS) : int(15 * FPS)], z[int(17 * FPS) : int(23 * FPS)]
    assert np.linalg.norm(a1.mean(0) - a2.mean(0)) < np.linalg.norm(a1.mean(0) - b.mean(0))
