"""The style catalogue: named pretrained StyleGAN models, where to get them, and the local cache.

The built-in catalogue is a data file shipped with the package (``lsd_jax/data/styles.json``): LSD's
own catalogue (justinpinkney/awesome-pretrained-stylegan2, names kept, lower-cased) plus NVIDIA's
StyleGAN2 / StyleGAN2-ADA / StyleGAN3 releases. The user's catalogue (``$LSD_JAX_USER_STYLES``, else
``cache_dir()/"user_styles.json"``) is merged on top; its entries win on a name clash.

Unlike LSD, nothing here touches the network except :func:`style_path` when the file is not cached:
:func:`show_styles` and :func:`load_catalogue` only read local files.

BigGAN-deep (``lsd_jax/data/biggan_styles.json``, the pytorch-pretrained-biggan package's public files) is a
model of TWO files: its entries have ``"format": "biggan-deep"``, ``urls`` for the weights and ``"beside":
{"config.json": [urls]}``; such an entry is cached as a folder (``styles_dir()/<slug>/``) holding the weights
(named as in the URL) and each file beside them, and :func:`style_path` returns the weights' path.

Both files share one schema::

    {"schema": 1, "styles": [{"name": "wikiart", "urls": ["https://..."], "format": "stylegan2-tf",
      "resolution": 1024 | null, "conditional": true | false | null, "c_dim": 10 | null,
      "licence": "...", "sha256": "64 hex" | null, ...optional: source, author, dataset, homepage, notes,
      beside: {"file name": ["https://...", ...]}}]}
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lsd_jax.download import download, file_lock, is_local, local_path, sha256_file, sniff_page
from lsd_jax.errors import DownloadError, StyleError
from lsd_jax.paths import atomic_write, cache_dir

__all__ = [
    "FORMATS",
    "USER_STYLES_ENV",
    "StyleEntry",
    "add_style",
    "find_style",
    "is_downloaded",
    "load_catalogue",
    "remove_style",
    "show_styles",
    "style_path",
    "styles_dir",
    "user_catalogue_path",
]

#: Pickle formats the converters understand.
FORMATS = ("stylegan2-tf", "stylegan2-ada-pytorch", "stylegan3", "biggan-deep")
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
            raise StyleError(f"{label}: 'beside' file name {name!r} must be a plain file name (letters, digits, "
                             ". _ -).")
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


def is_downloaded(entry: StyleEntry) -> bool:
    """Is the style's file available locally (cached download, or an existing local file)? No network."""
    if entry.is_local:
        return local_path(entry.url).is_file()
    return _cache_file(entry).is_file()


def show_styles() -> None:
    """Print the names of all styles, lower-cased, one per line, like LSD's ``show_styles()``.

    Styles whose file is already on disk are marked ``(downloaded)``. Reads only local files.
    """
    cat = load_catalogue()
    print("default  (embedded CPPN, no download)")
    for name in sorted(cat):
        mark = "  (downloaded)" if is_downloaded(cat[name]) else ""
        print(f"{name}{mark}")


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
        f"Unknown style {name!r}.{hint} Run lsd_jax.catalogue.show_styles() to list all "
        f"{len(cat)} styles, or register your own with lsd_jax.catalogue.add_style(name, url_or_path)."
    )


def style_path(name: str, progress: bool = True) -> Path:
    """The local ``.pkl`` of style ``name``, downloading it into ``styles_dir()`` first if needed.

    Local entries are returned in place (after a checksum check when the entry has one). Remote
    entries try each mirror in turn; the file is verified, renamed atomically and cached, so later
    calls make no request. Raises StyleError (unknown name) or DownloadError (all mirrors failed).
    """
    entry = find_style(name)
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
    dest = _cache_file(entry)
    if entry.beside and not dest.is_file():  # the small files first (their absence fails fast), the weights last
        for name, urls in entry.beside:
            _fetch_beside(entry, name, urls, dest.parent / name, progress)
    errors: list[str] = []
    for url in entry.urls:
        try:
            path = download(url, dest, sha256=entry.sha256, progress=progress)
        except DownloadError as e:
            errors.append(str(e))
            continue
        _reject_html(path, entry, url)
        return path
    if len(errors) == 1:
        raise DownloadError(f"Cannot get style {entry.name!r}. {errors[0]}")
    raise DownloadError(
        f"Cannot get style {entry.name!r}: all {len(errors)} mirrors failed:\n" + "\n".join(f"  - {m}" for m in errors)
    )


def _fetch_beside(entry: StyleEntry, name: str, urls: tuple[str, ...], dest: Path, progress: bool) -> None:
    """One file of a folder entry (e.g. BigGAN's config.json), from the first mirror that serves it."""
    errors = []
    for url in urls:
        try:
            download(url, dest, progress=progress, binary=not name.endswith(".json"))  # config.json is JSON
            return
        except DownloadError as e:
            errors.append(str(e))
    raise DownloadError(f"Cannot get {name} of style {entry.name!r}: " + "; ".join(errors))


def _reject_html(path: Path, entry: StyleEntry, url: str) -> None:
    """A web page saved as a model (Drive quota/consent page, login wall) must not be used. ``download`` refuses
    them before caching; this drops one cached by an older lsd-jax."""
    with open(path, "rb") as f:
        kind = sniff_page(f.read(4096))
    if kind:
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"Cannot get style {entry.name!r}: {url} returned {kind}, a web page, not a model file (a download "
            "quota, consent or sign-in page?). Download it in a browser, then register the file with "
            f"add_style({entry.name!r}, '/path/to/file.pkl', overwrite=True)."
        )


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
            name=key, urls=(url,), format=format, resolution=resolution, conditional=conditional, c_dim=c_dim,
            licence=licence, sha256=sha256, source="user", author=author, dataset=dataset, homepage=homepage,
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
            raise StyleError(f"A style named {key!r} is already in {where}; pass overwrite=True to replace it.")
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
