"""Converted weights on disk: ``.safetensors`` files and the conversion cache.

A converted generator is ONE ``.safetensors`` file: every tensor under its flat dotted Flax path (which is the
original network's name, e.g. ``synthesis.b64.conv0.affine.weight``), float32, and in the header's metadata
``format`` = ``"lsd-jax"``, ``format_version``, ``source_sha256`` and ``config`` (the generator config as JSON).
It is read with no pickle: the header is parsed and checked here (its size against the file's, every tensor's
name and shape against the model the config describes, every byte range inside the file) BEFORE any tensor is
allocated, so a corrupt or hostile file is a clear :class:`~lsd_jax.errors.ConversionError` at once; then the
``safetensors`` package's NumPy API reads the tensors. Weights that are not finite (NaN/inf) give a warning
naming the tensor (they would render black frames).

:func:`load` ``(path) -> (config, state)`` reads a ``.safetensors`` file directly, and converts an NVIDIA pickle
once: the result is cached by the pickle's sha256 under ``paths.cache_dir() / "converted"`` as
``<sha256>.f<format>c<converter>.safetensors`` (versions in the name, so a converter fix never serves a stale
conversion; written atomically; an entry that fails to load, or whose ``source_sha256`` is not its name's, is
deleted and rebuilt). :func:`convert` is
``lsd-jax convert IN.pkl OUT.safetensors``. A ``.npz`` of the old format is refused with what to do.

A BigGAN-deep checkpoint (a folder with ``config.json`` + ``pytorch_model.bin``, or the ``.bin`` with its config
beside it; :mod:`converters.biggan`) is converted and cached the same way, keyed by the sha256 of BOTH files
(:func:`biggan_sha256`), so a changed config.json is never served a stale conversion.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from converters import biggan as conv_biggan
from converters import parse
from converters import sg1 as conv_sg1
from converters import sg2 as conv_sg2
from converters import sg3 as conv_sg3

from ..errors import ConversionError, StyleError, from_converter
from .paths import atomic_write, cache_dir, sha256_file

FORMAT = "lsd-jax"
FORMAT_VERSION = 2  # 1 was the .npz format
#: Bump when a conversion rule changes: cache entries written by older converters are then ignored (rebuilt).
CONVERTER_VERSION = 1
SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 64 << 20  # a header describes a few thousand tensors: far below this
_ITEMSIZE = {"F16": 2, "F32": 4, "F64": 8}
_CHUNK = 1 << 20


def converted_dir() -> Path:
    """Where cached conversions live (created on demand)."""
    d = cache_dir() / "converted"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_path(sha256: str) -> Path:
    return converted_dir() / f"{sha256}.f{FORMAT_VERSION}c{CONVERTER_VERSION}{SUFFIX}"


# ---------------------------------------------------------------------------------------------------------------
# Configs and expected tensors


def check_config(config: Any, source: str) -> dict:
    """``config`` validated and normalised by the converter of its family (a :class:`ConversionError` if not)."""
    if not isinstance(config, dict):
        raise ConversionError(f"{source}: missing generator config")
    with from_converter():
        try:
            if config.get("family") == "stylegan3":
                checked = conv_sg3.finish_config(config)
            elif config.get("family") == conv_sg1.FAMILY:
                checked = conv_sg1.finish_config(config, source)
            elif config.get("family") == conv_biggan.FAMILY:
                checked = conv_biggan.finish_config(config, source)
            elif config.get("family", "stylegan2") == "stylegan2":
                checked = conv_sg2.finish_config(config, config["mapping_kwargs"], config["synthesis_kwargs"])
            else:
                raise ConversionError(f"{source}: a {config.get('family')!r} generator is not supported")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConversionError(f"{source}: malformed generator config ({exc})") from None
    if checked != config:
        raise ConversionError(f"{source}: malformed generator config")
    return checked


def _converter(config: dict) -> Any:
    return {"stylegan3": conv_sg3, conv_sg1.FAMILY: conv_sg1, conv_biggan.FAMILY: conv_biggan}.get(
        config.get("family"), conv_sg2
    )


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of the generator ``config`` describes: original name → shape, in ``state_dict()`` order."""
    module = _converter(config)
    with from_converter():
        return module.expected_shapes(config)


