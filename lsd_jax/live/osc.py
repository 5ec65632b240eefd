"""OSC control of a live session: ``lsd-jax live --osc 9000`` (TouchDesigner, Resolume, Max for Live …).

Every message becomes one change set of :meth:`lsd_jax.live.session.LiveRenderer.apply_changes` (the one door of
every control: the page's sliders, MIDI, takes), so it is checked by the parameter table exactly as a slider is:

* ``/lsd/<parameter> value`` for each of ``LIVE_PARAMS`` (one argument: a number, or text the table parses, e.g.
  ``/lsd/speed_fpm beat``);
* ``/lsd/style name``: switch to a style this session has already played (nothing is downloaded or converted over
  OSC; the page loads new ones);
* ``/lsd/tap``: tap tempo (sets ``tempo_bpm`` and ``beat_time``, which ``speed_fpm="beat"`` follows);
* ``/lsd/state``: the reply is one message per value, ``/lsd/state/<name> value``: each of ``LIVE_PARAMS`` (an
  unset effect strength reads 0.0, as the page's slider), then ``tempo_bpm``, ``beat_time``, ``style`` and
  ``styles`` (the loaded names, one argument each).

A message that cannot be applied (unknown address, missing or bad value, no session playing yet, a datagram that is
not OSC) is answered with ``/lsd/error "<address>: <why>"`` and changes nothing; the server goes on. Replies go to
the sender's address and port, or to its address at ``reply_port`` when one is set (senders that cannot listen on
their sending port). Messages are applied in the order they arrive, each as it arrives (an OSC bundle's time tag is
not waited for): the next frame rendered after a message shows it.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import LsdError, ParamError
from ..params import PARAM
from .session import LIVE_PARAMS, LiveRenderer

log = logging.getLogger("lsd_jax.live.osc")

PREFIX = "/lsd/"
ERROR = "/lsd/error"
STATE = "/lsd/state"
COMMANDS = ("style", "tap", "state")  # addresses besides the parameters'
DEFAULT_HOST = "127.0.0.1"  # this machine only unless --osc-host opens it wider
POLL_S = 0.2  # how often the server thread looks whether it should stop
MAX_DATAGRAM = 65536


class OscError(LsdError):
    """An OSC message that cannot be applied (the text is sent back on /lsd/error)."""


def addresses() -> list[tuple[str, str, str]]:
    """(address, argument, what it does) for every address the server takes: the README's table (the parameters'
    rows from the parameter table)."""
    rows = [(PREFIX + n, f"{PARAM[n].kind} {PARAM[n].range_text()}", PARAM[n].help) for n in LIVE_PARAMS]
    rows += [
        (PREFIX + "style", "name", "switch to a style this session has already played (/lsd/error lists them)"),
        (PREFIX + "tap", "", "tap tempo: the taps set tempo_bpm and put a beat on the last tap (speed_fpm beat)"),
        (STATE, "", "replies /lsd/state/NAME value for each parameter, tempo_bpm, beat_time, style, styles"),
    ]
    return rows


def markdown() -> str:
    """The addresses as a Markdown table (README, checked by tests/test_osc.py)."""
    lines = ["| address | argument | what |", "|---|---|---|"]
    lines += [f"| `{a}` | {arg} | {what.replace('|', chr(92) + '|')} |" for a, arg, what in addresses()]
    return "\n".join(lines)


def value_of(name: str, args: Sequence[Any]) -> Any:
    """The one argument of ``/lsd/<name>`` as the parameter table takes it (text is parsed by the table; the
    table's own check then runs in ``apply_changes``)."""
    if len(args) != 1:
        raise OscError(f"takes one value, got {len(args)}")
    value = args[0]
    if isinstance(value, str):
        return PARAM[name].parse(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OscError(f"the value must be a number, got {value!r}")
    if PARAM[name].kind == "integer" and float(value).is_integer():
        return int(value)  # controllers send floats
    return value


def state(renderer: LiveRenderer) -> list[tuple[str, list[Any]]]:
    """The ``/lsd/state`` reply: (address, arguments) per value."""
    params, tempo = renderer.params, renderer.tempo
    out = []
    for name in LIVE_PARAMS:
        v = getattr(params, name)
        out.append((f"{STATE}/{name}", [0.0 if v is None else v]))
    out += [
        (f"{STATE}/tempo_bpm", [float(tempo.bpm)]),
        (f"{STATE}/beat_time", [float(tempo.beat_time)]),
        (f"{STATE}/style", [str(renderer.style.name)]),
        (f"{STATE}/styles", list(renderer.loaded_styles())),
    ]
    return out


class OscControl:
    """An OSC server driving the session ``target()`` returns (None: no session playing yet) on UDP ``host:port``
    (port 0: any free one, see :attr:`port`). :meth:`handle` is the dispatch (testable without sockets);
    :meth:`start` serves on a thread until :meth:`close`."""

    def __init__(
        self,
        target: Callable[[], LiveRenderer | None] | LiveRenderer,
        port: int = 0,
        host: str = DEFAULT_HOST,
        reply_port: int | None = None,
    ):
        self.target = target if callable(target) and not isinstance(target, LiveRenderer) else (lambda: target)
        self.reply_port = reply_port
        try:
            self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host, int(port)))
        except (OSError, OverflowError) as e:
            raise OscError(f"--osc: cannot listen on {host}:{port} ({e})") from None
        self.sock.settimeout(POLL_S)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.handled = 0  # messages taken (applied or answered with an error)
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        return f"OSC {self.address}"

    # --- dispatch

    def handle(self, address: str, args: Sequence[Any]) -> list[tuple[str, list[Any]]]:
        """Apply one message; the replies (address, arguments) to send back."""
        try:
            return self._handle(address, list(args))
        except (LsdError, ValueError) as e:  # ParamError, OscError: the message's own fault
            self.errors += 1
            return [(ERROR, [f"{address}: {e}"])]
        except Exception as e:  # never the server's end: logged for the operator, a plain reply for the sender
            log.error("OSC %s failed", address, exc_info=e)
            self.errors += 1
            return [(ERROR, [f"{address}: failed on the server ({type(e).__name__}; logged there)"])]
        finally:
            self.handled += 1

    def _handle(self, address: str, args: list[Any]) -> list[tuple[str, list[Any]]]:
        name = address[len(PREFIX) :] if address.startswith(PREFIX) else None
        if name not in (*LIVE_PARAMS, *COMMANDS):
            known = [PREFIX + n for n in (*LIVE_PARAMS, *COMMANDS)]
            close = difflib.get_close_matches(address, known, n=1)
            hint = (
                f" (did you mean {close[0]}?)"
                if close
                else f"; addresses: {PREFIX}<parameter>, " + ", ".join(PREFIX + c for c in COMMANDS)
            )
            raise OscError("unknown address" + hint)
        renderer = self.target()
        if renderer is None:
            raise OscError("no live session is playing yet (press Start in the page)")
        if name == "state":
            return state(renderer)
        if name == "tap":
            renderer.tap()
            return []
        if name == "style":
            if len(args) != 1 or not isinstance(args[0], str):
                raise OscError(f"takes one style name, got {args!r} (loaded: {', '.join(renderer.loaded_styles())})")
            renderer.apply_changes({"style": args[0]})
            return []
        renderer.apply_changes({name: value_of(name, args)})
        return []

    # --- the server

    def start(self) -> OscControl:
        self._thread = threading.Thread(target=self._serve, name="lsd-jax-osc", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> OscControl:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            # each datagram on a short thread of its own, joined before the next (so in order): the session's clock
            # may count the threads that read it (the tests' simulated clock), and this one must not stay counted
            worker = threading.Thread(target=self._datagram, args=(data, sender), name="lsd-jax-osc-message")
            worker.start()
            worker.join()

    def _datagram(self, data: bytes, sender: Any) -> None:
        from pythonosc.osc_packet import OscPacket, ParseError

        try:
            messages = [m.message for m in OscPacket(data).messages]
        except (ParseError, Exception):  # anything malformed, whatever python-osc raises for it
            self.errors += 1
            self._reply(sender, [(ERROR, [f"not an OSC message or bundle ({len(data)} bytes)"])])
            return
        for m in messages:
            self._reply(sender, self.handle(m.address, m.params))

    def _reply(self, sender: Any, replies: list[tuple[str, list[Any]]]) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        to = (sender[0], self.reply_port) if self.reply_port else sender[:2]
        for address, args in replies:
            b = OscMessageBuilder(address)
            for a in args:
                b.add_arg(a)
            try:
                self.sock.sendto(b.build().dgram, to)
            except OSError as e:  # the sender went away: nothing to tell it
                log.info("OSC reply to %s failed: %s", to, e)


# --- lsd-jax live flags


def add_arguments(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("OSC control")
    g.add_argument(
        "--osc",
        type=int,
        default=None,
        metavar="PORT",
        help="listen for OSC on this UDP port: /lsd/<parameter> value, /lsd/style, /lsd/tap, /lsd/state "
        "(errors answered on /lsd/error)",
    )
    g.add_argument(
        "--osc-host",
        default=DEFAULT_HOST,
        help=f"address OSC listens on (default {DEFAULT_HOST}: this machine only; 0.0.0.0 for the network)",
    )
    g.add_argument(
        "--osc-reply-port",
        type=int,
        default=None,
        metavar="PORT",
        help="send replies (/lsd/error, /lsd/state) to this port of the sender (default: the port it sent from)",
    )


def from_args(args: argparse.Namespace, target: Callable[[], LiveRenderer | None]) -> OscControl | None:
    """The OSC server the flags ask for (started), or None."""
    if args.osc is None:
        return None
    for flag, port in (("--osc", args.osc), ("--osc-reply-port", args.osc_reply_port)):
        if port is not None and not 0 <= port <= 65535:
            raise ParamError(f"{flag} must be a UDP port (0–65535), got {port}")
    return OscControl(target, args.osc, args.osc_host, args.osc_reply_port).start()
