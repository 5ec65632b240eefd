"""Arrays -> latents: per-frame ``z`` and class vectors from audio features.

The maths follows Lucid Sonic Dreams 0.4 (``generate_vectors`` / ``generate_class_vec``), with its
bugs fixed:

* keyframes are spread over the whole excerpt (no static tail, no doubled keyframes);
* motion is one ``lax.scan`` (LSD: an O(N^2) Python sum and a per-frame ``np.vectorize``);
* the bounce is an exact reflection, so ``z - pulse`` never leaves ``[-2 t, 2 t]`` for
  ``truncation = t`` (LSD overshoots by up to a few motion steps);
* everything is a pure function of the features, the parameters and ``seed``.

Shapes: N frames, D = z_dim, C = c_dim.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ParamError
from .params import RenderParams

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
    """Per-frame z. pulse, motion: (N,) envelopes in [0, 1] -> (N, z_dim) float32.

    ``z_i = reflect(base_i + drift_i) + pulse_i``: base interpolates between ``n_keyframes``
    truncated-normal keyframes scaled by ``truncation``; the drift accumulates an EMA of
    ``motion_react*20/fps * motion_i * sign * factor`` and bounces off ``+-2*truncation``; the pulse
    is an EMA of ``pulse_react * pulse_i``, added to every dimension (Lucid Sonic Dreams' kick).
    """
    n = pulse.shape[0]
    k_base, k_sign, k_fac = jax.random.split(key, 3)
    kf = max(n_keyframes, 1)
    keyframes = truncation * jax.random.truncated_normal(k_base, -2.0, 2.0, (kf, z_dim), jnp.float32)
    if positions is not None:  # beat lock: the keyframes sit on the given frames, eased between
        from .beats import interpolate_keyframes

        base = interpolate_keyframes(keyframes, positions, n)
    elif kf == 1:
        base = jnp.broadcast_to(keyframes[0], (n, z_dim))
    else:
        t = jnp.arange(n, dtype=jnp.float32) * ((kf - 1) / max(n - 1, 1))
        k0 = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, kf - 2)
        frac = (t - k0)[:, None]
        base = keyframes[k0] * (1.0 - frac) + keyframes[k0 + 1] * frac

    signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (z_dim,)), 1.0, -1.0)
    n_seg = -(-n // period)
    factors = jnp.where(jax.random.bernoulli(k_fac, 0.5, (n_seg, z_dim)), 1.0, 1.0 - motion_randomness)
    frame_factor_idx = jnp.arange(n) // period
    step_gain = motion_react * 20.0 / fps
    bound = 2.0 * truncation

    def body(carry, xs):
        pulse_ema, motion_ema, drift, signs = carry
        i, base_i, pulse_i, motion_i, seg = xs
        first = i == 0
        pulse_add = pulse_react * pulse_i
        motion_add = step_gain * motion_i * signs * factors[seg]
        pulse_ema = jnp.where(first, pulse_add, PULSE_SMOOTH * pulse_ema + (1 - PULSE_SMOOTH) * pulse_add)
        motion_ema = jnp.where(first, motion_add, MOTION_SMOOTH * motion_ema + (1 - MOTION_SMOOTH) * motion_add)
        pos, flipped = fold(base_i + drift + motion_ema, bound)
        direction = jnp.where(flipped, -1.0, 1.0)
        carry = (pulse_ema, motion_ema * direction, pos - base_i, signs * direction)
        return carry, pos + pulse_ema

    init = (jnp.float32(0.0), jnp.zeros(z_dim), jnp.zeros(z_dim), signs)
    xs = (jnp.arange(n), base, pulse.astype(jnp.float32), motion.astype(jnp.float32), frame_factor_idx)
    _, z = jax.lax.scan(body, init, xs)
    return z.astype(jnp.float32)


def _minmax_rows(v: Array) -> Array:
    """LSD's class-vector normalisation: min-max to [0, 1]. A flat vector becomes one-hot on
    class 0 (LSD adds 0.1 to it, which the next frame's min-max turns into a jump; this is the
    fixed point of that, so silence stays still)."""
    lo = v.min(axis=-1, keepdims=True)
    hi = v.max(axis=-1, keepdims=True)
    flat = hi - lo <= 0
    scaled = (v - lo) / jnp.where(flat, 1.0, hi - lo)
    one_hot = jnp.zeros_like(v).at[..., 0].set(1.0)
    return jnp.where(flat, one_hot, scaled)


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
    drives at each frame -> (N, c_dim).

    ``v_0`` is the chroma of the first non-silent frame scattered into classes; then
    ``v_i = complexity * minmax(v_{i-1} + gain * scatter(chroma_i))``, finally smoothed by block
    means over ``smooth_frames`` frames, linearly interpolated (Lucid Sonic Dreams' scheme).
    A class that several pitches drive (a class list shorter than 12 is repeated) takes the value of
    the last of them, as Lucid Sonic Dreams' ``dict(zip(classes, chroma))`` does.
    """
    n = chroma.shape[0]

    def scatter(row, classes):
        # only the last pitch of each class counts: drop a pitch when a later one drives the same class
        later = jnp.triu(classes[:, None] == classes[None, :], k=1).any(axis=1)
        return jnp.zeros(c_dim, jnp.float32).at[classes].add(jnp.where(later, 0.0, row))

    v0 = complexity * _minmax_rows(scatter(chroma[first_frame], pitch_class[0]))

    def body(v, xs):
        row, classes = xs
        v = complexity * _minmax_rows(v + gain * scatter(row, classes))
        return v, v

    _, rest = jax.lax.scan(body, v0, (chroma[1:], pitch_class[1:]))
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


def class_schedule(params: RenderParams, c_dim: int, chroma: np.ndarray, fps: float) -> np.ndarray:
    """The class each pitch drives at each frame: (N, 12) int32.

    Lucid Sonic Dreams' rules: ``classes`` (default: ``min(C, 12)`` distinct random classes from
    ``seed``) repeated to 12; with ``dominant_classes_first`` the first class goes to the most
    dominant pitch, the second to the next, ...; at each shuffle time the pitch-ordered list rotates
    by ``round(class_shuffle_strength*12)`` (pitch p takes the class of pitch p + k).
    """
    n = chroma.shape[0]
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
    if params.dominant_classes_first:
        col = chroma / np.maximum(chroma.sum(axis=1, keepdims=True), 1e-12)
        pitch_order = np.argsort(-col.sum(axis=0), kind="stable")
    rot = np.zeros(n, dtype=np.int64)
    k = int(round(params.class_shuffle_strength * 12))
    shuffle = params.class_shuffle_seconds
    if shuffle is not None and k:
        if isinstance(shuffle, tuple):
            frames = sorted({int(round((t - params.start) * fps)) for t in shuffle})
            hits = np.zeros(n, dtype=np.int64)
            for f in frames:
                if 0 < f < n:
                    hits[f] += 1
        else:
            every = max(1, int(round(shuffle * fps)))
            hits = ((np.arange(n) % every) == 0).astype(np.int64)
            hits[0] = 0
        rot = np.cumsum(hits) * k
    table = np.zeros((n, 12), dtype=np.int32)
    base = np.empty(12, dtype=np.int32)  # the class of each pitch before any shuffle
    base[pitch_order] = classes
    for r in np.unique(rot % 12):
        table[(rot % 12) == r] = np.roll(base, -int(r))
    return table


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
) -> Latents:
    """All latents for a render. pulse, motion: (N,); chroma: (N, 12) -> z (N, D), c (N, C).

    ``keyframe_positions``: frames on which to place the latent keyframes (beat lock) instead of
    spreading ``speed_fpm`` of them evenly."""
    pulse = np.asarray(pulse, np.float32)
    n = pulse.shape[0]
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
        pulse_react=params.pulse_react,
        motion_react=params.motion_react,
        motion_randomness=params.motion_randomness,
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
            jnp.asarray(class_schedule(params, c_dim, chroma, fps)),
            jnp.int32(loud[0] if loud.size else 0),
            c_dim=c_dim,
            smooth_frames=max(1, int(round(params.class_smooth_seconds * fps))),
            gain=params.class_pitch_react * LSD_REFERENCE_FPS / fps,
            complexity=params.class_complexity,
        )
        c = np.asarray(c)
    return Latents(np.asarray(z), c)


