"""The style catalogue: named pretrained StyleGAN models, where to get them, and the local cache.

The built-in catalogue is a data file shipped with the package (``lsd_jax/data/styles.json``): LSD's
own catalogue, i.e. the two lists it merges (justinpinkney/awesome-pretrained-stylegan ``models.csv``, 14 StyleGAN 1
models, then awesome-pretrained-stylegan2 ``models.json``, 36 models; names kept, lower-cased), plus NVIDIA's
StyleGAN2 / StyleGAN2-ADA / StyleGAN3 releases. The user's catalogue (``$LSD_JAX_USER_STYLES``, else
``cache_dir()/"user_styles.json"``) is merged on top; its entries win on a name clash.

As in LSD, a file named ``<style>.pkl`` in the working directory (the name matched case-insensitively) is used
instead of a download. Unlike LSD, nothing here touches the network except :func:`style_path` when the file is
not on disk: :func:`show_styles`, :func:`load_catalogue` and :func:`fetchable` only read local files.

A style whose file cannot be had here (a host lsd-jax cannot download from, a link that failed for good last time,
or an entry marked ``unavailable`` in the data) is marked by :func:`show_styles` and :func:`fetchable` (which the
web app's menu uses); its download error says in one line what to do: download the file in a browser, then
``lsd-jax styles --add NAME FILE`` (:func:`install_style_file`).

BigGAN-deep (``lsd_jax/data/biggan_styles.json``, the pytorch-pretrained-biggan package's public files) is a
model of TWO files: its entries have ``"format": "biggan-deep"``, ``urls`` for the weights and ``"beside":
{"config.json": [urls]}``; such an entry is cached as a folder (``styles_dir()/<slug>/``) holding the weights
(named as in the URL) and each file beside them, and :func:`style_path` returns the weights' path.

Both files share one schema::

    {"schema": 1, "styles": [{"name": "wikiart", "urls": ["https://..."], "format": "stylegan2-tf",
      "resolution": 1024 | null, "conditional": true | false | null, "c_dim": 10 | null,
      "licence": "...", "sha256": "64 hex" | null, ...optional: source, author, dataset, homepage, notes,
      unavailable: "why this entry cannot be used" | null, beside: {"file name": ["https://...", ...]}}]}
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lsd_jax.store.download import can_fetch, download, file_lock, is_local, local_path, sniff_file
from lsd_jax.store.paths import atomic_write, cache_dir, sha256_file
from lsd_jax.store.reach import PROBES

from ..errors import DownloadError, StyleError

__all__ = [
    "FORMATS",
    "USER_STYLES_ENV",
    "StyleEntry",
    "add_style",
    "fetchable",
    "find_style",
    "install_style_file",
    "is_downloaded",
    "load_catalogue",
    "local_file",
    "probe_hosts",
    "remove_style",
    "show_styles",
    "style_path",
    "styles_dir",
    "unavailable_reason",
    "user_catalogue_path",
]

#: Formats the converters understand (StyleGAN 1 and 2 TensorFlow ``(G, D, Gs)`` pickles, PyTorch ones, and BigGAN-deep
#: checkpoints: pytorch_model.bin with its config.json beside it).
FORMATS = ("stylegan1-tf", "stylegan2-tf", "stylegan2-ada-pytorch", "stylegan3", "biggan-deep")
USER_STYLES_ENV = "LSD_JAX_USER_STYLES"
SCHEMA = 1
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StyleEntry:
    """One catalogue entry. ``urls`` are mirrors, tried in order; a local path or ``file://`` URL is
    used in place (never copied). ``None`` means "not stated by the source": the loader reads the real
    values (format, resolution, c_dim) from the pickle."""

    name: str
    urls: tuple[str, ...]
    format: str | None = None
    resolution: int | None = None
    conditional: bool | None = None
    c_dim: int | None = None
    licence: str = "unknown"
    sha256: str | None = None
    source: str = "user"
    author: str | None = None
    dataset: str | None = None
    homepage: str | None = None
    notes: str | None = None
    unavailable: str | None = None
    beside: tuple[tuple[str, tuple[str, ...]], ...] = ()  # files the model needs beside it: (name, mirrors)

    @property
    def url(self) -> str:
        """The first (preferred) URL."""
        return self.urls[0]

    @property
    def is_local(self) -> bool:
        return is_local(self.url)

    @property
    def filename(self) -> str:
        """The cache file name: a readable slug plus a short hash of the name (always unique)."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:60] or "style"
        return f"{slug}-{hashlib.sha1(self.name.encode()).hexdigest()[:8]}.pkl"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["urls"] = list(self.urls)
        if self.beside:
            d["beside"] = {name: list(urls) for name, urls in self.beside}
        else:
            d.pop("beside")
        return d

    @classmethod
    def from_json(cls, raw: Any, *, where: str) -> StyleEntry:
        """Validate one JSON object; raise StyleError naming ``where`` on anything wrong."""
        if not isinstance(raw, dict):
            raise StyleError(f"{where}: each style must be a JSON object, got {type(raw).__name__}.")
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in raw.items() if k in known}
        if "urls" not in d and isinstance(raw.get("url"), str):  # accept a single "url" too
            d["urls"] = [raw["url"]]
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StyleError(f"{where}: a style has no name: {raw!r}")
        label = f"{where}, style {name!r}"
        urls = d.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.strip() for u in urls):
            raise StyleError(f"{label}: 'urls' must be a non-empty list of strings.")
        d["urls"] = tuple(u.strip() for u in urls)
        if "beside" in d:
            d["beside"] = _beside(d["beside"], label)
        try:
            return _validated(cls(**d), label)
        except TypeError as e:
            raise StyleError(f"{label}: {e}") from e


