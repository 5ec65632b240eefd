"""Arrays -> latents: per-frame ``z`` and class vectors from audio features.

The maths follows Lucid Sonic Dreams 0.4 (``generate_vectors`` / ``generate_class_vec``), with its
bugs fixed:

* keyframes are spread over the whole excerpt (no static tail, no doubled keyframes);
* motion is one ``lax.scan`` (LSD: an O(N^2) Python sum and a per-frame ``np.vectorize``);
* the bounce is an exact reflection, so ``z - pulse`` never leaves ``[-2 t, 2 t]`` for
  ``truncation = t``. LSD only flips a dimension's direction once ``z`` comes within ``motion_react`` of
  ``+-2 t`` (its band is about ``+-(2 t - motion_react)``), and its smoothed step keeps going the old way for a
  few frames after the flip;
* the pulse takes no part in the bounce: LSD tests ``z`` with the pulse in it, so a kick (which adds to every
  dimension) turns the dimensions near the top of the band downwards early; here a kick never changes the drift;
* everything is a pure function of the features, the parameters and ``seed``.

Shapes: N frames, D = z_dim, C = c_dim.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParamError
from ..params import RenderParams
from .timeline import Direction, frame_values

Array = jax.Array

PULSE_SMOOTH = 0.75  # Lucid Sonic Dreams' EMA factors
MOTION_SMOOTH = 0.75
LSD_REFERENCE_FPS = 43.0  # class_pitch_react is scaled by 43/fps in LSD


class Latents(NamedTuple):
    z: np.ndarray  # (N, D) float32
    c: np.ndarray  # (N, C) float32


def fold(x: Array, bound: Array) -> tuple[Array, Array]:
    """Reflect ``x`` into ``[-bound, bound]`` (a triangle wave); also return whether the
    number of reflections is odd (the direction of travel flipped)."""
    safe = jnp.maximum(bound, 1e-12)
    period = 4.0 * safe
    y = jnp.mod(x + safe, period)
    folded = jnp.where(y <= 2.0 * safe, y - safe, 3.0 * safe - y)
    flips = jnp.mod(jnp.floor((x + safe) / (2.0 * safe)), 2.0) == 1.0
    zero = bound <= 0
    return jnp.where(zero, 0.0, folded), jnp.where(zero, False, flips)


def keyframe_count(n_frames: int, fps: float, speed_fpm: float) -> int:
    """Lucid Sonic Dreams: ``round(duration_minutes * speed_fpm)``; below 2 means one static base."""
    return int(round(n_frames / fps / 60.0 * speed_fpm))


class MotionState(NamedTuple):
    """What the motion maths carries from one frame to the next (see :func:`motion_step`)."""

    pulse_ema: Array  # () the pulse's EMA
    motion_ema: Array  # (D,) the drift step's EMA
    drift: Array  # (D,) accumulated drift
    signs: Array  # (D,) +-1: each dimension's direction of travel
    started: Array  # () bool: a first frame was stepped (it seeds the EMAs)


class MotionFrame(NamedTuple):
    """One frame's inputs to :func:`motion_step` (a leading frame axis when scanned)."""

    base: Array  # (D,) the keyframe path at this frame
    pulse: Array  # () envelope in [0, 1]
    motion: Array  # () envelope in [0, 1]
    factor: Array  # (D,) 1 or 1 - motion_randomness: this stretch's per-dimension speed


class MotionControls(NamedTuple):
    """The reaction settings (arrays or floats; traced, so a new value never recompiles)."""

    pulse_react: Array | float
    step_gain: Array | float  # motion_react * 20 / fps
    bound: Array | float  # 2 * truncation: the bounce's half-width


def motion_init(signs: Array) -> MotionState:
    """The state before the first frame: no pulse, no drift, travelling along ``signs`` (D,)."""
    signs = jnp.asarray(signs, jnp.float32)
    zeros = jnp.zeros(signs.shape, jnp.float32)
    return MotionState(jnp.float32(0.0), zeros, zeros, signs, jnp.asarray(False))


