"""Render parameters: one table, declared once, from which everything else is made.

Each parameter is one field of :class:`RenderParams`, declared with :func:`table_field`: its type (the
annotation, and a value *kind* that says how it is checked and written as text), default, range or
choices, one line of help, its group, the name Lucid Sonic Dreams gives it (if it has it) and hints
for the web page's widget. :data:`PARAMS` is that table; from it come

* validation (``RenderParams.__post_init__``: each field by its row, then the few rules that
  involve two fields) and :func:`make_params` with its "did you mean";
* :func:`parse_value`, the one parser of values written as text (command line and web page);
* ``lsd-jax render --help`` (:mod:`lsd_jax.cli`), the web page's widgets (:mod:`lsd_jax.web.form`)
  and the README's parameter reference (``lsd-jax params --markdown``).

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
import inspect
import math
import numbers
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ParamError

PULSE_MODES = ("loudness", "onset")
NORMALIZE_MODES = ("global", "running")
CHROMA_MODES = ("stft", "cqt")
DIRECT_MODES = ("off", "sections")  # direct: who directs the video (the song's form or nobody)
NOISE_MODES = ("const", "random", "none")
#: How a frame of another aspect than the model's is made (``frame_fit``), each with its one line of help.
FRAME_FIT_HELP = {
    "native": "the generator makes the shape itself (StyleGAN3: a wider view of its canvas; others: pad-reflect)",
    "crop": "the square frame's centre is cropped to the aspect, then resized (the only way before frame_fit)",
    "pad-reflect": "the generator's first feature map is widened by mirroring it (StyleGAN3: as native)",
    "pad-replicate": "the generator's first feature map is widened by repeating its edge (StyleGAN3: as native)",
    "pad-circular": "the generator's first feature map is widened by wrapping it around (StyleGAN3: as native)",
    "stretch": "the generator's first feature map is stretched to the aspect (StyleGAN3: as native)",
}
FRAME_FITS = tuple(FRAME_FIT_HELP)
COMPUTE_DTYPES = ("float32", "bfloat16")
SPEED_MODES = ("beat", "bar")
MAX_RESOLUTION = 4096
MAX_FPS = 240.0
#: Output formats (:data:`lsd_jax.media.formats.FORMATS` has a row for each); "auto": by the output's suffix.
CODECS = ("auto", "h264", "h265", "prores", "prores4444", "hap", "vp9", "gif", "webp", "png")

# Value kinds: how a parameter is checked, parsed from text and written back as text.
NUMBER = "number"  # a float
INTEGER = "integer"
FLAG = "flag"  # True / False
CHOICE = "choice"  # one of ``choices``
PATH = "path"  # a file (audio stems)
INDICES = "indices"  # a list of class indices (whole numbers >= lo) or class names (resolved by the style)
TIMES = "times"  # a period in seconds (> 0), or a list of times (>= 0)
NUMBERS = "numbers"  # ``size`` numbers in [lo, hi]; one number means all of them when ``broadcast``
SPEED = "speed"  # a number, or one of SPEED_MODES
KEYFRAMES = "keyframes"  # {time in seconds: image path}
EFFECTS = "effects"  # EffectsGenerator objects (Python only)
OUTPUT = "output"  # the video file to write

#: How a timeline goes from one point to the next: hold, straight line, eased (smoothstep).
INTERPS = ("step", "linear", "smooth")

#: The groups, in order, with their titles (CLI help sections, web page sections, README tables).
GROUPS: dict[str, str] = {
    "basic": "Basic",
    "size": "Size and compute",
    "motion": "Pulse and motion",
    "classes": "Classes (conditional styles)",
    "effects": "Effects",
    "stylegan": "StyleGAN",
    "control": "Musical control (StyleGAN): beat lock, bands, noise",
    "keyframes": "Keyframe images: the video passes through them (StyleGAN)",
    "stylegan3": "StyleGAN3: the music turns and slides the image",
    "stems": "Stems: separate audio for pulse, motion, classes, effects",
    "output": "Output file: format and quality",
}


@dataclass(frozen=True)
class Param:
    """One row of the parameter table."""

    name: str
    kind: str
    default: Any
    help: str  # one line
    group: str  # a key of GROUPS
    label: str = ""  # a human name for forms ("Pulse strength"); the Python name goes in the help line
    lo: float | None = None  # smallest valid value (of each element, for lists)
    hi: float | None = None  # largest valid value
    lo_open: bool = False  # ``lo`` itself is not valid (``> lo``)
    even: bool = False
    choices: tuple[str | int, ...] = ()
    size: int = 0  # NUMBERS: how many
    broadcast: bool = False  # NUMBERS: one number stands for all ``size``
    unset: str = ""  # what None (the default of an optional parameter) means
    example: str = ""  # a value as text, for list kinds ("1, 5, 9")
    lsd: str | None = None  # Lucid Sonic Dreams' name for it; None: it has no such parameter
    lsd_note: str = ""  # how Lucid Sonic Dreams' differs
    # hints for the web page's widget
    slider: bool = False  # a slider (otherwise a number box)
    step: float | None = None  # widget step: a slider offers only lo + k*step
    ui_hi: float | None = None  # the slider's top, where ``hi`` is far above useful values
    zero_unset: str = ""  # the widget shows "unset" as 0 (a number box cannot be empty); the note for 0
    labels: tuple[tuple[str, Any], ...] = ()  # radio labels for the values (optional flags)
    api_only: bool = False  # Python only: no text form, no flag, no widget
    timeline: bool = False  # NUMBER: may change over the song ({when: value}, a :class:`Timeline`)

    @property
    def optional(self) -> bool:
        """None is valid (and the default): the parameter is unset."""
        return self.default is None

    # --- checking a value (from Python or parsed text)

    def check(self, value: Any) -> Any:
        """``value`` normalised (tuples, floats, ints), or ParamError naming the problem."""
        if value is None and self.optional:
            return None
        if self.kind == NUMBER and isinstance(value, (Mapping, Timeline)):
            return self._check_timeline(value)
        check = getattr(self, f"_check_{self.kind}")
        return check(value)

    def _in_range(self, v: float) -> None:
        lo, hi = self.lo, self.hi
        if (lo is not None and (v < lo or (self.lo_open and v == lo))) or (hi is not None and v > hi):
            raise ParamError(f"{self.name} must be {self.bounds_text()}, got {_num(v)}")

    def _check_number(self, value: Any, integer: bool = False) -> float | int:
        v = _number(self.name, value, integer=integer)
        self._in_range(v)
        if self.even and v % 2:
            raise ParamError(f"{self.name} must be even (H.264 with yuv420p needs even sizes), got {v}")
        return v

    def _check_timeline(self, value: Mapping[Any, Any] | Timeline) -> Timeline:
        """``{when: value}`` (plus ``"interp"``) or a Timeline → a checked Timeline (keys normalised, values in
        range); ParamError naming this parameter and the entry."""
        if not self.timeline:
            raise ParamError(f"{self.name} cannot change over the song: give one value, not {{time: value}}")
        if isinstance(value, Timeline):
            value = value.as_dict()
        interp = value.get("interp", "step")
        if interp not in INTERPS:
            raise ParamError(f"{self.name}: interp must be one of {', '.join(INTERPS)}; got {interp!r}")
        points = []
        for key, v in value.items():
            if key == "interp":
                continue
            when = timeline_key(self.name, key)
            if isinstance(v, str):
                try:
                    v = _parse_num(v.strip())
                except ValueError:
                    raise ParamError(f"{self.name}: {_key_text(when)}: {v!r} is not a number") from None
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
                raise ParamError(f"{self.name}: {_key_text(when)}: the value must be a number, got {v!r}")
            try:
                self._in_range(float(v))
            except ParamError:
                raise ParamError(
                    f"{self.name}: {_key_text(when)}: the value must be {self.bounds_text()}, got {_num(v)}"
                ) from None
            points.append((when, float(v)))
        if not points:
            raise ParamError(f"{self.name}: a timeline needs at least one {{time: value}} entry")
        return Timeline(tuple(points), interp)

    def _check_integer(self, value: Any) -> int:
        return self._check_number(value, integer=True)  # type: ignore[return-value]

    def _check_flag(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ParamError(
                f"{self.name} must be True{', False or None' if self.optional else ' or False'}, got {value!r}"
            )
        return value

    def _check_choice(self, value: Any) -> str | int:
        if isinstance(value, bool) or value not in self.choices:
            raise ParamError(f"{self.name} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        return self.choices[self.choices.index(value)]  # the table's own value (int choices: an int)

    def _check_path(self, value: Any) -> str:
        return str(value)

    def _check_output(self, value: Any) -> str:
        import os

        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise ParamError(f"{self.name} must be a file name, got {value!r}")
        return str(value)

    def _check_indices(self, value: Any) -> tuple[int | str, ...]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ParamError(f"{self.name} must be a list of class indices or names, got {value!r}")
        out = tuple(_class_item(self.name, v) for v in value)
        if not out or any(isinstance(v, int) and v < (self.lo or 0) for v in out):
            raise ParamError(
                f"{self.name} must be a non-empty list of indices >= {_num(self.lo or 0)} (or class "
                f"names), got {value!r}"
            )
        return out

    def _check_times(self, value: Any) -> float | tuple[float, ...]:
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            times = tuple(_number(self.name, t) for t in value)
            if any(t < 0 for t in times):
                raise ParamError(f"{self.name} times must be >= 0, got {value!r}")
            return times
        v = _number(self.name, value)
        if v <= 0:
            raise ParamError(f"{self.name} must be > 0 (or a list of times), got {value!r}")
        return v

    def _check_numbers(self, value: Any) -> tuple[float, ...]:
        if self.broadcast and isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = (value,) * self.size
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != self.size:
            raise ParamError(f"{self.name} must be {self.form()}, got {value!r}")
        out = tuple(_number(self.name, v) for v in value)
        for v in out:
            self._in_range(v)
        return out

    def _check_speed(self, value: Any) -> float | str:
        if isinstance(value, str):
            if value.strip().lower() not in SPEED_MODES:
                raise ParamError(f"{self.name} must be a number or one of {', '.join(SPEED_MODES)}; got {value!r}")
            return value.strip().lower()
        v = _number(self.name, value)
        self._in_range(v)
        return v

    def _check_keyframes(self, value: Any) -> tuple[tuple[float, str], ...]:
        items = value.items() if isinstance(value, Mapping) else value
        try:
            pairs = tuple(sorted((_number("keyframes time", t), str(p)) for t, p in items))
        except (TypeError, ValueError):
            raise ParamError("keyframes must map times in seconds to image paths, e.g. {30.0: 'cover.png'}") from None
        if not pairs:
            raise ParamError("keyframes is empty; leave it unset for none")
        if any(t < 0 for t, _ in pairs):
            raise ParamError("keyframe times must be >= 0 seconds")
        return pairs

    def _check_effects(self, value: Any) -> tuple[Any, ...]:
        effects = () if value is None else value if isinstance(value, Sequence) else (value,)
        if not effects:
            return ()  # without importing effects (it imports jax): the CLI validates before JAX loads
        for e in effects:
            if not isinstance(e, EffectsGenerator):
                raise ParamError(f"{self.name} must hold EffectsGenerator objects, got {type(e).__name__}")
        return tuple(effects)

    # --- text: parsing, writing, describing

    def parse(self, text: str) -> Any:
        """A value written as text (command line, web form) → the Python value :meth:`check` takes.
        Empty text is the default; ``none`` unsets an optional parameter."""
        t = str(text).strip()
        if not t:
            return self.default
        if self.optional and t.lower() == "none":
            return None
        if self.timeline and ":" in t:  # "0:0.3, 16bar:1.5, interp:linear"
            return parse_timeline(self.name, t)
        try:
            return getattr(self, f"_parse_{self.kind}")(t)
        except ValueError:
            raise ParamError(f"{self.name} must be {self.form()}; got {text!r}") from None

    def _parse_number(self, t: str) -> float | int:
        return _parse_num(t)

    _parse_integer = _parse_number  # "1.5" parses; the check says it must be whole

    def _parse_flag(self, t: str) -> bool:
        v = {
            "1": True,
            "true": True,
            "yes": True,
            "on": True,
            "0": False,
            "false": False,
            "no": False,
            "off": False,
        }.get(t.lower())
        if v is None:
            raise ValueError(t)
        return v

    def _parse_choice(self, t: str) -> str | int:
        if self.choices and all(isinstance(c, int) for c in self.choices):
            return int(t)
        return t.lower()

    def _parse_path(self, t: str) -> str:
        return t

    _parse_output = _parse_path

    def _parse_indices(self, t: str) -> tuple[int | str, ...]:
        out: list[int | str] = []
        for x in _items(t):
            if re.fullmatch(r"[+-]?\d+", x):
                out.append(int(x))
            elif _is_number(x):  # "2.5": a mistyped index, not a class name
                raise ValueError(x)
            else:
                out.append(x)
        return tuple(out)

    def _parse_times(self, t: str) -> float | tuple[float, ...]:
        parts = tuple(_parse_float(x) for x in _items(t))
        if re.search(r"[,;]", t):
            return parts
        if len(parts) != 1:
            raise ValueError(t)
        return parts[0]

    def _parse_numbers(self, t: str) -> tuple[float, ...]:
        parts = tuple(_parse_float(x) for x in _items(t))
        if self.broadcast and len(parts) == 1:
            return parts * self.size
        if len(parts) != self.size:
            raise ValueError(t)
        return parts

    def _parse_speed(self, t: str) -> float | str:
        if t.lower() in SPEED_MODES:
            return t.lower()
        return _parse_float(t)

    def _parse_keyframes(self, t: str) -> dict[float, str]:
        out = {}
        for item in _items(t):
            time_, sep, path = item.partition("=")
            if not sep or not path.strip():
                raise ValueError(t)
            out[_parse_float(time_)] = path.strip()
        if not out:
            raise ValueError(t)
        return out

    def _parse_effects(self, t: str) -> Any:
        raise ValueError(t)  # no text form

    def format(self, value: Any) -> str:
        """``value`` as text that :meth:`parse` reads back (None: empty)."""
        if value is None:
            return ""
        if isinstance(value, Timeline):
            return value.text()
        if isinstance(value, bool):
            return "true" if value else "false"
        if self.kind == KEYFRAMES:
            items = value.items() if isinstance(value, Mapping) else value
            return ", ".join(f"{_num(t)}={p}" for t, p in items)
        if isinstance(value, (tuple, list)):
            text = ", ".join(_num(v) for v in value)
            return text + "," if self.kind == TIMES and len(value) == 1 else text  # a list, not a period
        if isinstance(value, numbers.Real):
            return _num(value)
        return str(value)

    def form(self) -> str:
        """The expected text form, for messages ("a number", "comma-separated whole numbers, e.g. 1, 5, 9")."""
        eg = f", e.g. {self.example}" if self.example else ""
        if self.kind == NUMBERS:
            many = f"{self.size} comma-separated numbers"
            return (f"one number (for all) or {many}" if self.broadcast else many) + eg
        return {
            NUMBER: "a number" + (" or a timeline WHEN:VALUE,... (e.g. 0:0.3, 16bar:1.5)" if self.timeline else ""),
            INTEGER: "a whole number",
            FLAG: "true or false" + (" (or none)" if self.optional else ""),
            CHOICE: "one of " + ", ".join(map(str, self.choices)),
            PATH: "a file path",
            OUTPUT: "a file path",
            INDICES: "comma-separated class indices or names" + eg,
            TIMES: "a number of seconds or comma-separated times" + eg,
            SPEED: "a number, " + " or ".join(SPEED_MODES),
            KEYFRAMES: "comma-separated TIME=IMAGE pairs" + eg,
            EFFECTS: "a list of lsd_jax.EffectsGenerator (Python only)",
        }[self.kind]

    def bounds_text(self) -> str:
        """The bounds in words, for messages ("between 0 and 10", ">= 0", "> 0")."""
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None and not self.lo_open:
            return f"between {_num(lo)} and {_num(hi)}"
        parts = [f"> {_num(lo)}" if self.lo_open else f">= {_num(lo)}"] if lo is not None else []
        parts += [f"<= {_num(hi)}"] if hi is not None else []
        return " and ".join(parts)

    def range_text(self) -> str:
        """The valid values in a few words ("0–10", "> 0", "16–4096, even", "loudness, onset")."""
        lo, hi = self.lo, self.hi
        if self.kind == CHOICE:
            return ", ".join(map(str, self.choices))
        if self.kind == FLAG:
            return "true, false"
        if self.kind == SPEED:
            return f"{_num(lo)}–fps·60, {' or '.join(SPEED_MODES)}"
        if lo is not None and hi is not None:
            dash = " to " if lo < 0 else "–"
            text = f"{_num(lo)}{dash}{_num(hi)}" if not self.lo_open else f"> {_num(lo)} and <= {_num(hi)}"
        elif lo is not None:
            text = f"> {_num(lo)}" if self.lo_open else f">= {_num(lo)}"
        else:
            text = ""
        if self.kind == NUMBERS:
            return f"{'1 or ' if self.broadcast else ''}{self.size} numbers" + (f", each {text}" if text else "")
        if self.kind == INDICES:
            return f"indices >= {_num(lo or 0)} or names"
        if self.kind == TIMES:
            return "> 0 s, or a list of times >= 0 s"
        if self.kind == KEYFRAMES:
            return "times >= 0 s → image files"
        if self.kind == PATH:
            return "an audio file"
        if self.kind == OUTPUT:
            return "an .mp4 file"
        if self.kind == EFFECTS:
            return "Python only"
        return text + (", even" if self.even else "")

    def default_text(self) -> str:
        """The default in words: its value, or what unset means."""
        if self.default is None:
            return self.unset or "unset"
        if self.kind == EFFECTS:
            return "none"
        return self.format(self.default)


def _num(v: Any) -> str:
    """A number as short text that reads back exactly: 43.0 -> '43', 0.5 -> '0.5'."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e16 else repr(f)