def _validated(e: StyleEntry, label: str) -> StyleEntry:
    """``e`` checked, with its name normalised and its sha256 lower-cased; StyleError naming ``label``."""
    if e.format is not None and e.format not in FORMATS:
        raise StyleError(f"{label}: format must be one of {', '.join(FORMATS)} (or null), got {e.format!r}.")
    if e.resolution is not None and (type(e.resolution) is not int or e.resolution <= 0):
        raise StyleError(f"{label}: resolution must be a positive integer or null, got {e.resolution!r}.")
    if e.conditional is not None and type(e.conditional) is not bool:
        raise StyleError(f"{label}: conditional must be true, false or null, got {e.conditional!r}.")
    if e.c_dim is not None and (type(e.c_dim) is not int or e.c_dim < 0):
        raise StyleError(f"{label}: c_dim must be a non-negative integer or null, got {e.c_dim!r}.")
    if e.sha256 is not None:
        if not isinstance(e.sha256, str) or not _SHA_RE.match(e.sha256.lower()):
            raise StyleError(f"{label}: sha256 must be 64 hex digits or null, got {e.sha256!r}.")
    if not isinstance(e.licence, str) or not e.licence:
        raise StyleError(f"{label}: licence must be a non-empty string.")
    if e.unavailable is not None and (not isinstance(e.unavailable, str) or not e.unavailable.strip()):
        raise StyleError(f"{label}: unavailable must be a reason (a non-empty string) or null.")
    return replace(e, name=_norm(e.name), sha256=e.sha256.lower() if e.sha256 else None)


_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _beside(raw: Any, label: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{"config.json": ["https://..."]}`` → ``(("config.json", ("https://...",)),)``; plain file names only."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise StyleError(f"{label}: 'beside' must map file names to lists of URLs.")
    out = []
    for name, urls in raw.items():
        if not isinstance(name, str) or not _FILE_NAME_RE.match(name):
            raise StyleError(
                f"{label}: 'beside' file name {name!r} must be a plain file name (letters, digits, . _ -)."
            )
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.strip() for u in urls):
            raise StyleError(f"{label}: 'beside' {name!r} must be a non-empty list of URLs.")
        out.append((name, tuple(u.strip() for u in urls)))
    return tuple(out)


def _main_name(entry: StyleEntry) -> str:
    """The weights' file name in a folder entry's cache folder: the first URL's last path part."""
    import urllib.parse

    base = urllib.parse.unquote(urllib.parse.urlsplit(entry.url).path.rsplit("/", 1)[-1])
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[:100]
    return base if base and base not in {n for n, _ in entry.beside} else "model.bin"


def _norm(name: str) -> str:
    """LSD matches styles by their lower-cased name; we also trim and collapse spaces."""
    return " ".join(str(name).split()).lower()


