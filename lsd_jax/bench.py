"""Benchmark: ``python -m lsd_jax.bench [--quick] [--skip SECTION ...]``.

Prints tables (medians of repeated, warmed-up runs; every ratio is measured within one run):

1. the machine's peak: a large float32 matmul, FLOP/s;
2. frame step throughput per style/config, resolution and batch: frames/s, FLOPs per frame from
   XLA's cost analysis, achieved FLOP/s and its fraction of the measured peak, compile time
   (the default style at 256² and 512², StyleGAN2 paper256 and config-f 1024² with random weights);
3. songs end to end: time in audio analysis, latents and the frame loop, the frame step and the
   encoding each alone, and end-to-end frames/s against generator-only frames/s;
4. bfloat16 against float32; 5. peak memory of a 1-minute and a 4-minute render;
6. BigGAN-deep 256² and 512² (full width, random weights): frames/s and fraction of peak (``--skip biggan``);
7. native frames (``frame_fit="native"``): StyleGAN2 paper256 at 455×256 and config-f at 1920×1080 next to their
   square sizes: frames/s, fraction of peak and time per generated megapixel (``--skip native``).

``--live`` runs only the live section: a click track played into a live session in real time (the default style
at 256² and 512² (``--resolution``), 30 fps, 60 s; 15 s with ``--quick``), with and without resolution drops:
sustained frames/s, dropped ticks, the sizes rendered, lag (frame done − its tick) and audio-to-frame latency
percentiles (a click's block entering the analysis → the first frame whose pulse reached 0.5 leaving the step), and
the process's CPU time per second of the session (cores busy: what the session costs, whatever the load).

``--estimate``: the web app's render-time estimate against the actual time, for three job sizes after a
calibration (the table in the README).

``--startup``: a cold ``lsd-jax render`` (empty cache dir), a second process, a warm process, and the real-time
factor at 256² and 512²; ``--encoder``: x264 settings, speed against PSNR. Both print the load average.

Runs unchanged on CPU, GPU or TPU.
"""

from __future__ import annotations

import argparse
import math
import os
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


def step_throughput(
    style: Any, size: tuple[int, int], batch: int, repeats: int = 3, frame_fit: str = "crop"
) -> dict[str, float]:
    """Frames/s, FLOPs/frame and compile time of the compiled frame step (no encoding), the style making frames
    of another aspect the ``frame_fit`` way."""
    from .engine.step import EffectPlan, make_frame_step

    style = style.with_frame_fit(frame_fit)
    rng = np.random.default_rng(0)
    inputs = {
        "z": jnp.asarray(np.clip(rng.normal(size=(batch, style.z_dim)), -2, 2), jnp.float32),
        "c": jnp.zeros((batch, style.c_dim), jnp.float32),
        "amps": jnp.zeros((batch, 0), jnp.float32),
    }
    if style.noise:  # what a render passes (the noise_react gain, 1 when off)
        inputs["noise_gain"] = jnp.ones((batch,), jnp.float32)
    step = make_frame_step(style, size, EffectPlan((), ()), batch)
    t = time.perf_counter()
    compiled = step.lower(inputs).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(step.variables, inputs))
    sec = _median_time(lambda: compiled(step.variables, inputs), repeats)
    flops = flops_of(compiled) / batch
    if batch > 1:  # a loop over the frames inside the step (the CPPN on CPU) is counted once: count one frame
        one = {k: jax.ShapeDtypeStruct((1, *v.shape[1:]), v.dtype) for k, v in inputs.items()}
        flops = max(flops, flops_of(make_frame_step(style, size, EffectPlan((), ()), 1).lower(one).compile()))
    return {"fps": batch / sec, "flops_per_frame": flops, "compile_s": compile_s}


