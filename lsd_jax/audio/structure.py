"""The song's form: tempo, beats, downbeats, sections (labelled A B A C …) and drops.

::

    form = analyze("song.mp3")            # SongForm, cached per song hash (the file's sha256)
    form.tempo, form.beats, form.downbeats  # BPM; (K,), (M,) seconds
    form.sections                         # (Section(start, end, label, loudness), ...), covering [0, duration)
    form.drops                            # (D,) seconds
    form = analyze_signal(y, sr)          # the same from mono samples (pure; no cache)

How (NumPy only, like the rest of the audio layer: librosa and numba stay unimported):

- **Beats**: :func:`lsd_jax.audio.beats.beat_track` (librosa's dynamic-programming tracker) on the whole song,
  then again inside each section of at least ``MIN_TRACK_S`` (its own tempo: spliced or tempo-changing songs;
  its own level: quiet parts); downbeats: per section, the beat phase (of 4) with the most low-end onset strength.
- **Sections**: a self-similarity (recurrence) matrix of ~93 ms blocks of MFCC, chroma and loudness; Foote's
  checkerboard novelty along its diagonal; boundaries are novelty peaks at least ``MIN_SECTION_S`` apart, moved
  to the nearest beat when one is within ``SNAP_S``; a boundary whose ``WIDE_S`` spans either side are alike
  (chords alternating inside one part) is dropped. librosa's gallery (laplacian segmentation,
  ``segment.agglomerative``) needs the number of sections up front; novelty finds it from the song.
- **Labels**: two sections share a letter when their cross-similarity (mean of the recurrence matrix over the
  pair's block) is close to their own self-similarity (``SAME_RATIO``); neighbours that share a letter are joined
  into one section (and the letters found again).
- **Drops**: a rise of loudness and of the low end (below ~150 Hz) from the two seconds before to the second
  after, above ``DROP_DB``/``DROP_LOW_DB``, landing above the song's median loudness: the end of a build or a
  break. Each drop is moved to the strongest low-end onset near it, then to the nearest beat.

The constants were tuned on synthetic songs and spliced recordings (scripts/measure_structure.py; README "The
song's form").
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import string
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioError, CacheError
from . import spectral
from .beats import BEATS_PER_BAR, beat_track, tempo_from_beats
from .envelopes import is_silent, onset_envelope

PathLike = str | os.PathLike[str]
log = logging.getLogger(__name__)

SR = 22050
HOP = 512  # spectral columns of ~23 ms
BLOCK = 4  # columns per similarity block (~93 ms) ...
MAX_BLOCKS = 3000  # ... or more for songs over ~4.6 min: the (N, N) recurrence matrix stays under ~72 MB
N_MFCC = 13
WEIGHTS = (1.0, 0.7, 0.5)  # of MFCC, chroma and loudness in the similarity
KERNEL_S = 3.0  # half-width of the checkerboard kernel: the shortest part whose change it sees fully
MIN_SECTION_S = 2.5  # no two boundaries closer than this (and none this close to either end)
NOVELTY_Z = 1.0  # a peak counts above mean + NOVELTY_Z · std of the novelty curve
SNAP_S = 0.2  # a boundary moves to a beat this close
SAME_RATIO = 0.8  # cross-similarity / self-similarity above this: the same part
WIDE_S, WIDE_RATIO = 12.0, 0.95  # a boundary between two alike 12 s spans is dropped
MERGE_RATIO = 0.75  # neighbours this alike are one section (a chord change inside a part is not a boundary)
DROP_DB = 4.0  # loudness rise of a drop (dB)
DROP_LOW_DB = 8.0  # low-end rise of a drop (dB)
DROP_BEFORE_S, DROP_AFTER_S = 2.0, 1.0
LOW_HZ = 150.0
MIN_TRACK_S = 4.0  # sections at least this long get their own beat track
CACHE_VERSION = 1  # bump when the analysis changes: old cache files are then ignored


@dataclasses.dataclass(frozen=True)
class Section:
    start: float  # seconds
    end: float  # seconds
    label: str  # "A", "B", …: letters in order of first appearance; repeated parts share one
    loudness: float  # mean RMS level over the section, dBFS


@dataclasses.dataclass(frozen=True)
class SongForm:
    duration: float  # seconds
    tempo: float  # BPM (0.0 without beats)
    beats: np.ndarray  # (K,) float64 seconds, increasing
    downbeats: np.ndarray  # (M,) float64 seconds, a subset of beats: the first beat of each bar
    sections: tuple[Section, ...]  # contiguous, from 0 to duration
    drops: np.ndarray  # (D,) float64 seconds

    def bar_at(self, t: float) -> int:
        """1-based number of the bar holding time ``t`` (0 before the first downbeat)."""
        return int(np.searchsorted(self.downbeats, float(t) + 1e-6, side="right"))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CACHE_VERSION,
            "duration": self.duration,
            "tempo": self.tempo,
            "beats": self.beats.tolist(),
            "downbeats": self.downbeats.tolist(),
            "sections": [dataclasses.asdict(s) for s in self.sections],
            "drops": self.drops.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SongForm:
        return cls(
            duration=float(d["duration"]),
            tempo=float(d["tempo"]),
            beats=np.asarray(d["beats"], np.float64),
            downbeats=np.asarray(d["downbeats"], np.float64),
            sections=tuple(
                Section(float(s["start"]), float(s["end"]), str(s["label"]), float(s["loudness"]))
                for s in d["sections"]
            ),
            drops=np.asarray(d["drops"], np.float64),
        )

    def table(self) -> list[tuple[float, int, str, float]]:
        """Rows ``(time s, bar, label, loudness dBFS)``: one per section start, and ``"drop"`` rows, by time."""
        rows = [(s.start, self.bar_at(s.start), s.label, s.loudness) for s in self.sections]
        rows += [(float(t), self.bar_at(t), "drop", _level_at(self, t)) for t in self.drops]
        return sorted(rows, key=lambda r: (r[0], r[2] == "drop"))


def _level_at(form: SongForm, t: float) -> float:
    for s in form.sections:
        if s.start <= t < s.end:
            return s.loudness
    return form.sections[-1].loudness if form.sections else 0.0


# --- features ------------------------------------------------------------------------------------


def _db(x: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(x, 1e-10))


def _dct_ii(x: np.ndarray, n: int) -> np.ndarray:
    """(bands, T) → (n, T): orthonormal DCT-II along the bands (MFCC from dB mel)."""
    m = x.shape[0]
    k = np.arange(n)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(m)[None, :] + 1) / (2 * m)) * math.sqrt(2.0 / m)
    basis[0] /= math.sqrt(2.0)
    return basis @ x


def _pool(x: np.ndarray, size: int) -> np.ndarray:
    """(F, T) → (F, ceil(T/size)): means over consecutive groups of ``size`` columns."""
    t = x.shape[1]
    n = -(-t // size)
    pad = np.pad(x, ((0, 0), (0, n * size - t)), mode="edge")
    return pad.reshape(x.shape[0], n, size).mean(axis=2)


def block_features(power: np.ndarray, mel: np.ndarray, sr: int, block: int = BLOCK) -> np.ndarray:
    """(n_blocks, F) features of ``block``-column blocks: MFCC 1–12, chroma and loudness, each group z-scored and
    weighted so that timbre, harmony and level count about equally."""
    mel_db = _db(mel)
    mfcc = _dct_ii(mel_db, N_MFCC)[1:]
    chroma = spectral.chroma_columns(power, spectral.chroma_filterbank(sr))
    level = _db(mel.sum(axis=0, keepdims=True))
    groups = []
    for g, weight in ((mfcc, WEIGHTS[0]), (chroma, WEIGHTS[1]), (level, WEIGHTS[2])):
        p = _pool(np.asarray(g, np.float64), block)
        p = (p - p.mean(axis=1, keepdims=True)) / (p.std(axis=1, keepdims=True) + 1e-6)
        groups.append(p * weight / math.sqrt(p.shape[0]))
    return np.concatenate(groups, axis=0).T


def recurrence(features: np.ndarray) -> np.ndarray:
    """(N, F) → (N, N) affinity ``exp(-d² / median(d²))`` (1 on the diagonal)."""
    sq = (features**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * features @ features.T, 0.0)
    scale = float(np.median(d2[d2 > 0])) if np.any(d2 > 0) else 1.0
    return np.exp(-d2 / scale)


def novelty(affinity: np.ndarray, half: int) -> np.ndarray:
    """(N, N) → (N,) Foote's novelty: a Gaussian-tapered checkerboard kernel of half-width ``half`` slid along the
    diagonal (zero-padded at the ends), ≥ 0."""
    n = affinity.shape[0]
    r = np.arange(-half, half) + 0.5
    g = np.exp(-0.5 * (r / (0.5 * half)) ** 2)
    kernel = np.outer(g, g) * np.sign(r)[:, None] * np.sign(r)[None, :]
    padded = np.pad(affinity, half)
    out = np.empty(n)
    for i in range(n):  # each block's window; ~N·(2·half)² multiply-adds
        out[i] = np.sum(kernel * padded[i : i + 2 * half, i : i + 2 * half])
    return np.maximum(out, 0.0)


def pick_peaks(curve: np.ndarray, distance: int, z: float | None) -> np.ndarray:
    """Indices of local maxima of ``curve`` above ``mean + z·std`` (above 0 for ``z=None``), greedily strongest
    first, no two closer than ``distance`` and none within ``distance`` of either end."""
    n = curve.size
    thresh = 0.0 if z is None else curve.mean() + z * curve.std()
    taken: list[int] = []
    for i in np.argsort(-curve, kind="stable"):
        if curve[i] <= thresh:
            break
        if i < distance or i > n - distance or any(abs(int(i) - j) < distance for j in taken):
            continue
        taken.append(int(i))
    return np.array(sorted(taken), np.int64)


def _ratio(affinity: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> float:
    """Cross-similarity of two spans over the geometric mean of their self-similarities (1: alike)."""
    cross = affinity[a[0] : a[1], b[0] : b[1]].mean()
    own = affinity[a[0] : a[1], a[0] : a[1]].mean() * affinity[b[0] : b[1], b[0] : b[1]].mean()
    return float(cross / math.sqrt(own))


def merge_neighbours(affinity: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(B,) bool: which of ``bounds`` (block indices, first 0, last N) to keep after joining, most alike first,
    the neighbouring sections whose ratio (see :func:`label_sections`) exceeds ``MERGE_RATIO``."""
    keep = np.ones(bounds.size, bool)
    while keep.sum() > 2:
        b = bounds[keep]
        ratios = [_ratio(affinity, (b[i], b[i + 1]), (b[i + 1], b[i + 2])) for i in range(b.size - 2)]
        j = int(np.argmax(ratios))
        if ratios[j] <= MERGE_RATIO:
            break
        keep[np.flatnonzero(keep)[j + 1]] = False
    return keep