def _loose(name: str) -> str:
    """A punctuation-free key, so 'faces ffhq config-f' finds 'faces (ffhq config-f)'."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


# ------------------------------------------------------------------------------------ loading


def _parse(text: str, where: str) -> dict[str, StyleEntry]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise StyleError(f"{where} is not valid JSON: {e}. Fix or delete it.") from e
    if isinstance(doc, list):  # a bare list of styles is accepted too
        doc = {"schema": SCHEMA, "styles": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("styles"), list):
        raise StyleError(f"{where}: expected an object with a 'styles' list.")
    if doc.get("schema", SCHEMA) != SCHEMA:
        raise StyleError(f"{where}: unsupported schema {doc.get('schema')!r} (this lsd-jax reads {SCHEMA}).")
    out: dict[str, StyleEntry] = {}
    for raw in doc["styles"]:
        entry = StyleEntry.from_json(raw, where=where)
        if entry.name in out:
            raise StyleError(f"{where}: the style name {entry.name!r} appears twice.")
        out[entry.name] = entry
    return out


@lru_cache(maxsize=1)
def _builtin() -> dict[str, StyleEntry]:
    text = resources.files("lsd_jax").joinpath("data/styles.json").read_text(encoding="utf-8")
    out = _parse(text, "built-in catalogue lsd_jax/data/styles.json")
    text = resources.files("lsd_jax").joinpath("data/biggan_styles.json").read_text(encoding="utf-8")
    return {**out, **_parse(text, "built-in catalogue lsd_jax/data/biggan_styles.json")}


def user_catalogue_path() -> Path:
    """``$LSD_JAX_USER_STYLES`` if set, else ``cache_dir()/"user_styles.json"``."""
    env = os.environ.get(USER_STYLES_ENV)
    return Path(env).expanduser() if env else cache_dir() / "user_styles.json"


def _load_user(path: Path) -> dict[str, StyleEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise StyleError(f"Cannot read the user style catalogue {path}: {e}") from e
    return _parse(text, f"user style catalogue {path}")


def load_catalogue() -> dict[str, StyleEntry]:
    """All styles by (lower-case) name: the built-in catalogue, then the user's on top. No network."""
    merged = dict(_builtin())
    merged.update(_load_user(user_catalogue_path()))
    return merged


def styles_dir() -> Path:
    """Where downloaded styles live: ``cache_dir()/"styles"``."""
    return cache_dir() / "styles"


def _cache_file(entry: StyleEntry) -> Path:
    if entry.beside:  # a folder: the weights and the files beside them
        return styles_dir() / entry.filename.removesuffix(".pkl") / _main_name(entry)
    return styles_dir() / entry.filename


def _workdir_file(entry: StyleEntry) -> Path | None:
    """``<name>.pkl`` in the working directory, the name matched case-insensitively (as LSD does, but LSD needs the
    exact lower-case name). None when there is none."""
    exact = Path(f"{entry.name}.pkl")
    if exact.is_file():
        return exact.resolve()
    with contextlib.suppress(OSError), os.scandir(".") as it:
        for de in it:
            if de.name.lower().endswith(".pkl") and _norm(de.name[:-4]) == entry.name and de.is_file():
                return Path(de.path).resolve()
    return None


def local_file(entry: StyleEntry) -> Path | None:
    """The file :func:`style_path` would use without any download, or None: ``<name>.pkl`` in the working
    directory, a local entry's file, or the cached download. No network."""
    found = _workdir_file(entry)
    if found is not None:
        return found
    if entry.is_local:
        path = local_path(entry.url)
        return path if path.exists() else None  # a file, or a BigGAN-deep folder
    cached = _cache_file(entry)
    return cached if cached.is_file() else None


def is_downloaded(entry: StyleEntry) -> bool:
    """Is the style's file available locally (see :func:`local_file`)? No network."""
    return local_file(entry) is not None


# ------------------------------------------------------------------------------------ availability

#: How long a failure that may pass (a host's download quota) marks a style; dead links stay marked until a
#: download or an installed file succeeds.
QUOTA_MARK_SECONDS = 24 * 3600.0


def _failures_path() -> Path:
    return styles_dir() / "failures.json"


