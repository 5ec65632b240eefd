"""Deep Music Visualizer mode: song → DMV's noise and class vectors → BigGAN-deep frames → MP4 with the song.

:func:`deep_music_visualizer` (``lsd-jax dmv``) is Matt Siegelman's ``visualize.py`` on lsd-jax's machinery: the
vectors come from :mod:`lsd_jax.dmv.vectors` (its algorithm as pure functions), the frames from the same compiled
frame step as :func:`lsd_jax.render` (:func:`lsd_jax.engine.step.build_frame_step`) and they stream into ffmpeg with
the song muxed in through the render's own writer loop (:func:`lsd_jax.engine.pipeline.write_video`: batches
dispatched ahead of the encoder, a temporary file renamed into place when complete).

As in the original: the song is analysed whole at 22050 Hz; the video runs at exactly ``22050/frame_length``
frames per second (a fraction: 22050/512 = 43.06640625 fps, no rounding); it holds a whole number of
``batch_size`` batches (``duration`` or the song's length, and the smoothed class vectors, limit it); the
soundtrack is the song from its start, cut to the video's length. ``truncation`` scales the initial noise and
picks BigGAN's batch-norm statistics (the package's ``model(noise, class, truncation)``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ..engine.pipeline import ProgressFn, RenderResult, Timings, write_video
from ..errors import StyleError
from ..styles.style import Style
from .params import DMVParams, make_dmv_params

BIGGAN_FAMILY = "biggan-deep"


def dmv_style(model: Any, resolution: int, *, progress: bool = True) -> Style:
    """The BigGAN-deep style for DMV mode: ``model`` (a checkpoint folder or ``.bin``, a converted ``.safetensors``,
    a catalogue name, or a BigGAN :class:`Style`), default the catalogue's ``biggan-deep-<resolution>``."""
    from ..styles.resolve import resolve_style

    style = resolve_style(model if model is not None else f"biggan-deep-{resolution}", progress=progress)
    gen = style.generator
    if getattr(gen, "family", None) != BIGGAN_FAMILY:
        raise StyleError(
            f"Deep Music Visualizer mode drives a BigGAN-deep model; {style.name!r} is not one (give a "
            "pytorch-pretrained-biggan folder or a catalogue name such as biggan-deep-256)"
        )
    from ..models.imagenet import NUM_CLASSES
    from .vectors import Z_DIM

    if (style.z_dim, style.c_dim) != (Z_DIM, NUM_CLASSES):
        raise StyleError(
            f"Deep Music Visualizer mode needs BigGAN-deep's {Z_DIM}-dim noise and {NUM_CLASSES} "
            f"ImageNet classes; {style.name!r} has z_dim {style.z_dim} and {style.c_dim} classes"
        )
    return style


def deep_music_visualizer(
    song: str | os.PathLike[str],
    model: Any = None,
    *,
    progress: bool | ProgressFn = True,
    params: DMVParams | None = None,
    **kwargs: Any,
) -> RenderResult:
    """Render ``song`` as Deep Music Visualizer does; returns a :class:`~lsd_jax.engine.pipeline.RenderResult`
    (``.path``: the MP4 at ``output_file``).

    ``kwargs``: :class:`~lsd_jax.dmv.params.DMVParams` fields (DMV's parameters and defaults: ``resolution`` 512,
    ``pitch_sensitivity`` 220, ``tempo_sensitivity`` 0.25, ``depth`` 1, ``classes``, ``num_classes`` 12,
    ``sort_classes_by_power``, ``jitter`` 0.5, ``frame_length`` 512, ``truncation`` 1, ``smooth_factor`` 20,
    ``batch_size`` 30, ``duration``, ``output_file`` "output.mp4", plus ``seed``, and ``width`` / ``height`` /
    ``frame_fit`` for another aspect). ``model``: see :func:`dmv_style`; a model of another resolution than the
    video's is resized to it. ``progress``: a bar, none (False) or a
    callback ``(done, total)``."""
    from ..engine.step import EffectPlan, build_frame_step
    from ..media.decode import read_audio, to_mono
    from ..media.outputs import resolve_output
    from ..params import make_params
    from ..styles.style import render_settings
    from .vectors import deep_music_vectors, dmv_features

    t0 = time.perf_counter()
    params = make_dmv_params(params, **kwargs) if params is not None else make_dmv_params(**kwargs)
    out = resolve_output(params.output_file, [song, model])  # before any work; never over an input
    timings = Timings()
    # another aspect than the square: BigGAN-deep widens its feature maps itself (frame_fit), as in a render
    style = dmv_style(model, params.resolution, progress=bool(progress)).with_frame_fit(params.frame_fit)
    settings = render_settings(make_params(truncation=params.truncation), style)  # BigGAN's statistics weights
    timings.style = time.perf_counter() - t0

    t = time.perf_counter()
    data, sr = read_audio(song)  # one decode: the analysis and the soundtrack
    feats = dmv_features(to_mono(data), sr, params.frame_length)
    timings.audio = time.perf_counter() - t

    t = time.perf_counter()
    vectors = deep_music_vectors(feats, params)
    n, fps = vectors.n_frames, params.fps
    inputs = {"z": vectors.noise, "c": vectors.class_vectors(), "amps": np.zeros((n, 0), np.float32)}
    timings.latents = time.perf_counter() - t

    size = params.size
    plan = EffectPlan((), ())
    # DMV's batch_size is an upper bound: the batch is chosen automatically up to it (and lowered to what fits)
    step = build_frame_step(style, size, plan, settings=settings, most=params.batch_size, example=inputs)
    soundtrack = (data[: int(round(n * sr / fps))], sr)  # the song from its start, as long as the video

    t = time.perf_counter()
    write_video(out, step, inputs, plan, fps=fps, audio=soundtrack, progress=progress)
    timings.frames = time.perf_counter() - t
    timings.total = time.perf_counter() - t0
    timings.n_frames = n
    return RenderResult(out, n, float(fps), size, timings)
