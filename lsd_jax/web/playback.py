"""Play while rendering: the live copy of a render (a fragmented MP4 that ffmpeg's tee muxer writes
beside the finished one, see :class:`lsd_jax.media.video.VideoWriter`) handed to the page in pieces.

The page opens a *channel* (a random token) when a visitor clicks Render; the render of that
visitor's session writes its live copy there; the page's player asks for the bytes after the ones it
has (:meth:`LiveChannels.chunk`) and appends them to a MediaSource, so the ``<video>`` plays while
later frames still render. The first piece waits for the whole init segment (``ftyp`` + ``moov``),
which names the codecs.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: The most bytes handed out per request (base64 makes it a third larger; the page parses each in one go).
CHUNK_BYTES = 1 << 18


class LiveSource(Protocol):
    """What a channel reads from: a run's live file and whether it is finished."""

    @property
    def live(self) -> Path | None: ...

    def finished(self) -> bool: ...


@dataclass
class Channel:
    token: str
    session: str | None
    opened: float = field(default_factory=time.monotonic)
    source: LiveSource | None = None
    closed: bool = False


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """Top-level MP4 boxes of ``data``: (type, start, end), complete ones only."""
    out, i = [], 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        if size == 1 and i + 16 <= len(data):
            size = int.from_bytes(data[i + 8 : i + 16], "big")
        if size < 8 or i + size > len(data):
            break
        out.append((data[i + 4 : i + 8], i, i + size))
        i += size
    return out


def init_segment(data: bytes) -> int:
    """The length of the init segment (``ftyp`` + ``moov``) at the start of ``data``, 0 while it is
    incomplete."""
    for kind, _, end in _boxes(data):
        if kind == b"moov":
            return end
    return 0


def codecs(init: bytes) -> str:
    """The RFC 6381 codecs of an init segment: ``avc1.PPCCLL`` from the avcC box, ``mp4a.40.2`` (AAC
    LC, what ffmpeg's aac encoder writes) when there is an audio track."""
    out = []
    i = init.find(b"avcC")
    if i >= 0 and i + 8 <= len(init):
        profile, compat, level = init[i + 5], init[i + 6], init[i + 7]
        out.append(f"avc1.{profile:02X}{compat:02X}{level:02X}")
    if b"mp4a" in init:
        out.append("mp4a.40.2")
    return ", ".join(out)


class LiveChannels:
    """The open channels of one app instance, by token; one per session at a time."""

    def __init__(self, max_age: float = 3 * 3600.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._by_token: dict[str, Channel] = {}

    def open(self, session: str | None) -> str:
        """A new channel for ``session`` (its previous ones close)."""
        now = time.monotonic()
        with self._lock:
            for t, ch in list(self._by_token.items()):
                if (session is not None and ch.session == session) or now - ch.opened > self.max_age:
                    del self._by_token[t]
            token = secrets.token_urlsafe(16)
            self._by_token[token] = Channel(token, session)
            return token

    def attach(self, session: str | None, source: LiveSource) -> bool:
        """Give the session's open channel (if it has one that is waiting) its source."""
        if session is None:
            return False
        with self._lock:
            for ch in self._by_token.values():
                if ch.session == session and ch.source is None and not ch.closed:
                    ch.source = source
                    return True
        return False

    def wants(self, session: str | None) -> bool:
        """Whether the session has a channel waiting for a render."""
        with self._lock:
            return (
                any(ch.session == session and ch.source is None and not ch.closed for ch in self._by_token.values())
                if session is not None
                else False
            )

    def close(self, session: str | None = None, token: str | None = None) -> None:
        with self._lock:
            for t, ch in list(self._by_token.items()):
                if (token is not None and t == token) or (session is not None and ch.session == session):
                    del self._by_token[t]

    def source(self, token: str) -> LiveSource | None:
        """What the channel ``token`` reads from (the render's run), None before it has one or when closed."""
        with self._lock:
            ch = self._by_token.get(str(token))
        return None if ch is None else ch.source

    def chunk(self, token: str, offset: int) -> dict[str, Any]:
        """The live bytes from ``offset`` on: ``data`` (base64, maybe empty), ``done`` (nothing more
        will come), ``more`` (more bytes are there already: ask again at once), ``codecs`` (with the first piece)."""
        with self._lock:
            ch = self._by_token.get(str(token))
        if ch is None:
            return {"data": "", "done": True}
        src = ch.source
        path = src.live if src is not None else None
        if src is None or path is None:
            return {"data": "", "done": ch.closed}
        finished = src.finished()
        offset = max(0, int(offset))
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(offset)
                data = f.read(CHUNK_BYTES)
        except FileNotFoundError:  # not started yet, or removed (a failed or cancelled render)
            return {"data": "", "done": finished}
        out: dict[str, Any] = {}
        if offset == 0:
            n = init_segment(data)
            if not n:
                return {"data": "", "done": finished}
            out["codecs"] = codecs(data[:n])
        out["data"] = base64.b64encode(data).decode("ascii")
        out["done"] = finished and offset + len(data) >= size
        out["more"] = offset + len(data) < size
        return out
