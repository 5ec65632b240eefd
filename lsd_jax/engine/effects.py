"""Image effects driven by audio envelopes, as pure array functions.

An effect is ``func(array, strength, amplitude) -> array`` (Lucid Sonic Dreams' signature) on one
frame ``array`` of shape (H, W, 3):

* a JAX-traceable ``func`` is vmapped over the batch and fused into the compiled frame step; it
  sees float32 values in [0, 255] and its result is clipped to [0, 255];
* a NumPy-only ``func`` (e.g. scikit-image's ``swirl``) runs on the host, per frame, on uint8
  arrays, exactly as Lucid Sonic Dreams called it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParamError
from ..params import EffectsGenerator

__all__ = ["EffectsGenerator", "apply_fused", "apply_host", "contrast_effect", "flash_effect"]

Array = jax.Array

# ITU-R 601 luma weights, as PIL uses for mode "L".
_LUMA = jnp.array([0.299, 0.587, 0.114], jnp.float32)


def contrast_effect(array: Array, strength: float, amplitude: Array) -> Array:
    """PIL ``ImageEnhance.Contrast`` with factor ``1 + amplitude*strength``.

    array: (H, W, 3) float in [0, 255]. Blends away from the image's mean grey level.
    """
    mean = jnp.mean(array @ _LUMA)
    factor = 1.0 + amplitude * strength
    return jnp.clip(mean + factor * (array - mean), 0.0, 255.0)


def flash_effect(array: Array, strength: float, amplitude: Array) -> Array:
    """Brightening flash: ``rescale_intensity(array, in_range=(0, 255*(1 - amplitude*strength)))``.

    array: (H, W, 3) float in [0, 255]. The cut is floored at 1/255 so that amplitude*strength = 1
    gives a white frame instead of Lucid Sonic Dreams' division by zero.
    """
    hi = 255.0 * jnp.maximum(1.0 - amplitude * strength, 1.0 / 255.0)
    return jnp.clip(array / hi, 0.0, 1.0) * 255.0


def apply_fused(
    frames: Array, funcs: tuple[Callable[..., Any], ...], strengths: tuple[float, ...], amplitudes: Array
) -> Array:
    """Apply traceable effects in order. frames: (B, H, W, 3) in [0, 255]; amplitudes: (B, E)."""
    for k, (func, strength) in enumerate(zip(funcs, strengths)):
        one = lambda img, amp, func=func, strength=strength: func(img, strength, amp)  # noqa: E731
        frames = jnp.clip(jax.vmap(one)(frames, amplitudes[:, k]).astype(jnp.float32), 0.0, 255.0)
    return frames


def apply_host(
    frames: np.ndarray, funcs: tuple[Callable[..., Any], ...], strengths: tuple[float, ...], amplitudes: np.ndarray
) -> np.ndarray:
    """Apply NumPy-only effects per frame. frames: (B, H, W, 3) uint8; amplitudes: (B, E)."""
    if not funcs:
        return frames
    out = np.empty_like(frames)
    for b in range(frames.shape[0]):
        img = frames[b]
        for k, (func, strength) in enumerate(zip(funcs, strengths)):
            res = np.asarray(func(img, strength, float(amplitudes[b, k])))
            if res.shape != img.shape:
                raise ParamError(f"effect {func!r} returned shape {res.shape}, expected {img.shape}")
            if res.dtype != np.uint8:
                # skimage-style functions return floats in [0, 1]; uint8-style ones in [0, 255]
                scale = 255.0 if res.dtype.kind == "f" and res.max(initial=0) <= 1.0 else 1.0
                res = np.clip(np.rint(res * scale), 0, 255).astype(np.uint8)
            img = res
        out[b] = img
    return out
