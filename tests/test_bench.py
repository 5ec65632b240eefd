"""The benchmark's pieces that run the product in another process keep working as the product changes
(the bench itself is run by hand: ``python -m lsd_jax.bench``)."""

from __future__ import annotations

import math

from lsd_jax import bench
from lsd_jax.demo import write_demo_song


def test_first_preview_runs_the_apps_preview_in_a_fresh_process(tmp_path):
    song = write_demo_song(tmp_path / "song.wav", seconds=2.0)
    r = bench._first_preview(song, tmp_path / "cache", warm=False)
    assert r["ready"] is None
    assert math.isfinite(r["preview"]) and r["preview"] > 0
    assert (tmp_path / "cache").is_dir()  # the process used the cache folder it was given
