"""The web app: a Gradio Blocks page (a Hugging Face Space) over :func:`lsd_jax.render`.

``app.py`` at the repository root is a thin launcher (``python app.py``); everything lives here so
it can be tested without a server:

* :func:`prepare_job` turns what the page sends (a song, a style, stems and the parameters as
  widgets hold them) into a validated :class:`Job`, or raises an :class:`~lsd_jax.errors.LsdError`;
* :func:`preview_job` renders a few stills at the loudest moments through the *same* compiled
  frame step as the full render, from latents computed over the whole excerpt, so the full render
  with the same seed and parameters contains exactly these frames;
* :func:`render_job` renders the MP4 into a per-request temporary folder, reporting real frames;
* :func:`python_snippet` writes the ``lsd_jax.render(...)`` call that reproduces the video;
* :func:`render_video` / :func:`preview_video` are the page's handlers: every failure becomes a
  ``gr.Error`` with a clear message and no server path, never a traceback;
* :func:`build_app` builds the Blocks (queue with a concurrency limit, cache clean-up, the named API
  endpoints ``/render`` and ``/preview``) and :func:`launch` serves it with an upload size limit.

Server limits come from launch arguments or environment variables (see :class:`AppConfig`).
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import html
import inspect
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from .errors import AudioError, LsdError, ParamError, StyleError
from .params import MAX_FPS, NOISE_MODES, PULSE_MODES, RenderParams, make_params, param_help

try:
    from .params import COMPUTE_DTYPES
except ImportError:  # pragma: no cover - older params module
    COMPUTE_DTYPES = ("float32",)

log = logging.getLogger("lsd_jax.webapp")

ProgressFn = Callable[[int, int], None]

# --------------------------------------------------------------------------------------------------
# Server configuration


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"lsd-jax app: {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SystemExit(f"lsd-jax app: {name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True)
class AppConfig:
    """What this server accepts. Each field has an environment variable and a launch argument."""

    max_seconds: float = 600.0  # LSD_JAX_MAX_SECONDS: longest excerpt rendered, seconds
    max_file_size: str = "100mb"  # LSD_JAX_MAX_FILE_SIZE: largest upload (Gradio's max_file_size)
    concurrency: int = 1  # LSD_JAX_CONCURRENCY: renders/previews running at once
    queue_size: int = 16  # LSD_JAX_QUEUE_SIZE: requests waiting at most
    max_resolution: int = 1024  # LSD_JAX_MAX_RESOLUTION: largest side of the video, pixels
    cache_ttl: int = 3600  # LSD_JAX_CACHE_TTL: seconds before uploads and results are deleted
    preview_stills: int = 6  # LSD_JAX_PREVIEW_STILLS: stills in the preview

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppConfig:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            max_seconds=_env_float(env, "LSD_JAX_MAX_SECONDS", d.max_seconds),
            max_file_size=(env.get("LSD_JAX_MAX_FILE_SIZE") or d.max_file_size).strip(),
            concurrency=int(_env_float(env, "LSD_JAX_CONCURRENCY", d.concurrency)),
            queue_size=int(_env_float(env, "LSD_JAX_QUEUE_SIZE", d.queue_size)),
            max_resolution=int(_env_float(env, "LSD_JAX_MAX_RESOLUTION", d.max_resolution)),
            cache_ttl=int(_env_float(env, "LSD_JAX_CACHE_TTL", d.cache_ttl)),
            preview_stills=int(_env_float(env, "LSD_JAX_PREVIEW_STILLS", d.preview_stills)),
        )


def _duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min" + (f" {s} s" if s else "")


# --------------------------------------------------------------------------------------------------
# The parameters as widgets


@dataclass(frozen=True)
class Field:
    """One RenderParams field as a widget: ``kind`` is slider, number, int, checkbox, radio,
    tristate (default / True / False), ints (comma-separated integers) or times (a number or
    comma-separated numbers)."""

    name: str
    kind: str
    value: Any
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    note: str = ""
    choices: tuple[Any, ...] = ()


#: Widgets that show 0 for "not set" (a Gradio Number shows an empty value as 0).
ZERO_IS_NONE = frozenset({"resolution", "duration", "width", "height", "batch_size", "truncation_cutoff"})
TRISTATE = {"default": None, "percussive part": True, "full mix": False}
STEMS = ("pulse_audio", "motion_audio", "class_audio", "contrast_audio", "flash_audio", "output_audio")
#: Uploaded keyframe images; their times come from the ``keyframe_times`` field (-> ``keyframes``).
KEYFRAME_IMAGES = "keyframe_images"
SPEED_LOCK = {"off": None, "on the beat": "beat", "on the bar": "bar"}
API_ONLY = frozenset({"custom_effects", "keyframes"})
MAX_APP_FPS = min(60.0, MAX_FPS)


def basic_fields(max_resolution: int = AppConfig.max_resolution) -> tuple[Field, ...]:
    return (
        Field("pulse_react", "slider", 0.5, 0.0, 10.0, 0.01),
        Field("motion_react", "slider", 0.5, 0.0, 10.0, 0.01),
        Field("speed_fpm", "slider", 12.0, 0.0, 120.0, 0.5),
        Field("truncation", "slider", 1.0, 0.0, 1.0, 0.01),
        Field("contrast_strength", "slider", 0.0, 0.0, 1.0, 0.01, note="0: off"),
        Field("flash_strength", "slider", 0.0, 0.0, 1.0, 0.01, note="0: off"),
        Field("fps", "slider", 43.0, 1.0, MAX_APP_FPS, 1.0),
        Field("resolution", "slider", 0, 0, max_resolution, 16, note="0: native, 512 for default"),
        Field("start", "number", 0.0, 0.0, None),
        Field("duration", "number", None, 0.0, None, note="0: the same"),
        Field("seed", "int", 0, 0, 2**31 - 1),
    )


def _generic_field(f: dataclasses.Field) -> Field:
    """A widget for a parameter this page has no special layout for (added to the library later)."""
    import types
    import typing

    hint = typing.get_type_hints(RenderParams)[f.name]
    args = set(typing.get_args(hint)) - {type(None)} if isinstance(hint, types.UnionType) else {hint}
    if bool in args:
        return Field(f.name, "checkbox" if f.default is not None else "tristate",
                     f.default if f.default is not None else "default",
                     choices=() if f.default is not None else tuple(TRISTATE))
    if int in args and float not in args:
        return Field(f.name, "int", f.default)
    if float in args or int in args:
        return Field(f.name, "number", f.default)
    return Field(f.name, "text", "" if f.default is None else str(f.default))


def advanced_fields(max_resolution: int = AppConfig.max_resolution) -> tuple[Field, ...]:
    fields = _advanced_fields(max_resolution)
    known = {f.name for f in (*fields, *basic_fields())} | set(STEMS) | API_ONLY
    return fields + tuple(_generic_field(f) for f in dataclasses.fields(RenderParams) if f.name not in known)


def _advanced_fields(max_resolution: int) -> tuple[Field, ...]:
    return (
        Field("width", "int", None, 0, max_resolution, note="0: use resolution"),
        Field("height", "int", None, 0, max_resolution, note="0: use resolution"),
        Field("batch_size", "int", None, 0, 4096, note="0: automatic"),
        Field("pulse_mode", "radio", "loudness", choices=PULSE_MODES),
        Field("pulse_percussive", "checkbox", True),
        Field("pulse_harmonic", "checkbox", False),
        Field("motion_percussive", "checkbox", False),
        Field("motion_harmonic", "checkbox", True),
        Field("motion_randomness", "slider", 0.5, 0.0, 1.0, 0.01),
        Field("classes", "ints", "", note="e.g. 1, 5, 9; empty: all classes"),
        Field("dominant_classes_first", "checkbox", False),
        Field("class_pitch_react", "number", 0.5, 0.0, 100.0),
        Field("class_smooth_seconds", "number", 1.0, 0.0, 600.0),
        Field("class_complexity", "number", 1.0, 0.0, 100.0),
        Field("class_shuffle_seconds", "times", "", note="e.g. 4, or 0, 12.5, 30; empty: never"),
        Field("class_shuffle_strength", "slider", 0.5, 0.0, 1.0, 0.01),
        Field("contrast_percussive", "tristate", "default", choices=tuple(TRISTATE)),
        Field("flash_percussive", "tristate", "default", choices=tuple(TRISTATE)),
        Field("truncation_psi", "slider", 1.0, -2.0, 2.0, 0.05),
        Field("truncation_cutoff", "int", None, 0, 64, note="0: all layers"),
        Field("noise_mode", "radio", "const", choices=NOISE_MODES),
        *((Field("compute_dtype", "radio", "float32", choices=COMPUTE_DTYPES),)
          if "compute_dtype" in {f.name for f in dataclasses.fields(RenderParams)} else ()),
        Field("speed_lock", "radio", "off", choices=tuple(SPEED_LOCK),
              note="place the latent keyframes on the detected beats or bars (replaces speed_fpm)"),
        Field("band_react", "floats", "0, 0, 0", note="low, mid, high, e.g. 0.4, 0.2, 0.3"),
        Field("band_edges_hz", "floats", "250, 2000", note="two edges in Hz"),
        Field("noise_react", "slider", 0.0, 0.0, 10.0, 0.05),
        Field("keyframe_times", "times", "", note="seconds, one per uploaded keyframe image, e.g. 10, 42.5"),
        Field("keyframe_window_seconds", "number", 2.0, 0.0, 600.0),
        Field("keyframe_w_plus", "checkbox", False),
        Field("projection_steps", "int", 300, 1, 100_000),
        Field("rotate_react", "slider", 0.0, 0.0, 10.0, 0.05),
        Field("translate_react", "slider", 0.0, 0.0, 10.0, 0.05),
    )


BASIC_NAMES = tuple(f.name for f in basic_fields())
ADVANCED_NAMES = tuple(f.name for f in advanced_fields())
PARAM_INPUTS = BASIC_NAMES + ADVANCED_NAMES
#: The inputs of the /render and /preview endpoints, in order.
INPUT_NAMES = ("song", "style", "style_file", *STEMS, KEYFRAME_IMAGES, *PARAM_INPUTS)
#: Page fields that are not RenderParams fields (turned into them by params_from_ui).
PAGE_ONLY = frozenset({"speed_lock", "keyframe_times"})


def ui_defaults() -> dict[str, Any]:
    """The widgets' initial values, by name (stems: None)."""
    out: dict[str, Any] = {name: None for name in (*STEMS, KEYFRAME_IMAGES)}
    out.update({f.name: f.value for f in (*basic_fields(), *advanced_fields())})
    return out


