"""Render parameters: one frozen dataclass, validated once at the boundary.

Names, defaults and meanings follow Lucid Sonic Dreams' ``hallucinate()`` so its users feel at home.
Where Lucid Sonic Dreams had a bug we keep the name and fix the behaviour:

* ``fps`` is honoured exactly (no hop rounding);
* ``contrast_strength=0`` means 0 (not 0.5) and ``contrast_percussive=False`` is possible (same for flash);
* ``class_shuffle_seconds`` accepts floats, and a list of times matches the nearest frame;
* ``resolution`` / ``width`` / ``height`` choose the rendered size (16:9 included), not a resize after the fact;
* ``seed`` makes a render reproducible frame for frame.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ParamError

PULSE_MODES = ("loudness", "onset")
NOISE_MODES = ("const", "random", "none")
COMPUTE_DTYPES = ("float32", "bfloat16")
SPEED_MODES = ("beat", "bar")
MAX_RESOLUTION = 4096
MAX_FPS = 240.0


def _unit(name: str, value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ParamError(f"{name} must be between 0 and 1 (as in Lucid Sonic Dreams), got {value!r}")


def _range(name: str, value: float | None, lo: float, hi: float) -> None:
    if value is not None and not lo <= value <= hi:
        raise ParamError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")


def _number(name: str, value: Any, *, integer: bool = False, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "an integer" if integer else "a number"
        raise ParamError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(float(value)):
        raise ParamError(f"{name} must be finite, got {value!r}")
    if integer:
        if int(value) != value:
            raise ParamError(f"{name} must be an integer, got {value!r}")
        return int(value)
    return float(value)


@dataclass(frozen=True)
class RenderParams:
    """Everything that shapes a video besides the song and the style.

    Construct with keywords; ``__post_init__`` validates and normalises types, so any
    ``RenderParams`` that exists is valid. Unknown names are rejected by :func:`make_params`.
    """

    # --- timing and size
    fps: float = 43.0
    resolution: int | None = None  # square side; None: the style's native size (512 for the default)
    width: int | None = None  # width/height override resolution (both even)
    height: int | None = None
    start: float = 0.0
    duration: float | None = None
    batch_size: int | None = None  # None: chosen automatically
    compute_dtype: str = "float32"  # "bfloat16": faster on GPU/TPU, approximate
    seed: int = 0
    # --- latent motion (Lucid Sonic Dreams' meanings)
    speed_fpm: float | str = 12.0  # or "beat" / "bar": latent keyframes on the detected beats / bars
    pulse_percussive: bool = True
    pulse_harmonic: bool = False
    pulse_react: float = 0.5
    pulse_mode: str = "loudness"  # "onset": beat-exact kick from the onset-strength envelope
    motion_percussive: bool = False
    motion_harmonic: bool = True
    motion_react: float = 0.5
    motion_randomness: float = 0.5
    truncation: float = 1.0
    rotate_react: float = 0.0  # StyleGAN3: louder motion turns the image (turns per second at full motion)
    translate_react: float = 0.0  # StyleGAN3: louder motion slides the image (image widths per second)
    # --- classes (conditional styles)
    classes: tuple[int, ...] | None = None
    dominant_classes_first: bool = False
    class_pitch_react: float = 0.5
    class_smooth_seconds: float = 1.0
    class_complexity: float = 1.0
    class_shuffle_seconds: float | tuple[float, ...] | None = None
    class_shuffle_strength: float = 0.5
    # --- built-in effects
    contrast_strength: float | None = None
    contrast_percussive: bool | None = None
    flash_strength: float | None = None
    flash_percussive: bool | None = None
    custom_effects: tuple[Any, ...] = ()
    # --- musical control of StyleGAN's w (per layer), beyond Lucid Sonic Dreams
    keyframes: tuple[tuple[float, str], ...] | None = None  # {time_s: image}: the video passes through them
    keyframe_window_seconds: float = 2.0  # blend in and out over this many seconds around each keyframe
    keyframe_w_plus: bool = False  # project keyframe images into W+ (per layer) instead of W
    projection_steps: int = 300
    band_react: tuple[float, float, float] = (0.0, 0.0, 0.0)  # low/mid/high bands move coarse/middle/fine layers
    band_edges_hz: tuple[float, float] = (250.0, 2000.0)
    noise_react: float = 0.0  # StyleGAN2: hits scale the per-layer noise inputs (shimmer)
    # --- StyleGAN options
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    # --- separate stems (paths), aligned to the song
    pulse_audio: str | None = None
    motion_audio: str | None = None
    class_audio: str | None = None
    contrast_audio: str | None = None
    flash_audio: str | None = None
    output_audio: str | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        set_("fps", _number("fps", self.fps))
        _range("fps", self.fps, 1.0, MAX_FPS)
        for name in ("resolution", "width", "height"):
            v = _number(name, getattr(self, name), integer=True, optional=True)
            set_(name, v)
            if v is not None:
                _range(name, v, 16, MAX_RESOLUTION)
                if v % 2:
                    raise ParamError(f"{name} must be even (H.264 with yuv420p needs even sizes), got {v}")
        if (self.width is None) != (self.height is None):
            raise ParamError("give both width and height, or neither (use resolution for a square video)")
        set_("start", _number("start", self.start))
        if self.start < 0:
            raise ParamError(f"start must be >= 0 seconds, got {self.start}")
        set_("duration", _number("duration", self.duration, optional=True))
        if self.duration is not None and self.duration <= 0:
            raise ParamError(f"duration must be > 0 seconds, got {self.duration}")
        set_("batch_size", _number("batch_size", self.batch_size, integer=True, optional=True))
        _range("batch_size", self.batch_size, 1, 4096)
        set_("seed", _number("seed", self.seed, integer=True))
        _range("seed", self.seed, 0, 2**31 - 1)

        if isinstance(self.speed_fpm, str):
            if self.speed_fpm.lower() not in SPEED_MODES:
                raise ParamError(f"speed_fpm must be a number or one of {SPEED_MODES}, got {self.speed_fpm!r}")
            set_("speed_fpm", self.speed_fpm.lower())
        else:
            set_("speed_fpm", _number("speed_fpm", self.speed_fpm))
            if not 0 <= self.speed_fpm <= self.fps * 60:
                raise ParamError(f"speed_fpm must be between 0 and fps*60 = {self.fps * 60:g}, got {self.speed_fpm}")
        for name in ("pulse_percussive", "pulse_harmonic", "motion_percussive", "motion_harmonic",
                     "dominant_classes_first"):
            if not isinstance(getattr(self, name), bool):
                raise ParamError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("contrast_percussive", "flash_percussive"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ParamError(f"{name} must be True, False or None, got {getattr(self, name)!r}")
        for name, hi in (("pulse_react", 10.0), ("motion_react", 10.0), ("rotate_react", 10.0),
                         ("translate_react", 10.0), ("class_pitch_react", 100.0),
                         ("class_complexity", 100.0), ("class_smooth_seconds", 600.0)):
            set_(name, _number(name, getattr(self, name)))
            _range(name, getattr(self, name), 0.0, hi)
        for name in ("motion_randomness", "truncation", "class_shuffle_strength"):
            set_(name, _number(name, getattr(self, name)))
            _unit(name, getattr(self, name))
        for name in ("contrast_strength", "flash_strength"):
            set_(name, _number(name, getattr(self, name), optional=True))
            _unit(name, getattr(self, name))
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ParamError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}")
        if self.pulse_mode not in PULSE_MODES:
            raise ParamError(f"pulse_mode must be one of {PULSE_MODES}, got {self.pulse_mode!r}")

        if self.classes is not None:
            if isinstance(self.classes, (str, bytes)) or not isinstance(self.classes, Sequence):
                raise ParamError(f"classes must be a list of class indices, got {self.classes!r}")
            cl = tuple(_number("classes", c, integer=True) for c in self.classes)
            if not cl or any(c < 0 for c in cl):
                raise ParamError(f"classes must be a non-empty list of indices >= 0, got {self.classes!r}")
            set_("classes", cl)
        shuffle = self.class_shuffle_seconds
        if shuffle is not None:
            if isinstance(shuffle, Sequence) and not isinstance(shuffle, (str, bytes)):
                times = tuple(_number("class_shuffle_seconds", t) for t in shuffle)
                if any(t < 0 for t in times):
                    raise ParamError("class_shuffle_seconds times must be >= 0")
                set_("class_shuffle_seconds", times)
            else:
                v = _number("class_shuffle_seconds", shuffle)
                if v <= 0:
                    raise ParamError(f"class_shuffle_seconds must be > 0 (or a list of times), got {shuffle!r}")
                set_("class_shuffle_seconds", v)

        effects = self.custom_effects
        if effects is None:
            effects = ()
        if not isinstance(effects, Sequence):
            effects = (effects,)
        from .effects import EffectsGenerator  # local: effects imports jax

        for e in effects:
            if not isinstance(e, EffectsGenerator):
                raise ParamError(f"custom_effects must hold EffectsGenerator objects, got {type(e).__name__}")
        set_("custom_effects", tuple(effects))

        self._check_control(set_)
        set_("truncation_psi", _number("truncation_psi", self.truncation_psi))
        _range("truncation_psi", self.truncation_psi, -2.0, 2.0)
        set_("truncation_cutoff", _number("truncation_cutoff", self.truncation_cutoff, integer=True, optional=True))
        _range("truncation_cutoff", self.truncation_cutoff, 0, 64)
        if self.noise_mode not in NOISE_MODES:
            raise ParamError(f"noise_mode must be one of {NOISE_MODES}, got {self.noise_mode!r}")
        for name in ("pulse_audio", "motion_audio", "class_audio", "contrast_audio", "flash_audio", "output_audio"):
            v = getattr(self, name)
            if v is not None:
                set_(name, str(v))

    def _check_control(self, set_: Any) -> None:
        kf = self.keyframes
        if kf is not None:
            items = kf.items() if isinstance(kf, Mapping) else kf
            try:
                pairs = tuple(sorted((_number("keyframes time", t), str(p)) for t, p in items))
            except (TypeError, ValueError):
                raise ParamError("keyframes must map times in seconds to image paths, e.g. {30.0: 'cover.png'}") from None
            if not pairs:
                raise ParamError("keyframes is empty; leave it unset for none")
            if any(t < 0 for t, _ in pairs):
                raise ParamError("keyframe times must be >= 0 seconds")
            set_("keyframes", pairs)
        set_("keyframe_window_seconds", _number("keyframe_window_seconds", self.keyframe_window_seconds))
        _range("keyframe_window_seconds", self.keyframe_window_seconds, 0.0, 600.0)
        if not isinstance(self.keyframe_w_plus, bool):
            raise ParamError(f"keyframe_w_plus must be True or False, got {self.keyframe_w_plus!r}")
        set_("projection_steps", _number("projection_steps", self.projection_steps, integer=True))
        _range("projection_steps", self.projection_steps, 1, 100_000)
        br = self.band_react
        if isinstance(br, numbers.Real) and not isinstance(br, bool):
            br = (br, br, br)
        if isinstance(br, (str, bytes)) or not isinstance(br, Sequence) or len(br) != 3:
            raise ParamError(f"band_react must be three numbers (low, mid, high), got {self.band_react!r}")
        br = tuple(_number("band_react", v) for v in br)
        for v in br:
            _range("band_react", v, 0.0, 10.0)
        set_("band_react", br)
        edges = self.band_edges_hz
        if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence) or len(edges) != 2:
            raise ParamError(f"band_edges_hz must be two frequencies (low/mid, mid/high), got {edges!r}")
        edges = tuple(_number("band_edges_hz", v) for v in edges)
        if not 20.0 <= edges[0] < edges[1] <= 11000.0:
            raise ParamError(f"band_edges_hz must be increasing, within 20 Hz..11 kHz, got {edges!r}")
        set_("band_edges_hz", edges)
        set_("noise_react", _number("noise_react", self.noise_react))
        _range("noise_react", self.noise_react, 0.0, 10.0)

    @property
    def w_control(self) -> bool:
        """Whether StyleGAN's w is steered per frame and layer (keyframes, bands, noise)."""
        return bool(self.keyframes) or any(self.band_react) or self.noise_react > 0

    # --- derived values, so every consumer reads them the same way
    @property
    def contrast_on(self) -> bool:
        return any(v is not None for v in (self.contrast_strength, self.contrast_percussive, self.contrast_audio))

    @property
    def flash_on(self) -> bool:
        return any(v is not None for v in (self.flash_strength, self.flash_percussive, self.flash_audio))

    def effect_strength(self, name: str) -> float:
        v = getattr(self, f"{name}_strength")
        return 0.5 if v is None else v

    def effect_percussive(self, name: str) -> bool:
        v = getattr(self, f"{name}_percussive")
        return True if v is None else v

    def replace(self, **changes: Any) -> RenderParams:
        return make_params(self, **changes)

    def to_kwargs(self) -> dict[str, Any]:
        """The non-default fields, as keyword arguments for :func:`lsd_jax.render`."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v != f.default and f.name != "custom_effects":
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


PARAM_NAMES = frozenset(f.name for f in dataclasses.fields(RenderParams))


def make_params(base: RenderParams | None = None, /, **kwargs: Any) -> RenderParams:
    """Build validated params from keywords, rejecting unknown names with a suggestion."""
    unknown = sorted(set(kwargs) - PARAM_NAMES)
    if unknown:
        import difflib

        hints = []
        for u in unknown:
            close = difflib.get_close_matches(u, PARAM_NAMES, n=1)
            hints.append(f"{u!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ParamError("unknown parameter " + ", ".join(hints))
    if base is None:
        return RenderParams(**kwargs)
    return dataclasses.replace(base, **kwargs)


def param_help() -> Mapping[str, str]:
    """One line of help per parameter (CLI and app)."""
    return _HELP


_HELP: dict[str, str] = {
    "fps": "frames per second, honoured exactly",
    "resolution": "square output size in pixels (even); default: the style's native size",
    "width": "output width in pixels (even); with height, overrides resolution",
    "height": "output height in pixels (even); with width, overrides resolution",
    "start": "start of the excerpt in the song, seconds",
    "duration": "length of the excerpt, seconds (default: to the end)",
    "batch_size": "frames per compiled step (default: automatic)",
    "compute_dtype": "float32, or bfloat16 (faster on GPU/TPU, approximate)",
    "seed": "random seed: the same seed and parameters give the same video",
    "speed_fpm": "latent keyframes per minute: how fast the image wanders (0: none; 'beat'/'bar': on the beat)",
    "keyframes": "{time_s: image}: the video passes through the generator's reconstruction of each image",
    "keyframe_window_seconds": "seconds over which the video blends into and out of each keyframe",
    "keyframe_w_plus": "project keyframe images per layer (W+): closer, less editable",
    "projection_steps": "optimisation steps per keyframe image (cached once done)",
    "band_react": "low, mid, high: how much bass/mids/highs move the coarse/middle/fine layers (StyleGAN)",
    "band_edges_hz": "the two band edges in Hz (low/mid, mid/high)",
    "noise_react": "StyleGAN2: hits scale the noise inputs (shimmer on the beat)",
    "pulse_percussive": "pulse follows the percussive part of the song",
    "pulse_harmonic": "pulse follows the harmonic part (both or neither: the full mix)",
    "pulse_react": "strength of the pulse, a short kick on each hit (0-10, ~0.5 typical)",
    "pulse_mode": "'loudness' (Lucid Sonic Dreams) or 'onset' (beat-exact kick from onset strength)",
    "motion_percussive": "motion follows the percussive part",
    "motion_harmonic": "motion follows the harmonic part (both or neither: the full mix)",
    "motion_react": "how much louder music speeds up the drift (0-10, ~0.5 typical)",
    "motion_randomness": "0-1: how unevenly the latent dimensions drift",
    "truncation": "0-1: scales the latent; lower is calmer and more typical",
    "rotate_react": "StyleGAN3 only: the motion envelope turns the image (turns/second at full loudness)",
    "translate_react": "StyleGAN3 only: the motion envelope slides the image (image widths/second)",
    "classes": "class indices (conditional styles) that the 12 pitches map to",
    "dominant_classes_first": "give the first class to the most dominant pitch",
    "class_pitch_react": "how strongly pitches drive classes",
    "class_smooth_seconds": "smoothing window of class changes, seconds",
    "class_complexity": "magnitude of the class vector",
    "class_shuffle_seconds": "rotate the class list every N seconds (or at a list of times)",
    "class_shuffle_strength": "0-1: how far the class list rotates at each shuffle",
    "contrast_strength": "0-1: contrast boost on hits (enables the contrast effect)",
    "contrast_percussive": "contrast follows the percussive part (enables the contrast effect)",
    "flash_strength": "0-1: brightness flash on hits (enables the flash effect)",
    "flash_percussive": "flash follows the percussive part (enables the flash effect)",
    "custom_effects": "list of EffectsGenerator (Python API only)",
    "truncation_psi": "StyleGAN w-space truncation psi (1: none)",
    "truncation_cutoff": "StyleGAN: truncate only the first N layers' w",
    "noise_mode": "StyleGAN noise inputs: const, random or none",
    "pulse_audio": "separate audio stem for the pulse",
    "motion_audio": "separate audio stem for motion",
    "class_audio": "separate audio stem for classes",
    "contrast_audio": "separate audio stem for the contrast effect (enables it)",
    "flash_audio": "separate audio stem for the flash effect (enables it)",
    "output_audio": "audio muxed into the video instead of the song",
}
