"""The page's parameters: widgets generated from the parameter table, and the page's values → params.

Every render parameter gets a widget from its row of :data:`lsd_jax.params.PARAMS` (kind, range,
step, default, human label, help), in the table's groups; the server's limits (largest size, fps)
narrow the ranges, and the excerpt's length starts at :attr:`AppConfig.excerpt_seconds`. Two inputs
exist only on the page: ``keyframe_times`` with the uploaded ``keyframe_images`` (together:
``keyframes``). :func:`params_from_ui` turns the values the page sends into
:func:`~lsd_jax.params.make_params` keywords, with the page's conventions: 0 means "not set" where a
number box cannot be empty, an effect strength of 0 switches the effect off, and text (``speed_fpm``
takes a number, "beat" or "bar") is read by the table's one parser.

The style menu lists the styles this server can get (:func:`lsd_jax.store.catalogue.fetchable`); the others only
when asked.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ParamError
from ..params import (
    CHOICE,
    EFFECTS,
    FLAG,
    GROUPS,
    INDICES,
    INTEGER,
    KEYFRAMES,
    NUMBER,
    NUMBERS,
    PARAM,
    PARAMS,
    PATH,
    SPEED,
    TIMES,
    Param,
    Timeline,
    parse_value,
    unknown_names_error,
)
from .config import MAX_APP_FPS, AppConfig
from .sections import FIELD as SECTION_FIELD
from .sections import by_section, section_timelines, table_from

log = logging.getLogger("lsd_jax.web")


@dataclass(frozen=True)
class Field:
    """One input of the page. ``kind``: slider, number, int, checkbox, checkboxes (several of ``choices``),
    radio, tristate (a radio over an optional flag's labels), speed (a number, beat or bar), text (a list or
    number as text), file (an audio stem), files or table (the per-section values: :mod:`lsd_jax.web.sections`)."""

    name: str
    kind: str
    value: Any
    group: str
    help: str = ""
    label: str = ""
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    note: str = ""
    choices: tuple[Any, ...] = ()


#: Uploaded keyframe images; their times come from the ``keyframe_times`` field (-> ``keyframes``).
KEYFRAME_IMAGES = "keyframe_images"
#: What the speed_fpm box suggests (any number up to fps·60 is taken too).
SPEED_CHOICES = ("0", "6", "12", "24", "48", "beat", "bar")
#: The keyframe times box: read like class_shuffle_seconds ("10" or "10, 42.5"), by the table's parser.
_KEYFRAME_TIMES = Param(
    "keyframe_times", TIMES, None, "seconds, one per uploaded keyframe image", "keyframes", example="10, 42.5"
)
#: The aspects the page's format checkboxes offer (two or more ticked: one file each, from one render).
FORMAT_CHOICES = ("16:9", "9:16", "1:1")
#: Page fields that are not RenderParams fields (turned into them by params_from_ui; formats by formats_from_ui).
PAGE_ONLY = frozenset({"keyframe_times", "formats", SECTION_FIELD})
STEMS = tuple(p.name for p in PARAMS if p.kind == PATH)
#: Parameters the page builds from other inputs (keyframes) or cannot take (Python objects).
NOT_ON_PAGE = frozenset(p.name for p in PARAMS if p.kind in (KEYFRAMES, EFFECTS))


def _limits(cfg: AppConfig) -> dict[str, float]:
    """This server's upper limits, tighter than the library's."""
    return {
        "fps": MAX_APP_FPS,
        "resolution": cfg.max_resolution,
        "width": cfg.max_resolution,
        "height": cfg.max_resolution,
    }


def _field(p: Param, limits: Mapping[str, float]) -> Field:
    common = dict(name=p.name, group=p.group, help=p.help, label=p.label or p.name)
    if p.kind == SPEED:
        return Field(
            kind="speed",
            value=p.format(p.default),
            choices=SPEED_CHOICES,
            lo=p.lo,
            note=f"a number {p.range_text()}",
            **common,
        )
    if p.kind in (NUMBER, INTEGER):
        his = [h for h in (p.ui_hi if p.slider and p.ui_hi is not None else p.hi, limits.get(p.name)) if h is not None]
        kind = "slider" if p.slider else "int" if p.kind == INTEGER else "number"
        value = p.default if p.default is not None else 0 if p.slider else None
        return Field(
            kind=kind,
            value=value,
            lo=0 if p.zero_unset else p.lo,
            hi=min(his) if his else None,
            step=p.step,
            note=f"0: {p.zero_unset}" if p.zero_unset else "",
            **common,
        )
    if p.kind == FLAG and p.optional:
        labels = dict(p.labels)
        return Field(
            kind="tristate", value=next(k for k, v in labels.items() if v is None), choices=tuple(labels), **common
        )
    if p.kind == FLAG:
        return Field(kind="checkbox", value=p.default, **common)
    if p.kind == CHOICE:
        return Field(kind="radio", value=p.default, choices=p.choices, **common)
    if p.kind in (INDICES, TIMES, NUMBERS):
        note = "; ".join(
            x for x in (f"e.g. {p.example}" if p.example else "", f"empty: {p.unset}" if p.optional else "") if x
        )
        return Field(kind="text", value=p.format(p.default), note=note, **common)
    if p.kind == PATH:
        return Field(kind="file", value=None, **common)
    raise AssertionError(f"no widget for {p.name} ({p.kind})")


def _page_only(group: str, after: bool = False) -> tuple[Field, ...]:
    """The page's own inputs in ``group``, before the table's (``after``: those after them)."""
    if group == "basic" and after:
        return (
            Field(
                "formats",
                "checkboxes",
                (),
                group,
                help="one tick: the video has that aspect; several: one file per aspect from one render, "
                "shorter side = resolution",
                label="Formats",
                choices=FORMAT_CHOICES,
            ),
        )
    if group == "keyframes" and not after:
        return (
            Field(
                "keyframe_times",
                "text",
                "",
                group,
                help=_KEYFRAME_TIMES.help,
                label="Keyframe times (s)",
                note=f"e.g. {_KEYFRAME_TIMES.example}",
            ),
            Field(
                KEYFRAME_IMAGES,
                "files",
                None,
                group,
                help="keyframe images (one per time above)",
                label="Keyframe images",
            ),
        )
    return ()


def page_fields(cfg: AppConfig | None = None) -> tuple[Field, ...]:
    """Every input of the page, group by group in the table's order (stems included). With ``cfg``
    the excerpt's length starts at ``cfg.excerpt_seconds`` (else the library's default: to the end) and ``direct``
    at "sections" (the app's default; the library's is off)."""
    limits = _limits(cfg or AppConfig())
    out: list[Field] = []
    for group in GROUPS:
        out += _page_only(group)
        out += [_field(p, limits) for p in PARAMS if p.group == group and p.name not in NOT_ON_PAGE]
        out += _page_only(group, after=True)
    # the per-section table sits with the song (filled after upload), in no group of the table
    out.append(Field(SECTION_FIELD, "table", (), "song", help="per-section values", label="Per-section values"))
    if cfg is not None and cfg.excerpt_seconds:
        out = [dataclasses.replace(f, value=cfg.excerpt_seconds) if f.name == "duration" else f for f in out]
    if cfg is not None:  # the app lets the song's form direct the video (the library's default stays off)
        out = [dataclasses.replace(f, value="sections") if f.name == "direct" else f for f in out]
    return tuple(out)


_FIELDS = {f.name: f for f in page_fields()}  # the kinds do not depend on the server's limits
BASIC_NAMES = tuple(f.name for f in page_fields() if f.group == "basic")
ADVANCED_NAMES = tuple(f.name for f in page_fields() if f.group not in ("basic", "stems") and f.name != KEYFRAME_IMAGES)
PARAM_INPUTS = BASIC_NAMES + ADVANCED_NAMES
#: The inputs of the /render and /preview endpoints, in order.
INPUT_NAMES = ("song", "style", "style_file", *STEMS, KEYFRAME_IMAGES, *PARAM_INPUTS)


def ui_defaults(cfg: AppConfig | None = None) -> dict[str, Any]:
    """The widgets' initial values, by name (files: None); see :func:`page_fields` for ``cfg``."""
    return {f.name: f.value for f in page_fields(cfg)}