def _parse_ints(name: str, text: Any) -> tuple[int, ...] | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, (list, tuple)):
        return tuple(text)
    try:
        return tuple(int(x) for x in str(text).replace(";", ",").split(",") if x.strip())
    except ValueError:
        raise ParamError(f"{name} must be comma-separated whole numbers, e.g. 1, 5, 9; got {text!r}") from None


def _parse_times(name: str, text: Any) -> float | tuple[float, ...] | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, (int, float, list, tuple)):
        return text
    try:
        parts = [float(x) for x in str(text).replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise ParamError(f"{name} must be a number of seconds or comma-separated times, e.g. 4 or 0, 12.5, 30; "
                         f"got {text!r}") from None
    if "," in str(text):
        return tuple(parts)
    return parts[0] if parts else None


def _parse_floats(name: str, text: Any) -> tuple[float, ...] | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, (int, float)):
        return (float(text),)
    if isinstance(text, (list, tuple)):
        return tuple(float(x) for x in text)
    try:
        return tuple(float(x) for x in str(text).replace(";", ",").split(",") if x.strip())
    except ValueError:
        raise ParamError(f"{name} must be comma-separated numbers; got {text!r}") from None


def _keyframes_from_ui(times: Any, images: Any) -> dict[float, str] | None:
    images = [str(getattr(i, "name", i)) for i in (images or [])]
    t = _parse_times("keyframe_times", times)
    t = [] if t is None else [t] if isinstance(t, (int, float)) else list(t)
    if not images and not t:
        return None
    if len(images) != len(t):
        raise ParamError(f"give one keyframe time per keyframe image: {len(t)} time(s) for {len(images)} image(s)")
    return dict(zip(t, images))


