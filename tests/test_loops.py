"""Seamless loops (``loop_seconds``, ``loop_bars``): the latent path closes on itself, so the last frame leads
into the first with a step like any other (lsd_jax/engine/latents.py ``close_loop``)."""

import chex
import numpy as np
import pytest
import soundfile as sf

import lsd_jax
from lsd_jax import ParamError
from lsd_jax.cli import main
from lsd_jax.engine import latents
from lsd_jax.media.video import probe_video, read_frames

SR = 22050


@pytest.fixture(scope="module")
def beat_song(tmp_path_factory):
    """Four seconds of a drone with a click every half second (120 BPM)."""
    t = np.arange(4 * SR) / SR
    y = 0.3 * np.sin(2 * np.pi * 220 * t)
    click = np.random.default_rng(0).normal(size=800) * np.exp(-np.arange(800) / 150)
    for b in np.arange(0, 4, 0.5):
        i = int(b * SR)
        y[i : i + 800] += click
    path = tmp_path_factory.mktemp("song") / "beats.wav"
    sf.write(path, (0.9 * y / np.abs(y).max()).astype(np.float32), SR)
    return path


def steps(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-step distances of a path (N, ...) and the distance from its last frame back to its first."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return np.linalg.norm(np.diff(x, axis=0), axis=1), float(np.linalg.norm(x[0] - x[-1]))


def test_close_loop_makes_the_seam_the_last_step_and_keeps_frame_0() -> None:
    rng = np.random.default_rng(1)
    path = np.cumsum(rng.normal(size=(40, 5)), axis=0).astype(np.float32)  # a random walk: far from closed
    closed = latents.close_loop(path)
    chex.assert_shape(closed, path.shape)
    np.testing.assert_array_equal(closed[0], path[0])
    # every step changed by the same vector; the step back to the first frame equals the last step
    change = np.diff(closed, axis=0) - np.diff(path, axis=0)
    np.testing.assert_allclose(change, np.broadcast_to(change[0], change.shape), atol=1e-4)
    np.testing.assert_allclose(closed[0] - closed[-1], closed[-1] - closed[-2], atol=1e-4)
    d, seam = steps(path)
    assert seam > d.max()  # the open walk jumps at the seam ...
    d, seam = steps(closed)
    assert d.min() <= seam <= d.max()  # ... the closed one does not
    np.testing.assert_array_equal(latents.close_loop(path[:2]), path[:2])  # too short to bend


@pytest.mark.slow
def test_loop_latents_close_on_themselves() -> None:
    n, fps = 48, 12.0
    rng = np.random.default_rng(2)
    pulse, motion = rng.random(n).astype(np.float32), rng.random(n).astype(np.float32)
    chroma = rng.random((n, 12)).astype(np.float32)
    kw = dict(fps=fps, z_dim=8, c_dim=5)
    open_ = latents.make_latents(pulse, motion, chroma, lsd_jax.make_params(seed=4, speed_fpm=0), **kw)
    loop = latents.make_latents(pulse, motion, chroma, lsd_jax.make_params(seed=4, speed_fpm=0, loop_seconds=4), **kw)
    d, seam = steps(open_.z)
    assert seam > d.max()
    for path in (loop.z, loop.c):
        d, seam = steps(path)
        assert d.min() - 1e-6 <= seam <= d.max() + 1e-6  # float32 rounding: the seam may equal the smallest step
    np.testing.assert_array_equal(loop.z[0], open_.z[0])


@pytest.mark.slow
def test_a_gif_loop_has_no_jump_at_the_seam(beat_song, tmp_path) -> None:
    def frame_steps(path):
        frames = np.stack([f.astype(np.float32) for f in read_frames(path)])
        return np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3)), float(np.abs(frames[0] - frames[-1]).mean())

    kw = dict(resolution=32, fps=12.0, progress=False, seed=1)
    out = lsd_jax.render(beat_song, output=tmp_path / "loop.gif", loop_seconds=2.0, **kw)
    assert out.n_frames == 24 and probe_video(out.path)["n_frames"] == 24
    d, seam = frame_steps(out.path)
    assert d.min() <= seam <= d.max()
    plain = lsd_jax.render(beat_song, output=tmp_path / "plain.gif", duration=2.0, **kw)
    d, seam = frame_steps(plain.path)
    assert seam > d.max()  # the same take without the loop: a jump (so the check above can fail)


@pytest.mark.slow
def test_loop_bars_follows_the_tempo_and_no_audio_is_silent(beat_song, tmp_path, monkeypatch) -> None:
    out = lsd_jax.render(
        beat_song, output=tmp_path / "bar.mp4", loop_bars=1, soundtrack=False, resolution=32, fps=12.0, progress=False
    )
    assert out.n_frames == pytest.approx(24, abs=1)  # one bar at 120 BPM: 2 s
    info = probe_video(out.path)
    assert info["audio_streams"] == 0 and info["n_frames"] == out.n_frames
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(beat_song), "-o", "cli.mp4", "--loop-seconds", "1", "--no-audio", "--quiet"]) == 0
    assert probe_video(tmp_path / "cli.mp4")["audio_streams"] == 0


def test_a_song_without_beats_has_no_tempo_for_loop_bars(monkeypatch) -> None:
    from types import SimpleNamespace

    from lsd_jax.audio import analysis
    from lsd_jax.engine.pipeline import TEMPO_SECONDS, song_tempo

    seen = []

    def fake_analyze(song, params, max_seconds=None):
        seen.append(params)
        return SimpleNamespace(beats=None)

    monkeypatch.setattr(analysis, "analyze", fake_analyze)
    with pytest.raises(ParamError, match="loop_bars: no beat found"):
        song_tempo("song.wav", lsd_jax.make_params(loop_bars=2, start=3.0))
    assert (seen[0].speed_fpm, seen[0].duration, seen[0].start, seen[0].loop_bars) == ("beat", TEMPO_SECONDS, 3.0, None)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(loop_seconds=2, loop_bars=1), "give loop_seconds or loop_bars, not both"),
        (dict(loop_seconds=2, duration=3), "duration: a loop sets the length"),
        (dict(loop_seconds=0), "loop_seconds"),
        (dict(loop_bars=0), "loop_bars"),
    ],
)
def test_loop_settings_are_checked(kw, match) -> None:
    with pytest.raises(ParamError, match=match):
        lsd_jax.make_params(**kw)
