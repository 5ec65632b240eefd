"""The app's configuration: environment variables, launch flags, ``python app.py --help``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lsd_jax.web.config import AppConfig, duration_text

ROOT = Path(__file__).resolve().parent.parent


def test_config_from_env():
    cfg = AppConfig.from_env({"LSD_JAX_MAX_SECONDS": "90", "LSD_JAX_MAX_FILE_SIZE": "5mb", "LSD_JAX_CONCURRENCY": "2"})
    assert (cfg.max_seconds, cfg.max_file_size, cfg.concurrency) == (90.0, "5mb", 2)
    assert cfg.max_resolution == AppConfig().max_resolution
    with pytest.raises(SystemExit, match="LSD_JAX_MAX_SECONDS"):
        AppConfig.from_env({"LSD_JAX_MAX_SECONDS": "ten"})
    with pytest.raises(SystemExit, match="LSD_JAX_QUEUE_SIZE must be a positive number"):
        AppConfig.from_env({"LSD_JAX_QUEUE_SIZE": "-1"})


def test_flags_override_the_environment():
    env = {"LSD_JAX_MAX_SECONDS": "90", "LSD_JAX_MAX_RESOLUTION": "512"}
    cfg, server = AppConfig.from_args(["--max-seconds", "30", "--port", "9999", "--concurrency", "0"], env)
    assert (cfg.max_seconds, cfg.max_resolution, cfg.concurrency) == (30.0, 512, 1)
    assert server == {"server_name": None, "server_port": 9999}


@pytest.mark.slow
def test_app_py_help_runs_without_building_the_page():
    res = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--max-seconds" in res.stdout and "LSD_JAX_MAX_SECONDS" in res.stdout


def test_duration_text():
    assert [duration_text(s) for s in (5, 90, 600, 610)] == ["5 s", "90 s", "10 min", "10 min 10 s"]


def test_start_up_work_and_the_excerpt_from_env():
    cfg = AppConfig.from_env({"LSD_JAX_EXAMPLES": "Lazy", "LSD_JAX_WARM_UP": "0", "LSD_JAX_EXCERPT_SECONDS": "20"})
    assert (cfg.examples, cfg.warm_up, cfg.excerpt_seconds) == ("lazy", False, 20.0)
    d = AppConfig.from_env({})
    assert (d.examples, d.warm_up, d.excerpt_seconds) == ("eager", True, 30.0)  # what a Space gets
    with pytest.raises(SystemExit, match="LSD_JAX_EXAMPLES must be one of eager, lazy, off"):
        AppConfig.from_env({"LSD_JAX_EXAMPLES": "sometimes"})
    cfg, _ = AppConfig.from_args(["--examples", "off"], {"LSD_JAX_WARM_UP": "0"})
    assert cfg.examples == "off" and not cfg.warm_up
