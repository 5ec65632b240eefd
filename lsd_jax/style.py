"""The style protocol: what turns a batch of latents into a batch of images.

A :class:`Style` is data plus a pure function::

    images = style.apply(style.variables, z, c, size)
    # z: (B, z_dim) float32, c: (B, c_dim) float32, size: static (H, W)
    # images: (B, h, w, 3) float32, about [-1, 1]

``apply`` must be jittable with ``size`` static. Styles that render any size (the embedded CPPN)
return ``size`` exactly; styles with a native size (StyleGAN) ignore it and the frame step resizes.
``variables`` is a pytree of arrays passed as a jit argument (never closed over, so big weights
are not baked into the compiled program).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax

Array = jax.Array
ApplyFn = Callable[[Any, Array, Array, tuple[int, int]], Array]


@dataclass(frozen=True, eq=False)
class Style:
    name: str
    z_dim: int
    c_dim: int
    apply: ApplyFn
    variables: Any = None
    native_size: tuple[int, int] | None = None  # None: renders any size natively
    info: dict[str, Any] = field(default_factory=dict)

    def output_size(self, requested: tuple[int, int] | None) -> tuple[int, int]:
        """The (H, W) of the video for a requested size (None: native, else 512x512)."""
        if requested is not None:
            return requested
        return self.native_size or (512, 512)
