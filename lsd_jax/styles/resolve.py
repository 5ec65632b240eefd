"""Resolving what the user passed as ``style`` into a :class:`~lsd_jax.styles.style.Style`.

Accepted: ``None`` / ``"default"`` / ``"cppn"`` (the embedded style, no download); a
:class:`Style`; a path to an NVIDIA ``.pkl`` or a converted ``.safetensors``; a BigGAN-deep checkpoint folder
(``config.json`` + ``pytorch_model.bin``, or the ``.bin``); a catalogue name (downloaded
once, then cached); or a callable ``style(noise_batch, class_batch)`` as in Lucid Sonic Dreams,
returning a batch of (H, W, 3) images with values in [0, 255] (uint8 or float).

Render settings (truncation, noise mode) are not part of a style: they reach the compiled step as arrays
(:func:`lsd_jax.styles.style.render_settings`), so a new value never recompiles.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import StyleError
from ..params import RenderParams
from .style import CallableProgram, Style

DEFAULT_NAMES = ("default", "cppn")


def cppn_style(z_dim: int | None = None, c_dim: int | None = None) -> Style:
    """The embedded default style ("default" / "cppn"): :mod:`lsd_jax.models.cppn_forward`'s network at any size,
    run by its pure forward (:class:`~lsd_jax.models.cppn_forward.CPPNProgram`: no Flax on this path). Every call
    builds the same values, so renders share one compiled step (JAX's jit cache keys on the program's value)."""
    from ..models import cppn_forward as cppn

    z_dim = cppn.Z_DIM if z_dim is None else z_dim
    c_dim = cppn.C_DIM if c_dim is None else c_dim
    return Style(
        name="cppn",
        z_dim=z_dim,
        c_dim=c_dim,
        program=cppn.CPPNProgram(z_dim, c_dim),
        variables={"model": cppn.init_variables(z_dim, c_dim)},
        native_size=None,
        description="embedded CPPN: abstract art at any resolution, no download",
    )


def _callable_style(func: Callable[..., Any], z_dim: int | None, c_dim: int | None) -> Style:
    """Wrap an LSD-style callable. Traceable ones are fused into the compiled step; others run
    on the host (``Style.host``)."""
    if z_dim is None or c_dim is None:
        raise StyleError(
            "a callable style needs input_shape (the z size) and num_possible_classes, "
            "as in Lucid Sonic Dreams: render(song, style=func, input_shape=512, num_possible_classes=0)"
        )
    try:
        names = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        names = []
    if names and len(names) < 2:
        raise StyleError(f"a callable style must take (noise_batch, class_batch); {func!r} takes {names}")

    try:
        out = jax.eval_shape(
            func, jax.ShapeDtypeStruct((1, z_dim), jnp.float32), jax.ShapeDtypeStruct((1, c_dim), jnp.float32)
        )
        host = not (hasattr(out, "shape") and len(out.shape) == 4 and out.shape[-1] == 3)
        native = None if host else (int(out.shape[1]), int(out.shape[2]))
    except Exception:  # not traceable: call it with NumPy arrays on the host
        host, native = True, None
    if host:
        probe = np.asarray(func(np.zeros((1, z_dim), np.float32), np.zeros((1, c_dim), np.float32)))
        if probe.ndim != 4 or probe.shape[-1] != 3:
            raise StyleError(f"a callable style must return a (batch, H, W, 3) image batch; got shape {probe.shape}")
        native = (int(probe.shape[1]), int(probe.shape[2]))

        def host_fn(z: Any, c: Any) -> np.ndarray:
            return np.asarray(func(np.asarray(z), np.asarray(c)), np.float32) / 127.5 - 1.0

        return Style(
            name=getattr(func, "__name__", "callable"), z_dim=z_dim, c_dim=c_dim, host_fn=host_fn, native_size=native
        )
    return Style(
        name=getattr(func, "__name__", "callable"),
        z_dim=z_dim,
        c_dim=c_dim,
        program=CallableProgram(func),
        native_size=native,
    )


def resolve_style(
    style: Any = None,
    params: RenderParams | None = None,
    *,
    input_shape: int | None = None,
    num_possible_classes: int | None = None,
    progress: bool = True,
    isolated: bool = False,
) -> Style:
    """Turn a style argument into a Style (see the module docstring). ``isolated``: an NVIDIA pickle not converted
    yet is converted in a separate, limited process (:func:`lsd_jax.store.weights.load`; what a server does)."""
    params = params or RenderParams()
    if isinstance(style, Style):
        return style
    if style is None or (isinstance(style, str) and style.lower() in DEFAULT_NAMES):
        return cppn_style()
    if callable(style):
        return _callable_style(style, input_shape, num_possible_classes)
    if not isinstance(style, (str, Path)):
        raise StyleError(
            f"style must be a name, a path to a .pkl or .safetensors, a Style or a callable; got {type(style).__name__}"
        )
    path = Path(style).expanduser()
    if path.is_dir() or path.suffix.lower() in (".bin", ".pkl", ".npz", ".safetensors") or path.exists():
        return file_style(path, params, isolated=isolated)
    return catalogue_style(str(style), params, progress=progress, isolated=isolated)


def file_style(path: str | Path, params: RenderParams | None = None, *, isolated: bool = False) -> Style:
    """The style in a model file (an NVIDIA ``.pkl``, a converted ``.safetensors``) or a BigGAN-deep checkpoint
    (folder or ``.bin``) at ``path``; ``isolated`` as in :func:`resolve_style`."""
    params = params or RenderParams()
    path = Path(path).expanduser()
    if path.is_dir() or path.suffix.lower() == ".bin":  # a BigGAN-deep checkpoint
        return _stylegan_from_path(path, params, name=_biggan_name(path), isolated=isolated)
    if not path.is_file():
        raise StyleError(f"style file not found: {path}")
    return _stylegan_from_path(path, params, isolated=isolated)


def catalogue_style(
    name: str, params: RenderParams | None = None, *, progress: bool = True, isolated: bool = False
) -> Style:
    """The catalogue's style ``name`` (downloaded once, then cached), never a path however the name reads;
    ``isolated`` as in :func:`resolve_style`."""
    from ..store.catalogue import find_style, style_path

    entry = find_style(str(name))
    return _stylegan_from_path(
        style_path(entry.name, progress=progress), params or RenderParams(), name=entry.name, isolated=isolated
    )


def _stylegan_from_path(path: Path, params: RenderParams, name: str | None = None, isolated: bool = False) -> Style:
    from .generator import BigGANGenerator, biggan_style, load_generator, stylegan_style

    gen = load_generator(path, isolated=isolated)
    if isinstance(gen, BigGANGenerator):
        return biggan_style(gen, name=name or path.stem)
    return stylegan_style(gen, name=name or path.stem)


def _biggan_name(path: Path) -> str:
    """A BigGAN checkpoint's name: its folder's (``biggan-deep-256/``, or the folder of ``pytorch_model.bin``) or
    the package cache's ``<model>-pytorch_model.bin`` prefix."""
    if path.is_dir() or path.name == "pytorch_model.bin":
        folder = path if path.is_dir() else path.parent
        return folder.resolve().name or "biggan-deep"
    return path.name.removesuffix("-pytorch_model.bin").removesuffix(".bin") or "biggan-deep"