def motion_step(state: MotionState, frame: MotionFrame, controls: MotionControls) -> tuple[MotionState, Array]:
    """One frame of Lucid Sonic Dreams' motion: ``(state, frame) -> (state', z (D,))``.

    ``z = reflect(base + drift + motion_ema) + pulse_ema``; the drift step's EMA accumulates
    ``step_gain * motion * signs * factor`` and bounces off ``+-bound`` (an exact reflection that also turns the
    direction of travel); the pulse is an EMA of ``pulse_react * pulse``, added after the reflection (Lucid Sonic
    Dreams' bounce test sees the pulse; this one does not). The first frame seeds both EMAs. The
    offline scan (:func:`motion_latents`) and the live stepper (:func:`motion_advance`) both run this body.
    """
    pulse_add = controls.pulse_react * frame.pulse
    motion_add = controls.step_gain * frame.motion * state.signs * frame.factor
    first = jnp.logical_not(state.started)
    pulse_ema = jnp.where(first, pulse_add, PULSE_SMOOTH * state.pulse_ema + (1 - PULSE_SMOOTH) * pulse_add)
    motion_ema = jnp.where(first, motion_add, MOTION_SMOOTH * state.motion_ema + (1 - MOTION_SMOOTH) * motion_add)
    pos, flipped = fold(frame.base + state.drift + motion_ema, controls.bound)
    direction = jnp.where(flipped, -1.0, 1.0)
    state = MotionState(pulse_ema, motion_ema * direction, pos - frame.base, state.signs * direction, jnp.asarray(True))
    return state, pos + pulse_ema


def motion_controls(
    pulse_react: Array | float, motion_react: Array | float, truncation: Array | float, fps: Array | float
) -> MotionControls:
    return MotionControls(pulse_react, motion_react * 20.0 / fps, 2.0 * truncation)


def motion_keys(key: Array) -> tuple[Array, Array, Array]:
    """The keys of the keyframes, the initial directions and the per-stretch speed factors."""
    k_base, k_sign, k_fac = jax.random.split(key, 3)
    return k_base, k_sign, k_fac


def motion_signs(key: Array, z_dim: int) -> Array:
    """(D,) +-1: each dimension's initial direction of travel."""
    return jnp.where(jax.random.bernoulli(motion_keys(key)[1], 0.5, (z_dim,)), 1.0, -1.0)


def motion_factors(key: Array, n_segments: int, z_dim: int, motion_randomness: Array | float) -> Array:
    """(n_segments, D): 1 or ``1 - motion_randomness`` per dimension and stretch of ``period`` frames."""
    fac = jax.random.bernoulli(motion_keys(key)[2], 0.5, (n_segments, z_dim))
    return jnp.where(fac, 1.0, 1.0 - motion_randomness)


