"""Emulations of mega.nz's and Google Drive's download exchanges on a :class:`FileServer` (127.0.0.1), with the
encryption, MAC and hashcash written here independently of lsd_jax.store.mega (block by block, as the facts read).

    mega = FakeMega(server)                  # POST /api/cs, files at /dl/<handle>[/START-END]
    link = mega.add(data)                    # a https://mega.nz/file/<handle>#<key> link to ``data``
    monkeypatch.setenv(hosts.MEGA_API_ENV, mega.api)

    drive = FakeDrive(server, data, mode="form")   # /download?id=...: warning page, then the file
    monkeypatch.setenv(hosts.GDRIVE_ENV, drive.base)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import urllib.parse

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:
    from http_server import FileServer, Request
except ImportError:  # tests/ collected as a package
    from tests.http_server import FileServer, Request

__all__ = ["FakeDrive", "FakeMega", "b64", "check_hashcash", "mega_ctr", "mega_mac"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def mega_ctr(data: bytes, key: bytes, nonce: bytes, offset: int = 0) -> bytes:
    """AES-CTR by hand: keystream block i is AES-ECB(nonce (8 bytes) || i (8 bytes, big-endian)), from ``offset``."""
    first, last = offset // 16, (offset + len(data) + 15) // 16
    counters = b"".join(nonce + i.to_bytes(8, "big") for i in range(first, last))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = ecb.update(counters)[offset % 16 : offset % 16 + len(data)]
    return _xor(data, stream)


def mega_mac(data: bytes, key: bytes, nonce: bytes) -> bytes:
    """The 8-byte condensed MAC: per chunk (128 KiB growing by 128 KiB to 1 MiB) a CBC-MAC from nonce||nonce over
    zero-padded 16-byte blocks, the chunk MACs chained from zero, then (w0^w1, w2^w3)."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    macs, pos, step = [], 0, 128 << 10
    while True:
        end = min(pos + step, len(data))
        mac = nonce + nonce
        for i in range(pos, end, 16):
            mac = ecb.update(_xor(mac, data[i : i + 16].ljust(16, b"\0")))
        macs.append(mac)
        if end >= len(data):
            break
        pos = end
        step = min(step + (128 << 10), 1 << 20)
    acc = bytes(16)
    for mac in macs:
        acc = ecb.update(_xor(acc, mac))
    w = [int.from_bytes(acc[i : i + 4], "big") for i in range(0, 16, 4)]
    return (w[0] ^ w[1]).to_bytes(4, "big") + (w[2] ^ w[3]).to_bytes(4, "big")


def check_hashcash(challenge: str, answer: str) -> bool:
    """Is ``answer`` a valid X-Hashcash answer to ``challenge`` ("1:easiness:time:token")?"""
    _, easiness, _, token = challenge.split(":")
    version, token_back, prefix = answer.split(":")
    raw = base64.urlsafe_b64decode(prefix + "=" * (-len(prefix) % 4))
    if version != "1" or token_back != token or len(raw) != 4:
        return False
    e = int(easiness)
    threshold = (((e & 63) << 1) + 1) << ((e >> 6) * 7 + 3)
    tok = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    digest = hashlib.sha256(raw + tok * 262144).digest()
    return int.from_bytes(digest[:4], "big") <= threshold


