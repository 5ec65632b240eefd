"""NVIDIA StyleGAN2 / StyleGAN2-ADA (PyTorch and TF), StyleGAN3 and StyleGAN (v1, TF) pickles → ``(config, state)``
with numpy only (StyleGAN 1: NVIDIA's TF variable names, see :mod:`converters.sg1`).

Pure parsing: bytes or a file in, ``(config dict, {original name: np.ndarray})`` out. This package imports nothing
from ``lsd_jax`` (which imports it); the converted-weights files and the conversion cache live in
``lsd_jax.store.weights``. No code from a pickle ever runs: :mod:`converters.safe_pickle` resolves only an allow-list of
globals, each to a stand-in written here. Public API:

* :func:`parse_pickle` ``(path) -> (config, state)``: convert a file;
* :func:`parse_bytes` ``(data, source) -> (config, state)``: convert the bytes of a pickle;
* :func:`safe_loads` ``(data) -> object``: the restricted unpickler itself;
* :class:`Limits`: the resource bounds every load stays within.
"""

from .errors import ConversionError, ConverterError, PickleSecurityError, SourceError
from .limits import Limits
from .parse import parse_bytes
from .parse import parse_file as parse_pickle
from .safe_pickle import ALLOWED_GLOBALS, safe_loads

__all__ = [
    "ALLOWED_GLOBALS",
    "ConversionError",
    "ConverterError",
    "Limits",
    "PickleSecurityError",
    "SourceError",
    "parse_bytes",
    "parse_pickle",
    "safe_loads",
]
