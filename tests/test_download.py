"""lsd_jax.store.download against a local misbehaving HTTP server (127.0.0.1 only, no internet)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lsd_jax.errors import DownloadError
from lsd_jax.store import download as dl

try:
    from http_server import FileServer
except ImportError:  # tests/ collected as a package
    from tests.http_server import FileServer

pytestmark = pytest.mark.timeout(60)

# Fast settings for every test: short time-out, tiny back-off.
FAST = dict(progress=False, timeout=2, retries=2, backoff=0.01)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.suffix in (".part", ".json", ".tmp") or ".part" in p.name)


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


@pytest.fixture
def data() -> bytes:
    return os.urandom(300_000)


def test_clean_download(server, tmp_path, data):
    url = server.add("/m.pkl", data)
    dest = tmp_path / "styles" / "m.pkl"
    got = dl.download(url, dest, sha256=sha(data), **FAST)
    assert got == dest and dest.read_bytes() == data
    assert server.count("/m.pkl") == 1
    assert server.requests_for("/m.pkl")[0].range is None
    assert leftovers(dest.parent) == []


def test_progress_bar_does_not_break(server, tmp_path, data, capsys):
    url = server.add("/m.pkl", data)
    dl.download(url, tmp_path / "m.pkl", progress=True, timeout=2, retries=0)
    assert (tmp_path / "m.pkl").read_bytes() == data


def test_dropped_connection_is_resumed_with_range(server, tmp_path, data):
    url = server.add("/m.pkl", data, drop_after=100_000, drop_times=1)
    dest = tmp_path / "m.pkl"
    dl.download(url, dest, sha256=sha(data), **FAST)
    assert dest.read_bytes() == data  # byte-identical
    reqs = server.requests_for("/m.pkl")
    assert len(reqs) == 2
    assert reqs[0].range is None
    assert reqs[1].range == "bytes=100000-"  # only the missing tail was asked for
    assert leftovers(tmp_path) == []


def test_dropped_twice_resumes_twice(server, tmp_path, data):
    url = server.add("/m.pkl", data, drop_after=70_000, drop_times=2)
    dest = tmp_path / "m.pkl"
    dl.download(url, dest, **FAST)
    assert dest.read_bytes() == data
    assert [r.range for r in server.requests_for("/m.pkl")] == [None, "bytes=70000-", "bytes=140000-"]


def test_partial_left_by_an_earlier_run_is_resumed(server, tmp_path, data):
    url = server.add("/m.pkl", data, drop_after=50_000, drop_times=1)
    dest = tmp_path / "m.pkl"
    with pytest.raises(DownloadError):
        dl.download(url, dest, progress=False, timeout=2, retries=0)  # gives up after the drop
    assert not dest.exists()
    assert (tmp_path / "m.pkl.part").stat().st_size == 50_000
    dl.download(url, dest, sha256=sha(data), **FAST)  # a later call picks up where it stopped
    assert dest.read_bytes() == data
    assert server.requests_for("/m.pkl")[-1].range == "bytes=50000-"


def test_complete_part_is_not_downloaded_again(server, tmp_path, data):
    url = server.add("/m.pkl", data)
    dest = tmp_path / "m.pkl"
    (tmp_path / "m.pkl.part").write_bytes(data)  # a run that died between the last byte and the rename
    (tmp_path / "m.pkl.part.json").write_text(json.dumps({"url": url}))
    dl.download(url, dest, sha256=sha(data), **FAST)
    assert dest.read_bytes() == data
    reqs = server.requests_for("/m.pkl")
    assert [r.range for r in reqs] == [f"bytes={len(data)}-"]  # answered 416, nothing re-sent


def test_server_ignoring_range_restarts_from_zero(server, tmp_path, data):
    url = server.add("/m.pkl", data, drop_after=120_000, drop_times=1, ignore_range=True)
    dest = tmp_path / "m.pkl"
    dl.download(url, dest, sha256=sha(data), **FAST)
    assert dest.read_bytes() == data  # not the first 120k twice
    reqs = server.requests_for("/m.pkl")
    assert len(reqs) == 2 and reqs[1].range == "bytes=120000-"


def test_partial_from_another_url_is_not_spliced(server, tmp_path, data):
    other = os.urandom(len(data))
    url_a = server.add("/a.pkl", other, drop_after=100_000, drop_times=1)
    url_b = server.add("/b.pkl", data)
    dest = tmp_path / "m.pkl"
    with pytest.raises(DownloadError):
        dl.download(url_a, dest, progress=False, timeout=2, retries=0)
    dl.download(url_b, dest, **FAST)
    assert dest.read_bytes() == data
    assert server.requests_for("/b.pkl")[0].range is None


def test_checksum_mismatch_rejects_and_leaves_nothing(server, tmp_path, data):
    url = server.add("/m.pkl", data)
    dest = tmp_path / "m.pkl"
    with pytest.raises(DownloadError) as ei:
        dl.download(url, dest, sha256="0" * 64, **FAST)
    msg = str(ei.value)
    assert url in msg and "0" * 64 in msg and sha(data) in msg
    assert not dest.exists()
    assert leftovers(tmp_path) == []  # no poisoned .part for the next try
    # A later try with the right checksum downloads everything afresh and succeeds.
    dl.download(url, dest, sha256=sha(data), **FAST)
    assert dest.read_bytes() == data
    assert server.requests_for("/m.pkl")[-1].range is None


def test_bad_sha256_argument_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        dl.download("http://127.0.0.1:9/x", tmp_path / "x", sha256="abc", **FAST)


@pytest.mark.parametrize("status", [404, 410])
def test_dead_link_is_a_clear_error_and_not_retried(server, tmp_path, status):
    url = server.add("/gone.pkl", b"", status=status)
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "gone.pkl", **FAST)
    msg = str(ei.value)
    assert url in msg and str(status) in msg and "Dead link" in msg
    assert server.count("/gone.pkl") == 1
    assert not (tmp_path / "gone.pkl").exists()


def test_5xx_is_retried_then_succeeds(server, tmp_path, data):
    url = server.add("/m.pkl", data, status=503, status_times=2)
    dest = tmp_path / "m.pkl"
    dl.download(url, dest, **FAST)
    assert dest.read_bytes() == data
    assert server.count("/m.pkl") == 3


def test_persistent_5xx_gives_up_with_the_url(server, tmp_path):
    url = server.add("/m.pkl", b"x", status=500)
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", **FAST)
    assert url in str(ei.value) and "500" in str(ei.value)
    assert server.count("/m.pkl") == 1 + FAST["retries"]


def test_backoff_is_exponential(server, tmp_path, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(dl.time, "sleep", lambda s: sleeps.append(s))
    url = server.add("/m.pkl", b"x", status=502)
    with pytest.raises(DownloadError):
        dl.download(url, tmp_path / "m.pkl", progress=False, timeout=2, retries=4, backoff=0.5)
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_stall_times_out_with_a_clear_error(server, tmp_path, data):
    url = server.add("/m.pkl", data, stall=30, stall_after=10_000)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", progress=False, timeout=0.5, retries=1, backoff=0.01)
    elapsed = time.monotonic() - t0
    msg = str(ei.value)
    assert url in msg and "stalled" in msg
    assert elapsed < 20  # generous (a loaded machine): the server stalls 30 s, which a time-out that did not fire waits
    assert server.count("/m.pkl") == 2
    assert not (tmp_path / "m.pkl").exists()


def test_stall_before_any_byte_times_out(server, tmp_path):
    url = server.add("/m.pkl", b"abc" * 1000, stall=30, stall_after=0)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", progress=False, timeout=0.5, retries=0)
    # generous (a loaded machine): the server stalls 30 s, which a time-out that did not fire waits out
    assert "stalled" in str(ei.value) and time.monotonic() - t0 < 20


def test_one_stall_then_resume(server, tmp_path, data):
    url = server.add("/m.pkl", data, stall=30, stall_after=150_000, stall_times=1)
    dest = tmp_path / "m.pkl"
    dl.download(url, dest, progress=False, timeout=0.5, retries=2, backoff=0.01)
    assert dest.read_bytes() == data
    assert server.requests_for("/m.pkl")[1].range == "bytes=150000-"


def test_offline_connection_refused(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/m.pkl"
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", progress=False, timeout=1, retries=1, backoff=0.01)
    assert url in str(ei.value) and "internet" in str(ei.value)


def test_offline_dns_failure_is_not_retried(tmp_path, monkeypatch):
    import socket
    import urllib.error

    calls = []

    def no_dns(*a, **k):
        calls.append(a)
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(dl.urllib.request, "urlopen", no_dns)
    url = "https://example.invalid/model.pkl"
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", **FAST)
    assert url in str(ei.value) and "offline" in str(ei.value)
    assert len(calls) == 1


def test_cache_is_reused_without_any_request(server, tmp_path, data):
    url = server.add("/m.pkl", data)
    dest = tmp_path / "m.pkl"
    dl.download(url, dest, sha256=sha(data), **FAST)
    dl.download(url, dest, sha256=sha(data), **FAST)
    dl.download(url, dest, **FAST)
    assert server.count("/m.pkl", method=None) == 1


def test_corrupt_cached_file_is_replaced(server, tmp_path, data):
    url = server.add("/m.pkl", data)
    dest = tmp_path / "m.pkl"
    dest.write_bytes(b"garbage")
    dl.download(url, dest, sha256=sha(data), **FAST)
    assert dest.read_bytes() == data and server.count("/m.pkl") == 1


def test_concurrent_threads_download_once(server, tmp_path, data):
    url = server.add("/m.pkl", data, chunk=8192, chunk_delay=0.005)  # ~0.2 s of body
    dest = tmp_path / "m.pkl"
    n = 4
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = dl.download(url, dest, sha256=sha(data), **FAST)
        except BaseException as e:  # pragma: no cover - reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [dest] * n
    assert dest.read_bytes() == data
    assert server.count("/m.pkl") == 1  # exactly one GET of the body
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_concurrent_process_and_thread_download_once(server, tmp_path, data):
    url = server.add("/m.pkl", data, chunk=8192, chunk_delay=0.01)  # ~0.4 s of body
    dest = tmp_path / "m.pkl"
    ready, go = tmp_path / "ready", tmp_path / "go"
    code = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from lsd_jax.store.download import download
        Path({str(ready)!r}).touch()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.002)
        download({url!r}, Path({str(dest)!r}), sha256={sha(data)!r}, progress=False, timeout=5, retries=2, backoff=0.01)
        print("ok")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():  # the child has imported everything and is polling for "go"
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "child never got ready"
            time.sleep(0.01)
        go.touch()
        time.sleep(0.02)  # let the child grab the lock first, half of the time at least
        dl.download(url, dest, sha256=sha(data), progress=False, timeout=5, retries=2, backoff=0.01)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "ok"
    assert dest.read_bytes() == data
    assert server.count("/m.pkl") == 1  # one body GET across two processes


def test_file_url_and_local_path(tmp_path, data):
    src = tmp_path / "src.pkl"
    src.write_bytes(data)
    a = dl.download(src.as_uri(), tmp_path / "out" / "a.pkl", sha256=sha(data), progress=False)
    b = dl.download(str(src), tmp_path / "out" / "b.pkl", progress=False)
    assert a.read_bytes() == data and b.read_bytes() == data
    with pytest.raises(DownloadError):
        dl.download(str(tmp_path / "missing.pkl"), tmp_path / "out" / "c.pkl", progress=False)
    with pytest.raises(DownloadError):
        dl.download(src.as_uri(), tmp_path / "out" / "d.pkl", sha256="1" * 64, progress=False)
    assert not (tmp_path / "out" / "d.pkl").exists()


def test_is_local_and_local_path(tmp_path):
    assert dl.is_local("/abs/x.pkl") and dl.is_local("rel/x.pkl") and dl.is_local("file:///x.pkl")
    assert dl.is_local(tmp_path) and dl.is_local("C:\\models\\x.pkl")
    assert not dl.is_local("https://h/x.pkl") and not dl.is_local("http://h/x.pkl")
    assert dl.local_path((tmp_path / "a b.pkl").as_uri()) == tmp_path / "a b.pkl"


# ------------------------------------------------------------------------------------ issue 18: slow servers,
# web pages instead of files, full disks


@pytest.mark.slow
def test_one_byte_every_five_seconds_ends_with_a_clear_error(server, tmp_path, data):
    """The issue's server: 1 byte every 5 s never trips the socket time-out; the minimum rate ends it."""
    url = server.add("/m.pkl", data, chunk=1, chunk_delay=5.0)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", progress=False, timeout=30, retries=0, min_rate=1024, rate_window=4)
    msg = str(ei.value)
    assert url in msg and "too slow" in msg and "minimum is 1024 bytes/s" in msg
    assert time.monotonic() - t0 < 25  # generous: without the minimum rate the 30 s socket time-out never trips
    assert not (tmp_path / "m.pkl").exists()


