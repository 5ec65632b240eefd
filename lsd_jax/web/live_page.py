"""Live mode in the browser: the page's microphone (or a shared tab's audio) drives frames shown in the page.

One ``gr.HTML`` panel (:func:`live_panel`) holds the page side: a canvas, the sources, a style menu and the
live sliders (generated from the parameter table). Its script talks to the server through Gradio's own
``server_functions`` (a direct POST each, no queue): ``live_open`` starts a :class:`~lsd_jax.live.session.LiveRenderer`,
``live_audio`` carries the captured audio (an AudioWorklet's blocks, 16-bit, about every 10 ms; one request in
flight at a time, so blocks batch up rather than queue when the network is slow), ``live_frame`` is a long poll
for the newest frame (JPEG), ``live_set`` changes sliders and style, ``live_close`` ends the session.

Why not Gradio's streaming components: a streaming ``gr.Audio`` records with a MediaRecorder and uploads one WAV
chunk every ``stream_every`` seconds (0.5 by default), each upload then queued as an event; the chunk length alone
puts a hit up to that long before the server hears it, and its outputs update once per chunk, where live mode needs
30 frames/s and under 100 ms from a hit to its frame. The long poll returns a frame as soon as it exists.

``lsd-jax live`` (:func:`main`) serves a page holding only this panel; with ``--input`` the server plays a file
into a session itself (the page attaches to it and plays the file's audio along), and ``--record`` writes what
was shown, with the audio, to an MP4. :func:`add_page` adds the panel to the web app as its **Live** page.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LsdError
from ..live import midi, osc
from ..live.session import LIVE_PARAMS, SUPPORTED_PARAMS, FileFeeder, LiveRecorder, LiveRenderer
from ..params import PARAM, make_params
from .config import client_key
from .door import check_fits, load_visitor_style, visitor_style

log = logging.getLogger("lsd_jax.web.live_page")

MAX_BLOCK_S = 2.0  # longest audio block one request may carry
SAMPLE_RATES = (8000, 192000)
IDLE_S = 15.0  # a session nobody polled for this long is closed
JPEG_QUALITY = 85


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        raise SystemExit(f"lsd-jax: {name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class LiveConfig:
    """What live sessions this server runs (environment: LSD_JAX_LIVE_SESSIONS, LSD_JAX_LIVE_RESOLUTION,
    LSD_JAX_LIVE_FPS, LSD_JAX_LIVE_QUIET, LSD_JAX_LIVE_MAX_SECONDS, LSD_JAX_LIVE_PER_CLIENT; LSD_JAX_FORWARDED as
    the app's)."""

    sessions: int = 1  # at once (each takes the CPU a render would)
    resolution: int = 256
    fps: float = 30.0
    params: Any = None  # RenderParams for new sessions (the CLI's flags); None: the table's defaults
    style: Any = None  # the style of new sessions (the page's menu can change it)
    quiet_s: float = 60.0  # a visitor's session that got no audio for this long is closed (polling alone holds none)
    max_s: float = 1800.0  # a visitor's session is closed after this long, whatever it does (others get a turn)
    per_client: int = 1  # sessions one visitor (address) may hold at once
    forwarded: bool = False  # the visitor's address from X-Forwarded-For (see AppConfig.forwarded)

    @classmethod
    def from_env(cls) -> LiveConfig:
        return cls(
            sessions=_env_int("LSD_JAX_LIVE_SESSIONS", 1),
            resolution=_env_int("LSD_JAX_LIVE_RESOLUTION", 256),
            fps=float(_env_int("LSD_JAX_LIVE_FPS", 30)),
            quiet_s=float(_env_int("LSD_JAX_LIVE_QUIET", 60)),
            max_s=float(_env_int("LSD_JAX_LIVE_MAX_SECONDS", 1800)),
            per_client=_env_int("LSD_JAX_LIVE_PER_CLIENT", 1),
            forwarded=(os.environ.get("LSD_JAX_FORWARDED") or ("1" if os.environ.get("SPACE_ID") else "0")).strip()
            == "1",
        )


class LiveError(LsdError):
    """A live session request that cannot be served (busy, unknown session, bad audio block)."""


@dataclass
class _Session:
    token: str
    renderer: LiveRenderer
    last_seen: float
    recorder: LiveRecorder | None = None
    feeder: FileFeeder | None = None
    jpeg: tuple[int, str] | None = None  # (seq, base64) of the last frame sent
    style_name: str = "default"
    style_error: str = ""
    client: str | None = None  # the visitor's address (None: the server's own session)
    opened: float = math.inf  # when a visitor's session opened (monotonic; inf: the server's own)
    last_audio: float = math.inf  # when it last got audio
    loading: bool = False  # a style change is loading (one at a time)


class LiveSessions:
    """The server side of live mode: sessions by token, each a :class:`LiveRenderer` (thread-safe)."""

    def __init__(self, cfg: LiveConfig | None = None):
        self.cfg = cfg or LiveConfig.from_env()
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self.attached: str | None = None  # a server-fed session (lsd-jax live --input) the page attaches to
        self.controls = ""  # the OSC / MIDI inputs (lsd-jax live --osc, --midi), for the status line
        self._closing = threading.Event()
        self._janitor: threading.Thread | None = None

    # sessions
    def open(
        self,
        style: Any = None,
        *,
        record: Any = None,
        keep: bool = False,
        visitor: bool = False,
        client: str | None = None,
    ) -> _Session:
        """Start a session (compiles its first step: seconds). ``keep``: never closed for being idle. ``visitor``: a
        web visitor's, whose ``style`` goes through the one door (:mod:`lsd_jax.web.door`: a catalogue name or an
        upload this server received, converted in the sandbox); ``client``: the visitor's address (per-client
        limit). Any style is refused when its frame step would not fit in memory (before compiling)."""
        self.reap()
        # refused at once, before a place is held (the operator's own style is not a visitor's)
        choice = visitor_style(style or "default")[0] if visitor and not self._operators(style) else None
        with self._lock:
            if self._janitor is None:  # closes the sessions of closed tabs
                self._janitor = threading.Thread(target=self._sweep, name="lsd-jax-live-janitor", daemon=True)
                self._janitor.start()
            if (
                client is not None
                and sum(1 for s in self._sessions.values() if s is not None and s.client == client)
                >= self.cfg.per_client
            ):
                raise LiveError(
                    f"you already have {self.cfg.per_client} live session(s) open on this server: stop it first"
                )
            if len(self._sessions) >= self.cfg.sessions:
                raise LiveError(
                    f"this server runs {self.cfg.sessions} live session(s) at a time and all are in "
                    "use; try again when one ends"
                )
            token = secrets.token_urlsafe(12)
            self._sessions[token] = None  # type: ignore[assignment]  # holds the place while compiling
        try:
            params = self.cfg.params
            kw: dict[str, Any] = {}
            if params is None or (params.resolution is None and params.width is None):
                kw["resolution"] = self.cfg.resolution
            if params is None:
                kw["fps"] = self.cfg.fps
            style = style if style is not None else self.cfg.style
            name = str(style or "default")
            if choice is not None:
                style = load_visitor_style(choice, params)
                name = choice if choice == "default" or not Path(choice).is_absolute() else Path(choice).name
            renderer = LiveRenderer(style, params, **kw)
            _check_fits(renderer, renderer.style)
            now = time.monotonic()
            session = _Session(
                token,
                renderer,
                math.inf if keep else now,
                style_name=name,
                client=client,
                opened=now if visitor else math.inf,
                last_audio=now if visitor else math.inf,
            )
            if record is not None:
                session.recorder = LiveRecorder(renderer, record)
            renderer.start()
        except BaseException:
            with self._lock:
                self._sessions.pop(token, None)
            raise
        with self._lock:
            self._sessions[token] = session
        return session

    def current(self) -> LiveRenderer | None:
        """The renderer of the newest session playing (what OSC and MIDI control; ``lsd-jax live`` runs one)."""
        with self._lock:
            playing = [s for s in self._sessions.values() if s is not None]
        return playing[-1].renderer if playing else None

    def get(self, token: Any) -> _Session:
        with self._lock:
            s = self._sessions.get(str(token))
        if s is None:
            raise LiveError("this live session has ended (or never started): press Start again")
        if s.last_seen != math.inf:
            s.last_seen = time.monotonic()
        return s

    def close(self, token: Any) -> Any:
        """End a session; returns its recording's path (or None)."""
        with self._lock:
            s = self._sessions.pop(str(token), None)
        if s is None:
            return None
        if s.feeder is not None:
            s.feeder.stop()
        s.renderer.close()
        return s.recorder.close() if s.recorder is not None else None

    def reap(self, now: float | None = None) -> list[str]:
        """Close the sessions nobody polled for ``IDLE_S`` seconds (a closed tab), a visitor's that got no audio
        for ``cfg.quiet_s`` (a page that only polls holds no session) or that ran ``cfg.max_s``; their tokens."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [
                t
                for t, s in self._sessions.items()
                if s is not None
                and (
                    now - s.last_seen > IDLE_S
                    or now - s.last_audio > self.cfg.quiet_s
                    or now - s.opened > self.cfg.max_s
                )
            ]
        for t in stale:
            log.info("closing an idle (or expired) live session")
            self.close(t)
        return stale

    def _sweep(self) -> None:
        while not self._closing.wait(IDLE_S / 3):
            self.reap()

    def close_all(self) -> None:
        self._closing.set()
        with self._lock:
            tokens = [t for t, s in self._sessions.items() if s is not None]
        for t in tokens:
            self.close(t)

    # requests (the panel's server functions; each returns a JSON-able dict, {"error": ...} on a problem)
    def handle(self, name: str, args: Any) -> dict[str, Any]:
        try:
            if not isinstance(args, dict):
                raise LiveError("bad request")
            return getattr(self, f"_{name}")(args)
        except LsdError as e:
            return {"error": str(e)}
        except Exception as e:  # logged for the operator; the page gets a plain message
            log.error("live %s failed", name, exc_info=e)
            return {"error": "the live session failed on the server (the error is logged there)"}

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        elapsed = 0.0
        if args.get("attach") and self.attached is not None:
            s = self.get(self.attached)
            if s.feeder is not None:  # the file starts playing when the first page attaches
                s.feeder.start()
                s.feeder.started.wait(5)
                elapsed = s.renderer.clock() - (s.feeder.t_start or s.renderer.clock())
        else:
            s = self.open(args.get("style") or None, visitor=True, client=args.get("_client"))
        r = s.renderer
        return {
            "token": s.token,
            "fps": r.fps,
            "size": list(r.size),
            "elapsed": elapsed,
            "attached": s.feeder is not None,
            "values": _values(r.params),
            "style": s.style_name,
        }

    def _audio(self, args: dict[str, Any]) -> dict[str, Any]:
        s = self.get(args.get("token"))
        try:
            sr = int(args.get("sr", 0))
            raw = base64.b64decode(str(args.get("pcm", "")), validate=True)
        except (TypeError, ValueError):
            raise LiveError("bad audio block: pcm must be base64 16-bit samples and sr a whole number") from None
        if not SAMPLE_RATES[0] <= sr <= SAMPLE_RATES[1]:
            raise LiveError(f"sample rate {sr} Hz is outside {SAMPLE_RATES[0]}–{SAMPLE_RATES[1]} Hz")
        if len(raw) % 2 or len(raw) > 2 * MAX_BLOCK_S * sr:
            raise LiveError(f"bad audio block: {len(raw)} bytes (16-bit mono, at most {MAX_BLOCK_S:g} s)")
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        tag = _number(args.get("t"), math.nan)
        s.renderer.push(x, sr, tag=None if math.isnan(tag) else tag)
        if s.last_audio != math.inf:
            s.last_audio = time.monotonic()
        return {"ok": True}

    def _frame(self, args: dict[str, Any]) -> dict[str, Any]:
        s = self.get(args.get("token"))
        after, wait = _number(args.get("after", -1), -1), _number(args.get("wait", 1.0), 1.0)
        if s.renderer.error is not None:
            raise LiveError(f"the live renderer stopped: {s.renderer.error}")
        f = s.renderer.wait_frame(int(after), timeout=min(2.0, max(0.0, wait)))
        st = s.renderer.stats()
        out: dict[str, Any] = {
            "stats": {
                "frames": st.frames,
                "ticks": st.ticks,
                "dropped": st.dropped,
                "size": list(st.size),
                "step_ms": round(st.step_ms, 1),
                "lag_ms": round(st.lag_ms, 1),
                "audio_s": round(st.audio_s, 2),
            },
            "style": s.style_name,
            "style_error": s.style_error,
            "controls": self.controls,
        }
        if f is None:
            return out
        if s.jpeg is None or s.jpeg[0] != f.seq:
            s.jpeg = (f.seq, _jpeg(f.image))
        out.update(
            seq=f.seq,
            tick=f.tick,
            jpeg=s.jpeg[1],
            w=int(f.image.shape[1]),
            h=int(f.image.shape[0]),
            pulse=round(f.features["pulse"], 4),
            motion=round(f.features["motion"], 4),
            tag=f.audio_tag,
            at=round(f.audio_time, 4),
            pulse_at=round(f.pulse_time, 4),
            dropped=f.dropped,
        )
        return out

    def _set(self, args: dict[str, Any]) -> dict[str, Any]:
        s = self.get(args.get("token"))
        changes = args.get("changes") or {}
        if not isinstance(changes, dict):
            raise LiveError("bad request: changes must be an object")
        values = {}
        for name, value in changes.items():
            if name not in LIVE_PARAMS:
                raise LiveError(f"{name} cannot change during a live session")
            p = PARAM[name]
            if p.optional and value in (0, 0.0, None, ""):  # a slider at 0 turns an optional effect off
                values[name] = None
            else:
                values[name] = p.check(p.parse(value) if isinstance(value, str) else value)
        if values:
            s.renderer.update(**values)
        if args.get("style"):
            self._set_style(s, args["style"])
        return {"values": _values(s.renderer.params)}

    def _operators(self, style: Any) -> bool:
        """Whether ``style`` is the one this server's operator chose (``lsd-jax live --style``: a path of theirs may
        be), which the page offers first; anything else a page sends goes through the door."""
        return style is not None and self.cfg.style is not None and str(style) == str(self.cfg.style)

    def _set_style(self, s: _Session, style: Any) -> None:
        """Switch ``s`` to a visitor's ``style`` through the one door (refused at once when it is no catalogue name
        or received upload); loaded, checked for memory and compiled on a background thread, one at a time."""
        own = self._operators(style)
        choice = str(style) if own else visitor_style(style)[0]
        name = choice if choice == "default" or not Path(choice).is_absolute() else Path(choice).name
        with self._lock:
            if s.loading:
                raise LiveError("the previous style is still loading: wait for it")
            s.loading = True
        s.style_name, s.style_error = name, ""
        renderer = s.renderer

        def done(error: BaseException | None) -> None:
            s.loading = False
            if error is not None:
                s.style_error = f"{name}: {error}" if isinstance(error, LsdError) else f"{name} failed to load"
                if not isinstance(error, LsdError):
                    log.error("live style %s failed", name, exc_info=error)

        def load() -> None:
            try:
                if own:
                    from ..styles.resolve import resolve_style

                    style_obj = resolve_style(choice, renderer.params, progress=False)
                else:
                    style_obj = load_visitor_style(choice, renderer.params)
                _check_fits(renderer, style_obj)
            except BaseException as e:  # noqa: BLE001  (shown in the page's status line)
                done(e)
                return
            renderer.set_style(style_obj, done)

        threading.Thread(target=load, name="lsd-jax-live-style-load", daemon=True).start()

    def _close(self, args: dict[str, Any]) -> dict[str, Any]:
        token = args.get("token")
        if token is not None and str(token) == self.attached:
            return {"ok": True}  # the server's own session outlives the page
        self.close(token)
        return {"ok": True}


def _check_fits(renderer: LiveRenderer, style: Any) -> None:
    """Refuse ``style`` when ``renderer``'s frame step of it (one frame, at the largest size it would render) would
    not fit in memory, before anything compiles (on CPU a failed allocation in XLA aborts the server)."""
    from ..engine.step import output_size

    size = output_size(style, renderer.params)
    check_fits(style, size, renderer._plan(size), renderer.params)  # the renderer's own effects


def _number(value: Any, default: float) -> float:
    """A finite number sent by the page, else ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)


