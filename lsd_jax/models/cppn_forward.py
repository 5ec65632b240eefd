"""The embedded default style: a CPPN (compositional pattern-producing network), as pure functions of its
parameter dict.

A CPPN maps each pixel's coordinates, together with the latent ``z``, through a small MLP to a
colour. It needs no trained weights (its weights are fixed random numbers drawn from a constant
seed), renders any resolution and aspect ratio natively (coordinates are continuous),
and is a smooth function of ``z``, so the music's latent walk becomes flowing abstract art.
Its 12 class inputs tint the palette, so chroma-driven classes show up as colour changes.

Parameters (:func:`init_variables`): ``freqs`` (2, F), ``w_in`` (3 + 4F, H), ``w_z`` (L, z_dim, H),
``w_h`` (L−1, H, H), ``w_out`` (H, 3), ``palette`` (c_dim, 3, 3).

Cost. The MLP's output (a hue and a lightness field) is low-frequency, so it is evaluated on a grid of about
``GRID`` points across the short side (``grid_step``: every k-th output pixel, k an integer) and
upsampled with a Catmull-Rom spline; only the cosine palette, whose colour bands are the sharp part of the
image, runs at every output pixel. The grid's spacing in image coordinates is the same at every output size, so
the look does not depend on the resolution (at 512² the spline is within ~6/255 of evaluating every pixel:
64 dB). The MLP's sines are a polynomial (``fast_sin``, error < 1e-6; XLA's CPU ``sin`` costs ~3 tanh).
Per 512² frame: ~0.1 GFLOP of MLP on the grid plus ~60 FLOP per output pixel.

The pulse. A Lucid Sonic Dreams pulse adds the same amount to every dimension of ``z`` while the drift moves
each dimension its own way, so ``mean(z)`` is (almost only) the pulse. The network splits ``z`` into that mean
and the rest: the rest steers the layers at ``DRIFT_GAIN`` of the weights' scale, the mean at
``PULSE_GAIN`` times, and the mean also zooms the image in (``PULSE_ZOOM``) and lightens it
(``PULSE_LIGHT``): the beat reads as a kick toward the viewer over a calmer drift (issue #17). This only
concerns this style: ``pulse_react`` / ``motion_react`` mean the same for every style.

No Flax here: the default style's render step runs :class:`CPPNProgram` on the parameters of
:func:`init_variables`, so a render with the default style never loads Flax (~0.6 s of a process's start on two
cores). Its weights are fixed, so it needs no loader (:func:`lsd_jax.styles.resolve.cppn_style` builds the style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

Z_DIM = 512
C_DIM = 12
HIDDEN = 32
N_LAYERS = 4
N_FREQS = 6
WEIGHT_SEED = 20260  # fixed: the default style must look the same on every machine
GRID = 128  # MLP samples across the short side (at least); the output is a spline through them
DRIFT_GAIN = 0.45  # response to z's drift (every direction but the mean), relative to w_z
PULSE_GAIN = 2.0  # response to mean(z), the pulse direction, relative to w_z
PULSE_ZOOM = 0.35  # the image zooms in by 1 + PULSE_ZOOM * tanh(mean(z))
PULSE_LIGHT = 0.5  # ... and lightens


def init_variables(z_dim: int = Z_DIM, c_dim: int = C_DIM, seed: int = WEIGHT_SEED) -> dict[str, np.ndarray]:
    """Fixed random weights (NumPy, so they are identical on every backend), float32."""
    rng = np.random.default_rng(seed)
    n_in = 3 + 4 * N_FREQS
    weights = {
        "freqs": rng.normal(0.0, 2.2, (2, N_FREQS)).astype(np.float32),
        "w_in": rng.normal(0.0, 1.0, (n_in, HIDDEN)).astype(np.float32) / np.sqrt(n_in / 2),
        "w_z": rng.normal(0.0, 1.0, (N_LAYERS, z_dim, HIDDEN)).astype(np.float32) * (0.6 / np.sqrt(z_dim)),
        "w_h": rng.normal(0.0, 1.0, (N_LAYERS - 1, HIDDEN, HIDDEN)).astype(np.float32) * (1.6 / np.sqrt(HIDDEN)),
        "w_out": rng.normal(0.0, 1.0, (HIDDEN, 3)).astype(np.float32) * (1.8 / np.sqrt(HIDDEN)),
        # each class is a colour transform: rotate the palette by a random 3x3 near-rotation
        "palette": np.stack([_rotation(rng) for _ in range(max(c_dim, 1))])[:c_dim].astype(np.float32),
    }
    return {k: v.astype(np.float32) for k, v in weights.items()}  # a float64 scale must not widen a weight


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return (q * np.sign(np.diag(r))) - np.eye(3)


def fast_sin(x: Array) -> Array:
    """sin(x) to < 1e-6 for |x| up to ~1e3: a reduction to a quarter period and an even polynomial (Taylor to
    degree 10 of cos on [-pi/2, pi/2]); about 4x cheaper than XLA's CPU sin."""
    t = x * (0.5 / math.pi)
    t = t - jnp.round(t)  # x = 2 pi t (mod 2 pi), t in [-1/2, 1/2]
    b = (2.0 * jnp.abs(t) - 0.5) * math.pi  # sin(2 pi |t|) = cos(b), |b| <= pi/2
    b2 = b * b
    c = 1.0 + b2 * (-1 / 2 + b2 * (1 / 24 + b2 * (-1 / 720 + b2 * (1 / 40320 + b2 * (-1 / 3628800)))))
    return jnp.where(t < 0, -c, c)


