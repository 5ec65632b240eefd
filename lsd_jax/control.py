"""Musical control of a StyleGAN's w, per frame and per layer: keyframe images, frequency bands,
noise reactivity. Wraps a StyleGAN :class:`~lsd_jax.style.Style` into one whose compiled step maps
z to ws, moves the layers' w with the bands, blends into projected keyframes and scales the noise,
then synthesises. Everything that varies per render travels in ``variables`` or the per-frame
inputs, never in closures, so it is all arguments of the one compiled step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import stylegan2 as sg2
from . import stylegan3 as sg3
from .bands import apply_bands
from .errors import ParamError
from .generator import latent_noise_keys
from .keyframes import blend_keyframes, keyframe_weight
from .params import RenderParams
from .style import Style

Array = jax.Array


def keyframe_frames(params: RenderParams, fps: float, n_frames: int) -> np.ndarray:
    """Frame index of each keyframe time (song seconds, like ``class_shuffle_seconds``)."""
    frames = []
    for t, path in params.keyframes or ():
        f = int(round((t - params.start) * fps))
        if not 0 <= f < n_frames:
            end = params.start + n_frames / fps
            raise ParamError(f"keyframe at {t:g} s ({path}) is outside the rendered excerpt "
                             f"({params.start:g} s to {end:g} s)")
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
    """(the w-controlled style, the extra per-frame inputs it reads). ``bands``: (N, 3) envelopes
    when ``band_react`` is on; ``pulse``: (N,) the envelope that drives ``noise_react``."""
    gen = style.info.get("generator")
    if gen is None:
        raise ParamError("keyframes, band_react and noise_react steer a StyleGAN's w: use a StyleGAN style "
                         f"(a .pkl or a catalogue name), not {style.name!r}")
    spec = gen.spec
    is_sg3 = isinstance(spec, sg3.SG3Spec)
    if params.noise_react > 0 and is_sg3:
        raise ParamError("noise_react needs a StyleGAN2 style: StyleGAN3 has no noise inputs")
    psi = float(style.info.get("truncation_psi", 1.0))
    cutoff = style.info.get("truncation_cutoff")
    noise_mode = style.info.get("noise_mode", "const")
    variables: dict[str, Any] = {"gen": gen.params}
    inputs: dict[str, np.ndarray] = {"frame": np.arange(n_frames, dtype=np.int32)}

    use_bands = any(params.band_react)
    groups = None
    if use_bands:
        from .bands import band_directions, layer_groups
        from .projection import w_spread, w_stats

        assert bands is not None
        groups = layer_groups(spec.num_ws, spec.img_resolution)
        scale = w_spread(w_stats(gen, n_samples=1024, seed=params.seed))
        variables["react"] = jnp.asarray(params.band_react, jnp.float32)
        variables["dirs"] = band_directions(jax.random.fold_in(jax.random.key(params.seed), 8), spec.w_dim, scale)
        inputs["bands"] = np.asarray(bands, np.float32)

    use_keys = bool(params.keyframes)
    if use_keys:
        from .projection import project

        frames = keyframe_frames(params, fps, n_frames)
        key_ws = []
        for (_, path) in params.keyframes:
            proj = project(gen, path, steps=params.projection_steps, w_plus=params.keyframe_w_plus, seed=params.seed,
                           noise_mode="const" if noise_mode == "random" else noise_mode, progress=progress)
            key_ws.append(np.asarray(proj.w, np.float32))
        variables["key_ws"] = jnp.asarray(np.stack(key_ws))
        variables["key_frames"] = jnp.asarray(frames)
        variables["window"] = jnp.float32(max(params.keyframe_window_seconds * fps, 1e-3))

    use_noise = params.noise_react > 0
    if use_noise:
        inputs["noise_gain"] = (1.0 + params.noise_react * np.asarray(pulse, np.float32)).astype(np.float32)

    def apply_inputs(variables: Any, inputs: dict[str, Array], size: tuple[int, int]) -> Array:
        p = variables["gen"]
        z, c = inputs["z"], inputs["c"]
        cc = c if spec.c_dim > 0 else None
        mapping = sg3.mapping if is_sg3 else sg2.mapping
        ws = mapping(p, spec, z, cc, psi, cutoff)
        if use_bands:
            ws = apply_bands(ws, inputs["bands"], variables["react"], variables["dirs"], groups)
        gain = inputs.get("noise_gain")
        if use_keys:
            ws = blend_keyframes(ws, variables["key_ws"], variables["key_frames"], variables["window"],
                                 frames=inputs["frame"])
            if gain is not None:  # arrive at the keyframe exactly: no extra shimmer there
                w = keyframe_weight(inputs["frame"], variables["key_frames"], variables["window"])
                gain = 1.0 + (gain - 1.0) * (1.0 - w)
        if is_sg3:
            return sg3.synthesis(p, spec, ws, inputs.get("transform"))
        key = latent_noise_keys(z, cc) if noise_mode == "random" else None
        return sg2.synthesis(p, spec, ws, noise_mode, key, noise_gain=gain)

    info = {**style.info, "apply_inputs": apply_inputs}
    return Style(name=style.name, z_dim=style.z_dim, c_dim=style.c_dim, apply=style.apply, variables=variables,
                 native_size=style.native_size, info=info), inputs