@pytest.mark.slow
@pytest.mark.parametrize("chunk,delay", [(1, 0.2), (50, 0.5)])
def test_trickles_below_the_minimum_rate_are_retried_then_refused(server, tmp_path, data, chunk, delay):
    url = server.add("/m.pkl", data, chunk=chunk, chunk_delay=delay)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="too slow") as ei:
        dl.download(
            url, tmp_path / "m.pkl", progress=False, timeout=5, retries=1, backoff=0.01, min_rate=1000, rate_window=1.0
        )
    # generous (a loaded machine): the trickles would take minutes to deliver the 300 kB
    assert time.monotonic() - t0 < 30 and server.count("/m.pkl") == 2
    assert "partial file is kept" in str(ei.value)  # resumable, like any network failure
    assert (tmp_path / "m.pkl.part").exists()


def test_overall_deadline_then_resume(server, tmp_path, data):
    """Fast enough for the minimum rate, too slow for the deadline: a clear error, the .part kept, and the next
    try resumes where it stopped."""
    url = server.add("/m.pkl", data, chunk=20_000, chunk_delay=0.2)
    dest = tmp_path / "m.pkl"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="did not finish within 0.7 s") as ei:
        dl.download(url, dest, progress=False, timeout=5, retries=3, min_rate=100, rate_window=0.5, deadline=0.7)
    # generous (a loaded machine): the whole file would take 3 s at this pace, its retries more
    assert time.monotonic() - t0 < 10 and "will be resumed" in str(ei.value)
    kept = (tmp_path / "m.pkl.part").stat().st_size
    assert 0 < kept < len(data)
    server.files["/m.pkl"].chunk_delay = 0.0
    dl.download(url, dest, progress=False, timeout=5)
    assert dest.read_bytes() == data
    assert server.requests_for("/m.pkl")[-1].range == f"bytes={kept}-"


