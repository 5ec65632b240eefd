"""Robust, resumable, checksummed, lock-protected downloads (stdlib urllib only).

``download(url, dest)`` puts the bytes of ``url`` at ``dest`` and returns ``dest``:

* streamed to ``dest.name + ".part"`` with a tqdm progress bar, then renamed atomically, so ``dest``
  either does not exist or is complete;
* a partial ``.part`` left by a dropped connection (or an earlier, interrupted run) is resumed with an
  HTTP ``Range`` request; a server that ignores ``Range`` (answers 200) restarts the file from zero;
* ``sha256`` (when given) is checked before the rename; on a mismatch the file is deleted (nothing is
  cached, no ``.part`` is left) and :class:`~lsd_jax.errors.DownloadError` is raised;
* connection errors, time-outs, dropped connections, a transfer slower than ``min_rate`` bytes/s over
  ``rate_window`` seconds, and 5xx/408/429 answers are retried with exponential back-off
  (``backoff * 2**k`` seconds); 404/410 and other 4xx are not; the whole download, retries included, must end
  within ``deadline`` seconds (a read in progress may add up to ``timeout``);
* a web page (HTML/XML, with or without a BOM, leading comments or up to 1 MiB of leading whitespace) or a JSON
  document where a binary file was expected (``binary=True``, the default) is an error naming the host and what
  came back, and is never cached;
* a download larger than the free disk space (by its Content-Length) fails before writing; a disk that
  fills up while writing (ENOSPC) is a disk-space error, not a network one;
* a download larger than ``max_bytes`` (default :data:`MAX_BYTES`, the most a model file may have) is refused: by
  its Content-Length before writing, and by what arrives when the server sends no length, so a server cannot fill
  the disk; a redirect or a host's link to anything but http(s) is refused too;
* the ``.part`` file: KEPT for resuming after network failures (drop, stall, too slow, deadline: the
  message says so); REMOVED after a disk-full error, a checksum mismatch, a web page or a file over ``max_bytes``;
* a per-destination lock file (``fcntl.flock``; ``msvcrt`` on Windows) makes concurrent callers, in
  threads or processes, download the file once: the others wait, then find it done;
* ``file://`` URLs and plain local paths are copied through the same ``.part``/checksum/rename path.

Hosts found in LSD's catalogue (Google Drive's large-file confirmation, Yandex Disk's public API, mega.nz's
encrypted files) are resolved by :mod:`lsd_jax.store.hosts` at each attempt; a mega.nz file is decrypted as it arrives
(AES-CTR, so a transfer resumes at any offset) and verified with mega's chunk MAC before the rename (a mismatch
caches nothing). :func:`can_fetch` says, without network, whether a URL is one this module can download.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from converters.limits import Limits

from ..errors import DownloadError
from . import hosts
from .paths import sha256_file

__all__ = ["can_fetch", "download", "file_lock", "is_local", "local_path", "sniff_file", "sniff_page"]

CHUNK = 1 << 16
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_MAX_SLEEP = 60.0
DEADLINE = 3 * 3600.0  # seconds for a whole download, retries included
MIN_RATE = 1024.0  # bytes/s, averaged over RATE_WINDOW seconds, below which an attempt is abandoned
RATE_WINDOW = 30.0
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
#: bytes a download may have: the most a model file may have (a bigger one could never be loaded)
MAX_BYTES = Limits().max_file_bytes
_SNIFF_BYTES = 4096
_MAX_LEADING_SPACE = 1 << 20  # whitespace skipped before sniffing; a page can pad its start to hide what it is


# ------------------------------------------------------------------------------------ local files


def is_local(url: str | os.PathLike) -> bool:
    """True for ``file://`` URLs and plain filesystem paths (anything without an http(s)/ftp scheme)."""
    if isinstance(url, os.PathLike):
        return True
    scheme = urllib.parse.urlsplit(str(url)).scheme.lower()
    # A one-letter "scheme" is a Windows drive letter (C:\...).
    return scheme in ("", "file") or len(scheme) == 1


def local_path(url: str | os.PathLike) -> Path:
    """The filesystem path of a ``file://`` URL or local path (``~`` expanded)."""
    if isinstance(url, os.PathLike):
        return Path(url).expanduser()
    s = str(url)
    parts = urllib.parse.urlsplit(s)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise DownloadError(f"Cannot use {s!r}: file:// URLs on another host are not supported.")
        return Path(urllib.request.url2pathname(parts.path))
    return Path(s).expanduser()


