"""The embedded default style: a CPPN (compositional pattern-producing network) as a Flax NNX module.

A CPPN maps each pixel's coordinates, together with the latent ``z``, through a small MLP to a
colour. It needs no trained weights (its weights are fixed random numbers drawn from a constant
seed), renders any resolution and aspect ratio natively (coordinates are continuous),
and is a smooth function of ``z``, so the music's latent walk becomes flowing abstract art.
Its 12 class inputs tint the palette, so chroma-driven classes show up as colour changes.

Parameters (``nnx.Param``): ``freqs`` (2, F), ``w_in`` (3 + 4F, H), ``w_z`` (L, z_dim, H), ``w_h`` (L−1, H, H),
``w_out`` (H, 3), ``palette`` (c_dim, 3, 3). Cost per pixel is a few 32-wide dense layers: about 4 kFLOP, i.e.
~1 GFLOP per 512x512 frame.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

Array = jax.Array

Z_DIM = 512
C_DIM = 12
HIDDEN = 32
N_LAYERS = 4
N_FREQS = 6
WEIGHT_SEED = 20260  # fixed: the default style must look the same on every machine


def init_variables(z_dim: int = Z_DIM, c_dim: int = C_DIM, seed: int = WEIGHT_SEED) -> dict[str, np.ndarray]:
    """Fixed random weights (NumPy, so they are identical on every backend)."""
    rng = np.random.default_rng(seed)
    n_in = 3 + 4 * N_FREQS
    return {
        "freqs": rng.normal(0.0, 2.2, (2, N_FREQS)).astype(np.float32),
        "w_in": rng.normal(0.0, 1.0, (n_in, HIDDEN)).astype(np.float32) / np.sqrt(n_in / 2),
        "w_z": rng.normal(0.0, 1.0, (N_LAYERS, z_dim, HIDDEN)).astype(np.float32) * (0.6 / np.sqrt(z_dim)),
        "w_h": rng.normal(0.0, 1.0, (N_LAYERS - 1, HIDDEN, HIDDEN)).astype(np.float32) * (1.6 / np.sqrt(HIDDEN)),
        "w_out": rng.normal(0.0, 1.0, (HIDDEN, 3)).astype(np.float32) * (1.8 / np.sqrt(HIDDEN)),
        # each class is a colour transform: rotate the palette by a random 3x3 near-rotation
        "palette": np.stack([_rotation(rng) for _ in range(max(c_dim, 1))])[:c_dim].astype(np.float32),
    }


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return (q * np.sign(np.diag(r))) - np.eye(3)


def coordinates(size: tuple[int, int]) -> Array:
    """(H*W, 3): x, y (the short side spans [-1, 1]) and the radius."""
    h, w = size
    s = float(min(h, w))
    ys = (jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2) / (s / 2)
    xs = (jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2) / (s / 2)
    yy, xx = jnp.meshgrid(ys, xs, indexing="ij")
    return jnp.stack([xx.ravel(), yy.ravel(), jnp.sqrt(xx**2 + yy**2).ravel()], axis=-1)


class CPPN(nnx.Module):
    """The embedded style's network; ``CPPN(z_dim, c_dim)`` holds the fixed weights of :func:`init_variables`."""

    family = "cppn"

    def __init__(self, z_dim: int = Z_DIM, c_dim: int = C_DIM, seed: int = WEIGHT_SEED):
        for name, value in init_variables(z_dim, c_dim, seed).items():
            setattr(self, name, nnx.Param(jnp.asarray(value)))
        self.z_dim, self.c_dim = z_dim, c_dim

    def __call__(self, z: Array, c: Array, size: tuple[int, int]) -> Array:
        """z: (B, z_dim), c: (B, c_dim), size: static (H, W) -> images (B, H, W, 3) float32 in [-1, 1]."""
        h, w = size
        z = z.astype(self.w_z.dtype)
        xyr = coordinates(size).astype(z.dtype)  # (P, 3)
        ang = xyr[:, :2] @ self.freqs[...]  # (P, F)
        feats = jnp.concatenate([xyr, jnp.sin(ang), jnp.cos(ang), jnp.sin(2.0 * ang + xyr[:, 2:3]),
                                 jnp.cos(3.0 * ang - xyr[:, 2:3])], axis=-1)
        zb = jnp.einsum("bd,ldh->lbh", z, self.w_z[...])  # (L, B, H): z steers every layer
        x = jnp.sin(feats @ self.w_in[...] + zb[0][:, None, :])  # (B, P, H)
        for i in range(N_LAYERS - 1):
            act = jnp.sin if i % 2 else jnp.tanh
            x = act(x @ self.w_h[...][i] + zb[i + 1][:, None, :])
        field = x @ self.w_out[...]  # (B, P, 3): hue, light, detail
        # cosine palette: colour = 0.5 + 0.5 cos(2 pi (hue + phase)); classes shift the phases
        phase = jnp.array([0.0, 0.33, 0.67], z.dtype) + 0.15 * jnp.tanh(z[:, :3])
        if c.shape[-1]:
            phase = phase + jnp.einsum("bc,ci->bi", c.astype(z.dtype), self.palette[...][:, 0]) / jnp.sqrt(
                c.shape[-1])
        hue = 0.35 * field[..., :1] + 0.1 * jnp.sin(3.0 * field[..., 2:3])
        light = 0.3 + 0.7 * jax.nn.sigmoid(1.5 * field[..., 1:2] + 0.8)  # never a black frame
        rgb = light * (0.5 + 0.5 * jnp.cos(2.0 * jnp.pi * (hue + phase[:, None, :])))
        return (2.0 * rgb - 1.0).reshape(z.shape[0], h, w, 3)

    def frame_images(self, inputs: dict[str, Array], settings: dict[str, Array], *, size: tuple[int, int],
                     consts: object = None) -> Array:
        """The render step's entry point (see :mod:`lsd_jax.models`)."""
        return self(inputs["z"], inputs["c"], size)
