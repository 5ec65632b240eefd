"""mega.nz public file links: the link's key, the file's attributes, its stream cipher and its integrity check.

Pure functions (no network); :mod:`lsd_jax.store.hosts` does the exchange with MEGA's API. Facts, as MEGA's public
clients use them:

* a file link is ``https://mega.nz/file/<handle>#<key>`` or the older ``https://mega.nz/#!<handle>!<key>``; the
  key is 32 bytes in URL-safe base64 without padding, read as eight big-endian 32-bit words k0..k7;
* the AES-128 key is (k0^k4, k1^k5, k2^k6, k3^k7); the file is AES-CTR encrypted, its 16-byte counter block being
  k4 k5 (the nonce) followed by the 64-bit big-endian index of the 16-byte block, so a transfer can start at any
  offset; (k6, k7) is the file's condensed MAC;
* the attributes (``at`` in the API's answer) are AES-CBC (zero IV) over ``MEGA{...json...}`` padded with NULs;
  ``n`` is the file name;
* integrity: the plaintext is cut into chunks of 128 KiB, 256 KiB, ... growing by 128 KiB up to 1 MiB, then 1 MiB
  each; each chunk's CBC-MAC (AES-CBC with IV k4 k5 k4 k5 over the chunk, its last block padded with zeros) is
  chained in a second CBC-MAC with a zero IV, and that 16-byte result's words (m0^m1, m2^m3) must equal (k6, k7);
* anti-abuse: the API may answer HTTP 402 with an ``X-Hashcash: 1:<easiness>:<time>:<token>`` challenge; the
  answer is a 4-byte prefix such that SHA-256(prefix || token repeated 262144 times) starts with a big-endian
  32-bit number <= ((easiness & 63) * 2 + 1) << ((easiness >> 6) * 7 + 3), sent back as ``1:<token>:<prefix>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MegaLink", "chunk_bounds", "condensed_mac", "decrypt_attributes", "decryptor", "hashcash", "parse_link"]

_HANDLE = r"[A-Za-z0-9_-]{8}"
_KEY = r"[A-Za-z0-9_,-]{43,44}"
_NEW = re.compile(rf"^/file/(?P<h>{_HANDLE})/?$")
_OLD = re.compile(rf"^!(?P<h>{_HANDLE})!(?P<k>{_KEY})$")
HOSTS = ("mega.nz", "mega.co.nz", "www.mega.nz", "www.mega.co.nz")
_FIRST_CHUNK = 128 << 10
_MAX_CHUNK = 1 << 20


def b64url_decode(text: str) -> bytes:
    """MEGA's URL-safe base64 without padding (a ``,`` some links carry is ignored)."""
    s = text.strip().replace(",", "")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class MegaLink:
    """A public file link: its handle and the 32-byte key from its fragment."""

    handle: str
    key: bytes  # 32 bytes: k0..k7

    @property
    def aes_key(self) -> bytes:
        """The AES-128 key: the two 16-byte halves of the link key XORed."""
        return bytes(a ^ b for a, b in zip(self.key[:16], self.key[16:], strict=True))

    @property
    def nonce(self) -> bytes:
        """k4 k5: the first half of the CTR counter block and of the chunk-MAC IV."""
        return self.key[16:24]

    @property
    def meta_mac(self) -> bytes:
        """k6 k7: the condensed MAC the whole file must have."""
        return self.key[24:32]


def parse_link(url: str) -> MegaLink | None:
    """The handle and key of a mega.nz public FILE link, or None (not mega.nz, a folder link, no or a bad key)."""
    parts = urllib.parse.urlsplit(str(url).strip())
    if (parts.hostname or "").lower() not in HOSTS:
        return None
    m = _OLD.match(parts.fragment)
    if m:
        handle, key = m["h"], m["k"]
    else:
        m = _NEW.match(parts.path)
        if not m or not re.fullmatch(_KEY, parts.fragment):
            return None
        handle, key = m["h"], parts.fragment
    try:
        raw = b64url_decode(key)
    except ValueError:
        return None
    return MegaLink(handle, raw) if len(raw) == 32 else None


def _aes(key: bytes):
    from cryptography.hazmat.primitives.ciphers import algorithms

    return algorithms.AES(key)