@dataclass(frozen=True)
class Timeline:
    """A parameter that changes over the song: ``points`` ``(when, value)`` in the order given, and ``interp``
    (:data:`INTERPS`) between them. ``when`` is seconds of the song (a float) or text: beats ``"64b"``, bars
    ``"16bar"``, a section label ``"B"`` (the start of each B), the n-th section ``"s3"`` (from 1) or ``"drop"``
    (each drop). Before its first point a timeline holds the first value; after its last, the last.
    :mod:`lsd_jax.engine.timeline` turns it into one value per frame. Made by :meth:`Param.check` from
    ``{when: value}``."""

    points: tuple[tuple[float | str, float], ...]
    interp: str = "step"

    def as_dict(self) -> dict[str, Any]:
        """``{when: value}`` with text keys (JSON's), and ``"interp"`` unless step: what :meth:`Param.check` reads."""
        out: dict[str, Any] = {_key_text(k, quote=False): v for k, v in self.points}
        if self.interp != "step":
            out["interp"] = self.interp
        return out

    def text(self) -> str:
        """As :func:`parse_timeline` reads it: ``"0:0.3, 16bar:1.5, interp:linear"``."""
        items = [f"{_key_text(k, quote=False)}:{_num(v)}" for k, v in self.points]
        return ", ".join(items + ([f"interp:{self.interp}"] if self.interp != "step" else []))

    @property
    def needs_beats(self) -> bool:
        return any(isinstance(k, str) and k.endswith(("b", "bar")) for k, _ in self.points)

    @property
    def needs_sections(self) -> bool:
        """Whether a point is keyed by a section label, ``"sN"`` or ``"drop"`` (the song's form must be analysed)."""
        return any(isinstance(k, str) and not k.endswith(("b", "bar")) for k, _ in self.points)


