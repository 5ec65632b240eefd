"""Image effects driven by audio envelopes, as pure array functions.

An effect is ``func(array, strength, amplitude) -> array`` (Lucid Sonic Dreams' signature) on one
frame ``array`` of shape (H, W, 3):

* a JAX-traceable ``func`` is vmapped over the batch and fused into the compiled frame step; it
  sees float32 values in [0, 255] and its result is clipped to [0, 255];
* a NumPy-only ``func`` (e.g. scikit-image's ``swirl``) runs on the host, per frame, on uint8
  arrays, exactly as Lucid Sonic Dreams called it; so do the effects after it (see :func:`apply_host` for how
  a float result is read).
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
    """Apply effects per frame on the host, in order. frames: (B, H, W, 3) uint8; amplitudes: (B, E).

    Each effect gets the previous one's result as uint8 (Lucid Sonic Dreams' contract: uint8 in, uint8 out);
    lsd-jax's own effects get it as float32. A float result is read by :func:`_float_scale`.
    """
    if not funcs:
        return frames
    out = np.empty_like(frames)
    for b in range(frames.shape[0]):
        img = frames[b]
        for k, (func, strength) in enumerate(zip(funcs, strengths)):
            own = func in _OWN
            res = func(img.astype(np.float32) if own else img, strength, float(amplitudes[b, k]))
            scale = 1.0 if own or isinstance(res, jax.Array) else None
            res = np.asarray(res)
            if res.shape != img.shape:
                raise ParamError(f"effect {func!r} returned shape {res.shape}, expected {img.shape}")
            if res.dtype != np.uint8:
                if scale is None:
                    scale = _float_scale(res, img)
                res = np.clip(np.rint(res.astype(np.float64) * scale), 0, 255).astype(np.uint8)
            img = res
        out[b] = img
    return out


# lsd-jax's own effects: float32 in [0, 255] in and out, wherever they run
_OWN = (contrast_effect, flash_effect)
# reading a result as [0, 1] is chosen only where it is nearer (in ratio) to the frame given than reading it as
# [0, 255]: the geometric midpoint of the two readings, 255 ** 0.5 ~ 16
_SQRT_255 = 255.0**0.5


def _float_scale(res: np.ndarray, given: np.ndarray) -> float:
    """How to read a NumPy effect's non-uint8 result ``res`` (H, W, 3) of the frame ``given`` (H, W, 3) uint8:
    255.0 (it is in [0, 1], scikit-image's float convention, e.g. ``swirl``) or 1.0 (in [0, 255], as numbers
    computed from the uint8 frame are, and as Lucid Sonic Dreams passes a result on to the next effect).

    Of the two readings, the one whose peak is nearer (in ratio) to the given frame's peak: [0, 1] when the
    result's peak is <= 1 and more than sqrt(255) ~ 16 times below the frame's. A dark frame through a [0, 255]
    effect stays dark (reading it as [0, 1] because its peak was <= 1 was the old bug). Only an effect that changes
    the peak brightness more than 16-fold is misread (a [0, 255] one darkening to a peak <= 1, a [0, 1] one
    brightening a near-black frame): such an effect should return uint8.
    """
    if res.dtype.kind != "f":
        return 1.0  # integers (and bools) are [0, 255] already
    peak = float(np.max(res, initial=0.0))
    return 255.0 if peak <= 1.0 and peak * _SQRT_255 < float(np.max(given, initial=0)) else 1.0
