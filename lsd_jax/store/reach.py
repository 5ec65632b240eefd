"""Which download hosts this machine can reach: one quick probe per host, made once off any request's path and
cached, so a style menu marks the styles it cannot fetch before anyone clicks.

:data:`PROBES` is the process's one record (reachability is the process's network's, not an app's): the web app
starts :meth:`HostProbes.check_in_background` with its catalogue's URLs at launch; a page then reads
:meth:`HostProbes.reason` (no network: what the last probe found, None when reachable or not probed yet).
A probe is one ``HEAD /`` with a short time-out: any HTTP answer (even 403 or 404) means the host can be
reached; a name that does not resolve, a refused or timed-out connection means it cannot. A host found
unreachable is probed again after :data:`RECHECK_S` (the network may come back); a download that succeeds or
fails later says more than this probe, and the catalogue's own failure record keeps that.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["PROBES", "PROBE_TIMEOUT_S", "RECHECK_S", "HostProbes", "origin", "probe"]

PROBE_TIMEOUT_S = 3.0  # one probe's time-out: a reachable host answers a HEAD well within it
RECHECK_S = 600.0  # an unreachable host is probed again after this long
_AT_ONCE = 8  # probes in flight at once


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL (what one probe checks); None for anything else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _why(host: str, e: BaseException, timeout: float) -> str:
    """A visitor-readable reason a host could not be reached."""
    inner = e.reason if isinstance(e, urllib.error.URLError) and isinstance(e.reason, BaseException) else e
    if isinstance(inner, socket.gaierror):
        return f"no network (cannot look up {host})"
    if isinstance(inner, (socket.timeout, TimeoutError)):
        return f"{host} did not answer within {timeout:g} s"
    if isinstance(inner, ConnectionRefusedError):
        return f"{host} refused the connection"
    if isinstance(inner, OSError) and inner.errno in (101, 113):  # ENETUNREACH, EHOSTUNREACH
        return f"no network (cannot reach {host})"
    return f"cannot reach {host}"


def probe(url_origin: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """One ``HEAD`` of ``url_origin``'s root: None when the host answered (any status), else why not."""
    from .hosts import user_agent

    host = urllib.parse.urlsplit(url_origin).hostname or url_origin
    req = urllib.request.Request(url_origin + "/", method="HEAD", headers={"User-Agent": user_agent()})
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return None
    except urllib.error.HTTPError:  # it answered
        return None
    except (urllib.error.URLError, OSError, ValueError) as e:
        return _why(host, e, timeout)


class HostProbes:
    """Reachability of hosts, probed at most once per :data:`RECHECK_S` each (thread-safe)."""

    def __init__(
        self,
        timeout: float = PROBE_TIMEOUT_S,
        recheck_s: float = RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
        probe_fn: Callable[[str, float], str | None] = probe,
    ):
        self.timeout, self.recheck_s, self._clock, self._probe = timeout, recheck_s, clock, probe_fn
        self._lock = threading.Lock()
        self._found: dict[str, tuple[str | None, float]] = {}  # origin -> (why unreachable or None, when)
        self._busy: set[str] = set()

    def reason(self, url: str) -> str | None:
        """Why ``url``'s host cannot be reached, from the last probe; None when it can, or was not probed yet.
        No network."""
        o = origin(url)
        with self._lock:
            found = self._found.get(o) if o else None
        return found[0] if found else None

    def known(self, url: str) -> bool:
        o = origin(url)
        with self._lock:
            return o is not None and o in self._found

    def _due(self, o: str) -> bool:
        found = self._found.get(o)
        return found is None or (found[0] is not None and self._clock() - found[1] >= self.recheck_s)

    def check(self, urls: Iterable[str]) -> None:
        """Probe the hosts of ``urls`` not probed yet (or unreachable at the last probe, :data:`RECHECK_S` ago), a
        few at once, one probe each; returns when they are done (each within the time-out)."""
        with self._lock:
            todo = sorted({o for o in map(origin, urls) if o and o not in self._busy and self._due(o)})
            self._busy.update(todo)

        def one(o: str) -> None:
            try:
                why = self._probe(o, self.timeout)
            except Exception as e:  # a probe never fails the caller: unknown stays unknown
                why = f"cannot reach {o} ({type(e).__name__})"
            with self._lock:
                self._found[o] = (why, self._clock())
                self._busy.discard(o)

        if todo:
            with ThreadPoolExecutor(min(_AT_ONCE, len(todo)), thread_name_prefix="lsd-jax-probe") as pool:
                list(pool.map(one, todo))

    def check_in_background(self, urls: Iterable[str]) -> threading.Thread:
        """:meth:`check` in a daemon thread (a page must never wait for the network)."""
        urls = list(urls)
        thread = threading.Thread(target=self.check, args=(urls,), name="lsd-jax-probe-hosts", daemon=True)
        thread.start()
        return thread

    def record(self, url: str, why: str | None) -> None:
        """What a real download found about ``url``'s host (``why``: it could not be reached; None: it answered),
        kept like a probe's answer (an unreachable one probed again after :data:`RECHECK_S`)."""
        o = origin(url)
        if o:
            with self._lock:
                self._found[o] = (why, self._clock())

    def forget(self) -> None:
        """Drop every result (tests; a network that changed)."""
        with self._lock:
            self._found.clear()


#: The process's record (the catalogue's availability reads it; the web app fills it at launch).
PROBES = HostProbes()
