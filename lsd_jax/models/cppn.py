"""The embedded default style: a CPPN (compositional pattern-producing network) as a Flax NNX module.

A CPPN maps each pixel's coordinates, together with the latent ``z``, through a small MLP to a
colour. It needs no trained weights (its weights are fixed random numbers drawn from a constant
seed), renders any resolution and aspect ratio natively (coordinates are continuous),
and is a smooth function of ``z``, so the music's latent walk becomes flowing abstract art.
Its 12 class inputs tint the palette, so chroma-driven classes show up as colour changes.

Parameters (``nnx.Param``): ``freqs`` (2, F), ``w_in`` (3 + 4F, H), ``w_z`` (L, z_dim, H), ``w_h`` (L−1, H, H),
``w_out`` (H, 3), ``palette`` (c_dim, 3, 3).

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

The forward, its constants (``GRID``, ``DRIFT_GAIN``, ``PULSE_*``) and ``grid_step``/``fast_sin`` live in
:mod:`lsd_jax.models.cppn_forward`.
"""

from __future__ import annotations

import jax
from flax import nnx

from . import cppn_forward as _fwd
from .cppn_forward import C_DIM, WEIGHT_SEED, Z_DIM, init_variables

Array = jax.Array
PARAM_NAMES = ("freqs", "w_in", "w_z", "w_h", "w_out", "palette")


class CPPN(nnx.Module):
    """The embedded style's network; ``CPPN(z_dim, c_dim)`` holds the fixed weights of :func:`init_variables`.
    Its forward is :mod:`lsd_jax.models.cppn_forward`'s, on this module's parameters."""

    family = "cppn"

    def __init__(self, z_dim: int = Z_DIM, c_dim: int = C_DIM, seed: int = WEIGHT_SEED):
        for name, value in init_variables(z_dim, c_dim, seed).items():
            setattr(self, name, nnx.Param(jax.device_put(value)))  # jnp.asarray would compile a copy per shape
        self.z_dim, self.c_dim = z_dim, c_dim

    def params(self) -> dict[str, Array]:
        """The parameters as a plain dict (what the pure forward takes)."""
        return {name: getattr(self, name)[...] for name in PARAM_NAMES}

    def __call__(self, z: Array, c: Array, size: tuple[int, int]) -> Array:
        """z: (B, z_dim), c: (B, c_dim), size: static (H, W) -> images (B, H, W, 3) float32 in [-1, 1]
        (:func:`~lsd_jax.models.cppn_forward.frames`)."""
        return _fwd.frames(self.params(), z, c, size)

    def images(self, z: Array, c: Array, size: tuple[int, int], step: int | None = None) -> Array:
        """The batched forward (:func:`~lsd_jax.models.cppn_forward.images`; ``step`` 1: every pixel)."""
        return _fwd.images(self.params(), z, c, size, step)

    def fields(self, z: Array, size: tuple[int, int], step: int) -> Array:
        """The MLP's hue and lightness on the sample grid (:func:`~lsd_jax.models.cppn_forward.fields`)."""
        return _fwd.fields(self.params(), z.astype(self.w_z.dtype), size, step)

    def frame_images(self, inputs: dict[str, Array], settings: dict[str, Array], *, size: tuple[int, int],
                     consts: object = None) -> Array:
        """The render step's entry point (see :mod:`lsd_jax.models`)."""
        return self(inputs["z"], inputs["c"], size)