@jax.jit
def _transform_path(key: Array, motion: Array, rotate_react: Array, translate_react: Array,
                    fps: Array) -> tuple[Array, Array, Array]:
    n = motion.shape[0]
    k_dir, k_turn, k_sign = jax.random.split(key, 3)
    spin = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
    angle = spin * 2.0 * jnp.pi * jnp.cumsum(rotate_react * motion) / fps
    # the slide's heading wanders slowly (a smooth random walk, ~1 rad per 4 s)
    heading = jax.random.uniform(k_dir, (), minval=0.0, maxval=2 * jnp.pi) + jnp.cumsum(
        jax.random.normal(k_turn, (n,)) * (0.5 / jnp.sqrt(fps)))
    speed = translate_react * motion / fps
    return angle, jnp.cumsum(speed * jnp.cos(heading)), jnp.cumsum(speed * jnp.sin(heading))


def transform_path(motion: np.ndarray, params: RenderParams, *, fps: float) -> tuple[np.ndarray, ...]:
    """StyleGAN3 input transform per frame from the motion envelope: (angle rad, tx, ty), each (N,).

    The angle advances ``rotate_react`` turns per second at full motion loudness, in a direction
    chosen by ``seed``; the image slides ``translate_react`` image widths per second along a slowly
    wandering heading. Still music leaves the image still.
    """
    key = jax.random.fold_in(jax.random.key(params.seed), 3)
    out = _transform_path(key, jnp.asarray(motion, jnp.float32), params.rotate_react, params.translate_react,
                          float(fps))
    return tuple(np.asarray(a, np.float32) for a in out)