def _load_failures() -> dict[str, dict]:
    """Lasting download failures by style name: {"reason", "kind", "time"} (a missing or broken file: none)."""
    try:
        doc = json.loads(_failures_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in doc.items() if isinstance(v, dict)} if isinstance(doc, dict) else {}


def _update_failures(name: str, record: dict | None) -> None:
    """Set (or with None, clear) a style's failure record; atomic, under a lock."""
    path = _failures_path()
    if record is None and not path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock"), path.name, progress=False):
        doc = _load_failures()
        if record is None:
            if doc.pop(name, None) is None:
                return
        else:
            doc[name] = record
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _recorded_failure(entry: StyleEntry, failures: dict[str, dict]) -> str | None:
    rec = failures.get(entry.name)
    if not rec or not isinstance(rec.get("reason"), str):
        return None
    if rec.get("kind") == "quota" and time.time() - float(rec.get("time", 0)) > QUOTA_MARK_SECONDS:
        return None
    return f"the last download failed: {rec['reason']}"


def unavailable_reason(entry: StyleEntry, *, _failures: dict[str, dict] | None = None) -> str | None:
    """Why the style's file cannot be had here, or None (it is on disk, or worth downloading). No network.

    Reasons: the entry is marked ``unavailable`` in the catalogue data; none of its URLs is one lsd-jax can
    download (:func:`lsd_jax.store.download.can_fetch`); or its last download failed for good (a dead link, a page
    instead
    of the file; a host's quota for a day); or every host it downloads from was unreachable when this process
    probed it (:func:`probe_hosts`; a process that never probed marks none for that)."""
    if entry.unavailable:
        return entry.unavailable
    if is_downloaded(entry):
        return None
    fetch = [u for u in entry.urls if can_fetch(u)]
    if not fetch:
        return "lsd-jax cannot download from " + ", ".join(sorted({_host(u) for u in entry.urls}))
    unreachable = [PROBES.reason(u) for u in fetch]  # what this process's probe found (no network here)
    if all(unreachable):
        return str(unreachable[0])
    return _recorded_failure(entry, _load_failures() if _failures is None else _failures)


def probe_hosts(wait_s: float = 0.0) -> threading.Thread:
    """Probe, once, the hosts of the styles not on disk (:data:`lsd_jax.store.reach.PROBES`: one quick ``HEAD``
    per host, cached) in a background thread, waiting for it up to ``wait_s`` seconds (a name lookup is not bound
    by the probe's time-out: never wait longer than that); :func:`unavailable_reason` then marks the styles whose
    every host is unreachable. For a server's style menu; nothing else touches the network."""
    urls = [u for e in load_catalogue().values() if not e.unavailable and not is_downloaded(e) for u in e.urls]
    thread = PROBES.check_in_background([u for u in urls if can_fetch(u)])
    thread.join(wait_s)
    return thread


def fetchable(entry: StyleEntry) -> bool:
    """Whether this style can be used here without the user fetching its file by hand (see
    :func:`unavailable_reason`). For menus: the web app lists the others apart. No network."""
    return unavailable_reason(entry) is None


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


#: What a web visitor can do about a style this server cannot get (they cannot run a command on it).
VISITOR_ADVICE = "Choose another style, or, if you have its .pkl file, upload it under 'or upload a style'."


def _instruction(entry: StyleEntry) -> str:
    name = f'"{entry.name}"' if re.search(r"[^a-z0-9_.-]", entry.name) else entry.name
    if entry.beside:  # a two-file model (BigGAN-deep): both into one folder
        others = ", ".join(f"{urls[0]} (saved as {n})" for n, urls in entry.beside)
        return (
            f"Download {entry.url} and {others} in a browser into one folder, then run: lsd-jax styles --add "
            f"{name} FOLDER"
        )
    return f"Download {entry.url} in a browser, then run: lsd-jax styles --add {name} FILE"


