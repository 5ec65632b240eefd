"""Convert an untrusted model file in a separate process with hard limits (what a server should do with uploads).

The converters already bound their own work and memory (:class:`converters.Limits`); this adds limits that hold
even if they had a bug: :func:`convert_isolated` runs the conversion in a fresh Python process
(:mod:`converters.isolated`, numpy only) under an address-space limit (``RLIMIT_AS``), a CPU-time limit and a
wall-clock timeout after which the process group is killed. The result comes back through ``.npy`` files in a
temporary directory (read with ``allow_pickle=False``), so nothing is unpickled in this process. A hang, a crash or
an out-of-memory in the child is a clear :class:`~lsd_jax.errors.ConversionError` here; this process is unaffected.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from converters.limits import Limits, human_bytes

from ..errors import ConversionError, PickleSecurityError, StyleError

__all__ = ["DEFAULT_TIMEOUT", "convert_isolated", "default_memory"]

DEFAULT_TIMEOUT = 120.0
_BASE_MEMORY = 512 << 20  # the child's Python + numpy, with room
_STATE_FILE = re.compile(r"^state-\d{1,7}\.npy$")


def default_memory(file_bytes: int) -> int:
    """The child's address-space limit for a model file of ``file_bytes``: its interpreter plus six times the file
    (the file, the unpickled objects, the decoded storages, the float32 state, and room)."""
    return _BASE_MEMORY + 6 * int(file_bytes)


def convert_isolated(path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT, memory_bytes: int | None = None,
                     limits: Limits | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` of the NVIDIA network pickle at ``path``, converted in a child process (see the module
    docstring) limited to ``memory_bytes`` of address space (default :func:`default_memory`) and ``timeout`` seconds.

    Raises :class:`~lsd_jax.errors.PickleSecurityError` / :class:`~lsd_jax.errors.ConversionError` /
    :class:`~lsd_jax.errors.StyleError` with the converter's own message, or a :class:`ConversionError` saying the
    conversion ran out of time or memory. Messages name the file, not the folder it is in."""
    p = Path(path).expanduser()
    name = f"'{p.name}'"
    if not p.exists():
        raise StyleError(f"style file not found: {p.name}")
    if not p.is_file():
        raise StyleError(f"style path {name} is not a regular file")
    size = p.stat().st_size
    limits = limits or Limits(max_seconds=timeout)
    if size > limits.max_file_bytes:
        raise ConversionError(f"{name} is {human_bytes(size)}, more than the {human_bytes(limits.max_file_bytes)} a "
                              "model file may have; refusing to convert it")
    memory = int(memory_bytes or default_memory(size))
    spec = {"memory_bytes": memory, "cpu_seconds": math.ceil(timeout) + 1, "limits": dataclasses.asdict(limits)}
    with tempfile.TemporaryDirectory(prefix="lsd-jax-convert-") as tmp:
        out = Path(tmp)
        cmd = [sys.executable, "-I", "-m", "converters.isolated", str(p.resolve()), str(out), json.dumps(spec)]
        with open(out / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp,
                                    start_new_session=(os.name == "posix"))
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise ConversionError(f"converting {name} took longer than {timeout:g} s and was stopped (a corrupt "
                                      "or hostile file?)") from None
            except BaseException:  # KeyboardInterrupt, SystemExit: never leave the child running
                _kill(proc)
                raise
        if (out / "result.json").is_file():
            return _read_result(out, name)
        if (out / "error.json").is_file():
            _raise_error(out / "error.json", name, memory)
        if rc < 0 and -rc in (signal.SIGKILL, getattr(signal, "SIGXCPU", -1)):
            raise ConversionError(f"converting {name} ran out of time or memory (at most {timeout:g} s and "
                                  f"{human_bytes(memory)}) and was stopped (a corrupt or hostile file?)")
        raise ConversionError(f"converting {name} failed: its sandbox process ended with "
                              f"{'signal ' + str(-rc) if rc < 0 else 'exit status ' + str(rc)}")


def _kill(proc: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _raise_error(path: Path, name: str, memory: int) -> None:
    try:
        err = json.loads(path.read_text(encoding="utf-8"))
        kind, message = str(err["kind"]), str(err["message"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConversionError(f"converting {name} failed: its sandbox process wrote an unreadable error") from None
    if kind == "MemoryError":
        raise ConversionError(f"converting {name} needs more than {human_bytes(memory)} of memory; refused (a "
                              "corrupt or hostile file?)")
    cls = {"PickleSecurityError": PickleSecurityError, "ConversionError": ConversionError}.get(kind, StyleError)
    raise cls(message)


def _read_result(out: Path, name: str) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        result = json.loads((out / "result.json").read_text(encoding="utf-8"))
        config, tensors = result["config"], result["tensors"]
        state: dict[str, np.ndarray] = {}
        for key, file in tensors:
            if not isinstance(key, str) or not isinstance(file, str) or not _STATE_FILE.match(file):
                raise ValueError("bad tensor entry")
            state[key] = np.load(out / file, allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConversionError(f"converting {name} failed: its sandbox process wrote an unreadable result "
                              f"({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise ConversionError(f"converting {name} failed: its sandbox process wrote no config")
    return config, state
