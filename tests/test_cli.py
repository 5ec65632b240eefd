import argparse
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from lsd_jax.cli import build_parser, main
from lsd_jax.media.video import probe_video


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    t = np.arange(22050 * 3) / 22050
    sf.write(d / "s.wav", (0.4 * np.sin(2 * np.pi * 440 * t) * (np.mod(t, 0.5) < 0.1)).astype(np.float32), 22050)
    return d / "s.wav"


@pytest.mark.slow
def test_render_with_parameters(song, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    rc = main(
        [
            "render",
            str(song),
            "-o",
            str(out),
            "--fps",
            "10",
            "--resolution",
            "32",
            "--pulse-react",
            "0.9",
            "--classes",
            "1,2,3",
            "--contrast_strength",
            "0.2",
            "--pulse-percussive",
            "false",
            "--quiet",
        ]
    )
    assert rc == 0
    info = probe_video(out)
    assert (info["width"], info["n_frames"], info["audio_streams"]) == (32, 30, 1)
    assert "wrote" in capsys.readouterr().out


def test_bad_input_exits_2_with_a_clear_message(song, tmp_path, capsys):
    assert main(["render", str(song), "-o", str(tmp_path / "o.mp4"), "--truncation", "3", "--quiet"]) == 2
    assert "truncation must be between 0 and 1" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.mp4"), "--quiet"]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_argument_types_are_checked():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "x.wav", "--pulse-percussive", "maybe"])
    ns = build_parser().parse_args(["render", "x.wav", "--class-shuffle-seconds", "1,2.5", "--seed", "4"])
    assert ns.class_shuffle_seconds == (1.0, 2.5) and ns.seed == 4


@pytest.mark.slow
def test_demo_renders_a_real_video(tmp_path):
    out = tmp_path / "demo.mp4"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "lsd_jax.cli",
            "demo",
            "-o",
            str(out),
            "--seconds",
            "3",
            "--resolution",
            "32",
            "--fps",
            "8",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    info = probe_video(out)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1 and info["n_frames"] == 24


def test_styles_lists_the_catalogue_offline(capsys):
    assert main(["styles"]) == 0
    out = capsys.readouterr().out
    assert "wikiart" in out


def test_musical_control_arguments_parse():
    ns = build_parser().parse_args(
        [
            "render",
            "x.wav",
            "--speed-fpm",
            "beat",
            "--band-react",
            "0.3,0.2,0.1",
            "--keyframes",
            "10=cover.png,30.5=b.png",
            "--noise-react",
            "1.5",
        ]
    )
    assert ns.speed_fpm == "beat" and ns.band_react == (0.3, 0.2, 0.1) and ns.noise_react == 1.5
    assert ns.keyframes == {10.0: "cover.png", 30.5: "b.png"}
    assert build_parser().parse_args(["render", "x.wav", "--speed-fpm", "24"]).speed_fpm == 24.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "x.wav", "--keyframes", "cover.png"])


def test_help_lists_every_parameter_with_its_range_and_default(capsys):
    from lsd_jax.params import PARAMS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listed = {a.dest: a for a in sub.choices["render"]._actions if a.help != argparse.SUPPRESS}
    for p in PARAMS:
        if p.api_only:
            assert p.name not in listed
            continue
        action = listed[p.name]
        assert action.option_strings == [f"--{p.name.replace('_', '-')}"]
        assert f"[{p.range_text()}; default: {p.default_text()}]" in action.help and p.help in action.help
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--band-react X[,X,X] low, mid, high" in text and "[1 or 3 numbers, each 0–10; default: 0, 0, 0]" in text
    assert "--resolution N square output size in pixels [16–4096, even; default: the style's native size" in text
    assert "--pulse_react" not in text  # the underscore spelling works but is not listed twice


