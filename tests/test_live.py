"""Live mode (lsd_jax.live.session): clock pacing, drops instead of lag, the resolution ladder, reactions and
recording. The sessions run on a simulated clock (tests/sim_clock.py), so they hold on a loaded machine; real-time
figures are ``python -m lsd_jax.bench --live``'s."""

from __future__ import annotations

import time

import numpy as np
import pytest
from audio_signals import click_track, write
from sim_clock import SimulatedClock

from lsd_jax import ParamError
from lsd_jax.live.session import FileFeeder, LiveRecorder, LiveRenderer, ResolutionPolicy, ladder_sizes
from lsd_jax.media.video import probe_video
from lsd_jax.styles.resolve import resolve_style


def test_ladder_and_policy_drop_resolution_when_late_and_climb_back_when_it_fits():
    sizes = ladder_sizes((256, 256), any_size=True)
    assert sizes == [(256, 256), (192, 192), (128, 128), (96, 96), (64, 64)]
    assert ladder_sizes((256, 256), any_size=False) == [(256, 256)]
    period = 1 / 30
    policy = ResolutionPolicy(sizes, 30.0)
    t, levels = 0.0, []
    for _ in range(100):  # each frame takes 2 periods: one tick dropped before every frame
        t += 2 * period
        level = policy.observe(t, 2 * period, 1)
        if level != policy.level:
            policy.moved(level, t)
        levels.append(policy.level)
    assert levels[0] == 0 and levels[-1] == len(sizes) - 1  # all the way down, one rung per second
    assert all(b - a in (0, 1) for a, b in zip(levels, levels[1:]))
    down_at = t
    for _ in range(400):  # now frames are quick: back up, but not before the backoff of the rung left
        t += period
        level = policy.observe(t, 0.1 * period, 0)
        if level != policy.level:
            policy.moved(level, t)
    assert policy.level == 0 and t - down_at > 4.0


def _slow_style(clock: SimulatedClock, delay: float):
    def style(z, c):  # a host (NumPy) style that takes `delay` seconds of the session's time per call
        clock.advance(delay)
        return np.full((z.shape[0], 16, 16, 3), 128 + 100 * np.tanh(z[:, :1, None, None]), np.float32)

    return style


def _playing(r: LiveRenderer, feeder: FileFeeder | None = None) -> None:
    """Until the session's threads have read the simulated clock (so that they take part in it): the render
    thread has shown its first frame, the feeder has started."""
    assert r.wait_frame(timeout=120) is not None, r.error  # generous: a real-time bound only to fail, not hang
    assert feeder is None or feeder.started.wait(120)


@pytest.mark.slow
@pytest.mark.timing
def test_a_slow_step_drops_ticks_and_never_lags_further_behind():
    fps, delay = 20.0, 0.07  # each frame takes 1.4 periods
    frames, clock = [], SimulatedClock()
    style = resolve_style(_slow_style(clock, delay), input_shape=8, num_possible_classes=0)
    r = LiveRenderer(style, fps=fps, resolution=16, adapt=True, clock=clock)
    r.add_listener(frames.append)
    with r:
        _playing(r)
        clock.sleep(3.0)
    stats = r.stats()
    assert r.error is None
    assert len(frames) >= 15 and stats.dropped >= 0.2 * stats.ticks
    ticks = [f.tick for f in frames]
    assert ticks == sorted(set(ticks))  # the newest tick each time, never one twice
    lag = np.array([f.t_done - f.t_due for f in frames])
    third = len(lag) // 3
    assert np.median(lag[-third:]) < np.median(lag[:third]) + 0.05  # no growing lag
    assert np.percentile(lag, 90) < 2 / fps + 2 * delay


