"""Command line: ``lsd-jax render | demo | convert | params | styles``.

The render parameters' flags are generated from the parameter table (:mod:`lsd_jax.params`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import params as P
from .errors import LsdError, ParamError
from .params import GROUPS, PARAM_NAMES, PARAMS, Param


def _text_parser(p: Param) -> Any:
    """argparse ``type`` for parameter ``p``: the table's one parser, its errors as argparse's."""

    def parse(text: str) -> Any:
        try:
            return p.parse(text)
        except ParamError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = p.name  # argparse names the type in some messages
    return parse


_METAVAR = {P.NUMBER: "X", P.INTEGER: "N", P.FLAG: "BOOL", P.PATH: "FILE", P.INDICES: "I,J,...",
            P.TIMES: "S[,S,...]", P.SPEED: "FPM|beat|bar", P.KEYFRAMES: "T=IMAGE,..."}


def _metavar(p: Param) -> str:
    if p.kind == P.CHOICE:
        return "{" + ",".join(p.choices) + "}"
    if p.kind == P.NUMBERS:
        return "X" + ("[" if p.broadcast else "") + ",X" * (p.size - 1) + ("]" if p.broadcast else "")
    return _METAVAR[p.kind]


def add_param_arguments(ap: argparse.ArgumentParser) -> None:
    """One ``--name-with-dashes`` flag per parameter of the table (``--name_with_underscores``, Lucid
    Sonic Dreams' spelling, works too), grouped as in the table, each with its range and default."""
    for group, title in GROUPS.items():
        rows = [p for p in PARAMS if p.group == group and not p.api_only]
        if not rows:
            continue
        g = ap.add_argument_group(f"render parameters: {title.lower()}" if group == "basic" else title)
        for p in rows:
            text = f"{p.help} [{p.range_text()}; default: {p.default_text()}]"
            g.add_argument(f"--{p.name.replace('_', '-')}", dest=p.name, type=_text_parser(p),
                           default=argparse.SUPPRESS, metavar=_metavar(p), help=text.replace("%", "%%"))
            if "_" in p.name:  # Lucid Sonic Dreams' spelling, accepted but not listed twice
                g.add_argument(f"--{p.name}", dest=p.name, type=_text_parser(p), default=argparse.SUPPRESS,
                               help=argparse.SUPPRESS)


def _params_from(ns: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(ns).items() if k in PARAM_NAMES}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lsd-jax", description="Music-reactive GAN videos in JAX.")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render a music video of a song")
    r.add_argument("song", help="audio file (wav, flac, ogg, mp3, m4a, ...)")
    r.add_argument("-o", "--output", default=None,
                   help="output .mp4 (default: <song name>.mp4 in the current folder, or <song name>.lsd.mp4 when "
                        "that is the song itself); never written over an input")
    r.add_argument("--style", default="default", help="'default', a catalogue name, or a .pkl/.safetensors path")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    add_param_arguments(r)

    d = sub.add_parser("demo", help="render the built-in demo song with the default style")
    d.add_argument("-o", "--output", default="demo.mp4")
    d.add_argument("--seconds", type=float, default=12.0, help="length of the demo song (1 to 600 s)")
    d.add_argument("--style", default="default")
    d.add_argument("--quiet", action="store_true")
    add_param_arguments(d)

    c = sub.add_parser("convert", help="convert an NVIDIA StyleGAN .pkl to a .safetensors file (no code from it runs)")
    c.add_argument("input", help="NVIDIA .pkl (StyleGAN2 TF, StyleGAN2-ADA PyTorch, StyleGAN3)")
    c.add_argument("output", help="output .safetensors")

    p = sub.add_parser("params", help="list the render parameters: help, range, default")
    p.add_argument("--markdown", action="store_true", help="the README's parameter reference (Markdown)")

    s = sub.add_parser("styles", help="list the style catalogue (no network), or add your own model")
    s.add_argument("--add", nargs=2, metavar=("NAME", "URL"), help="add a style to your user catalogue")
    s.add_argument("--sha256", default=None, help="checksum for --add")
    s.add_argument("--overwrite", action="store_true", help="with --add: replace an entry of the same name")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except LsdError as e:
        print(f"lsd-jax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lsd-jax: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _info_log(on: bool) -> Iterator[None]:
    """While rendering, lsd_jax's INFO log lines go to stderr (``lsd-jax: ...``)."""
    log = logging.getLogger("lsd_jax")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("lsd-jax: %(message)s"))
    level = log.level
    if on:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        if on:
            log.removeHandler(handler)
            log.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    from .pipeline import render

    if args.command in ("render", "demo"):
        if args.command == "demo":
            from .demo import check_seconds, write_demo_song
            from .paths import cache_dir

            check_seconds(args.seconds)
            song = write_demo_song(cache_dir() / f"demo-{args.seconds:g}s.wav", seconds=args.seconds)
            output = args.output
            params = {"resolution": 256, "fps": 30.0, "contrast_strength": 0.3, "flash_strength": 0.2,
                      **_params_from(args)}
        else:
            from .outputs import default_output

            song = Path(args.song)
            params = _params_from(args)
            output = args.output or default_output(song, [args.style, *params.values()])
        with _info_log(not args.quiet):  # e.g. each keyframe's PSNR and time
            result = render(song, style=args.style, output=output, progress=not args.quiet, **params)
        print(f"wrote {result.path}  ({result.summary()})")
        return 0
    if args.command == "convert":
        from .weights import convert

        out = convert(args.input, args.output)
        print(f"wrote {out}")
        return 0
    if args.command == "params":
        from .params import markdown, table_text

        print(markdown() if args.markdown else table_text())
        return 0
    if args.command == "styles":
        from .catalogue import add_style, show_styles

        if args.add:
            add_style(args.add[0], args.add[1], sha256=args.sha256, overwrite=args.overwrite)
            print(f"added {args.add[0].lower()}")
            return 0
        show_styles()
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
