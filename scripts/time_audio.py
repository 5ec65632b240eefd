"""Cold-process and warm audio analysis time, two code trees side by side (alternating runs, one machine).

    .venv/bin/python scripts/time_audio.py OLD_TREE NEW_TREE [--runs 5] [--seconds 30] [--fps 30]

Each run starts a fresh Python process per tree that imports ``lsd_jax`` from that tree and analyses the same
clip (the synthesised demo song, ``--seconds`` long with a second of context on each side): it reports the time
from the process' start to its Features (interpreter start-up, imports and the first analysis), the import alone,
and a second, warm analysis of the same clip in that process. ``--params`` adds render parameters as JSON (e.g.
'{"speed_fpm": "beat"}'). Medians over the runs; the machine may be shared, so compare the two columns of one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from lsd_jax.audio import analysis as audio
from lsd_jax.params import make_params
t1 = time.perf_counter()
p = make_params(**json.loads(sys.argv[3]))
audio.analyze(sys.argv[2], p)
t2 = time.perf_counter()
audio.analyze(sys.argv[2], p)
t3 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, first=t2 - t1, warm=t3 - t2, module=audio.__file__,
                      librosa="librosa" in sys.modules, numba="numba" in sys.modules)))
"""


def run(tree: str, song: Path, params: dict) -> dict:
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", CHILD, tree, str(song), json.dumps(params)], capture_output=True, text=True, check=True
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["to_features"] = time.perf_counter() - t - out["warm"]  # process start -> first Features
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--params", default="{}")
    args = ap.parse_args()
    sys.path.insert(0, args.new)
    from lsd_jax.audio.demo_song import write_demo_song

    with tempfile.TemporaryDirectory() as d:
        song = write_demo_song(Path(d) / "clip.wav", args.seconds + 2.0)
        params = dict(fps=args.fps, start=1.0, duration=args.seconds, **json.loads(args.params))
        results: dict[str, list[dict]] = {"old": [], "new": []}
        for i in range(args.runs):
            for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
                results[name].append(run(getattr(args, name), song, params))
    print(f"{args.seconds:g} s clip at {args.fps:g} fps, params {params}, {args.runs} runs each (medians, s):")
    print(f"{'':>6} {'start->Features':>16} {'imports':>8} {'1st analysis':>13} {'warm 2nd':>9}  librosa/numba loaded")
    for name, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("to_features", "imports", "first", "warm")}
        print(
            f"{name:>6} {med['to_features']:16.2f} {med['imports']:8.2f} {med['first']:13.2f} {med['warm']:9.2f}  "
            f"{rs[0]['librosa']}/{rs[0]['numba']}   all start->Features: "
            + " ".join(f"{r['to_features']:.2f}" for r in rs)
        )


if __name__ == "__main__":
    main()
