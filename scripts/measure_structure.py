"""Measure lsd_jax.analyze (the song's form) on songs of known form: the README's "The song's form" numbers.

    .venv/bin/python scripts/measure_structure.py [--songs 20] [--seed 0] [--loops DIR]

Three sets of songs, each made so that its boundaries are known:

1. **Spliced recordings**: 3–8 s excerpts of the real recordings that an installed package ships (gradio's
   media_assets: ``sax.wav``, ``cantina.wav`` (music), ``recording1.wav`` (not checked by ear; counted as
   music), ``cate_blanch*.mp3``, ``heath_ledger.mp3`` (speech)) joined end to end, neighbours always from
   different recordings. No other real recordings exist on this (offline) machine: the set is small and the
   parts are short.
2. **Synthetic songs** (clearly not real music): 8–16 bar parts at 80–150 BPM, each part its own chords, timbre
   and drum pattern, in forms such as A B A C B; some with a riser and a drop. The beat times are known exactly.
3. **Looped recordings** (with ``--loops DIR``): Sonic Pi's loops, real recordings of music (drum breaks, tabla,
   guitar, electronic; CC0, from freesound.org), which the npm package ``supersonic-scsynth-samples`` ships:
   ``npm pack supersonic-scsynth-samples@0.84.2 && tar xzf supersonic-scsynth-samples-0.84.2.tgz`` and give
   ``--loops package/samples``. Each part repeats one loop (whole repeats, as loops are made to) for 8–16 s, in
   forms such as A B A C B, so a repeated part is the same recording: sections of a song's length, not 3–8 s.

Measures (as mir_eval defines them, written out here because mir_eval is not a dependency): boundary hit rate
(precision, recall, F) at ±0.5 s and ±3 s over interior boundaries (the song's start and end left out), matched
one to one; beat F-measure at ±70 ms (no beats trimmed); the pairwise label F (frame pairs labelled alike); drops
found within one beat. With mir_eval installed (``uv pip install mir_eval``), every song's boundary hits and beat
hits are checked against ``mir_eval.segment.detection`` and ``mir_eval.beat.f_measure`` too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsd_jax.audio import spectral  # noqa: E402
from lsd_jax.audio.envelopes import onset_envelope  # noqa: E402
from lsd_jax.audio.structure import SR, _track, analyze_signal  # noqa: E402
from lsd_jax.media.decode import load_audio  # noqa: E402

MUSIC = ("sax.wav", "cantina.wav", "recording1.wav")
SPEECH = ("cate_blanch.mp3", "cate_blanch_2.mp3", "heath_ledger.mp3")
#: Sonic Pi's loops of recorded music (loop_3d_printer, a printer, left out)
LOOPS = (
    "loop_amen_full",
    "loop_breakbeat",
    "loop_compus",
    "loop_drone_g_97",
    "loop_electric",
    "loop_garzul",
    "loop_mehackit1",
    "loop_mehackit2",
    "loop_mika",
    "loop_perc1",
    "loop_perc2",
    "loop_safari",
    "loop_tabla",
    "loop_weirdo",
    "tbd_fxbed_loop",
)
MISMATCHES = [0]  # songs where mir_eval counts other hits than matches() (with mir_eval installed)


# --- measures -----------------------------------------------------------------------------------


def matches(ref: np.ndarray, est: np.ndarray, window: float) -> int:
    """Most one-to-one pairs |ref - est| <= window (greedy over sorted times is optimal in one dimension)."""
    ref, est = np.sort(ref), np.sort(est)
    i = j = n = 0
    while i < ref.size and j < est.size:
        if abs(ref[i] - est[j]) <= window:
            n, i, j = n + 1, i + 1, j + 1
        elif est[j] < ref[i]:
            j += 1
        else:
            i += 1
    return n


def prf(ref: np.ndarray, est: np.ndarray, window: float) -> tuple[int, int, int]:
    """(hits, len(ref), len(est)): sums over songs give micro-averaged precision and recall. With mir_eval
    installed, its one-to-one matching (``mir_eval.util.match_events``, which segment.detection and
    beat.f_measure use) must count the same hits (else :data:`MISMATCHES` counts it)."""
    hits = matches(ref, est, window)
    try:
        import mir_eval
    except ImportError:
        return hits, ref.size, est.size
    if ref.size and est.size and len(mir_eval.util.match_events(np.sort(ref), np.sort(est), window)) != hits:
        MISMATCHES[0] += 1
    return hits, ref.size, est.size


def f_of(hits: int, n_ref: int, n_est: int) -> tuple[float, float, float]:
    p = hits / n_est if n_est else 0.0
    r = hits / n_ref if n_ref else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def pairwise_f(ref_bounds: np.ndarray, ref_labels: list[str], form, dur: float, step: float = 0.25) -> float:
    """Pairwise label F over frames every ``step`` s: pairs of frames labelled alike in both."""
    t = np.arange(0, dur, step)
    ref = np.array(ref_labels)[np.searchsorted(ref_bounds, t, side="right") - 1]
    est_starts = np.array([s.start for s in form.sections])
    est = np.array([s.label for s in form.sections])[np.clip(np.searchsorted(est_starts, t, side="right") - 1, 0, None)]
    same_ref, same_est = ref[:, None] == ref[None, :], est[:, None] == est[None, :]
    iu = np.triu_indices(t.size, 1)
    both = np.sum(same_ref[iu] & same_est[iu])
    p, r = both / max(1, same_est[iu].sum()), both / max(1, same_ref[iu].sum())
    return 2 * p * r / (p + r) if p + r else 0.0


def beats_alone(y: np.ndarray) -> np.ndarray:
    """The tracker on one excerpt by itself (seconds from its start)."""
    return _track(onset_envelope(spectral.mel_spectrogram(y, SR, 512), 512), SR, 512)


# --- spliced recordings ---------------------------------------------------------------------------


def recordings() -> dict[str, np.ndarray]:
    import gradio

    folder = Path(os.path.dirname(gradio.__file__)) / "media_assets" / "audio"
    out = {}
    for name in MUSIC + SPEECH:
        if (folder / name).is_file():
            y = load_audio(folder / name, sr=SR)
            out[name] = (0.3 * y / (np.abs(y).max() + 1e-9)).astype(np.float32)  # equal peaks: no level cue
    return out


def spliced(rng: np.random.Generator, recs: dict[str, np.ndarray], parts: int):
    names = list(recs)
    pieces, bounds, labels, srcs, prev = [], [0.0], [], [], None
    for _ in range(parts):
        name = rng.choice([n for n in names if n != prev])
        y = recs[name]
        length = min(y.size / SR, rng.uniform(3.0, 8.0))
        a = int(rng.uniform(0, y.size / SR - length) * SR)
        pieces.append(y[a : a + int(length * SR)])
        bounds.append(bounds[-1] + pieces[-1].size / SR)
        labels.append(name)
        srcs.append((name, pieces[-1]))
        prev = name
    return np.concatenate(pieces), np.array(bounds), labels, srcs


# --- looped recordings ---------------------------------------------------------------------------


def loop_recordings(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for name in LOOPS:
        if (folder / f"{name}.flac").is_file():
            y = load_audio(folder / f"{name}.flac", sr=SR)
            out[name] = (0.3 * y / (np.abs(y).max() + 1e-9)).astype(np.float32)  # equal peaks: no level cue
    if len(out) < 5:
        raise SystemExit(f"--loops {folder}: found {len(out)} of Sonic Pi's loops ({', '.join(LOOPS)}.flac)")
    return out


def looped(rng: np.random.Generator, loops: dict[str, np.ndarray]):
    """A song in a form from FORMS, each letter its own loop (a repeated letter: the same loop), each part the
    loop repeated whole for 8–16 s. → (samples, bounds, labels, [(loop name, part samples)])."""
    form = FORMS[rng.integers(len(FORMS))]
    names = rng.choice(sorted(loops), size=len(set(form)), replace=False)
    pick = dict(zip(sorted(set(form)), names, strict=True))
    pieces, bounds, labels, srcs = [], [0.0], [], []
    for c in form:
        y = loops[pick[c]]
        target = rng.uniform(8.0, 16.0)
        piece = np.tile(y, max(1, int(round(target / (y.size / SR)))))
        pieces.append(piece)
        bounds.append(bounds[-1] + piece.size / SR)
        labels.append(c)
        srcs.append((pick[c], piece))
    return np.concatenate(pieces), np.array(bounds), labels, srcs


# --- synthetic songs ------------------------------------------------------------------------------


def _env(n: int, decay: float) -> np.ndarray:
    return np.exp(-np.arange(n) / SR * decay)


def synth_part(rng: np.random.Generator, style: dict, bars: int) -> tuple[np.ndarray, np.ndarray]:
    """One part: ``bars`` bars of 4 beats in ``style`` (tempo, chords, timbre, drums). → (samples, beat times)."""
    period = 60.0 / style["bpm"]
    n = int(bars * 4 * period * SR)
    y = np.zeros(n + SR)
    t = np.arange(int(period * 4 * SR)) / SR
    for b in range(bars):
        root = style["chords"][b % len(style["chords"])]
        freqs = [root * 2 ** (k / 12) for k in (0, style["third"], 7)]
        a = int(b * 4 * period * SR)
        tone = sum(np.sin(2 * np.pi * f * h * t) * style["bright"] ** (h - 1) for f in freqs for h in range(1, 6))
        y[a : a + t.size] += style["pad"] * tone / 6 * (1 - np.exp(-t * 20))
        if style["bass"]:
            y[a : a + t.size] += 0.25 * np.sin(2 * np.pi * root / 4 * t) * (0.5 + 0.5 * (t % period < period * 0.6))
    beats = np.arange(bars * 4) * period
    kick_t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * (45 + 90 * np.exp(-kick_t * 30)) * kick_t) * _env(kick_t.size, 12)
    for k, bt in enumerate(beats):
        i = int(bt * SR)
        if style["kick"][k % 4]:
            y[i : i + kick.size] += style["kick_gain"] * kick
        if k % 2 == 1 and style["snare"]:
            y[i : i + 3000] += 0.2 * rng.standard_normal(3000) * _env(3000, 30)
        for off in (0.0, 0.5) if style["hats"] else ():
            j = int((bt + off * period) * SR)
            y[j : j + 800] += 0.05 * np.diff(rng.standard_normal(801)) * _env(800, 80)
    return y[:n], beats


def random_style(rng: np.random.Generator) -> dict:
    return {
        "bpm": float(rng.uniform(80, 150)),
        "chords": list(110 * 2 ** (rng.integers(0, 12, 4) / 12)),
        "third": int(rng.choice([3, 4])),
        "bright": float(rng.uniform(0.2, 0.8)),
        "pad": float(rng.uniform(0.15, 0.35)),
        "bass": bool(rng.random() < 0.6),
        "kick": [1, int(rng.random() < 0.5), 1, int(rng.random() < 0.5)],
        "kick_gain": float(rng.uniform(0.2, 0.6)),
        "snare": bool(rng.random() < 0.7),
        "hats": bool(rng.random() < 0.7),
    }


FORMS = ["ABAB", "ABACB", "AABA", "ABCAB", "ABCBD"]


def synthetic(rng: np.random.Generator):
    """A song: a form from FORMS (each letter its own style), 8–16 bars per part; half the songs end with a
    riser (4 bars without drums or bass, noise rising) and a drop (a loud part with kick and sub bass)."""
    form = FORMS[rng.integers(len(FORMS))]
    styles = {c: random_style(rng) for c in sorted(set(form))}  # sorted: the same songs in every run
    pieces, bounds, labels, beats, drops = [], [0.0], [], [], []
    for c in form:
        y, b = synth_part(rng, styles[c], int(rng.choice([8, 12, 16])))
        beats.append(bounds[-1] + b)
        pieces.append(y)
        bounds.append(bounds[-1] + y.size / SR)
        labels.append(c)
    if rng.random() < 0.5:
        bpm = styles[form[-1]]["bpm"]
        n = int(4 * 4 * 60 / bpm * SR)
        ramp = (np.arange(n) / n) ** 2
        pieces.append(0.25 * np.diff(rng.standard_normal(n + 1)) * ramp)
        bounds.append(bounds[-1] + n / SR)
        labels.append("riser")
        drop_style = dict(styles[form[-1]], kick=[1, 1, 1, 1], kick_gain=0.9, bass=True, pad=0.3)
        y, b = synth_part(rng, drop_style, 8)
        drops.append(bounds[-1])
        beats.append(bounds[-1] + b)
        pieces.append(1.3 * y)
        bounds.append(bounds[-1] + y.size / SR)
        labels.append("drop")
    y = np.concatenate(pieces)
    return (0.8 * y / np.abs(y).max()).astype(np.float32), np.array(bounds), labels, np.concatenate(beats), drops


# --- the run ----------------------------------------------------------------------------------------


def report(name: str, hits: dict, extra: list[str]) -> None:
    print(f"\n{name}")
    for w in (0.5, 3.0):
        p, r, f = f_of(*hits[w])
        print(f"  boundaries ±{w} s: precision {p:.2f}, recall {r:.2f}, F {f:.2f}  ({hits[w][1]} true boundaries)")
    for line in extra:
        print("  " + line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loops", type=Path, help="Sonic Pi's samples folder (see above): measure looped recordings too")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()

    recs = recordings()
    print(f"recordings: {', '.join(f'{k} ({v.size / SR:.1f} s)' for k, v in recs.items())}")
    hits = {0.5: np.zeros(3, int), 3.0: np.zeros(3, int)}
    beat_hits = {"music": np.zeros(3, int), "speech": np.zeros(3, int)}
    label_f = []
    for _ in range(args.songs):
        y, bounds, labels, srcs = spliced(rng, recs, 5)
        form = analyze_signal(y, SR)
        est = np.array([s.start for s in form.sections[1:]])
        for w in hits:
            hits[w] += prf(bounds[1:-1], est, w)
        label_f.append(pairwise_f(bounds, labels, form, bounds[-1]))
        for (name, piece), a in zip(srcs, bounds[:-1], strict=True):
            alone = a + beats_alone(piece)
            inside = form.beats[(form.beats >= a) & (form.beats < a + piece.size / SR)]
            beat_hits["music" if name in MUSIC else "speech"] += prf(alone, inside, 0.07)
    report(
        f"spliced recordings: {args.songs} songs of 5 excerpts",
        hits,
        [
            f"pairwise label F (same recording = same part): {np.mean(label_f):.2f}",
            "beat F ±70 ms, the song's beats against each excerpt's own track: "
            + ", ".join(f"{k} {f_of(*v)[2]:.2f}" for k, v in beat_hits.items()),
        ],
    )

    hits = {0.5: np.zeros(3, int), 3.0: np.zeros(3, int)}
    beat_f, label_f, drop_found, drop_n, false_drops = np.zeros(3, int), [], 0, 0, 0
    for _ in range(args.songs):
        y, bounds, labels, beats, drops = synthetic(rng)
        form = analyze_signal(y, SR)
        est = np.array([s.start for s in form.sections[1:]])
        for w in hits:
            hits[w] += prf(bounds[1:-1], est, w)
        label_f.append(pairwise_f(bounds, labels, form, bounds[-1]))
        beat_f += prf(beats, form.beats, 0.07)
        period = 60.0 / max(form.tempo, 1.0)
        drop_n += len(drops)
        drop_found += matches(np.array(drops), form.drops, period)
        false_drops += form.drops.size - matches(np.array(drops), form.drops, period)
    report(
        f"synthetic songs (not real music): {args.songs}",
        hits,
        [
            f"pairwise label F: {np.mean(label_f):.2f}",
            f"beat F ±70 ms against the true beats: {f_of(*beat_f)[2]:.2f}",
            f"drops within one beat: {drop_found} of {drop_n}; other drops reported: {false_drops}",
        ],
    )
    if args.loops is not None:
        loops = loop_recordings(args.loops)
        rng = np.random.default_rng(args.seed)
        hits = {0.5: np.zeros(3, int), 3.0: np.zeros(3, int)}
        beat_hits, label_f, parts, seconds = np.zeros(3, int), [], 0, 0.0
        for _ in range(args.songs):
            y, bounds, labels, srcs = looped(rng, loops)
            form = analyze_signal(y, SR)
            est = np.array([s.start for s in form.sections[1:]])
            for w in hits:
                hits[w] += prf(bounds[1:-1], est, w)
            label_f.append(pairwise_f(bounds, labels, form, bounds[-1]))
            for (_, piece), a in zip(srcs, bounds[:-1], strict=True):
                alone = a + beats_alone(piece)
                inside = form.beats[(form.beats >= a) & (form.beats < a + piece.size / SR)]
                beat_hits += prf(alone, inside, 0.07)
            parts, seconds = parts + len(srcs), seconds + bounds[-1]
        report(
            f"looped recordings: {args.songs} songs, {parts} parts of 8–16 s, {seconds / args.songs:.0f} s on average, "
            f"from {len(loops)} loops",
            hits,
            [
                f"pairwise label F (same loop = same part): {np.mean(label_f):.2f}",
                f"beat F ±70 ms, the song's beats against each part's own track: {f_of(*beat_hits)[2]:.2f}",
            ],
        )
    try:
        import mir_eval  # noqa: F401

        print(f"\nmir_eval's matching counts other hits than this script's in {MISMATCHES[0]} comparisons")
    except ImportError:
        print("\n(mir_eval is not installed: the measures are this script's, as mir_eval defines them)")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
