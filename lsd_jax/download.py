"""Robust, resumable, checksummed, lock-protected downloads (stdlib urllib only).

``download(url, dest)`` puts the bytes of ``url`` at ``dest`` and returns ``dest``:

* streamed to ``dest.name + ".part"`` with a tqdm progress bar, then renamed atomically, so ``dest``
  either does not exist or is complete;
* a partial ``.part`` left by a dropped connection (or an earlier, interrupted run) is resumed with an
  HTTP ``Range`` request; a server that ignores ``Range`` (answers 200) restarts the file from zero;
* ``sha256`` (when given) is checked before the rename; on a mismatch the file is deleted (nothing is
  cached, no ``.part`` is left) and :class:`~lsd_jax.errors.DownloadError` is raised;
* connection errors, time-outs, dropped connections and 5xx/408/429 answers are retried with
  exponential back-off (``backoff * 2**k`` seconds); 404/410 and other 4xx are not;
* a per-destination lock file (``fcntl.flock``; ``msvcrt`` on Windows) makes concurrent callers, in
  threads or processes, download the file once: the others wait, then find it done;
* ``file://`` URLs and plain local paths are copied through the same ``.part``/checksum/rename path.

Special hosts found in LSD's catalogue: ``drive.google.com/uc?id=…`` is rewritten to Google's direct
download endpoint (best effort: Drive may still answer with an HTML quota page, which the catalogue
rejects); ``yadi.sk``/``disk.yandex.*`` public links are resolved through Yandex's public API (as LSD
did); ``mega.nz`` files are encrypted client-side and cannot be fetched over plain HTTP, so a clear
error explains how to add the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from lsd_jax.errors import DownloadError

__all__ = ["download", "file_lock", "is_local", "local_path", "resolve_url", "sha256_file"]

CHUNK = 1 << 16
#: Yandex Disk public API that turns a public link into a direct download link (LSD used the same).
YANDEX_API = "https://cloud-api.yandex.net/v1/disk/public/resources/download?public_key="
#: Google Drive endpoint that serves a file directly (``confirm=t`` skips the "can't scan" page).
GDRIVE_DIRECT = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_MAX_SLEEP = 60.0


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        v = version("lsd-jax")
    except Exception:  # pragma: no cover - not installed
        v = "0"
    return f"lsd-jax/{v} (+python urllib)"


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


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def can_fetch(url: str) -> bool:
    """Whether :func:`download` can fetch ``url`` at all (False for mega.nz). No network."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return not (host in ("mega.nz", "mega.co.nz") or host.endswith(".mega.nz"))


def resolve_url(url: str, *, timeout: float = 30) -> str:
    """The URL to actually GET for ``url``: rewrites Google Drive links, resolves Yandex Disk public
    links (one small API request), refuses mega.nz with instructions. Other URLs pass unchanged."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if not can_fetch(url):
        raise DownloadError(
            f"{url} is a mega.nz link. mega.nz encrypts files in the browser, so lsd-jax cannot download "
            "them over plain HTTP. Download the file in a browser (or with the mega client), then register "
            "it: lsd_jax.catalogue.add_style(NAME, '/path/to/file.pkl', overwrite=True)."
        )
    if host in ("drive.google.com", "docs.google.com"):
        file_id = _gdrive_id(parts)
        if file_id:
            return GDRIVE_DIRECT.format(id=urllib.parse.quote(file_id, safe=""))
        return url
    if host == "yadi.sk" or host.startswith("disk.yandex."):
        return _resolve_yandex(url, timeout)
    return url


def _gdrive_id(parts: urllib.parse.SplitResult) -> str | None:
    q = urllib.parse.parse_qs(parts.query)
    if q.get("id"):
        return q["id"][0]
    segs = [s for s in parts.path.split("/") if s]
    if "d" in segs and segs.index("d") + 1 < len(segs):  # /file/d/<id>/view
        return segs[segs.index("d") + 1]
    return None


def _resolve_yandex(url: str, timeout: float) -> str:
    api = YANDEX_API + urllib.parse.quote(url, safe="")
    req = urllib.request.Request(api, headers={"User-Agent": _user_agent(), "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            href = json.loads(resp.read().decode("utf-8")).get("href")
    except urllib.error.HTTPError as e:
        raise DownloadError(f"Yandex Disk could not resolve {url} (HTTP {e.code}); the link may be dead.") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DownloadError(f"Could not resolve the Yandex Disk link {url}: {_reason(e)}") from e
    if not isinstance(href, str) or not href:
        raise DownloadError(f"Yandex Disk gave no download link for {url}.")
    return href


# ------------------------------------------------------------------------------------ download


class _Retry(Exception):
    """A transient failure: try again after a back-off (the .part is kept for resuming)."""

    def __init__(self, message: str, *, stalled: bool = False, network: bool = True):
        super().__init__(message)
        self.stalled = stalled
        self.network = network


class _Restart(Exception):
    """The .part cannot be resumed: drop it and start over at once (not counted as an attempt)."""


def _unwrap(e: BaseException) -> BaseException:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        if isinstance(e.reason, BaseException):
            return e.reason
    return e


def _is_timeout(e: BaseException) -> bool:
    return isinstance(_unwrap(e), (socket.timeout, TimeoutError))


def _transient(e: BaseException) -> "_Retry":
    return _Retry(_reason(e), stalled=_is_timeout(e))


def _reason(e: BaseException) -> str:
    e = _unwrap(e)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "no data received within the time-out (the server stalled)"
    if isinstance(e, http.client.IncompleteRead):
        return f"connection dropped after {len(e.partial)} bytes of this chunk"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30,
    retries: int = 4,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring) and return ``dest``.

    An existing ``dest`` is reused without any request (after a checksum check when ``sha256`` is
    given; a verified file is remembered in a small ``.sha256`` sidecar so it is hashed once).
    Raises :class:`~lsd_jax.errors.DownloadError`, naming the URL, when offline, on a dead link
    (404/410), on a stall (no data for ``timeout`` seconds, after the retries), on a checksum mismatch.
    """
    dest = Path(dest)
    url = os.fspath(url)
    if sha256 is not None:
        sha256 = _check_sha(sha256)
    if retries < 0:
        raise ValueError("retries must be >= 0")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _cached(dest, sha256, repair=False):  # fast path, no lock: never deletes anything
        return dest
    with file_lock(dest.with_name(dest.name + ".lock"), dest.name, progress):
        if _cached(dest, sha256, repair=True):  # another thread/process finished it while we waited
            return dest
        part = dest.with_name(dest.name + ".part")
        if is_local(url):
            _copy_local(local_path(url), part, progress)
        else:
            _fetch_http(url, part, progress=progress, timeout=timeout, retries=retries, backoff=backoff)
        _finish(url, part, dest, sha256)
    return dest


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


