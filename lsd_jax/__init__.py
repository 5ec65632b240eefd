"""lsd-jax: music-reactive GAN videos (a Lucid Sonic Dreams re-imagining) as a pure JAX renderer.

Public API::

    import lsd_jax
    lsd_jax.render("song.mp3", style="default", output="song.mp4", speed_fpm=12, pulse_react=0.5)
    lsd_jax.deep_music_visualizer("song.mp3", resolution=256, output_file="song.mp4")   # BigGAN-deep, DMV's way

``import lsd_jax`` is light (the parameter table and the errors): JAX, Flax and the renderer load on first use of
a name that needs them, so commands that render nothing (``lsd-jax params``, ``styles``) start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    AudioError,
    ConversionError,
    DownloadError,
    LsdError,
    OutputError,
    ParamError,
    PickleSecurityError,
    StyleError,
)
from .params import EffectsGenerator, RenderParams, make_params
from .version import __version__ as __version__

# public name -> the module that defines it (imported on first use)
_LAZY = {
    "contrast_effect": "engine.effects",
    "flash_effect": "engine.effects",
    "RenderResult": "engine.pipeline",
    "render": "engine.pipeline",
    "render_formats": "engine.pipeline",
    "warm_up": "engine.pipeline",
    "Style": "styles.style",
    "LucidSonicDream": "compat",
    "show_styles": "compat",
    "load_generator": "styles.generator",
    "deep_music_visualizer": "dmv.pipeline",
    "read_recipe": "media.recipe",
    "Recipe": "media.recipe",
    "from_recipe": "engine.pipeline",
    "analyze": "audio.structure",
    "render_take": "live.take",
}

__all__ = [
    "AudioError",
    "ConversionError",
    "DownloadError",
    "EffectsGenerator",
    "LsdError",
    "LucidSonicDream",
    "OutputError",
    "ParamError",
    "PickleSecurityError",
    "Recipe",
    "RenderParams",
    "RenderResult",
    "Style",
    "StyleError",
    "contrast_effect",
    "deep_music_visualizer",
    "flash_effect",
    "from_recipe",
    "load_generator",
    "make_params",
    "read_recipe",
    "render",
    "render_formats",
    "render_take",
    "show_styles",
    "warm_up",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lsd_jax' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
