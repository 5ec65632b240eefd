"""lsd_jax.store.mega: link parsing, the CTR stream at any offset, the chunked MAC and hashcash, each checked against
the
block-by-block versions in tests/file_hosts.py."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsd_jax.store import mega

try:
    from file_hosts import b64, check_hashcash, mega_ctr, mega_mac
except ImportError:  # tests/ collected as a package
    from tests.file_hosts import b64, check_hashcash, mega_ctr, mega_mac

KEY32 = bytes(range(32))


def test_parse_link_new_and_old_forms():
    k = b64(KEY32)
    for url in (
        f"https://mega.nz/file/AbCd-_12#{k}",
        f"https://mega.nz/#!AbCd-_12!{k}",
        f"https://mega.co.nz/#!AbCd-_12!{k}",
        f"https://MEGA.nz/file/AbCd-_12/#{k}",
    ):
        link = mega.parse_link(url)
        assert link is not None, url
        assert link.handle == "AbCd-_12" and link.key == KEY32
    link = mega.parse_link(f"https://mega.nz/file/AbCd-_12#{k}")
    assert link.aes_key == bytes(a ^ b for a, b in zip(KEY32[:16], KEY32[16:], strict=True))
    assert link.nonce == KEY32[16:24] and link.meta_mac == KEY32[24:]


@pytest.mark.parametrize(
    "url",
    [
        "https://mega.nz/folder/AbCd-_12#" + "A" * 22,  # a folder
        "https://mega.nz/#F!AbCd-_12!" + "A" * 22,  # an old folder link
        "https://mega.nz/file/AbCd-_12",  # no key
        "https://mega.nz/#!abc!def",  # too short
        "https://mega.nz/file/AbCd-_12#" + b64(bytes(16)),  # a 16-byte (folder-style) key
        "https://example.org/#!AbCd-_12!" + b64(KEY32),  # another host
    ],
)
def test_parse_link_refuses_what_is_not_a_file_link(url):
    assert mega.parse_link(url) is None


def test_chunk_bounds_grow_to_one_mib():
    kib = 1024
    b = list(mega.chunk_bounds(20 << 20))
    assert [n for _, n in b[:9]] == [128 * kib * i for i in range(1, 9)] + [1 << 20]
    assert all(n == 1 << 20 for _, n in b[8:-1])
    starts = [s for s, _ in b]
    assert starts == sorted(starts) and sum(n for _, n in b) == 20 << 20
    assert all(s + n == s2 for (s, n), (s2, _) in zip(b, b[1:], strict=False))
    assert list(mega.chunk_bounds(5)) == [(0, 5)]
    assert list(mega.chunk_bounds(128 * kib)) == [(0, 128 * kib)]
    assert list(mega.chunk_bounds(128 * kib + 1)) == [(0, 128 * kib), (128 * kib, 1)]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 700), st.lists(st.integers(1, 70), min_size=1, max_size=8))
def test_decryptor_starts_anywhere_and_takes_any_block_sizes(offset, sizes):
    link = mega.MegaLink("AbCd-_12", os.urandom(32))
    plain = os.urandom(800)
    cipher = mega_ctr(plain, link.aes_key, link.nonce)
    dec = mega.decryptor(link, offset)
    out, pos = b"", offset
    for n in sizes:
        out += dec(cipher[pos : pos + n])
        pos += n
    assert out == plain[offset:pos]


@pytest.mark.parametrize("size", [1, 16, 100, (128 << 10) + (256 << 10) + 5000])
def test_condensed_mac_matches_block_by_block(tmp_path, size):
    data = os.urandom(size)
    link = mega.MegaLink("AbCd-_12", os.urandom(32))
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    assert mega.condensed_mac(f, link) == mega_mac(data, link.aes_key, link.nonce)
    flipped = bytearray(data)
    flipped[-1] ^= 1
    f.write_bytes(bytes(flipped))
    assert mega.condensed_mac(f, link) != mega_mac(data, link.aes_key, link.nonce)


def test_decrypt_attributes():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    link = mega.MegaLink("AbCd-_12", os.urandom(32))
    plain = b'MEGA{"n":"abstract photos.pkl","c":"x"}'
    plain += bytes(-len(plain) % 16)
    enc = Cipher(algorithms.AES(link.aes_key), modes.CBC(bytes(16))).encryptor()
    at = b64(enc.update(plain) + enc.finalize())
    assert mega.decrypt_attributes(at, link) == {"n": "abstract photos.pkl", "c": "x"}
    assert mega.decrypt_attributes(at, mega.MegaLink("AbCd-_12", os.urandom(32))) is None  # another key
    assert mega.decrypt_attributes("!!", link) is None


def test_hashcash_answers_a_challenge():
    token = b64(os.urandom(48))
    challenge = f"1:255:1700000000:{token}"  # the easiest: about one try in two succeeds
    answer = mega.hashcash(challenge)
    assert answer.startswith(f"1:{token}:") and check_hashcash(challenge, answer)
    for bad in (
        "2:255:0:" + token,
        "1:x:0:" + token,
        "1:255:0:" + b64(os.urandom(12)),
        "nonsense",
        "1:0:0:" + token,
        "1:999:0:" + token,
    ):  # 1:0 would need ~2**29 tries: refused, not attempted
        with pytest.raises(ValueError):
            mega.hashcash(bad)