def _finish(url: str, part: Path, dest: Path, sha256: str | None) -> None:
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            _discard(part)
            raise DownloadError(
                f"Checksum mismatch for {url}: expected sha256 {sha256}, got {got}. The file was deleted "
                "(nothing was cached). The file on the server may have changed or be corrupt; if you trust "
                "it, update the catalogue's sha256."
            )
    os.replace(part, dest)
    with contextlib.suppress(FileNotFoundError):
        part.with_name(part.name + ".json").unlink()
    if sha256 is not None:
        _write_sidecar(dest, sha256)


def _copy_local(src: Path, part: Path, progress: bool) -> None:
    if not src.is_file():
        raise DownloadError(f"Cannot copy {src}: no such file.")
    total = src.stat().st_size
    with open(src, "rb") as fi, open(part, "wb") as fo, _bar(total, 0, part, progress) as bar:
        for block in iter(lambda: fi.read(1 << 20), b""):
            fo.write(block)
            bar.update(len(block))
        fo.flush()
        os.fsync(fo.fileno())


def _bar(total: int | None, initial: int, part: Path, progress: bool):
    name = part.name[: -len(".part")] if part.name.endswith(".part") else part.name
    return tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
        disable=not progress, leave=False, file=sys.stderr,
    )


def _fetch_http(url: str, part: Path, *, progress: bool, timeout: float, retries: int, backoff: float) -> None:
    real = resolve_url(url, timeout=timeout)
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
            _fetch_once(url, real, part, meta, progress=progress, timeout=timeout)
            return
        except _Restart:
            _discard(part)
            restarts += 1
            if restarts > 3:
                raise DownloadError(f"Could not download {url}: the server keeps answering range requests wrongly.")
        except _Retry as e:
            failures += 1
            if failures > retries:
                what = f"stalled (no data for {timeout:g} s)" if e.stalled else "failed"
                msg = f"Download of {url} {what} after {failures} attempt(s): {e}."
                if e.network:
                    msg += " Check your internet connection, or try again later."
                if part.exists() and part.stat().st_size:
                    msg += " The partial file is kept and will be resumed by the next try."
                raise DownloadError(msg) from (e.__cause__ or e)
            time.sleep(min(backoff * 2 ** (failures - 1), _MAX_SLEEP))


def _fetch_once(url: str, real: str, part: Path, meta: Path, *, progress: bool, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    validator = None
    if offset:
        headers["Range"] = f"bytes={offset}-"
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
        if e.code == 416 and offset:
            cr = (e.headers.get("Content-Range") or "").strip().lower()
            if cr.startswith("bytes */") and cr[8:].isdigit() and int(cr[8:]) == offset:
                return  # the .part already holds the whole file (an earlier run died before the rename)
            raise _Restart() from e
        if e.code in (404, 410):
            raise DownloadError(
                f"Dead link: {url} answered HTTP {e.code} ({e.reason}). The file is gone from that server; "
                "look for a mirror and register it with lsd_jax.catalogue.add_style(NAME, URL, overwrite=True)."
            ) from e
        if e.code in _RETRY_STATUS:
            raise _Retry(f"the server answered HTTP {e.code} {e.reason}", network=False) from e
        raise DownloadError(f"Download of {url} refused: HTTP {e.code} {e.reason}.") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, socket.gaierror):
            raise DownloadError(
                f"Cannot download {url}: the host name could not be resolved ({e.reason}). "
                "Are you offline? Check your internet connection (or use a local file)."
            ) from e
        raise _transient(e) from e
    except (OSError, http.client.HTTPException) as e:
        raise _transient(e) from e

    with resp:
        status = resp.status
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and status == 206:
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
        got = offset
        with open(part, mode) as f, _bar(total, offset, part, progress) as bar:
            try:
                while True:
                    # read1: whatever has arrived (up to CHUNK), so a stall loses no received byte
                    block = resp.read1(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:
                raise _transient(e) from e
            finally:
                f.flush()
                os.fsync(f.fileno())
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