def grid_step(size: tuple[int, int]) -> int:
    """k: the MLP runs on every k-th output pixel (k = short side // :data:`GRID`, at least 1)."""
    return max(1, min(size) // GRID)


def coordinates(size: tuple[int, int], step: int = 1) -> np.ndarray:
    """(h'*w', 3) float32: x, y (the short side of the OUTPUT spans [-1, 1]) and the radius of the MLP's samples.

    ``step`` 1: every output pixel's centre. ``step`` k > 1: output positions ``k i + (k - 1) / 2`` for
    ``i = -2 .. ceil(n / k) + 1`` on each axis (two samples beyond each edge for the spline)."""
    h, w = size
    s = float(min(h, w))
    pad = 2 if step > 1 else 0

    def axis(n: int) -> np.ndarray:
        i = np.arange(-pad, -(-n // step) + pad, dtype=np.float64)
        return (i * step + (step - 1) / 2 - (n - 1) / 2) / (s / 2)

    yy, xx = np.meshgrid(axis(h), axis(w), indexing="ij")
    return np.stack([xx.ravel(), yy.ravel(), np.sqrt(xx**2 + yy**2).ravel()], axis=-1).astype(np.float32)


def _catmull_rom(step: int) -> np.ndarray:
    """(step, 5) weights of samples i-2..i+2 for output pixel ``step i + j`` (Catmull-Rom, a = -1/2)."""
    w = np.zeros((step, 5))
    for j in range(step):
        d = (j - (step - 1) / 2) / step  # the pixel's offset from sample i, in samples
        for tap in range(-2, 3):
            x = abs(d - tap)
            w[j, tap + 2] = (1.5 * x - 2.5) * x * x + 1 if x < 1 else ((-0.5 * x + 2.5) * x - 4) * x + 2 if x < 2 else 0
    return w


def upsample(x: Array, step: int, size: tuple[int, int]) -> Array:
    """(B, h', w', C) samples from :func:`coordinates` (``step`` > 1) -> (B, H, W, C) by a separable
    Catmull-Rom spline: shifted-slice sums per output phase (XLA fuses them; no resize matrix)."""
    weights = _catmull_rom(step)
    for axis, n in ((1, size[0]), (2, size[1])):
        m = x.shape[axis] - 4

        def tap(t: int, x: Array = x, m: int = m, axis: int = axis) -> Array:
            return jax.lax.slice_in_dim(x, t, t + m, axis=axis)

        phases = [sum(float(wt) * tap(t) for t, wt in enumerate(row) if wt != 0.0) for row in weights]
        y = jnp.stack(phases, axis=axis + 1)
        shape = list(x.shape)
        shape[axis] = m * step
        x = jax.lax.slice_in_dim(y.reshape(shape), 0, n, axis=axis)
    return x


Params = dict[str, Any]  # freqs, w_in, w_z, w_h, w_out, palette: arrays as in init_variables


def fields(p: Params, z: Array, size: tuple[int, int], step: int) -> Array:
    """The MLP on the sample grid: z (B, z_dim) -> (B, h', w', 2): hue and lightness (before the sigmoid)."""
    dt = z.dtype
    m = jnp.mean(z, axis=-1, keepdims=True)  # (B, 1): the pulse
    zoom = 1.0 / (1.0 + PULSE_ZOOM * jnp.tanh(m))
    xyr = jnp.asarray(coordinates(size, step), dt)  # (P, 3)
    xyr = xyr[None] * zoom[:, :, None]  # (B, P, 3)
    ang = xyr[..., :2] @ p["freqs"]  # (B, P, F)
    r = xyr[..., 2:3]
    feats = jnp.concatenate(
        [
            xyr,
            fast_sin(ang),
            fast_sin(ang + 0.5 * math.pi),
            fast_sin(2.0 * ang + r),
            fast_sin(3.0 * ang - r + 0.5 * math.pi),
        ],
        axis=-1,
    )
    w_z = p["w_z"]
    zb = DRIFT_GAIN * jnp.einsum("bd,ldh->lbh", z - m, w_z) + PULSE_GAIN * m[None] * w_z.sum(axis=1)[:, None, :]
    x = fast_sin(feats @ p["w_in"] + zb[0][:, None, :])  # (B, P, H)
    for i in range(N_LAYERS - 1):
        pre = x @ p["w_h"][i] + zb[i + 1][:, None, :]
        x = fast_sin(pre) if i % 2 else jnp.tanh(pre)
    field = x @ p["w_out"]  # (B, P, 3): hue, light, detail
    hue = 0.35 * field[..., 0] + 0.1 * fast_sin(3.0 * field[..., 2])
    light = 1.5 * field[..., 1] + 0.8 + PULSE_LIGHT * m
    h, w = size
    n_h, n_w = (h, w) if step == 1 else (-(-h // step) + 4, -(-w // step) + 4)
    return jnp.stack([hue, light], axis=-1).reshape(z.shape[0], n_h, n_w, 2)


def images(p: Params, z: Array, c: Array, size: tuple[int, int], step: int | None = None) -> Array:
    """The batched forward: z (B, z_dim), c (B, c_dim) -> (B, H, W, 3) float32 in [-1, 1]. ``step``: the MLP's
    sample spacing in output pixels (default :func:`grid_step`; 1 evaluates every pixel)."""
    z = z.astype(p["w_z"].dtype)
    step = grid_step(size) if step is None else step
    f = fields(p, z, size, step)
    if step > 1:
        f = upsample(f, step, size)
    hue, light = f[..., :1], f[..., 1:]
    # cosine palette: colour = 0.5 + 0.5 cos(2 pi (hue + phase)); classes shift the phases
    phase = jnp.array([0.0, 0.33, 0.67], z.dtype) + 0.15 * jnp.tanh(z[:, :3])
    if c.shape[-1]:
        phase = phase + jnp.einsum("bc,ci->bi", c.astype(z.dtype), p["palette"][:, 0]) / jnp.sqrt(c.shape[-1])
    # cos(a + p) = cos a cos p - sin a sin p: one sine pair per pixel, the phases' per frame
    a = 2.0 * math.pi * hue
    cos_p, sin_p = jnp.cos(2.0 * math.pi * phase), jnp.sin(2.0 * math.pi * phase)  # (B, 3)
    wave = fast_sin(a + 0.5 * math.pi) * cos_p[:, None, None, :] - fast_sin(a) * sin_p[:, None, None, :]
    lum = 0.65 + 0.35 * jnp.tanh(0.5 * light)  # 0.3 + 0.7 sigmoid(light): never a black frame
    return lum * (1.0 + wave) - 1.0  # = 2 * lum * (0.5 + 0.5 wave) - 1


def frames(p: Params, z: Array, c: Array, size: tuple[int, int]) -> Array:
    """:func:`images` as the render step runs it. On one CPU device the frames go one at a time through a
    ``lax.map`` inside the compiled step: a frame's activations stay in cache (measured on 2 cores: ~4x faster per
    frame than the batched form at batch 8). A batch sharded over several devices stays batched."""
    if z.shape[0] > 1 and jax.default_backend() == "cpu" and jax.local_device_count() == 1:
        return jax.lax.map(lambda zc: images(p, zc[0][None], zc[1][None], size)[0], (z, c))
    return images(p, z, c, size)


@dataclass(frozen=True)
class CPPNProgram:
    """The default style's program for the render step (see :mod:`lsd_jax.styles.style`): ``variables["model"]`` holds
    the parameters of :func:`init_variables`. Hashable by value: every render shares one compiled step."""

    z_dim: int = Z_DIM
    c_dim: int = C_DIM

    def __call__(self, variables: dict[str, Any], inputs: dict[str, Array], size: tuple[int, int]) -> Array:
        return frames(variables["model"], inputs["z"], inputs["c"], size)
