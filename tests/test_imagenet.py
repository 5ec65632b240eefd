"""ImageNet class names (shipped data) and the lookup by index, WordNet id or name."""

from __future__ import annotations

import numpy as np
import pytest

from lsd_jax.errors import ParamError
from lsd_jax.models.imagenet import CLASSES, class_index, class_indices, class_names, one_hot


def test_data_is_complete_and_consistent() -> None:
    assert len(CLASSES) == 1000 and [c.index for c in CLASSES] == list(range(1000))
    assert len({c.wnid for c in CLASSES}) == 1000
    assert all(c.names and all(n.strip() == n and n for n in c.names) for c in CLASSES)
    # WordNet ids are ImageNet's sorted synset order
    assert [c.wnid for c in CLASSES] == sorted(c.wnid for c in CLASSES)
    names = class_names()
    assert (names[0], names[1], names[207], names[985], names[999]) == (
        "tench",
        "goldfish",
        "golden retriever",
        "daisy",
        "toilet tissue",
    )
    assert CLASSES[0].wnid == "n01440764" and CLASSES[999].wnid == "n15075141"


@pytest.mark.parametrize(
    "spec, index",
    [
        (207, 207),
        (np.int64(3), 3),
        ("42", 42),
        (" Golden Retriever ", 207),
        ("golden_retriever", 207),
        ("Tinca tinca", 0),
        ("TOILET PAPER", 999),
        ("n02099601", 207),
        ("great white shark", 2),
        ("white shark", 2),
        ("tiger", 292),
        ("tabby", 281),
        ("hammerhead", 4),
    ],
)
def test_lookup(spec, index) -> None:
    assert class_index(spec) == index


@pytest.mark.parametrize(
    "spec, match",
    [
        (1000, "out of range"),
        (-1, "out of range"),
        (True, "or a name"),
        (2.5, "or a name"),
        ("", "index"),
        ("crane", r"134 \(crane\), 517 \(crane\)"),
        ("grass snake", "55 .*57"),
        ("golden retreiver", "golden retriever"),
        ("qwertyuiop", "class_names"),
        ("n99999999", "WordNet id"),
    ],
)
def test_lookup_errors_are_clear(spec, match) -> None:
    with pytest.raises(ParamError, match=match):
        class_index(spec)


def test_indices_and_one_hot() -> None:
    assert class_indices("daisy") == [985]
    assert class_indices([1, "goldfish", "n01443537"]) == [1, 1, 1]
    oh = one_hot(["tench", 999])
    assert oh.shape == (2, 1000) and oh.dtype == np.float32
    assert oh[0, 0] == 1 and oh[1, 999] == 1 and oh.sum() == 2
