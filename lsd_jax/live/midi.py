"""MIDI control of a live session: ``lsd-jax live --midi [PORT] --midi-map map.json [--midi-learn]``.

:class:`MidiControl` is a plain handler fed :class:`mido.Message` s with their arrival time (a port's callback feeds
it; tests feed it directly). What it does with them goes through
:meth:`lsd_jax.live.session.LiveRenderer.apply_changes`, the one door of every control:

* **control changes** move the parameter the map gives them: the CC's 0–127 spans the parameter's range in the
  parameter table (its slider's top where the table has one, ``ui_hi``; whole numbers for integer parameters);
  a CC that is not mapped is ignored;
* **learn** (``--midi-learn``): move a control that is not mapped yet, then set a slider in the page; the control
  is mapped to that slider's parameter, the map is saved to the ``--midi-map`` file and the line is printed (to
  remap a control, delete its entry from the file);
* **MIDI clock** (24 ticks a quarter note, start / stop / continue / song position) sets the session's tempo and
  beat phase (``tempo_bpm`` and ``beat_time``), which ``speed_fpm="beat"`` follows: the tempo is measured over the
  last ``CLOCK_WINDOW`` ticks and sent once a beat; start (or song position 0) makes the next tick beat 0; without
  a start the first tick counts as a beat.

The map file is JSON: ``{"cc 21": "pulse_react", "cc 22 ch 2": "motion_react"}``: the controller number 0–127 and,
optionally, the channel 1–16 as devices number them (without one, any channel); the value is a parameter of
``LIVE_PARAMS``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import threading
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LsdError
from ..params import PARAM
from .session import LIVE_PARAMS, TEMPO_RANGE, LiveRenderer

log = logging.getLogger("lsd_jax.live.midi")

CC_MAX = 127
TICKS_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note
TICKS_PER_SONGPOS = 6  # song position counts sixteenth notes
CLOCK_WINDOW = 48  # ticks (2 beats) the tempo is measured over
CLOCK_GAP_S = 1.0  # a gap this long between ticks (a clock that stopped and came back) starts a new measurement
_KEY = re.compile(r"^\s*cc\s*(\d+)\s*(?:(?:ch|channel)\s*(\d+))?\s*$", re.IGNORECASE)


class MidiError(LsdError):
    """A MIDI problem for the operator: no MIDI system, no such port, a bad map file."""


# --- the map


def parse_key(key: str) -> tuple[int, int | None]:
    """``"cc 21"`` → (21, None); ``"cc 21 ch 2"`` → (21, 1): the channel as mido numbers it (0–15)."""
    m = _KEY.match(str(key))
    if m is None:
        raise ValueError('a key is "cc N" or "cc N ch C" (N 0–127, C 1–16)')
    cc, ch = int(m.group(1)), m.group(2)
    if not 0 <= cc <= CC_MAX:
        raise ValueError(f"the controller number must be 0–127, got {cc}")
    if ch is not None and not 1 <= int(ch) <= 16:
        raise ValueError(f"the channel must be 1–16, got {ch}")
    return cc, None if ch is None else int(ch) - 1


def key_text(cc: int, channel: int | None) -> str:
    return f"cc {cc}" if channel is None else f"cc {cc} ch {channel + 1}"


class MidiMap:
    """Controllers → parameters: ``{(cc, channel or None): name}``."""

    def __init__(self, entries: dict[tuple[int, int | None], str] | None = None):
        self.entries = dict(entries or {})

    @classmethod
    def load(cls, path: Any) -> MidiMap:
        """Read a map file; a MidiError names the file and the entry."""
        path = Path(path).expanduser()
        try:
            raw = json.loads(path.read_text())
        except OSError as e:
            raise MidiError(f"--midi-map {path}: cannot read it ({e.strerror or e})") from None
        except ValueError as e:
            raise MidiError(f"--midi-map {path}: not JSON ({e})") from None
        if not isinstance(raw, dict):
            raise MidiError(f'--midi-map {path}: must be a JSON object like {{"cc 21": "pulse_react"}}')
        entries = {}
        for key, name in raw.items():
            try:
                k = parse_key(key)
            except ValueError as e:
                raise MidiError(f"--midi-map {path}: entry {key!r}: {e}") from None
            if name not in LIVE_PARAMS:
                raise MidiError(
                    f"--midi-map {path}: entry {key!r}: {name!r} is not a live parameter "
                    f"(these are: {', '.join(LIVE_PARAMS)})"
                )
            entries[k] = name
        return cls(entries)

    def save(self, path: Any) -> None:
        """Write the map (readable by :meth:`load`), beside the file first and then renamed into place."""
        path = Path(path).expanduser()
        data = {key_text(cc, ch): name for (cc, ch), name in sorted(self.entries.items(), key=lambda kv: kv[0][0])}
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)

    def lookup(self, cc: int, channel: int) -> str | None:
        """The parameter a controller on ``channel`` moves (a channel's own entry first), or None."""
        return self.entries.get((cc, channel)) or self.entries.get((cc, None))


def cc_value(name: str, value: int) -> float | int:
    """A CC's 0–127 on the parameter's range in the table (its slider's top, ``ui_hi``, where it has one)."""
    p = PARAM[name]
    lo = p.lo if p.lo is not None else 0.0
    hi = p.ui_hi if p.ui_hi is not None else p.hi
    if hi is None:
        raise MidiError(f"{name} has no upper bound to map a controller onto")
    v = lo + (hi - lo) * min(max(int(value), 0), CC_MAX) / CC_MAX
    return int(round(v)) if p.kind == "integer" else float(v)


# --- the handler


class MidiControl:
    """Feeds a session (``target()``, None while none plays) from MIDI messages: :meth:`handle` each with its
    arrival time ``t`` in session seconds (None: the session's clock now).

    ``mapping``: a :class:`MidiMap`; ``map_path``: where learn saves it; ``learn``: learn mode; ``say``: where the
    learned lines go (print)."""

    def __init__(
        self,
        target: Callable[[], LiveRenderer | None] | LiveRenderer,
        mapping: MidiMap | None = None,
        *,
        map_path: Any = None,
        learn: bool = False,
        say: Callable[[str], None] = print,
    ):
        self.target = target if callable(target) and not isinstance(target, LiveRenderer) else (lambda: target)
        self.mapping = mapping or MidiMap()
        self.map_path = map_path
        self.learn = learn
        self.say = say
        self.pending: tuple[int, int] | None = None  # learn: the last control moved (cc, channel)
        self.port_name: str | None = None
        self._port: Any = None
        self._attached: weakref.WeakSet[LiveRenderer] = weakref.WeakSet()
        self._own = threading.local()  # set while this handler applies a change (not a page's, for learn)
        self._lock = threading.Lock()
        # MIDI clock
        self.running = False  # between start/continue and stop
        self.position: int | None = None  # ticks since beat 0 (None: no clock seen yet)
        self._ticks: deque[float] = deque(maxlen=CLOCK_WINDOW + 1)

    def handle(self, msg: Any, t: float | None = None) -> None:
        """Take one message (anything that is not a control change or clock message is ignored)."""
        renderer = self.target()
        if renderer is None:
            return
        if renderer not in self._attached:
            self._attached.add(renderer)
            renderer.add_change_listener(self._on_change)
        kind = msg.type
        if kind == "control_change":
            self._control(renderer, msg)
        elif kind in ("clock", "start", "stop", "continue", "songpos"):
            with self._lock:
                t = renderer.session_time() if t is None else float(t)
                change = self._clock(kind, msg, t)
            if change:
                self._apply(renderer, change)

    def _control(self, renderer: LiveRenderer, msg: Any) -> None:
        name = self.mapping.lookup(msg.control, msg.channel)
        if self.learn and name is None:  # a mapped control plays its parameter (touching a slider never remaps it)
            self.pending = (msg.control, msg.channel)
        if name is not None:
            self._apply(renderer, {name: cc_value(name, msg.value)})

    def _apply(self, renderer: LiveRenderer, change: dict[str, Any]) -> None:
        self._own.active = True
        try:
            renderer.apply_changes(change)
        except LsdError as e:  # a value the session refuses (speed_fpm above fps·60): logged, the port goes on
            log.warning("MIDI %s: %s", change, e)
        finally:
            self._own.active = False

    def _on_change(self, t: float, changes: dict[str, Any]) -> None:
        """Learn: a slider set (not by this handler) after a control moved maps that control to it."""
        if not self.learn or self.pending is None or getattr(self._own, "active", False):
            return
        names = [n for n in changes if n in LIVE_PARAMS]
        if len(names) != 1:
            return
        cc, channel = self.pending
        self.pending = None
        self.mapping.entries.pop((cc, None), None)
        self.mapping.entries[(cc, channel)] = names[0]
        saved = ""
        if self.map_path is not None:
            try:
                self.mapping.save(self.map_path)
                saved = f"; saved {self.map_path}"
            except OSError as e:
                saved = f"; could not save {self.map_path} ({e.strerror or e})"
        self.say(f"MIDI learn: {key_text(cc, channel)} → {names[0]}{saved}")

    # MIDI clock (under self._lock)

    def _clock(self, kind: str, msg: Any, t: float) -> dict[str, Any] | None:
        if kind == "start":
            self.running, self.position = True, 0
            self._ticks.clear()
            return None
        if kind == "stop":
            self.running = False
            return None
        if kind == "continue":
            self.running = True
            return None
        if kind == "songpos":
            self.position = int(msg.pos) * TICKS_PER_SONGPOS
            return None
        # a tick
        if self._ticks and t - self._ticks[-1] > CLOCK_GAP_S:
            self._ticks.clear()
        self._ticks.append(t)
        if self.position is None:  # no start seen: the first tick counts as a beat
            self.position, self.running = 0, True
        if not self.running:
            return None
        on_beat = self.position % TICKS_PER_BEAT == 0
        self.position += 1
        if not on_beat:
            return None
        bpm = self.tempo()
        return {"beat_time": t} if bpm is None else {"tempo_bpm": bpm, "beat_time": t}

    def tempo(self) -> float | None:
        """Beats per minute of the ticks in the window (a least-squares line: one late tick moves it little)."""
        if len(self._ticks) < 3:
            return None
        y = np.asarray(self._ticks)
        period = float(np.polyfit(np.arange(y.size), y, 1)[0])
        if period <= 0:
            return None
        return round(float(np.clip(60.0 / (TICKS_PER_BEAT * period), *TEMPO_RANGE)), 3)

    # --- a port

    def open(self, port: str | None) -> MidiControl:
        """Listen on the input ``port`` (None or "": the first one); see :func:`open_input`."""
        self._port, self.port_name = open_input(port, self.handle, say=self.say)
        return self

    def describe(self) -> str:
        learn = " (learn: move a control, then set a slider)" if self.learn else ""
        return f"MIDI {self.port_name or '-'}{learn}"

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None


def _quiet_stderr(fn: Callable[[], Any]) -> Any:
    """``fn()`` with the C library's own lines on stderr hidden (ALSA prints one before rtmidi raises)."""
    try:
        saved = os.dup(2)
    except OSError:
        return fn()
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            return fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def input_names() -> list[str]:
    """The MIDI input ports; a MidiError (one line, naming --midi) where the OS has no MIDI system."""
    try:
        import mido
        import rtmidi  # noqa: F401  (mido's backend: imported here so a missing one is named, not a deep error)

        return list(_quiet_stderr(mido.get_input_names))
    except ImportError as e:
        raise MidiError(f"--midi: the MIDI backend is not installed ({e}); install mido and python-rtmidi") from None
    except Exception as e:  # rtmidi's SystemError (no ALSA sequencer) and the like
        raise MidiError(
            f"--midi: this machine has no MIDI system that rtmidi can open ({str(e).strip() or type(e).__name__}); "
            "on Linux the ALSA sequencer (/dev/snd/seq) is needed"
        ) from None


def open_input(port: str | None, callback: Callable[[Any], None], say: Callable[[str], None] = print) -> Any:
    """Open the input ``port`` (None or "": the first; the ports are listed when there are several) with
    ``callback(msg)`` on rtmidi's thread: (the open port, its name)."""
    import mido

    names = input_names()
    if not names:
        raise MidiError("--midi: no MIDI input ports (connect a controller, or start a virtual port)")
    if not port:
        name = names[0]
        if len(names) > 1:
            say(f"MIDI: using {name!r} (ports: {', '.join(map(repr, names))}; name one with --midi PORT)")
    elif port in names:
        name = port
    else:
        close = [n for n in names if port.lower() in n.lower()]
        if len(close) != 1:
            raise MidiError(f"--midi: no input port {port!r} (ports: {', '.join(map(repr, names))})")
        name = close[0]
    try:
        opened = _quiet_stderr(lambda: mido.open_input(name, callback=lambda m: _safe(callback, m)))
    except Exception as e:
        raise MidiError(f"--midi: cannot open {name!r} ({e})") from None
    return opened, name


def _safe(callback: Callable[[Any], None], msg: Any) -> None:
    try:
        callback(msg)
    except Exception as e:  # never rtmidi's thread's end: logged, the next message is taken
        log.error("MIDI %s failed", msg, exc_info=e)


# --- lsd-jax live flags


def add_arguments(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("MIDI control")
    g.add_argument(
        "--midi",
        nargs="?",
        const="",
        default=None,
        metavar="PORT",
        help="take MIDI from this input port (without a name: the first one): control changes move the mapped "
        "parameters, MIDI clock sets the tempo of speed_fpm=beat",
    )
    g.add_argument(
        "--midi-map",
        default=None,
        metavar="MAP.json",
        help='controllers to parameters: {"cc 21": "pulse_react", "cc 22 ch 2": "motion_react"}',
    )
    g.add_argument(
        "--midi-learn",
        action="store_true",
        help="learn: move a control, then set a slider in the page; the map is saved to --midi-map",
    )


def from_args(
    args: argparse.Namespace, target: Callable[[], LiveRenderer | None], say: Callable[[str], None] = print
) -> MidiControl | None:
    """The MIDI input the flags ask for (open), or None."""
    if args.midi is None:
        if args.midi_map or args.midi_learn:
            raise MidiError("--midi-map and --midi-learn need --midi [PORT]")
        return None
    if args.midi_learn and not args.midi_map:
        raise MidiError("--midi-learn needs --midi-map FILE (where the learned map is saved)")
    mapping = MidiMap()
    if args.midi_map and (not args.midi_learn or Path(args.midi_map).expanduser().exists()):
        mapping = MidiMap.load(args.midi_map)
    control = MidiControl(target, mapping, map_path=args.midi_map, learn=args.midi_learn, say=say)
    return control.open(args.midi)
