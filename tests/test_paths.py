"""lsd_jax.store.paths: an unusable $LSD_JAX_CACHE is a clear error naming the variable (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsd_jax.cli import main
from lsd_jax.errors import CacheError, LsdError
from lsd_jax.store import catalogue
from lsd_jax.store.paths import CACHE_ENV, atomic_write, cache_dir

ROOT = Path(__file__).parent.parent
SCRIPTS = Path(__file__).parent / "scripts"


def test_cache_dir_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "a" / "b"))
    assert cache_dir() == tmp_path / "a" / "b" and cache_dir().is_dir()


@pytest.mark.parametrize(
    "case,match",
    [
        ("a file", "is a file, not a folder"),
        ("under a file", "part of its path is a file"),
        ("unwritable", "is not writable"),
        ("no such user", "home folder that does not exist"),
    ],
)
def test_unusable_cache_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, match: str
) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    value = {
        "a file": str(f),
        "under a file": str(f / "cache"),
        "unwritable": str(tmp_path),
        "no such user": "~no-such-user-lsd-jax/cache",
    }[case]
    if case == "unwritable":  # root ignores permission bits, so say what the OS would say
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    monkeypatch.setenv(CACHE_ENV, value)
    with pytest.raises(CacheError, match=match) as info:
        cache_dir()
    assert f"${CACHE_ENV} ({value})" in str(info.value) and isinstance(info.value, LsdError)
    assert isinstance(info.value, OSError)  # callers that tolerate an unwritable cache keep doing so
    with pytest.raises(CacheError):  # through the library's users too
        catalogue.styles_dir()


def test_cli_reports_an_unusable_cache_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    monkeypatch.setenv(CACHE_ENV, str(f))
    assert main(["demo", "-o", str(tmp_path / "d.mp4"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"${CACHE_ENV}" in err and "Traceback" not in err


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    atomic_write(p, lambda f: f.write(b"one"))

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        atomic_write(p, fail)
    assert p.read_bytes() == b"one" and [x.name for x in tmp_path.iterdir()] == ["f.bin"]


def _cli_render(song, out, cache):
    env = dict(os.environ, LSD_JAX_CACHE=str(cache), JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    res = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "cli_render_report.py"),
            "render",
            str(song),
            "-o",
            str(out),
            "--resolution",
            "32",
            "--fps",
            "12",
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "first frame" in res.stdout and "after the command started" in res.stdout
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_loads_the_compiled_code_instead_of_compiling(tmp_path):
    from lsd_jax.audio.demo_song import write_demo_song

    song = write_demo_song(tmp_path / "song.wav", seconds=2.0)
    cache = tmp_path / "cache"
    first = _cli_render(song, tmp_path / "a.mp4", cache)
    second = _cli_render(song, tmp_path / "b.mp4", cache)
    assert first["rc"] == second["rc"] == 0
    assert not first["gradio"] and not second["gradio"], "the CLI render must not import the web app's gradio"
    assert not first["flax"] and not second["flax"], "the default style renders without loading Flax"
    main_steps = {"jit_frame_step", "jit_motion_latents", "jit_class_latents"}
    assert main_steps <= set(first["misses"]) and not first["hits"]  # an empty cache: compiled ...
    assert any((cache / "jax").iterdir())  # ... and written under the cache dir
    # the cache key is stable across processes: the next one loads them (compilations under
    # paths.MIN_CACHED_COMPILE_S are not worth a file and may still be compiled)
    assert main_steps <= set(second["hits"]) and not main_steps & set(second["misses"])


@pytest.mark.slow
def test_import_lsd_jax_is_light():
    # `import lsd_jax` and the commands that render nothing (`lsd-jax params`, `styles`) never load JAX
    code = (
        "import contextlib, io, sys, lsd_jax; from lsd_jax.cli import main; assert lsd_jax.RenderParams\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['params']); main(['styles'])\n"
        "print(sorted(m for m in ('jax', 'flax', 'gradio') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.slow
def test_use_persistent_caches_uses_the_cache_dir_unless_jax_has_one(tmp_path):
    code = (
        "import os, jax; from lsd_jax.store.paths import use_persistent_caches; use_persistent_caches(); "
        "print(jax.config.jax_compilation_cache_dir, os.environ['NUMBA_CACHE_DIR'])"
    )
    env = dict(os.environ, LSD_JAX_CACHE=str(tmp_path / "c"))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop("NUMBA_CACHE_DIR", None)
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert ours.stdout.split() == [str(tmp_path / "c" / "jax"), str(tmp_path / "c" / "numba")], ours.stderr
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "mine")
    theirs = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert theirs.stdout.split()[0] == str(tmp_path / "mine"), theirs.stderr


def test_sha256_file_is_the_one_hash_helper(tmp_path) -> None:
    """One streamed sha256 for downloads, the catalogue and the weights (issue 29); ``start`` skips a header;
    errors name the file, not its folder (messages reach the web page)."""
    import hashlib

    from lsd_jax.errors import StyleError
    from lsd_jax.store import catalogue, download, paths, weights

    data = bytes(range(256)) * 9000  # more than one 1 MiB chunk
    f = tmp_path / "secret-folder" / "m.bin"
    f.parent.mkdir()
    f.write_bytes(data)
    assert paths.sha256_file(f) == hashlib.sha256(data).hexdigest()
    assert paths.sha256_file(f, start=100) == hashlib.sha256(data[100:]).hexdigest()
    assert download.sha256_file is weights.sha256_file is catalogue.sha256_file is paths.sha256_file
    with pytest.raises(StyleError, match="not found: gone.bin") as ei:
        paths.sha256_file(tmp_path / "secret-folder" / "gone.bin")
    assert "secret-folder" not in str(ei.value)
    with pytest.raises(StyleError, match="directory"):
        paths.sha256_file(f.parent)


@pytest.mark.timeout(60)  # opening a FIFO for reading blocks until a writer comes
def test_a_fifo_style_file_is_refused_without_blocking(tmp_path, monkeypatch) -> None:
    from lsd_jax.errors import StyleError
    from lsd_jax.store import weights

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    fifo = tmp_path / "model.pkl"
    os.mkfifo(fifo)
    with pytest.raises(StyleError, match=r"model\.pkl is not a regular file"):
        weights.load(fifo)
