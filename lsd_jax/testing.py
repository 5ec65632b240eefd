"""Random StyleGAN2-ADA ``G_ema`` state dicts in torch layout, and random BigGAN-deep states (for tests and the
benchmark).

* ``sg2_config(**overrides) -> dict``: a full generator config (NVIDIA's ``Generator`` init kwargs with every
  default filled in), small by default; ``paper256_config()`` and ``config_f_config()`` give NVIDIA's shapes.
* ``random_sg2_state(config, seed) -> dict[str, np.ndarray]``: every parameter AND buffer of ``G_ema`` under its
  torch ``state_dict()`` key, float32, torch layout (OIkk conv weights, [out, in] dense weights), in torch's
  ``state_dict()`` order. Biases, ``noise_strength``, ``noise_const``, ``w_avg`` and the affine biases are all
  randomised (not NVIDIA's zero/one initialisation) so that a bug in any of those paths shows.

Names, shapes and module/registration order follow the public NVlabs/stylegan2-ada-pytorch
``training/networks.py`` (``MappingNetwork``, ``SynthesisBlock``, ``SynthesisLayer``, ``ToRGBLayer``,
``Conv2dLayer``); the resample-filter buffer follows ``torch_utils/ops/upfirdn2d.py:setup_filter``
(1-D taps -> outer product when fewer than 8 taps, normalised to sum 1).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

_DEFAULT_CONFIG: dict[str, Any] = {
    "family": "stylegan2",
    "z_dim": 32,
    "c_dim": 0,
    "w_dim": 32,
    "img_resolution": 32,
    "img_channels": 3,
    "mapping_kwargs": {
        "num_layers": 2,
        "embed_features": None,
        "layer_features": None,
        "activation": "lrelu",
        "lr_multiplier": 0.01,
        "w_avg_beta": 0.995,
    },
    "synthesis_kwargs": {
        # ch(res) = min(channel_base // res, channel_max): 32 ch at 4..16, 16 ch at 32, 8 at 64
        "channel_base": 512,
        "channel_max": 32,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "architecture": "skip",
        "resample_filter": [1, 3, 3, 1],
    },
}


def sg2_config(**overrides: Any) -> dict:
    """A full StyleGAN2 config with small defaults.

    Top-level keys (``z_dim``, ``c_dim``, ``w_dim``, ``img_resolution``, ``img_channels``) are set directly;
    ``mapping_kwargs=`` / ``synthesis_kwargs=`` dicts are merged into the defaults; any other key that names a
    mapping or synthesis kwarg (e.g. ``num_layers=8``, ``architecture="resnet"``, ``conv_clamp=256``) is set in
    that sub-dict. Unknown keys raise ``KeyError``.
    """
    cfg = copy.deepcopy(_DEFAULT_CONFIG)
    for key, value in overrides.items():
        if key in ("mapping_kwargs", "synthesis_kwargs"):
            unknown = set(value) - set(cfg[key])
            if unknown:
                raise KeyError(f"unknown {key}: {sorted(unknown)}")
            cfg[key].update(copy.deepcopy(value))
        elif key in cfg:
            cfg[key] = value
        elif key in cfg["mapping_kwargs"]:
            cfg["mapping_kwargs"][key] = value
        elif key in cfg["synthesis_kwargs"]:
            cfg["synthesis_kwargs"][key] = value
        else:
            raise KeyError(f"unknown StyleGAN2 config key {key!r}")
    return cfg


def setup_filter(taps) -> np.ndarray:
    """NVIDIA's ``setup_filter`` default behaviour: outer product of short 1-D taps, normalised to sum 1."""
    f = np.asarray(taps, dtype=np.float64)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and f.size < 8:
        f = np.outer(f, f)
    return (f / f.sum()).astype(np.float32)