def _keyframes_from_ui(times: Any, images: Any) -> dict[float, str] | None:
    images = [str(getattr(i, "name", i)) for i in (images or [])]
    t = _KEYFRAME_TIMES.parse(times) if isinstance(times, str) else times
    t = [] if t is None else [t] if isinstance(t, (int, float)) else list(t)
    if not images and not t:
        return None
    if len(images) != len(t):
        raise ParamError(
            f"keyframe_times: give one time per keyframe image; got {len(t)} time(s) for {len(images)} image(s)"
        )
    return dict(zip(t, images))


def ui_values(params: Any) -> dict[str, Any]:
    """The widgets' values that show ``params`` (a RenderParams; e.g. a video's recipe, to render it again):
    the inverse of :func:`params_from_ui` for every widget but the files (stems, keyframe images), which the
    visitor uploads again."""
    out: dict[str, Any] = {}
    for name, f in _FIELDS.items():
        if f.kind in ("file", "files") or name in PAGE_ONLY:
            continue
        p, v = PARAM[name], getattr(params, name)
        if isinstance(v, Timeline):  # a slider shows one number: the first; the table shows those keyed by section
            v = v.points[0][1]
        if f.kind == "tristate":
            v = next(label for label, value in p.labels if value == v)
        elif f.kind in ("text", "speed"):
            v = p.format(v) if v is not None else ""
        elif v is None and name in ("contrast_strength", "flash_strength") and getattr(params, f"{name[:-9]}_on"):
            v = params.effect_strength(name[:-9])  # on at its default strength (the page's 0 is off)
        elif v is None and (p.zero_unset or f.kind == "slider"):
            v = 0
        out[name] = v
    out[SECTION_FIELD] = table_from(params)
    return out


