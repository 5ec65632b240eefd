"""Command-line flags generated from a parameter table (:mod:`lsd_jax.params`, :mod:`lsd_jax.dmv.params`): one
``--name-with-dashes`` flag per row, parsed by the table's own parser, for ``lsd-jax render|demo|dmv`` and
``lsd-jax live``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from . import params as P
from .errors import ParamError
from .params import GROUPS, PARAM_NAMES, PARAMS, Param

__all__ = ["add_param_arguments", "params_from", "text_parser", "timeline_file"]


def text_parser(p: Param) -> Any:
    """argparse ``type`` for parameter ``p``: the table's one parser, its errors as argparse's."""

    def parse(text: str) -> Any:
        try:
            return p.parse(text)
        except ParamError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = p.name  # argparse names the type in some messages
    return parse


_METAVAR = {
    P.NUMBER: "X",
    P.INTEGER: "N",
    P.FLAG: "BOOL",
    P.PATH: "FILE",
    P.OUTPUT: "FILE",
    P.INDICES: "I,J,...",
    P.TIMES: "S[,S,...]",
    P.SPEED: "FPM|beat|bar",
    P.KEYFRAMES: "T=IMAGE,...",
}


def _metavar(p: Param) -> str:
    if p.timeline:
        return "X|WHEN:X,..."  # a number, or a timeline (0:0.3,16bar:1.5)
    if p.kind == P.CHOICE:
        return "{" + ",".join(map(str, p.choices)) + "}"
    if p.kind == P.NUMBERS:
        return "X" + ("[" if p.broadcast else "") + ",X" * (p.size - 1) + ("]" if p.broadcast else "")
    return _METAVAR[p.kind]


def add_param_arguments(
    ap: argparse.ArgumentParser,
    names: Any = None,
    table: Any = None,
    groups: Any = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """One ``--name-with-dashes`` flag per parameter of the table (``--name_with_underscores``, Lucid
    Sonic Dreams' spelling, works too), grouped as in the table, each with its range and default.
    ``names``: only these parameters (default: all). Default table: the render parameters; ``lsd-jax dmv``
    passes Deep Music Visualizer's table and groups. ``defaults``: the command's own defaults where they differ
    from the table's (``lsd-jax live``: 30 fps, 256), shown in the help instead."""
    defaults = defaults or {}
    table, groups = (PARAMS, GROUPS) if table is None else (table, groups)
    for group, title in groups.items():
        rows = [p for p in table if p.group == group and not p.api_only and (names is None or p.name in names)]
        if not rows:
            continue
        g = ap.add_argument_group(f"render parameters: {title.lower()}" if group == "basic" else title)
        for p in rows:
            default = p.format(defaults[p.name]) if p.name in defaults else p.default_text()
            text = f"{p.help} [{p.range_text()}; default: {default}]"
            g.add_argument(
                f"--{p.name.replace('_', '-')}",
                dest=p.name,
                type=text_parser(p),
                default=argparse.SUPPRESS,
                metavar=_metavar(p),
                help=text.replace("%", "%%"),
            )
            if "_" in p.name:  # Lucid Sonic Dreams' spelling, accepted but not listed twice
                g.add_argument(
                    f"--{p.name}", dest=p.name, type=text_parser(p), default=argparse.SUPPRESS, help=argparse.SUPPRESS
                )


def params_from(ns: argparse.Namespace) -> dict[str, Any]:
    """The render parameters among parsed arguments (only those given: their flags default to absent), over those of
    a ``--timeline`` file (:func:`timeline_file`) when one was given."""
    given = {k: v for k, v in vars(ns).items() if k in PARAM_NAMES}
    path = getattr(ns, "timeline", None)
    return {**timeline_file(path), **given} if path else given


def timeline_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parameters of a ``--timeline`` JSON file: one object, ``{name: value}``, each value a number, text as its
    flag takes it, or a timeline ``{when: value, "interp": ...}`` (:class:`lsd_jax.params.Timeline`). Read as data
    only; errors (unreadable, not JSON, unknown names, bad text) are ParamErrors naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ParamError(f"timeline: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParamError(f"timeline: {path} is not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(data, dict):
        raise ParamError(f'timeline: {path} must hold one JSON object, {{"pulse_react": {{"0": 0.3, "16bar": 1.5}}}}')
    try:
        unknown = sorted(set(data) - PARAM_NAMES)
        if unknown:
            raise P.unknown_names_error(unknown)
        values = {k: P.parse_value(k, v) for k, v in data.items()}
        # timelines checked here, so an error names the file too
        return {k: P.PARAM[k].check(v) if isinstance(v, dict) else v for k, v in values.items()}
    except ParamError as e:
        raise ParamError(f"timeline {path}: {e}") from None
