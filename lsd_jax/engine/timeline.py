"""Timelines → per-frame values: every timeline parameter reaches the compiled scans and step as one value per frame.

A parameter of the table with ``timeline=True`` (:data:`lsd_jax.params.PARAMS`) is a number or a
:class:`~lsd_jax.params.Timeline`; :func:`frame_values` turns each into an array (N,) float32 (a constant is a
constant array), so the latents' scans and the frame step see the same shapes and dtypes whatever the values: a
timeline never recompiles. Keys are resolved against the song: seconds directly, beats and bars from the song's
beats, section keys (``"B"``, ``"s3"``, ``"drop"``) from a song-structure analysis (any object with ``.sections``
whose items have ``.start`` and ``.label``, and ``.drops``; see :class:`Structure`).

Pure functions of the parameters, the frame times and the song's beats/structure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..errors import ParamError
from ..params import PARAMS, RenderParams, Timeline

#: The parameters that may be timelines, in table order.
TIMELINE_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS if p.timeline)


class Section(Protocol):
    start: float  # seconds of the song
    label: str  # "A", "B", ...


class Structure(Protocol):
    """What section keys need of a song's analysis (e.g. ``lsd_jax.audio.structure.analyze``): times in seconds
    of the song."""

    beats: Sequence[float]
    downbeats: Sequence[float]
    sections: Sequence[Section]
    drops: Sequence[float]


def has_timeline(params: RenderParams) -> bool:
    return any(isinstance(getattr(params, n), Timeline) for n in TIMELINE_PARAMS)


def needs_beats(params: RenderParams) -> bool:
    """Whether some timeline is keyed by beats or bars (so the song's beats must be tracked)."""
    return any(isinstance(v, Timeline) and v.needs_beats for v in (getattr(params, n) for n in TIMELINE_PARAMS))


def needs_sections(params: RenderParams) -> bool:
    """Whether some timeline is keyed by sections or drops (so the song's form must be analysed)."""
    return any(isinstance(v, Timeline) and v.needs_sections for v in (getattr(params, n) for n in TIMELINE_PARAMS))


def _key_times(
    name: str,
    key: float | str,
    beats: np.ndarray | None,
    downbeats: np.ndarray | None,
    structure: Any,
) -> list[float]:
    """The song times (seconds) where the point ``key`` of parameter ``name`` sits (a label or "drop": several)."""
    if not isinstance(key, str):
        return [float(key)]
    if m := re.fullmatch(r"([\d.]+)(bar|b)", key):
        n, unit = float(m.group(1)), m.group(2)
        marks = downbeats if unit == "bar" else beats
        what = "bar" if unit == "bar" else "beat"
        if marks is None or len(marks) == 0:
            raise ParamError(f'{name}: "{key}" needs the song\'s {what}s, and none were found')
        last = len(marks) - 1
        if n > last:
            raise ParamError(f'{name}: "{key}" is after the song\'s last {what} ({last})')
        # fractional beats/bars: between the two marks
        return [float(np.interp(n, np.arange(len(marks)), np.asarray(marks, np.float64)))]
    if structure is None:
        raise ParamError(
            f'{name}: "{key}": section keys need the song\'s analysis (sections and drops); use seconds, beats or bars'
        )
    sections = list(structure.sections)
    if key == "drop":
        drops = [float(t) for t in structure.drops]
        if not drops:
            raise ParamError(f'{name}: "drop": the song has no drop')
        return drops
    if m := re.fullmatch(r"s(\d+)", key):
        i = int(m.group(1))
        if i > len(sections):
            raise ParamError(f'{name}: "{key}" is after the song\'s last section (s{len(sections)})')
        return [float(sections[i - 1].start)]
    starts = [float(s.start) for s in sections if s.label == key]
    if not starts:
        labels = sorted({s.label for s in sections})
        raise ParamError(f'{name}: "{key}": the song has no section {key} (its sections: {", ".join(labels)})')
    return starts


def resolve(
    name: str,
    timeline: Timeline,
    times: np.ndarray,
    *,
    beats: np.ndarray | None = None,
    downbeats: np.ndarray | None = None,
    structure: Any = None,
) -> np.ndarray:
    """Parameter ``name``'s timeline at ``times`` (N,) seconds of the song → (N,) float32.

    ``beats``, ``downbeats``: the song's beat and bar times (seconds; default: the ``structure``'s, and every 4th
    beat for the bars); ``structure``: a :class:`Structure` for section keys. Before the first point the first
    value holds, after the last the last; between points ``interp`` holds (step), draws a line (linear) or eases
    (smooth: smoothstep). Points at the same time: the later one given wins."""
    if structure is not None:
        beats = np.asarray(structure.beats, np.float64) if beats is None else beats
        downbeats = np.asarray(structure.downbeats, np.float64) if downbeats is None else downbeats
    if downbeats is None and beats is not None:
        downbeats = np.asarray(beats)[::4]
    pts = [(t, v) for key, v in timeline.points for t in _key_times(name, key, beats, downbeats, structure)]
    pts.sort(key=lambda p: p[0])  # stable: equal times keep their given order
    t_pts = np.array([p[0] for p in pts], np.float64)
    v_pts = np.array([p[1] for p in pts], np.float64)
    times = np.asarray(times, np.float64)
    # the segment each time falls in: the last point at or before it
    i = np.clip(np.searchsorted(t_pts, times, side="right") - 1, 0, len(pts) - 1)
    if timeline.interp == "step" or len(pts) == 1:
        out = v_pts[i]
    else:
        j = np.minimum(i + 1, len(pts) - 1)
        span = t_pts[j] - t_pts[i]
        u = np.clip((times - t_pts[i]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
        u = np.where(span > 0, u, 0.0)
        if timeline.interp == "smooth":
            u = u * u * (3.0 - 2.0 * u)
        out = v_pts[i] + (v_pts[j] - v_pts[i]) * u
        out = np.where(times < t_pts[0], v_pts[0], out)
    return out.astype(np.float32)


def frame_times(n_frames: int, fps: float, start: float = 0.0) -> np.ndarray:
    """(N,) the song time of each frame, seconds: ``start + i / fps``."""
    return start + np.arange(n_frames, dtype=np.float64) / fps


def frame_values(
    params: RenderParams,
    n_frames: int,
    fps: float,
    *,
    beats: np.ndarray | None = None,
    downbeats: np.ndarray | None = None,
    structure: Any = None,
) -> dict[str, np.ndarray]:
    """Every timeline parameter's value at each frame: name → (N,) float32 (frame i at ``start + i/fps`` of the
    song). A number is a constant array; an unset optional one (an effect that is off) is its default strength
    (:meth:`RenderParams.effect_strength`), never used. See :func:`resolve` for ``beats``/``structure``."""
    times = frame_times(n_frames, fps, params.start)
    out = {}
    for name in TIMELINE_PARAMS:
        v = getattr(params, name)
        if isinstance(v, Timeline):
            out[name] = resolve(name, v, times, beats=beats, downbeats=downbeats, structure=structure)
        else:
            if v is None:  # contrast_strength / flash_strength unset
                v = params.effect_strength(name[: -len("_strength")])
            out[name] = np.full(n_frames, v, np.float32)
    return out


def value_at(params: RenderParams, name: str, seconds: float) -> float:
    """Parameter ``name`` at ``seconds`` of a clock (live mode): a number as it is, a timeline keyed by seconds at
    that time. Beat, bar and section keys are refused: live mode has no whole song to find them in."""
    v = getattr(params, name)
    if not isinstance(v, Timeline):
        return v
    if v.needs_beats or v.needs_sections:
        raise ParamError(
            f"{name}: live mode follows a timeline keyed by seconds only; beats, bars and sections need the whole "
            "song (render it instead)"
        )
    return float(resolve(name, v, np.array([seconds]))[0])


def check_live(params: RenderParams) -> None:
    """Refuse timelines live mode cannot follow (keyed by beats, bars or sections), naming the parameter."""
    for name in TIMELINE_PARAMS:
        v = getattr(params, name)
        if isinstance(v, Timeline) and (v.needs_beats or v.needs_sections):
            raise ParamError(
                f"{name}: live mode follows a timeline keyed by seconds of its clock only; beats, bars and sections "
                "need the whole song (render it instead)"
            )


def params_at(params: RenderParams, seconds: float) -> RenderParams:
    """``params`` with each timeline replaced by its value at ``seconds`` (a live session's clock); ``params`` itself
    when it has no timeline (the common case costs nothing)."""
    if not has_timeline(params):
        return params
    names = [n for n in TIMELINE_PARAMS if isinstance(getattr(params, n), Timeline)]
    return params.replace(**{n: value_at(params, n, seconds) for n in names})


# --- direct="sections": the song's form directs the video

#: The intensity parameters the director scales by each section's loudness (and a drop's hit).
DIRECTED: tuple[str, ...] = ("pulse_react", "motion_react", "contrast_strength", "flash_strength")
LOUDNESS_DB_PER_UNIT = 12.0  # a section 12 dB above the song's mean gets twice the intensity (clipped below)
INTENSITY_RANGE = (0.5, 1.5)  # the director's loudness factor stays within this: a quiet intro is not frozen
EASE_SECONDS = 0.5  # an ordinary section boundary glides to the new region; a drop cuts
HIT_SECONDS = 0.5  # a drop's hit decays with this time constant
HIT_GAIN = 1.5  # the hit's extra intensity at the drop (×(1 + HIT_GAIN))
SNAP_SECONDS = 0.25  # a boundary moves to a downbeat this close (no further: the analysis placed it)


class Direction(NamedTuple):
    """Where each frame sits in the song's form (all (N,) per frame; see :func:`direction`)."""

    region: np.ndarray  # int32: the region of latent space (one per label, one more per label after a drop)
    prev: np.ndarray  # int32: the region it glides from (= region once the glide is over)
    weight: np.ndarray  # float32 in [0, 1]: how far from ``prev`` to ``region``
    palette: np.ndarray  # int32: the class palette (one per label)
    loudness: np.ndarray  # float32: the director's intensity factor (:data:`INTENSITY_RANGE`)
    hit: np.ndarray  # float32 in [0, 1]: a drop's hit, 1 on the drop, decaying
    n_regions: int


def _snap_to(t: float, marks: np.ndarray) -> float:
    if len(marks) == 0:
        return t
    near = float(marks[np.argmin(np.abs(marks - t))])
    return near if abs(near - t) <= SNAP_SECONDS else t


def direction(times: np.ndarray, structure: Any, downbeats: np.ndarray | None = None) -> Direction:
    """The song's form at ``times`` (N,) seconds of the song → a :class:`Direction`.

    Sections (``structure.sections``: ``start``, ``label``, ``loudness`` dBFS) start on the nearest downbeat
    (``downbeats``, default the structure's, within :data:`SNAP_SECONDS`); a drop inside a section starts a new
    region of that label (the hit's jump) and lands a hit. A repeated label returns to its region and palette."""
    times = np.asarray(times, np.float64)
    n = len(times)
    sections = list(structure.sections)
    if downbeats is None:
        downbeats = np.asarray(getattr(structure, "downbeats", ()), np.float64)
    downbeats = np.asarray(downbeats, np.float64)
    labels = list(dict.fromkeys(s.label for s in sections))
    # boundaries: (time, label, after a drop?, a cut?)
    bounds = [
        (_snap_to(float(s.start), downbeats) if i else -np.inf, s.label, False, False) for i, s in enumerate(sections)
    ]
    drops = [_snap_to(float(d), downbeats) for d in structure.drops]
    for d in drops:
        i = max((k for k, b in enumerate(bounds) if b[0] <= d + 1e-6), default=0)
        if abs(bounds[i][0] - d) <= EASE_SECONDS:  # the drop opens this section: it cuts
            bounds[i] = (bounds[i][0], bounds[i][1], bounds[i][2], True)
        else:
            bounds.insert(i + 1, (d, bounds[i][1], True, True))
    keys = list(dict.fromkeys((b[1], b[2]) for b in bounds))
    region = np.zeros(n, np.int32)
    prev = np.zeros(n, np.int32)
    weight = np.ones(n, np.float32)
    palette = np.zeros(n, np.int32)
    last = None
    for k, (t0, label, dropped, cut) in enumerate(bounds):
        t1 = bounds[k + 1][0] if k + 1 < len(bounds) else np.inf
        m = (times >= t0) & (times < t1)
        r = keys.index((label, dropped))
        region[m] = r
        prev[m] = r if last is None else last
        palette[m] = labels.index(label)
        if last is not None and not cut:
            u = np.clip((times[m] - t0) / EASE_SECONDS, 0.0, 1.0)
            weight[m] = u * u * (3.0 - 2.0 * u)
        last = r
    prev = np.where(weight >= 1.0, region, prev).astype(np.int32)
    # loudness: the section's level against the song's (duration-weighted) mean level
    level = np.zeros(n, np.float64)
    for i, s in enumerate(sections):
        t0 = -np.inf if i == 0 else float(s.start)
        t1 = float(sections[i + 1].start) if i + 1 < len(sections) else np.inf
        level[(times >= t0) & (times < t1)] = float(s.loudness)
    spans = [max(0.0, float(s.end) - float(s.start)) for s in sections]
    mean = float(np.average([s.loudness for s in sections], weights=spans)) if sum(spans) > 0 else 0.0
    loud = np.clip(1.0 + (level - mean) / LOUDNESS_DB_PER_UNIT, *INTENSITY_RANGE)
    hit = np.zeros(n, np.float64)
    for d in drops:
        after = times >= d
        hit = np.maximum(hit, np.where(after, np.exp(-np.maximum(times - d, 0.0) / HIT_SECONDS), 0.0))
    return Direction(region, prev, weight, palette, loud.astype(np.float32), hit.astype(np.float32), len(keys))


def direct_values(params: RenderParams, values: dict[str, np.ndarray], d: Direction) -> dict[str, np.ndarray]:
    """``values`` (name → (N,)) with the intensity parameters (:data:`DIRECTED`) times the section's loudness
    factor and a drop's hit; a parameter the user gave as a timeline is left as given (the user wins)."""
    out = dict(values)
    for name in DIRECTED:
        if isinstance(getattr(params, name), Timeline):
            continue
        out[name] = (values[name] * d.loudness * (1.0 + HIT_GAIN * d.hit)).astype(np.float32)
    return out