def timeline_key(name: str, key: Any) -> float | str:
    """A timeline's ``when`` normalised: seconds (float >= 0), ``"64b"``, ``"16bar"``, ``"s3"``, ``"drop"`` or a
    section label (capital letters); ParamError naming ``name`` and the key otherwise."""
    if isinstance(key, numbers.Real) and not isinstance(key, bool):
        t = float(key)
    elif isinstance(key, str):
        k = key.strip()
        if _is_number(k):
            t = float(k)
        elif m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*(b|beats?|bars?)", k, re.IGNORECASE):
            n = _num(float(m.group(1)))
            return f"{n}bar" if m.group(2).lower().startswith("bar") else f"{n}b"
        elif m := re.fullmatch(r"s(\d+)", k):
            if int(m.group(1)) < 1:
                raise ParamError(f"{name}: {key!r}: sections are counted from s1")
            return f"s{int(m.group(1))}"
        elif k.lower() in ("drop", "drops"):
            return "drop"
        elif re.fullmatch(r"[A-Z]{1,2}", k):
            return k
        else:
            raise ParamError(
                f'{name}: {key!r} is not a time: give seconds (42.5), beats ("64b"), bars ("16bar"), '
                f'a section label ("B"), a section number ("s3") or "drop"'
            )
    else:
        raise ParamError(f'{name}: {key!r} is not a time (seconds, "64b", "16bar", "B", "s3" or "drop")')
    if not math.isfinite(t) or t < 0:
        raise ParamError(f"{name}: {key!r}: a time must be >= 0 seconds")
    return t