PAGES = {
    "html": b"<!DOCTYPE html><html><head><title>Quota exceeded</title></head><body>Too many users</body></html>",
    "html with BOM": b"\xef\xbb\xbf<html><body>sign in</body></html>",
    "leading comment": b"<!-- served by nginx -->\n<!-- twice -->\n<HTML><title>Error 403</title></HTML>",
    "whitespace": b"\n\r\n   \t<!doctype HTML>\n<html></html>",
    "utf-16": "\ufeff<html><title>x</title></html>".encode("utf-16-le"),
    "unclosed comment": b"<!-- " + b"x" * 5000,
    "bare tag": b"<div class='err'>Not allowed</div>",
    "xml": b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
    "json": b'{"error": {"code": 403, "message": "The download quota for this file has been exceeded."}}',
    "json list": b'  [{"message": "Not Found"}]\n',
    "5 KB of spaces first": b" " * 5000 + b"<html><head><title>Quota exceeded</title></head></html>",  # issue 29
    "100 KB of blank lines first": b"\r\n" * 50_000 + b'{"error": "quota"}',
    "only whitespace": b" \n" * 4000,
}


@pytest.mark.parametrize("name", list(PAGES))
def test_a_web_page_or_json_error_is_never_cached(server, tmp_path, name):
    url = server.add("/model.pkl", PAGES[name], content_type="text/html")
    dest = tmp_path / "model.pkl"
    with pytest.raises(DownloadError) as ei:
        dl.download(url, dest, **FAST)
    msg = str(ei.value)
    assert msg.startswith("127.0.0.1 sent ") and url in msg and "Nothing was cached" in msg
    assert any(k in msg for k in ("HTML page", "XML document", "JSON document", "web page", "blank page"))
    if name in ("html", "5 KB of spaces first"):
        assert "'Quota exceeded'" in msg
    if name == "json":
        assert "download quota" in msg  # the body's own explanation is shown
    assert not dest.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "body",
    [
        b"\x80\x04\x95" + os.urandom(2000),  # pickle protocol 4
        b"(dp0\nS'G_ema'\np1\n" + b"x" * 500,  # protocol-0 pickles are text, but never start like a page
        b"PK\x03\x04" + os.urandom(500),  # zip / npz / torch zip
        (123).to_bytes(8, "little") + b'{"__metadata__": {}}' + b" " * 103,  # safetensors: '{' after a binary length
        b"{" + bytes(7) + b'{"a": 1}',  # ... even when that length's low byte is '{'
    ],
)
def test_binary_model_files_are_not_mistaken_for_pages(server, tmp_path, body):
    url = server.add("/m.bin", body)
    assert dl.download(url, tmp_path / "m.bin", **FAST).read_bytes() == body
    assert dl.sniff_page(body[:4096]) is None


