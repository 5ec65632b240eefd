"""Deep Music Visualizer mode's parameters: one table, declared once, with the render parameters' machinery.

:class:`DMVParams` is Deep Music Visualizer's ``visualize.py`` command line (names and defaults kept) plus ``seed``;
each field is a row (:class:`lsd_jax.params.Param`: kind, default, range, help), so validation, ``lsd-jax dmv``'s
flags (:mod:`lsd_jax.cli`) and the README's table (``lsd-jax params --dmv --markdown``) all come from it. The
model (a BigGAN folder or catalogue name) is an argument of its own, like a render's style.

This module stays light (no JAX): the command line builds its flags from it.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import ParamError
from ..params import (
    CHOICE,
    FLAG,
    FRAME_FIT_HELP,
    FRAME_FITS,
    INDICES,
    INTEGER,
    MAX_RESOLUTION,
    NUMBER,
    OUTPUT,
    Param,
    markdown,
    table_field,
    table_of,
    unknown_names_error,
)

SR = 22050  # the original analyses librosa.load's default rate
RESOLUTIONS = (128, 256, 512)

#: The table's groups, with their titles (CLI help section, README table).
DMV_GROUPS: dict[str, str] = {"dmv": "Deep Music Visualizer (lsd-jax dmv)"}
DMV_MARKDOWN_BEGIN = (
    "<!-- dmv parameters: generated from lsd_jax/dmv/params.py by `lsd-jax params --dmv --markdown`; edit it there -->"
)
DMV_MARKDOWN_END = "<!-- dmv parameters: end -->"


@dataclass(frozen=True)
class DMVParams:
    """Deep Music Visualizer's parameters with its defaults (plus ``seed``, and ``width`` / ``height`` /
    ``frame_fit`` for a video of another aspect, made by the generator itself as in a render); any ``DMVParams``
    that exists is valid. ``classes`` are ImageNet indices once constructed (names are looked up in
    :mod:`lsd_jax.models.imagenet`)."""

    resolution: int = table_field(
        CHOICE,
        512,
        "BigGAN-deep resolution: the default model (biggan-deep-<resolution>) and the video's size",
        "dmv",
        lsd=True,
        choices=RESOLUTIONS,
    )
    width: int | None = table_field(
        INTEGER,
        None,
        "video width in pixels; with height, a video of another aspect than the model's square (see frame_fit)",
        "dmv",
        lo=16,
        hi=MAX_RESOLUTION,
        even=True,
        unset="resolution",
    )
    height: int | None = table_field(
        INTEGER,
        None,
        "video height in pixels; with width (see frame_fit)",
        "dmv",
        lo=16,
        hi=MAX_RESOLUTION,
        even=True,
        unset="resolution",
    )
    frame_fit: str = table_field(
        CHOICE,
        "native",
        "how a frame whose aspect differs from the model's is made: "
        + "; ".join(f"{k}: {v}" for k, v in FRAME_FIT_HELP.items()),
        "dmv",
        choices=FRAME_FITS,
    )
    duration: float | None = table_field(
        NUMBER, None, "seconds of video", "dmv", lsd=True, lo=0.0, lo_open=True, hi=1e6, unset="the whole song"
    )
    pitch_sensitivity: float = table_field(
        NUMBER, 220, "how fast the class mixture follows pitch (higher is faster)", "dmv", lsd=True, lo=1.0, hi=299.0
    )
    tempo_sensitivity: float = table_field(
        NUMBER,
        0.25,
        "how fast the noise follows loudness and its rises (0.05-0.8 typical)",
        "dmv",
        lsd=True,
        lo=0.0,
        hi=100.0,
    )
    depth: float = table_field(
        NUMBER,
        1.0,
        "largest class weight: near 1 richer themes, near 0 'deeper' structures",
        "dmv",
        lsd=True,
        lo=0.0,
        lo_open=True,
        hi=1.0,
    )
    classes: tuple[int, ...] | None = table_field(
        INDICES,
        None,
        "12 (or num_classes) ImageNet classes, by index or name",
        "dmv",
        lsd=True,
        lo=0,
        unset="12 random classes (from seed)",
        example="1, 5, 9 or goldfish, daisy",
    )
    num_classes: int = table_field(
        INTEGER, 12, "how many classes (and so pitches) drive the mixture", "dmv", lsd=True, lo=1, hi=12
    )
    sort_classes_by_power: bool = table_field(
        FLAG, False, "give the first classes to the strongest pitches", "dmv", lsd=True
    )
    jitter: float = table_field(
        NUMBER,
        0.5,
        "damp a random half of the noise units by this much (redrawn every 200 frames)",
        "dmv",
        lsd=True,
        lo=0.0,
        hi=1.0,
    )
    frame_length: int = table_field(
        INTEGER,
        512,
        "audio samples (at 22050 Hz) per video frame, a multiple of 64: fps = 22050/frame_length",
        "dmv",
        lsd=True,
        lo=64,
        hi=1 << 16,
    )
    truncation: float = table_field(
        NUMBER,
        1.0,
        "BigGAN truncation: scales the noise and picks the batch-norm statistics (lower is simpler and more typical)",
        "dmv",
        lsd=True,
        lo=0.0,
        lo_open=True,
        hi=1.0,
    )
    smooth_factor: int = table_field(
        INTEGER,
        20,
        "frames per smoothing bin of the class mixture (at frame_length 512)",
        "dmv",
        lsd=True,
        lo=1,
        hi=100_000,
    )
    batch_size: int = table_field(
        INTEGER,
        30,
        "frames per batch: the video is a whole number of batches (the compiled "
        "step runs at most this many frames at once)",
        "dmv",
        lsd=True,
        lo=1,
        hi=100_000,
    )
    output_file: str = table_field(OUTPUT, "output.mp4", "the video to write (never over an input)", "dmv", lsd=True)
    seed: int = table_field(
        INTEGER,
        0,
        "seed of the random classes, initial noise and jitter: the same seed gives the same video",
        "dmv",
        lo=0,
        hi=2**31 - 1,
    )

    def __post_init__(self) -> None:
        for p in DMV_PARAMS:
            object.__setattr__(self, p.name, p.check(getattr(self, p.name)))  # frozen dataclass
        if (self.width is None) != (self.height is None):
            raise ParamError("give both width and height, or neither (the video is then resolution²)")
        if self.frame_length % 64:
            raise ParamError(
                f"frame_length must be a multiple of 64 (the constant-Q chroma needs it), got {self.frame_length}"
            )
        if self.smooth_frames < 1:
            raise ParamError(
                f"smooth_factor {self.smooth_factor} at frame_length {self.frame_length} smooths over "
                f"int({self.smooth_factor}·512/{self.frame_length}) = 0 frames; use a smooth_factor of "
                f"at least {math.ceil(self.frame_length / 512)} or 1 (no smoothing)"
            )
        if self.classes is not None:
            from ..models.imagenet import class_indices

            classes = tuple(class_indices(list(self.classes)))
            if len(classes) not in (12, self.num_classes):
                raise ParamError(
                    f"classes must list 12 or num_classes ({self.num_classes}) ImageNet classes, got {len(classes)}"
                )
            object.__setattr__(self, "classes", classes)

    # --- the original's derived values
    @property
    def pitch_rate(self) -> float:
        """``(300 − pitch_sensitivity)·512/frame_length``: the divisor of each frame's chroma."""
        return (300 - self.pitch_sensitivity) * 512 / self.frame_length

    @property
    def tempo_rate(self) -> float:
        """``tempo_sensitivity·frame_length/512``: the noise step per frame of full loudness."""
        return self.tempo_sensitivity * self.frame_length / 512

    @property
    def smooth_frames(self) -> int:
        return int(self.smooth_factor * 512 / self.frame_length) if self.smooth_factor > 1 else self.smooth_factor

    @property
    def size(self) -> tuple[int, int]:
        """The video's (height, width): ``height`` × ``width``, else ``resolution`` square."""
        return (self.height, self.width) if self.width is not None else (self.resolution, self.resolution)

    @property
    def fps(self) -> Fraction:
        """Video frame rate, exactly ``22050/frame_length``."""
        return Fraction(SR, self.frame_length)

    def replace(self, **changes: Any) -> DMVParams:
        return make_dmv_params(self, **changes)


#: The table, in declaration order (``Param.lsd``: Deep Music Visualizer's name, None for new ones).
DMV_PARAMS: tuple[Param, ...] = table_of(DMVParams)
DMV_PARAM: Mapping[str, Param] = types.MappingProxyType({p.name: p for p in DMV_PARAMS})


def make_dmv_params(base: DMVParams | None = None, /, **kwargs: Any) -> DMVParams:
    """Validated :class:`DMVParams` from keywords (unknown names rejected with a suggestion)."""
    unknown = set(kwargs) - set(DMV_PARAM)
    if unknown:
        raise unknown_names_error(sorted(unknown), tuple(DMV_PARAM))
    return DMVParams(**kwargs) if base is None else dataclasses.replace(base, **kwargs)


def dmv_markdown() -> str:
    """The README's Deep Music Visualizer table, between its markers."""
    return markdown(DMV_PARAMS, DMV_GROUPS, DMV_MARKDOWN_BEGIN, DMV_MARKDOWN_END, origin="Deep Music Visualizer")
