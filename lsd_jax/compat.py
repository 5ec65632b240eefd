"""Lucid Sonic Dreams' API, so an LSD script runs with only its import changed::

    from lsd_jax import LucidSonicDream          # was: from lucidsonicdreams import LucidSonicDream
    L = LucidSonicDream(song="song.mp3", style="default")
    L.hallucinate(file_name="song.mp4", speed_fpm=12, pulse_react=0.5)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .params import make_params
from .pipeline import render
from .style import Style
from .styles import resolve_style


class LucidSonicDream:
    """Holds the song, stems and style; ``hallucinate`` renders (the style is loaded once)."""

    def __init__(
        self,
        song: str,
        pulse_audio: str | None = None,
        motion_audio: str | None = None,
        class_audio: str | None = None,
        contrast_audio: str | None = None,
        flash_audio: str | None = None,
        style: Any = "wikiart",
        input_shape: int | None = None,
        num_possible_classes: int | None = None,
    ):
        self.song = song
        self.stems = {k: v for k, v in dict(pulse_audio=pulse_audio, motion_audio=motion_audio,
                                             class_audio=class_audio, contrast_audio=contrast_audio,
                                             flash_audio=flash_audio).items() if v is not None}
        self.style = style
        self.input_shape = input_shape
        self.num_possible_classes = num_possible_classes
        self._style_obj: Style | None = None

    def hallucinate(self, file_name: str, save_frames: bool = False, **params: Any) -> Path:
        """Render the video to ``file_name`` (``.mp4`` added if missing). ``params``: as in LSD."""
        if save_frames:
            warnings.warn("save_frames is not supported: frames stream straight to the encoder", stacklevel=2)
        p = make_params(**self.stems, **params)
        if self._style_obj is None:  # render settings (truncation, noise) are step inputs, not part of the style
            self._style_obj = resolve_style(self.style, p, input_shape=self.input_shape,
                                            num_possible_classes=self.num_possible_classes)
        return render(self.song, style=self._style_obj, output=file_name, params=p).path


def show_styles() -> None:
    """Print the names of the catalogue's styles (no network access)."""
    from .catalogue import show_styles as _show

    _show()
