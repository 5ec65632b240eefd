"""Takes: a live performance recorded so that it renders again offline, at any size and in any style.

``lsd-jax live ... --take take/`` (:class:`Take`) writes into a folder, as the session plays:

* ``settings.json``: the session's parameters as a recipe (:mod:`lsd_jax.media.recipe`: style name and sha256,
  every parameter), the clock's fps, the size shown, the seed and the versions;
* ``audio.wav``: every audio block as it arrived (float32, the channels as pushed), its header rewritten after each
  block, so the file is valid at any moment (Ctrl-C, SIGTERM, a crash);
* ``events.jsonl``: one line per audio block (``{"block": i, "n": samples, "t": arrival clock time}``) and one per
  pass of the render loop (:class:`~lsd_jax.live.session.TickRecord`: the ticks it stepped, the newest block each
  pooled, the change sets that took effect at its first tick, a style switch, the size rendered), flushed as
  written; a torn last line (the process killed mid-write) is ignored on reading.

:func:`render_take` replays it offline through the live loop's own per-tick maths (``LiveRenderer._tick``): the
same blocks through a fresh causal analysis, pooled into the same ticks, the same changes at the same ticks, so the
latents and effect amplitudes of every tick are the live ones; then every tick is rendered (none dropped) in
batches by the offline writer loop (:func:`lsd_jax.engine.pipeline.write_video`) with the take's audio muxed in,
at the take's size or any other, in its style or another. At the live size and style the frames equal those shown
(at the ticks rendered at full size) up to float rounding.
"""

from __future__ import annotations

import json
import os
import platform
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParamError
from ..params import RenderParams, make_params
from .session import LiveRenderer, TickRecord, place_audio

TAKE_VERSION = 1
SETTINGS, AUDIO, EVENTS = "settings.json", "audio.wav", "events.jsonl"
_SIZE_KEYS = ("resolution", "width", "height")


class WavAppender:
    """A float32 WAV written block by block, valid after every :meth:`write` (its RIFF and data sizes rewritten
    then), so a session stopped at any moment leaves a readable file."""

    HEADER = 44

    def __init__(self, path: Path, sr: int, channels: int):
        self.sr, self.channels, self.frames = int(sr), int(channels), 0
        self._f = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._header()

    def _header(self) -> None:
        data = self.frames * self.channels * 4
        self._f.seek(0)
        self._f.write(
            b"RIFF"
            + struct.pack("<I", 36 + data)
            + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 3, self.channels, self.sr, self.sr * self.channels * 4, self.channels * 4, 32)
            + b"data"
            + struct.pack("<I", data)
        )
        self._f.seek(0, os.SEEK_END)

    def write(self, samples: np.ndarray) -> None:
        """Append a block (n,) or (n, channels)."""
        x = np.asarray(samples, np.float32).reshape(-1, self.channels)
        self._f.write(np.ascontiguousarray(x).astype("<f4").tobytes())
        self.frames += x.shape[0]
        self._header()
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _versions() -> dict[str, str]:
    import jax

    from ..version import __version__

    python = platform.python_version()
    return {"lsd_jax": __version__, "jax": jax.__version__, "numpy": np.__version__, "python": python}


