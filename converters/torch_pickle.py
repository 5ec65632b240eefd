"""NVIDIA PyTorch network pickles (stylegan2-ada-pytorch, stylegan3 repo) → ``(config, state)``.

Input is what :func:`converters.safe_pickle.safe_loads` returns: the top-level dict (ADA key order
``training_set_kwargs, G, D, G_ema, augment_pipe``; SG3-repo order ``G, D, G_ema, augment_pipe,
training_set_kwargs``) or a bare persistent ``Generator``, with every network a
:class:`~converters.safe_pickle.PersistentObject` holding its ``nn.Module.__dict__``.

* ``state``: ``G_ema``'s ``_parameters`` / ``_buffers`` / ``_modules`` flattened exactly like torch's
  ``state_dict()`` (own parameters, own persistent buffers, then children, recursively), float32.
* StyleGAN3 generators (``training.networks_stylegan3``) are converted by :mod:`converters.sg3`.
* ``config``: the Generator's own ``_init_kwargs`` (+ ``_init_args``), with NVIDIA's defaults filled in where a
  kwarg is absent: the stylegan2-ada-pytorch defaults, or the stylegan3 repo's ``networks_stylegan2`` defaults when
  the pickle comes from there (flat synthesis kwargs). Where a kwarg is absent, the hyperparameters NVIDIA stores as
  module attributes (``mapping.num_layers``, ``mapping.w_avg_beta``, ``conv_clamp``, ``architecture``,
  ``num_fp16_res``) take precedence over the defaults. Never guessed from tensor shapes: the shapes are only
  *checked* against the config.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import sg2, sg3
from .errors import ConversionError
from .safe_pickle import PersistentObject, module_tensors, short_repr
from .safe_pickle import child as _child
from .safe_pickle import children as _children

_MISSING = object()
_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")


def find_generator(obj: Any, source: str) -> PersistentObject:
    """The generator to convert: ``G_ema`` (else ``G``) of the top-level dict, or a bare ``Generator``."""
    if isinstance(obj, dict):
        for key in ("G_ema", "G"):
            net = obj.get(key)
            if net is not None:
                break
        else:
            keys = ", ".join(short_repr(k, 40) for k in list(obj)[:10])
            if obj.get("D") is not None:
                raise ConversionError(
                    f"{source} holds a discriminator ('D') but no generator ('G_ema' or 'G'): nothing to render with"
                )
            raise ConversionError(f"{source} holds no generator: expected a 'G_ema' entry, found keys [{keys}]")
        if not isinstance(net, PersistentObject):
            raise ConversionError(f"{source}: {key!r} is a {type(net).__name__}, not an NVIDIA network")
        where = f"{source}[{key!r}]"
    elif isinstance(obj, PersistentObject):
        net, where = obj, source
    else:
        raise ConversionError(f"{source} is a pickle of a {type(obj).__name__}, not an NVIDIA StyleGAN network pickle")
    if net.class_name == "Discriminator":
        raise ConversionError(f"{where} is a discriminator, not a generator: nothing to render with")
    if net.class_name != "Generator":
        raise ConversionError(f"{where} is a {net.class_name!r}, not a StyleGAN Generator")
    return net


def _as_dict(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConversionError(f"generator kwarg {where} is a {type(value).__name__}, not a dict")
    return dict(value)


def _check_known(kwargs: dict, allowed: tuple | set, where: str, source: str) -> None:
    for key in kwargs:
        if key not in allowed:
            raise ConversionError(
                f"unknown generator kwarg {where}{short_repr(key, 60)}={short_repr(kwargs[key])} in {source}: this "
                f"converter does not know "
                f"what it does, so it refuses to guess"
            )


def generator_config(G: PersistentObject, source: str) -> dict:
    """The generator's init kwargs, NVIDIA's defaults filled in (see the module docstring)."""
    kwargs = _as_dict(G.state.get("_init_kwargs"), "_init_kwargs")
    args = G.state.get("_init_args") or ()
    if not isinstance(args, (tuple, list)) or len(args) > len(_POSITIONAL):
        raise ConversionError(f"{source}: malformed Generator _init_args")
    for name, value in zip(_POSITIONAL, args):
        if name in kwargs:
            raise ConversionError(f"{source}: Generator kwarg {name!r} given twice")
        kwargs[name] = value

    top = {}
    for key in sg2.TOP_KEYS:
        value = kwargs.pop(key, _MISSING)
        if value is _MISSING:
            value = G.state.get(key, _MISSING)  # NVIDIA's Generator also keeps these as attributes
        if value is _MISSING:
            raise ConversionError(f"{source}: the Generator does not record {key!r}")
        top[key] = value

    mapping_net = _child(G, "mapping")
    synthesis_net = _child(G, "synthesis")
    blocks = [b for b in _children(synthesis_net).values() if isinstance(b, PersistentObject)] if synthesis_net else []

    mapping_kw = _as_dict(kwargs.pop("mapping_kwargs", None), "mapping_kwargs")
    if "synthesis_kwargs" in kwargs:  # stylegan2-ada-pytorch: Generator(..., synthesis_kwargs={...})
        synthesis_kw = _as_dict(kwargs.pop("synthesis_kwargs"), "synthesis_kwargs")
        _check_known(kwargs, (), "", source)
        sg3_repo, where = False, "synthesis_kwargs."
    else:  # stylegan3 repo's networks_stylegan2: Generator(..., **synthesis_kwargs)
        synthesis_kw, kwargs = kwargs, {}
        sg3_repo = (
            bool(synthesis_kw)
            or (synthesis_net is not None and "num_fp16_res" in synthesis_net.state)
            or any("fused_modconv_default" in b.state for b in blocks)
        )
        where = ""

    _check_known(mapping_kw, sg2.MAPPING_KEYS + sg2.IGNORED_MAPPING_KWARGS, "mapping_kwargs.", source)
    _check_known(
        synthesis_kw,
        sg2.SYNTHESIS_KEYS + sg2.IGNORED_SYNTHESIS_KWARGS + tuple(sg2.FIXED_SYNTHESIS_KWARGS),
        where,
        source,
    )
    sg2.check_fixed(synthesis_kw, where)

    mapping = dict(sg2.SG3REPO_MAPPING_DEFAULTS if sg3_repo else sg2.ADA_MAPPING_DEFAULTS)
    synthesis = dict(sg2.SG3REPO_SYNTHESIS_DEFAULTS if sg3_repo else sg2.ADA_SYNTHESIS_DEFAULTS)

    # Absent kwargs: the values NVIDIA's modules recorded as attributes beat the defaults.
    if mapping_net is not None:
        for key in ("num_layers", "w_avg_beta"):
            if key in mapping_net.state:
                mapping[key] = mapping_net.state[key]
    if synthesis_net is not None and "num_fp16_res" in synthesis_net.state:
        synthesis["num_fp16_res"] = synthesis_net.state["num_fp16_res"]
    b4 = _child(synthesis_net, "b4")
    if b4 is not None and "architecture" in b4.state:
        synthesis["architecture"] = b4.state["architecture"]
    conv = _child(b4, "conv1")
    if conv is not None and "conv_clamp" in conv.state:
        synthesis["conv_clamp"] = conv.state["conv_clamp"]

    mapping.update({k: v for k, v in mapping_kw.items() if k in sg2.MAPPING_KEYS})
    synthesis.update({k: v for k, v in synthesis_kw.items() if k in sg2.SYNTHESIS_KEYS})
    return sg2.finish_config(top, mapping, synthesis)


def convert_torch(obj: Any, source: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` of the generator in a loaded PyTorch network pickle."""
    G = find_generator(obj, source)
    if sg3.is_stylegan3(G):
        return sg3.convert(G, source)
    config = generator_config(G, source)
    state = sg2.check_state(config, module_tensors(G), f"generator of {source}")
    return config, state
