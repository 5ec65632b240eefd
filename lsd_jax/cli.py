"""Command line: ``lsd-jax render | demo | convert | styles``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

from .errors import LsdError
from .params import RenderParams, param_help

# Parameters that only the Python API can take.
_API_ONLY = {"custom_effects"}


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_or_list(text: str) -> float | tuple[float, ...]:
    try:
        if "," in text:
            return tuple(float(x) for x in text.split(",") if x.strip())
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or comma-separated numbers, got {text!r}") from None


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _speed(text: str) -> float | str:
    if text.strip().lower() in ("beat", "bar"):
        return text.strip().lower()
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, 'beat' or 'bar', got {text!r}") from None


def _keyframes(text: str) -> dict[float, str]:
    out = {}
    for item in text.split(","):
        t, sep, path = item.partition("=")
        try:
            out[float(t)] = path.strip()
        except ValueError:
            sep = ""
        if not sep or not path.strip():
            raise argparse.ArgumentTypeError(f"expected TIME=IMAGE[,TIME=IMAGE...], got {text!r}")
    return out


def _parser_for(field: dataclasses.Field) -> Any:
    special = {"classes": _int_list, "class_shuffle_seconds": _float_or_list, "band_react": _float_list,
               "band_edges_hz": _float_list, "speed_fpm": _speed, "keyframes": _keyframes}
    if field.name in special:
        return special[field.name]
    hints = typing.get_type_hints(RenderParams)[field.name]
    args = set(typing.get_args(hints)) - {type(None)} if isinstance(hints, types.UnionType) else {hints}
    if bool in args:
        return _bool
    if int in args and float not in args:
        return int
    if float in args:
        return float
    return str


def add_param_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("render parameters (Lucid Sonic Dreams names; --name or --name-with-dashes)")
    helps = param_help()
    for f in dataclasses.fields(RenderParams):
        if f.name in _API_ONLY:
            continue
        flags = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        default = f.default
        group.add_argument(*flags, dest=f.name, type=_parser_for(f), default=argparse.SUPPRESS,
                           metavar=f.name.split("_")[-1].upper(), help=f"{helps.get(f.name, '')} (default: {default})")


def _params_from(ns: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(RenderParams)}
    return {k: v for k, v in vars(ns).items() if k in names}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lsd-jax", description="Music-reactive GAN videos in JAX.")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render a music video of a song")
    r.add_argument("song", help="audio file (wav, flac, ogg, mp3, m4a, ...)")
    r.add_argument("-o", "--output", default=None, help="output .mp4 (default: <song>.mp4 beside the song)")
    r.add_argument("--style", default="default", help="'default', a catalogue name, or a .pkl/.npz path")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    add_param_arguments(r)

    d = sub.add_parser("demo", help="render the built-in demo song with the default style")
    d.add_argument("-o", "--output", default="demo.mp4")
    d.add_argument("--seconds", type=float, default=12.0, help="length of the demo song")
    d.add_argument("--style", default="default")
    d.add_argument("--quiet", action="store_true")
    add_param_arguments(d)

    c = sub.add_parser("convert", help="convert an NVIDIA StyleGAN .pkl to a .safetensors file (no code from it runs)")
    c.add_argument("input", help="NVIDIA .pkl (StyleGAN2 TF, StyleGAN2-ADA PyTorch, StyleGAN3)")
    c.add_argument("output", help="output .safetensors")

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


def _run(args: argparse.Namespace) -> int:
    from .pipeline import render

    if args.command in ("render", "demo"):
        if args.command == "demo":
            from .demo import write_demo_song
            from .paths import cache_dir

            song = write_demo_song(cache_dir() / f"demo-{args.seconds:g}s.wav", seconds=args.seconds)
            output = args.output
            params = {"resolution": 256, "fps": 30.0, "contrast_strength": 0.3, "flash_strength": 0.2,
                      **_params_from(args)}
        else:
            song = Path(args.song)
            output = args.output or song.with_suffix(".mp4").name
            params = _params_from(args)
        result = render(song, style=args.style, output=output, progress=not args.quiet, **params)
        print(f"wrote {result.path}  ({result.summary()})")
        return 0
    if args.command == "convert":
        from .weights import convert

        out = convert(args.input, args.output)
        print(f"wrote {out}")
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
