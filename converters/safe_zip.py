"""Zip-based model files (``.npz``, ``torch.save`` zip checkpoints) checked BEFORE anything is inflated.

A zip member can inflate about a thousand times (a few megabytes of deflated zeros become gigabytes), and an
``.npy`` member's header can claim any shape (``numpy`` allocates what the header says before reading the data).
:func:`check_archive` reads only the central directory and refuses an archive whose members would inflate beyond
the :class:`~converters.limits.Limits` (per member: ``uncompressed <= max_zip_ratio * compressed + slack``; in all:
the load's byte budget), or that uses anything but stored/deflated members. :func:`check_npz` also reads each
``.npy`` header (a few hundred bytes) and requires the array it describes to be exactly the member's declared size.
:func:`read_member` reads one member and requires its actual size to be its declared size. Errors are
:class:`~converters.errors.ConversionError` with one-line messages.
"""

from __future__ import annotations

import math
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import ConversionError, SourceError
from .limits import Budget, Limits, human_bytes, short_repr

__all__ = ["check_archive", "check_npz", "check_spans", "read_member"]

_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_NPY_HEADER_MAX = 1 << 16
_LOCAL = struct.Struct("<4s22xHH")  # a local file header: signature, ..., name length, extra length (30 bytes)


def _text(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


def _open(path: str | Path | IO[bytes], where: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise SourceError(f"{where} not found") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ConversionError(f"{where} is not a readable zip archive ({type(exc).__name__}: {_text(exc)})") from None


def _archive_size(path: str | Path | IO[bytes]) -> int:
    if isinstance(path, (str, Path)):
        return Path(path).stat().st_size
    pos = path.tell()
    size = path.seek(0, 2)
    path.seek(pos)
    return size


def check_spans(f: IO[bytes], infos: list[zipfile.ZipInfo], where: str) -> None:
    """Refuse members whose bytes overlap (``f``: the open archive). A zip's central directory may point several
    members at the same bytes (each member's data covering the next ones' headers and one shared block): every member
    then reads as a full-size copy of that block, so a few MB would inflate to gigabytes while each member looks
    honest. Each member's local header is read (30 bytes) to find where its data really starts."""
    spans = []
    for info in infos:
        f.seek(info.header_offset)
        head = f.read(_LOCAL.size)
        if len(head) < _LOCAL.size or _LOCAL.unpack(head)[0] != b"PK\x03\x04":
            raise ConversionError(
                f"{where}: member {short_repr(info.filename, 80)} has no local header (corrupt or hostile)"
            )
        _, name_len, extra_len = _LOCAL.unpack(head)
        start = info.header_offset + _LOCAL.size + name_len + extra_len
        spans.append((info.header_offset, start + info.compress_size, info.filename))
    spans.sort()
    for (_, end, name), (begin, _, other) in zip(spans, spans[1:]):
        if begin < end:
            raise ConversionError(
                f"{where}: members {short_repr(name, 60)} and {short_repr(other, 60)} overlap "
                "(their bytes are shared: a zip bomb?)"
            )


def check_archive(
    path: str | Path | IO[bytes], *, limits: Limits | None = None, where: str | None = None
) -> list[zipfile.ZipInfo]:
    """The members of the zip at ``path``, after checking their DECLARED sizes (nothing is inflated) and that no two
    members share bytes (:func:`check_spans`)."""
    limits = limits or Limits()
    where = where or (f"'{Path(path).name}'" if isinstance(path, (str, Path)) else "the zip archive")
    budget = Budget(limits, _archive_size(path), where)
    with _open(path, where) as zf:
        infos = zf.infolist()
        if len(infos) <= limits.max_zip_members:
            check_spans(zf.fp, infos, where)
    if len(infos) > limits.max_zip_members:
        raise budget.refuse(f"it has {len(infos):,} members (the limit is {limits.max_zip_members:,})")
    for info in infos:
        name = short_repr(info.filename, 80)
        if info.compress_type not in _METHODS:
            raise ConversionError(
                f"{where}: member {name} uses zip compression method {info.compress_type}; only "
                "stored and deflated members are read"
            )
        if info.flag_bits & 0x1:
            raise ConversionError(f"{where}: member {name} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise ConversionError(
                f"{where}: stored member {name} says it is {info.file_size} bytes but holds "
                f"{info.compress_size} (corrupt or hostile)"
            )
        allowed = limits.max_zip_ratio * info.compress_size + limits.zip_ratio_slack
        if info.file_size > allowed:
            raise budget.refuse(
                f"member {name} would inflate from {human_bytes(info.compress_size)} to "
                f"{human_bytes(info.file_size)} (more than {limits.max_zip_ratio:g} times; a zip bomb?)"
            )
        budget.spend_bytes(info.file_size, f"its members ({name} and those before it)")
    return infos


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """The bytes of one member (checked by :func:`check_archive` first), requiring its actual inflated size to be
    its declared size: never reads more than declared + 1 bytes."""
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # CRC mismatch, truncated stream, ...
        raise ConversionError(
            f"{where}: member {short_repr(info.filename, 80)} is corrupt ({type(exc).__name__}: {_text(exc)})"
        ) from None
    if len(data) != info.file_size:
        raise ConversionError(
            f"{where}: member {short_repr(info.filename, 80)} inflates to {len(data)} bytes but "
            f"declares {info.file_size} (corrupt or hostile)"
        )
    return data


def _npy_header(f: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of an .npy stream, reading only its header."""
    from numpy.lib import format as npy

    major, _minor = npy.read_magic(f)
    if major == 1:
        shape, _fortran, dtype = npy.read_array_header_1_0(f, max_header_size=_NPY_HEADER_MAX)
    elif major in (2, 3):
        shape, _fortran, dtype = npy.read_array_header_2_0(f, max_header_size=_NPY_HEADER_MAX)
    else:  # pragma: no cover - read_magic accepts only what read_array_header_* can read
        raise ValueError(f"unsupported .npy version {major}")
    return shape, dtype, f.tell()


def check_npz(path: str | Path, *, limits: Limits | None = None, where: str | None = None) -> None:
    """:func:`check_archive`, plus: every ``.npy`` member's header describes a plain (non-object) array whose size
    is exactly the member's declared size, so ``numpy.load`` cannot be told to allocate more than the file holds."""
    where = where or f"'{Path(path).name}'"
    infos = check_archive(path, limits=limits, where=where)
    with _open(path, where) as zf:
        for info in infos:
            if not info.filename.endswith(".npy"):
                continue
            name = short_repr(info.filename, 80)
            try:
                with zf.open(info) as f:
                    shape, dtype, header = _npy_header(f)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, SyntaxError, TypeError) as exc:
                raise ConversionError(
                    f"{where}: member {name} is not a valid .npy array ({type(exc).__name__}: {_text(exc)})"
                ) from None
            if dtype.hasobject:
                raise ConversionError(f"{where}: member {name} holds Python objects; refused (nothing is unpickled)")
            need = header + math.prod(shape) * dtype.itemsize
            if need != info.file_size:
                raise ConversionError(
                    f"{where}: member {name} claims a {short_repr(tuple(shape))} {dtype} array "
                    f"({human_bytes(need - header)}) but holds {human_bytes(info.file_size - header)}; refused "
                    "(corrupt or hostile)"
                )
