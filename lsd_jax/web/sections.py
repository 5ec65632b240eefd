"""The song's form on the page: its picture after upload, and per-section values for the main sliders.

* :func:`form_picture`: the song's analysis (:func:`lsd_jax.audio.structure.analyze`, cached per song, so the render
  that follows reads it again for free) drawn small (:func:`lsd_jax.audio.structure.draw`) for the song column.
* The per-section table (the page-only input ``section_values``): one row per section label of the song (A, B, …)
  and a ``drop`` row when it has drops; one column per parameter of :data:`SECTION_PARAMS`. :func:`table_rows`
  fills it after upload; :func:`section_timelines` turns its filled cells into timelines keyed by label
  (``{"A": 0.5, "B": 1.2}``) for the render, where an empty cell keeps the slider's value. The render call, the
  shown snippet and the video's recipe then hold those timelines like any other.

Everything but :func:`widgets` is plain Python (no Gradio): the page's handlers and :func:`lsd_jax.web.form`
call it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..engine.timeline import DIRECTED
from ..errors import ParamError
from ..params import PARAM

#: The page-only input holding the table.
FIELD = "section_values"
#: The table's columns after the label: the sliders the director scales by loudness (pulse, motion, effects).
SECTION_PARAMS: tuple[str, ...] = DIRECTED
HEADERS: tuple[str, ...] = ("section", *SECTION_PARAMS)
DROP = "drop"
#: The picture's size in the song column (px): small, the song's whole length across.
PICTURE_SIZE = (640, 150)
PICTURE_SR = 4000  # the waveform's peak envelope needs no more (the analysis itself decodes at its own rate)


def form_picture(song: Any) -> tuple[Any, Any]:
    """``(form, picture)``: the :class:`~lsd_jax.audio.structure.SongForm` of the audio file ``song`` (cached) and a
    PIL image :data:`PICTURE_SIZE` of it over the waveform (sections coloured by label, beats, bars, drops).
    AudioError for a file that cannot be read or is silent."""
    from ..audio.structure import analyze, draw
    from ..media.decode import load_audio

    song = str(getattr(song, "name", song))
    form = analyze(song)
    y = load_audio(song, sr=PICTURE_SR)
    return form, draw(form, y, *PICTURE_SIZE)


def table_rows(form: Any, keep: Any = None) -> list[list[str]]:
    """The table's rows for ``form`` (any object with ``.sections`` (``.label``) and ``.drops``): one per label in
    order of first appearance, then ``drop`` when there are drops; the cells empty, or as in the table ``keep``
    for the labels it has (a recipe's values stay when its song is uploaded after it)."""
    labels = list(dict.fromkeys(s.label for s in form.sections))
    if len(form.drops):
        labels.append(DROP)
    try:
        old = dict(_rows(keep))
    except ParamError:  # not a table: start empty
        old = {}
    cell = lambda v: "" if _empty(v) else str(v).strip()  # noqa: E731
    return [[label] + [cell(old.get(label, {}).get(n)) for n in SECTION_PARAMS] for label in labels]


def _rows(table: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(label, {parameter: cell})`` per row of ``table``: None, rows (lists, the label first, the parameters in
    :data:`HEADERS` order), Gradio's ``{"headers": [...], "data": [...]}`` or a pandas DataFrame."""
    if table is None:
        return []
    headers: list[str] = list(HEADERS)
    if hasattr(table, "columns") and hasattr(table, "values"):  # a pandas DataFrame (the component's default type)
        headers, data = [str(c) for c in table.columns], table.values.tolist()
    elif isinstance(table, Mapping):
        headers, data = [str(h) for h in table.get("headers") or HEADERS], list(table.get("data") or [])
    elif isinstance(table, (list, tuple)):
        data = list(table)
    else:
        raise ParamError(f"{FIELD}: a table of section values (rows: section, {', '.join(SECTION_PARAMS)}) is needed")
    unknown = [h for h in headers if h not in HEADERS]
    if unknown or not headers or headers[0] != "section":
        raise ParamError(f"{FIELD}: the columns are {', '.join(HEADERS)}; got {', '.join(headers)}")
    out = []
    for k, row in enumerate(data, 1):
        row = list(row) if isinstance(row, (list, tuple)) else [row]
        if len(row) > len(headers):
            raise ParamError(f"{FIELD}: row {k} has {len(row)} cells; the columns are {', '.join(headers)}")
        if all(_empty(c) for c in row):  # a blank row (an empty table is sent as [[]])
            continue
        label = "" if row[0] is None else str(row[0]).strip()
        out.append((label, dict(zip(headers[1:], row[1:]))))
    return out


def _empty(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):  # an empty cell of a pandas table
        return True
    return isinstance(cell, str) and not cell.strip()


def section_timelines(table: Any, sliders: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The filled cells of the per-section ``table`` as timelines: parameter → ``{label: value}`` (a step timeline
    keyed by the section labels; ``"drop"`` from each drop until the next section). A parameter with a filled cell
    gets a point for every label row, the empty ones at ``sliders[name]`` (the slider's value; None, an effect that is
    off, is 0), and one for ``drop`` when that cell is filled; a parameter without one is left out (its slider's
    number stands). Each row's values are checked by
    the parameter table; a ParamError names ``section_values``, the section and the parameter."""
    rows = _rows(table)
    seen: set[str] = set()
    for label, _ in rows:
        if not (label == DROP or re.fullmatch(r"[A-Z]{1,2}", label)):
            raise ParamError(f'{FIELD}: {label!r} is not a section label (A, B, …) or "{DROP}"')
        if label in seen:
            raise ParamError(f"{FIELD}: section {label} is listed twice")
        seen.add(label)
    out: dict[str, dict[str, Any]] = {}
    for name in SECTION_PARAMS:
        filled = {label: cells.get(name) for label, cells in rows if not _empty(cells.get(name))}
        if not filled:
            continue
        base = sliders.get(name)
        points: dict[str, Any] = {}
        for label, _ in rows:
            if label == DROP and label not in filled:
                continue  # an empty drop cell: the section's value goes on through its drops
            value = filled.get(label, 0.0 if base is None else base)
            try:
                number = float(str(value).strip()) if isinstance(value, str) else float(value)
            except (TypeError, ValueError):
                raise ParamError(f"{FIELD}: section {label}, {name}: {value!r} is not a number") from None
            try:
                PARAM[name].check(number)  # the table's range, its own words
            except ParamError as e:
                raise ParamError(f"{FIELD}: section {label}, {e}") from None
            points[label] = number
        out[name] = points
    return out


def by_section(timeline: Any) -> bool:
    """Whether ``timeline`` (a :class:`~lsd_jax.params.Timeline`) is keyed by section labels and drops only (what
    the table can show)."""
    return all(isinstance(k, str) and (k == DROP or re.fullmatch(r"[A-Z]{1,2}", k)) for k, _ in timeline.points)


def table_from(params: Any) -> list[list[str]]:
    """The table that gives ``params``' (a RenderParams: a video's recipe) timelines keyed by section: one row per
    label in the order given, ``drop`` last; [] when there are none (the inverse of :func:`section_timelines`)."""
    from ..params import Timeline

    given = {
        n: dict(v.points) for n in SECTION_PARAMS if isinstance(v := getattr(params, n), Timeline) and by_section(v)
    }
    labels = list(dict.fromkeys(k for points in given.values() for k in points if k != DROP))
    labels += [DROP] if any(DROP in points for points in given.values()) else []
    return [
        [label] + [f"{given[n][label]:g}" if label in given.get(n, {}) else "" for n in SECTION_PARAMS]
        for label in labels
    ]


def widgets() -> tuple[Any, Any]:
    """The song column's ``(picture, table)``: hidden until a song is analysed (see :func:`upload_updates`)."""
    import gradio as gr

    picture = gr.Image(
        label="The song's form: sections by letter, beats and bars below, drops in red",
        show_label=False,  # (the label would cover the letters; the table's label says what the picture shows)
        type="pil",
        format="png",
        interactive=False,
        visible=False,
        buttons=["download"],
        elem_id="song-form",
    )
    table = gr.Dataframe(
        value=[],
        headers=list(HEADERS),
        datatype="str",
        type="pandas",  # (with the headers the client sent: an API client may send some columns only)
        static_columns=[0],
        interactive=True,
        visible=False,
        label=(
            f"{FIELD}: the song's sections (above: by letter, beats and bars below, drops in red) and their values "
            "for these sliders (empty: the slider's value; drop: from each drop to the next section)"
        ),
        elem_id="section-values",
    )
    original = table.preprocess

    def preprocess(payload: Any) -> Any:  # rows that do not fit the headers: named here, not a deep traceback
        try:
            return original(payload)
        except (ValueError, TypeError, AssertionError) as e:
            raise gr.Error(f"{FIELD}: not a table of section values: {e}", print_exception=False) from None

    table.preprocess = preprocess
    table.api_info = lambda: {  # (Gradio's own text is about pandas)
        "type": "object",
        "description": f"per-section values: {{'headers': {list(HEADERS)}, 'data': [['A', '', 1.2, '', ''], ...]}}",
    }
    return picture, table


def upload_updates(form_and_picture: tuple[Any, Any] | None, keep: Any = None) -> tuple[Any, Any]:
    """The picture's and the table's updates after an upload: shown and filled from ``(form, picture)``
    (:func:`form_picture`; the cells of ``keep``, the table as it was, for the labels the song has), hidden and
    emptied without one (the song could not be analysed, or is gone)."""
    import gradio as gr

    if form_and_picture is None:
        return gr.update(value=None, visible=False), gr.update(value=[], visible=False)
    form, picture = form_and_picture
    return gr.update(value=picture, visible=True), gr.update(value=table_rows(form, keep), visible=True)
