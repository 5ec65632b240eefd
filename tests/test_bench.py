"""The benchmark's pieces that run the product in another process keep working as the product changes
(the bench itself is run by hand: ``python -m lsd_jax.bench``)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from lsd_jax import bench
from lsd_jax.audio.demo_song import write_demo_song


@pytest.mark.slow
def test_the_apps_first_preview_and_render_run_in_a_fresh_process(tmp_path):
    song = write_demo_song(tmp_path / "song.wav", seconds=2.0)
    r = bench._app_run(song, tmp_path / "cache", "cold")
    assert r["ready"] is None
    assert math.isfinite(r["preview"]) and r["preview"] > 0
    assert (tmp_path / "cache").is_dir()  # the process used the cache folder it was given
    (tmp_path / "wd").mkdir()
    r = bench._app_run(song, tmp_path / "cache", "render", tmp_path / "wd")
    assert r["playable"] is not None and 0 < r["playable"] <= r["total"]
    assert (tmp_path / "wd" / "live.mp4").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.timing
def test_the_live_rows_measure_a_session_of_the_size_asked():
    """``bench --live`` rows (real time, so only their shape is checked, no speed): the size asked for, every
    session's counters and the CPU it used; ``--resolution`` picks the sizes."""
    m = bench.live_session(2.0, resolution=64, adapt=False)
    assert set(m["sizes"]) == {"64x64"} and m["frames"] > 0 and m["ticks"] >= m["frames"]
    assert m["cores"] > 0 and m["clicks"] == 3 and len(m["latency_ms"]) == 3
    assert bench.LIVE_RESOLUTIONS == (256, 512)


@pytest.mark.slow  # three real renders after a calibration (about 40 s on a loaded 2-core machine)
def test_the_estimate_is_within_30_percent_for_three_job_sizes(tmp_path):
    # in a process of its own with an empty cache, as a server starts (and as the bench runs): after other tests in
    # this process the calibration found its step and latents compiled (in memory or in the cache's compiled
    # programs) and fitted a preparation without compiling, which the first job (a new length) exceeded by 35-40%
    code = (
        "import json, sys; from lsd_jax import bench; "
        "print(json.dumps(bench.estimate_rows((10.0, 20.0, 40.0), workdir=__import__('pathlib').Path(sys.argv[1]))))"
    )
    env = {**os.environ, "LSD_JAX_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    assert [r["seconds"] for r in rows] == [10.0, 20.0, 40.0] and all(r["frames"] > 0 for r in rows)
    for r in rows:
        # The bound is on the estimate corrected for the load's drift: the machine is shared, and other work can
        # speed up or slow down the CPU between the estimate (the model's rate, measured by the jobs before) and
        # the job. Dividing by the ratio of the job's own frames/s to the model's removes that drift from the
        # frames and (the same CPU) the preparation, so what is left is the model's own error: its preparation
        # fitted to the jobs before, the compile part, the finishing after the last batch. Those are a few
        # seconds at most against 5-20 s jobs here, and the bench measured -10%..+11% under a load of 9-10 on 2
        # CPUs; 30% holds unless the load changes within one job by far more than between jobs.
        assert abs(r["corrected"] / r["actual"] - 1) <= 0.30, rows
        # the raw estimate, with the drift: of the right size (the 3 min 45 s for a 26 s job was 8.6x)
        assert 1 / 2.5 < r["estimate"] / r["actual"] < 2.5, rows
