"""lsd_jax.paths: an unusable $LSD_JAX_CACHE is a clear error naming the variable (issue 18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsd_jax import catalogue
from lsd_jax.cli import main
from lsd_jax.errors import CacheError, LsdError
from lsd_jax.paths import CACHE_ENV, atomic_write, cache_dir


def test_cache_dir_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "a" / "b"))
    assert cache_dir() == tmp_path / "a" / "b" and cache_dir().is_dir()


@pytest.mark.parametrize("case,match", [
    ("a file", "is a file, not a folder"),
    ("under a file", "part of its path is a file"),
    ("unwritable", "is not writable"),
    ("no such user", "home folder that does not exist"),
])
def test_unusable_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str,
                                         match: str) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    value = {"a file": str(f), "under a file": str(f / "cache"), "unwritable": str(tmp_path),
             "no such user": "~no-such-user-lsd-jax/cache"}[case]
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


def test_cli_reports_an_unusable_cache_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
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