def song_split(seconds: float, size: tuple[int, int], fps: float, style: Any = None) -> dict[str, float]:
    """Time per stage of a full render of a synthetic song (after a warm-up render).

    ``frames`` is the overlapped frame loop (step + encoding); ``step_only`` and ``encode_only``
    time the two halves of that loop alone on the same frames."""
    from .audio.demo_song import write_demo_song
    from .engine import pipeline as r
    from .media.video import VideoWriter
    from .styles.resolve import resolve_style

    style = resolve_style(style)  # one Style object: the measured render reuses the warm-up's compiled step

    with tempfile.TemporaryDirectory() as d:
        song = write_demo_song(Path(d) / "song.wav", seconds=seconds)
        kw = dict(resolution=size[0], fps=fps, progress=False)
        r.render(song, style, output=Path(d) / "warm.mp4", duration=min(seconds, 2.0), **kw)
        out = dict(r.render(song, style, output=Path(d) / "out.mp4", **kw).timings.__dict__)
        prep = r.prepare(song, style, progress=False, **{k: v for k, v in kw.items() if k != "progress"})
        n = prep.n_frames
        frames: list[np.ndarray] = []
        t = time.perf_counter()
        r.render_frames(prep.step, prep.inputs, prep.plan, frames.append)
        out["step_only"] = time.perf_counter() - t
        t = time.perf_counter()
        with VideoWriter(Path(d) / "enc.mp4", fps=fps, size=prep.size) as w:
            for f in frames:
                w.write(f)
        out["encode_only"] = time.perf_counter() - t
        out["batch"] = prep.step.batch
        out["n_frames"] = n
        return out