# ------------------------------------------------------------------------------------ locking


@contextlib.contextmanager
def file_lock(lock_path: Path, what: str, progress: bool) -> Iterator[None]:
    """Exclusive advisory lock on ``lock_path``; blocks (polling) until it is ours.

    flock locks belong to the open file description, so two threads of one process that each open the
    file exclude each other exactly like two processes do.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    told = False
    try:
        while True:
            if _try_lock(fd):
                break
            if not told and progress:
                print(f"Waiting for another download of {what} to finish...", file=sys.stderr)
                told = True
            time.sleep(0.05)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------ URL hosts


def can_fetch(url: str | os.PathLike) -> bool:
    """Whether :func:`download` can fetch ``url`` at all (local paths, http(s) URLs, Google Drive, Yandex Disk and
    mega.nz file links; not folder links or other schemes). No network: a dead link still answers True."""
    return is_local(url) or hosts.unsupported(os.fspath(url)) is None


# ------------------------------------------------------------------------------------ download


class _Retry(Exception):
    """A transient failure: try again after a back-off (the .part is kept for resuming)."""

    def __init__(self, message: str, *, stalled: bool = False, network: bool = True):
        super().__init__(message)
        self.stalled = stalled
        self.network = network


class _Restart(Exception):
    """The .part cannot be resumed: drop it and start over at once (not counted as an attempt)."""


def _transient(e: BaseException) -> _Retry:
    return _Retry(hosts.reason(e), stalled=hosts.is_timeout(e))


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30,
    retries: int = 4,
    backoff: float = 1.0,
    deadline: float | None = DEADLINE,
    min_rate: float = MIN_RATE,
    rate_window: float = RATE_WINDOW,
    binary: bool = True,
    max_bytes: int | None = MAX_BYTES,
) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring) and return ``dest``.

    An existing ``dest`` is reused without any request (after a checksum check when ``sha256`` is
    given; a verified file is remembered in a small ``.sha256`` sidecar so it is hashed once).
    Raises :class:`~lsd_jax.errors.DownloadError`, naming the URL, when offline, on a dead link
    (404/410), on a stall (no data for ``timeout`` seconds, or less than ``min_rate`` bytes/s over
    ``rate_window`` seconds, after the retries), past the ``deadline`` (seconds for the whole download;
    None: none), on a checksum mismatch, when the server sends a web page or JSON document instead of a
    ``binary`` file, when the file is larger than ``max_bytes`` (None: no limit), or when the disk is too small.
    """
    dest = Path(dest)
    url = os.fspath(url)
    if sha256 is not None:
        sha256 = _check_sha(sha256)
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if min_rate < 0 or rate_window <= 0 or (deadline is not None and deadline <= 0):
        raise ValueError("min_rate must be >= 0, and rate_window and deadline > 0")
    pace = _Pace(url, deadline, min_rate, rate_window)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _cached(dest, sha256, repair=False):  # fast path, no lock: never deletes anything
        return dest
    with file_lock(dest.with_name(dest.name + ".lock"), dest.name, progress):
        if _cached(dest, sha256, repair=True):  # another thread/process finished it while we waited
            return dest
        part = dest.with_name(dest.name + ".part")
        source = None
        try:
            if is_local(url):
                _copy_local(local_path(url), part, progress, max_bytes)
            else:
                source = _fetch_http(
                    url,
                    part,
                    progress=progress,
                    timeout=timeout,
                    retries=retries,
                    backoff=backoff,
                    pace=pace,
                    max_bytes=max_bytes,
                )
        except _TooBig as e:
            _discard(part)
            raise DownloadError(
                f"{url} is too large: {e}, more than the {_human(max_bytes or 0)} a download may have. "
                "Nothing was cached.",
                reason=f"too large ({e})",
            ) from None
        except _DiskFull as e:
            _discard(part)  # what filled the disk: keeping it would keep the disk full
            raise DownloadError(
                f"Not enough disk space to download {url} into {part.parent} ({e}). The partial "
                "file was removed; free some space (or point LSD_JAX_CACHE at a bigger disk) and "
                "try again.",
                reason=f"not enough disk space ({e})",
                disk=True,
            ) from None
        _finish(url, part, dest, sha256, binary, source)
    return dest


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


class _TooBig(Exception):
    """More than ``max_bytes`` announced or received (the .part is removed)."""


