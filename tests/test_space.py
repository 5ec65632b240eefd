"""The repository as a Hugging Face Space: the README's front matter, a requirements.txt that a Space
installs before it copies the repository, and ``python app.py`` serving on the host and port the
Space sets (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT), cleaning up its files when the Space stops it
(SIGTERM). The slow test does what a Space does: a fresh venv from requirements.txt alone, in an
empty folder, then the repository's files copied, then ``python app.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md has no front matter (a Space reads its settings there)"
    block = text[4 : text.index("\n---\n", 4)]
    return {k.strip(): v.strip().strip('"') for k, v in (line.split(":", 1) for line in block.splitlines())}


def _requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_space_settings_match_the_project():
    fm = _front_matter()
    assert fm["sdk"] == "gradio" and fm["app_file"] == "app.py" and fm["python_version"] == "3.11"
    assert len(fm["short_description"]) <= 60  # the Hub's limit
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert _requirements() == deps  # the same list: neither drifts
    gradio = next(Requirement(d) for d in deps if d.startswith("gradio"))
    assert Version(fm["sdk_version"]) in gradio.specifier  # the Space's Gradio is one the project takes


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if not Path(found).is_file():
        pytest.skip("uv is not installed (scripts/install.sh installs it)")
    return found


def _tracked_files() -> list[str]:
    """The repository's files (what a Space checks out): git's list, else the app's own folders."""
    res = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if res.returncode == 0:
        return [f for f in res.stdout.decode().split("\0") if f and (ROOT / f).is_file()]
    return ["app.py", "requirements.txt", "README.md", "pyproject.toml"] + [
        str(p.relative_to(ROOT))
        for d in ("lsd_jax", "converters")
        for p in (ROOT / d).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]


@pytest.mark.slow
def test_a_space_installs_from_requirements_alone_and_serves(tmp_path):
    uv = _uv()
    empty, app, venv, tmp = tmp_path / "build", tmp_path / "app", tmp_path / "venv", tmp_path / "tmp"
    for d in (empty, app, tmp):
        d.mkdir()
    shutil.copy(ROOT / "requirements.txt", empty / "requirements.txt")
    t0 = time.monotonic()
    subprocess.run(
        [uv, "venv", "--quiet", "--python", f"{sys.version_info.major}.{sys.version_info.minor}", str(venv)],
        check=True,
        cwd=empty,
        timeout=300,
    )
    python = venv / "bin" / "python"
    res = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "-r", "requirements.txt"],
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=900,
    )  # before the repository is there
    assert res.returncode == 0, res.stderr[-3000:]
    installed = time.monotonic() - t0
    for f in _tracked_files():  # then the Space copies the repository
        (app / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, app / f)
    probe = subprocess.run([str(python), "-c", "import lsd_jax"], cwd=tmp, capture_output=True)
    assert probe.returncode != 0  # the project itself is not installed: app.py runs it from the repository

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LSD_JAX_", "GRADIO_", "PYTHON"))}
    env.update(
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        TMPDIR=str(tmp),
        LSD_JAX_CACHE=str(tmp_path / "cache"),
        GRADIO_TEMP_DIR=str(tmp / "gradio"),
    )
    log = (tmp_path / "app.log").open("w")
    proc = subprocess.Popen([str(python), "app.py"], cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        t1 = time.monotonic()
        page = None
        while time.monotonic() - t1 < 600 and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                if page.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert page is not None and page.status_code == 200, (tmp_path / "app.log").read_text()[-3000:]
        serving = time.monotonic() - t1
        assert "lsd-jax: music-reactive GAN videos" in page.text
        info = httpx.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=30).json()
        assert {"/render", "/preview"} <= set(info["named_endpoints"])
        roots = list(tmp.glob("lsd-jax-app-*"))
        assert len(roots) == 1 and (roots[0] / "owner.pid").read_text() == str(proc.pid)
        proc.send_signal(signal.SIGTERM)  # how a Space stops an app
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert not roots[0].exists(), (tmp_path / "app.log").read_text()[-3000:]  # its files went with it
    print(
        f"Space: fresh venv from requirements.txt in {installed:.1f} s; app.py served its page after "
        f"{serving:.1f} s; SIGTERM removed its folder"
    )