def motion_frames(
    key: Array,
    pulse: Array,
    motion: Array,
    *,
    z_dim: int,
    n_keyframes: int,
    period: int,
    motion_randomness: Array | float,
    truncation: Array | float,
    positions: Array | None = None,
) -> MotionFrame:
    """The scan's per-frame inputs (leading axis N): the keyframe path ``base`` (N, D) through ``n_keyframes``
    truncated-normal keyframes scaled by ``truncation`` (spread evenly, or eased between the frames
    ``positions``), the envelopes and each frame's speed ``factor`` (N, D), drawn per stretch of ``period`` (as
    :func:`motion_factors`; ``motion_randomness`` () or (N,) per frame)."""
    n = pulse.shape[0]
    kf = max(n_keyframes, 1)
    keyframes = truncation * jax.random.truncated_normal(motion_keys(key)[0], -2.0, 2.0, (kf, z_dim), jnp.float32)
    if positions is not None:  # beat lock: the keyframes sit on the given frames, eased between
        from ..audio.beats import interpolate_keyframes

        base = interpolate_keyframes(keyframes, positions, n)
    elif kf == 1:
        base = jnp.broadcast_to(keyframes[0], (n, z_dim))
    else:
        t = jnp.arange(n, dtype=jnp.float32) * ((kf - 1) / max(n - 1, 1))
        k0 = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, kf - 2)
        frac = (t - k0)[:, None]
        base = keyframes[k0] * (1.0 - frac) + keyframes[k0 + 1] * frac
    fac = jax.random.bernoulli(motion_keys(key)[2], 0.5, (-(-n // period), z_dim))[jnp.arange(n) // period]
    randomness = jnp.asarray(motion_randomness, jnp.float32)  # () or (N,): one per frame
    factors = jnp.where(fac, 1.0, 1.0 - (randomness[:, None] if randomness.ndim else randomness))
    return MotionFrame(base, pulse.astype(jnp.float32), motion.astype(jnp.float32), factors)


@functools.partial(jax.jit, static_argnames=("z_dim", "n_keyframes", "period"))
def motion_latents(
    key: Array,
    pulse: Array,
    motion: Array,
    *,
    z_dim: int,
    n_keyframes: int,
    period: int,
    pulse_react: Array | float,
    motion_react: Array | float,
    motion_randomness: Array | float,
    truncation: Array | float,
    fps: Array | float,
    positions: Array | None = None,
) -> Array:
    """Per-frame z. pulse, motion: (N,) envelopes in [0, 1] -> (N, z_dim) float32. ``pulse_react``,
    ``motion_react`` and ``motion_randomness`` are () or (N,) (one value per frame: a timeline); ``truncation`` ().

    ``z_i = reflect(base_i + drift_i) + pulse_i``: base interpolates between ``n_keyframes``
    truncated-normal keyframes scaled by ``truncation``; the drift accumulates an EMA of
    ``motion_react*20/fps * motion_i * sign * factor`` and bounces off ``+-2*truncation``; the pulse
    is an EMA of ``pulse_react * pulse_i``, added to every dimension (Lucid Sonic Dreams' kick) after the bounce,
    so unlike Lucid Sonic Dreams' it never turns a dimension round.
    One ``lax.scan`` of :func:`motion_step` over :func:`motion_frames`.
    """
    frames = motion_frames(
        key,
        pulse,
        motion,
        z_dim=z_dim,
        n_keyframes=n_keyframes,
        period=period,
        motion_randomness=motion_randomness,
        truncation=truncation,
        positions=positions,
    )
    n = pulse.shape[0]
    per_frame = motion_controls(
        jnp.broadcast_to(jnp.asarray(pulse_react, jnp.float32), (n,)),
        jnp.broadcast_to(jnp.asarray(motion_react, jnp.float32), (n,)),
        truncation,
        fps,
    )

    def body(state: MotionState, xs: tuple[MotionFrame, Array, Array]) -> tuple[MotionState, Array]:
        frame, pulse_react, step_gain = xs
        return motion_step(state, frame, MotionControls(pulse_react, step_gain, per_frame.bound))

    init = motion_init(motion_signs(key, z_dim))
    _, z = jax.lax.scan(body, init, (frames, per_frame.pulse_react, per_frame.step_gain))
    return z.astype(jnp.float32)


def live_keyframe(key: Array, index: int, z_dim: int) -> np.ndarray:
    """Keyframe ``index`` (D,) of an open-ended (live) keyframe path, before scaling by ``truncation``: a
    truncated normal of its own key (the offline path draws all its keyframes at once; live has no end)."""
    k = jax.random.fold_in(motion_keys(key)[0], index)
    return np.asarray(jax.random.truncated_normal(k, -2.0, 2.0, (z_dim,), jnp.float32))


def _minmax_rows(v: Array) -> Array:
    """LSD's class-vector normalisation: min-max to [0, 1]. A flat vector becomes one-hot on
    class 0: LSD adds 0.1 to class 0 of an all-zero vector, which the next frame's min-max turns into a jump to 1
    (this is the fixed point of that, so silence stays still); a flat non-zero one LSD divides by its zero range
    (NaN)."""
    lo = v.min(axis=-1, keepdims=True)
    hi = v.max(axis=-1, keepdims=True)
    flat = hi - lo <= 0
    scaled = (v - lo) / jnp.where(flat, 1.0, hi - lo)
    one_hot = jnp.zeros_like(v).at[..., 0].set(1.0)
    return jnp.where(flat, one_hot, scaled)


def class_scatter(row: Array, classes: Array, c_dim: int) -> Array:
    """(12,) pitch strengths -> (c_dim,): each pitch's strength on the class it drives (``classes`` (12,) int).
    Only the last pitch of each class counts (Lucid Sonic Dreams' ``dict(zip(classes, chroma))``)."""
    later = jnp.triu(classes[:, None] == classes[None, :], k=1).any(axis=1)
    return jnp.zeros(c_dim, jnp.float32).at[classes].add(jnp.where(later, 0.0, row))


def class_first(row: Array, classes: Array, complexity: Array | float, c_dim: int) -> Array:
    """The class vector of the first (non-silent) frame: ``complexity * minmax(scatter(chroma))``."""
    return complexity * _minmax_rows(class_scatter(row, classes, c_dim))


def class_step(v: Array, row: Array, classes: Array, gain: Array | float, complexity: Array | float) -> Array:
    """One frame of Lucid Sonic Dreams' class vector: ``complexity * minmax(v + gain * scatter(chroma))``.
    ``v`` (C,), ``row`` (12,) chroma, ``classes`` (12,) int. The offline scan (:func:`class_latents`) and the live
    stepper (:func:`class_advance`) both run this body."""
    return complexity * _minmax_rows(v + gain * class_scatter(row, classes, v.shape[-1]))


@jax.jit
def advance(
    state: MotionState,
    v: Array,
    frame: MotionFrame,
    controls: MotionControls,
    chroma: Array,
    classes: Array,
    gain: Array | float,
    complexity: Array | float,
) -> tuple[MotionState, Array, Array]:
    """One frame of both scans, compiled as one call: ``(state, v) -> (state', v', z (D,))``. The live renderer
    advances the latents with it, frame after frame.

    The motion is :func:`motion_step`; the class vector ``v`` (C,) is :func:`class_first` on the first frame
    (``state.started`` false) and :func:`class_step` after (``chroma`` (12,), ``classes`` (12,) int) — the bodies
    of :func:`motion_latents` and :func:`class_latents` (before its smoothing). A style without classes passes
    ``v`` of shape (0,)."""
    first = jnp.logical_not(state.started)
    state, z = motion_step(state, frame, controls)
    if v.shape[-1]:
        v = jnp.where(
            first,
            class_first(chroma, classes, complexity, v.shape[-1]),
            class_step(v, chroma, classes, gain, complexity),
        )
    return state, v, z


@functools.partial(jax.jit, static_argnames=("c_dim", "smooth_frames"))
def class_latents(
    chroma: Array,
    pitch_class: Array,
    first_frame: Array,
    *,
    c_dim: int,
    smooth_frames: int,
    gain: Array | float,
    complexity: Array | float,
) -> Array:
    """Per-frame class vectors. chroma: (N, 12); pitch_class: (N, 12) int, the class each pitch
    drives at each frame; ``gain``, ``complexity``: () or (N,) (one per frame) -> (N, c_dim).

    ``v_0`` is the chroma of the first non-silent frame scattered into classes; then
    ``v_i = complexity * minmax(v_{i-1} + gain * scatter(chroma_i))`` (:func:`class_step`), finally smoothed by
    block means over ``smooth_frames`` frames, linearly interpolated between the blocks' centres. Lucid Sonic
    Dreams interpolates between its block means as if each sat at its block's first frame (and reaches the next
    one frame early), so its classes lead the music by half a block: ~0.49 s at ``class_smooth_seconds=1``.
    A class that several pitches drive (a class list shorter than 12 is repeated) takes the value of
    the last of them, as Lucid Sonic Dreams' ``dict(zip(classes, chroma))`` does.
    """
    n = chroma.shape[0]
    gain = jnp.broadcast_to(jnp.asarray(gain, jnp.float32), (n,))
    complexity = jnp.broadcast_to(jnp.asarray(complexity, jnp.float32), (n,))
    v0 = class_first(chroma[first_frame], pitch_class[0], complexity[0], c_dim)

    def body(v, xs):
        row, classes, g, k = xs
        v = class_step(v, row, classes, g, k)
        return v, v

    _, rest = jax.lax.scan(body, v0, (chroma[1:], pitch_class[1:], gain[1:], complexity[1:]))
    v = jnp.concatenate([v0[None], rest], axis=0)
    if smooth_frames > 1:
        f = smooth_frames
        n_blocks = -(-n // f)
        padded = jnp.concatenate([v, jnp.repeat(v[-1:], n_blocks * f - n, axis=0)], axis=0)
        means = padded.reshape(n_blocks, f, c_dim).mean(axis=1)
        centres = (jnp.arange(n_blocks) + 0.5) * f - 0.5
        pos = jnp.clip((jnp.arange(n) - centres[0]) / f, 0.0, n_blocks - 1.0)
        b0 = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, max(n_blocks - 2, 0))
        frac = jnp.clip(pos - b0, 0.0, 1.0)[:, None]
        b1 = jnp.minimum(b0 + 1, n_blocks - 1)
        v = means[b0] * (1.0 - frac) + means[b1] * frac
    return v.astype(jnp.float32)


def pitch_classes(params: RenderParams, c_dim: int, chroma: np.ndarray | None = None) -> np.ndarray:
    """The class each of the 12 pitches drives before any shuffle: (12,) int32.

    ``classes`` (default: ``min(C, 12)`` distinct random classes from ``seed``) repeated to 12; with
    ``dominant_classes_first`` (and the song's ``chroma`` (N, 12)) the first class goes to the most dominant
    pitch, the second to the next, ...
    """
    rng = np.random.default_rng(params.seed)
    if params.classes is None:
        classes = [int(x) for x in rng.choice(c_dim, size=min(c_dim, 12), replace=False)]
    else:
        bad = [c for c in params.classes if c >= c_dim]
        if bad:
            raise ParamError(f"classes {bad} out of range: this style has {c_dim} classes (0..{c_dim - 1})")
        classes = list(params.classes)
    classes = (classes * 12)[:12]
    pitch_order = np.arange(12)
    if params.dominant_classes_first and chroma is not None:
        col = chroma / np.maximum(chroma.sum(axis=1, keepdims=True), 1e-12)
        pitch_order = np.argsort(-col.sum(axis=0), kind="stable")
    base = np.empty(12, dtype=np.int32)
    base[pitch_order] = classes
    return base


def shuffle_rotation(params: RenderParams, frames: np.ndarray, fps: float) -> np.ndarray:
    """How far the class list has rotated at each of ``frames`` (int array): ``round(class_shuffle_strength*12)``
    per shuffle time passed (every ``class_shuffle_seconds``, or at each listed time after ``start``)."""
    frames = np.asarray(frames, np.int64)
    k = int(round(params.class_shuffle_strength * 12))
    shuffle = params.class_shuffle_seconds
    if shuffle is None or not k:
        return np.zeros(frames.shape, np.int64)
    if isinstance(shuffle, tuple):
        hits = np.array(sorted({int(round((t - params.start) * fps)) for t in shuffle}), np.int64)
        hits = hits[hits > 0]
        return np.searchsorted(hits, frames, side="right") * k
    every = max(1, int(round(shuffle * fps)))
    return (frames // every) * k


def class_schedule(
    params: RenderParams, c_dim: int, chroma: np.ndarray, fps: float, palette: np.ndarray | None = None
) -> np.ndarray:
    """The class each pitch drives at each frame: (N, 12) int32.

    Lucid Sonic Dreams' rules (:func:`pitch_classes`); at each shuffle time the pitch-ordered list rotates by
    ``round(class_shuffle_strength*12)`` (pitch p takes the class of pitch p + k; :func:`shuffle_rotation`).
    ``palette``: (N,) int, the director's palette per frame (one per section label): it rotates the list by
    :data:`PALETTE_STEP` per palette, so each label has its own classes and a repeated label its same ones.
    """
    n = chroma.shape[0]
    base = pitch_classes(params, c_dim, chroma)
    rot = shuffle_rotation(params, np.arange(n), fps) % 12
    if palette is not None:
        rot = (rot + PALETTE_STEP * np.asarray(palette, np.int64)) % 12
    table = np.zeros((n, 12), dtype=np.int32)
    for r in np.unique(rot):
        table[rot == r] = np.roll(base, -int(r))
    return table


REGION_STREAM = 24  # fold_in index of the region bases (the transform path uses 3)
REGION_WEIGHT = 0.8  # of the region's base in a directed latent: a section change outweighs the path's own motion
PALETTE_STEP = 5  # classes the list rotates per section label: coprime with 12, so 12 labels get 12 palettes


def region_bases(key: Array, n_regions: int, z_dim: int, truncation: float) -> np.ndarray:
    """(R, D) one base latent per region of the song's form, from the seed (a stream apart from the path's)."""
    k = jax.random.fold_in(key, REGION_STREAM)
    return np.asarray(truncation * jax.random.truncated_normal(k, -2.0, 2.0, (n_regions, z_dim)), np.float32)


def directed_latents(z: np.ndarray, key: Array, direction: Direction, truncation: float) -> np.ndarray:
    """z (N, D) mixed with each frame's region base (gliding from the previous region by ``direction.weight``):
    ``sqrt(1 - r²)·z + r·base`` with r = :data:`REGION_WEIGHT`, which keeps the path's spread. Frames of one region
    stay near each other, a new region moves away (more than the path moves in the same time), a repeated label
    returns."""
    bases = region_bases(key, direction.n_regions, z.shape[1], truncation)
    w = np.asarray(direction.weight, np.float32)[:, None]
    offset = bases[direction.prev] * (1.0 - w) + bases[direction.region] * w
    return (z * np.float32(np.sqrt(1.0 - REGION_WEIGHT**2)) + offset * np.float32(REGION_WEIGHT)).astype(np.float32)


def make_latents(
    pulse: np.ndarray,
    motion: np.ndarray,
    chroma: np.ndarray,
    params: RenderParams,
    *,
    fps: float,
    z_dim: int,
    c_dim: int,
    keyframe_positions: np.ndarray | None = None,
    values: Mapping[str, np.ndarray] | None = None,
    direction: Direction | None = None,
) -> Latents:
    """All latents for a render. pulse, motion: (N,); chroma: (N, 12) -> z (N, D), c (N, C).

    ``values``: each timeline parameter per frame, name → (N,) (:func:`lsd_jax.engine.timeline.frame_values`;
    default: made from ``params`` with no beats or sections, so only timelines keyed by seconds resolve). The scans
    take them as arrays, so a timeline and a constant compile alike.

    A loop (``loop_seconds``/``loop_bars``) closes both paths on themselves (:func:`close_loop`).

    ``keyframe_positions``: frames on which to place the latent keyframes (beat lock) instead of
    spreading ``speed_fpm`` of them evenly.

    ``direction``: the song's form per frame (``direct="sections"``; :func:`lsd_jax.engine.timeline.direction`):
    each region's base latent joins the path (:func:`directed_latents`) and each label rotates the classes."""
    pulse = np.asarray(pulse, np.float32)
    n = pulse.shape[0]
    if values is None:
        values = frame_values(params, n, fps)
    key = jax.random.key(params.seed)
    positions = None
    speed = params.speed_fpm if not isinstance(params.speed_fpm, str) else 0.0
    n_keyframes = keyframe_count(n, fps, speed)
    if keyframe_positions is not None and len(keyframe_positions) >= 2:
        positions = jnp.asarray(keyframe_positions)
        n_keyframes = len(keyframe_positions)
    z = motion_latents(
        key,
        jnp.asarray(pulse),
        jnp.asarray(motion, jnp.float32),
        z_dim=z_dim,
        n_keyframes=n_keyframes,
        period=max(1, int(round(4 * fps))),
        pulse_react=jnp.asarray(values["pulse_react"]),
        motion_react=jnp.asarray(values["motion_react"]),
        motion_randomness=jnp.asarray(values["motion_randomness"]),
        truncation=params.truncation,
        fps=float(fps),
        positions=positions,
    )
    if c_dim == 0:
        c = np.zeros((n, 0), np.float32)
    else:
        chroma = np.asarray(chroma, np.float32)
        loud = np.flatnonzero(chroma.sum(axis=1) > 0)
        c = class_latents(
            jnp.asarray(chroma),
            jnp.asarray(class_schedule(params, c_dim, chroma, fps, None if direction is None else direction.palette)),
            jnp.int32(loud[0] if loud.size else 0),
            c_dim=c_dim,
            smooth_frames=max(1, int(round(params.class_smooth_seconds * fps))),
            gain=jnp.asarray(values["class_pitch_react"] * np.float32(LSD_REFERENCE_FPS / fps)),
            complexity=jnp.asarray(values["class_complexity"]),
        )
        c = np.asarray(c)
    z = np.asarray(z)
    if direction is not None:
        z = directed_latents(z, key, direction, params.truncation)
    if is_loop(params):  # the seam: the last frame leads into the first like any other step
        z, c = close_loop(z), close_loop(c) if c_dim else c
    return Latents(z, c)


@jax.jit
def _transform_path(
    key: Array, motion: Array, rotate_react: Array, translate_react: Array, fps: Array
) -> tuple[Array, Array, Array]:
    n = motion.shape[0]
    k_dir, k_turn, k_sign = jax.random.split(key, 3)
    spin = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
    angle = spin * 2.0 * jnp.pi * jnp.cumsum(rotate_react * motion) / fps
    # the slide's heading wanders slowly (a smooth random walk, ~1 rad per 4 s)
    heading = jax.random.uniform(k_dir, (), minval=0.0, maxval=2 * jnp.pi) + jnp.cumsum(
        jax.random.normal(k_turn, (n,)) * (0.5 / jnp.sqrt(fps))
    )
    speed = translate_react * motion / fps
    return angle, jnp.cumsum(speed * jnp.cos(heading)), jnp.cumsum(speed * jnp.sin(heading))


def transform_path(
    motion: np.ndarray, params: RenderParams, *, fps: float, values: Mapping[str, np.ndarray] | None = None
) -> tuple[np.ndarray, ...]:
    """StyleGAN3 input transform per frame from the motion envelope: (angle rad, tx, ty), each (N,).
    ``values``: the timeline parameters per frame, as :func:`make_latents` takes them.

    The angle advances ``rotate_react`` turns per second at full motion loudness, in a direction
    chosen by ``seed``; the image slides ``translate_react`` image widths per second along a slowly
    wandering heading. Still music leaves the image still.
    """
    key = jax.random.fold_in(jax.random.key(params.seed), 3)
    if values is None:
        values = frame_values(params, len(motion), fps)
    out = _transform_path(
        key,
        jnp.asarray(motion, jnp.float32),
        jnp.asarray(values["rotate_react"]),
        jnp.asarray(values["translate_react"]),
        float(fps),
    )
    out = tuple(np.asarray(a, np.float32) for a in out)
    return tuple(close_loop(a) for a in out) if is_loop(params) else out


def is_loop(params: RenderParams) -> bool:
    """Whether the render is a seamless loop (``loop_seconds`` or ``loop_bars``)."""
    return params.loop_seconds is not None or params.loop_bars is not None


def close_loop(path: np.ndarray) -> np.ndarray:
    """A per-frame path (N, ...) bent to close on itself: frame N (one past the last) would be frame 0.

    The last step continued gives where frame N would have been; a linear ramp ``i / N`` of the miss is taken
    off frame i. Every step changes by the same ``miss / N``, and the step from the last frame back to the first
    equals the last step: no jump at the seam. Frame 0 is unchanged. Paths shorter than 3 frames are returned
    as they are."""
    x = np.asarray(path, np.float32)
    n = x.shape[0]
    if n < 3:
        return x
    miss = (2.0 * x[-1] - x[-2]) - x[0]  # where frame N would be, minus frame 0
    ramp = (np.arange(n, dtype=np.float32) / n).reshape((n,) + (1,) * (x.ndim - 1))
    return (x - ramp * miss).astype(np.float32)


def live_factor(key: Array, segment: int, z_dim: int, motion_randomness: float) -> np.ndarray:
    """Stretch ``segment``'s speed factors (D,) on an open-ended (live) path (see :func:`motion_factors`)."""
    k = jax.random.fold_in(motion_keys(key)[2], segment)
    return np.where(np.asarray(jax.random.bernoulli(k, 0.5, (z_dim,))), 1.0, 1.0 - motion_randomness).astype(np.float32)