def params_from_ui(values: Mapping[str, Any]) -> dict[str, Any]:
    """Widget values -> keyword arguments for :func:`make_params` (the page's conventions: 0 or
    empty means "not set" where the library's default is None; an effect strength of 0 is off)."""
    unknown = sorted(set(values) - set(PARAM_INPUTS) - set(STEMS) - {KEYFRAME_IMAGES})
    if unknown:
        raise ParamError("unknown parameter " + ", ".join(repr(u) for u in unknown))
    fields = {f.name: f for f in (*basic_fields(), *advanced_fields())}
    merged = {**ui_defaults(), **values}
    out: dict[str, Any] = {}
    keyframes = _keyframes_from_ui(merged.pop("keyframe_times", None), merged.pop(KEYFRAME_IMAGES, None))
    if keyframes:
        out["keyframes"] = keyframes
    lock = merged.pop("speed_lock", "off")
    if lock not in SPEED_LOCK:
        raise ParamError(f"speed_lock must be one of {', '.join(SPEED_LOCK)}; got {lock!r}")
    for name, v in merged.items():
        if name in STEMS:
            if v:
                out[name] = str(v)
            continue
        f = fields[name]
        if f.kind == "tristate":
            if v not in TRISTATE:
                raise ParamError(f"{name} must be one of {', '.join(TRISTATE)}; got {v!r}")
            out[name] = TRISTATE[v]
        elif f.kind == "text":
            out[name] = v if v not in (None, "") else RenderParams.__dataclass_fields__[name].default
        elif f.kind == "ints":
            out[name] = _parse_ints(name, v)
        elif f.kind == "times":
            out[name] = _parse_times(name, v)
        elif f.kind == "floats":
            parsed = _parse_floats(name, v)
            out[name] = parsed if parsed is not None else RenderParams.__dataclass_fields__[name].default
        elif f.kind in ("int", "number", "slider"):
            if isinstance(v, str):
                try:
                    v = float(v) if v.strip() else None
                except ValueError:
                    raise ParamError(f"{name} must be a number, got {v!r}") from None
            if isinstance(v, float) and f.kind == "int" and v.is_integer():
                v = int(v)
            if name in ZERO_IS_NONE and v in (None, 0):
                v = None
            out[name] = v
        else:
            out[name] = v
    if SPEED_LOCK[lock]:
        out["speed_fpm"] = SPEED_LOCK[lock]
    for effect in ("contrast", "flash"):  # strength 0 (the slider's default): the effect is off
        if out.get(f"{effect}_strength") in (None, 0):
            out[f"{effect}_strength"] = None
            out[f"{effect}_percussive"] = None
    # None only where the library's default is None (a cleared box elsewhere is a mistake)
    defaults = {f.name: f.default for f in dataclasses.fields(RenderParams)}
    for name in [k for k, v in out.items() if v is None and defaults.get(k, 0) is not None]:
        raise ParamError(f"{name} needs a value")
    return out