def show_styles() -> None:
    """Print the names of all styles, lower-cased, one per line, like LSD's ``show_styles()``, each with what is
    known of its size (the model's resolution; the file's size once on disk).

    Styles that work on this machine now, without the internet (the embedded ``default``, a file on disk), are
    marked ``(works here: downloaded ...)`` (or ``in the working directory``), styles downloaded on first use
    ``(... downloads on first use)``, styles whose file cannot be downloaded here ``(cannot be downloaded: why)``,
    followed by what to do; a last line names the styles that work offline. Reads only local files."""
    cat = load_catalogue()
    failures = _load_failures()
    print("default  (works here: embedded CPPN, no download)")
    marked = 0
    ready = ["default"]
    for name in sorted(cat):
        entry = cat[name]
        size = f"{entry.resolution} px" if entry.resolution else ""
        why = unavailable_reason(entry, _failures=failures)
        found = None if why else local_file(entry)
        if why:
            marked += 1
            mark = f"  (cannot be downloaded: {why})"
        elif found is not None:
            ready.append(name)
            where = "in the working directory" if _workdir_file(entry) is not None else "downloaded"
            mark = f"  (works here: {', '.join(filter(None, [where, size, _file_size(found)]))})"
        else:
            mark = f"  ({', '.join(filter(None, [size, 'downloads on first use']))})"
        print(f"{name}{mark}")
    if marked:
        print(
            "To use a style marked 'cannot be downloaded': download its file in a browser, then run: "
            "lsd-jax styles --add NAME FILE"
        )
    print(f"Work on this machine now, offline: {', '.join(ready)} ({len(ready)} of {len(cat) + 1} styles).")


def _file_size(path: Path) -> str:
    """A file's size (a folder's: its files'), e.g. "364 MB"; empty when it cannot be read."""
    try:
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        n = sum(f.stat().st_size for f in files)
    except OSError:
        return ""
    return f"{n / 1e6:.0f} MB" if n >= 10e6 else f"{n / 1e6:.1f} MB"


def find_style(name: str) -> StyleEntry:
    """The entry for ``name`` (case-insensitive, punctuation-tolerant); StyleError with suggestions."""
    if not isinstance(name, str):
        raise StyleError(f"A style name must be a string, got {type(name).__name__}.")
    cat = load_catalogue()
    key = _norm(name)
    if key in cat:
        return cat[key]
    loose = {_loose(n): n for n in cat}
    if _loose(key) and _loose(key) in loose:
        return cat[loose[_loose(key)]]
    close = [n for n in sorted(cat) if key and key in n]  # 'faces' -> every 'faces (...)'
    close += [n for n in difflib.get_close_matches(key, list(cat), n=5, cutoff=0.6) if n not in close]
    close = close[:6]
    hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    raise StyleError(
        f"Unknown style {name!r}.{hint} Run `lsd-jax styles` to list all {len(cat)} styles (and which work on this "
        "machine), or `lsd-jax styles --add NAME FILE` to add your own."
    )


def style_path(name: str, progress: bool = True) -> Path:
    """The local ``.pkl`` of style ``name``, downloading it into ``styles_dir()`` first if needed.

    A ``<name>.pkl`` in the working directory is used as is (as in LSD); local entries are returned in place
    (after a checksum check when the entry has one). Remote entries try each mirror in turn; the file is verified,
    renamed atomically and cached, so later calls make no request. Raises StyleError (unknown name, an entry
    marked unavailable) or DownloadError whose message ends with what to do, in one line.
    """
    entry = find_style(name)
    here = _workdir_file(entry)
    if here is not None:
        if entry.sha256 and sha256_file(here) != entry.sha256:
            raise StyleError(
                f"{here} does not match style {entry.name!r}'s sha256 {entry.sha256}; rename or remove "
                "it to use the catalogue's file."
            )
        return here
    if entry.is_local:
        path = local_path(entry.url)
        if not path.exists():  # a file, or a folder (a BigGAN-deep checkpoint) used in place
            raise StyleError(
                f"Style {entry.name!r} points at {path}, which does not exist. Fix it with "
                f"add_style({entry.name!r}, NEW_PATH_OR_URL, overwrite=True)."
            )
        if entry.sha256 and sha256_file(path) != entry.sha256:
            raise StyleError(f"Style {entry.name!r}: {path} does not match the catalogue's sha256 {entry.sha256}.")
        return path
    if entry.unavailable:
        raise StyleError(f"Style {entry.name!r} cannot be used: {entry.unavailable}.")
    dest = _cache_file(entry)
    if entry.beside and not dest.is_file():  # the small files first (their absence fails fast), the weights last
        for name, urls in entry.beside:
            _fetch_beside(entry, name, urls, dest.parent / name, progress)
    errors: list[DownloadError] = []
    for url in entry.urls:
        try:
            path = download(url, dest, sha256=entry.sha256, progress=progress)
            _reject_html(path, entry, url)
        except DownloadError as e:
            if e.disk:
                raise
            if e.reason.startswith("the host name could not be resolved"):  # the menus mark it from now on
                PROBES.record(url, f"no network (cannot look up {_host(url)})")
            errors.append(e)
            continue
        _update_failures(entry.name, None)
        return path
    lasting = [e.unavailable for e in errors if e.unavailable]
    reasons = "; ".join(
        f"{u}: {e.reason}" if len(errors) > 1 else e.reason for u, e in zip(entry.urls, errors, strict=True)
    )
    if len(lasting) == len(errors):  # every mirror failed for good: mark it (a quota only for a day)
        kind = "quota" if "quota" in lasting else lasting[0]
        with contextlib.suppress(OSError):
            _update_failures(entry.name, {"reason": reasons, "kind": kind, "time": time.time()})
    err = DownloadError(
        f"Cannot download style {entry.name!r} ({reasons}). {_instruction(entry)}",
        reason=reasons,
        unavailable=lasting[0] if len(lasting) == len(errors) else None,
    )
    # a web visitor cannot run a command on the server: what they can do instead
    err.visitor_message = f"Cannot download style {entry.name!r} ({reasons}). {VISITOR_ADVICE}"  # type: ignore[attr-defined]
    raise err