def test_binary_false_accepts_text(server, tmp_path):
    url = server.add("/doc.json", PAGES["json"])
    assert dl.download(url, tmp_path / "doc.json", binary=False, **FAST).read_bytes() == PAGES["json"]


def test_larger_than_the_free_disk_fails_before_writing(server, tmp_path, data, monkeypatch):
    """Content-Length against the free space: a disk-space message, nothing written, never 'internet'."""
    import shutil

    claim = shutil.disk_usage(tmp_path).free + (1 << 30)  # one GB more than this disk has
    url = server.add("/big.pkl", data, claim_length=claim)
    with pytest.raises(DownloadError) as ei:  # (no max_bytes: a claim this big would be refused as too large)
        dl.download(url, tmp_path / "big.pkl", max_bytes=None, **FAST)
    msg = str(ei.value)
    assert "Not enough disk space" in msg and f"{claim / (1 << 30):.1f} GB" in msg and "internet" not in msg
    assert not (tmp_path / "big.pkl.part").exists() or (tmp_path / "big.pkl.part").stat().st_size == 0
    url2 = server.add("/m.pkl", data)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1 << 30, 1 << 30, 1 << 20))
    with pytest.raises(DownloadError, match="Not enough disk space"):
        dl.download(url2, tmp_path / "m.pkl", **FAST)