def test_update_takes_live_parameters_only():
    r = LiveRenderer(None, resolution=32)
    assert r.update(pulse_react=1.5, speed_fpm=30).pulse_react == 1.5
    with pytest.raises(ParamError, match="pulse_react"):
        r.update(pulse_react=-1)
    with pytest.raises(ParamError, match="cannot change during a live session"):
        r.update(resolution=64)
    # speed_fpm="beat" follows the session's tempo (tap, MIDI clock: tests/test_osc.py, tests/test_midi.py)
    assert LiveRenderer(None, resolution=32, speed_fpm="beat").params.speed_fpm == "beat"


@pytest.mark.slow
@pytest.mark.timing
def test_clicks_played_in_real_time_kick_the_frames_and_are_recorded_with_the_audio(tmp_path):
    sr, seconds = 48000, 3.5
    times = [1.0 + 0.5 * k for k in range(5)]  # after the drone's start has been normalised away
    song = write(tmp_path / "clicks.wav", click_track(times, seconds, sr), sr)
    frames, clock = [], SimulatedClock()
    r = LiveRenderer(
        None, resolution=48, fps=30.0, pulse_react=1.5, motion_react=0.0, speed_fpm=0, adapt=False, clock=clock
    )
    r.add_listener(frames.append)
    with r:
        recorder = LiveRecorder(r, tmp_path / "live.mp4")
        feeder = FileFeeder(r, song).start()
        _playing(r, feeder)
        clock.sleep(seconds + 0.2)
        assert feeder.done.is_set()
    out = recorder.close()
    assert r.error is None and feeder.pushed
    pulse = np.array([f.features["pulse"] for f in frames])
    t = np.array([f.t_due - feeder.t_start for f in frames])
    for c in times:  # each click lifts the pulse within 0.2 s; it is low again before the next
        assert pulse[(t > c) & (t < c + 0.2)].max() > 0.6, c
        assert pulse[(t > c + 0.3) & (t < c + 0.45)].max() < 0.3, c
    images = np.stack([f.image.astype(np.float32) for f in frames])
    change = np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3))  # frame to frame
    after = np.concatenate([change[(t[1:] > c) & (t[1:] < c + 0.25)] for c in times])
    before = np.concatenate([change[(t[1:] > c - 0.2) & (t[1:] < c)] for c in times])
    assert after.mean() > 5 * before.mean()  # the picture kicks on the clicks and settles before the next
    info = probe_video(out)
    assert (info["width"], info["height"], info["audio_streams"]) == (48, 48, 1), info
    assert info["n_frames"] >= 0.9 * seconds * 30  # the clock's ticks, dropped ones repeating a frame
    assert seconds - 0.1 < info["audio_duration"] < seconds + 0.4 <= info["video_duration"] + 0.4


@pytest.mark.slow
@pytest.mark.timing
def test_the_style_changes_while_playing_without_stopping_the_clock():
    import threading

    frames, done, clock = [], threading.Event(), SimulatedClock()
    other = resolve_style(_slow_style(clock, 0.0), input_shape=8, num_possible_classes=0)
    r = LiveRenderer(None, fps=20.0, resolution=16, clock=clock)
    r.add_listener(frames.append)
    with r:
        _playing(r)
        clock.sleep(0.3)
        r.set_style(other, lambda error: done.set())
        assert done.wait(120)  # real time (the clock stands still meanwhile); generous: only to fail, not hang
        clock.sleep(0.5)
    assert r.error is None and r.style is other
    ticks = [f.tick for f in frames]
    assert ticks == list(range(ticks[-1] + 1)) and ticks[-1] >= 16  # every tick shown: the clock never stopped
    # the new style's frames: grey with a z-dependent level, all three channels equal
    assert np.all(frames[-1].image[..., 0] == frames[-1].image[..., 1])
    assert not np.all(frames[0].image[..., 0] == frames[0].image[..., 1])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_file_with_nan_samples_is_refused_clearly_without_aborting(tmp_path):
    """Issue 29: ``lsd-jax live --input`` with NaN samples printed its error and then aborted (exit 134) as the
    interpreter finalised with the session's threads still inside XLA (at 128x128: 3 runs of 4 before the fix); the
    session's threads are now stopped at exit."""
    import subprocess
    import sys

    import soundfile as sf

    y = np.sin(np.arange(22050) / 10).astype(np.float32)
    y[100:200] = np.nan
    sf.write(tmp_path / "nan.wav", y, 22050, subtype="FLOAT")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lsd_jax.cli",
            "live",
            "--input",
            str(tmp_path / "nan.wav"),
            "--no-serve",
            "--resolution",
            "128",
        ],
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 2, proc.stderr
    assert "nan.wav contains non-finite samples (NaN or infinity)" in proc.stderr
    assert "terminate called" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_live_frames_come_from_the_render_step_and_effect_plan():
    """Live mode builds its step as a render does (engine.step.build_frame_step): the render's effect plan with
    contrast and flash at strength 1 (the sliders scale the amplitudes), one frame per step."""
    from lsd_jax.engine.step import plan_effects

    r = LiveRenderer(None, resolution=32, fps=10.0, contrast_strength=0.6)
    t = r._target
    step = r._step_for(t, t.sizes[0])
    assert step.batch == 1 and step.size == (32, 32)
    assert step.plan == plan_effects(r.params.replace(contrast_strength=1.0, flash_strength=1.0), (32, 32))
    assert [s for _, s in step.plan.fused] == [1.0, 1.0] and step.plan.host == ()


