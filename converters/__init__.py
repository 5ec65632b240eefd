"""NVIDIA StyleGAN2 / StyleGAN2-ADA (PyTorch and TF), StyleGAN3 and StyleGAN (v1, TF) pickles → ``(config, state)``
with numpy only (StyleGAN 1: NVIDIA's TF variable names, see :mod:`converters.sg1`).

No code from a pickle ever runs: :mod:`converters.safe_pickle` resolves only an allow-list of globals, each to a
stand-in written here. Public API:

* :func:`load_pickle` ``(path) -> (config, state)``: cached by the file's sha256 under
  ``lsd_jax.paths.cache_dir() / "converted"``;
* :func:`convert` ``(path_in, path_out) -> Path``: write a converted ``.npz`` (``lsd-jax convert``);
* :func:`load_converted` ``(path) -> (config, state)``: read such a ``.npz`` (``allow_pickle=False``);
* :func:`parse_pickle` ``(path) -> (config, state)``: convert without the cache;
* :func:`safe_loads` ``(data) -> object``: the restricted unpickler itself.
"""

from .errors import ConversionError, ConverterError, PickleSecurityError, SourceError
from .cache import clear_cache, convert, load_converted, load_pickle, save_converted
from .parse import parse_bytes
from .parse import parse_file as parse_pickle
from .safe_pickle import ALLOWED_GLOBALS, safe_loads

__all__ = [
    "ALLOWED_GLOBALS",
    "ConversionError",
    "ConverterError",
    "PickleSecurityError",
    "SourceError",
    "clear_cache",
    "convert",
    "load_converted",
    "load_pickle",
    "parse_bytes",
    "parse_pickle",
    "safe_loads",
    "save_converted",
]