# --------------------------------------------------------------------------------------------------
# Messages without server paths

_PATH_DIRS = re.compile(r"""(?<![^\s'"(\[=:,])(?:file://)?(?:~|[A-Za-z]:)?[/\\](?:[^/\\\s'"]+[/\\])+""")
MAX_MESSAGE = 600


def public_message(message: str) -> str:
    """``message`` with every directory part of a path removed (file names stay), safe as HTML."""
    text = _PATH_DIRS.sub("", str(message))
    for root in {tempfile.gettempdir(), os.getcwd(), str(Path.home()), os.environ.get("GRADIO_TEMP_DIR", "")}:
        if root and len(root) > 1:  # a server folder glued to other text
            text = text.replace(root.rstrip("/\\"), "…")
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return html.escape(text, quote=False)


def user_error(e: BaseException) -> gr.Error:
    """The ``gr.Error`` shown for an exception: LsdError's message (paths stripped), or a generic
    one for anything unexpected (logged here, with its traceback, for the server's operator)."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, LsdError):
        title = {AudioError: "Audio problem", ParamError: "Parameter problem", StyleError: "Style problem"}
        kind = next((t for c, t in title.items() if isinstance(e, c)), "Cannot render")
        return gr.Error(public_message(str(e)), title=kind, print_exception=False)
    if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e):
        log.error("out of memory: %s", type(e).__name__)
        return gr.Error("The server ran out of memory. Try a lower resolution or a shorter excerpt.",
                        title="Out of memory", print_exception=False)
    log.error("unexpected error in the web app", exc_info=e)
    return gr.Error("Something went wrong on the server (the error is logged there). Try again, or change "
                    "the parameters.", title="Internal error", print_exception=False)


# --------------------------------------------------------------------------------------------------
# Per-request temporary folders


class Workdirs:
    """Per-request temporary folders under one root.

    A failed request's folder is deleted at once; a finished one after ``keep`` seconds (by then
    Gradio has copied the video into its own cache, which ``delete_cache`` cleans); all at exit.
    """

    def __init__(self, keep: float = 120.0, parent: str | os.PathLike[str] | None = None):
        self.keep = keep
        self.parent = parent
        self._root: Path | None = None
        self._finished: dict[Path, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None or not self._root.is_dir():
                self._root = Path(tempfile.mkdtemp(prefix="lsd-jax-app-", dir=self.parent))
                atexit.register(shutil.rmtree, self._root, True)
            return self._root

    def new(self) -> Path:
        self.sweep()
        return Path(tempfile.mkdtemp(prefix="req-", dir=self.root))

    def finish(self, path: Path) -> None:
        with self._lock:
            self._finished[path] = time.monotonic()

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        with self._lock:
            self._finished.pop(path, None)

    def sweep(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [p for p, t in self._finished.items() if now - t >= self.keep]
            for p in old:
                del self._finished[p]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)

    def start_sweeper(self, interval: float = 60.0) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                self.sweep()

        self._thread = threading.Thread(target=loop, name="lsd-jax-app-sweeper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            root, self._root = self._root, None
            self._finished.clear()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


WORKDIRS = Workdirs()

# --------------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class Job:
    """A validated request."""

    song: str  # the uploaded file on the server
    song_name: str  # its name as uploaded (for the snippet and the output's name)
    style: str  # "default", a catalogue name, or the uploaded .pkl/.safetensors on the server
    style_code: str  # what the snippet passes as style
    params: RenderParams  # what render() gets
    public_params: RenderParams  # the same with stems as file names (what the snippet shows)


def _name(path: Any) -> str:
    return Path(str(path)).name


def audio_seconds(path: str | os.PathLike[str]) -> float | None:
    """Length of an audio file in seconds without decoding it (None: unknown); AudioError when it
    is no audio file."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioError(f"audio file not found: {p.name}")
    if p.stat().st_size == 0:
        raise AudioError(f"{p.name} is empty (0 bytes): upload an audio file (wav, flac, ogg, mp3, m4a …)")
    try:
        info = sf.info(str(p))
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except Exception:
        pass
    from .video import parse_streams, run_ffmpeg

    info = parse_streams(run_ffmpeg(["-i", str(p)]).stderr.decode("utf-8", "replace"))
    if not any(s["kind"] == "audio" for s in info["streams"]):
        raise AudioError(f"{p.name} is not an audio file that can be read: upload wav, flac, ogg, mp3, m4a …")
    return info["duration"]


