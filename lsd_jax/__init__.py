"""lsd-jax: music-reactive GAN videos (a Lucid Sonic Dreams re-imagining) as a pure JAX renderer.

Public API::

    import lsd_jax
    lsd_jax.render("song.mp3", style="default", output="song.mp4", speed_fpm=12, pulse_react=0.5)
    lsd_jax.deep_music_visualizer("song.mp3", resolution=256, output_file="song.mp4")   # BigGAN-deep, DMV's way
"""

from __future__ import annotations

from typing import Any

from .effects import EffectsGenerator, contrast_effect, flash_effect
from .errors import (AudioError, ConversionError, DownloadError, LsdError, OutputError, ParamError,
                     PickleSecurityError, StyleError)
from .params import RenderParams, make_params
from .pipeline import RenderResult, render
from .style import Style

__version__ = "0.1.0"

__all__ = [
    "AudioError", "ConversionError", "DownloadError", "EffectsGenerator", "LsdError", "LucidSonicDream",
    "OutputError", "ParamError", "PickleSecurityError", "RenderParams", "RenderResult", "Style", "StyleError",
    "contrast_effect", "deep_music_visualizer", "flash_effect", "load_generator", "make_params", "render",
    "show_styles",
]


def __getattr__(name: str) -> Any:
    # lazily, so `import lsd_jax` stays light and the compat/generator modules load on use
    if name in ("LucidSonicDream", "show_styles"):
        from . import compat

        return getattr(compat, name)
    if name == "deep_music_visualizer":
        from .dmv_pipeline import deep_music_visualizer

        return deep_music_visualizer
    if name == "load_generator":
        from .generator import load_generator

        return load_generator
    raise AttributeError(f"module 'lsd_jax' has no attribute {name!r}")
