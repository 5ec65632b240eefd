"""The ffmpeg binary (imageio-ffmpeg's own): running it, and reading what it prints about a file.

There is no ffprobe beside imageio-ffmpeg's binary, so :func:`probe` parses the header that ``ffmpeg -i``
prints. Audio decoding (:mod:`lsd_jax.media.decode`) and video writing/reading (:mod:`lsd_jax.media.video`) both use
this
module; neither imports the other.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from typing import Any

from ..errors import OutputError

_STREAM_RE = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")


@functools.lru_cache(maxsize=1)
def _ffmpeg_exe_cached() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (imageio-ffmpeg's own, or ``IMAGEIO_FFMPEG_EXE``)."""
    try:
        return _ffmpeg_exe_cached()
    except Exception as e:  # no binary for this platform and none on PATH
        raise OutputError(f"no ffmpeg binary found (imageio-ffmpeg: {e})") from None


def run_ffmpeg(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run the ffmpeg binary to completion (posix_spawn: no fork of this multithreaded process)."""
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True, close_fds=False, **kwargs
    )


def _split_top(s: str) -> list[str]:
    """Split ffmpeg's stream description on commas that are not inside parentheses."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def channel_count(layout: str) -> int | None:
    """Channels of an ffmpeg channel layout name ("mono", "stereo", "5.1(side)", "3 channels")."""
    named = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "downmix": 2}
    base = layout.split("(")[0].strip()
    if base in named:
        return named[base]
    m = re.match(r"^(\d+) channels", layout)
    if m:
        return int(m[1])
    m = re.match(r"^(\d+)\.(\d+)", layout)
    if m:
        return int(m[1]) + int(m[2])
    return None


def parse_streams(stderr: str) -> dict[str, Any]:
    """What ffmpeg prints about its first input: ``{"duration": seconds or None, "streams": [...]}``; each
    stream has index, kind ("audio", "video", ...), codec, and width/height/pix_fmt (video) or
    sample_rate/channels (audio) when printed. The duration is the container's claim, not a measurement."""
    info: dict[str, Any] = dict(duration=None, streams=[])
    for line in stderr.splitlines():
        if line.startswith("Output #") or line.startswith("Input #1"):
            break
        m = _DURATION_RE.search(line)
        if m and info["duration"] is None:
            info["duration"] = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            continue
        m = _STREAM_RE.match(line)
        if not m:
            continue
        parts = _split_top(m[3])
        st: dict[str, Any] = dict(index=int(m[1]), kind=m[2].lower(), codec=parts[0].split(" ")[0])
        if st["kind"] == "video":
            st["pix_fmt"] = parts[1].split("(")[0].strip() if len(parts) > 1 else None
            for part in parts[1:]:
                sm = re.match(r"^(\d+)x(\d+)", part)
                if sm:
                    st["width"], st["height"] = int(sm[1]), int(sm[2])
                    break
        elif st["kind"] == "audio":
            for k, part in enumerate(parts[1:], 1):
                sm = re.match(r"^(\d+) Hz$", part)
                if sm:
                    st["sample_rate"] = int(sm[1])
                    if k + 1 < len(parts):
                        st["channels"] = channel_count(parts[k + 1])
                    break
        info["streams"].append(st)
    return info


def probe(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """``ffmpeg -i path``'s header, parsed (:func:`parse_streams`), and its raw text (for error messages)."""
    text = run_ffmpeg(["-i", os.fspath(path)]).stderr.decode("utf-8", "replace")
    return parse_streams(text), text
