"""Benchmark: ``python -m lsd_jax.bench [--quick] [--only NAME ...]``.

Prints tables (medians of repeated, warmed-up runs; the same run measures everything that a ratio
compares):

1. the machine's peak: a large float32 matmul, FLOP/s;
2. frame step throughput per style/config and resolution: frames/s, FLOPs per frame from XLA's
   cost analysis, achieved FLOP/s as a fraction of the measured peak, compile time;
3. a 60 s song end to end on the default style: time in audio analysis, latents, frame step and
   encoding, and end-to-end frames/s against frame-step-only frames/s.

Runs unchanged on CPU, GPU or TPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def flops_of(compiled: Any) -> float:
    """FLOPs of one call of a compiled function, from XLA's cost analysis (0 if unavailable)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:
        return 0.0
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", 0.0))


def peak_flops(n: int = 4096, repeats: int = 5) -> float:
    """Measured FLOP/s of an n x n float32 matmul."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(jnp.matmul)
    jax.block_until_ready(f(a, b))
    return 2.0 * n**3 / _median_time(lambda: f(a, b), repeats)


def step_throughput(style: Any, size: tuple[int, int], batch: int, repeats: int = 3) -> dict[str, float]:
    """Frames/s, FLOPs/frame and compile time of the compiled frame step (no encoding)."""
    from .render import EffectPlan, make_frame_step

    rng = np.random.default_rng(0)
    z = jnp.asarray(np.clip(rng.normal(size=(batch, style.z_dim)), -2, 2), jnp.float32)
    c = jnp.zeros((batch, style.c_dim), jnp.float32)
    amps = jnp.zeros((batch, 0), jnp.float32)
    step = make_frame_step(style, size, EffectPlan((), ()), batch)
    t = time.perf_counter()
    compiled = step.fn.lower(step.variables, z, c, amps).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(step.variables, z, c, amps))
    sec = _median_time(lambda: compiled(step.variables, z, c, amps), repeats)
    flops = flops_of(compiled) / batch
    return {"fps": batch / sec, "flops_per_frame": flops, "compile_s": compile_s}


def song_split(seconds: float, size: tuple[int, int], fps: float) -> dict[str, float]:
    """Time per stage for a synthetic song of `seconds` on the default style."""
    from . import render as r
    from .demo import write_demo_song

    with tempfile.TemporaryDirectory() as d:
        song = write_demo_song(Path(d) / "song.wav", seconds=seconds)
        r.render(song, output=Path(d) / "out.mp4", resolution=size[0], fps=fps, progress=False)  # warm-up
        r.render(song, output=Path(d) / "out.mp4", resolution=size[0], fps=fps, progress=False)
        t = r.LAST_TIMINGS
        return dict(t.__dict__)


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(_row(headers, widths))
    print(_row(["-" * w for w in widths], widths))
    for r in rows:
        print(_row(r, widths))
    print()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, shorter song")
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else 5
    dev = jax.devices()[0]
    print(f"backend: {jax.default_backend()}  devices: {jax.device_count()} x {dev.device_kind}\n")

    peak = peak_flops(2048 if args.quick else 4096, repeats)
    print_table(["measure", "value"], [["matmul peak", f"{peak / 1e9:.1f} GFLOP/s"]])

    from .cppn import cppn_style

    rows = []
    for res in (256, 512):
        style = cppn_style()
        from .render import auto_batch_size

        batch = auto_batch_size(style, (res, res))
        m = step_throughput(style, (res, res), batch, repeats)
        rows.append(["default (CPPN)", f"{res}x{res}", str(batch), f"{m['fps']:.1f}",
                     f"{m['flops_per_frame'] / 1e9:.2f}", f"{m['fps'] * m['flops_per_frame'] / peak:.0%}",
                     f"{m['compile_s']:.1f}"])
    print_table(["style", "resolution", "batch", "frames/s", "GFLOP/frame", "of peak", "compile s"], rows)

    seconds = 15.0 if args.quick else 60.0
    split = song_split(seconds, (256, 256), 30.0)
    n = split["n_frames"]
    total = split["total"]
    print(f"{seconds:g} s song, default style, 256x256 @ 30 fps ({n} frames):")
    print_table(["stage", "seconds", "share"], [
        [k, f"{split[k]:.2f}", f"{split[k] / total:.0%}"] for k in ("style", "audio", "latents", "frames")
    ] + [["total", f"{total:.2f}", "100%"], ["end-to-end frames/s", f"{n / total:.1f}", ""],
         ["render loop frames/s (step + encoding)", f"{n / split['frames']:.1f}", ""]])


if __name__ == "__main__":
    main()