def _install_beside(entry: StyleEntry, src: Path, progress: bool) -> Path:
    """For :func:`install_style_file` of a two-file entry: copy the files beside the weights from ``src``'s folder
    into the entry's cache folder; returns the weights' path (``src``, or the folder's only ``.bin``)."""
    folder = src if src.is_dir() else src.parent
    weights = src
    if src.is_dir():
        bins = sorted(folder.glob("*.bin"))
        if len(bins) != 1:
            raise StyleError(
                f"Cannot install {src} as style {entry.name!r}: the folder must hold one .bin file (the "
                f"weights), it holds {len(bins)}."
            )
        weights = bins[0]
    dest = _cache_file(entry).parent
    for name, _ in entry.beside:
        if not (folder / name).is_file():
            raise StyleError(f"Cannot install {src} as style {entry.name!r}: {name} is missing beside the weights.")
        for p in (dest / name, dest / f"{name}.sha256"):  # replace, never keep an older copy
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        try:
            download(folder / name, dest / name, progress=progress, binary=not name.endswith(".json"))
        except DownloadError as e:
            raise StyleError(f"Cannot install {folder / name} for style {entry.name!r}: {e.reason}.") from None
    return weights


def _fetch_beside(entry: StyleEntry, name: str, urls: tuple[str, ...], dest: Path, progress: bool) -> None:
    """One file of a folder entry (e.g. BigGAN's config.json), from the first mirror that serves it."""
    errors = []
    for url in urls:
        try:
            download(url, dest, progress=progress, binary=not name.endswith(".json"))  # config.json is JSON
            return
        except DownloadError as e:
            errors.append(str(e))
    err = DownloadError(f"Cannot get {name} of style {entry.name!r}: " + "; ".join(errors))
    err.visitor_message = f"Cannot get {name} of style {entry.name!r}. {VISITOR_ADVICE}"  # type: ignore[attr-defined]
    raise err


def _reject_html(path: Path, entry: StyleEntry, url: str) -> None:
    """A web page saved as a model (Drive quota/consent page, login wall) must not be used. ``download`` refuses
    them before caching; this drops one cached by an older lsd-jax."""
    kind = sniff_file(path)
    if kind:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{url} returned {kind}, a web page, not a model file", reason=f"a web page ({kind})", unavailable="dead"
        )


