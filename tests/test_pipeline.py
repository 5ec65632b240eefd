"""End to end: a real MP4 from a real (synthetic) song, and the frames react to the beat."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import lsd_jax
from lsd_jax import AudioError, OutputError, ParamError
from lsd_jax.engine.pipeline import render_frames
from lsd_jax.engine.step import EffectPlan, make_frame_step
from lsd_jax.media.video import probe_video, read_frames

SR = 22050


def click_track(
    path: Path, seconds: float, clicks: list[float], *, drone: float = 0.0, silence_until: float = 0.0, sr: int = SR
) -> Path:
    """Short broadband clicks at the given times, over an optional drone (after `silence_until`)."""
    t = np.arange(int(seconds * sr)) / sr
    y = drone * np.sin(2 * np.pi * 220 * t) * (t >= silence_until)
    rng = np.random.default_rng(0)
    click = rng.normal(size=int(0.02 * sr)) * np.exp(-np.arange(int(0.02 * sr)) / (0.004 * sr))
    for c in clicks:
        i = int(c * sr)
        y[i : i + click.size] += 0.8 * click[: max(0, y.size - i)]
    sf.write(path, (0.9 * y / np.abs(y).max()).astype(np.float32), sr)
    return path


@pytest.fixture(scope="module")
def clicks_song(tmp_path_factory):
    d = tmp_path_factory.mktemp("song")
    times = [1.5, 3.5, 5.0, 7.25, 9.0]
    return click_track(d / "clicks.wav", 10.5, times), times


def test_end_to_end_render_has_the_right_streams_and_frames_react(clicks_song, tmp_path):
    song, times = clicks_song
    fps = 24.0
    out = lsd_jax.render(song, output=tmp_path / "video.mp4", fps=fps, width=96, height=54, speed_fpm=0, progress=False)
    assert out.path == tmp_path / "video.mp4" and out.path.is_file()
    assert str(out) == str(tmp_path / "video.mp4") and Path(out) == out.path  # os.fspath works too
    assert abs(out.n_frames - 10.5 * fps) <= 1 and out.size == (54, 96) and out.timings.total > 0
    info = probe_video(out)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert (info["width"], info["height"]) == (96, 54)
    assert abs(info["fps"] - fps) < 1e-3
    assert abs(info["n_frames"] - 10.5 * fps) <= 1
    assert abs(info["audio_duration"] - 10.5) < 0.1
    frames = np.stack([f.astype(np.float32) for f in read_frames(out)])
    change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    # change[i] is between frames i and i+1: the kick lands on the frame holding the click (+-1)
    expected = [int(t * fps) for t in times]
    near = np.zeros(change.size, bool)
    for e in expected:
        near[e - 2 : e + 1] = True
    peak_at_clicks = [change[e - 2 : e + 1].max() for e in expected]
    assert min(peak_at_clicks) > 3 * np.median(change), (peak_at_clicks, np.median(change))
    assert min(peak_at_clicks) > change[~near].max(), (peak_at_clicks, np.argmax(np.where(near, 0, change)))
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


@pytest.mark.slow
def test_silence_and_no_wandering_gives_identical_frames(tmp_path):
    song = click_track(tmp_path / "late.wav", 6.0, [4.5], drone=0.05, silence_until=4.0)
    params = lsd_jax.make_params(fps=12.0, resolution=32, speed_fpm=0)
    from lsd_jax.audio import analysis as audio
    from lsd_jax.engine import latents
    from lsd_jax.styles.resolve import cppn_style

    feats = audio.analyze(song, params)
    style = cppn_style()
    lat = latents.make_latents(
        feats.pulse, feats.motion, feats.chroma, params, fps=feats.fps, z_dim=style.z_dim, c_dim=style.c_dim
    )
    got = []
    step = make_frame_step(style, (32, 32), EffectPlan((), ()), 8)
    inputs = {"z": lat.z, "c": lat.c, "amps": np.zeros((feats.n_frames, 0), np.float32)}
    render_frames(step, inputs, EffectPlan((), ()), got.append)
    frames = np.concatenate(got)
    assert frames.shape == (feats.n_frames, 32, 32, 3)
    silent = frames[: int(3.5 * 12)]
    assert np.array_equal(silent, np.broadcast_to(silent[0], silent.shape))
    assert np.abs(frames[int(4.5 * 12) + 1].astype(int) - frames[0]).max() > 0


def test_same_seed_same_video_frames(clicks_song, tmp_path):
    song, _ = clicks_song
    kw = dict(fps=10.0, resolution=32, duration=3.0, progress=False)
    a = lsd_jax.render(song, output=tmp_path / "a.mp4", seed=5, **kw)
    b = lsd_jax.render(song, output=tmp_path / "b.mp4", seed=5, **kw)
    fa = np.stack(list(read_frames(a)))
    fb = np.stack(list(read_frames(b)))
    assert np.array_equal(fa, fb)


@pytest.fixture
def existing_output(tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"an earlier render")
    return out


def _assert_untouched(out: Path):
    assert out.read_bytes() == b"an earlier render"
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def _bytes(name, data):
    def make(d):
        (d / name).write_bytes(data)
        return d / name

    return make


def _wav(name, samples):
    def make(d):
        sf.write(d / name, samples, SR)
        return d / name

    return make


@pytest.mark.parametrize(
    "make_song, match",
    [
        (_bytes("notes.mp3", b"these are my lyrics, not audio"), "notes.mp3"),
        (_bytes("empty.wav", b""), "empty.*empty.wav"),
        (lambda d: d / "missing.wav", "(not found|does not exist).*missing.wav"),
        (_wav("silent.wav", np.zeros(SR * 2, np.float32)), "silent"),
        (_wav("tiny.wav", np.ones(10, np.float32) * 0.5), "short.*frame"),
    ],
)
def test_bad_audio_gives_a_clear_error_and_leaves_the_output_alone(tmp_path, existing_output, make_song, match):
    song = make_song(tmp_path)
    with pytest.raises(AudioError, match=match):
        lsd_jax.render(song, output=existing_output, resolution=32, progress=False)
    _assert_untouched(existing_output)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"truncation": 2.0}, "truncation"),
        ({"motion_randomness": -1}, "motion_randomness"),
        ({"fps": 0}, "fps"),
        ({"resolution": 33}, "even"),
        ({"speed_fpm": 1e9}, "speed_fpm"),
    ],
)
def test_bad_params_give_a_clear_error_and_leave_the_output_alone(clicks_song, existing_output, kwargs, match):
    with pytest.raises(ParamError, match=match):
        lsd_jax.render(clicks_song[0], output=existing_output, progress=False, **kwargs)
    _assert_untouched(existing_output)


def test_unwritable_output_path(clicks_song, tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        lsd_jax.render(clicks_song[0], output=tmp_path / "no" / "such" / "dir" / "x.mp4", progress=False)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="does not exist|not a directory"):
        lsd_jax.render(clicks_song[0], output=a_file / "x.mp4", progress=False)
    # /proc refuses new files even to root: the check must try for real, not trust permission bits
    with pytest.raises(OutputError, match="not writable"):
        lsd_jax.render(clicks_song[0], output="/proc/lsd-jax-test.mp4", progress=False)


@pytest.mark.slow
def test_output_without_suffix_gets_mp4_and_other_suffixes_are_refused(clicks_song, tmp_path):
    out = lsd_jax.render(
        clicks_song[0], output=tmp_path / "noext", resolution=16, fps=4.0, duration=2.0, progress=False
    )
    assert out.path.name == "noext.mp4" and out.path.is_file()
    with pytest.raises(ParamError, match="mp4"):
        lsd_jax.render(clicks_song[0], output=tmp_path / "x.avi", progress=False)


@pytest.mark.slow
def test_effects_and_a_numpy_only_custom_effect_render(clicks_song, tmp_path):
    def mirror(array, strength, amplitude):  # NumPy only: runs on the host
        out = np.array(array)
        if amplitude * strength > 0.1:
            out[:, : out.shape[1] // 2] = out[:, ::-1][:, : out.shape[1] // 2]
        return out

    seen = []
    out = lsd_jax.render(
        clicks_song[0],
        output=tmp_path / "fx.mp4",
        resolution=32,
        fps=8.0,
        duration=4.0,
        contrast_strength=0.5,
        flash_strength=0.5,
        custom_effects=[lsd_jax.EffectsGenerator(mirror, strength=1.0)],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert probe_video(out)["n_frames"] == 32
    assert seen[-1] == (32, 32) and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))


@pytest.mark.slow
def test_numpy_callable_style_runs_on_the_host(clicks_song, tmp_path):
    def np_style(noise_batch, class_batch):
        b = noise_batch.shape[0]
        v = (np.tanh(np.asarray(noise_batch)[:, :3]) + 1) * 127.5
        return np.broadcast_to(v[:, None, None, :], (b, 24, 24, 3)).astype(np.uint8)

    out = lsd_jax.render(
        clicks_song[0],
        style=np_style,
        output=tmp_path / "np.mp4",
        fps=8.0,
        duration=2.0,
        input_shape=8,
        num_possible_classes=0,
        progress=False,
    )
    info = probe_video(out)
    assert (info["width"], info["height"], info["n_frames"]) == (24, 24, 16)
    with pytest.raises(lsd_jax.StyleError, match="input_shape"):
        lsd_jax.render(clicks_song[0], style=np_style, output=tmp_path / "x.mp4", progress=False)


@pytest.mark.slow
def test_lucid_sonic_dreams_compatible_api(clicks_song, tmp_path):
    L = lsd_jax.LucidSonicDream(song=str(clicks_song[0]), style="default")
    out = L.hallucinate(
        file_name=str(tmp_path / "lsd"),
        fps=8,
        resolution=32,
        duration=2,
        speed_fpm=6,
        pulse_react=0.8,
        contrast_strength=0.2,
    )
    assert out.suffix == ".mp4" and probe_video(out)["n_frames"] == 16


def test_jax_callable_style_and_jax_effect_are_fused(clicks_song, tmp_path):
    import jax.numpy as jnp

    from lsd_jax.engine.step import plan_effects
    from lsd_jax.styles.resolve import resolve_style

    def jax_style(noise_batch, class_batch):
        v = (jnp.tanh(noise_batch[:, :3]) + 1) * 127.5
        return jnp.broadcast_to(v[:, None, None, :], (noise_batch.shape[0], 16, 16, 3))

    def dim(array, strength, amplitude):
        return array * (1.0 - strength * amplitude)

    style = resolve_style(jax_style, input_shape=8, num_possible_classes=0)
    assert not style.host and style.native_size == (16, 16)
    params = lsd_jax.make_params(custom_effects=[lsd_jax.EffectsGenerator(dim, strength=0.5)], flash_strength=0.3)
    plan = plan_effects(params, (16, 16))
    assert len(plan.fused) == 2 and plan.host == ()
    out = lsd_jax.render(
        clicks_song[0],
        style=jax_style,
        output=tmp_path / "j.mp4",
        fps=8.0,
        duration=2.0,
        input_shape=8,
        num_possible_classes=0,
        params=params,
        progress=False,
    )
    assert probe_video(out)["n_frames"] == 16


# --- one engine: parameters normalised once, one writer loop (issue 26) --------------------------------------------


def test_a_render_normalises_its_parameters_once(clicks_song, tmp_path, monkeypatch):
    from lsd_jax.params import RenderParams

    made = []
    validate = RenderParams.__post_init__
    monkeypatch.setattr(RenderParams, "__post_init__", lambda self: (made.append(1), validate(self))[1])
    lsd_jax.render(clicks_song[0], output=tmp_path / "a.mp4", fps=4.0, resolution=16, duration=2.0, progress=False)
    assert len(made) == 1  # render's keywords, validated once; prepare and the step take them as they are
    params = lsd_jax.make_params(fps=4.0, resolution=16, duration=2.0)
    made.clear()
    lsd_jax.render(clicks_song[0], output=tmp_path / "b.mp4", params=params, progress=False)
    assert made == []  # a RenderParams is valid already


def test_the_writer_loop_leaves_nothing_when_interrupted(tmp_path, existing_output, monkeypatch):
    """Ctrl-C (or any error) in the middle of the writer loop: ffmpeg is stopped, no partial file or temporary
    soundtrack remains, and the file already at the output is as it was."""
    import tempfile

    from lsd_jax.engine.pipeline import write_video
    from lsd_jax.styles.resolve import cppn_style

    style = cppn_style()
    step = make_frame_step(style, (16, 16), EffectPlan((), ()), 2)
    n = 8
    inputs = {
        "z": np.zeros((n, style.z_dim), np.float32),
        "c": np.zeros((n, style.c_dim), np.float32),
        "amps": np.zeros((n, 0), np.float32),
    }
    sound = (np.zeros(8000, np.float32), 8000)
    seen = []

    def interrupt(done, total):
        seen.append(done)
        if done >= 4:
            raise KeyboardInterrupt

    private = tmp_path / "systmp"  # the temporary soundtrack's folder, ours alone (others share /tmp)
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    with pytest.raises(KeyboardInterrupt):
        write_video(existing_output, step, inputs, EffectPlan((), ()), fps=4.0, audio=sound, progress=interrupt)
    assert seen == [2, 4]
    _assert_untouched(existing_output)
    assert list(private.iterdir()) == []  # the temporary soundtrack is gone
    written = write_video(
        tmp_path / "whole.mp4", step, inputs, EffectPlan((), ()), fps=4.0, audio=sound, progress=False
    )
    assert written.first_write is not None and probe_video(tmp_path / "whole.mp4")["n_frames"] == n