def _jpeg(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _values(params: Any) -> dict[str, Any]:
    out = {}
    for name in LIVE_PARAMS:
        v = getattr(params, name)
        out[name] = 0.0 if v is None else v
    return out


# --------------------------------------------------------------------------------------------------
# The page side


def _slider(name: str, value: Any) -> str:
    p = PARAM[name]
    value = 0.0 if isinstance(value, str) else value  # speed_fpm "beat"/"bar" (the session's tempo): no number
    lo = p.lo if p.lo is not None else 0.0
    hi = p.ui_hi or p.hi or 1.0
    if name == "class_smooth_seconds":
        hi = 10.0
    if name == "seed":
        return (
            f'<label title="{html.escape(p.help)}">{name} <input type="number" data-name="{name}" min="0" '
            f'max="{int(p.hi or 0)}" step="1" value="{int(value)}"></label>'
        )
    step = p.step or (0.01 if hi <= 1 else 0.1)
    return (
        f'<label title="{html.escape(p.help)}"><span>{name}</span> <input type="range" data-name="{name}" '
        f'min="{lo:g}" max="{hi:g}" step="{step:g}" value="{float(value or 0):g}"><output>{float(value or 0):g}'
        f"</output></label>"
    )


CSS = """
.lsdm-bar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 8px; }
.lsdm-bar button { padding: 4px 12px; border-radius: 6px; border: 1px solid #888; cursor: pointer; }
canvas { width: min(100%, 70vh); aspect-ratio: 1; background: #000; image-rendering: auto;
  display: block; }
canvas:fullscreen { width: 100vw; height: 100vh; object-fit: contain; }
.lsdm-sliders { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
  gap: 4px 16px; margin-top: 8px; }
.lsdm-sliders label { display: flex; gap: 6px; align-items: center; font-size: 0.85em; }
.lsdm-sliders input[type=range] { flex: 1; }
.lsdm-status { font-family: monospace; font-size: 0.85em; }
"""


def panel_html(
    values: dict[str, Any], styles: Sequence[Any], attach: bool = False, audio_url: str | None = None
) -> str:
    """The panel's HTML: buttons, the canvas, the style menu, the sliders (from the parameter table)."""
    pairs = [(s, s) if isinstance(s, str) else (str(s[0]), str(s[1])) for s in styles]  # names or (label, name)
    options = "".join(f'<option value="{html.escape(v)}">{html.escape(k)}</option>' for k, v in pairs)
    sliders = "".join(_slider(n, values[n]) for n in LIVE_PARAMS)
    audio = f'<audio class="lsdm-audio" src="{html.escape(audio_url)}" preload="auto"></audio>' if audio_url else ""
    return (
        f'<div class="lsdm" data-attach="{int(attach)}">'
        '<div class="lsdm-bar">'
        '<button class="lsdm-mic">Microphone</button><button class="lsdm-tab">Share a tab\'s audio</button>'
        '<button class="lsdm-stop" disabled>Stop</button><button class="lsdm-full">Full screen</button>'
        f'<label>style <select class="lsdm-style">{options}</select></label>'
        '<span class="lsdm-status">Press Microphone (or share a tab with sound) to start.</span></div>'
        f'<canvas width="256" height="256"></canvas>{audio}'
        f'<div class="lsdm-sliders">{sliders}</div></div>'
    )


#: The panel's script (``js_on_load``): capture audio with an AudioWorklet, send it, poll frames, draw them.
#: ``window.lsdLive`` keeps a log of the frames received (tests and the curious read it).
PANEL_JS = r"""
const root = element.querySelector('.lsdm');
const $ = s => root.querySelector(s);
const canvas = $('canvas'), ctx = canvas.getContext('2d');
const small = document.createElement('canvas'); small.width = small.height = 24;
const sctx = small.getContext('2d', {willReadFrequently: true});
const status = $('.lsdm-status');
const log = window.lsdLive = {frames: [], latency: [], errors: [], sent: 0, state: 'idle'};
let token = null, run = 0, audio = null, prev = null;
const say = t => { status.textContent = t; };
const fail = m => { log.errors.push(m); say(m); };
function b64(i16) {
  const u8 = new Uint8Array(i16.buffer); let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}
const WORKLET = `class Tap extends AudioWorkletProcessor {
  constructor() { super(); this.buf = new Float32Array(512); this.n = 0; }
  process(inputs) {
    const chans = inputs[0]; if (!chans || !chans.length) return true;
    const len = chans[0].length;
    for (let i = 0; i < len; i++) { let v = 0; for (const c of chans) v += c[i]; this.buf[this.n++] = v / chans.length;
      if (this.n === this.buf.length) { this.port.postMessage({x: this.buf, t: currentTime}); this.buf = new Float32Array(512); this.n = 0; } }
    return true; } }
registerProcessor('lsd-tap', Tap);`;
async function open(attach) {
  const r = await server.live_open({attach: attach, style: $('.lsdm-style').value});
  if (r.error) throw new Error(r.error);
  token = r.token; log.token = token; log.fps = r.fps;
  for (const [k, v] of Object.entries(r.values)) { const el = root.querySelector(`[data-name="${k}"]`);
    if (el) { el.value = v; const o = el.parentElement.querySelector('output'); if (o) o.textContent = v; } }
  if (r.style) $('.lsdm-style').value = r.style;
  return r;
}
async function startCapture(kind) {
  const me = ++run;
  let stream;
  try {
    const a = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
    stream = kind === 'tab' ? await navigator.mediaDevices.getDisplayMedia({video: true, audio: a})
                            : await navigator.mediaDevices.getUserMedia({audio: a});
    if (!stream.getAudioTracks().length) throw new Error('the shared tab has no audio (tick "share audio")');
    stream.getVideoTracks().forEach(t => t.stop());
    say('Starting (compiling the first frame) …'); log.state = 'opening';
    await open(false);
  } catch (e) { if (stream) stream.getTracks().forEach(t => t.stop()); fail(String(e.message || e)); return; }
  const ac = new AudioContext({latencyHint: 'interactive'});
  await ac.audioWorklet.addModule(URL.createObjectURL(new Blob([WORKLET], {type: 'application/javascript'})));
  const src = ac.createMediaStreamSource(stream), tap = new AudioWorkletNode(ac, 'lsd-tap');
  const mute = ac.createGain(); mute.gain.value = 0;
  src.connect(tap); tap.connect(mute); mute.connect(ac.destination);
  audio = {ac, stream, me};
  let pending = [], busy = false, lastT = 0;
  tap.port.onmessage = ev => { pending.push(ev.data.x); lastT = performance.now(); if (!busy) send(); };
  async function send() {
    if (me !== run || !pending.length) return;
    busy = true;
    let take = 0, n = 0;  // at most half a second per request: a slow network sends several, in order
    while (take < pending.length && n + pending[take].length <= ac.sampleRate / 2) n += pending[take++].length;
    if (!take) { take = 1; n = pending[0].length; }
    const i16 = new Int16Array(n); let o = 0;
    for (const x of pending.slice(0, take)) { for (let i = 0; i < x.length; i++) i16[o++] = Math.max(-32768, Math.min(32767, x[i] * 32768)); }
    pending = pending.slice(take);
    try { const r = await server.live_audio({token, pcm: b64(i16), sr: ac.sampleRate, t: lastT});
      if (r.error) fail(r.error); else log.sent += n; } catch (e) { fail(String(e)); }
    busy = false; if (pending.length) send();
  }
  frames(me);
}
function diffOf() {
  sctx.drawImage(canvas, 0, 0, 24, 24);
  const d = sctx.getImageData(0, 0, 24, 24).data; let s = 0;
  if (prev) for (let i = 0; i < d.length; i += 4) s += Math.abs(d[i] - prev[i]) + Math.abs(d[i+1] - prev[i+1]) + Math.abs(d[i+2] - prev[i+2]);
  prev = d; return s / (24 * 24 * 3);
}
async function frames(me) {
  let seq = -1, shown = [], lastStats = 0;
  log.state = 'running'; $('.lsdm-stop').disabled = false;
  while (me === run) {
    let r;
    try { r = await server.live_frame({token, after: seq, wait: 1.0}); } catch (e) { await new Promise(ok => setTimeout(ok, 500)); continue; }
    if (me !== run) break;
    if (r.error) { fail(r.error); break; }
    if (r.jpeg !== undefined && r.seq > seq) {
      seq = r.seq;
      const img = new Image(); img.src = 'data:image/jpeg;base64,' + r.jpeg;
      try { await img.decode(); } catch (e) { continue; }
      if (canvas.width !== r.w) { canvas.width = r.w; canvas.height = r.h; }
      ctx.drawImage(img, 0, 0);
      const now = performance.now();
      if (typeof r.tag === 'number' && r.tag > 0) { log.latency.push(now - r.tag); if (log.latency.length > 300) log.latency.shift(); }
      log.frames.push({seq: r.seq, tick: r.tick, pulse: r.pulse, motion: r.motion, at: r.at, pulse_at: r.pulse_at, recv: now,
                       diff: diffOf(), w: r.w});
      if (log.frames.length > 3000) log.frames.splice(0, 1000);
      shown.push(now); while (shown.length && shown[0] < now - 1000) shown.shift();
    }
    const st = r.stats; const now = performance.now();
    if (st && now - lastStats > 250) {
      lastStats = now; const lat = log.latency.slice(-30).sort((a, b) => a - b);
      say(`${shown.length} frames/s · ${st.size[0]}×${st.size[1]} · dropped ${st.dropped}/${st.ticks} · step ${st.step_ms} ms`
          + (lat.length ? ` · audio→screen ${Math.round(lat[lat.length >> 1])} ms` : '')
          + (r.style_error ? ` · ${r.style_error}` : '') + (r.controls ? ` · ${r.controls}` : ''));
    }
  }
}
function stop() {
  run++; log.state = 'stopped'; $('.lsdm-stop').disabled = true;
  if (audio) { audio.stream.getTracks().forEach(t => t.stop()); audio.ac.close(); audio = null; }
  const a = $('.lsdm-audio'); if (a) a.pause();
  if (token) server.live_close({token}); token = null; say('Stopped.');
}
$('.lsdm-mic').addEventListener('click', () => { stop(); startCapture('mic'); });
$('.lsdm-tab').addEventListener('click', () => { stop(); startCapture('tab'); });
$('.lsdm-stop').addEventListener('click', stop);
const full = () => (canvas.requestFullscreen ? canvas.requestFullscreen() : Promise.resolve()).catch(() => {});
$('.lsdm-full').addEventListener('click', full);
document.addEventListener('keydown', e => { if (e.key === 'f' && root.isConnected && document.activeElement?.tagName !== 'INPUT') full(); });
let timer = null, changes = {};
root.querySelectorAll('[data-name]').forEach(el => el.addEventListener('input', () => {
  const o = el.parentElement.querySelector('output'); if (o) o.textContent = el.value;
  changes[el.dataset.name] = Number(el.value);
  clearTimeout(timer);
  timer = setTimeout(async () => { const c = changes; changes = {};
    if (token) { const r = await server.live_set({token, changes: c}); if (r.error) fail(r.error); } }, 60);
}));
$('.lsdm-style').addEventListener('change', async () => {
  if (token) { const r = await server.live_set({token, style: $('.lsdm-style').value}); if (r.error) fail(r.error); }
});
if (root.dataset.attach === '1') {  // lsd-jax live --input: the server plays the file; show it, play its audio
  (async () => {
    try { const r = await open(true); const me = ++run; const a = $('.lsdm-audio');
      if (a) { a.currentTime = r.elapsed; a.play().catch(() => say('Click the page to hear the audio.')); }
      frames(me);
    } catch (e) { fail(String(e.message || e)); }
  })();
}
"""


def live_panel(
    sessions: LiveSessions, styles: Sequence[Any] = ("default",), *, attach: bool = False, audio_url: str | None = None
) -> Any:
    """The live panel (a ``gr.HTML``) bound to ``sessions``; create it inside a Blocks."""
    import gradio as gr

    base = sessions.cfg.params or make_params()

    def live_open(args: Any, request: Any = None) -> dict[str, Any]:
        if isinstance(args, dict):  # the visitor's address, for the per-client limit (never the page's word)
            args = {**args, "_client": client_key(request, sessions.cfg.forwarded)}
        return sessions.handle("open", args)

    live_open.__annotations__ = {"request": gr.Request}  # Gradio passes the request to a parameter of this type

    def live_audio(args: Any) -> dict[str, Any]:
        return sessions.handle("audio", args)

    def live_frame(args: Any) -> dict[str, Any]:
        return sessions.handle("frame", args)

    def live_set(args: Any) -> dict[str, Any]:
        return sessions.handle("set", args)

    def live_close(args: Any) -> dict[str, Any]:
        return sessions.handle("close", args)

    template = panel_html(_values(base), styles, attach, audio_url)
    return gr.HTML(
        "",
        html_template=template,
        js_on_load=PANEL_JS,
        elem_id="live-mode",
        css_template=CSS,
        server_functions=[live_open, live_audio, live_frame, live_set, live_close],
    )


def add_page(demo: Any, cfg: LiveConfig | None = None) -> LiveSessions:
    """Give the web app a **Live** page (``/live``) with the panel; its sessions close with the app."""
    import gradio as gr

    from .form import style_choices

    sessions = LiveSessions(cfg)
    with demo.route("Live", "/live"):
        gr.Markdown(
            "## Live\nThe visuals follow your microphone, or the sound of a browser tab you share, in real "
            "time. Sliders and style change while it plays. One session at a time on this server."
        )
        live_panel(sessions, style_choices())
    close = demo.close

    def close_live(*args: Any, **kwargs: Any) -> None:
        try:
            sessions.close_all()
        finally:
            close(*args, **kwargs)

    demo.close = close_live
    demo.lsd_live = sessions
    return sessions


# --------------------------------------------------------------------------------------------------
# lsd-jax live


def build_parser() -> argparse.ArgumentParser:
    from ..flags import add_param_arguments

    ap = argparse.ArgumentParser(
        prog="lsd-jax live",
        description="Live mode: the visuals follow sound in real time. Serves a page (this machine has no GUI "
        "libraries for a desktop window): open it in a browser, press Microphone (the default input "
        "device) or share a tab's audio; or play a file in real time with --input. Full screen: the "
        "page's button or the f key.",
    )
    ap.add_argument(
        "--input", default=None, help="play this audio file in real time (the page shows the frames and plays the file)"
    )
    ap.add_argument(
        "--record",
        default=None,
        metavar="OUT.mp4",
        help="write what was shown, with the audio, to an MP4 when the session ends",
    )
    ap.add_argument(
        "--style", default="default", help="'default' (the default), a catalogue name, or a .pkl/.safetensors path"
    )
    ap.add_argument(
        "--no-serve",
        action="store_true",
        help="with --input: no page; render the file in real time (and record it), then exit",
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free one)")
    ap.add_argument("--open", action="store_true", help="open the page in the default browser")
    osc.add_arguments(ap)
    midi.add_arguments(ap)
    add_param_arguments(ap, SUPPORTED_PARAMS, defaults=LIVE_DEFAULTS)  # the help shows live's own defaults
    return ap


LIVE_DEFAULTS = {"fps": 30.0, "resolution": 256}  # live mode's defaults where they differ from render's


def main(argv: Sequence[str] | None = None) -> int:
    """``lsd-jax live``: see :func:`build_parser`."""
    from ..flags import params_from

    args = build_parser().parse_args(argv)
    values = params_from(args)
    values.setdefault("fps", LIVE_DEFAULTS["fps"])
    if not any(k in values for k in ("resolution", "width", "height")):
        values["resolution"] = LIVE_DEFAULTS["resolution"]
    params = make_params(**values)
    if args.no_serve and not args.input:
        raise LiveError("--no-serve needs --input (without a page, only a file can be played)")
    if args.record and not str(args.record).lower().endswith(".mp4"):
        raise LiveError(f"--record must name an .mp4 file, got {args.record}")
    cfg = LiveConfig(sessions=1, resolution=params.resolution or 256, fps=params.fps, params=params, style=args.style)
    sessions = LiveSessions(cfg)
    controls: list[Any] = []  # OSC and MIDI inputs (closed when the session ends)
    try:
        controls += [c for c in (osc.from_args(args, sessions.current),) if c is not None]
        controls += [c for c in (midi.from_args(args, sessions.current),) if c is not None]
        sessions.controls = " · ".join(c.describe() for c in controls)  # the page's status line shows it
        if controls:
            print(sessions.controls, flush=True)
        return _serve(sessions, args, params)
    finally:
        for c in controls:
            c.close()


def _serve(sessions: LiveSessions, args: argparse.Namespace, params: Any) -> int:
    """The page (or, with --no-serve, the headless session) of ``lsd-jax live``."""
    if args.no_serve:
        return _headless(sessions, args, params)
    session = None
    if args.input:
        session = sessions.open(args.style, record=args.record, keep=True)
        session.feeder = FileFeeder(session.renderer, args.input, start=params.start, duration=params.duration)
        sessions.attached = session.token
    import gradio as gr

    audio_url = None
    allowed: list[str] = []
    if args.input:
        path = Path(args.input).expanduser().resolve()
        allowed = [str(path)]
        audio_url = f"/gradio_api/file={path}"
    with gr.Blocks(title="lsd-jax live", analytics_enabled=False) as demo:
        gr.Markdown(
            "# lsd-jax live"
            + (f"\nPlaying **{html.escape(Path(args.input).name)}** in real time." if args.input else "")
        )
        from .form import style_choices

        menu = [c for c in style_choices() if c[1] != args.style]
        live_panel(sessions, [(args.style, args.style), *menu], attach=bool(args.input), audio_url=audio_url)
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            inbrowser=args.open,
            allowed_paths=allowed,
            prevent_thread_lock=True,
            show_error=False,
            quiet=False,
        )
        if session is not None and session.feeder is not None:
            print("the file plays when the page is opened", flush=True)
            while not session.feeder.done.wait(1.0):
                pass
            time.sleep(0.5)
            st = session.renderer.stats()
            out = sessions.close(session.token)
            _summary(st, out)
        else:
            print("serving; press Ctrl-C to stop", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sessions.close_all()
        demo.close()
    return 0


STOP_SIGNALS = ("SIGINT", "SIGTERM")  # a headless session stops on these and keeps its recording
STATUS_TTY_S = 0.5  # a terminal's status line is rewritten this often
STATUS_LOG_S = 5.0  # elsewhere (a pipe, a log file) a plain status line this often
POLL_S = 0.1  # how often the headless loop looks for a stop signal
END_WAIT_S = 2.0  # at the song's end, at most this long for the frame of its last audio (a session far behind)


class _Level:
    """The input meter of the status line: the loudest audio block's RMS since it was last read (an audio listener
    of the session)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._peak = 0.0

    def __call__(self, samples: np.ndarray, sr: int, t: float) -> None:
        x = np.asarray(samples, np.float32)
        rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
        with self._lock:
            self._peak = max(self._peak, rms)

    def take(self) -> float:
        """dBFS of the loudest block since the last call (−inf for silence)."""
        with self._lock:
            peak, self._peak = self._peak, 0.0
        return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def status_line(
    elapsed: float, total: float, frames_per_s: float, dropped: int, level_db: float, size: tuple[int, int]
) -> str:
    """The headless session's status: song time played, frames rendered per second (of the clock's fps),
    ticks dropped so far, the input level and the size frames render at (the resolution ladder's rung)."""
    level = "silent" if level_db == -math.inf else f"{level_db:5.1f} dB"
    return (
        f"{elapsed:6.1f} / {total:.1f} s · {frames_per_s:5.1f} frames/s · {dropped} dropped · level {level} · "
        f"{size[0]}x{size[1]}"
    )


class _StopSignals:
    """SIGINT and SIGTERM stop a headless session cleanly instead of killing it. The signals are blocked from here
    on for this thread and the threads and processes it starts (ffmpeg inherits the mask, and a terminal's Ctrl-C
    goes to the whole process group: ffmpeg would otherwise die with the recording half written); :meth:`poll`
    takes a pending one. A signal that reaches a thread started earlier runs the handler instead."""

    def __init__(self) -> None:
        import signal

        self.signal = signal
        self.sigs = {getattr(signal, n) for n in STOP_SIGNALS if hasattr(signal, n)}
        self.received: str | None = None
        self._old = {sig: signal.signal(sig, self._handler) for sig in self.sigs}
        self._masked = hasattr(signal, "pthread_sigmask") and hasattr(signal, "sigwait")
        if self._masked:
            signal.pthread_sigmask(signal.SIG_BLOCK, self.sigs)

    def _handler(self, signum: int, frame: Any) -> None:
        self.received = self.received or self.signal.Signals(signum).name

    def poll(self) -> str | None:
        """The name of the stop signal received so far (None: none)."""
        if self._masked and self.received is None:
            pending = self.signal.sigpending() & self.sigs
            if pending:
                self.received = self.signal.Signals(self.signal.sigwait(pending)).name
        return self.received

    def restore(self) -> None:
        if self._masked:
            while self.signal.sigpending() & self.sigs:  # a second Ctrl-C while finishing: taken, not raised later
                self.signal.sigwait(self.signal.sigpending() & self.sigs)
            self.signal.pthread_sigmask(self.signal.SIG_UNBLOCK, self.sigs)
        for sig, old in self._old.items():
            self.signal.signal(sig, old)


def _headless(sessions: LiveSessions, args: argparse.Namespace, params: Any) -> int:
    """``lsd-jax live --input FILE --no-serve``: play the file in real time with a status line; Ctrl-C or SIGTERM
    stops early and still finishes the recording (video and audio of the same length)."""
    import sys

    signals = _StopSignals()  # before the session starts its threads and ffmpeg
    try:
        # decoded before the session starts: a bad file is refused before the compile, and the recording starts
        # with the song rather than after the decoding
        feeder = FileFeeder(None, args.input, start=params.start, duration=params.duration)  # type: ignore[arg-type]
        session = sessions.open(args.style, record=args.record, keep=True)
        try:
            renderer = feeder.renderer = session.renderer
            session.feeder = feeder
            level = _Level()
            renderer.add_audio_listener(level)
            tty = sys.stdout.isatty()
            every = STATUS_TTY_S if tty else STATUS_LOG_S
            feeder.start()
            print(
                f"playing {args.input} ({feeder.seconds:.1f} s) in real time; Ctrl-C stops"
                + (" and keeps the recording" if args.record else ""),
                flush=True,
            )
            width, frames, t_last = 0, renderer.stats().frames, time.monotonic()
            while not feeder.done.wait(POLL_S) and signals.poll() is None:
                now = time.monotonic()
                if now - t_last < every:
                    continue
                st = renderer.stats()
                elapsed = renderer.clock() - (feeder.t_start or renderer.clock())
                line = status_line(
                    elapsed, feeder.seconds, (st.frames - frames) / (now - t_last), st.dropped, level.take(), st.size
                )
                frames, t_last = st.frames, now
                if tty:  # one line, rewritten
                    sys.stdout.write("\r" + line.ljust(width))
                    width = len(line)
                    sys.stdout.flush()
                else:
                    print(line, flush=True)
            if tty and width:
                sys.stdout.write("\n")
            stopped = signals.poll()
            if stopped:
                print(f"{stopped}: stopping; finishing the recording …" if args.record else f"{stopped}: stopping")
            elif feeder.t_start is not None and renderer.t0 is not None:
                # until the tick that shows the audio's end (a moment): the recording ends with the song, not later
                end = math.ceil((feeder.t_start + feeder.seconds - renderer.t0) * renderer.fps)
                if session.recorder is not None:
                    session.recorder.last_tick = end
                deadline = time.monotonic() + END_WAIT_S
                while renderer.stats().ticks <= end and time.monotonic() < deadline and renderer.error is None:
                    time.sleep(POLL_S / 10)
            sys.stdout.flush()
        finally:
            st = session.renderer.stats()
            out = sessions.close(session.token)
        _summary(st, out)
        return 0
    finally:
        signals.restore()


def _summary(st: Any, out: Any) -> None:
    print(
        f"{st.frames} frames shown for {st.ticks} clock ticks ({st.dropped} dropped), "
        f"sizes {json.dumps(st.sizes)}" + (f"; recorded {out}" if out else ""),
        flush=True,
    )
