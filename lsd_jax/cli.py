"""Command line: ``lsd-jax render | preview | demo | dmv | live | convert | params | recipe | styles``.

``render``, ``preview`` and ``demo`` talk before the progress bar: a stage line as each stage starts (the first
before JAX is imported; the engine reports its stages through ``stage=``) and, for a render, an estimate of its time
from the speeds earlier renders measured on this machine (:mod:`lsd_jax.store.speeds`).

The render parameters' flags come from the parameter table (:mod:`lsd_jax.params`, via :mod:`lsd_jax.flags`),
Deep Music Visualizer mode's (``lsd-jax dmv``) from its table (:mod:`lsd_jax.dmv.params`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DownloadError, LsdError, ParamError
from .flags import add_param_arguments, params_from, text_parser


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lsd-jax", description="Music-reactive GAN videos in JAX.")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render a music video of a song")
    r.add_argument(
        "song", nargs="?", default=None, help="audio file (wav, flac, ogg, mp3, m4a, ...); with --recipe, optional"
    )
    r.add_argument(
        "-o",
        "--output",
        default=None,
        help="output: .mp4, .mov, .webm, .gif, .webp, or folder/ for PNG frames (see --codec; default: <song "
        "name>.mp4 in the current folder, or <song name>.lsd.mp4 when that is the song itself); never written over "
        "an input",
    )
    r.add_argument(
        "--style",
        default=None,
        help="'default' (the default), a catalogue name, a .pkl/.safetensors path or a BigGAN-deep checkpoint folder",
    )
    r.add_argument(
        "--recipe",
        default=None,
        metavar="VIDEO",
        help="render again the take recorded in this video (or PNG folder, or recipe .json): its song, style and "
        "parameters; any flag given overrides one value",
    )
    r.add_argument(
        "--take",
        default=None,
        metavar="FOLDER",
        help="render a live performance recorded with lsd-jax live --take FOLDER: every frame, its changes at their "
        "frames, with its audio; at any size (--resolution, or --width and --height) and style (--style)",
    )
    r.add_argument(
        "--formats",
        default=None,
        metavar="ASPECTS",
        help="several shapes from one render, e.g. 16:9,9:16,1:1: one file per aspect (song.16x9.mp4, ...), each "
        "frame generated at its own shape, sizes from --resolution as the shorter side (default 1080)",
    )
    r.add_argument(
        "--excerpt",
        default=None,
        metavar="loudest[:SECONDS]",
        help="render only the loudest stretch of the song: loudest (30 s) or loudest:SECONDS, as the web app's "
        "default excerpt (instead of --start/--duration)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar or stage lines")
    r.add_argument(
        "--timeline",
        default=None,
        metavar="FILE.json",
        help='parameters in one JSON file, each a number or {when: value} ({"pulse_react": {"0": 0.3, "16bar": 1.5, '
        '"interp": "linear"}}); flags given win',
    )
    r.add_argument(
        "--no-audio", dest="soundtrack", action="store_false", default=argparse.SUPPRESS, help="a silent video"
    )
    add_param_arguments(r)

    pv = sub.add_parser(
        "preview",
        help="stills at the loudest moments of a song, exactly as the render would make them (PNG files)",
        description="A few stills at the loudest moments, through the same analysis, latents and compiled step as "
        "`lsd-jax render` with the same flags, so each still is that frame of the video (the web app's Preview).",
    )
    pv.add_argument("song", help="audio file (wav, flac, ogg, mp3, m4a, ...)")
    pv.add_argument(
        "-o", "--output", default=None, metavar="FOLDER", help="folder for the stills (default: <song name>.preview)"
    )
    pv.add_argument(
        "--style", default=None, help="'default' (the default), a catalogue name or a .pkl/.safetensors path"
    )
    pv.add_argument("--stills", type=int, default=6, help="how many stills (1 to 100; default 6)")
    pv.add_argument(
        "--excerpt", default=None, metavar="loudest[:SECONDS]", help="as render's: only the loudest stretch"
    )
    pv.add_argument("--quiet", action="store_true", help="no stage lines")
    add_param_arguments(pv)

    d = sub.add_parser("demo", help="render the built-in demo song with the default style")
    d.add_argument("-o", "--output", default="demo.mp4", help="output file (default: demo.mp4)")
    d.add_argument("--seconds", type=float, default=12.0, help="length of the demo song (1 to 600 s; default 12)")
    d.add_argument(
        "--style", default="default", help="'default' (the default), a catalogue name or a .pkl/.safetensors path"
    )
    d.add_argument("--quiet", action="store_true", help="no progress bar or stage lines")
    add_param_arguments(d, defaults=DEMO_DEFAULTS)

    v = sub.add_parser(
        "dmv",
        help="Deep Music Visualizer mode: BigGAN-deep driven by pitch and tempo",
        description="Deep Music Visualizer (msieg/deep-music-visualizer) on lsd-jax: its parameters "
        "and defaults, exact frame rate 22050/frame_length, the song muxed in.",
    )
    v.add_argument("song", help="audio file (wav, flac, ogg, mp3, m4a, ...)")
    v.add_argument(
        "--model",
        default=None,
        help="a BigGAN-deep checkpoint folder (config.json + pytorch_model.bin) "
        "or catalogue name (default: biggan-deep-<resolution>)",
    )
    v.add_argument(
        "-o",
        dest="output_file",
        type=text_parser(_dmv_params().DMV_PARAM["output_file"]),
        default=argparse.SUPPRESS,
        help="the same as --output-file",
    )
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    add_param_arguments(v, table=_dmv_params().DMV_PARAMS, groups=_dmv_params().DMV_GROUPS)

    sub.add_parser(
        "live",
        add_help=False,
        help="live mode: visuals follow a microphone, a shared tab or a file "
        "in real time, in a page this serves (lsd-jax live --help)",
    )

    c = sub.add_parser("convert", help="convert an NVIDIA StyleGAN .pkl to a .safetensors file (no code from it runs)")
    c.add_argument(
        "input", help="NVIDIA .pkl (StyleGAN2 TF, StyleGAN2-ADA PyTorch, StyleGAN3) or a BigGAN-deep checkpoint folder"
    )
    c.add_argument("output", help="output .safetensors")

    p = sub.add_parser("params", help="list the render parameters: help, range, default")
    p.add_argument("--markdown", action="store_true", help="the README's parameter reference (Markdown)")
    p.add_argument("--dmv", action="store_true", help="Deep Music Visualizer mode's parameters (lsd-jax dmv)")

    rc = sub.add_parser("recipe", help="print the recipe stored in a video made by lsd-jax (JSON)")
    rc.add_argument("video", help="a video, a PNG folder or a recipe .json")

    an = sub.add_parser("analyze", help="the song's form: tempo, bars, sections (A B A …) and drops")
    an.add_argument("song", help="an audio file")
    an.add_argument("--plot", default=None, metavar="PNG", help="also draw the form over the waveform into this image")

    s = sub.add_parser("styles", help="list the style catalogue (no network), or add your own model")
    s.add_argument(
        "--add",
        nargs=2,
        metavar=("NAME", "FILE"),
        help="a catalogue style's file you downloaded yourself (copied into the cache), or a new style "
        "(a .pkl path or URL) for your user catalogue",
    )
    s.add_argument("--sha256", default=None, help="checksum for --add")
    s.add_argument("--overwrite", action="store_true", help="with --add: replace an entry of the same name")
    return ap


# the demo's own defaults where they differ from render's (its --help shows these)
DEMO_DEFAULTS: dict[str, Any] = {"resolution": 256, "fps": 30.0, "contrast_strength": 0.3, "flash_strength": 0.2}


def _dmv_params() -> Any:
    from .dmv import params as dmv_params

    return dmv_params


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["live"]:  # its own parser (lsd_jax.web.live_page), imported only here: it needs gradio
        from .web.live_page import main as live_main

        try:
            return live_main(argv[1:])
        except LsdError as e:
            print(f"lsd-jax live: error: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    with _terminate_as_interrupt() as received:
        try:
            return _run(args)
        except LsdError as e:
            print(f"lsd-jax: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            how = f"terminated ({signal.Signals(received[0]).name})" if received else "interrupted"
            print(f"lsd-jax: {how}", file=sys.stderr)
            return 128 + (received[0] if received else signal.SIGINT)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM (``kill``, a job scheduler) and SIGHUP (the terminal or ssh session closed) stop the command like
    Ctrl-C: the render's clean-up runs (ffmpeg is stopped, the ``.part`` file and the temporary WAV are removed)
    instead of the process vanishing with ffmpeg still writing (unless the signal was ignored, as under ``nohup``).
    Yields the list the signal's number is put in; the previous handlers come back after."""
    received: list[int] = []
    # a signal already ignored stays ignored: `nohup lsd-jax render ...` must survive its terminal closing
    signums = [
        getattr(signal, name)
        for name in ("SIGTERM", "SIGHUP")
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN
    ]
    if threading.current_thread() is not threading.main_thread() or not signums:
        yield received
        return

    def handler(signum: int, frame: Any) -> None:
        if not received:  # once: a second signal must not interrupt the clean-up
            received.append(signum)
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


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


