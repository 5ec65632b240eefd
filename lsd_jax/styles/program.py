"""StyleGAN styles in the frame step, and musical control of their w per frame and per layer: keyframe images,
frequency bands, noise reactivity.

:class:`StyleGANProgram` is the static program of every StyleGAN style (see :mod:`lsd_jax.styles.style`): z → ws with
the
render settings (truncation ψ and cutoff as traced arrays), then the w control its flags switch on (bands move
the layers' w, keyframes blend into projected latents), then synthesis with the noise mode (a traced selector)
and the per-frame noise gain. Everything that varies per render travels in ``variables`` or the per-frame
inputs, never in closures, so renders that differ only in those values share one compiled step.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..audio.bands import apply_bands
from ..errors import ParamError
from ..params import RenderParams
from .keyframe_blend import blend_keyframes, keyframe_weight
from .style import WIDEN_MODE, Style, frame_shape

Array = jax.Array
_log = logging.getLogger(__name__)


def _mix32(h: Array) -> Array:
    """A 32-bit integer finaliser (xorshift-multiply) on uint32 arrays."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x7FEB352D)
    h = h ^ (h >> 15)
    h = h * jnp.uint32(0x846CA68B)
    return h ^ (h >> 16)


def latent_noise_keys(z: Array, c: Array | None = None, seed: int = 0) -> Array:
    """One PRNG key per row, a pure function of that row's z (and c) bits: (N,) typed keys."""
    z = jnp.asarray(z, jnp.float32)
    rows = [z] if c is None or c.shape[-1] == 0 else [z, jnp.asarray(c, jnp.float32)]
    x = jnp.concatenate(rows, axis=1) if len(rows) > 1 else rows[0]
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    mult = np.random.default_rng(0x15D).integers(1, 2**32, size=x.shape[1], dtype=np.uint64)
    mult = jnp.asarray((mult | 1).astype(np.uint32))
    h = _mix32(jnp.sum(_mix32(bits) * mult, axis=1, dtype=jnp.uint32))
    base = jax.random.key(seed)
    return jax.vmap(lambda v: jax.random.fold_in(base, v))(h)


@dataclass(frozen=True)
class StyleGANProgram:
    """mapping → [bands] → [keyframes] → synthesis for a w-space model (StyleGAN2/3: ``map_latents``,
    ``synthesize``, ``c_dim``, ``has_noise``, ``constants``; see :mod:`lsd_jax.models`).

    ``variables``: ``model`` (the state), ``consts`` (the model's :meth:`constants`, optional), ``settings``
    (``truncation_psi``, ``truncation_cutoff``, ``noise_mode`` arrays) and ``control`` (``react``/``dirs`` with
    bands, ``key_ws``/``key_frames``/``window`` with keyframes). Per-frame ``inputs``: ``z``, ``c``, and
    ``noise_gain`` (noise models), ``transform`` (StyleGAN3), ``bands``, ``frame`` where used. With
    ``noise_mode`` "random" each frame's noise is drawn from a key hashed from its own z (and c)."""

    graphdef: Any
    bands: tuple[int, ...] | None = None  # the band driving each layer, when band_react is on
    keyframes: bool = False
    frame_fit: str = "crop"  # how a frame of another aspect is made (see lsd_jax.styles.style.frame_shape)
    frame_layer: int = 4  # StyleGAN 2/1: the block from which such a frame is wide (4: the const)

    def constants(self, model_state: Any) -> Any:
        from flax import nnx  # here: the default style's render path never loads Flax

        return nnx.merge(self.graphdef, model_state).constants()

    def __call__(self, variables: dict[str, Any], inputs: dict[str, Array], size: tuple[int, int]) -> Array:
        from flax import nnx

        model = nnx.merge(self.graphdef, variables["model"])
        s = variables["settings"]
        ctl = variables.get("control", {})
        z, c = inputs["z"], inputs["c"]
        cc = c if model.c_dim > 0 else None
        ws = model.map_latents(z, cc, s["truncation_psi"], s["truncation_cutoff"])
        if self.bands is not None:
            ws = apply_bands(ws, inputs["bands"], ctl["react"], ctl["dirs"], np.asarray(self.bands, np.int32))
        gain = inputs.get("noise_gain")
        if self.keyframes:
            ws = blend_keyframes(ws, ctl["key_ws"], ctl["key_frames"], ctl["window"], frames=inputs["frame"])
            if gain is not None:  # arrive at the keyframe exactly: no extra shimmer there
                w = keyframe_weight(inputs["frame"], ctl["key_frames"], ctl["window"])
                gain = 1.0 + (gain - 1.0) * (1.0 - w)
        key = latent_noise_keys(z, cc) if model.has_noise else None
        res = model.img_resolution if self.frame_fit != "crop" else 0
        shape = frame_shape((res, res), size, self.frame_fit)
        kw = {} if shape is None else {"size": shape, "widen_mode": WIDEN_MODE[self.frame_fit]}
        if shape is not None and self.frame_layer != 4:  # only StyleGAN 2/1 take it (Style.with_frame_fit checks)
            kw["frame_layer"] = self.frame_layer
        return model.synthesize(
            ws,
            noise_mode=s["noise_mode"],
            key=key,
            noise_gain=gain,
            transform=inputs.get("transform"),
            consts=variables.get("consts"),
            **kw,
        )


