"""The LSD-compatible API: wrong argument types are clear ParamErrors, not TypeErrors (issue 18)."""

from __future__ import annotations

import pytest

from lsd_jax import LucidSonicDream
from lsd_jax.errors import ParamError


@pytest.mark.parametrize("kwargs,match", [
    ({"song": 123}, "song must be a path"), ({"song": None}, "song must be a path"),
    ({"song": b"a.wav"}, "song must be a path"), ({"song": "a.wav", "pulse_audio": 5}, "pulse_audio must be a path"),
    ({"song": "a.wav", "flash_audio": ["x"]}, "flash_audio must be a path"),
    ({"song": "a.wav", "input_shape": "512"}, "input_shape must be an integer"),
    ({"song": "a.wav", "num_possible_classes": 2.5}, "num_possible_classes must be an integer"),
])
def test_constructor_argument_types(kwargs, match) -> None:
    with pytest.raises(ParamError, match=match):
        LucidSonicDream(**kwargs)


@pytest.mark.parametrize("args,kwargs,match", [
    ((), {"file_name": None}, "file_name must be a path"), ((3.5,), {}, "file_name must be a path"),
    (("o.mp4",), {"save_frames": "yes"}, "save_frames must be True or False"),
    (("o.mp4",), {"fps": None}, "fps must be a number"), (("o.mp4",), {"bogus": 1}, "unknown parameter"),
])
def test_hallucinate_argument_types(args, kwargs, match) -> None:
    with pytest.raises(ParamError, match=match):
        LucidSonicDream("a.wav").hallucinate(*args, **kwargs)