def alike_around(affinity: np.ndarray, bounds: np.ndarray, wide: int) -> np.ndarray:
    """(B,) bool: interior bounds where the ``wide`` blocks before and after are alike (ratio above
    ``WIDE_RATIO``): chords that alternate inside one part, seen at the scale of a few bars."""
    n = affinity.shape[0]
    out = np.zeros(bounds.size, bool)
    for i in range(1, bounds.size - 1):
        b = int(bounds[i])
        out[i] = _ratio(affinity, (max(0, b - wide), b), (b, min(n, b + wide))) > WIDE_RATIO
    return out


def label_sections(affinity: np.ndarray, bounds: np.ndarray) -> list[str]:
    """Letters for the sections between consecutive ``bounds`` (block indices, first 0, last N): a section joins
    the earlier letter whose sections are most like it, when ``mean(A[i, j]) / sqrt(mean(A[i, i])·mean(A[j, j]))``
    exceeds ``SAME_RATIO``; otherwise it takes the next letter."""
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    self_sim = [affinity[a:b, a:b].mean() for a, b in spans]
    labels: list[str] = []
    letters = iter(string.ascii_uppercase + string.ascii_lowercase)
    for i, (a, b) in enumerate(spans):
        best, best_r = None, SAME_RATIO
        for j in range(i):
            c, d = spans[j]
            r = affinity[a:b, c:d].mean() / math.sqrt(self_sim[i] * self_sim[j])
            if r > best_r:
                best, best_r = labels[j], r
        labels.append(best if best is not None else next(letters, "?"))
    return labels


