"""The package's layers: every import of a module runs to its own layer or one below (no upward arrow, no circle).

The order is the README's module map. A module-level import and one inside a function count alike: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# bottom → top; a folder or a top-level module of lsd_jax, or converters
LAYERS: list[tuple[str, ...]] = [
    ("converters",),
    ("lsd_jax.errors", "lsd_jax.memory", "lsd_jax.testing", "lsd_jax.version"),
    ("lsd_jax.params",),
    ("lsd_jax.media", "lsd_jax.models", "lsd_jax.flags"),
    ("lsd_jax.store",),
    ("lsd_jax.audio",),
    ("lsd_jax.styles",),
    ("lsd_jax.engine",),
    ("lsd_jax.live", "lsd_jax.dmv"),
    ("lsd_jax.web",),
    ("lsd_jax.cli", "lsd_jax.compat", "lsd_jax.bench", "lsd_jax"),
]
RANK = {name: k for k, names in enumerate(LAYERS) for name in names}


def room(module: str) -> str:
    """The layer entry a dotted module name belongs to: ``lsd_jax.audio.beats`` → ``lsd_jax.audio``."""
    parts = module.split(".")
    if parts[0] == "converters":
        return "converters"
    if len(parts) == 1:
        return "lsd_jax"
    return ".".join(parts[:2])


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for each import of the project's own packages in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target]
            if target in ("lsd_jax", "converters") or target.count(".") == 1:  # `from pkg import module`?
                targets = [f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names]
            found += [(node.lineno, t) for t in targets]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, t) for line, t in found if t.split(".")[0] in ("lsd_jax", "converters")]


SOURCES = sorted(p for d in ("lsd_jax", "converters") for p in (ROOT / d).rglob("*.py"))


def test_every_module_has_a_layer():
    missing = sorted({room(module_name(p)) for p in SOURCES} - set(RANK))
    assert not missing, f"modules outside LAYERS (add them to the README's map and here): {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_downward(path):
    here = room(module_name(path))
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for line, target in imports(path)
        if room(target) != here and RANK.get(room(target), -1) >= RANK[here]
    ]
    assert not upward, "imports that run sideways or up a layer:\n" + "\n".join(upward)
