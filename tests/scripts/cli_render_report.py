"""``lsd-jax`` with the given arguments, run in this process; then one JSON line: the exit code, the modules that
JAX's persistent compilation cache answered ("hits") and those it did not ("misses"), and whether gradio was
imported (and Flax)."""

import json
import logging
import re
import sys

hits: list[str] = []
misses: list[str] = []


class _Cache(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        m = re.match(
            r"(Persistent compilation cache hit|PERSISTENT COMPILATION CACHE MISS) for '([^']+)'", record.getMessage()
        )
        if m:
            (hits if m.group(1).startswith("Persistent") else misses).append(m.group(2))


log = logging.getLogger("jax._src.compiler")
log.setLevel(logging.DEBUG)
log.addHandler(_Cache())

from lsd_jax.cli import main  # noqa: E402  (after the handler: every compilation is seen)

rc = main(sys.argv[1:])
print(
    json.dumps(
        {"rc": rc, "hits": hits, "misses": misses, "gradio": "gradio" in sys.modules, "flax": "flax" in sys.modules}
    )
)
