"""The 1000 ImageNet classes BigGAN is conditioned on, shipped as data (``data/imagenet_classes.json``): each class's
WordNet id and names (the first is the usual label). Look classes up by index, WordNet id or any of their names.

::

    class_index("golden retriever")      # 207
    class_index("Tinca tinca")           # 0 (any synonym, case-insensitive; '_' counts as a space)
    class_indices([207, "n01440764", "daisy"])
    class_names()[207]                   # 'golden retriever'
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import ParamError

__all__ = ["CLASSES", "ImageNetClass", "class_index", "class_indices", "class_names", "one_hot"]

NUM_CLASSES = 1000


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[0]


def _load() -> tuple[ImageNetClass, ...]:
    text = resources.files("lsd_jax").joinpath("data/imagenet_classes.json").read_text(encoding="utf-8")
    return tuple(ImageNetClass(i, c["wnid"], tuple(c["names"])) for i, c in enumerate(json.loads(text)["classes"]))


#: All classes, by index (immutable).
CLASSES: tuple[ImageNetClass, ...] = _load()


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip().casefold()


def class_names() -> tuple[str, ...]:
    """The usual label of every class, by index."""
    return tuple(c.name for c in CLASSES)


def _describe(indices: Iterable[int]) -> str:
    return ", ".join(f"{i} ({CLASSES[i].name})" for i in indices)


def class_index(spec: int | str) -> int:
    """The class index for an index (0–999, int or digits), a WordNet id (``n02099601``) or a name (any synonym,
    case-insensitive). A name that several classes carry resolves to the class whose usual label it is, else it is
    an error listing them; an unknown name is an error with the closest names."""
    if isinstance(spec, (bool, np.bool_)):
        raise ParamError(f"an ImageNet class is an index (0-999) or a name, not {spec!r}")
    if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit()):
        i = int(spec)
        if not 0 <= i < NUM_CLASSES:
            raise ParamError(f"ImageNet class index {i} is out of range: there are {NUM_CLASSES} classes, 0 to 999")
        return i
    if not isinstance(spec, str) or not spec.strip():
        raise ParamError(f"an ImageNet class is an index (0-999) or a name, not {spec!r}")
    key = _norm(spec)
    if re.fullmatch(r"n\d{8}", key):
        for c in CLASSES:
            if c.wnid == key:
                return c.index
        raise ParamError(f"no ImageNet class has the WordNet id {spec!r}")
    primary = [c.index for c in CLASSES if _norm(c.name) == key]
    if len(primary) == 1:
        return primary[0]
    if len(primary) > 1:
        raise ParamError(f"{spec!r} names {len(primary)} ImageNet classes: {_describe(primary)}; pass the index")
    anywhere = [c.index for c in CLASSES if key in (_norm(n) for n in c.names)]
    if len(anywhere) == 1:
        return anywhere[0]
    if anywhere:
        raise ParamError(
            f"{spec!r} names {len(anywhere)} ImageNet classes: {_describe(anywhere)}; pass the index "
            f"or a more specific name"
        )
    everything = {_norm(n): c.index for c in reversed(CLASSES) for n in c.names}
    close = difflib.get_close_matches(key, list(everything), n=5, cutoff=0.6)
    hint = (
        f"; did you mean {', '.join(repr(n) for n in close)}?"
        if close
        else ("; see lsd_jax.models.imagenet.class_names() for the list")
    )
    raise ParamError(f"{spec!r} is not an ImageNet class name{hint}")


def class_indices(specs: int | str | Sequence[int | str]) -> list[int]:
    """:func:`class_index` of each (a single index or name is a list of one)."""
    if isinstance(specs, (str, int, np.integer)):
        specs = [specs]
    return [class_index(s) for s in specs]


def one_hot(specs: int | str | Sequence[int | str]) -> np.ndarray:
    """``(len, 1000)`` float32 one-hot class vectors for the given classes."""
    idx = class_indices(specs)
    out = np.zeros((len(idx), NUM_CLASSES), np.float32)
    out[np.arange(len(idx)), idx] = 1.0
    return out
