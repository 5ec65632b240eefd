"""Zip-based model files are checked before anything inflates: declared sizes, inflation ratio, .npy headers vs
member sizes, actual vs declared sizes (issue 18). Hostile archives are opened in a bounded child process."""

from __future__ import annotations

import zipfile
from pathlib import Path

import hostile
import numpy as np
import pytest

from converters import Limits
from converters.errors import ConversionError
from converters.safe_zip import check_archive, check_npz, read_member

pytestmark = pytest.mark.timeout(300)

MEMORY_MB = 1024


def _bounded(target: str, path: Path, timeout: float = 60, memory_mb: int = MEMORY_MB) -> dict:
    report = hostile.run_bounded(target, str(path), memory_mb=memory_mb, timeout=timeout)
    assert report["error"] not in ("Timeout", "Crashed", "MemoryError"), report
    # refusals take milliseconds (10 s: generous, for a loaded machine); a bomb read through would hit the time-out
    assert report["seconds"] < 10 and report["maxrss_mb"] < 400, report
    assert "\n" not in report["message"] and len(report["message"]) < 600
    return report


@pytest.mark.slow
@pytest.mark.parametrize("inflated_mb", [48, 160])
def test_deflate_bomb_is_refused_before_inflating(tmp_path: Path, inflated_mb: int) -> None:
    path = hostile.deflate_bomb_npz(tmp_path / "bomb.npz", inflated_mb << 20)
    assert path.stat().st_size < inflated_mb << 20 >> 6  # ~1000x compression
    report = _bounded("hostile:check_npz", path)
    assert report["error"] == "ConversionError" and "would inflate from" in report["message"], report
    assert f"to {inflated_mb}.0 MB" in report["message"]


@pytest.mark.slow
def test_deflate_bomb_through_the_converted_file_loader(tmp_path: Path) -> None:
    """The real entry point (lsd_jax.store.weights.load) refuses an .npz (the old converted format) without opening
    it."""
    path = hostile.deflate_bomb_npz(tmp_path / "bomb.npz", 300 << 20)
    report = _bounded("hostile:load_converted", path, timeout=120, memory_mb=3072)  # it imports JAX (1.5 GB VM)
    assert report["error"] == "StyleError" and "lsd-jax convert" in report["message"], report


@pytest.mark.slow
@pytest.mark.parametrize("declared", [40 << 30, (1 << 32) - 2, 10 << 20])
@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_declared_size_that_lies_is_refused(tmp_path: Path, declared: int, method: int) -> None:
    """A member that declares more (or far more) than it holds."""
    path = hostile.lying_zip(
        tmp_path / "lie.npz", declared=declared, data=hostile.npy_header((4,)) + bytes(16), method=method
    )
    report = _bounded("hostile:check_npz", path)
    assert report["error"] == "ConversionError", report
    assert any(p in report["message"] for p in ("would inflate", "says it is", "but holds")), report


@pytest.mark.parametrize("shape", [(100_000, 100_000), (1 << 40,), (3, 7, 1 << 33)])
def test_npy_header_claiming_gigabytes_is_refused(tmp_path: Path, shape: tuple) -> None:
    """The tiny .npz whose header claims 40 GB: numpy would allocate what the header says before reading."""
    data = hostile.npy_header(shape) + bytes(16)
    path = hostile.lying_zip(tmp_path / "claim.npz", declared=len(data), data=data)
    report = _bounded("hostile:check_npz", path)
    assert report["error"] == "ConversionError" and "claims a" in report["message"], report
    assert "but holds 16 bytes" in report["message"]


def test_member_that_inflates_beyond_its_declared_size(tmp_path: Path) -> None:
    """Declared (and header) small, but the deflate stream holds more: reading stops at the declared size and
    the mismatch is an error, never a larger buffer."""
    small = hostile.npy_header((4,)) + bytes(16)
    big = small + bytes(8 << 20)
    path = hostile.lying_zip(tmp_path / "grow.npz", declared=len(small), data=big, method=zipfile.ZIP_DEFLATED)
    infos = check_archive(path)  # the declared sizes are consistent...
    with zipfile.ZipFile(path) as zf, pytest.raises(ConversionError, match="corrupt|inflates to"):
        read_member(zf, infos[1], "'grow.npz'")  # ...but the content is not: refused, 81 bytes read at most
    with pytest.raises(ConversionError, match="CRC"):
        check_npz(path)


def test_object_arrays_and_garbage_members_are_refused(tmp_path: Path) -> None:
    obj = tmp_path / "obj.npz"
    data = hostile.npy_header((2,), "|O") + bytes(16)
    hostile.lying_zip(obj, declared=len(data), data=data)
    with pytest.raises(ConversionError, match="Python objects"):
        check_npz(obj)
    junk = tmp_path / "junk.npz"
    hostile.lying_zip(junk, declared=5, data=b"hello")
    with pytest.raises(ConversionError, match="not a valid .npy"):
        check_npz(junk)
    notzip = tmp_path / "not.npz"
    notzip.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ConversionError, match="not a readable zip"):
        check_npz(notzip)


def test_member_count_and_total_size_limits(tmp_path: Path) -> None:
    path = tmp_path / "many.npz"
    np.savez(path, **{f"a{i}": np.zeros(3, np.float32) for i in range(20)})
    check_npz(path)
    with pytest.raises(ConversionError, match="20 members"):
        check_npz(path, limits=Limits(max_zip_members=10))
    with pytest.raises(ConversionError, match="data it creates"):
        check_npz(path, limits=Limits(max_bytes=500))


def test_valid_npz_passes_and_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.npz"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez_compressed(path, a=a, b=np.zeros((), np.float64))
    check_npz(path)
    infos = check_archive(path)
    with zipfile.ZipFile(path) as zf:
        raw = read_member(zf, infos[0], "'ok.npz'")
    assert raw.endswith(a.tobytes())


def test_members_sharing_bytes_are_refused(tmp_path: Path) -> None:
    """Two central-directory entries pointing at one member's bytes (issue 29): each would read as a full copy."""
    import io
    import struct

    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.npy", hostile.npy_header((4,)) + bytes(16))
    data = raw.getvalue()
    cd_size, cd_offset = struct.unpack_from("<II", data, len(data) - 22 + 12)
    entry = data[cd_offset : cd_offset + cd_size]
    twin = entry[:46] + b"b.npy" + entry[46 + 5 :]  # same header offset, another name
    cd = entry + twin
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), cd_offset, 0)
    path = tmp_path / "twins.npz"
    path.write_bytes(data[:cd_offset] + cd + eocd)
    with pytest.raises(ConversionError, match="overlap"):
        check_archive(path)
    ok = tmp_path / "ok.npz"
    ok.write_bytes(data)
    assert [i.filename for i in check_archive(ok)] == ["a.npy"]
