"""Keyframe images: blend the music-driven latent path into each keyframe latent and back out again.

::

    ws = blend_keyframes(ws, key_ws, key_frames, window_frames)    # (N, L, D)

For frame t and keyframes at frames f_k (sorted here) with half-window W:

* each keyframe's weight is a raised cosine ``a_k(t) = ½(1 + cos(π (t − f_k)/W))`` for ``|t − f_k| < W``, else 0;
  together ``α(t) = 1 − Π_k (1 − a_k(t))`` (C¹; exactly 1 on each keyframe frame, exactly 0 outside every window);
* the keyframe path ``K(t)`` is ``key_ws[k]`` near f_k; between consecutive keyframes whose windows overlap
  (``f_{k+1} − f_k < 2W``) it eases from one to the next (raised cosine over the middle ``2h`` frames, with
  ``h = min(g/2, W − g/2)`` for gap g) instead of returning to the music in between; otherwise it switches at the
  midpoint, where α is 0;
* the result is ``(1 − α)·ws + α·K`` — exactly ``key_ws[k]`` at ``f_k``, exactly ``ws`` outside every window, and
  continuous everywhere.

``window_frames`` is the half-width: the blend in starts W frames before the keyframe and the blend out ends W
frames after it (W = keyframe_window_seconds · fps). W = 0 shows the keyframe on its frame alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _ease(u: Array) -> Array:
    e = 0.5 - 0.5 * jnp.cos(jnp.pi * u)
    return jnp.where(u <= 0, 0.0, jnp.where(u >= 1, 1.0, e))


def keyframe_weight(frames: int | Array, key_frames: Array, window_frames: Array | float) -> Array:
    """α(t) for t = 0..frames−1 (an int) or for the given frame indices (an array): (N,) float32 in [0, 1]
    (see the module docstring)."""
    t = (
        jnp.arange(frames, dtype=jnp.float32)
        if isinstance(frames, int)
        else jnp.asarray(frames, jnp.float32).reshape(-1)
    )[:, None]
    f = jnp.asarray(key_frames, jnp.float32)[None, :]
    w = jnp.maximum(jnp.asarray(window_frames, jnp.float32), 1e-6)
    d = jnp.abs(t - f) / w
    a = jnp.where(d < 1.0, 0.5 + 0.5 * jnp.cos(jnp.pi * jnp.minimum(d, 1.0)), 0.0)
    a = jnp.where(d == 0, 1.0, a)
    return 1.0 - jnp.prod(1.0 - a, axis=1)


@jax.jit
def blend_keyframes(
    ws: Array, key_ws: Array, key_frames: Array, window_frames: Array | float, frames: Array | None = None
) -> Array:
    """ws (N, L, D), key_ws (K, L, D) (or (K, D), one w for every layer), key_frames (K,) frame indices (any
    order, may lie outside the clip), window_frames (half-width, frames) → ws (N, L, D). ``frames``: the frame
    index of each row of ``ws`` (default ``0..N−1``; pass a batch's indices to blend inside a batched frame step —
    the result is the same as blending the whole timeline and slicing). Pure and jittable; all arguments may be
    traced. See the module docstring for the exact blend."""
    ws = jnp.asarray(ws, jnp.float32)
    n, L, D = ws.shape
    key_ws = jnp.asarray(key_ws, jnp.float32)
    if key_ws.ndim == 2:
        key_ws = jnp.broadcast_to(key_ws[:, None, :], (key_ws.shape[0], L, D))
    k = key_ws.shape[0]
    if key_ws.shape[1:] != (L, D):
        raise ValueError(f"key_ws must have shape (K, {L}, {D}) or (K, {D}), got {key_ws.shape}")
    f = jnp.asarray(key_frames, jnp.float32).reshape(k)
    order = jnp.argsort(f)
    f, key_ws = f[order], key_ws[order]
    w = jnp.maximum(jnp.asarray(window_frames, jnp.float32), 0.0)
    t = jnp.arange(n, dtype=jnp.float32) if frames is None else jnp.asarray(frames, jnp.float32).reshape(n)

    alpha = keyframe_weight(t, f, w)  # (N,)

    # the keyframe path K(t)
    if k == 1:
        path = jnp.broadcast_to(key_ws[0], (n, L, D))
    else:
        s = jnp.clip(jnp.searchsorted(f, t, side="right") - 1, 0, k - 2)
        f0, f1 = f[s], f[s + 1]
        g = f1 - f0
        h = jnp.clip(jnp.minimum(0.5 * g, w - 0.5 * g), 0.0, None)
        lo = f0 + 0.5 * g - h
        u = jnp.where(h > 0, (t - lo) / jnp.maximum(2.0 * h, 1e-6), jnp.where(t >= f0 + 0.5 * g, 1.0, 0.0))
        u = jnp.where(t <= f0, 0.0, jnp.where(t >= f1, 1.0, u))
        e = _ease(jnp.clip(u, 0.0, 1.0))[:, None, None]
        a, b = key_ws[s], key_ws[s + 1]
        path = jnp.where(e <= 0, a, jnp.where(e >= 1, b, a * (1.0 - e) + b * e))

    al = alpha[:, None, None]
    out = (1.0 - al) * ws + al * path
    return jnp.where(al <= 0, ws, jnp.where(al >= 1, path, out))