def test_the_status_line_says_time_speed_drops_level_and_size():
    from lsd_jax.web.live_page import _Level, status_line

    level = _Level()
    level(np.full(480, 0.1, np.float32), 48000, 0.0)
    level(np.full(480, 0.5, np.float32), 48000, 0.01)
    db = level.take()
    assert db == pytest.approx(20 * np.log10(0.5)) and level.take() == -np.inf  # the loudest block, then reset
    line = status_line(6.04, 20.0, 29.5, 3, db, (192, 192))
    assert line == "   6.0 / 20.0 s ·  29.5 frames/s · 3 dropped · level  -6.0 dB · 192x192", line
    assert "level silent" in status_line(0.0, 20.0, 0.0, 0, -np.inf, (256, 256))


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_in_a_headless_session_keeps_a_valid_recording(tmp_path, sig):
    """Issue 28: Ctrl-C in ``lsd-jax live --input … --record … --no-serve`` threw the take away (the terminal's
    SIGINT reached ffmpeg too). SIGINT goes to the whole process group, as a terminal's Ctrl-C does; SIGTERM to the
    process alone. Either leaves a valid MP4 whose video and audio lengths agree."""
    import os
    import signal
    import subprocess
    import sys

    sr = 22050
    song = write(tmp_path / "song.wav", click_track([0.5 * k for k in range(1, 40)], 20.0, sr), sr)
    out = tmp_path / "take.mp4"
    cmd = [sys.executable, "-m", "lsd_jax.cli", "live", "--input", str(song), "--record", str(out), "--no-serve"]
    proc = subprocess.Popen(
        [*cmd, "--resolution", "64", "--fps", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        first = proc.stdout.readline()  # printed when the file starts playing (after the compile)
        assert first.startswith("playing "), (first, proc.stderr.read() if proc.poll() is not None else "")
        status = proc.stdout.readline()  # the first plain status line (no terminal): STATUS_LOG_S = 5 s later
        assert " frames/s · " in status and " dropped · level " in status, status
        time.sleep(1.0)  # ~6 s into the session; the song lasts 20 s
        if sig == "SIGINT":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=200)  # generous: finishing the MP4 on a loaded machine
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"{sig}: stopping; finishing the recording" in rest and f"recorded {out}" in rest, rest
    assert "terminate called" not in err and "Traceback" not in err, err
    info = probe_video(out)
    assert (info["width"], info["height"], info["audio_streams"]) == (64, 64, 1), info
    assert 4.0 < info["video_duration"] < 19.0, info  # stopped early, not at the song's end
    assert abs(info["video_duration"] - info["audio_duration"]) <= 0.1, info
