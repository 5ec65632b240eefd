"""The output formats: one table row each (encoder, container, pixel format, audio, quality scale), chosen by the
output's name or by ``codec``. :class:`~lsd_jax.media.video.VideoWriter` turns a row into ffmpeg arguments; no call
site branches on the format.

A PNG sequence is a folder: ``out/`` (the slash says "a folder"; it must not exist yet, or be empty) holds
``frame_00000.png ...``; ``out/shot_%05d.png`` names the pattern; a bare ``shot_%05d.png`` writes into the folder
``shot``. Its soundtrack is ``audio.wav`` inside the folder.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import OutputError, ParamError
from ..params import CODECS

__all__ = ["CRF", "FORMATS", "PRESET", "Format", "choose_format", "check_encoder", "png_pattern"]

#: A printf frame-number pattern in a PNG sequence's name (``%05d``, ``%d``).
_PATTERN_RE = re.compile(r"%0?\d*d")
PNG_PATTERN = "frame_%05d.png"
PNG_AUDIO = "audio.wav"
#: A PNG sequence's recipe, in its folder.
RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class Format:
    """One output format. ``args``: the video encoder's ffmpeg arguments (``{gop}`` is half the frame rate, the
    GOP YouTube recommends); ``quality``: ``(flag, lo, hi, default, meaning)`` or None when the encoder has no
    quality scale; ``lossless``: the arguments for ``lossless=True`` (replacing ``quality``) or None;
    ``audio``: the audio encoder's arguments, or None for a format without sound; ``multiple``: width and height
    must be multiples of it (4:2:0 chroma halves them)."""

    name: str
    suffix: str
    muxer: str
    encoder: str
    pix_fmt: str
    args: tuple[str, ...]
    audio: tuple[str, ...] | None
    purpose: str
    quality: tuple[str, int, int, int, str] | None = None
    lossless: tuple[str, ...] | None = None
    lossless_pix_fmt: str | None = None
    multiple: int = 2
    sequence: bool = False  # a folder of images (written to a temporary folder, renamed into place)
    metadata: bool = True  # the container takes ``-metadata comment=...`` (the recipe)
    vf: str | None = None  # a filter graph before the encoder

    def video_args(self, fps: Fraction, quality: int | None, lossless: bool, preset: str) -> list[str]:
        """The ``-c:v ...`` arguments for these settings (quality and lossless checked: :func:`check_settings`);
        ``preset``: x264's/x265's speed preset."""
        check_settings(self, quality, lossless)
        gop = max(1, round(fps / 2))
        out = ["-vf", self.vf] if self.vf else []
        out += ["-c:v", self.encoder, *(a.format(gop=gop, preset=preset) for a in self.args)]
        if lossless:
            assert self.lossless is not None
            out += [*self.lossless, "-pix_fmt", self.lossless_pix_fmt or self.pix_fmt]
        else:
            if self.quality is not None:
                flag, _, _, default, _ = self.quality
                out += [flag, str(default if quality is None else quality)]
            out += ["-pix_fmt", self.pix_fmt]
        return out


# x264 settings, chosen for speed on small CPUs (measured by ``python -m lsd_jax.bench --encoder``, 2 cores, the
# default style): "superfast" takes ~30% of "medium"'s CPU time per frame, so the encoder keeps up with the
# frame step; crf 17 instead of 18 buys back the quality (PSNR of decoded vs rendered frames within ~0.2 dB of
# medium/crf 18) for ~1.5x the bytes.
PRESET = "superfast"
CRF = 17

_AAC = ("-c:a", "aac", "-profile:a", "aac_low", "-ar", "48000", "-b:a", "192k")  # YouTube: AAC-LC 48 kHz
_PCM = ("-c:a", "pcm_s16le", "-ar", "48000")  # video's own rate

#: The formats, by name (``codec``); the first with a given suffix is that suffix's default.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "h264",
            ".mp4",
            "mp4",
            "libx264",
            "yuv420p",
            # YouTube's recommended settings: High profile, closed GOP of half the frame rate, 2 B-frames
            ("-preset", "{preset}", "-bf", "2", "-g", "{gop}", "-keyint_min", "{gop}", "-sc_threshold", "0"),
            _AAC,
            "the default: plays everywhere; YouTube's recommended upload settings",
            quality=("-crf", 0, 51, CRF, "x264 crf, lower is better"),
            lossless=("-qp", "0"),
            lossless_pix_fmt="yuv444p",
        ),
        Format(
            "h265",
            ".mp4",
            "mp4",
            "libx265",
            "yuv420p",
            ("-preset", "{preset}", "-tag:v", "hvc1", "-x265-params", "log-level=error"),
            _AAC,
            "about half the size of H.264 at the same quality; newer players",
            quality=("-crf", 0, 51, 20, "x265 crf, lower is better"),
            lossless=("-x265-params", "log-level=error:lossless=1"),
            lossless_pix_fmt="yuv444p",
        ),
        Format(
            "prores",
            ".mov",
            "mov",
            "prores_ks",
            "yuv422p10le",
            ("-profile:v", "3", "-vendor", "apl0"),
            _PCM,
            "ProRes 422 HQ: editing in Resolve, Premiere, Final Cut",
        ),
        Format(
            "prores4444",
            ".mov",
            "mov",
            "prores_ks",
            "yuv444p10le",
            ("-profile:v", "4", "-vendor", "apl0"),
            _PCM,
            "ProRes 4444: editing and VJ programs, full chroma",
        ),
        Format(
            "hap",
            ".mov",
            "mov",
            "hap",
            "rgb0",
            (),
            _PCM,
            "HAP: VJ programs (Resolume, VDMX) decode it on the GPU",
            multiple=4,
        ),
        Format(
            "vp9",
            ".webm",
            "webm",
            "libvpx-vp9",
            "yuv420p",
            ("-b:v", "0", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"),
            ("-c:a", "libopus", "-b:a", "160k"),
            "the web's open format (browsers, the <video> tag)",
            quality=("-crf", 0, 63, 32, "VP9 crf, lower is better"),
            lossless=("-lossless", "1"),
            lossless_pix_fmt="yuv444p",
        ),
        Format(
            "gif",
            ".gif",
            "gif",
            "gif",
            "pal8",
            ("-loop", "0"),
            None,
            "loops for chats and pages: one palette per video, loops forever, no sound",
            multiple=1,
            metadata=False,
            # one palette for the whole video (palettegen sees every frame first: GIFs are short)
            vf="split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse",
        ),
        Format(
            "webp",
            ".webp",
            "webp",
            "libwebp_anim",
            "yuv420p",
            ("-loop", "0"),
            None,
            "loops, smaller and richer in colour than GIF; loops forever, no sound",
            quality=("-quality", 0, 100, 90, "WebP quality, higher is better"),
            lossless=("-lossless", "1"),
            lossless_pix_fmt="bgra",
            multiple=1,
            metadata=False,
        ),
        Format(
            "png",
            ".png",
            "image2",
            "png",
            "rgb24",
            ("-start_number", "0"),
            _PCM,
            "a folder of lossless frames (and audio.wav) for VJ programs, compositing, other tools",
            multiple=1,
            sequence=True,
            metadata=False,
        ),
    )
}
assert tuple(FORMATS) == CODECS[1:], "lsd_jax.params.CODECS names the rows of FORMATS"


def check_settings(fmt: Format, quality: int | None, lossless: bool) -> None:
    """ParamError if ``quality`` or ``lossless`` does not apply to ``fmt`` or is out of its range."""
    if lossless and fmt.lossless is None:
        raise ParamError(f"lossless: the {fmt.name} format has no lossless mode")
    if quality is None:
        return
    if lossless:
        raise ParamError("quality: give quality or lossless, not both")
    if fmt.quality is None:
        raise ParamError(f"quality: the {fmt.name} format has no quality setting")
    _, lo, hi, _, meaning = fmt.quality
    if not lo <= quality <= hi:
        raise ParamError(f"quality must be in {lo}..{hi} for {fmt.name} ({meaning}), got {quality}")


def choose_format(output: str | os.PathLike[str], codec: str = "auto", add_suffix: bool = True) -> tuple[Format, Path]:
    """The format of an output path and the path to write (a suffix added when there is none; for a PNG
    sequence the frame pattern inside its folder). ``codec``: a name in :data:`FORMATS` or ``"auto"`` (by the
    suffix; no suffix is H.264 MP4, with ``.mp4`` added when ``add_suffix``). A codec that does not fit the suffix
    is a ParamError naming both."""
    if codec != "auto" and codec not in FORMATS:
        raise ParamError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
    text = os.path.expanduser(os.fspath(output))
    path = Path(text)
    if text.endswith(("/", os.sep)) or _PATTERN_RE.search(path.name):
        fmt = FORMATS["png"]
        if codec not in ("auto", "png"):
            raise ParamError(f"codec {codec!r} does not write a folder of images ({text!r}); use codec png")
        return fmt, png_pattern(path)
    suffix = path.suffix.lower()
    if suffix == "":
        fmt = FORMATS["h264" if codec == "auto" else codec]
        if fmt.sequence:
            return fmt, path / PNG_PATTERN
        return fmt, path.with_suffix(fmt.suffix) if add_suffix else path
    by_suffix = [f for f in FORMATS.values() if f.suffix == suffix and not f.sequence]
    if not by_suffix:
        known = ", ".join(dict.fromkeys(f.suffix for f in FORMATS.values() if not f.sequence))
        raise ParamError(
            f"output must be an {known} file or a folder for PNG frames (out/ or out/frame_%05d.png), got {path.name!r}"
        )
    if codec == "auto":
        return by_suffix[0], path
    fmt = FORMATS[codec]
    if fmt not in by_suffix:
        raise ParamError(
            f"codec {codec!r} does not go in a {suffix} file ({path.name!r}); "
            f"{suffix} takes {', '.join(f.name for f in by_suffix)}; {codec} takes {fmt.suffix}"
        )
    return fmt, path


def png_pattern(path: Path) -> Path:
    """A PNG sequence's ``folder/pattern``: a folder path gets :data:`PNG_PATTERN`; a bare pattern name
    (``shot_%05d.png``) gets the folder named by its text before the number (``shot``)."""
    if _PATTERN_RE.search(path.name):
        if path.suffix.lower() != ".png":
            raise ParamError(f"a frame pattern must end in .png, got {path.name!r}")
        if os.fspath(path.parent) in ("", "."):
            stem = _PATTERN_RE.split(path.name)[0].rstrip("_-. ") or "frames"
            return Path(stem) / path.name
        return path
    return path / PNG_PATTERN


@functools.cache
def _encoders() -> frozenset[str]:
    from .ffmpeg import run_ffmpeg

    res = run_ffmpeg(["-encoders"])
    names = re.findall(r"^\s*[VAS][\w.]{5}\s+(\S+)", res.stdout.decode("utf-8", "replace"), re.M)
    return frozenset(names)


def check_encoder(fmt: Format) -> None:
    """OutputError naming the format when this ffmpeg build lacks its encoder."""
    if fmt.encoder not in _encoders():
        raise OutputError(
            f"the {fmt.name} format needs ffmpeg's {fmt.encoder} encoder, which this ffmpeg build "
            f"lacks; choose another format"
        )
