"""The style protocol: what turns a batch of per-frame inputs into a batch of images.

A :class:`Style` is typed data: what the render needs to know about it (latent sizes, native size, whether it
runs on the host, accepts a StyleGAN3 transform, has noise inputs, lets its w be steered) and how to run it:

* ``program`` — a hashable, static object (a frozen dataclass holding e.g. the model's NNX graphdef) called inside
  the compiled frame step as ``program(variables, inputs, size) -> images`` (B, h, w, 3) float32 in about
  [-1, 1]; ``inputs`` holds the per-frame arrays (``z`` (B, z_dim), ``c`` (B, c_dim), and ``transform``,
  ``noise_gain``, ... where used), ``size`` is the static output (H, W);
* ``variables`` — the pytree of arrays the program reads (``{"model": state}`` for module styles); a jit argument,
  never closed over, so big weights are not baked into the compiled program. The step adds the render settings
  (``variables["settings"]``: truncation ψ/cutoff, noise mode, as arrays: changing them never recompiles);
* ``host_fn`` — instead of a program, a NumPy callable ``(z, c) -> images`` run outside the step;
* ``settings_fn`` — optional: ``settings_fn(params) -> {name: array}``, render settings of the style's own, computed
  on the host from the parameters and added to ``variables["settings"]`` (BigGAN: the batch-norm statistics weights
  of its truncation, exact in float64; a ParamError for parameters the style cannot honour);
* ``class_index`` — optional: ``class_index(name) -> int``, so ``classes=`` may name classes (BigGAN: ImageNet).

Styles that render any size (the embedded CPPN) return ``size`` exactly; styles with a native size (StyleGAN,
BigGAN) make their own square, or with a ``frame_fit`` other than "crop" (a static field of their program,
set by :meth:`Style.with_frame_fit`) a frame of the video's aspect in their own pixels
(:func:`frame_shape`); the frame step then resizes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParamError
from ..params import FRAME_FITS, NOISE_MODES, RenderParams  # the models' noise-mode indices (tests check they agree)

Array = jax.Array
#: ``truncation_cutoff`` "none": every layer is truncated (compared with the layer index).
CUTOFF_ALL = int(np.iinfo(np.int32).max)


#: The generators' widening mode (:data:`lsd_jax.models.ops.WIDEN_MODES`) for each ``frame_fit`` but "crop".
WIDEN_MODE = {
    "native": "reflect",
    "pad-reflect": "reflect",
    "pad-replicate": "replicate",
    "pad-circular": "circular",
    "stretch": "stretch",
}


def frame_shape(native: tuple[int, int], size: tuple[int, int], frame_fit: str) -> tuple[int, int] | None:
    """The (h, w) a generator of ``native`` (h, w) size makes for a video of ``size`` (H, W): its own frame
    widened (or made taller) to the video's aspect, never narrower, so it holds the whole native frame; None
    where it makes its own frame (``frame_fit="crop"``, or the aspects agree)."""
    if frame_fit not in FRAME_FITS:
        raise ParamError(f"frame_fit must be one of {', '.join(FRAME_FITS)}; got {frame_fit!r}")
    (nh, nw), (h, w) = native, size
    if frame_fit == "crop" or nh * w == nw * h:
        return None
    if w * nh > h * nw:  # wider than the model's
        return nh, max(nw, round(nh * w / h))
    return max(nh, round(nw * h / w)), nw


@dataclass(frozen=True)
class ModuleProgram:
    """Runs an NNX model's ``frame_images(inputs, settings, *, size, consts)`` (see :mod:`lsd_jax.models`)."""

    graphdef: Any
    frame_fit: str = "crop"  # see frame_shape; the model's frame_images gets the shape to make, or None

    def constants(self, model_state: Any) -> Any:
        from flax import nnx  # here, not at import: the default style's render path never loads Flax

        model = nnx.merge(self.graphdef, model_state)
        return model.constants() if hasattr(model, "constants") else None

    def __call__(self, variables: dict[str, Any], inputs: dict[str, Array], size: tuple[int, int]) -> Array:
        from flax import nnx

        model = nnx.merge(self.graphdef, variables["model"])
        res = model.img_resolution if self.frame_fit != "crop" else 0
        shape = frame_shape((res, res), size, self.frame_fit)
        kw = {} if shape is None else {"size": shape, "widen_mode": WIDEN_MODE[self.frame_fit]}
        return model.frame_images(inputs, variables.get("settings", {}), consts=variables.get("consts"), **kw)


@dataclass(frozen=True)
class CallableProgram:
    """A traceable Lucid Sonic Dreams style callable ``fn(z, c) -> images in [0, 255]`` (hashed by identity)."""

    fn: Callable[..., Any]

    def __call__(self, variables: Any, inputs: dict[str, Array], size: tuple[int, int]) -> Array:
        return jnp.asarray(self.fn(inputs["z"], inputs["c"]), jnp.float32) / 127.5 - 1.0