def report_keyframe(t: float, path: str, proj: Any, max_steps: int) -> None:
    """Log how closely (PSNR) and how fast the keyframe at ``t`` s was reached; warn when the network cannot
    make the image closely (below :data:`~lsd_jax.styles.projection.W_PLUS_BELOW_DB`)."""
    from .projection import W_PLUS_BELOW_DB

    layers = "W" if np.all(proj.w == proj.w[0]) else "W+"
    steps = len(proj.loss_history)
    _log.info(
        "keyframe at %g s (%s): %.1f dB PSNR, %s, %d steps, %.1f s%s",
        t,
        path,
        proj.psnr,
        layers,
        steps,
        proj.seconds,
        " (cached)" if proj.from_cache else "",
    )
    if proj.psnr < W_PLUS_BELOW_DB:
        hint = " (it used every step: raise projection_steps)" if steps >= max_steps else ""
        if layers == "W":
            hint += "; keyframe_w_plus=true or auto frees each layer and gets closer"
        warnings.warn(
            f"keyframe at {t:g} s ({path}) is reconstructed at only {proj.psnr:.1f} dB PSNR: the network "
            f"cannot make this image closely{hint}",
            stacklevel=3,
        )


def keyframe_frames(params: RenderParams, fps: float, n_frames: int) -> np.ndarray:
    """Frame index of each keyframe time (song seconds, like ``class_shuffle_seconds``)."""
    frames = []
    for t, path in params.keyframes or ():
        f = int(round((t - params.start) * fps))
        if not 0 <= f < n_frames:
            end = params.start + n_frames / fps
            raise ParamError(
                f"keyframe at {t:g} s ({path}) is outside the rendered excerpt ({params.start:g} s to {end:g} s)"
            )
        frames.append(f)
    if len(set(frames)) != len(frames):
        raise ParamError("two keyframes fall on the same frame; space them at least one frame apart")
    return np.asarray(frames, np.int32)


def controlled_style(
    style: Style,
    params: RenderParams,
    *,
    n_frames: int,
    fps: float,
    bands: np.ndarray | None,
    pulse: np.ndarray,
    progress: bool = True,
) -> tuple[Style, dict[str, np.ndarray]]:
    """(the style with the w control ``params`` asks for, the extra per-frame inputs its step reads). ``bands``:
    (N, 3) envelopes when ``band_react`` is on; ``pulse``: (N,) the envelope that drives ``noise_react``."""
    if params.w_control and not style.w_control:
        raise ParamError(
            "keyframes, band_react and noise_react steer a StyleGAN's w: use a StyleGAN style "
            f"(a .pkl or a catalogue name), not {style.name!r}"
        )
    if not style.w_control:
        return style, {}
    if params.noise_react > 0 and not style.noise:
        raise ParamError("noise_react needs a StyleGAN2 style: StyleGAN3 has no noise inputs")
    gen = style.generator
    program: StyleGANProgram = style.program  # type: ignore[assignment]
    control: dict[str, Any] = {}
    inputs: dict[str, np.ndarray] = {}
    if style.noise:  # always an input, so noise_react never changes the compiled step
        inputs["noise_gain"] = (1.0 + params.noise_react * np.asarray(pulse, np.float32)).astype(np.float32)

    groups = None
    if any(params.band_react):
        from ..audio.bands import band_directions, layer_groups
        from .projection import w_spread, w_stats

        assert bands is not None
        groups = tuple(int(g) for g in layer_groups(gen.num_ws, gen.img_resolution))
        scale = w_spread(w_stats(gen, n_samples=1024, seed=params.seed))
        control["react"] = jnp.asarray(params.band_react, jnp.float32)
        control["dirs"] = band_directions(jax.random.fold_in(jax.random.key(params.seed), 8), gen.w_dim, scale)
        inputs["bands"] = np.asarray(bands, np.float32)

    use_keys = bool(params.keyframes)
    if use_keys:
        from .projection import project

        frames = keyframe_frames(params, fps, n_frames)
        noise_mode = "const" if params.noise_mode == "random" else params.noise_mode
        key_ws = []
        for t, path in params.keyframes:
            proj = project(
                gen,
                path,
                steps=params.projection_steps,
                w_plus=params.keyframe_w_plus,
                seed=params.seed,
                noise_mode=noise_mode,
                progress=progress,
            )
            report_keyframe(t, path, proj, params.projection_steps)
            key_ws.append(np.asarray(proj.w, np.float32))
        control["key_ws"] = jnp.asarray(np.stack(key_ws))
        control["key_frames"] = jnp.asarray(frames)
        control["window"] = jnp.float32(max(params.keyframe_window_seconds * fps, 1e-3))
        inputs["frame"] = np.arange(n_frames, dtype=np.int32)

    variables = dict(style.variables)
    if control:
        variables["control"] = control
    return replace(style, program=replace(program, bands=groups, keyframes=use_keys), variables=variables), inputs