@pytest.mark.parametrize(
    "name, text",
    [
        ("classes", "1,2,3"),
        ("class_shuffle_seconds", "4"),
        ("class_shuffle_seconds", "1.5,3"),
        ("band_react", "0.4"),
        ("band_react", "0.4,0.2,0.3"),
        ("band_edges_hz", "300, 3000"),
        ("speed_fpm", "bar"),
        ("speed_fpm", "30"),
        ("keyframes", "42=cover.png,60=x.png"),
        ("contrast_percussive", "false"),
        ("duration", "none"),
    ],
)
def test_flags_read_text_with_the_table_parser(name, text):
    from lsd_jax.params import parse_value

    for flag in (f"--{name.replace('_', '-')}", f"--{name}"):
        ns = build_parser().parse_args(["render", "x.wav", flag, text])
        assert getattr(ns, name) == parse_value(name, text)


def test_malformed_text_names_the_flag_the_text_and_the_form(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "x.wav", "--band-react", "0.4,0.2"])
    err = capsys.readouterr().err
    assert "argument --band-react" in err and "'0.4,0.2'" in err and "one number (for all) or 3" in err


def test_params_command_prints_the_reference(capsys):
    from lsd_jax.params import PARAMS, markdown

    assert main(["params", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown() + "\n"
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {p.name} " in out for p in PARAMS)
    res = subprocess.run(
        [sys.executable, "-m", "lsd_jax.cli", "params", "--markdown"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and res.stdout == markdown() + "\n", res.stderr


def _sha(p):
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.slow
def test_default_output_goes_to_the_current_folder_and_never_over_the_song(song, tmp_path, monkeypatch, capsys):
    """`lsd-jax render clip.mp4` used to write clip.mp4 over itself; now clip.lsd.mp4 (and --help says where)."""
    clip = tmp_path / "clip.mp4"
    assert (
        main(["render", str(song), "-o", str(clip), "--fps", "8", "--resolution", "32", "--duration", "1", "--quiet"])
        == 0
    )
    before = _sha(clip)
    monkeypatch.chdir(tmp_path)
    assert main(["render", "clip.mp4", "--fps", "8", "--resolution", "32", "--duration", "1", "--quiet"]) == 0
    assert _sha(clip) == before
    assert probe_video(tmp_path / "clip.lsd.mp4")["n_frames"] == 8
    assert "wrote clip.lsd.mp4" in capsys.readouterr().out
    r = next(
        a
        for a in build_parser()._subparsers._group_actions[0].choices["render"]._actions
        if "--output" in a.option_strings
    )
    assert "current folder" in r.help and "beside" not in r.help


def test_output_over_an_input_is_refused(song, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(song.read_bytes())
    before = _sha(clip)
    assert main(["render", str(clip), "-o", str(clip), "--quiet"]) == 2
    assert "refusing to write over it" in capsys.readouterr().err
    assert main(["render", str(song), "-o", str(clip), "--output_audio", str(clip), "--quiet"]) == 2
    assert "refusing to write over it" in capsys.readouterr().err
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(b"\x80\x04K\x00.")
    assert main(["convert", str(pkl), str(pkl)]) == 2
    assert "refusing to write over it" in capsys.readouterr().err
    assert pkl.read_bytes() == b"\x80\x04K\x00." and _sha(clip) == before
    assert main(["convert", str(pkl), str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["convert", str(pkl), str(pkl / "x.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["0", "-3", "nan", "inf", "1e9"])
def test_demo_seconds_out_of_range_is_a_clear_error(tmp_path, seconds, capsys):
    assert main(["demo", "-o", str(tmp_path / "d.mp4"), "--seconds", seconds, "--quiet"]) == 2
    assert "the demo song's length must be 1 to 600 seconds" in capsys.readouterr().err
    assert not (tmp_path / "d.mp4").exists()


@pytest.mark.slow
def test_render_logs_each_keyframe_psnr_and_time(song, tmp_path, capsys):
    """Issue 17: the command line shows how closely (dB) and how fast each keyframe image was reached."""
    import nvidia_pickles as nv
    from PIL import Image
    from sg2_state import random_sg2_state, sg2_config

    from lsd_jax.styles.generator import load_generator

    config = sg2_config(img_resolution=32)
    pkl = nv.write_torch_pickle(tmp_path / "g.pkl", config, random_sg2_state(config, 7))
    img = load_generator(pkl)(np.random.default_rng(2).standard_normal((1, config["z_dim"])).astype(np.float32))
    Image.fromarray(np.clip(np.round((np.asarray(img[0]) + 1) * 127.5), 0, 255).astype(np.uint8)).save(
        tmp_path / "cover.png"
    )
    out = tmp_path / "k.mp4"
    assert (
        main(
            [
                "render",
                str(song),
                "--style",
                str(pkl),
                "-o",
                str(out),
                "--fps",
                "4",
                "--keyframes",
                f"1.5={tmp_path / 'cover.png'}",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("lsd-jax: keyframe at 1.5 s"))
    db = float(line.split(": ")[2].split(" dB PSNR")[0])
    assert db >= 30.0 and re.search(r"\d+ steps, \d+\.\d s", line), line
    assert probe_video(out)["n_frames"] == 12


def _children(pid):
    """(pid, command name) of the processes whose parent is ``pid``."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if int(rest[1]) == pid:
            found.append((int(stat.parent.name), name))
    return found


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_mid_render_leaves_nothing_behind(tmp_path, sig):
    """SIGTERM (kill, a scheduler) and SIGHUP (the terminal closed) stop a render like Ctrl-C: ffmpeg is stopped,
    no .part file, no temporary WAV, no output; the exit status says which signal (issue 18: SIGTERM used to leave
    ffmpeg writing the .part; issue 29: SIGHUP still did)."""
    import os
    import signal
    import time
    from pathlib import Path

    t = np.arange(22050 * 30) / 22050
    sf.write(tmp_path / "long.wav", (0.4 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(5 * t))).astype(np.float32), 22050)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lsd_jax.cli",
            "render",
            str(tmp_path / "long.wav"),
            "-o",
            str(out / "v.mp4"),
            "--quiet",
            "--resolution",
            "256",
            "--fps",
            "30",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        ffmpeg = []
        while time.monotonic() < deadline and proc.poll() is None:
            ffmpeg = [p for p, name in _children(proc.pid) if "ffmpeg" in name]
            if ffmpeg and list(out.glob(".v.mp4.*.part")) and list(tmp.glob("lsd-jax-audio-*.wav")):
                break
            time.sleep(0.05)
        assert proc.poll() is None and ffmpeg, "the render did not get to encoding"
        time.sleep(0.5)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert (f"terminated ({sig})" if sig != "SIGINT" else "interrupted") in err and "Traceback" not in err, err
    assert list(out.iterdir()) == [] and list(tmp.iterdir()) == []
    for pid in ffmpeg:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), pid


def test_sighup_is_an_interrupt_unless_ignored_as_under_nohup(monkeypatch):
    """SIGHUP raises KeyboardInterrupt inside the command (so its clean-up runs); a SIGHUP already ignored
    (``nohup``) stays ignored, and the previous handlers come back after."""
    import os
    import signal

    from lsd_jax import cli

    before = signal.getsignal(signal.SIGHUP)
    try:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        with pytest.raises(KeyboardInterrupt), cli._terminate_as_interrupt() as received:
            os.kill(os.getpid(), signal.SIGHUP)  # delivered at once: the handler runs before the next line
            pytest.fail("SIGHUP did not interrupt")
        assert received == [signal.SIGHUP] and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with cli._terminate_as_interrupt() as received:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN  # SIGTERM still handled
        assert received == [] and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


@pytest.mark.slow
def test_formats_writes_one_file_per_aspect_from_one_render(song, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    rc = main(["render", str(song), "-o", str(out), "--fps", "8", "--resolution", "16", "--formats", "16:9,1:1"])
    assert rc == 0
    printed = capsys.readouterr().out
    for name, size in (("o.16x9.mp4", (28, 16)), ("o.1x1.mp4", (16, 16))):
        info = probe_video(tmp_path / name)
        assert (info["width"], info["height"]) == size and info["audio_streams"] == 1 and info["n_frames"] == 24
        assert name in printed
    assert not out.exists()  # the base name only names the files
    assert main(["render", str(song), "-o", str(out), "--formats", "16x9"]) == 2
    assert "formats" in capsys.readouterr().err
