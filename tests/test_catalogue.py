"""lsd_jax.store.catalogue: the shipped data file, the user catalogue, show_styles, find_style, style_path."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import socket
import threading
import time
import urllib.request
from importlib import resources
from pathlib import Path

import pytest

from lsd_jax.errors import DownloadError, StyleError
from lsd_jax.store import catalogue as cat

try:
    from http_server import FileServer
except ImportError:  # tests/ collected as a package
    from tests.http_server import FileServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own cache dir, user catalogue and host probes (none probed: an app built earlier in this
    process may have probed the real hosts)."""
    from lsd_jax.store.reach import HostProbes

    monkeypatch.setenv("LSD_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(cat.USER_STYLES_ENV, str(tmp_path / "user_styles.json"))
    monkeypatch.setattr(cat, "PROBES", HostProbes())
    return tmp_path


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


@pytest.fixture
def model() -> bytes:
    """A small real pickle (what a model file looks like: starts with the pickle opcode 0x80)."""
    return pickle.dumps({"G_ema": list(range(20_000)), "tag": os.urandom(16)}, protocol=4)


def raw_catalogue() -> dict:
    return json.loads(resources.files("lsd_jax").joinpath("data/styles.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ data file


def test_catalogue_file_is_valid():
    doc = raw_catalogue()
    assert doc["schema"] == 1
    styles = doc["styles"]
    assert len(styles) >= 60
    names = [s["name"] for s in styles]
    assert len(names) == len(set(names)), "names must be unique"
    for s in styles:
        where = s.get("name")
        for key in ("name", "urls", "format", "resolution", "licence", "sha256", "conditional", "c_dim"):
            assert key in s, f"{where}: missing {key}"
        assert s["name"] == s["name"].lower() == " ".join(s["name"].split()), where
        assert s["urls"] and all(re.match(r"^https?://[^\s]+$", u) for u in s["urls"]), where
        assert s["format"] in cat.FORMATS or (s["format"] is None and s.get("unavailable")), where
        assert s["resolution"] is None or (
            type(s["resolution"]) is int and s["resolution"] & (s["resolution"] - 1) == 0
        )
        assert isinstance(s["licence"], str) and s["licence"], where
        assert s["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", s["sha256"]), where
        assert s["conditional"] in (True, False, None), where
        assert s["c_dim"] is None or type(s["c_dim"]) is int, where
        if s["conditional"] is False:
            assert s["c_dim"] == 0, where
        if s["c_dim"]:
            assert s["conditional"] is True, where


def test_catalogue_has_lsd_names_and_nvidia_releases():
    c = cat.load_catalogue()
    # LSD's catalogue (awesome-pretrained-stylegan2), names lower-cased as LSD does.
    for name in (
        "wikiart",
        "abstract art",
        "modern art",
        "imagenet",
        "maps",
        "cakes",
        "my little pony",
        "faces (ffhq config-f)",
        "car (config-f)",
        "cat",
        "church",
        "horse",
        "panda",
        "obama",
    ):
        assert name in c, name
    assert c["wikiart"].conditional is True and c["wikiart"].format == "stylegan2-tf"
    assert (
        c["wikiart"].url
        == "https://archive.org/download/wikiart-stylegan2-conditional-model/network-snapshot-012052.pkl"
    )
    # NVIDIA's own releases in all three formats.
    assert c["stylegan2-ada-metfaces"].format == "stylegan2-ada-pytorch"
    assert c["stylegan2-ada-cifar10"].c_dim == 10 and c["stylegan2-ada-cifar10"].conditional is True
    assert c["stylegan3-r-afhqv2-512x512"].format == "stylegan3"
    assert c["stylegan3-t-ffhq-1024x1024"].resolution == 1024
    assert c["cat"].urls[0].startswith("https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/")
    assert len(c["cat"].urls) == 2  # NVIDIA CDN + LSD's original cloudfront URL


#: Lucid Sonic Dreams' catalogue: awesome-pretrained-stylegan models.csv (StyleGAN 1), then awesome-pretrained-
#: stylegan2 models.json, lower-cased. "anime portraits" is in both: LSD resolves it to the first (StyleGAN 1) one.
LSD_SG1 = [
    "lsun bedrooms",
    "lsun cars",
    "lsun cats",
    "celeba hq faces",
    "ffhq faces",
    "pokemon",
    "anime faces",
    "anime portraits",
    "wikiart faces",
    "abstract photos",
    "vases",
    "fireworks",
    "ukiyo-e faces",
    "butterflies",
]
LSD_SG2 = [
    "car (config-e)",
    "car (config-f)",
    "cat",
    "church",
    "faces (ffhq config-e)",
    "faces (ffhq config-e 256x256)",
    "faces (ffhq config-f)",
    "faces (ffhq config-f 512x512)",
    "horse",
    "imagenet",
    "wikiart",
    "anime portraits",
    "microscope images",
    "wildlife",
    "modern art",
    "trypophobia",
    "abstract art",
    "maps",
    "cakes",
    "cifar 10",
    "cifar 100",
    "faces (ffhq slim 256x256)",
    "obama",
    "grumpy cat",
    "panda",
    "fursona",
    "my little pony",
    "painting faces",
    "ukiyoe faces",
    "beetles",
    "textures",
    "more abstract art",
    "flowers",
    "doors",
    "floor plans",
    "figure drawings",
]


def test_catalogue_has_all_of_lsds_styles():
    assert len(LSD_SG1) == 14 and len(LSD_SG2) == 36
    c = cat.load_catalogue()
    for name in LSD_SG1 + LSD_SG2:
        assert name in c, name
    assert [n for n, e in c.items() if e.source == "awesome-pretrained-stylegan"] == LSD_SG1
    assert sum(e.source == "awesome-pretrained-stylegan2" for e in c.values()) == 36
    # The StyleGAN2 list's "Anime portraits" is kept under another name; LSD's name gives its first match.
    assert c["anime portraits"].author == "gwern" and c["anime portraits"].format == "stylegan1-tf"
    assert c["anime portraits (stylegan2)"].author == "Aaron Gokaslan"
    assert (
        c["anime portraits (stylegan2)"].url == "https://mega.nz/#!PeIi2ayb!xoRtjTXyXuvgDxSsSMn-cOh-Zux9493zqdxwVMaAzp4"
    )
    e = c["abstract photos"]
    assert e.urls == ("https://mega.nz/#!vCQyHQZT!zdeOg3VvT4922Z2UfxO51xgAfJD-NAK2nW7H_jMlilU",)
    assert (e.format, e.author, e.licence, e.resolution) == ("stylegan1-tf", "Michael Friesen", "Unknown", 512)
    e = c["ffhq faces"]
    assert e.url == "https://drive.google.com/uc?id=1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ" and e.author == "karras"
    assert e.licence == "https://github.com/NVlabs/stylegan/blob/master/LICENSE.txt" and e.resolution == 1024
    assert c["lsun cars"].resolution == 512 and "512x384" in c["lsun cars"].notes
    assert c["pokemon"].url == "https://www.dropbox.com/s/a7oiegcixl7mye7/pokemon.pkl?dl=1"
    e = c["floor plans"]
    assert e.url == "https://drive.google.com/uc?id=16bd6n1NM7EVWT7kh_O-jAHkNnUrHG1wX"
    assert (e.author, e.licence, e.format, e.resolution) == ("Mayur Mistry", "Unknown", "stylegan1-tf", 1024)
    assert c["butterflies"].unavailable and "pytorch" in c["butterflies"].unavailable.lower()
    assert [n for n in c if c[n].url.startswith("https://mega.nz/")].__len__() == 9  # as the issue counts


def test_cache_filenames_are_unique_and_safe():
    c = cat.load_catalogue()
    files = [e.filename for e in c.values()]
    assert len(files) == len(set(files))
    assert all(re.fullmatch(r"[a-z0-9-]+\.pkl", f) for f in files)


# ------------------------------------------------------------------------------------ show_styles


@pytest.fixture
def no_network(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    monkeypatch.setattr(socket, "getaddrinfo", boom)
    monkeypatch.setattr(urllib.request, "urlopen", boom)


def test_show_styles_is_offline_and_marks_downloaded(no_network, capsys, isolated, monkeypatch):
    monkeypatch.chdir(isolated)
    c = cat.load_catalogue()
    f = cat.styles_dir() / c["wikiart"].filename
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"\x80\x04fake")
    local = isolated / "mine.pkl"
    local.write_bytes(b"\x80\x04")
    cat.add_style("My Local Style", local)
    cat.show_styles()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("default ") and "no download" in lines[0] and "works here" in lines[0]
    lines = lines[1:]
    # the last line: what works offline, here the embedded style and the two files on disk
    ready = f"default, my local style, wikiart (3 of {len(c) + 2} styles)."
    assert lines[-1] == f"Work on this machine now, offline: {ready}"
    lines = lines[:-1]
    assert lines[-1].startswith("To use a style marked 'cannot be downloaded'") and "lsd-jax styles --add" in lines[-1]
    lines = lines[:-1]
    assert len(lines) == len(c) + 1
    names = [ln.split("  (")[0] for ln in lines]
    assert names == sorted(names) and all(n == n.lower() for n in names)
    assert "wikiart  (works here: downloaded, 0.0 MB)" in lines  # the size on disk (its resolution is not stated)
    assert "my local style  (works here: downloaded, 0.0 MB)" in lines  # no resolution stated: none shown
    assert f"maps  ({c['maps'].resolution} px, downloads on first use)" in lines  # not downloaded
    assert any(ln.startswith("abstract photos  (") and "downloads on first use" in ln for ln in lines)  # mega.nz
    assert sum("works here" in ln for ln in lines) == 2
    (bf,) = [ln for ln in lines if ln.startswith("butterflies  ")]
    assert "(cannot be downloaded: made with marian42/style-based-gan-pytorch" in bf
    assert sum("(cannot be downloaded" in ln for ln in lines) == 1


# ------------------------------------------------------------------------------------ find_style


def test_find_style_is_case_and_punctuation_tolerant():
    assert cat.find_style("WikiArt").name == "wikiart"
    assert cat.find_style("  Faces (FFHQ config-f) ").name == "faces (ffhq config-f)"
    assert cat.find_style("faces ffhq config-f").name == "faces (ffhq config-f)"


def test_unknown_style_suggests_close_matches():
    with pytest.raises(StyleError) as ei:
        cat.find_style("wikiartt")
    msg = str(ei.value)
    assert "'wikiartt'" in msg and "'wikiart'" in msg and "`lsd-jax styles`" in msg
    assert not any(w in msg for w in ("lsd_jax", "show_styles", "add_style"))  # no Python functions for the CLI
    with pytest.raises(StyleError) as ei:
        cat.find_style("faces")
    assert "'faces (ffhq config-f)'" in str(ei.value)
    with pytest.raises(StyleError) as ei:
        cat.find_style("zzzzqqqq")
    assert "Did you mean" not in str(ei.value)


# ------------------------------------------------------------------------------------ add_style


def test_add_style_round_trips_and_persists(isolated):
    sha = "AB" * 32
    e = cat.add_style(
        "My Style",
        "https://example.org/m.pkl",
        sha256=sha,
        format="stylegan3",
        resolution=256,
        conditional=False,
        c_dim=0,
        licence="CC-BY-4.0",
        notes="hi",
    )
    assert e.name == "my style" and e.sha256 == sha.lower() and e.source == "user"
    assert cat.find_style("my style") == e
    assert cat.load_catalogue()["my style"] == e
    doc = json.loads((isolated / "user_styles.json").read_text())
    assert doc["schema"] == 1 and [s["name"] for s in doc["styles"]] == ["my style"]
    assert doc["styles"][0]["urls"] == ["https://example.org/m.pkl"]
    # Still a single file: no temp files left behind.
    assert sorted(p.name for p in isolated.iterdir() if p.name.startswith("user_styles")) == [
        "user_styles.json",
        "user_styles.json.lock",
    ]


def test_add_style_default_location_is_in_the_cache(monkeypatch, isolated):
    monkeypatch.delenv(cat.USER_STYLES_ENV)
    cat.add_style("x", "https://example.org/x.pkl")
    assert (isolated / "cache" / "user_styles.json").is_file()
    assert "x" in cat.load_catalogue()


def test_add_style_refuses_to_clobber_without_overwrite():
    cat.add_style("mine", "https://example.org/a.pkl")
    with pytest.raises(StyleError, match="overwrite=True"):
        cat.add_style("MINE", "https://example.org/b.pkl")
    with pytest.raises(StyleError, match="built-in"):
        cat.add_style("wikiart", "https://example.org/w.pkl")
    cat.add_style("mine", "https://example.org/b.pkl", overwrite=True)
    assert cat.find_style("mine").url == "https://example.org/b.pkl"
    cat.add_style("wikiart", "https://example.org/w.pkl", overwrite=True)  # user entry shadows the built-in
    assert cat.find_style("wikiart").url == "https://example.org/w.pkl"
    cat.remove_style("wikiart")
    assert cat.find_style("wikiart").source == "awesome-pretrained-stylegan2"


@pytest.mark.parametrize(
    "kwargs",
    [dict(sha256="xyz"), dict(format="stylegan1"), dict(resolution=0), dict(resolution="512"), dict(c_dim=-1)],
)
def test_add_style_validates(kwargs, isolated):
    with pytest.raises(StyleError):
        cat.add_style("bad", "https://example.org/a.pkl", **kwargs)
    assert not (isolated / "user_styles.json").exists()


def test_add_style_is_safe_under_concurrency():
    errors = []

    def add(i):
        try:
            cat.add_style(f"style {i}", f"https://example.org/{i}.pkl")
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert {f"style {i}" for i in range(8)} <= set(cat.load_catalogue())


def test_broken_user_catalogue_is_a_clear_error(isolated):
    (isolated / "user_styles.json").write_text("{not json")
    with pytest.raises(StyleError, match="user_styles.json"):
        cat.load_catalogue()
    (isolated / "user_styles.json").write_text(json.dumps({"styles": [{"name": "a", "urls": []}]}))
    with pytest.raises(StyleError, match="urls"):
        cat.load_catalogue()


# ------------------------------------------------------------------------------------ style_path


def test_style_path_downloads_once_into_the_cache(server, model):
    url = server.add("/m.pkl", model)
    cat.add_style("served", url, sha256=hashlib.sha256(model).hexdigest())
    p = cat.style_path("served", progress=False)
    assert p.parent == cat.styles_dir() and p.read_bytes() == model
    assert pickle.loads(p.read_bytes())["G_ema"][-1] == 19_999
    assert cat.style_path("Served", progress=False) == p  # second call: cache, no request
    assert server.count("/m.pkl", method=None) == 1


def test_style_path_concurrent_threads_download_once(server, model):
    url = server.add("/m.pkl", model, chunk=4096, chunk_delay=0.005)
    cat.add_style("slow", url)
    barrier = threading.Barrier(3)
    out: list[object] = [None] * 3

    def go(i):
        barrier.wait()
        try:
            out[i] = cat.style_path("slow", progress=False)
        except BaseException as e:  # pragma: no cover
            out[i] = e

    ts = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert all(isinstance(p, Path) for p in out) and len(set(out)) == 1
    assert out[0].read_bytes() == model
    assert server.count("/m.pkl") == 1


def test_style_path_falls_back_to_a_mirror(server, model, isolated):
    dead = server.add("/dead.pkl", b"", status=404)
    good = server.add("/good.pkl", model)
    doc = {
        "schema": 1,
        "styles": [
            {
                "name": "mirrored",
                "urls": [dead, good],
                "format": "stylegan2-tf",
                "resolution": 256,
                "licence": "unknown",
                "sha256": None,
            }
        ],
    }
    (isolated / "user_styles.json").write_text(json.dumps(doc))
    assert cat.style_path("mirrored", progress=False).read_bytes() == model
    assert server.count("/dead.pkl") == 1 and server.count("/good.pkl") == 1


def test_style_path_all_mirrors_dead_names_every_url(server, isolated):
    a = server.add("/a.pkl", b"", status=404)
    b = server.add("/b.pkl", b"", status=410)
    (isolated / "user_styles.json").write_text(json.dumps([{"name": "gone", "urls": [a, b]}]))
    with pytest.raises(DownloadError) as ei:
        cat.style_path("gone", progress=False)
    assert a in str(ei.value) and b in str(ei.value) and "'gone'" in str(ei.value)


def test_style_path_rejects_an_html_page(server):
    url = server.add("/quota", b"<!DOCTYPE html><html><body>Quota exceeded</body></html>", content_type="text/html")
    cat.add_style("drive", url)
    with pytest.raises(DownloadError, match="web page"):
        cat.style_path("drive", progress=False)
    assert not any(cat.styles_dir().glob("*.pkl"))


def test_style_path_checksum_mismatch_caches_nothing(server, model):
    url = server.add("/m.pkl", model)
    cat.add_style("bad sum", url, sha256="0" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        cat.style_path("bad sum", progress=False)
    assert [p.name for p in cat.styles_dir().iterdir() if not p.name.endswith(".lock")] == []


def test_style_path_local_entries_are_used_in_place(isolated, model, no_network):
    src = isolated / "models" / "local model.pkl"
    src.parent.mkdir()
    src.write_bytes(model)
    cat.add_style("local", src, sha256=hashlib.sha256(model).hexdigest())
    assert cat.find_style("local").url.startswith("file://")
    assert cat.style_path("local", progress=False) == src.resolve()
    cat.add_style("local bad", src, sha256="1" * 64)
    with pytest.raises(StyleError, match="sha256"):
        cat.style_path("local bad")
    src.unlink()
    with pytest.raises(StyleError, match="does not exist"):
        cat.style_path("local")


def test_changing_a_styles_url_drops_the_old_download(server, model):
    other = pickle.dumps("other model", protocol=4)
    a = server.add("/a.pkl", model)
    b = server.add("/b.pkl", other)
    cat.add_style("s", a)
    assert cat.style_path("s", progress=False).read_bytes() == model
    cat.add_style("s", b, overwrite=True)
    assert cat.style_path("s", progress=False).read_bytes() == other
    assert server.count("/b.pkl") == 1


def test_an_unusable_builtin_says_why_without_network(no_network):
    with pytest.raises(StyleError, match="cannot be used: made with marian42"):
        cat.style_path("butterflies", progress=False)
    assert not cat.fetchable(cat.find_style("butterflies"))


def test_unknown_style_path_is_a_style_error(no_network):
    with pytest.raises(StyleError, match="Did you mean"):
        cat.style_path("wikiar")


@pytest.mark.parametrize(
    "page", [b"\xef\xbb\xbf<!-- cdn -->\n<html><title>Sign in</title></html>", b'{"error": "rate limited"}']
)
def test_style_path_skips_a_mirror_that_sends_a_page(server, model, page):
    bad = server.add("/page", page, content_type="text/html")
    good = server.add("/good.pkl", model)
    cat.add_style("paged", bad)
    with pytest.raises(DownloadError, match="127.0.0.1 sent (an HTML page|a JSON document)"):
        cat.style_path("paged", progress=False)
    assert not any(p.suffix in (".pkl", ".part") for p in cat.styles_dir().iterdir())
    cat.user_catalogue_path().write_text(json.dumps([{"name": "paged", "urls": [bad, good]}]))
    assert cat.style_path("paged", progress=False).read_bytes() == model  # the next mirror is used


# ------------------------------------------------------------------------------------ issue 12: LSD's hosts, files in
# the working directory, unfetchable styles


@pytest.fixture
def fake_mega(server, monkeypatch):
    from lsd_jax.store import hosts

    try:
        from file_hosts import FakeMega
    except ImportError:  # tests/ collected as a package
        from tests.file_hosts import FakeMega
    m = FakeMega(server)
    monkeypatch.setenv(hosts.MEGA_API_ENV, m.api)
    return m


def mega_style(fake_mega, isolated, data: bytes, name: str = "mega style") -> str:
    """A user style whose file is on the fake mega.nz."""
    link = fake_mega.add(data)
    (isolated / "user_styles.json").write_text(json.dumps([{"name": name, "urls": [link], "format": "stylegan1-tf"}]))
    return link


def test_a_pkl_in_the_working_directory_is_used_without_download(no_network, isolated, monkeypatch, model, capsys):
    monkeypatch.chdir(isolated)
    (isolated / "Abstract Photos.PKL").write_bytes(model)  # the name matched case-insensitively
    e = cat.find_style("abstract photos")
    assert cat.style_path("ABSTRACT PHOTOS", progress=False) == (isolated / "Abstract Photos.PKL").resolve()
    assert cat.local_file(e) == (isolated / "Abstract Photos.PKL").resolve() and cat.fetchable(e)
    cat.show_styles()
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("abstract photos  ")]
    assert line.startswith("abstract photos  (works here: in the working directory, ")
    (isolated / "Abstract Photos.PKL").unlink()
    (isolated / "abstract photos.pkl").write_bytes(model)  # LSD's own spelling
    assert cat.style_path("abstract photos", progress=False).name == "abstract photos.pkl"


def test_mega_style_downloads_through_the_catalogue(server, fake_mega, isolated, model):
    mega_style(fake_mega, isolated, model)
    p = cat.style_path("mega style", progress=False)
    assert p.parent == cat.styles_dir() and p.read_bytes() == model
    assert cat.style_path("mega style", progress=False) == p and len(fake_mega.calls) == 1


def test_dead_style_fails_fast_in_one_line_then_is_marked(server, fake_mega, isolated, model, capsys, monkeypatch):
    monkeypatch.chdir(isolated)
    link = mega_style(fake_mega, isolated, model)
    fake_mega.errors[fake_mega.last_handle] = -9
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as ei:
        cat.style_path("mega style", progress=False)
    assert time.monotonic() - t0 < 5.0  # not retried: the download's backoff alone would take 15 s (generous)
    msg = str(ei.value)
    assert "\n" not in msg and "'mega style'" in msg and "does not exist" in msg
    assert msg.endswith(f'Download {link} in a browser, then run: lsd-jax styles --add "mega style" FILE')
    # Marked from now on (no network needed to say so), in show_styles and for the web app's menu.
    e = cat.find_style("mega style")
    assert not cat.fetchable(e) and "does not exist" in cat.unavailable_reason(e)
    cat.show_styles()
    out = capsys.readouterr().out
    assert "mega style  (cannot be downloaded: the last download failed: mega.nz: the file does not exist" in out
    # The instruction works: the file, downloaded by hand, is installed into the cache and the mark is gone.
    mine = isolated / "Downloads" / "x.pkl"
    mine.parent.mkdir()
    mine.write_bytes(model)
    from lsd_jax.cli import main

    assert main(["styles", "--add", "Mega Style", str(mine)]) == 0
    assert "installed" in capsys.readouterr().out
    assert cat.fetchable(e) and cat.unavailable_reason(e) is None
    assert cat.style_path("mega style", progress=False).read_bytes() == model
    assert len(fake_mega.calls) == 1
    assert cat.find_style("mega style").format == "stylegan1-tf"  # the entry's details are kept


def test_offline_style_download_says_what_to_do_fast(isolated, monkeypatch):
    import urllib.error

    def no_dns(*a, **k):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", no_dns)
    monkeypatch.chdir(isolated)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as ei:
        cat.style_path("abstract photos", progress=False)
    assert time.monotonic() - t0 < 5.0  # not retried: the download's backoff alone would take 15 s (generous)
    msg = str(ei.value)
    assert "\n" not in msg and "offline" in msg
    assert msg.endswith('lsd-jax styles --add "abstract photos" FILE')
    assert cat._load_failures() == {}  # a network problem does not mark the style for good...
    entry = cat.find_style("abstract photos")  # ...but this process's menus mark it until its host is probed again
    assert cat.unavailable_reason(entry) == f"no network (cannot look up {cat._host(entry.url)})"


def test_quota_marks_for_a_day_and_success_clears_marks(server, fake_mega, isolated, model, monkeypatch):
    mega_style(fake_mega, isolated, model)
    fake_mega.errors[fake_mega.last_handle] = -17
    with pytest.raises(DownloadError, match="quota"):
        cat.style_path("mega style", progress=False)
    e = cat.find_style("mega style")
    assert "quota" in cat.unavailable_reason(e)
    later = time.time() + cat.QUOTA_MARK_SECONDS + 1
    with monkeypatch.context() as m:
        m.setattr(cat.time, "time", lambda: later)
        assert cat.unavailable_reason(e) is None  # a quota passes
    assert "quota" in cat.unavailable_reason(e)
    del fake_mega.errors[fake_mega.last_handle]
    assert cat.style_path("mega style", progress=False).read_bytes() == model
    assert "mega style" not in json.loads((cat.styles_dir() / "failures.json").read_text())


def test_install_style_file_checks_what_it_installs(isolated, model):
    page = isolated / "saved.pkl"
    page.write_bytes(b"<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title></html>")
    with pytest.raises(StyleError, match="web page"):
        cat.install_style_file("abstract photos", page)
    with pytest.raises(StyleError, match="no such file"):
        cat.install_style_file("abstract photos", isolated / "missing.pkl")
    good = isolated / "good.pkl"
    good.write_bytes(model)
    p = cat.install_style_file("Abstract Photos", good)
    assert p.read_bytes() == model and cat.is_downloaded(cat.find_style("abstract photos"))


# ------------------------------------------------------------------------------------ BigGAN-deep: two-file entries


def test_builtin_biggan_entries_are_the_packages_files():
    doc = json.loads(resources.files("lsd_jax").joinpath("data/biggan_styles.json").read_text(encoding="utf-8"))
    base = "https://s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-{}-{}"
    for res in (128, 256, 512):
        e = cat.find_style(f"biggan-deep-{res}")
        assert e.format == "biggan-deep" and e.resolution == res and e.c_dim == 1000 and e.sha256 is None
        assert e.urls == (base.format(res, "pytorch_model.bin"),)
        assert e.beside == (("config.json", (base.format(res, "config.json"),)),)
        assert e.to_json()["beside"] == {"config.json": [base.format(res, "config.json")]}
    assert len(doc["styles"]) == 3


@pytest.mark.slow
def test_a_two_file_entry_is_fetched_into_one_folder(server, isolated):
    import biggan_checkpoints as bc

    from lsd_jax.styles.resolve import resolve_style

    cfg = bc.biggan_config(128, channel_width=4)
    folder = bc.write_checkpoint(isolated / "src", cfg, bc.random_state(cfg, 5))
    w = server.add("/biggan/tiny-pytorch_model.bin", (folder / "pytorch_model.bin").read_bytes())
    c = server.add("/biggan/tiny-config.json", (folder / "config.json").read_bytes())
    doc = [{"name": "tiny biggan", "urls": [w], "beside": {"config.json": [c]}, "format": "biggan-deep"}]
    (isolated / "user_styles.json").write_text(json.dumps(doc))
    entry = cat.find_style("tiny biggan")
    assert not cat.is_downloaded(entry)
    p = cat.style_path("tiny biggan", progress=False)
    assert p.name == "tiny-pytorch_model.bin" and p.parent.parent == cat.styles_dir()
    assert (p.parent / "config.json").read_bytes() == (folder / "config.json").read_bytes()
    assert p.read_bytes() == (folder / "pytorch_model.bin").read_bytes() and cat.is_downloaded(entry)
    assert cat.style_path("tiny biggan", progress=False) == p  # cached: no second request
    assert server.count("/biggan/tiny-pytorch_model.bin") == server.count("/biggan/tiny-config.json") == 1
    style = resolve_style("tiny biggan", progress=False)
    assert (style.name, style.z_dim, style.c_dim, style.native_size) == ("tiny biggan", 128, 1000, (128, 128))
    assert style.resolve_classes(["goldfish", 5]) == (1, 5)


@pytest.mark.parametrize(
    "beside, match",
    [
        ({"../config.json": ["http://x/c"]}, "plain file name"),
        ({"config.json": []}, "non-empty list"),
        (["config.json"], "map file names"),
    ],
)
def test_two_file_entries_are_validated(isolated, beside, match):
    (isolated / "user_styles.json").write_text(json.dumps([{"name": "b", "urls": ["http://x/w"], "beside": beside}]))
    with pytest.raises(StyleError, match=match):
        cat.load_catalogue()


def test_a_two_file_entry_installs_from_a_folder(isolated, no_network, capsys):
    from lsd_jax.cli import main

    src = isolated / "dl"
    src.mkdir()
    (src / "biggan-deep-128-pytorch_model.bin").write_bytes(b"\x80\x02weights")  # as a browser saves it
    (src / "config.json").write_text('{"output_dim": 128}')
    entry = cat.find_style("biggan-deep-128")
    assert "into one folder" in cat._instruction(entry) and "config.json" in cat._instruction(entry)
    assert main(["styles", "--add", "biggan-deep-128", str(src)]) == 0
    p = cat.style_path("biggan-deep-128", progress=False)  # no network: the installed files
    assert p.read_bytes() == b"\x80\x02weights" and (p.parent / "config.json").read_text() == '{"output_dim": 128}'
    (src / "config.json").unlink()
    with pytest.raises(StyleError, match="config.json is missing beside the weights"):
        cat.install_style_file("biggan-deep-128", src / "biggan-deep-128-pytorch_model.bin")


# ------------------------------------------------------------------------------------ host probes


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed: a refused connection


def test_a_host_is_probed_once_and_its_answer_kept(server):
    from lsd_jax.store.reach import HostProbes

    now = [0.0]
    probes = HostProbes(timeout=2.0, recheck_s=60.0, clock=lambda: now[0])
    up = server.add("/m.pkl", b"x")
    down = f"http://127.0.0.1:{_closed_port()}/m.pkl"
    assert probes.reason(up) is None and not probes.known(up)  # not probed yet: nothing marked
    probes.check([up, server.url("/other.pkl"), down])
    probes.check([up, down])  # known: no second probe
    assert len(server.requests_for("/", method="HEAD")) == 1  # one HEAD per host (a 404 is an answer)
    assert probes.known(up) and probes.reason(up) is None
    assert probes.reason(down) == "127.0.0.1 refused the connection"
    now[0] = 61.0  # an unreachable host is probed again later (the network may come back); a reachable one is not
    calls = []
    probes._probe = lambda o, t: calls.append(o)
    probes.check([up, down])
    assert calls == [down.rsplit("/", 1)[0]] and probes.reason(down) is None


def test_a_probe_times_out_and_a_name_that_does_not_resolve_means_no_network():
    from lsd_jax.store import reach

    with socket.socket() as s:  # listening, never accepting: the HEAD gets no answer
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        t0 = time.monotonic()
        why = reach.probe(f"http://127.0.0.1:{s.getsockname()[1]}", timeout=0.5)
        assert why == "127.0.0.1 did not answer within 0.5 s" and time.monotonic() - t0 < 30
    assert reach.probe("http://no-such-host.invalid", timeout=2.0).startswith("no network (cannot look up")


def test_styles_whose_hosts_cannot_be_reached_are_marked_with_the_reason(server, model, monkeypatch):
    from lsd_jax.store import reach

    probes = reach.HostProbes(timeout=2.0)
    monkeypatch.setattr(cat, "PROBES", probes)
    cat.add_style("near", server.add("/near.pkl", model))
    cat.add_style("far", f"http://127.0.0.1:{_closed_port()}/far.pkl")
    cat.add_style("mirrored", cat.find_style("far").url, resolution=256)
    entries = cat.load_catalogue()
    assert cat.unavailable_reason(entries["far"]) is None  # not probed yet: worth a try
    monkeypatch.setattr(cat, "load_catalogue", lambda: {k: entries[k] for k in ("near", "far", "mirrored")})
    cat.probe_hosts(wait_s=30.0)
    assert cat.unavailable_reason(entries["near"]) is None
    assert cat.unavailable_reason(entries["far"]) == "127.0.0.1 refused the connection"
    assert not cat.fetchable(entries["mirrored"])


def test_a_failed_download_tells_a_web_visitor_what_they_can_do(server):
    cat.add_style("gone", server.add("/gone.pkl", b"", status=404))
    with pytest.raises(DownloadError) as info:
        cat.style_path("gone", progress=False)
    assert "lsd-jax styles --add" in str(info.value)  # the CLI's user can run it
    visitor = info.value.visitor_message
    assert "lsd-jax" not in visitor and "Cannot download style 'gone'" in visitor
    assert visitor.endswith(cat.VISITOR_ADVICE) and "upload it under 'or upload a style'" in visitor
