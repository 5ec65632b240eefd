"""Image effects driven by audio envelopes, as pure array functions.

An effect is ``func(array, strength, amplitude) -> array`` (Lucid Sonic Dreams' signature) on one
frame ``array`` of shape (H, W, 3):

* a JAX-traceable ``func`` is vmapped over the batch and fused into the compiled frame step; it
  sees float32 values in [0, 255] and its result is clipped to [0, 255];
* a NumPy-only ``func`` (e.g. scikit-image's ``swirl``) runs on the host, per frame, on uint8
  arrays, exactly as Lucid Sonic Dreams called it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ParamError

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


@dataclass(frozen=True, eq=False)
class EffectsGenerator:
    """A custom effect, as in Lucid Sonic Dreams.

    func: ``func(array, strength, amplitude)``; audio: a path to its own audio (default: the
    song); strength: passed to func unchanged; percussive: drive it by the percussive part.
    """

    func: Callable[..., Any]
    audio: str | None = None
    strength: float = 0.5
    percussive: bool = True
    _traceable: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise ParamError(f"EffectsGenerator func must be callable, got {self.func!r}")
        try:
            params = inspect.signature(self.func).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None:
            names = list(params)
            positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            varargs = any(p.kind == p.VAR_POSITIONAL for p in params.values())
            if len(positional) < 3 and not varargs:
                raise ParamError(
                    f"EffectsGenerator func must take (array, strength, amplitude); {self.func!r} takes {names}"
                )
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)):
            raise ParamError(f"EffectsGenerator strength must be a number, got {self.strength!r}")
        if self.audio is not None:
            object.__setattr__(self, "audio", str(self.audio))

    def traceable(self, height: int, width: int) -> bool:
        """Whether func traces under JAX (and so can be fused into the compiled step)."""
        if not self._traceable:
            spec = jax.ShapeDtypeStruct((height, width, 3), jnp.float32)
            amp = jax.ShapeDtypeStruct((), jnp.float32)
            try:
                out = jax.eval_shape(lambda a, m: self.func(a, self.strength, m), spec, amp)
                ok = getattr(out, "shape", None) == (height, width, 3)
            except Exception:  # any failure to trace means: run it on the host
                ok = False
            self._traceable.append(ok)
        return self._traceable[0]


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