def _key_text(key: float | str, quote: bool = True) -> str:
    if isinstance(key, str):
        return f'"{key}"' if quote else key
    return _num(key)


def parse_timeline(name: str, text: str) -> dict[Any, Any]:
    """``"0:0.3, 16bar:1.5, interp:linear"`` → ``{"0": "0.3", "16bar": "1.5", "interp": "linear"}``, which
    :meth:`Param.check` turns into a :class:`Timeline` (it checks keys and values)."""
    out: dict[Any, Any] = {}
    for item in _items(text):
        key, sep, value = item.rpartition(":")
        if not sep or not key.strip() or not value.strip():
            raise ParamError(f"{name}: {item!r} is not WHEN:VALUE (e.g. 0:0.3, 16bar:1.5, interp:linear)")
        out[key.strip()] = value.strip()
    if not out:
        raise ParamError(f"{name}: an empty timeline")
    return out


def _parse_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(text)
    return v


def _parse_num(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        return _parse_float(text)


def _items(text: str) -> list[str]:
    """The items of a list written as text: separated by commas (or semicolons), blanks ignored."""
    return [x.strip() for x in re.split(r"[,;]", text) if x.strip()]


def _class_item(name: str, value: Any) -> int | str:
    """One element of a class list: an index (a whole number, or digits as text) or a class name (text, kept as
    written but trimmed; the style resolves it)."""
    if isinstance(value, str):
        text = " ".join(value.split())
        if not text:
            raise ParamError(f"{name}: an empty class name")
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if _is_number(text):
            raise ParamError(f"{name}: {value!r} is not a whole class index")
        return text
    return _number(name, value, integer=True)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(name: str, value: Any, *, integer: bool = False) -> Any:
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


def table_field(kind: str, default: Any, help: str, group: str, *, lsd: bool | str = False, **row: Any) -> Any:
    """A RenderParams field carrying its table row (the name is filled in from the field)."""
    spec = Param(
        name="",
        kind=kind,
        default=default,
        help=help,
        group=group,
        lsd=None if lsd is False else "" if lsd is True else lsd,
        **row,
    )
    return dataclasses.field(default=default, metadata={"param": spec})


_UNIT = dict(lo=0.0, hi=1.0, slider=True, step=0.01)
_REACT = dict(lo=0.0, hi=10.0, slider=True, step=0.05)
_TRISTATE = (("default", None), ("percussive part", True), ("full mix", False))
_W_PLUS = (("auto", None), ("per layer (W+)", True), ("one w (W)", False))


@dataclass(frozen=True)
class RenderParams:
    """Everything that shapes a video besides the song and the style.

    Construct with keywords; ``__post_init__`` validates and normalises types, so any
    ``RenderParams`` that exists is valid. Unknown names are rejected by :func:`make_params`.
    The fields are the parameter table (:data:`PARAMS`), in the order the CLI, the web page and
    the README show them.
    """

    # --- basic
    pulse_react: float = table_field(
        NUMBER,
        0.5,
        "strength of the pulse, a short kick on each hit (~0.5 typical)",
        "basic",
        lsd=True,
        lo=0.0,
        hi=10.0,
        slider=True,
        step=0.01,
        label="Pulse strength",
        timeline=True,
    )
    motion_react: float = table_field(
        NUMBER,
        0.5,
        "how much louder music speeds up the drift (~0.5 typical)",
        "basic",
        lsd=True,
        lo=0.0,
        hi=10.0,
        slider=True,
        step=0.01,
        label="Motion strength",
        timeline=True,
    )
    speed_fpm: float | str = table_field(
        SPEED,
        12.0,
        "latent keyframes per minute: how fast the image wanders (0: none; beat/bar: on the beat)",
        "basic",
        lsd=True,
        lsd_note="a number only",
        lo=0.0,
        slider=True,
        step=0.5,
        ui_hi=120.0,
        label="Wander speed",
    )
    truncation: float = table_field(
        NUMBER,
        1.0,
        "scales the input latent of every style; lower is calmer and more typical (StyleGAN's own is truncation_psi)",
        "basic",
        lsd=True,
        **_UNIT,
        label="Truncation (latent scale)",
    )
    contrast_strength: float | None = table_field(
        NUMBER,
        None,
        "contrast boost on hits (enables the contrast effect)",
        "basic",
        lsd=True,
        lsd_note="0 becomes 0.5",
        unset="effect off; 0.5 once contrast_percussive or contrast_audio turns it on",
        zero_unset="off",
        **_UNIT,
        label="Contrast on hits",
        timeline=True,
    )
    flash_strength: float | None = table_field(
        NUMBER,
        None,
        "brightness flash on hits (enables the flash effect)",
        "basic",
        lsd=True,
        lsd_note="0 becomes 0.5",
        unset="effect off; 0.5 once flash_percussive or flash_audio turns it on",
        zero_unset="off",
        **_UNIT,
        label="Flash on hits",
        timeline=True,
    )
    fps: float = table_field(
        NUMBER,
        43.0,
        "frames per second, honoured exactly",
        "basic",
        lsd=True,
        lsd_note="hop rounded to 64 samples: 30 became 31.3",
        lo=1.0,
        hi=MAX_FPS,
        slider=True,
        step=1.0,
        label="Frames per second",
    )
    resolution: int | None = table_field(
        INTEGER,
        None,
        "square output size in pixels",
        "basic",
        lsd=True,
        lsd_note="a resize after rendering",
        lo=16,
        hi=MAX_RESOLUTION,
        even=True,
        unset="the style's native size (512 for the default)",
        slider=True,
        step=16,
        zero_unset="native, 512 for default",
        label="Size (square)",
    )
    start: float = table_field(
        NUMBER, 0.0, "start of the excerpt in the song, seconds", "basic", lsd=True, lo=0.0, label="Start (s)"
    )
    duration: float | None = table_field(
        NUMBER,
        None,
        "length of the excerpt, seconds",
        "basic",
        lsd=True,
        lo=0.0,
        lo_open=True,
        unset="to the end of the song",
        zero_unset="to the end",
        label="Length (s)",
    )
    seed: int = table_field(
        INTEGER,
        0,
        "random seed: the same seed and parameters give the same video",
        "basic",
        lo=0,
        hi=2**31 - 1,
        label="Seed",
    )
    direct: str = table_field(
        CHOICE,
        "off",
        "sections: the song's form directs the video (each section its own region of latent space and class "
        "palette, a repeated part returns to its region, intensity follows the section's loudness, a drop lands a "
        "hit); timelines you give win",
        "control",
        choices=DIRECT_MODES,
        label="Direction",
    )
    # --- size and compute
    width: int | None = table_field(
        INTEGER,
        None,
        "output width in pixels; with height, overrides resolution",
        "size",
        lo=16,
        hi=MAX_RESOLUTION,
        even=True,
        unset="resolution decides",
        step=2,
        zero_unset="use resolution",
        label="Width",
    )
    height: int | None = table_field(
        INTEGER,
        None,
        "output height in pixels; with width, overrides resolution",
        "size",
        lo=16,
        hi=MAX_RESOLUTION,
        even=True,
        unset="resolution decides",
        step=2,
        zero_unset="use resolution",
        label="Height",
    )
    frame_fit: str = table_field(
        CHOICE,
        "native",
        "how a frame whose aspect differs from the model's is made: "
        + "; ".join(f"{k}: {v}" for k, v in FRAME_FIT_HELP.items()),
        "size",
        choices=FRAME_FITS,
        label="Frame shape",
    )
    frame_layer: int = table_field(
        INTEGER,
        4,
        "StyleGAN 2/1 frames of another aspect: the synthesis block (by its resolution: 4, 8, 16, …) from which the "
        "frame is wide; 4 widens the 4×4 const input, a later block keeps the blocks before it square (more of the "
        "square frame's composition in the centre)",
        "size",
        lo=4,
        hi=MAX_RESOLUTION,
        label="Widen at block",
    )
    batch_size: int | None = table_field(
        INTEGER,
        None,
        "frames per compiled step",
        "size",
        lsd=True,
        lsd_note="default 1; drops the last frames",
        lo=1,
        hi=4096,
        unset="chosen automatically",
        zero_unset="automatic",
        label="Frames per step",
    )
    compute_dtype: str = table_field(
        CHOICE,
        "float32",
        "bfloat16 is faster on GPU/TPU, approximate",
        "size",
        choices=COMPUTE_DTYPES,
        label="Number format",
    )
    # --- pulse and motion
    pulse_mode: str = table_field(
        CHOICE,
        "loudness",
        "loudness (Lucid Sonic Dreams) or onset (a beat-exact kick from the onset strength)",
        "motion",
        choices=PULSE_MODES,
        label="Pulse from",
    )
    normalize: str = table_field(
        CHOICE,
        "global",
        "how envelopes are scaled to 0..1: global (the excerpt's min and max: one loud hit flattens "
        "the rest) or running (a min and max that forget within seconds, as live mode does)",
        "motion",
        choices=NORMALIZE_MODES,
        label="Envelope scaling",
    )
    pulse_percussive: bool = table_field(
        FLAG, True, "pulse follows the percussive part of the song", "motion", lsd=True, label="Pulse: percussive part"
    )
    pulse_harmonic: bool = table_field(
        FLAG,
        False,
        "pulse follows the harmonic part (both or neither: the full mix)",
        "motion",
        lsd=True,
        label="Pulse: harmonic part",
    )
    motion_percussive: bool = table_field(
        FLAG, False, "motion follows the percussive part", "motion", lsd=True, label="Motion: percussive part"
    )
    motion_harmonic: bool = table_field(
        FLAG,
        True,
        "motion follows the harmonic part (both or neither: the full mix)",
        "motion",
        lsd=True,
        label="Motion: harmonic part",
    )
    motion_randomness: float = table_field(
        NUMBER,
        0.5,
        "how unevenly the latent dimensions drift",
        "motion",
        lsd=True,
        **_UNIT,
        label="Motion unevenness",
        timeline=True,
    )
    # --- classes (conditional styles)
    classes: tuple[int | str, ...] | None = table_field(
        INDICES,
        None,
        "classes (conditional styles) that the 12 pitches map to: indices, or names for BigGAN (ImageNet)",
        "classes",
        lsd=True,
        lo=0,
        unset="up to 12 random classes (from seed)",
        example="1, 5, 9 or goldfish, daisy",
        label="Classes",
    )
    dominant_classes_first: bool = table_field(
        FLAG,
        False,
        "give the first class to the most dominant pitch",
        "classes",
        lsd=True,
        label="Strongest pitch gets the first class",
    )
    class_pitch_react: float = table_field(
        NUMBER,
        0.5,
        "how strongly pitches drive classes",
        "classes",
        lsd=True,
        lo=0.0,
        hi=100.0,
        label="Pitch to class strength",
        timeline=True,
    )
    class_smooth_seconds: float = table_field(
        NUMBER,
        1.0,
        "smoothing window of class changes, seconds",
        "classes",
        lsd=True,
        lsd_note="whole seconds only",
        lo=0.0,
        hi=600.0,
        label="Class smoothing (s)",
    )
    class_complexity: float = table_field(
        NUMBER,
        1.0,
        "magnitude of the class vector",
        "classes",
        lsd=True,
        lo=0.0,
        hi=100.0,
        label="Class vector size",
        timeline=True,
    )
    class_shuffle_seconds: float | tuple[float, ...] | None = table_field(
        TIMES,
        None,
        "rotate the class list every N seconds (or at a list of times)",
        "classes",
        lsd=True,
        lsd_note="whole seconds; list times must match a frame exactly",
        unset="never",
        example="4 or 0, 12.5, 30",
        label="Shuffle classes every (s)",
    )
    class_shuffle_strength: float = table_field(
        NUMBER,
        0.5,
        "how far the class list rotates at each shuffle",
        "classes",
        lsd=True,
        **_UNIT,
        label="Shuffle strength",
    )
    chroma: str = table_field(
        CHOICE,
        "stft",
        "the pitch analysis that drives the classes: stft (the STFT chroma) or cqt "
        "(librosa's chroma_cqt, as Lucid Sonic Dreams; slower, not in live mode)",
        "classes",
        choices=CHROMA_MODES,
        label="Pitches from",
    )
    # --- effects
    contrast_percussive: bool | None = table_field(
        FLAG,
        None,
        "contrast follows the percussive part (enables the contrast effect)",
        "effects",
        lsd=True,
        lsd_note="False is impossible",
        unset="true, once the effect is on",
        labels=_TRISTATE,
        label="Contrast follows",
    )
    flash_percussive: bool | None = table_field(
        FLAG,
        None,
        "flash follows the percussive part (enables the flash effect)",
        "effects",
        lsd=True,
        lsd_note="False is impossible",
        unset="true, once the effect is on",
        labels=_TRISTATE,
        label="Flash follows",
    )
    custom_effects: tuple[Any, ...] = table_field(
        EFFECTS,
        (),
        "list of EffectsGenerator, applied in order",
        "effects",
        lsd=True,
        api_only=True,
        label="Custom effects",
    )
    # --- StyleGAN options
    truncation_psi: float = table_field(
        NUMBER,
        1.0,
        "StyleGAN's own truncation: pulls w towards the average "
        "image (1: none), after truncation's scaling of the latent",
        "stylegan",
        lo=-2.0,
        hi=2.0,
        slider=True,
        step=0.05,
        label="StyleGAN truncation ψ (w space)",
    )
    truncation_cutoff: int | None = table_field(
        INTEGER,
        None,
        "StyleGAN: truncate only the first N layers' w",
        "stylegan",
        lo=0,
        hi=64,
        unset="all layers",
        zero_unset="all layers",
        label="Truncate only the first layers",
    )
    noise_mode: str = table_field(
        CHOICE, "const", "StyleGAN noise inputs", "stylegan", choices=NOISE_MODES, label="StyleGAN noise"
    )
    # --- musical control of StyleGAN's w (per layer), beyond Lucid Sonic Dreams
    band_react: tuple[float, float, float] = table_field(
        NUMBERS,
        (0.0, 0.0, 0.0),
        "low, mid, high: how much bass/mids/highs move the coarse/middle/fine layers",
        "control",
        lo=0.0,
        hi=10.0,
        size=3,
        broadcast=True,
        example="0.4 or 0.4, 0.2, 0.3",
        label="Bass / mids / highs",
    )
    band_edges_hz: tuple[float, float] = table_field(
        NUMBERS,
        (250.0, 2000.0),
        "the two band edges in Hz (low/mid, mid/high), increasing",
        "control",
        lo=20.0,
        hi=11000.0,
        size=2,
        example="250, 2000",
        label="Band edges (Hz)",
    )
    noise_react: float = table_field(
        NUMBER,
        0.0,
        "StyleGAN2: hits scale the noise inputs (shimmer on the beat)",
        "control",
        **_REACT,
        label="Noise shimmer on hits",
    )
    # --- keyframe images
    keyframes: tuple[tuple[float, str], ...] | None = table_field(
        KEYFRAMES,
        None,
        "{time_s: image}: the video passes through the generator's reconstruction of each image",
        "keyframes",
        unset="none",
        example="42=cover.png, 60=x.png",
        label="Keyframe images",
    )
    keyframe_window_seconds: float = table_field(
        NUMBER,
        2.0,
        "seconds over which the video blends into and out of each keyframe",
        "keyframes",
        lo=0.0,
        hi=600.0,
        label="Keyframe blend (s)",
    )
    keyframe_w_plus: bool | None = table_field(
        FLAG,
        None,
        "fit keyframe images per layer (W+): closer, less like the model's own images",
        "keyframes",
        unset="auto: per layer only where one w falls short of 30 dB",
        labels=_W_PLUS,
        label="Per-layer projection (W+)",
    )
    projection_steps: int = table_field(
        INTEGER,
        500,
        "most optimisation steps per keyframe image (stops once converged; cached once done)",
        "keyframes",
        lo=1,
        hi=100_000,
        label="Projection steps",
    )
    # --- StyleGAN3
    rotate_react: float = table_field(
        NUMBER,
        0.0,
        "StyleGAN3: the motion envelope turns the image (turns/second at full loudness)",
        "stylegan3",
        **_REACT,
        label="Turn with the music",
        timeline=True,
    )
    translate_react: float = table_field(
        NUMBER,
        0.0,
        "StyleGAN3: the motion envelope slides the image (image widths/second)",
        "stylegan3",
        **_REACT,
        label="Slide with the music",
        timeline=True,
    )
    # --- separate stems (paths), aligned to the song
    pulse_audio: str | None = table_field(
        PATH, None, "separate audio stem for the pulse", "stems", lsd=True, unset="the song", label="Pulse stem"
    )
    motion_audio: str | None = table_field(
        PATH, None, "separate audio stem for motion", "stems", lsd=True, unset="the song", label="Motion stem"
    )
    class_audio: str | None = table_field(
        PATH, None, "separate audio stem for classes", "stems", lsd=True, unset="the song", label="Classes stem"
    )
    contrast_audio: str | None = table_field(
        PATH,
        None,
        "separate audio stem for the contrast effect (enables it)",
        "stems",
        lsd=True,
        unset="the song",
        label="Contrast stem",
    )
    flash_audio: str | None = table_field(
        PATH,
        None,
        "separate audio stem for the flash effect (enables it)",
        "stems",
        lsd=True,
        unset="the song",
        label="Flash stem",
    )
    output_audio: str | None = table_field(
        PATH,
        None,
        "audio muxed into the video instead of the song",
        "stems",
        lsd=True,
        unset="the song",
        label="Soundtrack",
    )
    # --- output file: format and quality (lsd_jax.media.formats)
    codec: str = table_field(
        CHOICE,
        "auto",
        "output format; auto: by the output's name (.mp4 h264, .mov prores, .webm vp9, .gif, .webp, folder/ png)",
        "output",
        choices=CODECS,
        label="Format",
    )
    quality: int | None = table_field(
        INTEGER,
        None,
        "the format's quality number: crf for h264/h265/vp9 (lower is better), 0-100 for webp (higher is better)",
        "output",
        lo=0,
        hi=100,
        unset="the format's default",
        zero_unset="the format's default",  # crf 0 is lossless: the web page has the lossless box
        label="Quality",
    )
    lossless: bool = table_field(
        FLAG, False, "lossless video (h264, h265, vp9, webp): large files, for editing", "output", label="Lossless"
    )
    loop_seconds: float | None = table_field(
        NUMBER,
        None,
        "a seamless loop this long (from start): the latent path closes on itself (for GIFs and VJ clips)",
        "output",
        lo=0.0,
        lo_open=True,
        hi=600.0,
        unset="no loop",
        zero_unset="no loop",
        label="Loop (s)",
    )
    loop_bars: int | None = table_field(
        INTEGER,
        None,
        "a seamless loop of this many bars (4 beats) at the song's tempo, from start",
        "output",
        lo=1,
        hi=256,
        unset="no loop",
        zero_unset="no loop",
        label="Loop (bars)",
    )
    soundtrack: bool = table_field(
        FLAG, True, "mux the song into the video (false, or --no-audio: a silent video)", "output", label="Sound"
    )

    def __post_init__(self) -> None:
        for p in PARAMS:
            object.__setattr__(self, p.name, p.check(getattr(self, p.name)))  # frozen dataclass
        # the rules that involve more than one field
        if (self.width is None) != (self.height is None):
            raise ParamError("give both width and height, or neither (use resolution for a square video)")
        if not isinstance(self.speed_fpm, str) and self.speed_fpm > self.fps * 60:
            raise ParamError(f"speed_fpm must be between 0 and fps*60 = {self.fps * 60:g}, got {self.speed_fpm:g}")
        if self.loop_seconds is not None and self.loop_bars is not None:
            raise ParamError("loop_seconds: give loop_seconds or loop_bars, not both")
        if (self.loop_seconds is not None or self.loop_bars is not None) and self.duration is not None:
            raise ParamError("duration: a loop sets the length (loop_seconds or loop_bars); leave duration unset")
        if self.lossless and self.quality is not None:
            raise ParamError("quality: give quality or lossless, not both")
        if not self.band_edges_hz[0] < self.band_edges_hz[1]:
            raise ParamError(f"band_edges_hz must be increasing, within 20 Hz..11 kHz, got {self.band_edges_hz!r}")

    @property
    def w_control(self) -> bool:
        """Whether StyleGAN's w is steered per frame and layer (keyframes, bands, noise)."""
        return bool(self.keyframes) or any(self.band_react) or self.noise_react > 0

    # --- derived values, so every consumer reads them the same way
    @property
    def tracks_beats(self) -> bool:
        """Whether the song's beats are needed: ``speed_fpm`` "beat"/"bar", or a timeline keyed by beats or bars."""
        return isinstance(self.speed_fpm, str) or any(
            isinstance(v, Timeline) and v.needs_beats for v in (getattr(self, p.name) for p in PARAMS if p.timeline)
        )

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
        for p in PARAMS:
            v = getattr(self, p.name)
            if v != p.default and not p.api_only:
                out[p.name] = list(v) if isinstance(v, tuple) else v
        return out


def table_of(params_class: type) -> tuple[Param, ...]:
    """The rows of a parameter dataclass whose fields were made with :func:`table_field`, each named after its field
    (``lsd``: the field's name unless the row gave another)."""
    rows = []
    for f in dataclasses.fields(params_class):
        p = f.metadata["param"]
        rows.append(dataclasses.replace(p, name=f.name, lsd=f.name if p.lsd == "" else p.lsd))
    return tuple(rows)


#: The parameter table, in declaration order.
PARAMS: tuple[Param, ...] = table_of(RenderParams)
#: The table by name (a read-only view).
PARAM: Mapping[str, Param] = types.MappingProxyType({p.name: p for p in PARAMS})
PARAM_NAMES = frozenset(PARAM)


def unknown_names_error(names: Sequence[str], known: Sequence[str] = tuple(PARAM)) -> ParamError:
    """ "unknown parameter 'pulse_reac' (did you mean 'pulse_react'?)" for each of ``names``."""
    import difflib

    hints = []
    for u in sorted(names):
        close = difflib.get_close_matches(u, list(known), n=1)
        hints.append(f"{u!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ParamError("unknown parameter " + ", ".join(hints))


def make_params(base: RenderParams | None = None, /, **kwargs: Any) -> RenderParams:
    """Build validated params from keywords, rejecting unknown names with a suggestion."""
    unknown = set(kwargs) - PARAM_NAMES
    if unknown:
        raise unknown_names_error(sorted(unknown))
    if base is None:
        return RenderParams(**kwargs)
    return dataclasses.replace(base, **kwargs)


def parse_value(name: str, value: Any) -> Any:
    """A parameter's value as written on the command line or in a web form → its Python value.

    Text is parsed by the parameter's kind: ``classes`` "1, 5, 9"; ``class_shuffle_seconds`` "4" or
    "1.5, 3"; ``band_react`` "0.4" (all three bands) or "0.4, 0.2, 0.3"; ``band_edges_hz`` "250, 2000";
    ``speed_fpm`` a number, "beat" or "bar"; ``keyframes`` "42=cover.png, 60=x.png"; flags
    true/false/yes/no/on/off/1/0; commas or semicolons separate items. Empty text is the default;
    "none" unsets an optional parameter. Anything but text is returned unchanged. The result is
    what :func:`make_params` takes (which checks ranges); a malformed text is a ParamError naming
    the parameter, the text and the expected form.
    """
    if name not in PARAM:
        raise unknown_names_error([name])
    return PARAM[name].parse(value) if isinstance(value, str) else value


# --- the README's parameter reference

MARKDOWN_BEGIN = "<!-- parameters: generated from lsd_jax/params.py by `lsd-jax params --markdown`; edit it there -->"
MARKDOWN_END = "<!-- parameters: end -->"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(
    table: Sequence[Param] | None = None,
    groups: Mapping[str, str] | None = None,
    begin: str = MARKDOWN_BEGIN,
    end: str = MARKDOWN_END,
    origin: str = "Lucid Sonic Dreams",
) -> str:
    """The README's parameter reference (one table per group), between its markers. Default: the render
    parameters; :mod:`lsd_jax.dmv.params` passes its own table (``origin``: the tool whose names ``Param.lsd``
    holds)."""
    table, groups = (PARAMS, GROUPS) if table is None else (table, groups or {})
    lines = [begin]
    for group, title in groups.items():
        rows = [p for p in table if p.group == group]
        if not rows:
            continue
        lines += [
            "",
            f"**{title}**",
            "",
            f"| parameter | default | values | meaning | {origin} |",
            "|---|---|---|---|---|",
        ]
        for p in rows:
            default = f"`{p.format(p.default)}`" if p.default is not None and p.kind != EFFECTS else p.default_text()
            lsd = "new" if p.lsd is None else "yes" if p.lsd == p.name else f"as `{p.lsd}`"
            if p.lsd_note:
                lsd += f" (there: {p.lsd_note})"
            lines.append(f"| `{p.name}` | {_md(default)} | {_md(p.range_text())} | {_md(p.help)} | {_md(lsd)} |")
    lines += ["", end]
    return "\n".join(lines)


def table_text(table: Sequence[Param] | None = None, groups: Mapping[str, str] | None = None) -> str:
    """The table as plain text, one parameter a line (``lsd-jax params``; default: the render parameters)."""
    table, groups = (PARAMS, GROUPS) if table is None else (table, groups or {})
    width = max(len(p.name) for p in table)
    lines = []
    for group, title in groups.items():
        lines += ["", f"{title}:"]
        lines += [
            f"  {p.name:{width}}  {p.help} [{p.range_text()}; default: {p.default_text()}]"
            for p in table
            if p.group == group
        ]
    return "\n".join(lines[1:])


@dataclass(frozen=True, eq=False)
class EffectsGenerator:
    """A custom effect, as in Lucid Sonic Dreams.

    func: ``func(array, strength, amplitude)``; audio: a path to its own audio (default: the
    song); strength: passed to func unchanged; percussive: drive it by the percussive part.
    """

    func: Callable[..., Any]
    audio: str | None = None
    strength: float = 0.5
    percussive: bool = True
    _traceable: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise ParamError(f"EffectsGenerator func must be callable, got {self.func!r}")
        try:
            params = inspect.signature(self.func).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None:
            names = list(params)
            positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            varargs = any(p.kind == p.VAR_POSITIONAL for p in params.values())
            if len(positional) < 3 and not varargs:
                raise ParamError(
                    f"EffectsGenerator func must take (array, strength, amplitude); {self.func!r} takes {names}"
                )
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)):
            raise ParamError(f"EffectsGenerator strength must be a number, got {self.strength!r}")
        if self.audio is not None:
            object.__setattr__(self, "audio", str(self.audio))

    def traceable(self, height: int, width: int) -> bool:
        """Whether func traces under JAX (and so can be fused into the compiled step)."""
        if not self._traceable:
            import jax  # here, not at import: the parameter table loads without JAX
            import jax.numpy as jnp

            spec = jax.ShapeDtypeStruct((height, width, 3), jnp.float32)
            amp = jax.ShapeDtypeStruct((), jnp.float32)
            try:
                out = jax.eval_shape(lambda a, m: self.func(a, self.strength, m), spec, amp)
                ok = getattr(out, "shape", None) == (height, width, 3)
            except Exception:  # any failure to trace means: run it on the host
                ok = False
            self._traceable.append(ok)
        return self._traceable[0]