def install_style_file(name: str, file: str | os.PathLike, *, progress: bool = True) -> Path:
    """Use ``file`` (e.g. downloaded in a browser) as catalogue style ``name``'s file: it is checked (not a web page;
    the entry's sha256 when it has one) and copied into the style cache, so the style works from any folder, with
    its catalogue details (format, licence, author) kept. Returns the cached path. ``lsd-jax styles --add NAME FILE``
    does this for a name already in the catalogue."""
    entry = find_style(name)
    src = local_path(file)
    if entry.beside:  # a two-file model: FILE is its folder (or the weights, with the other files beside them)
        src = _install_beside(entry, src, progress)
    if not src.is_file():
        raise StyleError(f"Cannot install {src} as style {entry.name!r}: no such file.")
    if entry.is_local:
        raise StyleError(
            f"Style {entry.name!r} is your own local file ({local_path(entry.url)}); change it with "
            f"add_style({entry.name!r}, {str(src)!r}, overwrite=True)."
        )
    dest = _cache_file(entry)
    for p in (dest, dest.with_name(dest.name + ".sha256")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    try:
        download(src, dest, sha256=entry.sha256, progress=progress)
    except DownloadError as e:
        raise StyleError(f"Cannot install {src} as style {entry.name!r}: {e.reason}.") from None
    _update_failures(entry.name, None)
    return dest


# ------------------------------------------------------------------------------------ user catalogue


def add_style(
    name: str,
    url: str | os.PathLike,
    *,
    sha256: str | None = None,
    format: str | None = None,
    resolution: int | None = None,
    conditional: bool | None = None,
    c_dim: int | None = None,
    licence: str = "unknown",
    author: str | None = None,
    dataset: str | None = None,
    homepage: str | None = None,
    notes: str | None = None,
    overwrite: bool = False,
) -> StyleEntry:
    """Add (or with ``overwrite=True`` replace) a style in the user catalogue; returns the entry.

    ``url`` is an http(s) URL, a ``file://`` URL or a local path (stored as an absolute ``file://``
    URL and used in place). A name that already exists (built-in or user) needs ``overwrite=True``;
    replacing the URL or checksum drops the previously cached download. The file is written
    atomically (temp file + rename) under a lock, so concurrent ``add_style`` calls do not lose entries.
    """
    key = _norm(name) if isinstance(name, str) else ""
    if not key:
        raise StyleError("add_style needs a non-empty style name.")
    if isinstance(url, os.PathLike) or is_local(str(url)):
        src = local_path(url).resolve()
        url = src.as_uri()
    url = str(url).strip()
    if not url:
        raise StyleError("add_style needs a URL or a local path.")
    entry = _validated(
        StyleEntry(
            name=key,
            urls=(url,),
            format=format,
            resolution=resolution,
            conditional=conditional,
            c_dim=c_dim,
            licence=licence,
            sha256=sha256,
            source="user",
            author=author,
            dataset=dataset,
            homepage=homepage,
            notes=notes,
        ),
        f"add_style({name!r})",
    )
    path = user_catalogue_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock"), path.name, progress=False):
        user = _load_user(path)
        old = user.get(key) or _builtin().get(key)
        if old is not None and not overwrite:
            where = "your catalogue" if key in user else "the built-in catalogue"
            raise StyleError(
                f"A style named {key!r} is already in {where}; pass overwrite=True to replace it (or, "
                f"to supply its file, install_style_file({key!r}, FILE))."
            )
        user[key] = entry
        _write_user(path, user)
    if old is not None and (old.urls != entry.urls or old.sha256 != entry.sha256):
        _drop_cached(entry)  # same name, same cache file: never serve the old download for the new source
    return entry


def _drop_cached(entry: StyleEntry) -> None:
    f = _cache_file(entry)
    for p in (f, f.with_name(f.name + ".sha256")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def remove_style(name: str) -> None:
    """Remove a style from the user catalogue (built-in styles cannot be removed) and its cached
    download (so a built-in style it was shadowing is fetched afresh from its own URL)."""
    key = _norm(name)
    path = user_catalogue_path()
    with file_lock(path.with_name(path.name + ".lock"), path.name, progress=False):
        user = _load_user(path)
        if key not in user:
            raise StyleError(f"{key!r} is not in your style catalogue {path}.")
        removed = user.pop(key)
        _write_user(path, user)
    if not removed.is_local:
        _drop_cached(removed)


def _write_user(path: Path, user: dict[str, StyleEntry]) -> None:
    doc = {"schema": SCHEMA, "styles": [e.to_json() for e in sorted(user.values(), key=lambda e: e.name)]}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
