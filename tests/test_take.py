"""Takes (lsd_jax.live.take): a live session recorded into a folder renders again offline, the same frames at the
live size, every tick at any size with its audio and its changes at their frames. The sessions run on a simulated
clock (tests/sim_clock.py), so they hold on a loaded machine."""

from __future__ import annotations

import json
from pathlib import Path

import chex
import numpy as np
import pytest
import soundfile as sf
from audio_signals import click_track, write
from sim_clock import SimulatedClock

from lsd_jax import ParamError
from lsd_jax.live.session import FileFeeder, LiveRenderer
from lsd_jax.live.take import EVENTS, WavAppender, read_take, render_take
from lsd_jax.media.video import probe_video, read_frames

SR = 22050


def _session(
    tmp_path: Path, clock: SimulatedClock, steps: list[tuple[float, dict]], seconds: float, advance=0.0, **kwargs
):
    """Play a click track into a live session recorded as a take at tmp_path/take; ``steps``: (seconds to wait,
    changes to apply then); ``advance``: session seconds each frame takes. Returns (renderer, feeder, frames shown,
    the changes with their clock times)."""
    from lsd_jax.live.take import Take

    song = write(tmp_path / "clicks.wav", click_track([0.3 + 0.4 * k for k in range(5)], seconds, SR), SR)
    frames: list = []
    changed: list = []
    r = LiveRenderer(None, resolution=32, fps=20.0, adapt=False, clock=clock, **kwargs)
    r.add_listener(frames.append)
    r.add_change_listener(lambda t, ch: changed.append((t, ch)))
    if advance:
        r.add_listener(lambda f: clock.advance(advance))  # work that takes session time: ticks dropped
    Take(r, tmp_path / "take", style="default")
    r.start()
    feeder = FileFeeder(r, song).start()
    assert r.wait_frame(timeout=120) is not None, r.error  # generous: a real-time bound only to fail, not hang
    assert feeder.started.wait(120)
    for wait, changes in steps:
        clock.sleep(wait)
        if changes:
            r.apply_changes(changes)  # the one door every control goes through
    return r, feeder, frames, changed


def _png_frames(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


@pytest.mark.slow
@pytest.mark.timing
def test_a_take_cut_by_ctrl_c_replays_the_live_frames_at_the_live_size(tmp_path):
    """Each frame takes 0.07 s of the session's time at 20 fps: ticks are dropped (stepped, not rendered) and pool
    the audio of several blocks; the changes land between frames. The take is never closed (the session ends with
    a KeyboardInterrupt) and its last line is torn, as a kill mid-write leaves it."""
    clock = SimulatedClock()
    steps = [(0.5, {"pulse_react": 1.5, "seed": 7}), (0.5, {"contrast_strength": 0.9, "speed_fpm": 30}), (0.6, {})]
    r, feeder, frames, changed = _session(tmp_path, clock, steps, 2.0, advance=0.07)
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt  # Ctrl-C: the session stops, the take is never closed
        finally:
            feeder.stop()
            r.close()
    assert r.error is None
    with open(tmp_path / "take" / EVENTS, "a") as f:
        f.write('{"ticks": [99')  # torn
    take = read_take(tmp_path / "take")
    stats = r.stats()
    assert stats.dropped > 0 and take.n_ticks >= stats.ticks - 1
    # the changes were recorded at the pass that took them, in order, at the tick of the first frame after them
    recorded = [(p.first, ch) for p in take.passes for ch in p.changes]
    assert [ch for _, ch in recorded] == [ch for _, ch in changed]
    for (first, _), (t, _) in zip(recorded, changed):
        shown = min(f.tick for f in frames if f.t_done > t)
        assert take.rendered().get(shown) is not None and first <= shown
        assert all(f.tick < first for f in frames if f.t_done <= t)

    out = render_take(tmp_path / "take", f"{tmp_path}/frames/", progress=False)  # PNGs: lossless
    offline = _png_frames(tmp_path / "frames")
    assert out.n_frames == len(offline) == take.n_ticks  # every tick, none dropped
    live = [f for f in frames if f.tick < take.n_ticks]
    assert len(live) >= 10
    for f in live:
        chex.assert_shape(offline[f.tick], f.image.shape)
        np.testing.assert_allclose(offline[f.tick].astype(int), f.image.astype(int), atol=1, err_msg=f"tick {f.tick}")
    # the replay follows the take, not chance: a take without its changes renders other frames after the first
    assert not np.array_equal(offline[live[-1].tick], offline[0])


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.timeout(400)
def test_a_take_renders_wide_with_its_audio_and_its_changes_at_their_frames(tmp_path):
    """A still picture (no reaction, no motion, no class drift) whose seed and truncation change while playing:
    rendered at 320x180 through the command line, the video changes at those two ticks only."""
    from lsd_jax.cli import main

    clock = SimulatedClock()
    still = dict(pulse_react=0.0, motion_react=0.0, speed_fpm=0, class_pitch_react=0.0)
    still.update(contrast_strength=0.0, flash_strength=0.0)
    steps = [(0.6, {"seed": 3}), (0.6, {"truncation": 0.4}), (0.6, {})]
    r, feeder, frames, _ = _session(tmp_path, clock, steps, 2.0, **still)
    feeder.stop()
    r.close()
    take = read_take(tmp_path / "take")
    at = [p.first for p in take.passes if p.changes]
    assert len(at) == 2 and 0 < at[0] < at[1] < take.n_ticks - 1

    out = tmp_path / "show.mp4"
    argv = ["render", "--take", str(tmp_path / "take"), "-o", str(out), "--width", "320", "--height", "180"]
    assert main([*argv, "--quiet"]) == 0
    info = probe_video(out)
    assert (info["width"], info["height"], info["audio_streams"]) == (320, 180, 1), info
    assert info["n_frames"] == take.n_ticks
    assert abs(info["audio_duration"] - take.n_ticks / take.fps) < 0.1, info
    video = np.stack([f.astype(np.float32) for f in read_frames(out)])
    change = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))  # change[k - 1]: frame k against k - 1
    assert sorted(np.argsort(change)[-2:] + 1) == at, (change.round(2), at)
    assert change[np.array(at) - 1].min() > 5 * np.delete(change, np.array(at) - 1).max()