def catalogue_names() -> list[str]:
    """"default" first, then the catalogue's names (just "default" when the catalogue is unavailable)."""
    try:
        from .catalogue import load_catalogue

        names = sorted(load_catalogue())
    except Exception as e:  # a broken user catalogue must not take the page down
        log.warning("style catalogue unavailable: %s", e)
        names = []
    return ["default"] + [n for n in names if n != "default"]


def style_choices() -> list[tuple[str, str]]:
    choices = [("default (embedded, no download)", "default")]
    try:
        from .catalogue import load_catalogue

        cat = load_catalogue()
    except Exception:
        return choices
    for name in catalogue_names()[1:]:
        e = cat[name]
        bits = [f"{e.resolution} px" if getattr(e, "resolution", None) else None,
                "conditional" if getattr(e, "conditional", None) else None]
        label = name + (f" ({', '.join(b for b in bits if b)})" if any(bits) else "")
        choices.append((label, name))
    return choices


def _resolve_style_choice(style: Any, style_file: Any) -> tuple[str, str]:
    if style_file:
        p = Path(str(style_file))
        if p.suffix.lower() not in (".pkl", ".safetensors"):
            raise StyleError(f"a style file must be an NVIDIA StyleGAN .pkl or a converted .safetensors; got {p.name}")
        if not p.is_file():
            raise StyleError(f"style file not found: {p.name}")
        return str(p), p.name
    choice = str(style or "default").strip().lower()
    if choice in ("default", "cppn"):
        return "default", "default"
    names = catalogue_names()
    if choice not in names:  # never a path: a name from the list only
        import difflib

        close = difflib.get_close_matches(choice, names, n=1)
        raise StyleError(f"unknown style {choice!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                         + "; choose one from the list or upload a .pkl")
    return choice, choice


def prepare_job(song: Any, style: Any = "default", style_file: Any = None, *, cfg: AppConfig | None = None,
                **values: Any) -> Job:
    """Validate a request (LsdError on any problem). ``values``: widget values by name (missing
    ones take the page's defaults), stems included."""
    cfg = cfg or AppConfig()
    if not song:
        raise AudioError("upload a song first (wav, flac, ogg, mp3, m4a …)")
    song = str(song)
    kwargs = params_from_ui(values)
    params = make_params(**kwargs)
    for name in ("resolution", "width", "height"):
        v = getattr(params, name)
        if v is not None and v > cfg.max_resolution:
            raise ParamError(f"{name}={v} is above this server's limit of {cfg.max_resolution} pixels")
    if params.fps > MAX_APP_FPS:
        raise ParamError(f"fps={params.fps:g} is above this server's limit of {MAX_APP_FPS:g}")
    total = audio_seconds(song)
    if total is not None:
        if params.start >= total:
            raise AudioError(f"start={params.start:g} s is beyond the end of the song ({total:.1f} s long)")
        length = total - params.start if params.duration is None else min(params.duration, total - params.start)
    else:
        length = params.duration if params.duration is not None else math.inf
    if length > cfg.max_seconds + 1e-6:
        limit = f"this server renders at most {_duration_text(cfg.max_seconds)}"
        if not math.isfinite(length):
            raise AudioError(f"the length of {_name(song)} cannot be read; {limit}: give a duration")
        what = "the song is" if params.start == 0 and params.duration is None else "the excerpt is"
        raise AudioError(f"{what} {_duration_text(round(length, 1))} long; {limit}. "
                         "Choose a shorter excerpt with start and duration.")
    style_arg, style_code = _resolve_style_choice(style, style_file)
    public = params.replace(**{s: _name(getattr(params, s)) for s in STEMS if getattr(params, s)})
    if params.keyframes:
        public = public.replace(keyframes={t: _name(p) for t, p in params.keyframes})
    return Job(song=song, song_name=_name(song), style=style_arg, style_code=style_code, params=params,
               public_params=public)


def output_name(job: Job) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(job.song_name).stem).strip("._") or "lsd"
    return stem[:80] + ".mp4"


def python_snippet(job: Job) -> str:
    """The ``lsd_jax.render(...)`` call that reproduces the video (files by their uploaded names)."""
    p = job.public_params
    kwargs: dict[str, Any] = {}
    for name in BASIC_NAMES:  # the basic parameters always, so they are easy to tweak
        v = getattr(p, name)
        if v is not None:
            kwargs[name] = list(v) if isinstance(v, tuple) else v
    kwargs.update(p.to_kwargs())
    lines = ["import lsd_jax", "", "lsd_jax.render(", f"    {job.song_name!r},",
             f"    style={job.style_code!r},", f"    output={output_name(job)!r},"]
    lines += [f"    {k}={v!r}," for k, v in kwargs.items()]
    lines.append(")")
    return "\n".join(lines) + "\n"


