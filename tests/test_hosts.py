"""lsd_jax.store.hosts through lsd_jax.store.download: mega.nz, Google Drive and Yandex Disk exchanges emulated on
127.0.0.1
(tests/file_hosts.py), with the same cache, resume, checksum and error behaviour as plain downloads."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from lsd_jax.errors import DownloadError
from lsd_jax.store import download as dl
from lsd_jax.store import hosts

try:
    from file_hosts import FakeDrive, FakeMega
    from http_server import FileServer
except ImportError:  # tests/ collected as a package
    from tests.file_hosts import FakeDrive, FakeMega
    from tests.http_server import FileServer

pytestmark = pytest.mark.timeout(60)
FAST = dict(progress=False, timeout=2, retries=2, backoff=0.01)


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


@pytest.fixture
def data() -> bytes:
    # More than two MAC chunks (128 KiB + 256 KiB + a rest), a size that is not a multiple of 16.
    return os.urandom((128 << 10) + (256 << 10) + 12345)


@pytest.fixture
def fake_mega(server, monkeypatch):
    m = FakeMega(server)
    monkeypatch.setenv(hosts.MEGA_API_ENV, m.api)
    return m


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if not p.name.endswith(".lock"))


# ------------------------------------------------------------------------------------ can_fetch


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://example.org/m.pkl", True),
        ("https://mega.nz/file/AbCd-_12#" + "A" * 43, True),
        ("https://mega.nz/#!AbCd-_12!" + "A" * 43, True),
        ("https://mega.nz/folder/AbCd-_12#" + "A" * 22, False),
        ("https://mega.nz/#!abc!def", False),
        ("https://drive.google.com/uc?id=1BUL-RIzXC7Bpnz2cn230CbA4eT7_Etp0", True),
        ("https://drive.google.com/file/d/ABC_def-1/view?usp=sharing", True),
        ("https://drive.google.com/drive/folders/", False),
        ("https://yadi.sk/d/uwq4vaYPkqNuvQ?ncrnd=436", True),
        ("ftp://example.org/m.pkl", False),
        ("/some/local/file.pkl", True),
    ],
)
def test_can_fetch(url, ok):
    assert dl.can_fetch(url) is ok


def test_an_unsupported_link_fails_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(dl.urllib.request, "urlopen", lambda *a, **k: pytest.fail("network used"))
    url = "https://mega.nz/folder/AbCd-_12#" + "A" * 22
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", **FAST)
    assert url in str(ei.value) and "folder" in str(ei.value) and ei.value.unavailable == "unsupported"


# ------------------------------------------------------------------------------------ mega.nz


@pytest.mark.parametrize("old_style", [False, True])
def test_mega_download_decrypts_and_verifies(server, fake_mega, tmp_path, data, old_style):
    link = fake_mega.add(data, old_style=old_style)
    dest = tmp_path / "styles" / "m.pkl"
    assert dl.download(link, dest, sha256=hashlib.sha256(data).hexdigest(), **FAST) == dest
    assert dest.read_bytes() == data
    handle = fake_mega.last_handle
    (call,) = fake_mega.calls
    assert call == {"a": "g", "g": 1, "ssl": 2, "p": handle}
    (get,) = server.requests_for(f"/dl/{handle}/0-{len(data) - 1}")
    assert get.range is None  # mega.nz: the range is in the path
    assert leftovers(dest.parent) == ["m.pkl", "m.pkl.sha256"]
    dl.download(link, dest, **FAST)  # cached: no more requests
    assert len(fake_mega.calls) == 1


def test_mega_wrong_mac_is_refused_and_nothing_cached(server, fake_mega, tmp_path, data):
    link = fake_mega.add(data, corrupt=True)
    dest = tmp_path / "m.pkl"
    with pytest.raises(DownloadError, match="integrity check") as ei:
        dl.download(link, dest, **FAST)
    assert "MAC" in ei.value.reason
    assert leftovers(tmp_path) == []


def test_mega_dropped_connection_resumes_at_the_offset(server, fake_mega, tmp_path, data):
    link = fake_mega.add(data, drop_after=150_001)  # not a multiple of 16: resumes inside a CTR block
    dest = tmp_path / "m.pkl"
    dl.download(link, dest, **FAST)
    assert dest.read_bytes() == data
    handle = fake_mega.calls[0]["p"]
    paths = [r.path for r in server.requests if r.path.startswith("/dl/")]
    assert paths == [f"/dl/{handle}/0-{len(data) - 1}", f"/dl/{handle}/150001-{len(data) - 1}"]
    assert len(fake_mega.calls) == 2  # each attempt asks the API afresh (its URLs expire)


def test_mega_partial_from_an_earlier_run_is_resumed(server, fake_mega, tmp_path, data):
    link = fake_mega.add(data, drop_after=200_000)
    dest = tmp_path / "m.pkl"
    with pytest.raises(DownloadError, match="partial file is kept"):
        dl.download(link, dest, **{**FAST, "retries": 0})
    assert (tmp_path / "m.pkl.part").stat().st_size == 200_000
    dl.download(link, dest, **FAST)
    assert dest.read_bytes() == data
    handle = fake_mega.calls[0]["p"]
    assert server.count(f"/dl/{handle}/200000-{len(data) - 1}") == 1


@pytest.mark.parametrize(
    "code, kind, words", [(-9, "dead", "does not exist"), (-16, "dead", "taken down"), (-17, "quota", "quota")]
)
def test_mega_api_errors_are_clear_and_fast(server, fake_mega, tmp_path, data, code, kind, words):
    link = fake_mega.add(data)
    fake_mega.errors[fake_mega.last_handle] = code
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=words) as ei:
        dl.download(link, tmp_path / "m.pkl", **FAST)
    # not retried (the call count); the time bound is generous, for a loaded machine: an API error is not a stall
    # that waits out the 2 s time-out
    assert time.monotonic() - t0 < 10.0 and len(fake_mega.calls) == 1
    assert ei.value.unavailable == kind and link in str(ei.value)
    assert leftovers(tmp_path) == []


def test_mega_congestion_is_retried(server, fake_mega, tmp_path, data):
    link = fake_mega.add(data)
    handle = fake_mega.last_handle
    fake_mega.errors[handle] = -3
    with pytest.raises(DownloadError, match="congested"):
        dl.download(link, tmp_path / "m.pkl", **FAST)
    assert len(fake_mega.calls) == 3  # 1 + 2 retries
    del fake_mega.errors[handle]
    assert dl.download(link, tmp_path / "m.pkl", **FAST).read_bytes() == data


def test_mega_over_transfer_quota_509(server, fake_mega, tmp_path, data):
    link = fake_mega.add(data, status=509)
    with pytest.raises(DownloadError, match="quota") as ei:
        dl.download(link, tmp_path / "m.pkl", **FAST)
    assert ei.value.unavailable == "quota"


def test_mega_expired_download_url_asks_the_api_again(server, fake_mega, tmp_path, data):
    link = fake_mega.add(data, status=404, status_times=1)  # the storage URL answers 404 once
    assert dl.download(link, tmp_path / "m.pkl", **FAST).read_bytes() == data
    assert len(fake_mega.calls) == 2


def test_mega_hashcash_challenge_is_answered(server, fake_mega, tmp_path, data):
    fake_mega.challenge = "1:255:1700000000:" + "A" * 64
    link = fake_mega.add(data)
    assert dl.download(link, tmp_path / "m.pkl", **FAST).read_bytes() == data
    api = server.requests_for("/api/cs", method="POST")
    assert len(api) == 2 and "x-hashcash" not in api[0].headers and api[1].headers["x-hashcash"].startswith("1:AAAA")


def test_mega_link_with_a_wrong_key(server, fake_mega, tmp_path, data):
    link = fake_mega.add(data)
    head, key = link.split("#")
    bad = head + "#" + ("B" if key[0] != "B" else "C") + key[1:]
    with pytest.raises(DownloadError, match="key") as ei:
        dl.download(bad, tmp_path / "m.pkl", **FAST)
    assert ei.value.unavailable == "dead"


# ------------------------------------------------------------------------------------ Google Drive


@pytest.mark.parametrize("mode", ["direct", "form", "cookie"])
def test_drive_confirm_flows(server, tmp_path, data, monkeypatch, mode):
    drive = FakeDrive(server, data, mode=mode)
    monkeypatch.setenv(hosts.GDRIVE_ENV, drive.base)
    dest = tmp_path / "m.pkl"
    assert dl.download(drive.link, dest, **FAST).read_bytes() == data
    gets = server.requests_for("/download")
    assert all("id=FILE_id-1" in r.query for r in gets)
    if mode == "form":
        assert f"uuid={drive.uuid}" in gets[-1].query and "confirm=t" in gets[-1].query
    if mode == "cookie":
        assert f"confirm={drive.token}" in gets[-1].query and drive.token in gets[-1].headers["cookie"]


def test_drive_file_link_form_and_resume(server, tmp_path, data, monkeypatch):
    # Requests to /download: the warning page, a probe of the confirmed URL (headers only), the transfer: the
    # last two drop after 100 kB, then the retry resumes with a Range.
    drive = FakeDrive(server, data, mode="form", drop_after=100_000, drop_times=3)
    monkeypatch.setenv(hosts.GDRIVE_ENV, drive.base)
    dest = tmp_path / "m.pkl"
    dl.download("https://drive.google.com/file/d/FILE_id-1/view?usp=sharing", dest, **FAST)
    assert dest.read_bytes() == data
    ranged = [r.range for r in server.requests_for("/download") if r.range]
    assert ranged == ["bytes=100000-"]


@pytest.mark.parametrize("mode, kind, words", [("quota", "quota", "Too many users"), ("signin", "dead", "sign in")])
def test_drive_refusals_are_clear_and_nothing_cached(server, tmp_path, data, monkeypatch, mode, kind, words):
    drive = FakeDrive(server, data, mode=mode)
    monkeypatch.setenv(hosts.GDRIVE_ENV, drive.base)
    with pytest.raises(DownloadError, match=words) as ei:
        dl.download(drive.link, tmp_path / "m.pkl", **FAST)
    assert ei.value.unavailable == kind
    assert leftovers(tmp_path) == []
    assert server.count("/download") == 1  # not retried


def test_drive_unknown_file_is_a_dead_link(server, tmp_path, data, monkeypatch):
    drive = FakeDrive(server, data, mode="form")
    monkeypatch.setenv(hosts.GDRIVE_ENV, drive.base)
    with pytest.raises(DownloadError, match="Dead link") as ei:
        dl.download("https://drive.google.com/uc?id=missing", tmp_path / "m.pkl", **FAST)
    assert ei.value.unavailable == "dead"


# ------------------------------------------------------------------------------------ Yandex Disk


def test_yandex_links_are_resolved_through_the_api(server, tmp_path, data, monkeypatch):
    file_url = server.add("/real.pkl", data)
    server.add("/yandex-api", json.dumps({"href": file_url}).encode(), content_type="application/json")
    monkeypatch.setenv(hosts.YANDEX_API_ENV, server.url("/yandex-api"))
    dest = tmp_path / "doors.pkl"
    dl.download("https://yadi.sk/d/uwq4vaYPkqNuvQ?ncrnd=436", dest, **FAST)
    assert dest.read_bytes() == data
    (api,) = server.requests_for("/yandex-api")
    assert "yadi.sk" in api.query


@pytest.mark.parametrize("how", ["form action", "downloadUrl"])
def test_drive_confirm_page_linking_to_a_local_file_is_refused(server, tmp_path, monkeypatch, how):
    """Issue 29: a confirm page whose link is file:///... used to be followed (urllib opens local files), failing
    only as 'unexpected HTTP status None'. It is refused by name, and the local file is never read."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"server-side secret")
    link = secret.as_uri()
    body = (
        f'<form id="download-form" action="{link}" method="get"><input type="hidden" name="confirm" value="t"></form>'
        if how == "form action"
        else f'<script>var x = {{"downloadUrl":"{link}"}};</script>'
    )
    page = f"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>{body}</body>"
    server.add("/download", b"", respond=lambda req: (200, {"Content-Type": "text/html"}, page.encode()))
    monkeypatch.setenv(hosts.GDRIVE_ENV, server.url(""))
    dest = tmp_path / "out" / "m.pkl"
    with pytest.raises(DownloadError, match="file: URL") as ei:
        dl.download("https://drive.google.com/uc?id=FILE", dest, progress=False, timeout=2, retries=1, backoff=0.01)
    assert "status None" not in str(ei.value)
    assert not dest.exists() and server.count("/download") == 1  # not retried