def seconds_since_process_start() -> float | None:
    """How long this process has run (Linux: from /proc; None elsewhere): the CLI reports its first frame
    from the command's start, imports included."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: clock ticks after boot
        return float(Path("/proc/uptime").read_text().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None


def _render_take(args: argparse.Namespace, stages: _StageLines) -> int:
    """``lsd-jax render --take FOLDER``: the take's performance, offline (:func:`lsd_jax.live.take.render_take`)."""
    if args.song is not None or args.recipe is not None or getattr(args, "formats", None):
        raise ParamError("--take renders the take's own audio: give no song, --recipe or --formats with it")
    stages("importing JAX", None)
    from .live.take import render_take

    with _info_log(not args.quiet):
        result = render_take(args.take, args.output, style=args.style, progress=not args.quiet, **params_from(args))
    print(f"wrote {result.path}  ({result.n_frames} frames, {result.size[1]}x{result.size[0]})")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    """``lsd-jax analyze song [--plot png]``: print the form's table; draw its picture."""
    from .audio.structure import analyze, draw, format_table
    from .errors import OutputError

    plot = Path(args.plot).expanduser() if args.plot else None
    if plot is not None and plot.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise OutputError(f"--plot {args.plot}: the picture must be a .png, .jpg or .webp file")
    if plot is not None and not plot.parent.is_dir():
        raise OutputError(f"--plot {args.plot}: the folder {plot.parent} does not exist")
    form = analyze(args.song)
    print(format_table(form))
    if plot is not None:
        from .media.decode import load_audio

        try:
            draw(form, load_audio(args.song, sr=8000)).save(plot)
        except OSError as e:
            raise OutputError(f"--plot {args.plot}: cannot write the picture: {e}") from None
        print(f"wrote {plot}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command in ("render", "demo"):
        stages = _StageLines(not args.quiet)
        stages("starting", None)  # before JAX is imported: the terminal talks at once

        if args.command == "demo":
            from .audio.demo_song import check_seconds, write_demo_song
            from .store.paths import cache_dir

            check_seconds(args.seconds)
            song = write_demo_song(cache_dir() / f"demo-{args.seconds:g}s.wav", seconds=args.seconds)
            output = args.output
            params = {**DEMO_DEFAULTS, **params_from(args)}
        elif args.take is not None:
            return _render_take(args, stages)
        elif args.recipe is not None:
            from .engine.pipeline import from_recipe
            from .media.outputs import default_output, refuse_overwrite

            song, style, rparams = from_recipe(args.recipe, args.song, args.style, **params_from(args))
            output = args.output or default_output(song, [style, args.recipe, *rparams.to_kwargs().values()])
            refuse_overwrite(Path(output), [args.recipe], "output")  # the recipe's video is an input too
            params = {"params": rparams}
            args.style = style
        else:
            from .media.outputs import default_output

            if args.song is None:
                raise ParamError("song: give the song to render (or --recipe VIDEO to render a take again)")
            song = Path(args.song)
            params = params_from(args)
            if args.excerpt is not None:
                params = {**params, **_loudest_excerpt(song, args.excerpt, params, stages)}
            output = args.output or default_output(song, [args.style, *params.values()])
        age = seconds_since_process_start()
        # the estimate and the speed it keeps are a single render's (one shape); --formats makes several
        talk = stages.on and not getattr(args, "formats", None)
        key, _, _ = _estimate(song, args.style, params, stages) if talk else (None, None, 0)
        stages("importing JAX", None)
        t_import = time.perf_counter()
        from .engine.pipeline import render  # JAX loads here: the other commands start without it

        import_s = time.perf_counter() - t_import

        if getattr(args, "formats", None):
            from .engine.pipeline import render_formats

            with _info_log(not args.quiet):
                results = render_formats(
                    song,
                    args.style,
                    formats=args.formats,
                    output=output,
                    progress=not args.quiet,
                    stage=stages if stages.on else None,
                    **params,
                )
            for res in results:
                print(f"wrote {res.path}  ({res.summary()})")
            return 0
        with _info_log(not args.quiet):  # e.g. each keyframe's PSNR and time
            result = render(
                song,
                style=args.style,
                output=output,
                progress=not args.quiet,
                stage=stages if stages.on else None,
                **params,
            )
        if key is not None:
            _record_speed(key, result, import_s)
        first, cpu = result.timings.first_frame, result.timings.first_frame_cpu
        since_start = (
            ""
            if None in (age, first)
            else (f"; first frame {age + first:.2f} s after the command started ({cpu:.2f} s of CPU time)")
        )
        print(f"wrote {result.path}  ({result.summary()}{since_start})")
        return 0
    if args.command == "preview":
        return _preview(args)
    if args.command == "recipe":
        import json

        from .media.recipe import parse_recipe, recipe_of

        text = recipe_of(args.video)
        parse_recipe(text)  # checked, as any input
        print(json.dumps(json.loads(text), indent=2))
        return 0
    if args.command == "dmv":
        from .dmv.params import DMV_PARAM
        from .dmv.pipeline import deep_music_visualizer

        kwargs = {k: v for k, v in vars(args).items() if k in DMV_PARAM}
        try:
            result = deep_music_visualizer(Path(args.song), args.model, progress=not args.quiet, **kwargs)
        except DownloadError as e:
            if args.model is not None:
                raise
            # the catalogue's model could not be fetched: say how to give one already on disk
            raise DownloadError(
                f"{e} To use a BigGAN-deep checkpoint you have (config.json + pytorch_model.bin in one folder): "
                f"lsd-jax dmv {args.song} --model FOLDER"
            ) from None
        print(f"wrote {result.path}  ({result.summary()})")
        return 0
    if args.command == "convert":
        from .store.weights import convert

        out = convert(args.input, args.output)
        print(f"wrote {out}")
        return 0
    if args.command == "params":
        from .params import markdown, table_text

        if args.dmv:
            from .dmv.params import DMV_GROUPS, DMV_PARAMS, dmv_markdown

            print(dmv_markdown() if args.markdown else table_text(DMV_PARAMS, DMV_GROUPS))
        else:
            print(markdown() if args.markdown else table_text())
        return 0
    if args.command == "analyze":
        return _analyze(args)
    if args.command == "styles":
        from .store.catalogue import add_style, show_styles

        if args.add:
            name, where = args.add
            entry = None if args.overwrite else _catalogued(name)
            local = Path(where).expanduser()
            if entry is not None and (local.is_file() or (entry.beside and local.is_dir())):  # BigGAN: a folder
                from .store.catalogue import install_style_file

                path = install_style_file(entry.name, where)
                print(f"installed {where} as style {entry.name!r} ({path})")
                return 0
            add_style(name, where, sha256=args.sha256, overwrite=args.overwrite)
            print(f"added {name.lower()}")
            return 0
        show_styles()
        return 0
    raise AssertionError(args.command)


class _StageLines:
    """The CLI's stage lines on stderr, ``lsd-jax: [  2.2 s] decoding and analysing the song …``: each stage as it
    starts, stamped with the seconds since the command started (the engine reports its stages through
    ``render(stage=...)``: :data:`lsd_jax.engine.pipeline.StageFn`). Of a stage's end only the last one's, the first
    frames, is a line of its own; the others' times are the differences of the stamps. ``on=False``: silent."""

    def __init__(self, on: bool = True) -> None:
        self.on = on
        since = seconds_since_process_start()
        self.t0 = time.perf_counter() - (since or 0.0)

    def __call__(self, what: str, seconds: float | None) -> None:
        if not self.on:
            return
        if seconds is None:
            self.say(f"{what} …")
        elif what.startswith("compiling"):
            self.say(f"compiled in {seconds:.1f} s (the first batch): rendering")

    def say(self, text: str) -> None:
        if self.on:
            print(f"lsd-jax: [{time.perf_counter() - self.t0:6.1f} s] {text}", file=sys.stderr, flush=True)


def _preview(args: argparse.Namespace) -> int:
    """``lsd-jax preview``: the stills as PNG files in a folder, named by their time in the song."""
    stages = _StageLines(not args.quiet)
    stages("starting", None)  # before JAX is imported
    if not 1 <= args.stills <= 100:
        raise ParamError(f"--stills: give 1 to 100 stills, got {args.stills}")
    song = Path(args.song)
    folder = Path(args.output) if args.output else Path(f"{song.stem}.preview")
    if folder.exists() and not folder.is_dir():
        raise ParamError(f"--output: {folder} is a file; give a folder for the stills")
    params = params_from(args)
    if args.excerpt is not None:
        params = {**params, **_loudest_excerpt(song, args.excerpt, params, stages)}
    stages("importing JAX", None)
    from PIL import Image

    from .engine.pipeline import prepare
    from .engine.preview import preview_of

    prep = prepare(song, args.style, progress=not args.quiet, stage=stages if stages.on else None, **params)
    stages(f"rendering {min(args.stills, prep.n_frames)} stills at the loudest moments (compiling first)", None)
    result = preview_of(prep, args.stills)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (t, frame) in enumerate(zip(result.times, result.frames, strict=True), 1):
        name = f"{i:02d}-at-{t:.2f}s.png"
        Image.fromarray(frame).save(folder / name)
        names.append(name)
    print(f"wrote {len(names)} stills to {folder}: {', '.join(names)}")
    return 0


def _loudest_excerpt(song: Path, text: str, params: dict[str, Any], stages: _StageLines) -> dict[str, Any]:
    """``--excerpt loudest[:SECONDS]`` as ``start`` and ``duration`` (the app's default excerpt: the loudest stretch,
    :func:`lsd_jax.audio.excerpt.loudest_stretch`)."""
    how, _, length = text.partition(":")
    if how.strip().lower() != "loudest":
        raise ParamError(f"--excerpt: {text!r} is not loudest or loudest:SECONDS (e.g. loudest:30)")
    try:
        seconds = float(length) if length.strip() else 30.0
    except ValueError:
        raise ParamError(f"--excerpt: {length!r} is not a number of seconds (e.g. loudest:30)") from None
    if not (0 < seconds < float("inf")):
        raise ParamError(f"--excerpt: the length must be more than 0 seconds, got {length}")
    given = [f"--{k}" for k in ("start", "duration", "loop_seconds", "loop_bars") if k in params]
    if given:
        raise ParamError(f"--excerpt chooses the start and length itself: leave out {' and '.join(given)}")
    from .audio.excerpt import loudest_stretch
    from .media.decode import audio_length

    stages(f"finding the loudest {seconds:g} s of {song.name}", None)
    total = audio_length(song)
    if total is not None and total <= seconds:
        stages.say(f"{song.name} is {total:.1f} s long: the whole song")
        return {}
    start = loudest_stretch(song, seconds)
    stages.say(f"the loudest {seconds:g} s start at {start:g} s")
    return {"start": start, "duration": seconds}


def _estimate(song: Path, style: Any, params: dict[str, Any], stages: _StageLines) -> tuple[Any, float | None, int]:
    """Say how long the render should take, from the speeds earlier renders measured on this machine
    (:mod:`lsd_jax.store.speeds`): (the speed key, the seconds of music, the frames); (None, None, 0) when the
    length or the parameters cannot be known before the render (it then says why itself)."""
    from .errors import AudioError
    from .media.decode import audio_length
    from .params import make_params
    from .store.speeds import load_speeds, round_time, speed_key

    try:
        rp = params["params"] if "params" in params else make_params(**params)
        length = audio_length(song)
    except (ParamError, AudioError):
        return None, None, 0  # the render says what is wrong, at its place
    if length is None:
        return None, None, 0
    seconds = max(0.0, length - rp.start)
    for limit in (rp.duration, rp.loop_seconds):
        if limit is not None:
            seconds = min(seconds, limit)
    key = speed_key(str(style or "default"), rp)
    book = load_speeds()
    e = book.estimate(key, seconds, rp.fps)
    what = f"{e.n_frames} frames ({seconds:.1f} s at {rp.fps:g} fps)"
    if e.seconds is None or e.frames_per_s is None:
        stages.say(f"{what}; no estimate yet: this render measures this machine's speed for this style and size")
    else:  # from now to the written file: importing JAX, preparing, compiling, the frames (the parts add up)
        start = f"{_duration(round(book.startup_s))} starting + " if book.startup_s >= 0.5 else ""
        stages.say(
            f"{what}; estimate: about {_duration(round_time(book.startup_s + e.seconds))} ({start}"
            f"{e.parts(_duration)}), from the speeds earlier renders measured on this machine"
        )
    return key, seconds, e.n_frames


def _duration(seconds: float) -> str:
    """``75`` -> "75 s", ``600`` -> "10 min"."""
    if seconds < 120:
        return f"{seconds:g} s"
    m, sec = divmod(int(round(seconds)), 60)
    return f"{m} min" + (f" {sec} s" if sec else "")


def _record_speed(key: Any, result: Any, import_s: float = 0.0) -> None:
    """Keep what this render measured (frames/s, compiling, preparation per second of music) and what importing JAX
    took (``import_s``) for the next estimate."""
    from .store.speeds import load_speeds, save_speeds

    t = result.timings
    fps = t.frames_per_s()
    if fps is None or t.compile is None or not result.fps > 0:
        return
    book = load_speeds()  # it keeps the mean of this render and the last (a shared machine varies)
    audio_s = result.n_frames / result.fps
    prep, compile_s = max(0.0, t.total - t.frames), max(0.0, t.compile - t.first_batch / fps)
    book.record_preparation(prep, audio_s, "job")
    book.record(key, fps, compile_s, "render")
    book.record_startup(import_s)
    save_speeds(book)


def _catalogued(name: str) -> Any:
    """The catalogue entry called ``name``, or None."""
    from .errors import StyleError
    from .store.catalogue import find_style

    try:
        return find_style(name)
    except StyleError:
        return None


if __name__ == "__main__":
    sys.exit(main())