class FakeMega:
    """MEGA's API (``POST /api/cs``: ``[{"a": "g", "g": 1, "p": handle}]``) and its storage (``/dl/<handle>`` with
    ranges in the path). ``errors[handle] = code`` answers that error code; ``challenge`` (a hashcash challenge)
    is demanded (HTTP 402) until a request carries a valid answer."""

    def __init__(self, server: FileServer):
        self.server = server
        self.files: dict[str, tuple[int, str]] = {}  # handle -> (size, at)
        self.errors: dict[str, int] = {}
        self.challenge: str | None = None
        self.calls: list[dict] = []
        self.last_handle = ""
        server.add("/api/cs", b"", respond=self._api)

    @property
    def api(self) -> str:
        return self.server.url("/api")

    def add(
        self, data: bytes, *, name: str = "model.pkl", corrupt: bool = False, old_style: bool = False, **behaviour
    ) -> str:
        """Encrypt ``data`` as MEGA would and return its public link. ``corrupt``: the stored ciphertext has one byte
        changed (so the MAC check must fail); ``behaviour``: FileServer options for the file (drop_after, ...)."""
        handle = b64(os.urandom(6))
        key, nonce = os.urandom(16), os.urandom(8)
        meta = mega_mac(data, key, nonce)
        link_key = _xor(key, nonce + meta) + nonce + meta
        blob = bytearray(mega_ctr(data, key, nonce))
        if corrupt:
            blob[len(blob) // 2] ^= 0x01
        attrs = b"MEGA" + json.dumps({"n": name}).encode()
        attrs += bytes(-len(attrs) % 16)
        enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
        at = b64(enc.update(attrs) + enc.finalize())
        self.files[handle] = (len(data), at)
        self.last_handle = handle
        self.server.add(f"/dl/{handle}", bytes(blob), path_ranges=True, **behaviour)
        if old_style:
            return f"https://mega.nz/#!{handle}!{b64(link_key)}"
        return f"https://mega.nz/file/{handle}#{b64(link_key)}"

    def _api(self, req: Request):
        if self.challenge:
            answer = req.headers.get("x-hashcash")
            if not answer or not check_hashcash(self.challenge, answer):
                return 402, {"X-Hashcash": self.challenge, "Content-Type": "text/plain"}, b"-27"
        cmds = json.loads(req.body)
        self.calls.append(cmds[0])
        handle = cmds[0].get("p")
        if handle in self.errors:
            return 200, {"Content-Type": "application/json"}, json.dumps([self.errors[handle]]).encode()
        if cmds[0].get("a") != "g" or handle not in self.files:
            return 200, {"Content-Type": "application/json"}, b"[-9]"
        size, at = self.files[handle]
        out = [{"s": size, "at": at, "msd": 1, "g": self.server.url(f"/dl/{handle}")}]
        return 200, {"Content-Type": "application/json"}, json.dumps(out).encode()


class FakeDrive:
    """Google Drive's ``/download?id=ID&export=download`` for one file. ``mode``: "direct" (the file at once),
    "form" (the virus-scan warning page, a form with confirm/uuid), "cookie" (a ``download_warning`` cookie whose
    value must come back as ``confirm``), "quota" (the too-many-users page), "signin" (a sign-in page)."""

    def __init__(self, server: FileServer, data: bytes, *, mode: str = "form", file_id: str = "FILE_id-1", **behaviour):
        self.server, self.mode, self.file_id = server, mode, file_id
        self.uuid = secrets.token_hex(8)
        self.token = secrets.token_hex(4)
        server.add(
            "/download",
            data,
            respond=self._answer,
            headers={"Content-Disposition": 'attachment; filename="model.pkl"'},
            **behaviour,
        )

    @property
    def base(self) -> str:
        return self.server.url("")

    @property
    def link(self) -> str:
        return f"https://drive.google.com/uc?id={self.file_id}"

    def _page(self, body: str, headers: dict | None = None):
        doc = (
            "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>"
            f"<body>{body}</body></html>"
        )
        return 200, {"Content-Type": "text/html; charset=utf-8", **(headers or {})}, doc.encode()

    def _answer(self, req: Request):
        q = dict(urllib.parse.parse_qsl(req.query))
        if q.get("id") != self.file_id:
            return 404, {"Content-Type": "text/html"}, b"<html><title>Not Found</title></html>"
        if self.mode == "quota":
            return self._page(
                '<p class="uc-error-caption">Sorry, you can\'t view or download this file at this time.'
                '</p><p class="uc-error-subcaption">Too many users have viewed or downloaded this file '
                "recently. Please try accessing the file again later.</p>"
            )
        if self.mode == "signin":
            return (
                200,
                {"Content-Type": "text/html"},
                (
                    b"<html><head><title>Google Drive: Sign-in</title></head>"
                    b"<body><form action='/ServiceLogin'></form></body></html>"
                ),
            )
        if self.mode == "direct":
            return None
        if self.mode == "form":
            if q.get("confirm") == "t" and q.get("uuid") == self.uuid:
                return None
            return self._page(
                "<p>Google Drive can't scan this file for viruses.</p>"
                '<form id="download-form" action="/download" method="get">'
                '<input type="submit" id="uc-download-link" value="Download anyway"/>'
                f'<input type="hidden" name="id" value="{self.file_id}">'
                '<input type="hidden" name="export" value="download">'
                '<input type="hidden" name="confirm" value="t">'
                f'<input type="hidden" name="uuid" value="{self.uuid}"></form>'
            )
        if self.mode == "cookie":
            cookie = req.headers.get("cookie", "")
            if q.get("confirm") == self.token and f"download_warning_1_{self.file_id}={self.token}" in cookie:
                return None
            return self._page(
                "<p>This file is too large to scan.</p>",
                {"Set-Cookie": f"download_warning_1_{self.file_id}={self.token}; Path=/"},
            )
        raise AssertionError(self.mode)