def check_state(config: dict, state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    module = _converter(config)
    with from_converter():
        return module.check_state(config, state, source)


def warn_non_finite(state: dict[str, np.ndarray], source: str) -> None:
    """Warn, naming the tensors, when weights are NaN or infinite (the video would be black or garbage)."""
    bad = [k for k, v in state.items() if np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warnings.warn(
            f"lsd-jax: {source} has non-finite weights (NaN or inf) in {', '.join(bad[:3])}{more}: "
            "its images will be black or garbage; re-export or re-convert the model",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------------------------
# The .safetensors format


def save(path: str | Path, config: dict, state: dict[str, np.ndarray], *, source_sha256: str | None = None) -> Path:
    """Write ``(config, state)`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    from safetensors.numpy import save as st_save

    path = Path(path)
    state = check_state(config, {k: np.asarray(v) for k, v in state.items()}, "generator to save")
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "source_sha256": source_sha256 or "",
        "config": json.dumps(config, sort_keys=True),
    }
    tensors = {k: np.require(v, requirements="C") for k, v in state.items()}
    # the data section's checksum (its layout depends on the tensors only): a flipped byte is caught on load
    first = st_save(tensors, metadata=meta)
    (n,) = struct.unpack("<Q", first[:8])
    meta["data_sha256"] = hashlib.sha256(memoryview(first)[8 + n :]).hexdigest()
    data = st_save(tensors, metadata=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))
    return path


def read_header(path: Path) -> tuple[dict[str, Any], dict[str, str], int]:
    """(tensor entries, metadata, offset of the data section) of a safetensors file, every byte range checked
    against the file's size. Reads only the header."""
    name = path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConversionError(f"{name} is too short to be a .safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > MAX_HEADER_BYTES:
                raise ConversionError(
                    f"{name} is corrupt or not a .safetensors file: its header claims {n} bytes but the file has {size}"
                )
            raw = f.read(n)
    except OSError as exc:
        raise StyleError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ConversionError(f"{name} is corrupt or not a .safetensors file (its header is not JSON)") from None
    except RecursionError:  # json's decoder recurses once per level: a header of 100 000 '[' is a few bytes
        raise ConversionError(
            f"{name} is corrupt or not a .safetensors file (its header is nested too deeply)"
        ) from None
    if not isinstance(header, dict):
        raise ConversionError(f"{name} is corrupt or not a .safetensors file (malformed header)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ConversionError(f"{name}: malformed metadata")
    data_size = size - 8 - n
    for key, entry in header.items():
        ok = (
            isinstance(entry, dict)
            and entry.get("dtype") in _ITEMSIZE
            and isinstance(entry.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(isinstance(o, int) for o in entry["data_offsets"])
        )
        if not ok:
            raise ConversionError(f"{name}: malformed entry for tensor {key!r} (dtype must be a float type)")
        begin, end = entry["data_offsets"]
        nbytes = math.prod(entry["shape"]) * _ITEMSIZE[entry["dtype"]]
        if not 0 <= begin <= end <= data_size or end - begin != nbytes:
            raise ConversionError(
                f"{name} is truncated or corrupt: tensor {key!r} claims bytes {begin}..{end} of "
                f"{data_size} (it needs {nbytes})"
            )
    return header, meta, 8 + n


def load_safetensors(path: str | Path, *, source_sha256: str | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a converted generator written by :func:`save` / :func:`convert` / the cache. Never unpickles.
    ``source_sha256``: the file must say it was converted from the file with this sha256 (a cache entry: one
    copied or renamed over another's name is then refused, not served as the wrong model)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path).expanduser()
    if not path.is_file():
        raise StyleError(f"converted style file not found: {path}")
    header, meta, data_start = read_header(path)
    name = path.name
    if meta.get("format") != FORMAT:
        raise ConversionError(f"{name} is a .safetensors file but not an lsd-jax converted generator")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ConversionError(
            f"{name} was written by another lsd-jax version (format {meta.get('format_version')!r},"
            f" this one reads {FORMAT_VERSION}); convert the .pkl again with `lsd-jax convert`"
        )
    if source_sha256 is not None and meta.get("source_sha256") != source_sha256:
        raise ConversionError(
            f"{name} was converted from another file (its source_sha256 is not {source_sha256[:12]}…)"
        )
    try:
        config = json.loads(meta.get("config", ""))
    except (ValueError, RecursionError):
        raise ConversionError(f"{name}: its generator config is not JSON (or is nested too deeply)") from None
    config = check_config(config, name)
    expected = expected_shapes(config)
    for key, entry in header.items():
        if key not in expected:
            raise ConversionError(f"{name}: unknown tensor {key!r} (not part of this generator)")
        if tuple(entry["shape"]) != expected[key]:
            raise ConversionError(
                f"{name}: tensor {key!r} has shape {tuple(entry['shape'])}, but the generator needs {expected[key]}"
            )
    for key in expected:
        if key not in header:
            raise ConversionError(f"{name} lacks tensor {key!r}")
    if "data_sha256" in meta and sha256_file(path, start=data_start) != meta["data_sha256"]:
        raise ConversionError(f"{name} is corrupt: its tensor data does not match its checksum")
    try:
        with safe_open(str(path), framework="np") as f:
            state = {k: np.asarray(f.get_tensor(k), np.float32) for k in expected}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ConversionError(f"{name} is corrupt ({type(exc).__name__}: {exc})") from None
    state = check_state(config, state, f"converted file {name}")
    warn_non_finite(state, name)
    return config, state


# ---------------------------------------------------------------------------------------------------------------
# Pickles, cached


def _magic(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError:
        return b""


def _load_entry(entry: Path, sha: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The cached conversion of the source whose sha256 is ``sha`` (the entry's name), or None (a missing or
    unusable entry, which is deleted)."""
    if not entry.is_file():
        return None
    try:
        return load_safetensors(entry, source_sha256=sha)
    except StyleError as exc:
        warnings.warn(
            f"lsd-jax: discarding a corrupt conversion cache entry {entry.name} ({exc}); rebuilding", stacklevel=3
        )
        try:
            entry.unlink()
        except OSError:
            pass
        return None


def load_with_hash(path: str | Path, *, isolated: bool = False) -> tuple[dict, dict[str, np.ndarray], str]:
    """:func:`load`, also returning the sha256 of the bytes the result came from."""
    p = Path(path).expanduser()
    if is_biggan_checkpoint(p):
        return load_biggan(p, isolated=isolated)
    if p.suffix.lower() == SUFFIX:
        sha = sha256_file(p, what="style file")
        return (*load_safetensors(p), sha)
    if p.suffix.lower() == ".npz" and p.is_file():
        raise StyleError(
            f"{p.name} is a converted generator in the old .npz format, which this lsd-jax no longer "
            f"reads: convert the original .pkl again with `lsd-jax convert model.pkl "
            f"{p.with_suffix(SUFFIX).name}`"
        )
    sha = sha256_file(p, what="style file")
    if _magic(p) == b"PK\x03\x04":
        raise ConversionError(
            f"'{p.name}' is a zip archive (a torch.save checkpoint or an .npz?), not an NVIDIA "
            f"network pickle or an lsd-jax converted {SUFFIX} file"
        )
    hit = _load_entry(cache_path(sha), sha)
    if hit is not None:
        return (*hit, sha)
    if isolated:
        from .sandbox import convert_isolated

        config, state = convert_isolated(p)
        config = check_config(config, f"'{p.name}'")
        state = check_state(config, state, f"'{p.name}'")
    else:
        with from_converter():
            data = parse.read_file(p)
            sha = hashlib.sha256(data).hexdigest()  # the bytes converted (the file may have changed meanwhile)
            config, state = parse.parse_bytes(data, source=f"'{p.name}'")
        del data
    warn_non_finite(state, f"'{p.name}'")
    try:
        save(cache_path(sha), config, state, source_sha256=sha)
    except OSError as exc:
        warnings.warn(f"lsd-jax: could not write the conversion cache ({exc}); continuing uncached", stacklevel=2)
    return config, state, sha


def load(path: str | Path, *, isolated: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` of an NVIDIA StyleGAN2 / StyleGAN2-ADA (PyTorch or TF) or StyleGAN3 pickle (converted
    once, cached), of a BigGAN-deep checkpoint (folder or ``.bin``; see :func:`load_biggan`) or of a converted
    ``.safetensors`` file.

    ``state``: ``G_ema``'s torch ``state_dict()`` (every parameter and buffer) as float32 numpy arrays in torch
    layout, in ``state_dict()`` order. ``config``: NVIDIA's Generator init kwargs with defaults filled in (see
    :mod:`converters.sg2` and :mod:`converters.sg3`). No code from a pickle runs (:mod:`converters.safe_pickle`).
    ``isolated``: a pickle or BigGAN checkpoint not converted yet is converted in a separate process with hard limits
    (:func:`lsd_jax.store.sandbox.convert_isolated`: what a server does with uploads, so a hostile file cannot hang or
    crash it); the result is cached the same way.
    """
    config, state, _ = load_with_hash(path, isolated=isolated)
    return config, state


def convert(path_in: str | Path, path_out: str | Path) -> Path:
    """``lsd-jax convert IN.pkl OUT.safetensors``: write the converted generator to ``path_out`` (atomically). The
    output is checked first: a writable ``.safetensors`` path that is not the input (same file or a link to it)."""
    from ..errors import OutputError
    from ..media.outputs import writable_output

    if isinstance(path_out, (str, os.PathLike)):
        with contextlib.suppress(OSError):  # a folder that cannot be made is reported by writable_output
            Path(path_out).expanduser().parent.mkdir(parents=True, exist_ok=True)
    out = writable_output(path_out, [path_in], what="converted file")
    if out.suffix.lower() != SUFFIX:
        raise StyleError(f"the converted file must end in {SUFFIX}, got {out.name!r}")
    config, state, sha = load_with_hash(path_in)
    try:
        return save(out, config, state, source_sha256=sha)
    except OSError as e:
        raise OutputError(f"cannot write the converted file {out}: {e.strerror or e}") from None


def clear_cache() -> int:
    """Delete every cached conversion; returns how many files were removed."""
    n = 0
    for f in converted_dir().glob(f"*{SUFFIX}"):
        try:
            f.unlink()
            n += 1
        except OSError:
            pass
    return n


# ---------------------------------------------------------------------------------------------------------------
# BigGAN-deep checkpoints (config.json + pytorch_model.bin), cached by both files' bytes


def is_biggan_checkpoint(path: Path) -> bool:
    """Whether ``path`` names a BigGAN-deep checkpoint: a folder (the only folder format) or a ``.bin`` file."""
    return conv_biggan.is_checkpoint(path)


def _biggan_hash(config_data: bytes, weights: bytes | Path) -> str:
    """sha256 over both files (domain-separated, the config's length first): the conversion cache's key."""
    h = hashlib.sha256(b"lsd-jax biggan-deep\n")
    h.update(struct.pack("<Q", len(config_data)))
    h.update(config_data)
    if isinstance(weights, bytes):
        h.update(weights)
        return h.hexdigest()
    try:
        with open(weights, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise StyleError(f"cannot read {weights}: {exc.strerror or exc}") from None
    return h.hexdigest()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StyleError(f"cannot read {path}: {exc.strerror or exc}") from None


def biggan_sha256(path: str | Path) -> str:
    """The conversion cache key of a BigGAN-deep checkpoint (folder or ``.bin``): sha256 of config.json and
    pytorch_model.bin together (streamed; the weights are never held in memory whole)."""
    with from_converter():
        config_path, weights_path = conv_biggan.resolve_checkpoint(path)
    return _biggan_hash(_read_bytes(config_path), weights_path)


def load_biggan(path: str | Path, *, isolated: bool = False) -> tuple[dict, dict[str, np.ndarray], str]:
    """``(config, state, sha256)`` of a BigGAN-deep checkpoint folder (or its ``.bin`` with the config.json beside
    it, also under the package's cache names ``<model>-pytorch_model.bin`` / ``<model>-config.json``): converted
    once (:func:`converters.biggan.parse_biggan_bytes`, spectral norm folded), then read from the cache.
    ``isolated``: converted in a separate, limited process (:func:`lsd_jax.store.sandbox.convert_isolated`; a
    catalogue download has no checksum, so a server treats it like an upload)."""
    p = Path(path).expanduser()
    with from_converter():
        config_path, weights_path = conv_biggan.resolve_checkpoint(p)
    config_data = _read_bytes(config_path)
    sha = _biggan_hash(config_data, weights_path)
    hit = _load_entry(cache_path(sha), sha)
    if hit is not None:
        return (*hit, sha)
    if isolated:
        from .sandbox import convert_isolated

        config, state = convert_isolated(weights_path)  # the child finds the same config.json beside it
        config = check_config(config, f"'{weights_path.name}'")
        state = check_state(config, state, f"'{weights_path.name}'")
    else:
        data = _read_bytes(weights_path)
        sha = _biggan_hash(config_data, data)  # the bytes actually converted
        with from_converter():
            config, state = conv_biggan.parse_biggan_bytes(config_data, data, config_path.name, weights_path.name)
        del data
    try:
        save(cache_path(sha), config, state, source_sha256=sha)
    except OSError as exc:
        warnings.warn(f"lsd-jax: could not write the conversion cache ({exc}); continuing uncached", stacklevel=2)
    return config, state, sha