def loudest_frames(pulse: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` frame indices at the peaks of ``pulse``, spread out (at least N/(2n) apart),
    in time order."""
    pulse = np.asarray(pulse, np.float64).reshape(-1)
    total = pulse.size
    n = max(1, min(n, total))
    gap = max(1, total // (2 * n))
    chosen: list[int] = []
    for i in np.argsort(-pulse, kind="stable"):
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
            if len(chosen) == n:
                break
    return np.array(sorted(chosen), dtype=np.int64)


@dataclass(frozen=True)
class Preview:
    indices: np.ndarray  # frame indices in the full render
    times: np.ndarray  # seconds in the song
    frames: np.ndarray  # (n, H, W, 3) uint8


def preview_job(job: Job, n: int = 6) -> Preview:
    """Stills at the loudest moments: :func:`lsd_jax.pipeline.prepare` analyses the whole excerpt and
    builds the same latents, effects and compiled frame step as the full render, which renders only
    the chosen frames."""
    from .pipeline import prepare

    prep = prepare(job.song, job.style, params=job.params, progress=False)
    idx = loudest_frames(prep.features.pulse, n)
    frames = prep.frames(idx)
    return Preview(indices=idx, times=job.params.start + idx / float(prep.features.fps), frames=frames)


def render_job(job: Job, workdir: Path, progress: ProgressFn | None = None) -> Path:
    from .pipeline import render

    return render(job.song, style=job.style, output=workdir / output_name(job), progress=progress or False,
                  params=job.params).path


# --------------------------------------------------------------------------------------------------
# Handlers (what the page and the API call)


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    return f"{int(m)}:{s:04.1f}"


def preview_video(song: Any, style: Any = "default", style_file: Any = None, *, cfg: AppConfig | None = None,
                  progress: Callable[..., Any] | None = None, **values: Any) -> tuple[list[tuple[np.ndarray, str]], str]:
    """Gallery items ``(image, caption)`` and a status line; ``gr.Error`` on any problem."""
    cfg = cfg or AppConfig()
    try:
        if progress is not None:
            progress(0.0, desc="Analysing the song")
        job = prepare_job(song, style, style_file, cfg=cfg, **values)
        pv = preview_job(job, cfg.preview_stills)
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise user_error(e) from None
    items = [(f, f"{_clock(t)} · frame {i}") for f, t, i in zip(pv.frames, pv.times, pv.indices)]
    status = (f"Preview: {len(items)} stills at the loudest moments of **{html.escape(job.song_name)}**. "
              "Rendering with the same seed and parameters gives exactly these frames.")
    return items, status


def render_video(song: Any, style: Any = "default", style_file: Any = None, *, cfg: AppConfig | None = None,
                 progress: Callable[..., Any] | None = None, workdirs: Workdirs | None = None,
                 **values: Any) -> tuple[str, str, str]:
    """``(mp4 path, Python snippet, status)``; ``gr.Error`` on any problem. ``progress`` is called
    like ``gr.Progress``: ``progress((done, total), desc=..., unit="frames")``."""
    cfg = cfg or AppConfig()
    workdirs = workdirs or WORKDIRS
    workdir: Path | None = None
    frames = [0]
    t0 = time.perf_counter()

    def on_frames(done: int, total: int) -> None:
        frames[0] = total
        if progress is not None:
            progress((done, total), desc="Rendering", unit="frames")

    try:
        if progress is not None:
            progress(0.0, desc="Analysing the song")
        job = prepare_job(song, style, style_file, cfg=cfg, **values)
        workdir = workdirs.new()
        out = render_job(job, workdir, on_frames)
    except BaseException as e:
        if workdir is not None:
            workdirs.discard(workdir)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise user_error(e) from None
    workdirs.finish(workdir)
    status = (f"Rendered {frames[0]} frames at {job.params.fps:g} fps in {time.perf_counter() - t0:.1f} s. "
              "The snippet below reproduces this video with `lsd_jax.render`.")
    return str(out), python_snippet(job), status


def _bind(fn: Callable[..., Any], names: Sequence[str]) -> Callable[..., Any]:
    """A function whose signature is ``(*names, progress=gr.Progress())`` calling
    ``fn(song, style, style_file, progress=..., **values)``: Gradio names the API's parameters after it."""

    def handler(*args: Any, **kwargs: Any) -> Any:
        bound = handler.__signature__.bind(*args, **kwargs)  # type: ignore[attr-defined]
        bound.apply_defaults()
        values = dict(bound.arguments)
        progress = values.pop("progress")
        song, style, style_file = values.pop("song"), values.pop("style"), values.pop("style_file")
        return fn(song, style, style_file, progress=progress, **values)

    defaults = {"style": "default", "style_file": None, **ui_defaults()}
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=defaults.get(n, inspect.Parameter.empty)) for n in names]
    params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__name__ = getattr(fn, "__name__", "handler")
    handler.__doc__ = fn.__doc__
    return handler


# --------------------------------------------------------------------------------------------------
# The page


def _name_bounds_errors(component: Any) -> Any:
    """Out-of-range values name the parameter (Gradio's own message does not). Wraps the
    instance's ``preprocess``: a Component subclass would make Gradio write a .pyi stub beside
    this module at import time."""
    original = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return original(payload)
        except gr.Error as e:
            raise gr.Error(f"{component.label}: {e.message}", title="Parameter problem",
                           print_exception=False) from None
        except TypeError:
            raise gr.Error(f"{component.label} must be a number, got {payload!r}", title="Parameter problem",
                           print_exception=False) from None

    component.preprocess = preprocess
    return component


def _component(f: Field) -> gr.components.Component:
    help_ = param_help().get(f.name, "")
    info = help_ + (f" ({f.note})" if f.note else "")
    common = dict(label=f.name, info=info, elem_id=f"param-{f.name}")
    if f.kind == "slider":
        return _name_bounds_errors(gr.Slider(f.lo, f.hi, value=f.value, step=f.step, **common))
    if f.kind in ("number", "int"):
        return _name_bounds_errors(gr.Number(value=f.value, minimum=f.lo, maximum=f.hi,
                                             precision=0 if f.kind == "int" else None, **common))
    if f.kind == "checkbox":
        return gr.Checkbox(value=f.value, min_width=200, **common)
    if f.kind in ("radio", "tristate"):
        return gr.Radio(choices=list(f.choices), value=f.value, **common)
    if f.kind in ("ints", "times", "floats", "text"):
        return gr.Textbox(value=f.value, max_lines=1, placeholder=f.note, **common)
    raise AssertionError(f.kind)


CSS = """
#lsd-title h1 { margin-bottom: 0; }
#preview-gallery { min-height: 120px; }
"""


def build_app(cfg: AppConfig | None = None, workdirs: Workdirs | None = None) -> gr.Blocks:
    """The Blocks page, with its queue; launch it with :func:`launch`."""
    cfg = cfg or AppConfig.from_env()
    workdirs = workdirs or WORKDIRS
    helps = param_help()
    components: dict[str, gr.components.Component] = {}
    with gr.Blocks(title="lsd-jax: music-reactive GAN videos", analytics_enabled=False,
                   delete_cache=(max(60, cfg.cache_ttl // 4), cfg.cache_ttl)) as demo:
        gr.Markdown(
            "# lsd-jax\n"
            "Music-reactive GAN videos, after [Lucid Sonic Dreams](https://github.com/mikaelalafriz/lucid-sonic-dreams),"
            " in pure JAX. Upload a song, pick a style, **Preview** a few stills at its loudest moments, then "
            f"**Render** the video. This server renders up to {_duration_text(cfg.max_seconds)} of music, "
            f"{cfg.max_resolution} px at most; uploads up to {cfg.max_file_size}.",
            elem_id="lsd-title",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                components["song"] = gr.Audio(label="song", type="filepath", sources=["upload"], buttons=["download"],
                                              elem_id="song")
                with gr.Row():
                    components["style"] = gr.Dropdown(choices=style_choices(), value="default", label="style",
                                                      info="the embedded style, or a catalogue model (downloaded once)",
                                                      elem_id="style")
                    components["style_file"] = gr.File(label="or upload a style (.pkl / .safetensors)",
                                                       file_types=[".pkl", ".safetensors"], elem_id="style-file")
                with gr.Accordion("Stems (optional): separate audio for pulse, motion, classes, effects",
                                  open=False):
                    with gr.Row():
                        for name in STEMS:
                            components[name] = gr.File(label=f"{name}: {helps[name]}", file_types=["audio"],
                                                       elem_id=f"stem-{name}", min_width=200)
                with gr.Group():
                    basic = basic_fields(cfg.max_resolution)
                    for row in (basic[0:2], basic[2:4], basic[4:6], basic[6:8], basic[8:11]):
                        with gr.Row():
                            for f in row:
                                components[f.name] = _component(f)
                with gr.Accordion("Advanced parameters", open=False):
                    adv = {f.name: f for f in advanced_fields(cfg.max_resolution)}
                    groups = (
                        ("Size", ("width", "height", "batch_size")),
                        ("Pulse and motion", ("pulse_mode", "motion_randomness")),
                        ("", ("pulse_percussive", "pulse_harmonic", "motion_percussive", "motion_harmonic")),
                        ("Classes (conditional styles)", ("classes", "dominant_classes_first", "class_pitch_react")),
                        ("", ("class_smooth_seconds", "class_complexity")),
                        ("", ("class_shuffle_seconds", "class_shuffle_strength")),
                        ("Effects", ("contrast_percussive", "flash_percussive")),
                        ("StyleGAN and compute", ("truncation_psi", "truncation_cutoff", "noise_mode",
                                                  "compute_dtype")),
                        ("Musical control (StyleGAN): beat lock, bands, noise", ("speed_lock", "band_react",
                                                                                 "band_edges_hz", "noise_react")),
                        ("Keyframe images: the video passes through them (StyleGAN)",
                         ("keyframe_times", "keyframe_window_seconds", "keyframe_w_plus", "projection_steps")),
                        ("StyleGAN3: the music turns and slides the image", ("rotate_react", "translate_react")),
                    )
                    grouped = {n for _, names in groups for n in names}
                    other = tuple(n for n in adv if n not in grouped)
                    for title, names in groups + ((("Other", other),) if other else ()):
                        names = tuple(n for n in names if n in adv)
                        if title:
                            gr.Markdown(f"**{title}**")
                        with gr.Row():
                            for name in names:
                                components[name] = _component(adv[name])
                        if "keyframe_times" in names:
                            components[KEYFRAME_IMAGES] = gr.File(
                                label="keyframe images (one per time above)", file_count="multiple",
                                file_types=["image"], elem_id="keyframe-images")
            with gr.Column(scale=4):
                with gr.Row():
                    preview_btn = gr.Button("Preview", variant="secondary", elem_id="preview-btn")
                    render_btn = gr.Button("Render", variant="primary", elem_id="render-btn")
                gallery = gr.Gallery(label="preview: stills at the loudest moments", columns=3, height="auto",
                                     object_fit="contain", elem_id="preview-gallery")
                video = gr.Video(label="video", interactive=False, buttons=["download"], elem_id="video")
                status = gr.Markdown("", elem_id="status")
                code = gr.Code(value="# the Python that reproduces your video appears here after a render\n",
                               language="python", label="reproduce it with lsd_jax", interactive=False,
                               buttons=["copy"], elem_id="snippet")
        missing = set(INPUT_NAMES) - set(components)
        assert not missing, missing
        inputs = [components[n] for n in INPUT_NAMES]

        def _render(song, style, style_file, progress=None, **values):
            return render_video(song, style, style_file, cfg=cfg, progress=progress, workdirs=workdirs, **values)

        def _preview(song, style, style_file, progress=None, **values):
            return preview_video(song, style, style_file, cfg=cfg, progress=progress, **values)

        _render.__doc__ = render_video.__doc__
        _preview.__doc__ = preview_video.__doc__
        render_btn.click(_bind(_render, INPUT_NAMES), inputs, [video, code, status], api_name="render",
                         concurrency_id="lsd-jax-render")
        preview_btn.click(_bind(_preview, INPUT_NAMES), inputs, [gallery, status], api_name="preview",
                          concurrency_id="lsd-jax-render")
    demo.queue(max_size=cfg.queue_size, default_concurrency_limit=cfg.concurrency)
    demo.lsd_config = cfg  # type: ignore[attr-defined]
    workdirs.start_sweeper()
    return demo


def launch(demo: gr.Blocks | None = None, cfg: AppConfig | None = None, **kwargs: Any) -> Any:
    """Serve the page (``kwargs`` go to ``Blocks.launch``: server_name, server_port, ...)."""
    cfg = cfg or getattr(demo, "lsd_config", None) or AppConfig.from_env()
    demo = demo or build_app(cfg)
    kwargs.setdefault("max_file_size", cfg.max_file_size)
    kwargs.setdefault("show_error", False)
    kwargs.setdefault("css", CSS)
    return demo.launch(**kwargs)


def main(argv: Sequence[str] | None = None) -> None:
    env = AppConfig.from_env()
    ap = argparse.ArgumentParser(prog="app.py", description="The lsd-jax web app (a Gradio page).")
    ap.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    ap.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    ap.add_argument("--max-seconds", type=float, default=env.max_seconds,
                    help="longest excerpt rendered, seconds (env LSD_JAX_MAX_SECONDS)")
    ap.add_argument("--max-file-size", default=env.max_file_size,
                    help="largest upload, e.g. 100mb (env LSD_JAX_MAX_FILE_SIZE)")
    ap.add_argument("--concurrency", type=int, default=env.concurrency,
                    help="renders at once (env LSD_JAX_CONCURRENCY)")
    ap.add_argument("--queue-size", type=int, default=env.queue_size, help="waiting requests at most")
    ap.add_argument("--max-resolution", type=int, default=env.max_resolution, help="largest video side, pixels")
    ap.add_argument("--cache-ttl", type=int, default=env.cache_ttl, help="seconds before uploads and videos are deleted")
    args = ap.parse_args(argv)
    cfg = dataclasses.replace(env, max_seconds=args.max_seconds, max_file_size=args.max_file_size,
                              concurrency=max(1, args.concurrency), queue_size=max(1, args.queue_size),
                              max_resolution=args.max_resolution, cache_ttl=args.cache_ttl)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    launch(build_app(cfg), cfg, server_name=args.host, server_port=args.port)