def channels(config: dict, res: int) -> int:
    sk = config["synthesis_kwargs"]
    return int(min(sk["channel_base"] // res, sk["channel_max"]))


def block_resolutions(config: dict) -> list[int]:
    log2 = int(np.log2(config["img_resolution"]))
    return [2**i for i in range(2, log2 + 1)]


def random_sg2_state(config: dict, seed: int) -> dict[str, np.ndarray]:
    """A random ``G_ema`` state dict (parameters + buffers, float32, torch layout) for ``config``."""
    rng = np.random.default_rng(seed)

    def randn(*shape, scale=1.0, offset=0.0):
        return (offset + scale * rng.standard_normal(shape)).astype(np.float32)

    mk = config["mapping_kwargs"]
    sk = config["synthesis_kwargs"]
    z_dim, c_dim, w_dim = int(config["z_dim"]), int(config["c_dim"]), int(config["w_dim"])
    img_channels = int(config["img_channels"])
    arch = sk.get("architecture", "skip")
    if arch not in ("orig", "skip", "resnet"):
        raise ValueError(f"unknown architecture {arch!r}")
    filt = setup_filter(sk.get("resample_filter", [1, 3, 3, 1]))
    res_list = block_resolutions(config)
    state: dict[str, np.ndarray] = {}

    def affine(prefix: str, in_channels: int) -> None:
        # FullyConnectedLayer(w_dim, in_channels, bias_init=1), lr_multiplier 1
        state[f"{prefix}.affine.weight"] = randn(in_channels, w_dim)
        state[f"{prefix}.affine.bias"] = randn(in_channels, scale=0.3, offset=1.0)

    def synthesis_layer(prefix: str, cin: int, cout: int, res: int) -> None:
        # own params (weight, noise_strength, bias), own buffers (resample_filter, noise_const), then affine
        state[f"{prefix}.weight"] = randn(cout, cin, 3, 3)
        state[f"{prefix}.noise_strength"] = randn(scale=0.5)
        state[f"{prefix}.bias"] = randn(cout, scale=0.5)
        state[f"{prefix}.resample_filter"] = filt.copy()
        state[f"{prefix}.noise_const"] = randn(res, res)
        affine(prefix, cin)

    # Generator registers synthesis before mapping, so its keys come first.
    for res in res_list:
        p = f"synthesis.b{res}"
        cout = channels(config, res)
        cin = channels(config, res // 2) if res > 4 else 0
        is_last = res == config["img_resolution"]
        if cin == 0:
            state[f"{p}.const"] = randn(cout, res, res)
        state[f"{p}.resample_filter"] = filt.copy()
        if cin != 0:
            synthesis_layer(f"{p}.conv0", cin, cout, res)
        synthesis_layer(f"{p}.conv1", cout, cout, res)
        if is_last or arch == "skip":
            state[f"{p}.torgb.weight"] = randn(img_channels, cout, 1, 1)
            state[f"{p}.torgb.bias"] = randn(img_channels, scale=0.5)
            affine(f"{p}.torgb", cout)
        if cin != 0 and arch == "resnet":
            state[f"{p}.skip.weight"] = randn(cout, cin, 1, 1)
            state[f"{p}.skip.resample_filter"] = filt.copy()

    lr = float(mk.get("lr_multiplier", 0.01))
    embed = mk.get("embed_features")
    embed = w_dim if embed is None else int(embed)
    if c_dim == 0:
        embed = 0
    layer_features = mk.get("layer_features")
    layer_features = w_dim if layer_features is None else int(layer_features)
    num_layers = int(mk.get("num_layers", 8))
    features = [z_dim + embed] + [layer_features] * (num_layers - 1) + [w_dim]
    if mk.get("w_avg_beta", 0.995) is not None:
        state["mapping.w_avg"] = randn(w_dim, scale=0.5)
    if c_dim > 0:
        state["mapping.embed.weight"] = randn(embed, c_dim)
        state["mapping.embed.bias"] = randn(embed, scale=0.5)
    for i in range(num_layers):
        # NVIDIA stores weight = randn / lr and applies gain lr/sqrt(in); bias is applied times lr
        state[f"mapping.fc{i}.weight"] = randn(features[i + 1], features[i], scale=1.0 / lr)
        state[f"mapping.fc{i}.bias"] = randn(features[i + 1], scale=0.5 / lr)
    return state


def paper256_config(**overrides: Any) -> dict:
    """NVIDIA's paper256 shape: z = w = 512, 8 mapping layers, channel_base 16384, channel_max 512, 256x256."""
    return sg2_config(
        z_dim=512, w_dim=512, img_resolution=256, num_layers=8, channel_base=16384, channel_max=512, **overrides
    )


def config_f_config(**overrides: Any) -> dict:
    """StyleGAN2 config-f at 1024x1024: channel_base 32768, channel_max 512."""
    return sg2_config(
        z_dim=512, w_dim=512, img_resolution=1024, num_layers=8, channel_base=32768, channel_max=512, **overrides
    )


# ---------------------------------------------------------------------------------------------------------------
# BigGAN-deep (the benchmark's full-width networks)

#: The pytorch-pretrained-biggan models' layer lists ``[up_sample, in, out]`` (channels × channel_width).
BIGGAN_LAYERS = {
    128: [
        [False, 16, 16],
        [True, 16, 16],
        [False, 16, 16],
        [True, 16, 8],
        [False, 8, 8],
        [True, 8, 4],
        [False, 4, 4],
        [True, 4, 2],
        [False, 2, 2],
        [True, 2, 1],
    ],
    256: [
        [False, 16, 16],
        [True, 16, 16],
        [False, 16, 16],
        [True, 16, 8],
        [False, 8, 8],
        [True, 8, 8],
        [False, 8, 8],
        [True, 8, 4],
        [False, 4, 4],
        [True, 4, 2],
        [False, 2, 2],
        [True, 2, 1],
    ],
}
BIGGAN_LAYERS[512] = BIGGAN_LAYERS[256] + [[False, 1, 1], [True, 1, 1]]


def biggan_deep_config(resolution: int = 256, channel_width: int = 128) -> dict:
    """The converted config (:func:`converters.biggan.parse_biggan`) of the package's ``biggan-deep-<resolution>``
    (full width by default)."""
    from converters.biggan import FAMILY, read_config

    cfg = {
        "output_dim": resolution,
        "z_dim": 128,
        "class_embed_dim": 128,
        "channel_width": channel_width,
        "num_classes": 1000,
        "layers": [list(x) for x in BIGGAN_LAYERS[resolution]],
        "attention_layer_position": 8,
        "eps": 1e-4,
        "n_stats": 51,
    }
    return {**read_config(cfg, f"biggan-deep-{resolution}"), "family": FAMILY}


def random_biggan_state(config: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """A converted BigGAN-deep state (spectral norm already folded: :func:`converters.biggan.state_shapes`) with
    random values scaled like a trained network's (weights ~ N(0, 1/fan_in), statistics near 0 and 1), float32."""
    from converters.biggan import state_shapes

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in state_shapes(config).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf == "running_means":
            v = rng.normal(0.0, 0.1, shape)
        elif leaf == "running_vars":
            v = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("bias", "gamma"):
            v = rng.normal(0.0, 0.1, shape)
        elif name == "generator.bn.weight":
            v = rng.uniform(0.5, 1.5, shape)
        else:  # linear (out, in) or conv (out, in, k, k)
            v = rng.normal(0.0, 1.0 / np.sqrt(int(np.prod(shape[1:]))), shape)
        out[name] = v.astype(np.float32)
    return out