class Take:
    """Records a :class:`~lsd_jax.live.session.LiveRenderer`'s session into ``folder`` (see the module's docstring).
    Attach it before the session's first audio (as a recorder); :meth:`close` at the end (a take never closed, e.g.
    a killed process, still reads back up to its last whole line). ``style``: what the session's style was asked
    for by (a name or a path), recorded with its sha256; None: what the renderer was made with (a Python style is
    recorded as one: its replay needs a style given)."""

    def __init__(self, renderer: LiveRenderer, folder: Any, *, style: Any = None):
        from ..engine.pipeline import style_fingerprint
        from ..media.recipe import make_recipe

        self.folder = Path(folder).expanduser()
        if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise ParamError(f"take: {self.folder} already exists and is not an empty folder: choose a new one")
        if renderer._blocks:
            raise ParamError("take: attach it before the session's first audio (the analysis starts with the take)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.renderer = renderer
        asked = style if style is not None else renderer._target.name
        if isinstance(asked, (str, os.PathLike)):
            fingerprint = style_fingerprint(asked)
        else:  # an object, not a name that loads again: the replay needs a style given
            fingerprint = (f"<python {getattr(renderer.style, 'name', 'style')}>", None)
        recipe = make_recipe(
            renderer.params, self.folder / AUDIO, fingerprint, version=_versions()["lsd_jax"], cwd=Path.cwd()
        )
        settings = {
            "lsd_jax_take": TAKE_VERSION,
            "recipe": recipe,
            "fps": renderer.fps,
            "size": list(renderer.size),
            "seed": renderer.params.seed,
            "adapt": renderer.adapt,
            "versions": _versions(),
        }
        tmp = self.folder / f".{SETTINGS}.tmp"
        tmp.write_text(json.dumps(settings, indent=1))
        tmp.replace(self.folder / SETTINGS)
        self._lock = threading.Lock()
        self._events = open(self.folder / EVENTS, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self._wav: WavAppender | None = None
        self._blocks = 0
        self._t0_written = False
        self.closed = False
        renderer.add_audio_listener(self._on_audio)
        renderer.add_tick_listener(self._on_ticks)

    def _line(self, obj: dict[str, Any]) -> None:
        with self._lock:
            if not self.closed:
                self._events.write(json.dumps(obj, separators=(",", ":")) + "\n")
                self._events.flush()

    def _on_audio(self, samples: np.ndarray, sr: int, t: float) -> None:
        x = np.asarray(samples, np.float32)
        with self._lock:
            if self.closed:
                return
            if self._wav is None:
                self._wav = WavAppender(self.folder / AUDIO, sr, 1 if x.ndim == 1 else x.shape[1])
            self._wav.write(x)
            i, self._blocks = self._blocks, self._blocks + 1
        self._line({"block": i, "n": int(x.shape[0]), "t": float(t)})

    def _on_ticks(self, rec: TickRecord) -> None:
        from ..media.recipe import _json_value

        line: dict[str, Any] = {"ticks": [rec.first, rec.last], "through": list(rec.through), "size": list(rec.size)}
        if not self._t0_written:
            line["t0"], self._t0_written = float(rec.t0), True
        if rec.changes:
            line["changes"] = [
                {k: _json_value(k, v, Path.cwd()) for k, v in changes.items()} for changes in rec.changes
            ]
        if rec.style is not None:
            line["style"] = str(rec.style)
        self._line(line)

    def close(self) -> Path:
        """Finish the files; returns the folder."""
        with self._lock:
            if not self.closed:
                self.closed = True
                self._events.close()
                if self._wav is not None:
                    self._wav.close()
        return self.folder


@dataclass
class Pass:
    """One pass of the live loop, read back (see :class:`~lsd_jax.live.session.TickRecord`)."""

    first: int
    last: int
    through: list[int]
    size: tuple[int, int]
    changes: list[dict[str, Any]]
    style: str | None = None


@dataclass
class TakeData:
    """A take read back: ``params`` (the session's at its start), ``style`` (name; None for a Python style),
    ``style_sha256``, ``fps``, ``size`` (h, w) shown, ``t0`` (clock time of tick 0), ``blocks`` [(n, arrival)],
    ``passes``, ``audio`` (n, channels) float32 at ``sr`` (None: no audio arrived)."""

    folder: Path
    params: RenderParams
    style: str | None
    style_sha256: str | None
    fps: float
    size: tuple[int, int]
    t0: float | None
    blocks: list[tuple[int, float]]
    passes: list[Pass]
    audio: np.ndarray | None
    sr: int

    @property
    def n_ticks(self) -> int:
        return self.passes[-1].last + 1 if self.passes else 0

    def rendered(self) -> dict[int, tuple[int, int]]:
        """The ticks the session rendered (the last of each pass) and the size of each."""
        return {p.last: p.size for p in self.passes}


def read_take(folder: Any) -> TakeData:
    """Read a take folder (a ParamError naming the file when it is not one)."""
    from ..media.recipe import parse_recipe

    folder = Path(folder).expanduser()
    settings_path = folder / SETTINGS
    if not settings_path.is_file():
        raise ParamError(f"take: {folder} is not a take (no {SETTINGS}; record one with lsd-jax live --take)")
    try:
        settings = json.loads(settings_path.read_text())
        if settings.get("lsd_jax_take") != TAKE_VERSION:
            raise ParamError(f"take: {settings_path}: lsd_jax_take must be {TAKE_VERSION}")
        recipe = settings["recipe"]
        style, sha = recipe["style"]["name"], recipe["style"]["sha256"]
        python = isinstance(style, str) and style.startswith("<python")
        if python:  # parse_recipe refuses it; the take still plays with a style given
            recipe = {**recipe, "style": {"name": "default", "sha256": None}}
        rec = parse_recipe(json.dumps(recipe), cwd=Path.cwd())
        fps, size = float(settings["fps"]), tuple(int(v) for v in settings["size"])
    except (ValueError, KeyError, TypeError) as e:
        raise ParamError(f"take: {settings_path} is not valid ({e})") from None
    blocks: list[tuple[int, float]] = []
    passes: list[Pass] = []
    t0 = None
    events = folder / EVENTS
    lines = events.read_text(encoding="utf-8").split("\n") if events.is_file() else []
    for i, text in enumerate(lines):
        if not text.strip():
            continue
        try:
            e = json.loads(text)
            if "block" in e:
                if e["block"] != len(blocks):
                    raise ValueError(f"block {e['block']} out of order")
                blocks.append((int(e["n"]), float(e["t"])))
            elif "ticks" in e:
                first, last = (int(v) for v in e["ticks"])
                if first != (passes[-1].last + 1 if passes else 0) or len(e["through"]) != last - first + 1:
                    raise ValueError(f"ticks {first}-{last} do not follow the previous pass")
                t0 = float(e["t0"]) if "t0" in e else t0
                passes.append(
                    Pass(
                        first,
                        last,
                        [int(v) for v in e["through"]],
                        tuple(e["size"]),
                        list(e.get("changes", [])),
                        e.get("style"),
                    )
                )
        except (ValueError, KeyError, TypeError) as err:
            if i >= len(lines) - 2:  # the last line, torn by a kill mid-write: the take ends before it
                break
            raise ParamError(f"take: {events}, line {i + 1}: {err}") from None
    audio, sr = None, 0
    if blocks:
        import soundfile as sf

        try:
            audio, sr = sf.read(folder / AUDIO, dtype="float32", always_2d=True)
        except Exception as e:
            raise ParamError(f"take: {folder / AUDIO} cannot be read ({e})") from None
        # blocks whose samples did not all reach the file (a kill between the two writes) are left out
        ends = np.cumsum([n for n, _ in blocks])
        blocks = blocks[: int(np.searchsorted(ends, audio.shape[0], side="right"))]
    return TakeData(
        folder,
        rec.params,
        None if python else rec.style,
        None if python else sha,
        fps,
        size,  # type: ignore[arg-type]
        t0,
        blocks,
        passes,
        audio,
        int(sr),
    )


def _take_style(take: TakeData, style: Any) -> Any:
    """The style to replay with: ``style`` when given, else the take's (its file checked against its sha256)."""
    from ..media.recipe import sha256_of

    if style is not None:
        return style
    if take.style is None:
        raise ParamError("style: the take was played with a Python style; give one (--style)")
    p = Path(take.style)
    if take.style_sha256 is not None and p.is_file() and sha256_of(p) != take.style_sha256:
        raise ParamError(f"style: {take.style} is not the take's style file (its sha256 differs)")
    return take.style


def replay_inputs(take: TakeData, renderer: LiveRenderer) -> dict[str, np.ndarray]:
    """The per-tick step inputs of the whole take (``z`` (N, D), ``c`` (N, C), ``amps`` (N, 2), ...; N =
    ``take.n_ticks``): the live loop's maths (``LiveRenderer._tick``) over the take's audio blocks, pooled into the
    ticks that pooled them live, and its changes applied (:meth:`LiveRenderer.apply_changes`) at their ticks.
    ``renderer``: a fresh, unstarted session (its state is the replay's)."""
    from ..audio.stream import StreamAnalyzer

    analyzer = StreamAnalyzer(take.sr) if take.blocks else None
    offsets = np.concatenate([[0], np.cumsum([n for n, _ in take.blocks])]).astype(int)
    pushed = 0  # blocks analysed so far
    target = renderer._target
    z, c, amps = [], [], []
    for p in take.passes:
        if p.style is not None:  # the live session switched style here: its latents started afresh
            target = renderer._make_target(renderer.style, p.style)
        for changes in p.changes:  # a style switch is the pass's own entry (above): the rest is replayed as played
            rest = {k: v for k, v in changes.items() if k != "style"}
            if rest:
                renderer.apply_changes(rest)
        params = renderer.params
        for k, through in zip(range(p.first, p.last + 1), p.through):
            taken = []
            through = min(through, len(take.blocks) - 1)
            while pushed <= through:
                assert analyzer is not None and take.audio is not None
                cols = analyzer.push(take.audio[offsets[pushed] : offsets[pushed + 1]])
                if cols.n:
                    taken.append((cols, None))
                pushed += 1
            zk, ck, feats = renderer._tick(target, k, taken, params, renderer.tempo)
            z.append(zk)
            c.append(ck)
            amps.append(renderer._amps(params, feats, k))
    inputs = {
        "z": np.stack(z).astype(np.float32),
        "c": np.stack(c).astype(np.float32),
        "amps": np.asarray(amps, np.float32).reshape(-1, 2),
    }
    if target.style.noise:
        inputs["noise_gain"] = np.ones(len(z), np.float32)
    return inputs


def take_audio(take: TakeData, n_frames: int) -> tuple[np.ndarray, int] | None:
    """The take's audio (mono) placed on its ticks (:func:`~lsd_jax.live.session.place_audio`, as a live recording
    places it), ``n_frames`` long at the take's fps."""
    if not take.blocks or take.audio is None or take.t0 is None:
        return None
    n0, t_first = take.blocks[0]
    y = take.audio[: sum(n for n, _ in take.blocks)].mean(axis=1)
    y = place_audio(y, take.sr, t_first - n0 / take.sr, take.t0, n_frames, take.fps)
    return (y, take.sr) if y.size else None


def render_take(
    take: Any,
    output: Any = None,
    *,
    style: Any = None,
    progress: bool = True,
    **overrides: Any,
) -> Any:
    """Render the take in folder ``take`` offline into ``output`` (default: ``<folder name>.mp4`` beside it):
    every tick (none dropped) of the performance, with its audio; returns a
    :class:`~lsd_jax.engine.pipeline.RenderResult`. ``style``: another style (default: the take's);
    ``overrides``: parameters, e.g. ``width=1920, height=1080`` (a size given replaces the take's), ``codec``,
    ``quality``; parameters the live session could change are the take's own unless given."""
    from ..engine.pipeline import RenderResult, Timings, write_video
    from ..engine.step import build_frame_step
    from ..media.outputs import refuse_overwrite, resolve_output
    from ..styles.style import render_settings

    t_start = time.perf_counter()
    data = take if isinstance(take, TakeData) else read_take(take)
    if "fps" in overrides and float(overrides["fps"]) != data.fps:
        raise ParamError(f"fps: a take renders at the fps it was played at ({data.fps:g}): its ticks are its frames")
    style = _take_style(data, style)
    if not data.passes:
        raise ParamError(f"take: {data.folder} has no frames (the session stopped before its first tick)")
    if any(k in overrides for k in _SIZE_KEYS):
        overrides = {**{k: None for k in _SIZE_KEYS}, **overrides}
    params = make_params(data.params, **overrides)
    out = output if output is not None else data.folder.with_suffix(".mp4")
    out = resolve_output(out, [data.folder / AUDIO], params.codec)
    refuse_overwrite(out, [data.folder / AUDIO, data.folder / SETTINGS, data.folder / EVENTS])
    renderer = LiveRenderer(style, params, adapt=False)
    target = renderer._target
    settings = render_settings(renderer.params, target.style)  # as the live step was compiled: the start's params
    t = time.perf_counter()
    inputs = replay_inputs(data, renderer)
    t_latents = time.perf_counter() - t
    size = target.sizes[0]
    plan = renderer._plan(size)
    step = build_frame_step(
        target.style,
        size,
        plan,
        settings=settings,
        example={k: v[:1] for k, v in inputs.items()},
        compute_dtype=params.compute_dtype,
    )
    n = data.n_ticks
    t = time.perf_counter()
    written = write_video(
        out,
        step,
        inputs,
        plan,
        fps=data.fps,
        audio=take_audio(data, n) if params.soundtrack else None,
        progress=progress,
        encoding=dict(codec=params.codec, quality=params.quality, lossless=params.lossless),
    )
    timings = Timings(latents=t_latents, frames=time.perf_counter() - t, n_frames=n)
    timings.total = time.perf_counter() - t_start
    return RenderResult(written.path or out, n, data.fps, size, timings)