def test_the_wav_of_a_take_is_readable_after_every_block(tmp_path):
    """Written block by block with its header rewritten each time: a session stopped at any moment (never closed)
    leaves a valid file with every block written."""
    wav = WavAppender(tmp_path / "a.wav", 48000, 2)
    blocks = [np.random.default_rng(k).standard_normal((n, 2)).astype(np.float32) for k, n in enumerate((480, 7, 960))]
    for k, b in enumerate(blocks):
        wav.write(b)
        y, sr = sf.read(tmp_path / "a.wav", dtype="float32", always_2d=True)  # not closed
        assert sr == 48000
        np.testing.assert_array_equal(y, np.concatenate(blocks[: k + 1]))
    wav.close()


def test_a_folder_that_is_not_a_take_is_refused_clearly(tmp_path):
    with pytest.raises(ParamError, match=r"is not a take \(no settings.json"):
        read_take(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps({"lsd_jax_take": 99}))
    with pytest.raises(ParamError, match="lsd_jax_take must be 1"):
        read_take(tmp_path)
    r = LiveRenderer(None, resolution=32)
    from lsd_jax.live.take import Take

    with pytest.raises(ParamError, match="already exists and is not an empty folder"):
        Take(r, tmp_path)
    Take(r, tmp_path / "empty").close()
    with pytest.raises(ParamError, match=r"fps: a take renders at the fps it was played at \(30\)"):
        render_take(tmp_path / "empty", tmp_path / "out.mp4", fps=12)
    with pytest.raises(ParamError, match="has no frames"):
        render_take(tmp_path / "empty", tmp_path / "out.mp4")
    from lsd_jax.styles.resolve import resolve_style

    def grey(z, c):
        return np.zeros((z.shape[0], 8, 8, 3), np.float32)

    style = resolve_style(grey, input_shape=8, num_possible_classes=0)
    host = LiveRenderer(style, resolution=32)
    Take(host, tmp_path / "python").close()  # a Python style: recorded by its name, not loadable again
    with pytest.raises(ParamError, match=r"played with a Python style; give one \(--style\)"):
        render_take(tmp_path / "python", tmp_path / "out.mp4")
    r.push(np.zeros(4800, np.float32), 48000)
    with pytest.raises(ParamError, match="before the session's first audio"):
        Take(r, tmp_path / "new")


def test_render_take_takes_no_song(tmp_path, capsys):
    from lsd_jax.cli import main

    assert main(["render", "song.wav", "--take", str(tmp_path)]) == 2
    assert "--take renders the take's own audio" in capsys.readouterr().err