def _check_size(n: int | None, max_bytes: int | None, what: str) -> None:
    if n is not None and max_bytes is not None and n > max_bytes:
        raise _TooBig(f"{what} {_human(n)}")


class _DiskFull(Exception):
    """The disk is full (or the quota reached) while writing the .part file."""


class _Sink:
    """The .part file being written: every OS error is a disk error (never blamed on the network)."""

    def __init__(self, part: Path, mode: str):
        self.part = part
        try:
            self.f = open(part, mode)
        except OSError as e:
            raise _disk_error(e, part) from None

    def write(self, block: bytes) -> None:
        try:
            self.f.write(block)
        except OSError as e:
            raise _disk_error(e, self.part) from None

    def close(self) -> None:
        try:
            self.f.flush()
            os.fsync(self.f.fileno())
        except OSError as e:
            raise _disk_error(e, self.part) from None
        finally:
            with contextlib.suppress(OSError):
                self.f.close()


def _disk_error(e: OSError, part: Path) -> Exception:
    if e.errno in _DISK_FULL:
        return _DiskFull(e.strerror or "no space left on device")
    return DownloadError(
        f"Cannot write {part}: {e.strerror or e}. Check that the folder is writable (or point "
        "LSD_JAX_CACHE elsewhere).",
        reason=f"cannot write {part}",
        disk=True,
    )


class _Pace:
    """The whole download's deadline and each attempt's minimum transfer rate."""

    def __init__(self, url: str, deadline: float | None, min_rate: float, window: float):
        self.url, self.deadline, self.min_rate, self.window = url, deadline, min_rate, window
        self.end = None if deadline is None else time.monotonic() + deadline

    def start(self) -> None:
        """A new attempt: the rate is measured afresh; past the deadline there is no new attempt."""
        self.check_deadline(None, None)
        self.t0, self.n0 = time.monotonic(), 0

    def check_deadline(self, got: int | None, total: int | None) -> None:
        if self.end is not None and time.monotonic() > self.end:
            done = f" ({_human(got)} of {_human(total) if total else 'an unknown size'} received)" if got else ""
            raise _Deadline(f"Download of {self.url} did not finish within {self.deadline:g} s{done}.")

    def update(self, received: int, got: int, total: int | None) -> None:
        """``received`` bytes so far in this attempt (``got`` in the file)."""
        self.check_deadline(got, total)
        now = time.monotonic()
        if now - self.t0 >= self.window:
            n = received - self.n0
            if n < self.min_rate * (now - self.t0):
                raise _Retry(
                    f"too slow: {n} bytes in the last {now - self.t0:.0f} s (the minimum is {self.min_rate:g} bytes/s)",
                    stalled=True,
                )
            self.t0, self.n0 = now, received


class _Deadline(Exception):
    """The download's overall deadline passed (the .part is kept for resuming)."""


def _check_sha(sha: str) -> str:
    s = sha.strip().lower()
    if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha!r}")
    return s


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _stamp(dest: Path) -> dict:
    st = dest.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached(dest: Path, sha256: str | None, *, repair: bool) -> bool:
    """Is ``dest`` present (and, with ``sha256``, verified)? With ``repair`` (only under the lock) a
    cached file that fails the checksum is removed so it gets downloaded again."""
    if not dest.is_file():
        return False
    if sha256 is None:
        return True
    side = _sidecar(dest)
    with contextlib.suppress(OSError, ValueError):
        rec = json.loads(side.read_text())
        if rec.get("sha256") == sha256 and {k: rec.get(k) for k in ("size", "mtime_ns")} == _stamp(dest):
            return True
    if sha256_file(dest) == sha256:
        _write_sidecar(dest, sha256)
        return True
    if not repair:
        return False
    with contextlib.suppress(FileNotFoundError):
        dest.unlink()
    with contextlib.suppress(FileNotFoundError):
        side.unlink()
    return False


def _write_sidecar(dest: Path, sha256: str) -> None:
    with contextlib.suppress(OSError):
        _sidecar(dest).write_text(json.dumps({"sha256": sha256, **_stamp(dest)}))


