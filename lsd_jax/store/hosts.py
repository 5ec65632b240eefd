"""File hosts: what to GET for a link to Google Drive, Yandex Disk or mega.nz (Lucid Sonic Dreams' hosts).

:func:`resolve` turns a link into a :class:`Source` (the URL to GET, headers to send, and for mega.nz the key that
decrypts and verifies the stream); :mod:`lsd_jax.store.download` does the transfer. Each host's base URL can be pointed
elsewhere (tests use 127.0.0.1) with an environment variable read at call time:

* Google Drive (``LSD_JAX_GDRIVE_URL``, default ``https://drive.usercontent.google.com``): ``GET /download?id=ID&
  export=download`` answers the file, or, for a file too large to be virus-scanned, an HTML warning page whose
  ``download-form`` (action + hidden ``id``/``export``/``confirm``/``uuid`` inputs) or ``/uc?export=download&confirm=
  ...`` link, or a ``download_warning*`` cookie, gives the confirmed URL; a page with an ``uc-error-subcaption`` (too
  many downloads: the quota) or a sign-in page means the file cannot be had now.
* Yandex Disk (``LSD_JAX_YANDEX_API``, default ``https://cloud-api.yandex.net/v1/disk/public/resources/download``):
  ``GET ?public_key=LINK`` answers ``{"href": URL}``.
* mega.nz (``LSD_JAX_MEGA_API``, default ``https://g.api.mega.co.nz``): ``POST /cs?id=N`` with
  ``[{"a": "g", "g": 1, "ssl": 2, "p": HANDLE}]`` answers ``[{"g": URL, "s": size, "at": attributes}]`` or a
  negative error code; the file is fetched from ``URL/START-END`` and decrypted with the link's key
  (:mod:`lsd_jax.store.mega`).

Errors: :class:`~lsd_jax.errors.DownloadError` when trying again soon will not help (``unavailable`` says why:
"dead", "quota" or "unsupported"), :class:`Transient` for hiccups the caller retries.
"""

from __future__ import annotations

import html
import http.client
import http.cookiejar
import json
import os
import random
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import DownloadError
from . import mega

__all__ = [
    "GDRIVE_ENV",
    "MEGA_API_ENV",
    "YANDEX_API_ENV",
    "Source",
    "Transient",
    "reason",
    "resolve",
    "unsupported",
    "user_agent",
]

GDRIVE_ENV = "LSD_JAX_GDRIVE_URL"
GDRIVE_DEFAULT = "https://drive.usercontent.google.com"
YANDEX_API_ENV = "LSD_JAX_YANDEX_API"
YANDEX_DEFAULT = "https://cloud-api.yandex.net/v1/disk/public/resources/download"
MEGA_API_ENV = "LSD_JAX_MEGA_API"
MEGA_DEFAULT = "https://g.api.mega.co.nz"
_MAX_PAGE = 2 << 20  # bytes of a host's HTML/JSON answer read at most
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
#: MEGA API error codes (negative integers) and what they mean for a download.
_MEGA_ERRORS = {
    -2: ("EARGS", "the link is malformed", "dead"),
    -3: ("EAGAIN", "the API is congested", None),
    -4: ("ERATELIMIT", "too many requests", None),
    -9: ("ENOENT", "the file does not exist (deleted, or a wrong link)", "dead"),
    -11: ("EACCESS", "access to the file is denied", "dead"),
    -16: ("EBLOCKED", "the file was taken down", "dead"),
    -17: ("EOVERQUOTA", "the transfer quota is used up", "quota"),
    -18: ("ETEMPUNAVAIL", "the file is temporarily unavailable", None),
    -19: ("ETOOMANYCONNECTIONS", "too many connections to the file", None),
}


class Transient(Exception):
    """A host hiccup (network error, 5xx, congestion): the download retries after a back-off."""

    def __init__(self, message: str, *, stalled: bool = False):
        super().__init__(message)
        self.stalled = stalled


@dataclass(frozen=True)
class Source:
    """What to GET for a link. ``mega``: the stream is encrypted with this link's key; it is fetched from
    ``url/START-END`` (no Range header) and verified with its MAC once complete."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None
    name: str | None = None
    mega: mega.MegaLink | None = None

    def ranged_url(self, offset: int) -> str:
        """mega.nz's way of asking for bytes ``offset..size-1``."""
        assert self.mega is not None and self.size is not None
        return f"{self.url}/{offset}-{self.size - 1}"


