"""The LSD-compatible API: wrong argument types are clear ParamErrors, not TypeErrors (issue 18)."""

from __future__ import annotations

import pytest

from lsd_jax import LucidSonicDream
from lsd_jax.errors import ParamError


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"song": 123}, "song must be a path"),
        ({"song": None}, "song must be a path"),
        ({"song": b"a.wav"}, "song must be a path"),
        ({"song": "a.wav", "pulse_audio": 5}, "pulse_audio must be a path"),
        ({"song": "a.wav", "flash_audio": ["x"]}, "flash_audio must be a path"),
        ({"song": "a.wav", "input_shape": "512"}, "input_shape must be an integer"),
        ({"song": "a.wav", "num_possible_classes": 2.5}, "num_possible_classes must be an integer"),
    ],
)
def test_constructor_argument_types(kwargs, match) -> None:
    with pytest.raises(ParamError, match=match):
        LucidSonicDream(**kwargs)


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((), {"file_name": None}, "file_name must be a path"),
        ((3.5,), {}, "file_name must be a path"),
        (("o.mp4",), {"save_frames": "yes"}, "save_frames must be True or False"),
        (("o.mp4",), {"fps": None}, "fps must be a number"),
        (("o.mp4",), {"bogus": 1}, "unknown parameter"),
    ],
)
def test_hallucinate_argument_types(args, kwargs, match) -> None:
    with pytest.raises(ParamError, match=match):
        LucidSonicDream("a.wav").hallucinate(*args, **kwargs)


def test_a_stem_given_to_both_the_constructor_and_hallucinate_is_a_clear_error() -> None:
    """Issue 29: it was Python's raw "got multiple values for keyword argument" TypeError."""
    L = LucidSonicDream("a.wav", pulse_audio="drums.wav")
    with pytest.raises(ParamError, match=r"pulse_audio was given to LucidSonicDream\(\.\.\.\) already"):
        L.hallucinate("o.mp4", pulse_audio="other.wav")


def test_hallucinate_uses_lsds_chroma_unless_told_otherwise(monkeypatch) -> None:
    """LSD's class vectors come from librosa's chroma_cqt: the compatible class asks for it by default; the stems
    given to the constructor and to hallucinate (different ones) both arrive."""
    import lsd_jax.compat as compat

    seen = []
    monkeypatch.setattr(compat, "resolve_style", lambda style, p, **kw: object())
    monkeypatch.setattr(
        compat, "render", lambda song, style, output, params: seen.append(params) or type("R", (), {"path": output})()
    )
    L = LucidSonicDream("a.wav", pulse_audio="drums.wav")
    L.hallucinate("o.mp4", class_audio="keys.wav")
    L.hallucinate("o.mp4", chroma="stft")
    assert [p.chroma for p in seen] == ["cqt", "stft"]
    assert (seen[0].pulse_audio, seen[0].class_audio) == ("drums.wav", "keys.wav")


# ------------------------------------------------------------------------------------ issue 12: LSD's first example


@pytest.fixture
def lsd_folder(tmp_path, monkeypatch):
    """A working folder with a short song, its own cache and user catalogue (as a new user's)."""
    import numpy as np
    import soundfile as sf

    monkeypatch.setenv("LSD_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LSD_JAX_USER_STYLES", str(tmp_path / "user_styles.json"))
    monkeypatch.chdir(tmp_path)
    t = np.arange(22050 * 2) / 22050
    beat = (np.mod(t, 0.5) < 0.08).astype(np.float32)
    song = (
        0.3 * np.sin(2 * np.pi * 220 * t) * (0.3 + beat) + 0.2 * beat * np.random.default_rng(0).standard_normal(t.size)
    ).astype(np.float32)
    sf.write(tmp_path / "song.wav", song, 22050)
    return tmp_path


@pytest.mark.slow
def test_lsds_first_example_renders_abstract_photos_from_the_working_directory(lsd_folder):
    """``LucidSonicDream(song, style="abstract photos").hallucinate(...)`` with ``abstract photos.pkl`` (a StyleGAN 1
    pickle in NVIDIA's layout) in the working directory: no download, every LSD parameter that applies."""
    import nvidia_pickles_sg1 as nvs

    from lsd_jax.media.video import probe_video

    static = nvs.SMALL["32"]
    (lsd_folder / "abstract photos.pkl").write_bytes(nvs.pickle_bytes(static, nvs.generator_variables(static, 1)))
    L = LucidSonicDream(song="song.wav", style="abstract photos")
    out = L.hallucinate(
        file_name="song",
        fps=8,
        resolution=32,
        speed_fpm=12,
        pulse_react=0.8,
        motion_react=0.7,
        motion_randomness=0.5,
        truncation=0.9,
        noise_react=0.5,
        contrast_strength=0.3,
        flash_strength=0.2,
    )
    info = probe_video(out)
    assert out.name == "song.mp4" and (info["width"], info["height"], info["n_frames"]) == (32, 32, 16)
    assert info["audio_streams"] == 1
    assert not (lsd_folder / "cache" / "styles").exists() or not any((lsd_folder / "cache" / "styles").glob("*.pkl"))


def test_lsds_first_example_without_the_file_says_what_to_do_at_once(lsd_folder, monkeypatch):
    """Offline and without the file: one line, in well under a second, saying what to do."""
    import socket
    import time

    from lsd_jax.errors import DownloadError

    def offline(*a, **k):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    L = LucidSonicDream(song="song.wav", style="abstract photos")
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as ei:
        L.hallucinate(file_name="song.mp4", fps=8, resolution=32)
    assert time.monotonic() - t0 < 5.0  # not retried: the download's backoff alone would take 15 s (generous)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.endswith(
        "Download https://mega.nz/#!vCQyHQZT!zdeOg3VvT4922Z2UfxO51xgAfJD-NAK2nW7H_jMlilU in a browser, "
        'then run: lsd-jax styles --add "abstract photos" FILE'
    )
    assert not (lsd_folder / "song.mp4").exists()