def recipe_to_ui(path: Any) -> tuple[dict[str, Any], str]:
    """The widgets' values and a note for the page from the recipe inside a video made by lsd-jax (``path``):
    its parameters (:func:`ui_values`), its style when it is the default or a catalogue name; the note says
    what to upload again (the song, a style file, stems). A ParamError or OutputError when it has no good recipe."""
    from pathlib import Path

    from ..media.recipe import read_recipe

    rec = read_recipe(str(getattr(path, "name", path)))
    values = ui_values(rec.params)
    again = [f"the song {rec.song}"]
    if rec.style == "default" or rec.style in catalogue_names():
        values["style"] = rec.style
    else:
        again.append(f"the style file {Path(rec.style).name}")
    again += [f"{name} {Path(str(getattr(rec.params, name))).name}" for name in STEMS if getattr(rec.params, name)]
    if rec.params.keyframes:
        again.append("the keyframe images")
    note = f"Loaded the recipe of {Path(str(getattr(path, 'name', path))).name}; upload {', '.join(again)}"
    note += ", change what you like (e.g. the resolution) and render again."
    if any(isinstance(v, Timeline) and not by_section(v) for v in vars(rec.params).values()):
        note += " Its timelines by seconds, beats or bars show their first value here (the API takes them whole)."
    return values, note


