"""A small misbehaving-on-request HTTP file server for download tests (127.0.0.1 only).

    with FileServer() as srv:
        url = srv.add("/model.pkl", data, drop_after=1000)   # first GET dies after 1000 body bytes
        ...
        srv.requests_for("/model.pkl")                        # what the client asked for

It serves in-memory files with ``Range`` support (206 / 416) and, per path, can be told to answer a
status instead (404, 503, ... for the first N requests or always), drop the connection after K body
bytes (the first N times), stall (sleep with the headers sent, woken by ``stop()``), ignore ``Range``,
trickle slowly (``chunk`` bytes every ``chunk_delay`` seconds, woken by ``stop()``), send a given Content-Type, or
announce a different Content-Length (``claim_length``) or none (``send_length=False``), send extra ``headers``, serve
byte ranges asked for in the
path (``path_ranges``: ``/f/START-END``, mega.nz's way), or answer through a ``respond(request)`` function (a host's
API or pages; it returns ``(status, headers, body)``, or None to serve the file). Every request is logged (method,
path, query, headers, body); POST is accepted.
Threads are bounded (a semaphore) and daemonic; ``stop()`` wakes stalled handlers so tests never hang.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FileServer", "Request"]


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass
class _File:
    data: bytes
    status: int | None = None  # answer this status instead of the file...
    status_times: int | None = None  # ...for the first N requests (None: always)
    drop_after: int | None = None  # send only this many body bytes, then close the connection...
    drop_times: int = 1  # ...the first N times
    stall: float | None = None  # sleep this long (woken by stop()) after stall_after body bytes
    stall_after: int = 0
    stall_times: int | None = None  # None: every request stalls
    ignore_range: bool = False
    chunk: int = 16384
    chunk_delay: float = 0.0
    content_type: str = "application/octet-stream"
    claim_length: int | None = None  # Content-Length to announce instead of the real one
    send_length: bool = True  # False: no Content-Length at all (the body ends when the connection closes)
    etag: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # extra headers sent with the file
    path_ranges: bool = False  # also answer PATH/START-END with those bytes (200), as mega.nz's servers do
    respond: Callable[[Request], tuple[int, dict[str, str], bytes] | None] | None = None
    served: int = field(default=0)  # requests seen for this path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, handler, owner: FileServer, max_threads: int):
        self.owner = owner
        self.slots = threading.BoundedSemaphore(max_threads)
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(timeout=5):
            self.shutdown_request(request)  # bounded: refuse rather than pile up threads
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: simple and explicit
    server: _Server

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def do_POST(self):
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length) if length else b""
        req = Request(self.command, parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()}, sent)
        in_path = None
        with owner.lock:
            owner.requests.append(req)
            f = owner.files.get(parts.path)
            if f is None:
                m = re.fullmatch(r"(.*)/(\d+)-(\d+)", parts.path)
                g = owner.files.get(m.group(1)) if m else None
                if g is not None and g.path_ranges:
                    f, in_path = g, (int(m.group(2)), int(m.group(3)))
            n = None
            if f is not None:
                n = f.served
                f.served += 1
        if f is None:
            return self._simple(404, b"not found")
        if f.status is not None and (f.status_times is None or n < f.status_times):
            return self._simple(f.status, b"scripted status")
        if f.respond is not None:
            answer = f.respond(req)
            if answer is not None:
                code, headers, payload = answer
                self.send_response(code)
                for k, v in {"Content-Type": "application/octet-stream", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return None

        data = f.data
        start, end, status = 0, len(data), 200
        rng = req.range
        if in_path is not None:
            start, end = in_path[0], min(in_path[1] + 1, len(data))
            if start >= len(data) or start >= end:
                return self._simple(416, b"bad range")
        elif rng and not f.ignore_range:
            spec = rng.strip().lower()
            if not spec.startswith("bytes=") or "," in spec:
                return self._simple(400, b"bad range")
            a, _, b = spec[6:].partition("-")
            try:
                start = int(a) if a else max(0, len(data) - int(b))
                end = min(int(b) + 1, len(data)) if (a and b) else len(data)
            except ValueError:
                return self._simple(400, b"bad range")
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206

        self.send_response(status)
        self.send_header("Content-Type", f.content_type)
        if f.send_length:
            self.send_header("Content-Length", str(f.claim_length if f.claim_length is not None else end - start))
        self.send_header("Accept-Ranges", "none" if f.ignore_range else "bytes")
        if f.etag:
            self.send_header("ETag", f.etag)
        for k, v in f.headers.items():
            self.send_header(k, v)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if not body:
            return

        limit = end
        if f.drop_after is not None and n < f.drop_times:
            limit = min(end, start + f.drop_after)
        stall_at = None
        if f.stall is not None and (f.stall_times is None or n < f.stall_times):
            stall_at = min(end, start + f.stall_after)
        pos = start
        try:
            while pos < limit:
                if stall_at is not None and pos >= stall_at:
                    owner.stopping.wait(f.stall)
                    stall_at = None
                    if owner.stopping.is_set():
                        break
                stop = min(limit, pos + f.chunk)
                if stall_at is not None and pos < stall_at < stop:
                    stop = stall_at
                self.wfile.write(data[pos:stop])
                self.wfile.flush()
                pos = stop
                if f.chunk_delay and pos < limit and owner.stopping.wait(f.chunk_delay):
                    break  # stop() wakes a trickling handler at once
            if stall_at is not None and pos >= stall_at and not owner.stopping.is_set():
                owner.stopping.wait(f.stall)
        except (BrokenPipeError, ConnectionResetError):
            pass
        # Ending the handler closes the socket; with a short body that is the "dropped connection".
        self.close_connection = True

    def _simple(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class FileServer:
    """An HTTP server on 127.0.0.1 (a free port) serving in-memory files; see the module docstring."""

    def __init__(self, max_threads: int = 8):
        self.lock = threading.Lock()
        self.files: dict[str, _File] = {}
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self, max_threads)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, data: bytes, **behaviour) -> str:
        """Serve ``data`` at ``path`` with the given behaviour (see ``_File``); returns its URL."""
        with self.lock:
            self.files[path] = _File(data=bytes(data), **behaviour)
        return self.url(path)

    def requests_for(self, path: str, method: str | None = "GET") -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def count(self, path: str, method: str | None = "GET") -> int:
        return len(self.requests_for(path, method))

    def start(self) -> FileServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