def _discard(part: Path) -> None:
    for p in (part, part.with_name(part.name + ".json")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


_TITLE = re.compile(r"<title[^>]*>([^<]{1,200})", re.IGNORECASE)
_HTML_TAGS = (
    "<!doctype html",
    "<html",
    "<head",
    "<body",
    "<script",
    "<meta",
    "<title",
    "<div",
    "<p>",
    "<p ",
    "<br",
    "<h1",
    "<table",
    "<iframe",
    "<pre",
    "<center",
    "<form",
    "<link",
    "<style",
    "<noscript",
)


def sniff_page(head: bytes) -> str | None:
    """What ``head`` (a file's first few KB) is, if it is a text page rather than a binary file: ``'an HTML page'``
    (with the page title when it has one), ``'an XML document'``, ``'a web page'`` or ``'a JSON document'`` (with
    its start). A byte-order mark, whitespace and leading ``<!-- comments -->`` are skipped. None for anything
    else: pickles, zips, safetensors and the like never start as text with ``<``, ``{`` or ``[``."""
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            text = head[len(bom) :].decode(enc, "replace")
            break
    else:
        text = head.decode("utf-8", "replace")
    bad = sum(1 for c in text if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f"))
    if "\x00" in text or bad > len(text) // 100 + 1:
        return None  # binary
    body = text.lstrip()
    low = body.lower()
    while low.startswith("<!--"):
        end = low.find("-->")
        if end < 0:
            return "an HTML page"
        body = body[end + 3 :].lstrip()
        low = body.lower()
    if low.startswith("<"):
        title = _TITLE.search(text)
        titled = f" (titled {' '.join(title.group(1).split())[:80]!r})" if title else ""
        if low.startswith(_HTML_TAGS) or "<html" in low[:2000]:
            return "an HTML page" + titled
        if low.startswith("<?xml"):
            return "an XML document" + (f" starting {' '.join(body[:120].split())!r}" if not titled else titled)
        return "a web page" + titled
    if low.startswith(("{", "[")):
        return f"a JSON document starting {' '.join(body[:120].split())!r}"
    return None


def sniff_file(path: Path) -> str | None:
    """:func:`sniff_page` of a file's start, after its leading whitespace (up to 1 MiB of it: a page padded with
    5 KB of spaces is still a page). A file of nothing but whitespace is ``'a blank page'``."""
    with open(path, "rb") as f:
        head = f.read(_MAX_LEADING_SPACE + _SNIFF_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: sniff_page skips its whitespace itself
        return sniff_page(head[:_SNIFF_BYTES])
    bom = b"\xef\xbb\xbf" if head.startswith(b"\xef\xbb\xbf") else b""
    rest = head[len(bom) :]
    body = rest.lstrip(b" \t\r\n\f\v")
    if rest and not body:
        return "a blank page (only whitespace)"
    return sniff_page(bom + body[:_SNIFF_BYTES])


def _finish(
    url: str, part: Path, dest: Path, sha256: str | None, binary: bool, source: hosts.Source | None = None
) -> None:
    if source is not None and source.mega is not None:
        from lsd_jax.store.mega import condensed_mac

        if condensed_mac(part, source.mega) != source.mega.meta_mac:
            _discard(part)
            raise DownloadError(
                f"The file from {url} failed mega.nz's integrity check (its MAC does not match the link's key): it "
                "was corrupted in transit or the link's key is wrong. Nothing was cached; try again.",
                reason="the file failed mega.nz's integrity check (MAC mismatch)",
            )
    if binary:
        kind = sniff_file(part)
        if kind:
            _discard(part)
            host = urllib.parse.urlsplit(url).hostname or url
            raise DownloadError(
                f"{host} sent {kind} instead of the file {url} (a web page: a download quota, consent or sign-in "
                "page, or an error message?). Nothing was cached. If the file needs a browser, download it there "
                "and use the local file.",
                reason=f"{host} sent {kind} (a web page) instead of the file",
                unavailable="dead",
            )
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            _discard(part)
            raise DownloadError(
                f"Checksum mismatch for {url}: expected sha256 {sha256}, got {got}. The file was deleted "
                "(nothing was cached). The file on the server may have changed or be corrupt; if you trust "
                "it, update the catalogue's sha256.",
                reason=f"checksum mismatch (expected sha256 {sha256[:12]}…, got {got[:12]}…)",
            )
    os.replace(part, dest)
    with contextlib.suppress(FileNotFoundError):
        part.with_name(part.name + ".json").unlink()
    if sha256 is not None:
        _write_sidecar(dest, sha256)


def _copy_local(src: Path, part: Path, progress: bool, max_bytes: int | None = None) -> None:
    if not src.is_file():
        raise DownloadError(f"Cannot copy {src}: no such file.")
    total = src.stat().st_size
    _check_size(total, max_bytes, "it is")
    _check_space(part, total, str(src))
    sink = _Sink(part, "wb")
    try:
        with open(src, "rb") as fi, _bar(total, 0, part, progress) as bar:
            for block in iter(lambda: fi.read(1 << 20), b""):
                sink.write(block)
                bar.update(len(block))
    finally:
        sink.close()


def _check_space(part: Path, need: int | None, url: str) -> None:
    """Fail before writing when the file cannot fit (16 MB kept free)."""
    if not need:
        return
    try:
        free = shutil.disk_usage(part.parent).free
    except OSError:
        return
    if need > free - (16 << 20):
        raise DownloadError(
            f"Not enough disk space to download {url}: it needs {_human(need)} but {part.parent} "
            f"has {_human(max(free, 0))} free. Free some space (or point LSD_JAX_CACHE at a bigger "
            "disk) and try again.",
            reason="not enough disk space",
            disk=True,
        )


def _bar(total: int | None, initial: int, part: Path, progress: bool):
    name = part.name[: -len(".part")] if part.name.endswith(".part") else part.name
    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        disable=not progress,
        leave=False,
        file=sys.stderr,
    )


def _fetch_http(
    url: str,
    part: Path,
    *,
    progress: bool,
    timeout: float,
    retries: int,
    backoff: float,
    pace: _Pace,
    max_bytes: int | None = None,
) -> hosts.Source:
    """Download ``url`` into ``part`` with retries; returns the host's :class:`~lsd_jax.store.hosts.Source` (a mega.nz
    file's is needed to verify it). Each attempt resolves the link afresh (hosts' temporary URLs expire)."""
    meta = part.with_name(part.name + ".json")
    with contextlib.suppress(OSError, ValueError):
        if json.loads(meta.read_text()).get("url") != url:
            _discard(part)  # a .part of some other URL: never splice two files together
    if part.exists() and not meta.exists():
        _discard(part)
    failures = 0
    restarts = 0
    while True:
        try:
            pace.start()
            try:
                source = hosts.resolve(url, timeout=timeout)
            except hosts.Transient as e:
                raise _Retry(str(e), stalled=e.stalled) from e
            _fetch_once(url, source, part, meta, progress=progress, timeout=timeout, pace=pace, max_bytes=max_bytes)
            return source
        except _Deadline as e:
            msg = str(e)
            if part.exists() and part.stat().st_size:
                msg += " The partial file is kept and will be resumed by the next try."
            raise DownloadError(msg, reason=f"did not finish within {pace.deadline:g} s") from None
        except _Restart:
            _discard(part)
            restarts += 1
            if restarts > 3:
                raise DownloadError(
                    f"Could not download {url}: the server keeps answering range requests wrongly.",
                    reason="the server answers range requests wrongly",
                ) from None
        except _Retry as e:
            failures += 1
            if failures > retries:
                what = f"stalled (no data for {timeout:g} s, or too slow)" if e.stalled else "failed"
                msg = f"Download of {url} {what} after {failures} attempt(s): {e}."
                if e.network:
                    msg += " Check your internet connection, or try again later."
                if part.exists() and part.stat().st_size:
                    msg += " The partial file is kept and will be resumed by the next try."
                raise DownloadError(msg, reason=f"{what} after {failures} attempt(s): {e}") from (e.__cause__ or e)
            delay = min(backoff * 2 ** (failures - 1), _MAX_SLEEP)
            if pace.end is not None:
                delay = max(0.0, min(delay, pace.end - time.monotonic()))
            time.sleep(delay)


def _fetch_once(
    url: str,
    source: hosts.Source,
    part: Path,
    meta: Path,
    *,
    progress: bool,
    timeout: float,
    pace: _Pace,
    max_bytes: int | None = None,
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    _check_size(source.size, max_bytes, "the host says it is")
    headers = {"User-Agent": hosts.user_agent(), "Accept-Encoding": "identity", **source.headers}
    real = source.url
    if source.mega is not None:  # mega.nz: ranges in the URL's path, a known size, an encrypted stream
        with contextlib.suppress(OSError, ValueError):
            if json.loads(meta.read_text()).get("size") != source.size:
                offset = 0
        if offset > source.size:
            raise _Restart()
        if offset == source.size:
            return  # the .part already holds the whole file (an earlier run died before the rename)
        real = source.ranged_url(offset)
    elif offset:
        headers["Range"] = f"bytes={offset}-"
        validator = None
        with contextlib.suppress(OSError, ValueError):
            m = json.loads(meta.read_text())
            validator = m.get("etag") or m.get("last_modified")
        if validator:
            headers["If-Range"] = validator
    req = urllib.request.Request(real, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset and source.mega is None:
            cr = (e.headers.get("Content-Range") or "").strip().lower()
            if cr.startswith("bytes */") and cr[8:].isdigit() and int(cr[8:]) == offset:
                return  # the .part already holds the whole file (an earlier run died before the rename)
            raise _Restart() from e
        if source.mega is not None and e.code in (403, 404, 410):
            raise _Retry(f"mega.nz's temporary download URL answered HTTP {e.code} (expired?)", network=False) from e
        if e.code in (404, 410):
            raise DownloadError(
                f"Dead link: {url} answered HTTP {e.code} ({e.reason}). The file is gone from that server; "
                "look for a mirror and register it with lsd_jax.store.catalogue.add_style(NAME, URL, overwrite=True).",
                reason=f"dead link (HTTP {e.code})",
                unavailable="dead",
            ) from e
        if e.code in _RETRY_STATUS:
            raise _Retry(f"the server answered HTTP {e.code} {e.reason}", network=False) from e
        if e.code == 509:
            raise DownloadError(
                f"Download of {url} refused: HTTP 509, the host's transfer quota is used up; try again in a few hours.",
                reason="over the host's transfer quota (HTTP 509)",
                unavailable="quota",
            ) from e
        raise DownloadError(
            f"Download of {url} refused: HTTP {e.code} {e.reason}.", reason=f"refused (HTTP {e.code} {e.reason})"
        ) from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, socket.gaierror):
            raise hosts.offline_error(url, e) from e
        raise _transient(e) from e
    except (OSError, http.client.HTTPException) as e:
        raise _transient(e) from e

    with resp:
        final = urllib.parse.urlsplit(resp.geturl()).scheme.lower()
        if final not in ("http", "https"):  # urllib follows redirects to ftp:// too (its status is None)
            raise DownloadError(
                f"Download of {url} refused: the server redirected it to a {final}: URL; only http "
                "and https are followed.",
                reason=f"redirected to a {final}: URL",
            )
        status = resp.status
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if source.mega is not None:
            if status != 200 or (length is not None and length != source.size - offset):
                raise _Retry(
                    f"mega.nz answered HTTP {status} with {length} bytes for bytes {offset}- of {source.size}",
                    network=False,
                )
            mode, total = ("ab" if offset else "wb"), source.size
            if not offset:
                meta.write_text(json.dumps({"url": url, "size": source.size}))
        elif offset and status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                raise _Restart()
            mode = "ab"
        elif status == 200:
            offset, mode, total = 0, "wb", length
            info = {"url": url, "etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified")}
            meta.write_text(json.dumps(info))
        else:
            raise _Retry(f"unexpected HTTP status {status}", network=False)
        _check_size(None if length is None else offset + length, max_bytes, "the server says it is")
        _check_space(part, length, url)
        decrypt = None
        if source.mega is not None:
            from lsd_jax.store.mega import decryptor

            decrypt = decryptor(source.mega, offset)
        got = offset
        sink = _Sink(part, mode)
        try:
            with _bar(total, offset, part, progress) as bar:
                while True:
                    try:
                        # read1: whatever has arrived (up to CHUNK), so a stall loses no received byte
                        block = resp.read1(CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise _transient(e) from e
                    if not block:
                        break
                    got += len(block)
                    _check_size(got, max_bytes, "it sent at least")  # no Content-Length, or one that lies
                    sink.write(decrypt(block) if decrypt else block)
                    bar.update(len(block))
                    pace.update(got - offset, got, total)
        finally:
            sink.close()
        if total is not None and got != total:
            if got > total:
                raise _Restart()
            raise _Retry(f"connection closed after {got} of {total} bytes")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) from ``bytes START-END/TOTAL`` (TOTAL may be ``*``)."""
    if not value or not value.strip().lower().startswith("bytes "):
        return None, None
    try:
        rng, _, total = value.strip()[6:].partition("/")
        start = int(rng.split("-")[0])
        return start, (int(total) if total.strip().isdigit() else None)
    except ValueError:
        return None, None