def formats_from_ui(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The ticked format checkboxes (``values["formats"]``: a list, or text like "16:9, 1:1"), in the page's
    order; () when none. A ParamError naming ``formats`` for anything else."""
    v = values.get("formats") or ()
    ticked = [x.strip() for x in v.split(",")] if isinstance(v, str) else [str(x).strip() for x in v]
    ticked = [x for x in ticked if x]
    bad = [x for x in ticked if x not in FORMAT_CHOICES]
    if bad:
        raise ParamError(f"formats: {', '.join(map(repr, bad))} is not one of {', '.join(FORMAT_CHOICES)}")
    return tuple(f for f in FORMAT_CHOICES if f in ticked)


def params_from_ui(values: Mapping[str, Any]) -> dict[str, Any]:
    """Widget values -> keyword arguments for :func:`make_params` (missing ones: the page's
    defaults). 0 or empty means "not set" where the library's default is None; an effect
    strength of 0 is off; text is read by :func:`lsd_jax.params.parse_value`."""
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise unknown_names_error(sorted(unknown), list(_FIELDS))
    merged = {**ui_defaults(), **values}
    out: dict[str, Any] = {}
    merged.pop("formats", None)  # not a parameter: see formats_from_ui
    per_section = merged.pop(SECTION_FIELD, None)
    keyframes = _keyframes_from_ui(merged.pop("keyframe_times", None), merged.pop(KEYFRAME_IMAGES, None))
    if keyframes:
        out["keyframes"] = keyframes
    for name, v in merged.items():
        p, f = PARAM[name], _FIELDS[name]
        if f.kind == "file":
            if v:
                out[name] = str(getattr(v, "name", v))
            continue
        if f.kind == "tristate":
            labels = dict(p.labels)
            if v not in labels:
                raise ParamError(f"{name} must be one of {', '.join(labels)}; got {v!r}")
            v = labels[v]
        elif isinstance(v, str):
            v = parse_value(name, v)
        if p.kind == INTEGER and isinstance(v, float) and v.is_integer():
            v = int(v)
        if p.zero_unset and (v is None or v == 0):
            v = None
        out[name] = v
    # filled cells of the per-section table: timelines keyed by section label (before the effects' off switch:
    # a strength given per section switches its effect on)
    out.update(section_timelines(per_section, out))
    for effect in ("contrast", "flash"):  # strength 0 (the slider's default): the effect is off
        if out.get(f"{effect}_strength") is None:
            out[f"{effect}_percussive"] = None
    # None only where the library's default is None (a cleared box elsewhere is a mistake)
    for name in [k for k, v in out.items() if v is None and not PARAM[k].optional]:
        raise ParamError(f"{name} needs a value")
    return out


def catalogue_names() -> list[str]:
    """ "default" first, then the catalogue's names (just "default" when the catalogue is unavailable)."""
    try:
        from ..store.catalogue import load_catalogue

        names = sorted(load_catalogue())
    except Exception as e:  # a broken user catalogue must not take the page down
        log.warning("style catalogue unavailable: %s", e)
        names = []
    return ["default"] + [n for n in names if n != "default"]


def style_choices(show_all: bool = False) -> list[tuple[str, str]]:
    """The style menu: (label, value) pairs, the embedded default first, then the styles this server can use.
    Those it cannot (:func:`lsd_jax.store.catalogue.unavailable_reason`: no downloadable link, a dead one, or every
    host unreachable when the server probed it) are left out, or with ``show_all`` listed apart after them,
    each marked "— unavailable: why"."""
    choices = [("default (embedded, no download)", "default")]
    try:
        from ..store.catalogue import load_catalogue, unavailable_reason

        cat = load_catalogue()
    except Exception:
        return choices
    apart = []
    for name in catalogue_names()[1:]:
        e = cat[name]
        why = unavailable_reason(e)
        if why and not show_all:
            continue
        bits = [
            f"{e.resolution} px" if getattr(e, "resolution", None) else None,
            "conditional" if getattr(e, "conditional", None) else None,
        ]
        label = name + (f" ({', '.join(b for b in bits if b)})" if any(bits) else "")
        (apart if why else choices).append((f"{label} — unavailable: {why}" if why else label, name))
    return choices + apart


# --------------------------------------------------------------------------------------------------
# Gradio components


def _checked_by_the_table(component: Any, name: str) -> Any:
    """A number widget whose out-of-range values reach the parameter table's checks, which name the
    parameter and the valid range next to the field (Gradio's own check raises before that, unnamed);
    every widget bound is also a table or server limit that :func:`~lsd_jax.web.jobs.prepare_job`
    checks. Not a number at all is refused here, by name. Wraps the instance's ``preprocess``: a
    Component subclass would make Gradio write a .pyi stub beside this module at import time."""
    import gradio as gr

    original = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return original(payload)
        except gr.Error:
            return payload
        except TypeError:
            raise gr.Error(
                f"{name} must be a number, got {payload!r}", title="Parameter problem", print_exception=False
            ) from None

    component.preprocess = preprocess
    return component


def component(f: Field) -> Any:
    """The Gradio component for ``f`` (``elem_id``: ``param-<name>``, stems ``stem-<name>``)."""
    import gradio as gr

    info = f"{f.name}: {f.help}" + (f" ({f.note})" if f.note else "")
    common = dict(label=f.label or f.name, info=info, elem_id=f"param-{f.name}")
    if f.kind == "slider":
        # .lsd-checked: the page keeps a typed value out of range for the table to refuse (page.FIELDS_JS)
        slider = gr.Slider(f.lo, f.hi, value=f.value, step=f.step, elem_classes=["lsd-checked"], **common)
        return _checked_by_the_table(slider, f.name)
    if f.kind in ("number", "int"):
        step = {"step": f.step} if f.step is not None else {}
        return _checked_by_the_table(
            gr.Number(
                value=f.value, minimum=f.lo, maximum=f.hi, precision=0 if f.kind == "int" else None, **step, **common
            ),
            f.name,
        )
    if f.kind == "speed":
        box = gr.Dropdown(choices=list(f.choices), value=f.value, allow_custom_value=True, filterable=True, **common)
        box.api_info = lambda: {"type": "string", "description": "a number, beat or bar"}  # any number is taken
        return box
    if f.kind == "checkbox":
        return gr.Checkbox(value=f.value, min_width=200, **common)
    if f.kind == "checkboxes":
        return gr.CheckboxGroup(choices=list(f.choices), value=list(f.value), **common)
    if f.kind in ("radio", "tristate"):
        return gr.Radio(choices=list(f.choices), value=f.value, **common)
    if f.kind == "text":
        return gr.Textbox(value=f.value, max_lines=1, placeholder=f.note, **common)
    if f.kind == "file":
        return gr.File(
            label=f"{f.label} ({f.name}): {f.help}", file_types=["audio"], elem_id=f"stem-{f.name}", min_width=200
        )
    if f.kind == "files":
        return gr.File(
            label=f"{f.label} ({f.help})", file_count="multiple", file_types=["image"], elem_id="keyframe-images"
        )
    raise AssertionError(f.kind)
