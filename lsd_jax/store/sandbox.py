"""Convert an untrusted model file in a separate process with hard limits (what a server should do with uploads).

The converters already bound their own work and memory (:class:`converters.Limits`); this adds limits that hold
even if they had a bug: :func:`convert_isolated` runs the conversion in a fresh Python process
(:mod:`converters.isolated`, numpy only) under an address-space limit (``RLIMIT_AS``), a CPU-time limit and a
wall-clock timeout after which the process group is killed. The result comes back through ``.npy`` files in a
temporary directory (read with ``allow_pickle=False``), so nothing is unpickled in this process. A hang, a crash or
an out-of-memory in the child is a clear :class:`~lsd_jax.errors.ConversionError` here; this process is unaffected.

A caller that may give up (a web visitor's cancelled job) runs the conversion inside :func:`cancel_scope`: the child
is killed as soon as the scope's event is set (:class:`ConversionCancelled`), so a cancelled job's work does not
run on beside the next one. :func:`children` counts the conversions running now. Each conversion's folder is named
``lsd-jax-convert-<pid>-…`` after the process that owns it; :func:`sweep_stale` removes those whose owner died
(a server killed mid-conversion), at the next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.limits import Limits, human_bytes

from ..errors import ConversionError, PickleSecurityError, StyleError

__all__ = [
    "DEFAULT_TIMEOUT",
    "PREFIX",
    "ConversionCancelled",
    "cancel_scope",
    "children",
    "convert_isolated",
    "default_memory",
    "sweep_stale",
]

DEFAULT_TIMEOUT = 120.0
PREFIX = "lsd-jax-convert-"
POLL_S = 0.05  # how often a waiting conversion looks at its cancel event
_BASE_MEMORY = 512 << 20  # the child's Python + numpy, with room
_STATE_FILE = re.compile(r"^state-\d{1,7}\.npy$")
_OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-")
_scope = threading.local()
_lock = threading.Lock()
_children: set[int] = set()  # pids of the conversions running now


class ConversionCancelled(ConversionError):
    """The conversion's caller gave up (:func:`cancel_scope`); its child process was killed."""


@contextlib.contextmanager
def cancel_scope(event: threading.Event) -> Iterator[None]:
    """Conversions started in this thread inside the block are killed once ``event`` is set (raising
    :class:`ConversionCancelled`), however deep in the loaders they were started."""
    previous = getattr(_scope, "event", None)
    _scope.event = event
    try:
        yield
    finally:
        _scope.event = previous


def children() -> int:
    """How many sandboxed conversions of this process are running now."""
    with _lock:
        return len(_children)


def sweep_stale(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete the conversion folders (``lsd-jax-convert-<pid>-…`` in ``parent``, default the temporary folder)
    whose owner process is gone; returns them. Folders without an owner in their name are left alone."""
    gone = []
    for d in Path(parent if parent is not None else tempfile.gettempdir()).glob(PREFIX + "*"):
        m = _OWNED.match(d.name)
        if m is None or not d.is_dir() or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        shutil.rmtree(d, ignore_errors=True)
        gone.append(d)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process; a number no pid has
        return True
    return True


def default_memory(file_bytes: int) -> int:
    """The child's address-space limit for a model file of ``file_bytes``: its interpreter plus six times the file
    (the file, the unpickled objects, the decoded storages, the float32 state, and room)."""
    return _BASE_MEMORY + 6 * int(file_bytes)


def convert_isolated(
    path: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_bytes: int | None = None,
    limits: Limits | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
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
        raise ConversionError(
            f"{name} is {human_bytes(size)}, more than the {human_bytes(limits.max_file_bytes)} a "
            "model file may have; refusing to convert it"
        )
    memory = int(memory_bytes or default_memory(size))
    spec = {"memory_bytes": memory, "cpu_seconds": math.ceil(timeout) + 1, "limits": dataclasses.asdict(limits)}
    cancel: threading.Event | None = getattr(_scope, "event", None)
    if cancel is not None and cancel.is_set():
        raise ConversionCancelled(f"converting {name} was cancelled")
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-") as tmp:
        out = Path(tmp)
        cmd = [*_command(), str(p.resolve()), str(out), json.dumps(spec)]
        with open(out / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=tmp,
                start_new_session=(os.name == "posix"),
            )
            with _lock:
                _children.add(proc.pid)
            try:
                rc = _wait(proc, timeout, cancel)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise ConversionError(
                    f"converting {name} took longer than {timeout:g} s and was stopped (a corrupt or hostile file?)"
                ) from None
            except BaseException:  # cancelled, KeyboardInterrupt, SystemExit: never leave the child running
                _kill(proc)
                raise
            finally:
                with _lock:
                    _children.discard(proc.pid)
        if (out / "result.json").is_file():
            return _read_result(out, name)
        if (out / "error.json").is_file():
            _raise_error(out / "error.json", name, memory)
        if rc < 0 and -rc in (signal.SIGKILL, getattr(signal, "SIGXCPU", -1)):
            raise ConversionError(
                f"converting {name} ran out of time or memory (at most {timeout:g} s and "
                f"{human_bytes(memory)}) and was stopped (a corrupt or hostile file?)"
            )
        raise ConversionError(
            f"converting {name} failed: its sandbox process ended with "
            f"{'signal ' + str(-rc) if rc < 0 else 'exit status ' + str(rc)}"
        )


def _command() -> list[str]:
    """The child's command line, before its three arguments (file, output folder, spec)."""
    return [sys.executable, "-I", "-m", "converters.isolated"]


def _wait(proc: subprocess.Popen, timeout: float, cancel: threading.Event | None) -> int:
    """``proc``'s exit status; TimeoutExpired after ``timeout`` s, ConversionCancelled once ``cancel`` is set."""
    if cancel is None:
        return proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proc.wait(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if cancel.is_set():
                raise ConversionCancelled("the conversion was cancelled") from None
            if time.monotonic() >= deadline:
                raise


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
        raise ConversionError(
            f"converting {name} needs more than {human_bytes(memory)} of memory; refused (a corrupt or hostile file?)"
        )
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
        raise ConversionError(
            f"converting {name} failed: its sandbox process wrote an unreadable result ({type(exc).__name__})"
        ) from None
    if not isinstance(config, dict):
        raise ConversionError(f"converting {name} failed: its sandbox process wrote no config")
    return config, state
