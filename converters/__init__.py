"""NVIDIA StyleGAN2 / StyleGAN2-ADA (PyTorch and TF) and StyleGAN3 pickles → ``(config, state)`` with numpy only.

Pure parsing: bytes or a file in, ``(config dict, {torch state_dict() key: np.ndarray})`` out. This package
imports nothing from ``lsd_jax`` (which imports it); the converted-weights files and the conversion cache live in
``lsd_jax.weights``. No code from a pickle ever runs: :mod:`converters.safe_pickle` resolves only an allow-list of
globals, each to a stand-in written here. Public API:

* :func:`parse_pickle` ``(path) -> (config, state)``: convert a file;
* :func:`parse_bytes` ``(data, source) -> (config, state)``: convert the bytes of a pickle;
* :func:`safe_loads` ``(data) -> object``: the restricted unpickler itself.
"""

from .errors import ConversionError, ConverterError, PickleSecurityError, SourceError
from .parse import parse_bytes
from .parse import parse_file as parse_pickle
from .safe_pickle import ALLOWED_GLOBALS, safe_loads

__all__ = [
    "ALLOWED_GLOBALS",
    "ConversionError",
    "ConverterError",
    "PickleSecurityError",
    "SourceError",
    "parse_bytes",
    "parse_pickle",
    "safe_loads",
]