def peak_rss_mib(seconds: float) -> float:
    """Peak resident memory (MiB) of a fresh process rendering a `seconds`-long song (default style, 128x128, 24
    fps)."""
    import subprocess
    import sys

    code = (
        "import resource, tempfile, pathlib, lsd_jax; from lsd_jax.audio.demo_song import write_demo_song\n"
        f"d = pathlib.Path(tempfile.mkdtemp()); s = write_demo_song(d / 's.wav', seconds={seconds!r})\n"
        "lsd_jax.render(s, output=d / 'o.mp4', resolution=128, fps=24.0, progress=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(res.stdout.strip().splitlines()[-1]) / 1024.0


def live_session(
    seconds: float, resolution: int = 256, fps: float = 30.0, adapt: bool = True, every: float = 0.5, sr: int = 48000
) -> dict[str, Any]:
    """Play a click track (a click every ``every`` s over a quiet chord, ``sr`` Hz, 10 ms blocks) into a live
    session of the default style in real time and measure it (see the module docstring)."""
    import soundfile as sf

    from .live.session import FileFeeder, LiveRenderer

    t = np.arange(int(seconds * sr)) / sr
    y = 0.02 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277.2 * t) + np.sin(2 * np.pi * 329.6 * t))
    rng = np.random.default_rng(0)
    burst = rng.normal(size=int(0.01 * sr)) * np.exp(-np.arange(int(0.01 * sr)) / (0.002 * sr))
    clicks = np.arange(every / 2, seconds - every / 2, every)
    for c in clicks:
        i = int(round(c * sr))
        y[i : i + burst.size] += 0.5 * burst[: y.size - i]
    frames: list[tuple[int, float, float, float]] = []  # tick, due, done, pulse
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "clicks.wav"
        sf.write(path, (0.9 * y / np.abs(y).max()).astype(np.float32), sr)
        renderer = LiveRenderer(None, resolution=resolution, fps=fps, adapt=adapt)
        renderer.add_listener(lambda f: frames.append((f.tick, f.t_due, f.t_done, f.features["pulse"])))
        with renderer:
            cpu, wall = time.process_time(), time.perf_counter()
            feeder = FileFeeder(renderer, path).start()
            feeder.done.wait(seconds + 30)
            cores = (time.process_time() - cpu) / (time.perf_counter() - wall)  # this process's CPU, all threads
        stats = renderer.stats()
        if renderer.error is not None:
            raise renderer.error
    arr = np.array(frames)
    done, pulse = arr[:, 2], arr[:, 3]
    pushed = np.array(feeder.pushed)  # (first sample, time) per block
    latencies, missed = [], 0
    for c in clicks:
        block = np.searchsorted(pushed[:, 0], int(round(c * sr)), side="right") - 1
        t_in = pushed[block, 1]
        after = np.flatnonzero((done > t_in) & (done < t_in + every) & (pulse >= 0.5))
        if after.size:
            latencies.append(done[after[0]] - t_in)
        else:
            missed += 1
    lag = done - arr[:, 1]
    span = done[-1] - done[0]
    tenth = max(1, len(lag) // 6)
    return {
        "fps": (len(done) - 1) / span if span > 0 else 0.0,
        "frames": len(done),
        "ticks": stats.ticks,
        "dropped": stats.dropped,
        "sizes": stats.sizes,
        "resizes": stats.resizes,
        "lag_ms": np.percentile(lag, [50, 95, 100]) * 1000,
        "lag_growth_ms": (np.median(lag[-tenth:]) - np.median(lag[:tenth])) * 1000,
        "latency_ms": np.percentile(latencies, [50, 95, 100]) * 1000 if latencies else np.full(3, np.nan),
        "clicks": len(clicks),
        "missed": missed,
        "cores": cores,
    }


LIVE_RESOLUTIONS = (256, 512)  # the sizes --live measures (--resolution picks others)


def print_live(seconds: float, resolutions: tuple[int, ...] = LIVE_RESOLUTIONS) -> None:
    import os

    load = os.getloadavg()
    sides = ", ".join(f"{r}²" for r in resolutions)
    print(
        f"live: click track (every 0.5 s) played in real time, default style at {sides}, 30 fps, {seconds:g} s each;"
        f" load average before: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) on {os.cpu_count()} CPUs",
        flush=True,
    )
    from .styles.resolve import resolve_style

    sizes = sorted({s for r in resolutions for s in (r, r * 3 // 4, r // 2)}, reverse=True)
    bare = {r: step_throughput(resolve_style(None), (r, r), 1, 9)["fps"] for r in sizes}
    print(
        "the bare frame step (batch 1, same load): " + ", ".join(f"{r}²: {f:.1f} frames/s" for r, f in bare.items()),
        flush=True,
    )
    rows = []
    sessions = [(f"{r}², resolution drops on", r, True) for r in resolutions]
    sessions += [(f"fixed {r}²", r, False) for r in resolutions]
    for name, resolution, adapt in sorted(sessions, key=lambda s: (s[1], not s[2])):
        m = live_session(seconds, resolution=resolution, adapt=adapt)
        by_pixels = sorted(m["sizes"].items(), key=lambda kv: -np.prod([int(v) for v in kv[0].split("x")]))
        sizes = ", ".join(f"{k}: {v / m['frames']:.0%}" for k, v in by_pixels)
        dropped = f"{m['dropped']} / {m['ticks']} ({m['dropped'] / max(1, m['ticks']):.0%})"
        rows.append(
            [
                name,
                f"{m['fps']:.1f}",
                dropped,
                sizes,
                "/".join(f"{v:.0f}" for v in m["lag_ms"]),
                f"{m['lag_growth_ms']:+.1f}",
                "/".join(f"{v:.0f}" for v in m["latency_ms"]),
                f"{m['missed']} / {m['clicks']}",
                f"{m['cores']:.2f}",
            ]
        )
    print_table(
        [
            "session",
            "frames/s",
            "dropped ticks",
            "sizes rendered",
            "lag ms p50/p95/max",
            "lag growth ms (last − first sixth)",
            "latency ms p50/p95/max",
            "clicks missed",
            "CPU (cores)",
        ],
        rows,
    )
    load = os.getloadavg()
    print(f"load average after: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)\n", flush=True)


def native_section(peak: float, repeats: int, quick: bool) -> None:
    """Native widescreen frames against the square: the cost should follow the generated pixels (same % of
    peak)."""
    from .styles.style import frame_shape
    from .testing import config_f_config, paper256_config

    rows = []
    for name, config, sizes in (
        ("StyleGAN2 paper256", paper256_config(), ((256, 256), (256, 455))),
        ("StyleGAN2 config-f", config_f_config(), ((1024, 1024), (1080, 1920))),
    ):
        style = _sg2_style(config)
        res = style.native_size[0]
        for size in sizes:
            fit = "crop" if size[0] == size[1] else "native"
            m = step_throughput(style, size, 1, repeats, frame_fit=fit)
            gh, gw = frame_shape((res, res), size, fit) or (res, res)
            grid = ops_grid(res, (gh, gw))
            achieved = m["fps"] * m["flops_per_frame"]
            mpx = grid[0] * grid[1] / 1e6
            rows.append(
                [
                    name,
                    f"{size[1]}x{size[0]}",
                    f"{grid[1]}x{grid[0]}",
                    f"{m['fps']:.3f}",
                    f"{m['flops_per_frame'] / 1e9:.2f}",
                    f"{achieved / peak:.0%}",
                    f"{1.0 / (m['fps'] * mpx):.2f}",
                ]
            )
    print_table(
        ["style / config", "video", "generated", "frames/s", "GFLOP/frame", "of peak", "s per generated Mpx"], rows
    )
    print()


def ops_grid(res: int, shape: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) a StyleGAN2 of ``res`` generates before trimming to ``shape`` (its 4×4 const widened)."""
    from .models.ops import widened_grid

    gh, gw = widened_grid(4, res, shape)
    return gh * res // 4, gw * res // 4


def _sg2_style(config: dict) -> Any:
    from .styles.generator import Generator, stylegan_style
    from .testing import random_sg2_state

    return stylegan_style(Generator.from_state(config, random_sg2_state(config, 0)), name="sg2")


def biggan_style_for_bench(resolution: int) -> Any:
    """A full-width BigGAN-deep style with random weights (the package's biggan-deep-<resolution> shapes)."""
    from .styles.generator import BigGANGenerator, biggan_style
    from .testing import biggan_deep_config, random_biggan_state

    config = biggan_deep_config(resolution)
    return biggan_style(
        BigGANGenerator.from_state(config, random_biggan_state(config, 0)), name=f"biggan-deep-{resolution}"
    )


def biggan_section(peak: float, repeats: int, quick: bool) -> None:
    """BigGAN-deep 256² and 512² through the compiled frame step: frames/s, GFLOP/frame, fraction of peak."""
    rows = []
    for res, batches in ((256, [1] if quick else [1, 2]), (512, [1])):
        style = biggan_style_for_bench(res)
        for batch in batches:
            m = step_throughput(style, (res, res), batch, max(2, repeats // 2))
            achieved = m["fps"] * m["flops_per_frame"]
            rows.append(
                [
                    f"BigGAN-deep {res}",
                    f"{res}x{res}",
                    str(batch),
                    f"{m['fps']:.3f}",
                    f"{m['flops_per_frame'] / 1e9:.1f}",
                    f"{achieved / 1e9:.1f}",
                    f"{achieved / peak:.0%}",
                    f"{m['compile_s']:.1f}",
                ]
            )
        del style
    print_table(
        [
            "BigGAN-deep (random weights)",
            "resolution",
            "batch",
            "frames/s",
            "GFLOP/frame",
            "GFLOP/s",
            "of peak",
            "compile s",
        ],
        rows,
    )


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    if not rows:
        return
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    print(_row(headers, widths))
    print(_row(["-" * w for w in widths], widths))
    for r in rows:
        print(_row(r, widths))
    print(flush=True)


def _load_text() -> str:
    try:
        return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def _cli_render(song: Path, out: Path, cache: Path, resolution: int) -> dict[str, float]:
    """``lsd-jax render`` in a fresh process with ``LSD_JAX_CACHE=cache``: wall time, first frame (from the CLI's
    own line: seconds after the process started) and CPU time (user + system, the process and its ffmpeg)."""
    import re
    import resource
    import subprocess
    import sys

    env = dict(os.environ, LSD_JAX_CACHE=str(cache))
    cmd = [
        sys.executable,
        "-m",
        "lsd_jax.cli",
        "render",
        str(song),
        "-o",
        str(out),
        "--resolution",
        str(resolution),
        "--quiet",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    m = re.search(r"first frame ([0-9.]+) s after the command started \(([0-9.]+) s of CPU time\)", res.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    nan = float("nan")
    return {
        "total": wall,
        "first": float(m.group(1)) if m else nan,
        "first_cpu": float(m.group(2)) if m else nan,
        "cpu": cpu,
    }


_APP_SNIPPET = """
import json, sys, threading, time
from pathlib import Path
t0 = time.perf_counter()
from lsd_jax.web.form import params_from_ui
from lsd_jax.web.jobs import Jobs, render_job
ready = None
if sys.argv[2] == "warm":
    from lsd_jax.engine.pipeline import warm_up
    warm_up(**params_from_ui({}))  # what the app runs at launch: its page's defaults
    ready = time.perf_counter() - t0
with Jobs() as jobs:
    job = jobs.prepare(sys.argv[1])
    t = time.perf_counter()
    if sys.argv[2] != "render":
        jobs.preview(job)
        print(json.dumps({"ready": ready, "preview": time.perf_counter() - t}))
        sys.exit()
    live = Path(sys.argv[3]) / "live.mp4"
    first = []
    def watch():  # the page can play the live copy from its first fragment on
        while not first:
            if live.exists() and b"moof" in live.read_bytes():
                first.append(time.perf_counter() - t)
            time.sleep(0.02)
    threading.Thread(target=watch, daemon=True).start()
    render_job(job, Path(sys.argv[3]), live=live)
    total = time.perf_counter() - t
    while not first and time.perf_counter() - t < total + 5:
        time.sleep(0.02)
    print(json.dumps({"playable": first[0] if first else None, "total": total}))
"""


def _app_run(song: Path, cache: Path, mode: str, workdir: Path | None = None) -> dict[str, float | None]:
    """The web app's first Preview (``mode`` "cold" or "warm": without or with :func:`lsd_jax.engine.pipeline.warm_up`
    at launch) or first Render (``mode`` "render": when its live copy's first fragment is playable, and the whole
    render), each in a fresh process with the page's defaults and ``LSD_JAX_CACHE=cache``; gradio's page itself
    is not loaded."""
    import json
    import subprocess
    import sys

    env = dict(os.environ, LSD_JAX_CACHE=str(cache))
    args = [sys.executable, "-c", _APP_SNIPPET, str(song), mode] + ([str(workdir)] if workdir else [])
    res = subprocess.run(args, env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"app run failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def startup_section(peak: float, quick: bool = False) -> None:
    """Cold start, a second process, a warm process and the real-time factor (issue #14), with the CLI."""
    from .audio.demo_song import write_demo_song
    from .engine import pipeline

    clip = 10.0 if quick else 30.0
    song_s = 15.0 if quick else 60.0
    print(f"startup: {_load_text()}; matmul peak {peak / 1e9:.1f} GFLOP/s (this run)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        song = write_demo_song(d / "clip.wav", seconds=clip)
        cache = d / "cache"  # empty: nothing compiled yet (the OS page cache holds the installed files)
        cold = _cli_render(song, d / "cold.mp4", cache, 256)
        second = _cli_render(song, d / "second.mp4", cache, 256)
        for name, r in (("cold process (empty cache dir)", cold), ("second process (same cache dir)", second)):
            rows.append(
                [
                    f"lsd-jax render, {clip:g} s clip, 256², 43 fps: {name}",
                    f"{r['first']:.2f}",
                    f"{r['first_cpu']:.2f}",
                    f"{r['total']:.2f}",
                    f"{r['cpu']:.1f}",
                ]
            )
        kw = dict(resolution=256, progress=False)
        pipeline.render(song, output=d / "warm1.mp4", **kw)
        warm = pipeline.render(song, output=d / "warm2.mp4", **kw).timings
        rows.append(["render(), same clip, warm process", f"{warm.first_frame:.2f}", "", f"{warm.total:.2f}", ""])
        print(
            "CPU s: user + system time of the process (all threads) and, for the total, its ffmpeg; with other "
            "work on the machine, CPU time is what an idle machine's wall time would be (at most)"
        )
        print_table(["run", "first frame s", "(CPU s)", "total s", "CPU s"], rows)

        prev_rows = []
        for label, mode in (("no warm-up", "cold"), ("warm_up() at launch", "warm")):
            r = _app_run(song, d / f"cache-{mode}", mode)
            prev_rows.append(
                [
                    f"web app's first Preview ({clip:g} s song, page defaults), fresh process, {label}",
                    "" if r["ready"] is None else f"{r['ready']:.2f}",
                    f"{r['preview']:.2f}",
                ]
            )
        print_table(["run", "launch to warm s", "Preview s"], prev_rows)
        (d / "app-render").mkdir()
        r = _app_run(song, d / "cache-render", "render", d / "app-render")
        playable = "never" if r["playable"] is None else f"{r['playable']:.2f}"
        print_table(
            ["run", "first fragment playable s", "render done s"],
            [
                [
                    f"web app's first Render ({clip:g} s song, page defaults), fresh process, empty cache",
                    playable,
                    f"{r['total']:.2f}",
                ]
            ],
        )

        long_song = write_demo_song(d / "song.wav", seconds=song_s)
        rtf_rows = []
        for res in (256, 512):
            kw = dict(resolution=res, fps=30.0, progress=False)
            pipeline.render(long_song, output=d / "w.mp4", duration=2.0, **kw)  # warm: compiled at this size
            t = pipeline.render(long_song, output=d / f"rt{res}.mp4", **kw).timings
            rtf_rows.append(
                [
                    f"{song_s:g} s song, {res}², 30 fps, warm process",
                    f"{t.total:.2f}",
                    f"{t.total / song_s:.3f}",
                    f"{t.n_frames / t.frames:.1f}",
                    f"audio {t.audio:.2f} / latents {t.latents:.2f} / frames+encoding {t.frames:.2f}",
                ]
            )
        print_table(["render (default style)", "seconds", "real-time factor", "frames/s", "split s"], rtf_rows)


def encoder_section(quick: bool = False) -> None:
    """x264 settings: speed (wall and CPU per frame) and quality (PSNR of the decoded frames against the rendered
    ones) on the default style's frames."""
    import resource

    from .audio.demo_song import write_demo_song
    from .engine.pipeline import prepare
    from .media.video import CRF, PRESET, VideoWriter, read_frames

    res, n = 512, (90 if quick else 240)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        song = write_demo_song(d / "s.wav", seconds=n / 30.0 + 1)
        prep = prepare(song, None, progress=False, resolution=res, fps=30.0, contrast_strength=0.3, flash_strength=0.2)
        frames = prep.frames(np.arange(n))

        def cpu() -> float:
            r = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r.ru_utime + r.ru_stime

        rows = []
        settings = [
            ("medium", 18),
            ("veryfast", 18),
            ("superfast", 18),
            (PRESET, CRF),
            ("ultrafast", 18),
            ("ultrafast", 0),
        ]
        for preset, crf in dict.fromkeys(settings):
            out = d / f"{preset}{crf}.mp4"
            c, t = cpu(), time.perf_counter()
            with VideoWriter(out, fps=30.0, size=(res, res), quality=crf, preset=preset) as w:
                for i in range(0, n, 16):
                    w.write(frames[i : i + 16])
            wall, c = time.perf_counter() - t, cpu() - c
            dec = np.stack(list(read_frames(out))).astype(np.float64)
            psnr = 10 * np.log10(255.0**2 / np.mean((dec - frames) ** 2))
            label = (
                f"{preset}, crf {crf}"
                + (" (default)" if (preset, crf) == (PRESET, CRF) else "")
                + (" (lossless: yuv420p's own loss)" if crf == 0 else "")
            )
            rows.append(
                [label, f"{n / wall:.0f}", f"{c / n * 1e3:.2f}", f"{psnr:.2f}", f"{out.stat().st_size / n / 1e3:.1f}"]
            )
        print_table([f"H.264 (libx264), {res}², {n} frames", "frames/s", "CPU ms/frame", "PSNR dB", "kB/frame"], rows)


def estimate_rows(
    lengths: tuple[float, ...] = (10.0, 30.0, 60.0), values: dict[str, Any] | None = None, workdir: Path | None = None
) -> list[dict[str, float]]:
    """The app's estimate against the actual time: one app model (:class:`lsd_jax.web.jobs.Jobs`) calibrates
    as at start-up, then renders the demo song's first ``lengths`` seconds back to back (the page's defaults,
    with ``values`` over them), each estimated just before it runs with what the jobs before it measured. Per
    job: ``seconds`` of music, ``frames``, ``estimate`` (s), ``actual`` (s, wall time of the render),
    ``rate_ratio`` (the job's own frames/s over the model's: the load's drift between the estimate and the
    job), ``corrected`` (the estimate over that ratio: what it would have said under the job's own load),
    ``load`` (the 1-minute load average at its end), ``model_fps``, ``job_fps``, ``prep_estimate`` (s before
    the frames: preparing, compiling) and ``head`` (the job's own)."""
    from .store.speeds import measured_speed
    from .web.config import AppConfig
    from .web.form import page_fields
    from .web.jobs import Jobs

    cfg = AppConfig(warm_up=False, max_seconds=max(600.0, *lengths))
    page = {f.name: f.value for f in page_fields(cfg) if f.name not in ("song", "style", "style_file")}
    page.update(values or {})
    rows = []
    with Jobs(cfg, parent=workdir) as jobs:
        song = str(jobs.example_song(max(lengths) + 1.0))
        jobs.estimate(jobs.prepare(song, "default", None, **{**page, "start": 0, "duration": 4.0}))  # calibration
        for seconds in lengths:
            job = jobs.prepare(song, "default", None, **{**page, "start": 0, "duration": seconds})
            est = jobs.estimate(job)
            marks: list[tuple[float, int]] = []
            t0 = time.perf_counter()
            jobs.render_files(job, lambda done, total, marks=marks: marks.append((time.perf_counter(), done)))
            actual = time.perf_counter() - t0
            own = measured_speed(marks, t0)
            ratio = own[0] / est.frames_per_s if own and est.frames_per_s else 1.0
            rows.append(
                {
                    "seconds": seconds,
                    "frames": float(est.n_frames),
                    "estimate": float(est.seconds or math.nan),
                    "actual": actual,
                    "rate_ratio": ratio,
                    "corrected": float(est.seconds or math.nan) / ratio,
                    "load": os.getloadavg()[0],
                    "model_fps": float(est.frames_per_s or math.nan),
                    "job_fps": own[0] if own else math.nan,
                    "prep_estimate": est.prep_s + est.compile_s,
                    "head": own[1] if own else math.nan,
                }
            )
    return rows


def estimate_section(quick: bool = False) -> None:
    """Print :func:`estimate_rows` as a table (three job sizes after a calibration)."""
    lengths = (5.0, 15.0, 30.0) if quick else (10.0, 30.0, 60.0)
    rows = estimate_rows(lengths)
    print(f"estimate against actual: the app's model, the page's defaults, the demo song ({_load_text()})")
    print_table(
        ["job", "frames", "estimate", "actual", "error", "job rate / model's", "corrected error", "load"],
        [
            [
                f"{r['seconds']:g} s of music",
                f"{r['frames']:.0f}",
                f"{r['estimate']:.1f} s",
                f"{r['actual']:.1f} s",
                f"{100 * (r['estimate'] / r['actual'] - 1):+.0f}%",
                f"{r['rate_ratio']:.2f}",
                f"{100 * (r['corrected'] / r['actual'] - 1):+.0f}%",
                f"{r['load']:.1f}",
            ]
            for r in rows
        ],
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller sweeps, shorter songs")
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["default", "paper256", "config-f", "song", "memory", "bf16", "biggan", "native"],
        help="sections to skip",
    )
    ap.add_argument(
        "--startup",
        action="store_true",
        help="only the start-up and real-time section (cold process, "
        "second process, warm process, real-time factor at 256² and 512²)",
    )
    ap.add_argument("--encoder", action="store_true", help="only the H.264 settings section (speed, PSNR)")
    ap.add_argument("--live", action="store_true", help="only the live section (real time: 4 x 60 s, 4 x 15 s quick)")
    ap.add_argument(
        "--resolution",
        type=int,
        nargs="+",
        default=list(LIVE_RESOLUTIONS),
        help="with --live: the square sizes measured (default: 256 512)",
    )
    ap.add_argument(
        "--estimate",
        action="store_true",
        help="only the estimate section: the app's estimate against the actual time of 10, 30 and 60 s jobs "
        "(5, 15, 30 s quick) after a calibration",
    )
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else 5
    dev = jax.devices()[0]
    print(
        f"backend: {jax.default_backend()}  devices: {jax.device_count()} x {dev.device_kind}  ({_load_text()})\n",
        flush=True,
    )
    if args.live:
        print_live(15.0 if args.quick else 60.0, tuple(args.resolution))
        return
    if args.estimate:
        estimate_section(args.quick)
        return

    peak = peak_flops(2048 if args.quick else 4096, repeats)
    print_table(["measure", "value"], [["matmul peak (float32)", f"{peak / 1e9:.1f} GFLOP/s"]])
    if args.startup or args.encoder:
        if args.encoder:
            encoder_section(args.quick)
        if args.startup:
            startup_section(peak, args.quick)
        return

    from .engine.step import EffectPlan, fit_batch
    from .styles.resolve import cppn_style
    from .testing import config_f_config, paper256_config

    rows = []
    best: dict[str, tuple[int, float]] = {}

    def measure(name: str, style: Any, res: int, batches: list[int]) -> None:
        for batch in batches:
            m = step_throughput(style, (res, res), batch, repeats)
            achieved = m["fps"] * m["flops_per_frame"]
            rows.append(
                [
                    name,
                    f"{res}x{res}",
                    str(batch),
                    f"{m['fps']:.2f}",
                    f"{m['flops_per_frame'] / 1e9:.2f}",
                    f"{achieved / 1e9:.1f}",
                    f"{achieved / peak:.0%}",
                    f"{m['compile_s']:.1f}",
                ]
            )
            if m["fps"] > best.get(name, (0, 0.0))[1]:
                best[name] = (batch, m["fps"])

    if "default" not in args.skip:
        style = cppn_style()
        for res in (256, 512):
            measure("default (CPPN)", style, res, [fit_batch(style, (res, res), EffectPlan((), ()))])
    sg256 = None
    if "paper256" not in args.skip:
        sg256 = _sg2_style(paper256_config())
        measure("StyleGAN2 paper256", sg256, 256, [1, 2, 4] if args.quick else [1, 2, 4, 8])
    if "config-f" not in args.skip:
        measure("StyleGAN2 config-f", _sg2_style(config_f_config()), 1024, [1] if args.quick else [1, 2])
    print_table(
        ["style / config", "resolution", "batch", "frames/s", "GFLOP/frame", "GFLOP/s", "of peak", "compile s"], rows
    )
    if best:
        print(
            "best batch per config: " + ", ".join(f"{k}: batch {b} at {f:.2f} frames/s" for k, (b, f) in best.items())
        )
        print(
            "NVIDIA StyleGAN2-ADA PyTorch on this 2-core CPU (quoted by the issue, not measured here):"
            " paper256 2.94 images/s (batch 1), config-f 0.23 images/s\n",
            flush=True,
        )

    if "song" not in args.skip:
        seconds = 15.0 if args.quick else 60.0
        configs = [("default (CPPN)", None, 30.0)]
        if sg256 is not None:
            configs.append(("StyleGAN2 paper256", sg256, 4.0))
        for name, style, fps in configs:
            secs = seconds if style is None else (10.0 if args.quick else 20.0)
            split = song_split(secs, (256, 256), fps, style)
            n, total = split["n_frames"], split["total"]
            print(f"{secs:g} s song, {name}, 256x256 @ {fps:g} fps, batch {split['batch']} ({n} frames):")
            print_table(
                ["stage", "seconds", "share of total"],
                [[k, f"{split[k]:.2f}", f"{split[k] / total:.0%}"] for k in ("style", "audio", "latents", "frames")]
                + [
                    ["total", f"{total:.2f}", "100%"],
                    ["frame step alone (generator + effects)", f"{split['step_only']:.2f}", ""],
                    ["encoding alone", f"{split['encode_only']:.2f}", ""],
                    ["end-to-end frame loop frames/s", f"{n / split['frames']:.2f}", ""],
                    ["generator-only frames/s", f"{n / split['step_only']:.2f}", ""],
                    ["end-to-end / generator-only", f"{split['step_only'] / split['frames']:.0%}", ""],
                ],
            )

    if "bf16" not in args.skip and sg256 is not None:
        from .engine.step import EffectPlan, make_frame_step

        rng = np.random.default_rng(1)
        z = np.clip(rng.normal(size=(2, 512)), -2, 2).astype(np.float32)
        c = np.zeros((2, 0), np.float32)
        a = np.zeros((2, 0), np.float32)
        inputs = {"z": z, "c": c, "amps": a}
        f32 = np.asarray(make_frame_step(sg256, (256, 256), EffectPlan((), ()), 2)(inputs)).astype(np.float32)
        bf = make_frame_step(sg256, (256, 256), EffectPlan((), ()), 2, compute_dtype="bfloat16")
        b16 = np.asarray(bf(inputs)).astype(np.float32)
        print_table(
            ["bfloat16 vs float32 (paper256, uint8 frames)", "value"],
            [
                ["mean |difference|", f"{np.abs(f32 - b16).mean():.2f} / 255"],
                ["max |difference|", f"{np.abs(f32 - b16).max():.0f} / 255"],
            ],
        )

    if "biggan" not in args.skip:
        biggan_section(peak, repeats, args.quick)
    if "native" not in args.skip:
        native_section(peak, repeats, args.quick)

    if "memory" not in args.skip:
        lengths = (15.0, 60.0) if args.quick else (60.0, 240.0)
        mem = [peak_rss_mib(s) for s in lengths]
        print_table(
            ["song length (default style, 128x128 @ 24 fps)", "peak RSS"],
            [[f"{s / 60:g} min", f"{m:.0f} MiB"] for s, m in zip(lengths, mem)] + [["ratio", f"{mem[1] / mem[0]:.3f}"]],
        )


if __name__ == "__main__":
    main()
