"""StyleGAN2(-ADA) generator config and parameter layout, shared by the PyTorch and TF converters.

The config is NVIDIA's ``Generator`` init kwargs with every default filled in (see the public
NVlabs/stylegan2-ada-pytorch ``training/networks.py``)::

    {"family": "stylegan2", "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
     "mapping_kwargs": {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier",
                        "w_avg_beta"},
     "synthesis_kwargs": {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                          "resample_filter"}}

:func:`expected_shapes` lists every tensor of such a ``G_ema`` (parameters and buffers) under its torch
``state_dict()`` key, in ``state_dict()`` order; the converters check a pickle's tensors against it, so a tensor
the config does not explain (or a missing one) fails loudly, naming the key.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ConversionError
from .limits import short_repr

MAPPING_KEYS = ("num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta")
SYNTHESIS_KEYS = ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture", "resample_filter")
TOP_KEYS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")

#: NVlabs/stylegan2-ada-pytorch ``training/networks.py`` defaults.
ADA_MAPPING_DEFAULTS: dict[str, Any] = {
    "num_layers": 8,
    "embed_features": None,
    "layer_features": None,
    "activation": "lrelu",
    "lr_multiplier": 0.01,
    "w_avg_beta": 0.995,
}
ADA_SYNTHESIS_DEFAULTS: dict[str, Any] = {
    "channel_base": 32768,
    "channel_max": 512,
    "num_fp16_res": 0,
    "conv_clamp": None,
    "architecture": "skip",
    "resample_filter": [1, 3, 3, 1],
}
#: NVlabs/stylegan3 ``training/networks_stylegan2.py`` (the StyleGAN2 generator of the SG3 repo) differs in
#: three defaults: w_avg_beta 0.998, num_fp16_res 4, conv_clamp 256.
SG3REPO_MAPPING_DEFAULTS = {**ADA_MAPPING_DEFAULTS, "w_avg_beta": 0.998}
SG3REPO_SYNTHESIS_DEFAULTS = {**ADA_SYNTHESIS_DEFAULTS, "num_fp16_res": 4, "conv_clamp": 256}

#: Kwargs NVIDIA's generators accept that change nothing at inference (value ignored).
IGNORED_SYNTHESIS_KWARGS = ("fp16_channels_last", "fused_modconv_default")
IGNORED_MAPPING_KWARGS = ("freeze_layers", "freeze_embed")
#: Kwargs accepted only at the value this project implements.
FIXED_SYNTHESIS_KWARGS = {"use_noise": True, "activation": "lrelu", "kernel_size": 3}

BUFFER_SUFFIXES = ("resample_filter", "noise_const", "w_avg")


def setup_filter(taps: Any) -> np.ndarray:
    """``upfirdn2d.setup_filter`` with its defaults: float32 taps, outer product when 1-D with < 8 taps,
    normalised to sum 1."""
    f = np.asarray(taps, dtype=np.float32)
    if f.ndim == 0:
        f = f[np.newaxis]
    if f.ndim == 1 and f.size < 8:
        f = np.outer(f, f).astype(np.float32)
    return (f / f.sum(dtype=np.float32)).astype(np.float32)


def channels(config: dict, res: int) -> int:
    sk = config["synthesis_kwargs"]
    return int(min(sk["channel_base"] // res, sk["channel_max"]))


def block_resolutions(config: dict) -> list[int]:
    log2 = int(round(math.log2(config["img_resolution"])))
    return [2**i for i in range(2, log2 + 1)]


def is_buffer(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in BUFFER_SUFFIXES


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of a StyleGAN2-ADA ``G_ema`` for ``config``: torch key → shape, in ``state_dict()`` order."""
    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    z_dim, c_dim, w_dim = config["z_dim"], config["c_dim"], config["w_dim"]
    img_channels = config["img_channels"]
    arch = sk["architecture"]
    filt = tuple(setup_filter(sk["resample_filter"]).shape)
    out: dict[str, tuple[int, ...]] = {}

    def layer(prefix: str, cin: int, cout: int, res: int) -> None:
        out[f"{prefix}.weight"] = (cout, cin, 3, 3)
        out[f"{prefix}.noise_strength"] = ()
        out[f"{prefix}.bias"] = (cout,)
        out[f"{prefix}.resample_filter"] = filt
        out[f"{prefix}.noise_const"] = (res, res)
        out[f"{prefix}.affine.weight"] = (cin, w_dim)
        out[f"{prefix}.affine.bias"] = (cin,)

    for res in block_resolutions(config):
        p = f"synthesis.b{res}"
        cout = channels(config, res)
        cin = channels(config, res // 2) if res > 4 else 0
        if cin == 0:
            out[f"{p}.const"] = (cout, res, res)
        out[f"{p}.resample_filter"] = filt
        if cin:
            layer(f"{p}.conv0", cin, cout, res)
        layer(f"{p}.conv1", cout, cout, res)
        if res == config["img_resolution"] or arch == "skip":
            out[f"{p}.torgb.weight"] = (img_channels, cout, 1, 1)
            out[f"{p}.torgb.bias"] = (img_channels,)
            out[f"{p}.torgb.affine.weight"] = (cout, w_dim)
            out[f"{p}.torgb.affine.bias"] = (cout,)
        if cin and arch == "resnet":
            out[f"{p}.skip.weight"] = (cout, cin, 1, 1)
            out[f"{p}.skip.resample_filter"] = filt

    embed = (w_dim if mk["embed_features"] is None else mk["embed_features"]) if c_dim else 0
    layer_features = w_dim if mk["layer_features"] is None else mk["layer_features"]
    n = mk["num_layers"]
    features = [z_dim + embed] + [layer_features] * (n - 1) + [w_dim]
    if mk["w_avg_beta"] is not None:
        out["mapping.w_avg"] = (w_dim,)
    if c_dim:
        out["mapping.embed.weight"] = (embed, c_dim)
        out["mapping.embed.bias"] = (embed,)
    for i in range(n):
        out[f"mapping.fc{i}.weight"] = (features[i + 1], features[i])
        out[f"mapping.fc{i}.bias"] = (features[i + 1],)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Config validation.


#: Upper bounds far beyond any real generator; they keep a corrupt or hostile pickle from making the converter
#: enumerate billions of layers (a denial of service) before the shape checks could reject it.
_MAX_DIM = 1 << 16
_LIMITS = {
    "num_layers": 256,
    "img_resolution": 1 << 16,
    "img_channels": 1024,
    "num_fp16_res": 64,
    "channel_base": 1 << 26,
}


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ConversionError(f"generator kwarg {what}={short_repr(value)} must be an integer")
    value = int(value)
    if value < minimum:
        raise ConversionError(f"generator kwarg {what}={short_repr(value)} must be >= {minimum}")
    limit = _LIMITS.get(what.rsplit(".", 1)[-1], _MAX_DIM)
    if value > limit:
        raise ConversionError(f"generator kwarg {what}={short_repr(value)} is implausibly large (limit {limit})")
    return value


def _opt_int(value: Any, what: str, minimum: int = 1) -> int | None:
    return None if value is None else _int(value, what, minimum)


def _number(value: Any, what: str) -> int | float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConversionError(f"generator kwarg {what}={short_repr(value)} must be a number")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if not math.isfinite(float(value)):
        raise ConversionError(f"generator kwarg {what}={short_repr(value)} must be finite")
    return float(value)


def finish_config(top: dict, mapping: dict, synthesis: dict) -> dict:
    """Validate and normalise (to plain JSON-able Python values) a filled-in generator config."""
    cfg: dict[str, Any] = {"family": "stylegan2"}
    cfg["z_dim"] = _int(top["z_dim"], "z_dim")
    cfg["c_dim"] = _int(top["c_dim"], "c_dim")
    cfg["w_dim"] = _int(top["w_dim"], "w_dim", 1)
    res = _int(top["img_resolution"], "img_resolution", 4)
    if res & (res - 1):
        raise ConversionError(f"generator kwarg img_resolution={res} must be a power of two")
    cfg["img_resolution"] = res
    cfg["img_channels"] = _int(top["img_channels"], "img_channels", 1)
    if cfg["z_dim"] + cfg["c_dim"] == 0:
        raise ConversionError("generator has neither a latent (z_dim) nor a label (c_dim) input")

    activation = mapping["activation"]
    if not isinstance(activation, str):
        raise ConversionError(f"mapping_kwargs.activation={short_repr(activation)} must be a string")
    beta = mapping["w_avg_beta"]
    cfg["mapping_kwargs"] = {
        "num_layers": _int(mapping["num_layers"], "mapping_kwargs.num_layers", 1),
        "embed_features": _opt_int(mapping["embed_features"], "mapping_kwargs.embed_features"),
        "layer_features": _opt_int(mapping["layer_features"], "mapping_kwargs.layer_features"),
        "activation": activation,
        "lr_multiplier": _number(mapping["lr_multiplier"], "mapping_kwargs.lr_multiplier"),
        "w_avg_beta": None if beta is None else _number(beta, "mapping_kwargs.w_avg_beta"),
    }

    arch = synthesis["architecture"]
    if arch not in ("orig", "skip", "resnet"):
        raise ConversionError(f"synthesis_kwargs.architecture={short_repr(arch)} must be 'orig', 'skip' or 'resnet'")
    clamp = synthesis["conv_clamp"]
    taps = synthesis["resample_filter"]
    if isinstance(taps, np.ndarray):
        taps = taps.tolist()
    if (
        not isinstance(taps, (list, tuple))
        or not taps
        or len(taps) > 64
        or not all(isinstance(t, (int, float, np.integer, np.floating)) and not isinstance(t, bool) for t in taps)
    ):
        raise ConversionError(f"synthesis_kwargs.resample_filter={short_repr(taps)} must be a list of 1-D filter taps")
    cfg["synthesis_kwargs"] = {
        "channel_base": _int(synthesis["channel_base"], "synthesis_kwargs.channel_base", 1),
        "channel_max": _int(synthesis["channel_max"], "synthesis_kwargs.channel_max", 1),
        "num_fp16_res": _int(synthesis["num_fp16_res"], "synthesis_kwargs.num_fp16_res"),
        "conv_clamp": None if clamp is None else _number(clamp, "synthesis_kwargs.conv_clamp"),
        "architecture": arch,
        "resample_filter": [_number(t, "synthesis_kwargs.resample_filter") for t in taps],
    }
    if cfg["synthesis_kwargs"]["channel_base"] // res < 1:
        raise ConversionError("synthesis_kwargs.channel_base is too small: the last block would have no channels")
    return cfg


def check_fixed(kwargs: dict, where: str) -> None:
    """Kwargs accepted only at one value (see :data:`FIXED_SYNTHESIS_KWARGS`)."""
    for key, wanted in FIXED_SYNTHESIS_KWARGS.items():
        if key in kwargs and kwargs[key] != wanted:
            raise ConversionError(
                f"{where}{key}={short_repr(kwargs[key])} is not supported (only {wanted!r}): this generator cannot "
                "be converted"
            )


def check_state(config: dict, state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Check ``state`` against :func:`expected_shapes` and return it as float32 arrays in ``state_dict()`` order.
    Unknown, missing or mis-shaped tensors raise :class:`ConversionError` naming the key."""
    return check_tensors(
        state,
        expected_shapes(config),
        source,
        describe(config),
        owner=f"StyleGAN2 generator with this config ({describe(config)})",
        basis="the config",
    )


def check_tensors(
    state: dict[str, np.ndarray],
    expected: dict[str, tuple[int, ...]],
    source: str,
    what: str,
    *,
    owner: str,
    basis: str,
) -> dict[str, np.ndarray]:
    """``state`` checked against ``expected`` (key -> shape), as float32 in ``expected``'s order. ``what``
    describes the generator, ``owner`` what an unknown key does not belong to, ``basis`` what implies the shapes."""
    for key in state:
        if key not in expected:
            raise ConversionError(
                f"unknown tensor {short_repr(key, 100)} in the {source}: it does not belong to a "
                f"{owner}; "
                "conversion refused"
            )
    out: dict[str, np.ndarray] = {}
    for key, shape in expected.items():
        if key not in state:
            raise ConversionError(f"the {source} lacks tensor {key!r} (expected for {what})")
        value = state[key]
        if not isinstance(value, np.ndarray):
            raise ConversionError(f"{key!r} in the {source} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != shape:
            raise ConversionError(
                f"tensor {key!r} in the {source} has shape {tuple(value.shape)}, but {basis} implies {shape}"
            )
        if value.dtype.kind != "f":
            raise ConversionError(f"tensor {key!r} in the {source} has dtype {value.dtype}, expected floats")
        out[key] = np.asarray(value, dtype=np.float32, order="C")
    return out


def describe(config: dict) -> str:
    sk, mk = config["synthesis_kwargs"], config["mapping_kwargs"]
    return (
        f"{config['img_resolution']}px, z={config['z_dim']}, c={config['c_dim']}, w={config['w_dim']}, "
        f"{mk['num_layers']} mapping layers, {sk['architecture']}, channel_base={sk['channel_base']}, "
        f"channel_max={sk['channel_max']}"
    )