def user_agent() -> str:
    try:
        from importlib.metadata import version

        v = version("lsd-jax")
    except Exception:  # pragma: no cover - not installed
        v = "0"
    return f"lsd-jax/{v} (+python urllib)"


def _unwrap(e: BaseException) -> BaseException:
    if (
        isinstance(e, urllib.error.URLError)
        and not isinstance(e, urllib.error.HTTPError)
        and isinstance(e.reason, BaseException)
    ):
        return e.reason
    return e


def is_timeout(e: BaseException) -> bool:
    return isinstance(_unwrap(e), (socket.timeout, TimeoutError))


def reason(e: BaseException) -> str:
    """A short description of a network exception."""
    e = _unwrap(e)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "no data received within the time-out (the server stalled)"
    if isinstance(e, http.client.IncompleteRead):
        return f"connection dropped after {len(e.partial)} bytes of this chunk"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def offline_error(url: str, e: BaseException) -> DownloadError:
    return DownloadError(
        f"Cannot download {url}: the host name could not be resolved ({_unwrap(e)}). Are you offline? "
        "Check your internet connection (or use a local file).",
        reason="the host name could not be resolved (offline?)",
    )


def _host(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


def _is_gdrive(host: str) -> bool:
    return host in ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


def _is_yandex(host: str) -> bool:
    return host == "yadi.sk" or host.startswith("disk.yandex.")


def unsupported(url: str) -> str | None:
    """Why ``url`` cannot be downloaded at all (None: it can be tried). No network."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https"):
        return f"{parts.scheme or 'this'}: URLs are not supported (only http and https)"
    if host in mega.HOSTS:
        if mega.parse_link(url) is None:
            return "only mega.nz public file links with their key (…#KEY) can be downloaded, not folders"
        return None
    if _is_gdrive(host) and not _gdrive_id(parts):
        return "only Google Drive file links (…?id=ID or /file/d/ID) can be downloaded, not folders"
    return None


def resolve(url: str, *, timeout: float = 30) -> Source:
    """The :class:`Source` for ``url`` (one or two small requests for Drive, Yandex and mega.nz links)."""
    why = unsupported(url)
    if why:
        raise DownloadError(f"Cannot download {url}: {why}.", reason=why, unavailable="unsupported")
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in mega.HOSTS:
        return _resolve_mega(url, timeout)
    if _is_gdrive(host):
        return _resolve_gdrive(url, _gdrive_id(parts) or "", timeout)
    if _is_yandex(host):
        return _resolve_yandex(url, timeout)
    return Source(url)


def _base(env: str, default: str) -> str:
    return (os.environ.get(env) or default).rstrip("/")


def _request_error(url: str, e: BaseException, what: str) -> Exception:
    """A host API request's failure as DownloadError (lasting) or Transient (retry)."""
    if isinstance(e, urllib.error.HTTPError):
        e.close()
        if e.code in (404, 410):
            return DownloadError(
                f"Dead link: {what} answered HTTP {e.code} ({e.reason}) for {url}; the file is gone.",
                reason=f"dead link (HTTP {e.code})",
                unavailable="dead",
            )
        if e.code in _RETRY_STATUS:
            return Transient(f"{what} answered HTTP {e.code} {e.reason}")
        if e.code == 509:
            return DownloadError(
                f"{what} refused {url}: HTTP 509, the host's transfer quota is used up.",
                reason="over the host's transfer quota (HTTP 509)",
                unavailable="quota",
            )
        return DownloadError(
            f"{what} refused {url}: HTTP {e.code} {e.reason}.",
            reason=f"HTTP {e.code} {e.reason}",
            unavailable="dead" if e.code in (401, 403) else None,
        )
    if isinstance(e, urllib.error.URLError) and isinstance(e.reason, socket.gaierror):
        return offline_error(url, e)
    return Transient(f"{what}: {reason(e)}", stalled=is_timeout(e))


def _read_text(resp, limit: int = _MAX_PAGE) -> str:
    data = resp.read(limit + 1)
    if len(data) > limit:
        raise DownloadError(f"{resp.geturl()} sent more than {limit} bytes where a short answer was expected.")
    charset = resp.headers.get_content_charset() or "utf-8"
    return data.decode(charset, "replace")


# ------------------------------------------------------------------------------------ Yandex Disk


def _resolve_yandex(url: str, timeout: float) -> Source:
    api = _base(YANDEX_API_ENV, YANDEX_DEFAULT) + "?public_key=" + urllib.parse.quote(url, safe="")
    req = urllib.request.Request(api, headers={"User-Agent": user_agent(), "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            href = json.loads(_read_text(resp)).get("href")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise _request_error(url, e, "Yandex Disk") from e
    except (ValueError, AttributeError) as e:
        raise DownloadError(f"Yandex Disk sent an unreadable answer for {url}.", reason="unreadable answer") from e
    if not isinstance(href, str) or not href.startswith(("http://", "https://")):
        raise DownloadError(
            f"Yandex Disk gave no download link for {url}.", reason="no download link", unavailable="dead"
        )
    return Source(href)


# ------------------------------------------------------------------------------------ Google Drive


def _gdrive_id(parts: urllib.parse.SplitResult) -> str | None:
    q = urllib.parse.parse_qs(parts.query)
    if q.get("id"):
        return q["id"][0]
    segs = [s for s in parts.path.split("/") if s]
    if "d" in segs and segs.index("d") + 1 < len(segs):  # /file/d/<id>/view
        return segs[segs.index("d") + 1]
    return None


_FORM = re.compile(r"<form\b[^>]*\bid=[\"']download-form[\"'][^>]*>(.*?)</form>", re.IGNORECASE | re.DOTALL)
_ACTION = re.compile(r"\baction=[\"']([^\"']+)[\"']", re.IGNORECASE)
_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"\b(type|name|value)=[\"']([^\"']*)[\"']", re.IGNORECASE)
_HREF = re.compile(r"href=[\"'](/uc\?export=download[^\"']+)[\"']", re.IGNORECASE)
_DOWNLOAD_URL = re.compile(r'"downloadUrl":"([^"]+)"')
_ERROR = re.compile(r"class=[\"']uc-error-subcaption[\"'][^>]*>(.*?)</", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _confirm_url(page: str, page_url: str, jar: http.cookiejar.CookieJar, file_url: str) -> str:
    """The confirmed download URL on Drive's warning page; DownloadError for a quota or sign-in page."""
    form = _FORM.search(page)
    if form:
        action = _ACTION.search(form.group(0))
        target = urllib.parse.urljoin(page_url, html.unescape(action.group(1)) if action else page_url)
        fields: dict[str, str] = {}
        for tag in _INPUT.findall(form.group(1)):
            attrs = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(tag)}
            if attrs.get("type", "").lower() == "hidden" and attrs.get("name"):
                fields[attrs["name"]] = attrs.get("value", "")
        parts = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query.update(fields)
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    m = _HREF.search(page)
    if m:
        return urllib.parse.urljoin(page_url, html.unescape(m.group(1)))
    m = _DOWNLOAD_URL.search(page)
    if m:
        return m.group(1).replace("\\u003d", "=").replace("\\u0026", "&")
    token = next((c.value for c in jar if c.name.startswith("download_warning") and c.value), None)
    if token:
        parts = urllib.parse.urlsplit(page_url)
        query = dict(urllib.parse.parse_qsl(parts.query), confirm=token)
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    m = _ERROR.search(page)
    if m:
        text = " ".join(html.unescape(_TAGS.sub(" ", m.group(1))).split())[:300]
        quota = "too many users" in text.lower() or "quota" in text.lower()
        raise DownloadError(
            f"Google Drive refuses {file_url} now: {text}",
            reason="over Google Drive's download quota" if quota else f"Google Drive: {text}",
            unavailable="quota" if quota else "dead",
        )
    if "accounts.google.com" in page_url or "ServiceLogin" in page:
        raise DownloadError(
            f"Google Drive asks to sign in for {file_url}: the file is not shared publicly.",
            reason="Google Drive asks to sign in (not shared publicly)",
            unavailable="dead",
        )
    title = re.search(r"<title[^>]*>([^<]{1,120})", page, re.IGNORECASE)
    what = f" ({' '.join(title.group(1).split())!r})" if title else ""
    raise DownloadError(
        f"Google Drive sent a page{what} without a download link for {file_url}.",
        reason=f"Google Drive sent a page{what} without a download link",
        unavailable="dead",
    )


def _resolve_gdrive(url: str, file_id: str, timeout: float) -> Source:
    target = f"{_base(GDRIVE_ENV, GDRIVE_DEFAULT)}/download?" + urllib.parse.urlencode(
        {"id": file_id, "export": "download"}
    )
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    for _ in range(3):
        req = urllib.request.Request(target, headers={"User-Agent": user_agent(), "Accept-Encoding": "identity"})
        try:
            resp = opener.open(req, timeout=timeout)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise _request_error(url, e, "Google Drive") from e
        with resp:
            final = resp.geturl()
            if resp.headers.get_content_type() != "text/html" or resp.headers.get("Content-Disposition"):
                # The file itself: the transfer GETs it again (with a Range when resuming); only headers were read.
                probe = urllib.request.Request(final)
                jar.add_cookie_header(probe)
                cookie = probe.get_header("Cookie")
                return Source(final, headers={"Cookie": cookie} if cookie else {})
            try:
                page = _read_text(resp)
            except (OSError, http.client.HTTPException) as e:
                raise Transient(f"Google Drive: {reason(e)}", stalled=is_timeout(e)) from e
        target = _confirm_url(page, final, jar, url)
        scheme = urllib.parse.urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):  # a page may link anywhere: file:///etc/..., ftp://...
            raise DownloadError(
                f"Google Drive's confirmation page for {url} links to a {scheme or 'relative'}: URL, "
                "not to the file; refused.",
                reason=f"Google Drive linked to a {scheme}: URL",
                unavailable="dead",
            )
    raise DownloadError(
        f"Google Drive kept answering {url} with a warning page instead of the file.",
        reason="Google Drive kept sending a warning page",
        unavailable="dead",
    )


# ------------------------------------------------------------------------------------ mega.nz


def _mega_call(url: str, payload: list, timeout: float) -> object:
    """One MEGA API request (answering a hashcash challenge when asked); the decoded JSON answer."""
    api = f"{_base(MEGA_API_ENV, MEGA_DEFAULT)}/cs?id={random.randrange(1 << 30)}"
    body = json.dumps(payload).encode()
    headers = {"User-Agent": user_agent(), "Content-Type": "application/json"}
    for _ in range(3):
        req = urllib.request.Request(api, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = _read_text(resp)
        except urllib.error.HTTPError as e:
            challenge = e.headers.get("X-Hashcash") if e.code == 402 else None
            e.close()
            if not challenge:
                raise _request_error(url, e, "mega.nz's API") from e
            try:
                headers["X-Hashcash"] = mega.hashcash(challenge)
            except ValueError as err:
                raise DownloadError(
                    f"mega.nz's API asked for a proof of work lsd-jax cannot give ({err}).",
                    reason="mega.nz asked for an unsupported proof of work",
                ) from None
            continue
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise _request_error(url, e, "mega.nz's API") from e
        try:
            return json.loads(text)
        except ValueError as e:
            raise Transient(f"mega.nz's API sent an unreadable answer ({text[:80]!r})") from e
    raise DownloadError(
        "mega.nz's API kept asking for a proof of work.", reason="mega.nz kept asking for a proof of work"
    )


def _mega_error(url: str, code: int) -> Exception:
    name, meaning, lasting = _MEGA_ERRORS.get(code, (str(code), "an error", None))
    if lasting is None and code in _MEGA_ERRORS:
        return Transient(f"mega.nz: {meaning} ({name})")
    return DownloadError(
        f"mega.nz cannot give {url}: {meaning} ({name}).", reason=f"mega.nz: {meaning} ({name})", unavailable=lasting
    )


def _resolve_mega(url: str, timeout: float) -> Source:
    link = mega.parse_link(url)
    assert link is not None  # unsupported() checked it
    answer = _mega_call(url, [{"a": "g", "g": 1, "ssl": 2, "p": link.handle}], timeout)
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if isinstance(answer, int):
        raise _mega_error(url, answer)
    if not isinstance(answer, dict):
        raise Transient(f"mega.nz's API sent an unexpected answer ({str(answer)[:80]!r})")
    if isinstance(answer.get("e"), int) and answer["e"] < 0:
        raise _mega_error(url, answer["e"])
    g, size, at = answer.get("g"), answer.get("s"), answer.get("at")
    if not isinstance(g, str) or not g.startswith(("http://", "https://")) or type(size) is not int or size <= 0:
        raise DownloadError(
            f"mega.nz gives no download for {url} (the file is not accessible now).",
            reason="mega.nz: the file is not accessible",
            unavailable="dead",
        )
    attrs = mega.decrypt_attributes(at, link) if isinstance(at, str) else None
    if attrs is None:
        raise DownloadError(
            f"The key in {url} does not open the file (is the link complete, with the part after #?).",
            reason="the link's key does not fit the file",
            unavailable="dead",
        )
    name = attrs.get("n") if isinstance(attrs.get("n"), str) else None
    return Source(g.rstrip("/"), size=size, name=name, mega=link)