# --- beats ---------------------------------------------------------------------------------------


def _track(onset: np.ndarray, sr: int, hop: int, bpm: float | None = None) -> np.ndarray:
    if onset.size < 8 or not np.any(onset > 0):
        return np.zeros(0, np.float64)
    _, cols = beat_track(onset, sr, hop, bpm)
    return cols * hop / sr


def _downbeats(beats: np.ndarray, low_onset: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """Every 4th beat from the phase with the largest mean low-end onset strength (the kick on the one)."""
    if beats.size == 0:
        return beats
    cols = np.clip(np.round(beats * sr / hop).astype(np.int64), 0, low_onset.size - 1)
    strength = low_onset[cols]
    means = [strength[p::BEATS_PER_BAR].mean() if strength[p::BEATS_PER_BAR].size else -np.inf for p in range(4)]
    return beats[int(np.argmax(means)) :: BEATS_PER_BAR]


def section_beats(
    onset: np.ndarray, low_onset: np.ndarray, sr: int, hop: int, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Beats and downbeats (seconds): each section (``edges``, seconds, first 0, last the duration) of at least
    ``MIN_TRACK_S`` tracked on its own, at its own tempo (a spliced or tempo-changing song; a quiet intro whose
    beats the whole song's loud parts would trim as weak); shorter ones keep the whole song's track. A beat
    closer than half a beat to the previous one (two sections' tracks meeting) is dropped."""
    song = _track(onset, sr, hop)
    beats, downs = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        ca, cb = int(round(a * sr / hop)), int(round(b * sr / hop))
        part = song[(song >= a) & (song < b)]
        seg = onset[ca:cb]
        if b - a >= MIN_TRACK_S and seg.size > 8 and np.any(seg > 0):
            own = _track(seg, sr, hop)
            if own.size >= 2:
                part = a + own
        beats.append(part)
        downs.append(_downbeats(part - a, low_onset[ca:cb], sr, hop) + a if part.size else part)
    all_beats, all_downs = np.concatenate(beats), np.concatenate(downs)
    if all_beats.size < 2:
        return all_beats, all_downs
    half = 0.5 * float(np.median(np.diff(all_beats)))
    keep = np.concatenate([[True], np.diff(all_beats) >= half])
    return all_beats[keep], all_downs[np.isin(all_downs, all_beats[keep])]


# --- drops ---------------------------------------------------------------------------------------


def find_drops(level_db: np.ndarray, low_db: np.ndarray, low_onset: np.ndarray, rate: float) -> np.ndarray:
    """(T,) loudness and low-end dB at ``rate`` columns per second, and the low-end onset curve → drop columns:
    where the mean over the next ``DROP_AFTER_S`` exceeds the mean over the previous ``DROP_BEFORE_S`` by
    ``DROP_DB`` (loudness) and ``DROP_LOW_DB`` (low end), landing above the median loudness; one per
    ``2·DROP_BEFORE_S``, at the strongest low-end onset within a quarter second of the rise."""
    n = level_db.size
    nb, na = int(DROP_BEFORE_S * rate), int(DROP_AFTER_S * rate)
    if n < nb + na + 1:
        return np.zeros(0, np.int64)
    c_lvl = np.concatenate([[0.0], np.cumsum(level_db)])
    c_low = np.concatenate([[0.0], np.cumsum(low_db)])
    t = np.arange(nb, n - na)
    rise = (c_lvl[t + na] - c_lvl[t]) / na - (c_lvl[t] - c_lvl[t - nb]) / nb
    rise_low = (c_low[t + na] - c_low[t]) / na - (c_low[t] - c_low[t - nb]) / nb
    after = (c_lvl[t + na] - c_lvl[t]) / na
    ok = (rise > DROP_DB) & (rise_low > DROP_LOW_DB) & (after > np.median(level_db))
    score = np.concatenate([np.zeros(nb), np.where(ok, rise + rise_low, 0.0), np.zeros(na)])
    picks = pick_peaks(score, int(2 * DROP_BEFORE_S * rate), None)
    w = int(0.25 * rate)
    return np.array([max(0, p - w) + int(np.argmax(low_onset[max(0, p - w) : p + w + 1])) for p in picks], np.int64)


def _snap(times: np.ndarray, beats: np.ndarray, within: float) -> np.ndarray:
    """Each time moved to its nearest beat when that is at most ``within`` seconds away."""
    if beats.size == 0 or times.size == 0:
        return times
    near = beats[np.abs(times[:, None] - beats[None, :]).argmin(axis=1)]
    return np.where(np.abs(near - times) <= within, near, times)


# --- the analysis --------------------------------------------------------------------------------


def analyze_signal(y: np.ndarray, sr: int = SR) -> SongForm:
    """The form of mono ``y`` (n,) at ``sr`` Hz (any rate; analysed as is). A silent or empty signal is an
    AudioError."""
    y = np.asarray(y, np.float32)
    if y.ndim != 1 or y.size == 0 or is_silent(y):
        raise AudioError("the song is silent or empty: there is no form to analyse")
    duration = y.size / sr
    hop = HOP * sr // SR if sr >= SR else HOP  # ~23 ms columns whatever the rate
    power = spectral.stft_power(y, hop)
    fb = spectral.mel_filterbank(sr)
    mel = spectral.mel_power(power, fb)
    onset = onset_envelope(mel, hop)
    low_bands = spectral.mel_frequencies(spectral.N_MELS + 2, 0.0, sr / 2)[1:-1] < LOW_HZ
    low = mel[low_bands].sum(axis=0)
    low_onset = onset_envelope(mel[low_bands], hop)
    rate = sr / hop

    block = max(BLOCK, -(-mel.shape[1] // MAX_BLOCKS))
    block_s = block / rate
    aff = recurrence(block_features(power, mel, sr, block))
    nov = novelty(aff, max(2, int(round(KERNEL_S / block_s))))
    peaks = pick_peaks(nov, max(1, int(round(MIN_SECTION_S / block_s))), NOVELTY_Z)
    bounds_s = np.concatenate([[0.0], (peaks + 0.5) * block_s, [duration]])
    # beats per section (by the rough bounds), then bounds moved onto beats
    beats, downbeats = section_beats(onset, low_onset, sr, hop, bounds_s)
    bounds_s[1:-1] = _snap(bounds_s[1:-1], beats, SNAP_S)
    bounds_b = np.clip(np.round(bounds_s / block_s).astype(np.int64), 0, aff.shape[0])
    bounds_b[-1] = aff.shape[0]
    wide = int(round(WIDE_S / block_s))
    keep = merge_neighbours(aff, bounds_b) & ~alike_around(aff, bounds_b, wide)
    bounds_b, bounds_s = bounds_b[keep], bounds_s[keep]
    labels = label_sections(aff, bounds_b)
    while len(labels) > 1:  # neighbours that are the same part (a chord change inside a verse) become one section
        keep = np.array([True] + [a != b for a, b in zip(labels[:-1], labels[1:], strict=True)] + [True])
        if keep.all():
            break
        bounds_b, bounds_s = bounds_b[keep], bounds_s[keep]
        labels = label_sections(aff, bounds_b)

    level_db = _db(mel.sum(axis=0))
    spans = list(zip(bounds_s[:-1], bounds_s[1:], strict=True))
    energy = [
        float(np.mean(np.square(y[int(a * sr) : max(int(a * sr) + 1, int(b * sr))], dtype=np.float64)))
        for a, b in spans
    ]
    sections = tuple(
        Section(float(a), float(b), lab, float(_db(np.array(e))))
        for (a, b), lab, e in zip(spans, labels, energy, strict=True)
    )
    drops = find_drops(level_db, _db(low), low_onset, rate) / rate
    drops = _snap(drops, beats, 0.5 * 60.0 / max(tempo_from_beats(beats), 1.0)) if beats.size else drops
    return SongForm(
        duration=float(duration),
        tempo=float(tempo_from_beats(beats)),
        beats=np.asarray(beats, np.float64),
        downbeats=np.asarray(downbeats, np.float64),
        sections=sections,
        drops=np.asarray(drops, np.float64),
    )


def cache_path(song: PathLike) -> Path:
    """Where the form of ``song`` is kept: ``<cache>/structure/<sha256 of the file>-v<version>.json``."""
    from ..store.paths import cache_dir, sha256_file

    folder = cache_dir() / "structure"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(f"cannot make the song-form cache folder {folder}: {e}") from None
    return folder / f"{sha256_file(song, what='song')}-v{CACHE_VERSION}.json"


def analyze(song: PathLike, *, cache: bool = True) -> SongForm:
    """The form of the audio file ``song`` (any format ffmpeg reads), analysed at 22050 Hz mono. Cached per song
    hash (``cache=False`` recomputes and does not write). A missing, unreadable or silent file is an AudioError
    naming it."""
    from ..media.decode import check_file, load_audio
    from ..store.paths import atomic_write

    p = check_file(song)
    where = cache_path(p) if cache else None
    if where is not None and where.is_file():
        try:
            return SongForm.from_json(json.loads(where.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache file: analyse again and replace it
    y = load_audio(p, sr=SR)
    try:
        form = analyze_signal(y, SR)
    except AudioError as e:
        raise AudioError(f"{p.name}: {e}") from None
    if where is not None:
        try:
            atomic_write(where, lambda f: f.write(json.dumps(form.to_json()).encode()))
        except OSError as e:  # a full or read-only cache: the analysis stands, only the next run pays again
            log.warning("could not cache the form of %s: %s", p.name, e)
    return form


# --- the picture and the table -------------------------------------------------------------------

_PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167)]


def label_colour(label: str) -> tuple[int, int, int]:
    """One colour per letter (the same letter, the same colour)."""
    return _PALETTE[(ord(label[0]) - ord("A")) % len(_PALETTE)] if label else (128, 128, 128)


def draw(form: SongForm, y: np.ndarray, width: int = 1200, height: int = 320) -> Any:
    """A PIL image of the form over the waveform of mono ``y`` (any rate, spanning ``form.duration``): section
    spans coloured by label (letter at the top), the waveform's peak envelope, beats as short ticks, bars as
    taller ones, drops as red lines."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (20, 20, 24))
    d = ImageDraw.Draw(img)
    dur = max(form.duration, 1e-6)

    def x(t: float) -> int:
        return int(round(float(t) / dur * (width - 1)))

    top, bottom = 20, height - 30
    for s in form.sections:
        c = label_colour(s.label)
        d.rectangle([x(s.start), top, x(s.end), bottom], fill=tuple(v // 3 for v in c), outline=c)
        d.text((x(s.start) + 4, 4), s.label, fill=c)
    y = np.asarray(y, np.float32)
    if y.size:
        cols = np.array_split(np.abs(y), width)
        peak = np.array([c.max() if c.size else 0.0 for c in cols])
        peak = peak / (peak.max() + 1e-12)
        mid, half = (top + bottom) / 2, (bottom - top) / 2
        for i, p in enumerate(peak):
            d.line([(i, mid - p * half), (i, mid + p * half)], fill=(220, 220, 220))
    for t in form.beats:
        d.line([(x(t), bottom), (x(t), bottom + 6)], fill=(160, 160, 160))
    for t in form.downbeats:
        d.line([(x(t), bottom), (x(t), bottom + 14)], fill=(255, 255, 255))
    for t in form.drops:
        d.line([(x(t), top), (x(t), bottom)], fill=(255, 40, 40), width=3)
        d.text((x(t) + 4, bottom - 14), "drop", fill=(255, 80, 80))
    for k in range(int(dur // 10) + 1):  # a time axis every 10 s
        d.text((x(10 * k) + 2, height - 12), f"{10 * k}s", fill=(140, 140, 140))
    return img


def format_table(form: SongForm) -> str:
    """The form as text: tempo, then one line per section start and drop (time, bar, label, loudness)."""
    lines = [f"tempo {form.tempo:.1f} BPM, {form.beats.size} beats, {form.downbeats.size} bars, {form.duration:.1f} s"]
    lines.append(f"{'time':>8}  {'bar':>4}  {'section':<7}  {'loudness':>9}")
    for t, bar, label, loud in form.table():
        lines.append(f"{int(t // 60)}:{t % 60:05.2f}  {bar:>4}  {label:<7}  {loud:>6.1f} dB")
    return "\n".join(lines)
