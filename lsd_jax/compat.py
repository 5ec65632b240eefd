"""Lucid Sonic Dreams' API, so an LSD script runs with only its import changed::

from lsd_jax import LucidSonicDream          # was: from lucidsonicdreams import LucidSonicDream
L = LucidSonicDream(song="song.mp3", style="default")
L.hallucinate(file_name="song.mp4", speed_fpm=12, pulse_react=0.5)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from .engine.pipeline import render
from .errors import ParamError
from .params import make_params
from .styles.resolve import resolve_style
from .styles.style import Style


def _path(name: str, value: Any, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise ParamError(
            f"{name} must be a path to a file (a str or pathlib.Path), got "
            f"{'None' if value is None else type(value).__name__}"
        )
    return value


def _opt_int(name: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ParamError(f"{name} must be an integer or None, got {type(value).__name__}")
    return value


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
        self.song = _path("song", song)
        self.stems = {
            k: _path(k, v)
            for k, v in dict(
                pulse_audio=pulse_audio,
                motion_audio=motion_audio,
                class_audio=class_audio,
                contrast_audio=contrast_audio,
                flash_audio=flash_audio,
            ).items()
            if v is not None
        }
        self.style = style
        self.input_shape = _opt_int("input_shape", input_shape)
        self.num_possible_classes = _opt_int("num_possible_classes", num_possible_classes)
        self._style_obj: Style | None = None

    def hallucinate(self, file_name: str, save_frames: bool = False, **params: Any) -> Path:
        """Render the video to ``file_name`` (``.mp4`` added if missing). ``params``: as in LSD, and any of
        lsd-jax's render parameters; ``chroma`` defaults to ``"cqt"`` here (LSD's), ``"stft"`` elsewhere."""
        _path("file_name", file_name)
        if not isinstance(save_frames, bool):
            raise ParamError(f"save_frames must be True or False, got {type(save_frames).__name__}")
        if save_frames:
            warnings.warn("save_frames is not supported: frames stream straight to the encoder", stacklevel=2)
        both = sorted(set(self.stems) & set(params))
        if both:
            raise ParamError(
                f"{both[0]} was given to LucidSonicDream(...) already; give it there or to hallucinate(...), not both"
            )
        params.setdefault("chroma", "cqt")  # Lucid Sonic Dreams' chroma (librosa's chroma_cqt)
        p = make_params(**self.stems, **params)
        if self._style_obj is None:  # render settings (truncation, noise) are step inputs, not part of the style
            self._style_obj = resolve_style(
                self.style, p, input_shape=self.input_shape, num_possible_classes=self.num_possible_classes
            )
        return render(self.song, style=self._style_obj, output=file_name, params=p).path


def show_styles() -> None:
    """Print the names of the catalogue's styles (no network access)."""
    from .store.catalogue import show_styles as _show

    _show()