@pytest.mark.parametrize("after", [0, 70_000])
def test_disk_filling_up_while_writing_is_a_disk_error(server, tmp_path, data, monkeypatch, after):
    """ENOSPC mid-download: a disk-space message (not 'check your internet connection'), not retried, and the
    partial file removed (it is what filled the disk)."""
    import errno

    url = server.add("/m.pkl", data)
    written = {"n": 0}
    real_write = dl._Sink.write

    def full(self, block):
        if written["n"] + len(block) > after:
            raise dl._disk_error(OSError(errno.ENOSPC, "No space left on device"), self.part)
        written["n"] += len(block)
        real_write(self, block)

    monkeypatch.setattr(dl._Sink, "write", full)
    with pytest.raises(DownloadError) as ei:
        dl.download(url, tmp_path / "m.pkl", **FAST)
    msg = str(ei.value)
    assert "Not enough disk space" in msg and "No space left on device" in msg and "internet" not in msg
    assert "partial file was removed" in msg and leftovers(tmp_path) == []
    assert server.count("/m.pkl") == 1  # not retried


# ----------------------------------------------------------------------------------------------------------------
# A download may not fill the disk (issue 29)


@pytest.mark.parametrize("how", ["no Content-Length", "an honest Content-Length"])
def test_a_download_is_capped_at_max_bytes(server, tmp_path, data, how):
    """A server sending no length used to be written until the disk was full: now what arrives is counted against
    ``max_bytes``; an announced size over it is refused before anything is written."""
    behaviour = {"no Content-Length": {"send_length": False}, "an honest Content-Length": {}}[how]
    url = server.add("/m.pkl", data, **behaviour)
    dest = tmp_path / "m.pkl"
    with pytest.raises(DownloadError, match="too large") as ei:
        dl.download(url, dest, max_bytes=100_000, **FAST)
    assert url in str(ei.value) and "Nothing was cached" in str(ei.value)
    assert not dest.exists() and leftovers(tmp_path) == []
    assert server.count("/m.pkl") == 1  # refused for good, not retried
    if how == "no Content-Length":  # under the limit, a length-less answer is fine
        assert dl.download(url, dest, max_bytes=len(data), **FAST).read_bytes() == data


def test_a_local_file_over_max_bytes_is_refused(tmp_path, data):
    src = tmp_path / "big.pkl"
    src.write_bytes(data)
    with pytest.raises(DownloadError, match="too large"):
        dl.download(src, tmp_path / "out" / "big.pkl", max_bytes=1000, progress=False)
    assert not (tmp_path / "out" / "big.pkl").exists()


def test_the_default_cap_is_what_a_model_file_may_have():
    from converters.limits import Limits

    assert Limits().max_file_bytes == dl.MAX_BYTES
