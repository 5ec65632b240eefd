"""The child side of a conversion in a separate, resource-limited process (the parent is :mod:`lsd_jax.store.sandbox`).

``python -I -m converters.isolated MODEL OUTDIR SPEC_JSON`` limits its own address space and CPU time (``SPEC_JSON``:
``{"memory_bytes", "cpu_seconds", "limits": {Limits fields}}``) BEFORE reading anything, converts ``MODEL`` with
:func:`converters.parse.parse_file` (a BigGAN-deep ``.bin``, with its config.json beside it:
:func:`converters.biggan.parse_biggan`), and writes into ``OUTDIR`` either

* ``state-<i>.npy`` per tensor and then ``result.json`` = ``{"config": ..., "tensors": [[name, file], ...]}``, or
* ``error.json`` = ``{"kind": "ConversionError" | "PickleSecurityError" | "SourceError" | "MemoryError", "message"}``.

``result.json`` is written last (by rename), so its presence means the conversion completed. Only numpy and this
package are imported (no JAX), so the child starts in well under a second.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConverterError
from .limits import Limits

__all__ = ["main"]


def _limit_resources(memory_bytes: int | None, cpu_seconds: int | None) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows: the parent's wall-clock timeout still applies
        return

    def lower(which: int, soft: int, hard: int) -> None:  # never above a limit this process already has
        _, old = resource.getrlimit(which)
        if old != resource.RLIM_INFINITY:
            soft, hard = min(soft, old), min(hard, old)
        resource.setrlimit(which, (soft, hard))

    lower(resource.RLIMIT_CORE, 0, 0)
    if memory_bytes:
        lower(resource.RLIMIT_AS, int(memory_bytes), int(memory_bytes))
    if cpu_seconds:
        lower(resource.RLIMIT_CPU, int(cpu_seconds), int(cpu_seconds) + 1)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    model, outdir, spec = argv if argv is not None else sys.argv[1:]
    spec = json.loads(spec)
    _limit_resources(spec.get("memory_bytes"), spec.get("cpu_seconds"))
    out = Path(outdir)
    try:
        from . import biggan
        from .parse import parse_file

        limits = Limits(**spec.get("limits", {}))
        if biggan.is_checkpoint(model):  # its config.json beside it
            config, state = biggan.parse_biggan(model, limits=limits)
        else:
            config, state = parse_file(model, limits=limits)
        names = []
        for i, (name, value) in enumerate(state.items()):
            file = f"state-{i}.npy"
            np.save(out / file, value, allow_pickle=False)
            names.append([name, file])
        _write_json(out / "result.json", {"config": config, "tensors": names})
        return 0
    except ConverterError as exc:
        _write_json(out / "error.json", {"kind": type(exc).__name__, "message": str(exc)})
    except MemoryError:
        _write_json(out / "error.json", {"kind": "MemoryError", "message": ""})
    return 1


if __name__ == "__main__":
    sys.exit(main())