@dataclass(frozen=True, eq=False)
class Style:
    name: str
    z_dim: int
    c_dim: int
    program: Callable[[Any, dict[str, Array], tuple[int, int]], Array] | None = None
    variables: Any = None
    native_size: tuple[int, int] | None = None  # None: renders any size natively
    host_fn: Callable[[Any, Any], Any] | None = None  # NumPy (z, c) -> images in [-1, 1], run on the host
    transform: bool = False  # accepts a per-frame StyleGAN3 input transform (rotate/translate reactions)
    noise: bool = False  # has noise inputs (noise_mode, noise_react)
    w_control: bool = False  # its w can be steered (keyframes, band_react, noise_react)
    generator: Any = None  # the lsd_jax.styles.generator.Generator of StyleGAN styles (projection, w statistics)
    cpu_batch_pixels: int = 2**21  # on CPU, frames per step = this // pixels per frame (see engine.step.fit_batch)
    description: str = ""
    settings_fn: Callable[[Any], dict[str, Any]] | None = None  # params -> extra render settings (see above)
    class_index: Callable[[str], int] | None = None  # a class name -> its index (named classes)

    def resolve_classes(self, classes: Any) -> tuple[int, ...] | None:
        """``classes`` (indices and/or names, as the parameter table accepts them) as indices: names through
        :attr:`class_index`; a ParamError when the style's classes have no names."""
        if classes is None:
            return None
        out = []
        for c in classes:
            if isinstance(c, str):
                if self.class_index is None:
                    raise ParamError(
                        f"classes: {c!r} is a class name, but the classes of style {self.name!r} have "
                        f"no names; give class indices (0 to {max(self.c_dim - 1, 0)})"
                    )
                out.append(int(self.class_index(c)))
            else:
                out.append(int(c))
        return tuple(out)

    def with_frame_fit(self, frame_fit: str, frame_layer: int = 4) -> Style:
        """This style making frames of the video's aspect the ``frame_fit`` way (see :func:`frame_shape`), StyleGAN
        2/1 widening them from block ``frame_layer`` (4: the const); styles whose program has no ``frame_fit`` (the
        CPPN renders any size; host and callable styles) are returned as they are (the step crops and resizes
        their frames). A ParamError for a ``frame_layer`` this style cannot widen at."""
        if frame_fit not in FRAME_FITS:
            raise ParamError(f"frame_fit must be one of {', '.join(FRAME_FITS)}; got {frame_fit!r}")
        if self.native_size is None or not hasattr(self.program, "frame_fit"):
            return self
        changes: dict[str, Any] = {"frame_fit": frame_fit}
        if frame_layer != 4:
            family = getattr(self.generator, "family", None)
            if family not in ("stylegan2", "stylegan1") or not hasattr(self.program, "frame_layer"):
                raise ParamError(
                    f"frame_layer={frame_layer}: only StyleGAN 2 and 1 widen at a chosen block; {self.name!r} "
                    f"({family or 'this style'}) widens its own first map: leave frame_layer at 4"
                )
            res = max(self.native_size)
            if frame_layer > res or frame_layer & (frame_layer - 1):
                raise ParamError(
                    f"frame_layer must be a block resolution of {self.name!r}: a power of two from 4 to {res}; "
                    f"got {frame_layer}"
                )
            changes["frame_layer"] = frame_layer
        return replace(self, program=replace(self.program, **changes))

    @property
    def host(self) -> bool:
        """Whether the style runs on the host (NumPy), outside the compiled step."""
        return self.host_fn is not None

    def output_size(self, requested: tuple[int, int] | None) -> tuple[int, int]:
        """The (H, W) of the video for a requested size (None: native, else 512x512)."""
        if requested is not None:
            return requested
        return self.native_size or (512, 512)

    def images(
        self, inputs: dict[str, Any], size: tuple[int, int] | None = None, settings: dict[str, Any] | None = None
    ) -> Array:
        """The style's images for a batch of per-frame ``inputs`` (``z``, ``c``, ...) at ``size`` (default: the
        native size) with render ``settings`` (default: :func:`render_settings` of the defaults)."""
        size = self.output_size(size)
        if self.host:
            return jnp.asarray(self.host_fn(inputs["z"], inputs["c"]))
        if settings is None:
            settings = render_settings(RenderParams(), self)
        variables = {**(self.variables or {}), "settings": settings}
        return _images(self.program, variables, {k: jnp.asarray(v) for k, v in inputs.items()}, size)


@functools.partial(jax.jit, static_argnames=("program", "size"))
def _images(program: Any, variables: Any, inputs: dict[str, Array], size: tuple[int, int]) -> Array:
    return program(variables, inputs, size)


def render_settings(params: RenderParams, style: Style | None = None) -> dict[str, np.ndarray]:
    """The render settings the step reads as arrays: ``truncation_psi`` (float32), ``truncation_cutoff`` (int32,
    :data:`CUTOFF_ALL` for "none") and ``noise_mode`` (int32 index into ``NOISE_MODES``), plus the ``style``'s own
    (:attr:`Style.settings_fn`, e.g. BigGAN's batch-norm statistics weights of ``truncation``)."""
    cutoff = params.truncation_cutoff
    out = {
        "truncation_psi": np.float32(params.truncation_psi),
        "truncation_cutoff": np.int32(CUTOFF_ALL if cutoff is None else cutoff),
        "noise_mode": np.int32(NOISE_MODES.index(params.noise_mode)),
    }
    if style is not None and style.settings_fn is not None:
        out.update(style.settings_fn(params))
    return out