def decrypt_attributes(at: str, link: MegaLink) -> dict | None:
    """The file's attributes (``{"n": name, ...}``) from the API's ``at``; None when the link's key does not fit."""
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    try:
        data = b64url_decode(at)
    except ValueError:
        return None
    if not data or len(data) % 16:
        return None
    d = Cipher(_aes(link.aes_key), modes.CBC(bytes(16))).decryptor()
    plain = (d.update(data) + d.finalize()).rstrip(b"\0")
    if not plain.startswith(b'MEGA{"'):
        return None
    try:
        attrs = json.loads(plain[4:].decode("utf-8"))
    except ValueError:
        return None
    return attrs if isinstance(attrs, dict) else None


def decryptor(link: MegaLink, offset: int) -> Callable[[bytes], bytes]:
    """A stateful function that decrypts the file's bytes from ``offset`` on, fed in order (any block sizes)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    counter = link.nonce + (offset // 16).to_bytes(8, "big")
    d = Cipher(_aes(link.aes_key), modes.CTR(counter)).decryptor()
    d.update(bytes(offset % 16))  # into the middle of a block: drop that block's first keystream bytes
    return d.update


def chunk_bounds(size: int) -> Iterator[tuple[int, int]]:
    """(start, length) of each MAC chunk of a ``size``-byte file: 128 KiB, 256 KiB, ... 1 MiB, then 1 MiB each."""
    start, length = 0, _FIRST_CHUNK
    while start + length < size:
        yield start, length
        start += length
        length = min(length + _FIRST_CHUNK, _MAX_CHUNK)
    yield start, size - start


def condensed_mac(path: Path, link: MegaLink) -> bytes:
    """The 8-byte condensed MAC of the (decrypted) file at ``path``, to compare with ``link.meta_mac``."""
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    aes = _aes(link.aes_key)
    iv = link.nonce * 2
    chain = Cipher(aes, modes.CBC(bytes(16))).encryptor()
    last = bytes(16)
    size = path.stat().st_size
    with open(path, "rb") as f:
        for _, length in chunk_bounds(size):
            chunk = f.read(length)
            if len(chunk) != length:
                raise OSError(f"{path} changed while its MAC was computed")
            chunk += bytes(-len(chunk) % 16)
            # A CBC encryption's last block is the chunk's CBC-MAC.
            mac = Cipher(aes, modes.CBC(iv)).encryptor().update(chunk)[-16:] if chunk else iv
            last = chain.update(mac)
    w = [int.from_bytes(last[i : i + 4], "big") for i in range(0, 16, 4)]
    return (w[0] ^ w[1]).to_bytes(4, "big") + (w[2] ^ w[3]).to_bytes(4, "big")


#: The most SHA-256 passes over 12 MiB (about 25 ms each) a challenge may need on average; harder ones are refused
#: rather than keeping a download busy for minutes (MEGA's usual easiness, 192, needs 256).
MAX_EXPECTED_TRIES = 2048


def hashcash(challenge: str) -> str:
    """The ``X-Hashcash`` answer to a version-1 challenge (see the module docstring). ValueError if malformed or
    too hard (more than :data:`MAX_EXPECTED_TRIES` expected)."""
    parts = challenge.strip().split(":")
    if len(parts) < 4 or parts[0] != "1" or not parts[1].isdigit() or int(parts[1]) > 255:
        raise ValueError(f"unsupported hashcash challenge {challenge[:80]!r}")
    easiness, token_text = int(parts[1]), parts[3]
    token = b64url_decode(token_text)
    if len(token) != 48:
        raise ValueError(f"hashcash token of {len(token)} bytes (expected 48)")
    threshold = (((easiness & 63) << 1) + 1) << ((easiness >> 6) * 7 + 3)
    expected = (1 << 32) // (threshold + 1) + 1
    if expected > MAX_EXPECTED_TRIES:
        raise ValueError(f"hashcash challenge too hard (easiness {easiness}: about {expected} tries)")
    body = token * 262144
    for n in range(8 * expected):
        prefix = n.to_bytes(4, "little")
        h = hashlib.sha256(prefix)
        h.update(body)
        if int.from_bytes(h.digest()[:4], "big") <= threshold:
            return f"1:{token_text}:{b64url_encode(prefix)}"
    raise ValueError("hashcash challenge not solved")
