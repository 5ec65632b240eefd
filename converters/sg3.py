"""StyleGAN3 (NVlabs/stylegan3 ``training.networks_stylegan3``) generator pickles → ``(config, state)``.

Input: the persistent ``Generator`` record :mod:`converters.torch_pickle` found (``G_ema`` of the SG3-ordered
snapshot dict ``G, D, G_ema, augment_pipe, training_set_kwargs``). Nothing is derived by re-running NVIDIA's
design code: every per-layer quantity is READ from the pickled module states, then checked for consistency.

The config (JSON-able, stored in converted ``.npz`` files)::

    {"family": "stylegan3", "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
     "mapping_kwargs": {"num_layers", "lr_multiplier", "w_avg_beta"},
     "synthesis_kwargs": {"channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff",
                          "first_stopband", "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res",
                          "conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp",
                          "magnitude_ema_beta"},
     "synthesis_input": {"channels", "size": [w, h], "sampling_rate", "bandwidth"},
     "synthesis_layers": [{"name", "is_torgb", "is_critically_sampled", "in_channels", "out_channels",
                           "in_size": [w, h], "out_size": [w, h], "in_sampling_rate", "out_sampling_rate",
                           "tmp_sampling_rate", "in_cutoff", "out_cutoff", "in_half_width", "out_half_width",
                           "conv_kernel", "conv_clamp", "up_factor", "down_factor", "up_taps", "down_taps",
                           "down_radial", "padding": [x0, x1, y0, y1]}, ...]}

``mapping_kwargs`` / ``synthesis_kwargs`` are the Generator's own init kwargs (the synthesis ones are flat in
NVIDIA's ``_init_kwargs``) with NVIDIA's defaults filled in where absent; where a kwarg is absent, an attribute
NVIDIA's modules record under the same name (``mapping.num_layers``, ``mapping.w_avg_beta``,
``synthesis.num_layers`` / ``num_critical`` / ``margin_size`` / ``output_scale`` / ``num_fp16_res``, the first
layer's ``conv_kernel`` / ``conv_clamp`` / ``magnitude_ema_beta``) beats the default. ``synthesis_input`` and
``synthesis_layers`` are the module attributes themselves (numpy arrays / scalars made plain), layers in
``synthesis.layer_names`` order. The state is ``G_ema.state_dict()`` (float32), checked tensor by tensor against
the shapes these attributes imply.

Facts (not code) from the public NVlabs/stylegan3 ``training/networks_stylegan3.py`` (constructor defaults,
attribute names, buffer names, ``state_dict`` layout, the ``filtered_lrelu`` output-size arithmetic) and its
``train.py`` (which kwargs a snapshot's ``_init_kwargs`` carries).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .errors import ConversionError
from .safe_pickle import PersistentObject, module_tensors, short_repr
from .safe_pickle import child as _child
from .safe_pickle import children as _children
from .sg2 import _int, _number, check_tensors

TOP_KEYS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
_POSITIONAL = TOP_KEYS[:3] + ("img_resolution", "img_channels", "mapping_kwargs")
MAPPING_DEFAULTS: dict[str, Any] = {"num_layers": 2, "lr_multiplier": 0.01, "w_avg_beta": 0.998}
SYNTHESIS_DEFAULTS: dict[str, Any] = {
    "channel_base": 32768,
    "channel_max": 512,
    "num_layers": 14,
    "num_critical": 2,
    "first_cutoff": 2,
    "first_stopband": 2**2.1,
    "last_stopband_rel": 2**0.3,
    "margin_size": 10,
    "output_scale": 0.25,
    "num_fp16_res": 4,
    "conv_kernel": 3,
    "filter_size": 6,
    "lrelu_upsampling": 2,
    "use_radial_filters": False,
    "conv_clamp": 256,
    "magnitude_ema_beta": 0.999,
}
IGNORED_MAPPING_KWARGS = ("freeze_layers", "freeze_embed")
_BOOL_KWARGS = ("use_radial_filters",)
_OPTIONAL_KWARGS = ("conv_clamp",)

INPUT_KEYS = ("channels", "size", "sampling_rate", "bandwidth")
LAYER_KEYS = (
    "name",
    "is_torgb",
    "is_critically_sampled",
    "in_channels",
    "out_channels",
    "in_size",
    "out_size",
    "in_sampling_rate",
    "out_sampling_rate",
    "tmp_sampling_rate",
    "in_cutoff",
    "out_cutoff",
    "in_half_width",
    "out_half_width",
    "conv_kernel",
    "conv_clamp",
    "up_factor",
    "down_factor",
    "up_taps",
    "down_taps",
    "down_radial",
    "padding",
)
_LAYER_BOOLS = ("is_torgb", "is_critically_sampled", "down_radial")
_LAYER_INTS = ("in_channels", "out_channels", "conv_kernel", "up_factor", "down_factor", "up_taps", "down_taps")
_LAYER_NUMBERS = (
    "in_sampling_rate",
    "out_sampling_rate",
    "tmp_sampling_rate",
    "in_cutoff",
    "out_cutoff",
    "in_half_width",
    "out_half_width",
)

#: Generator kwargs only StyleGAN3's generator has; synthesis children only it has.
SG3_ONLY_KWARGS = frozenset(SYNTHESIS_DEFAULTS) - {"channel_base", "channel_max", "num_fp16_res", "conv_clamp"}
_LAYER_NAME = re.compile(r"^L\d+_\d+_\d+$")
_MISSING = object()


# ---------------------------------------------------------------------------------------------------------------
# Detection.


def is_stylegan3(G: PersistentObject) -> bool:
    """Whether a persistent ``Generator`` is NVIDIA's StyleGAN3 one (by its kwargs or its synthesis children:
    a ``SynthesisInput``, or ``SynthesisLayer`` children named ``L{idx}_{size}_{channels}``)."""
    kwargs = G.state.get("_init_kwargs")
    if isinstance(kwargs, dict) and SG3_ONLY_KWARGS & set(kwargs):
        return True
    synthesis = _child(G, "synthesis")
    if synthesis is None:
        return False
    for name, child in _children(synthesis).items():
        cls = getattr(child, "class_name", None)
        if cls == "SynthesisInput" or (cls == "SynthesisLayer" and isinstance(name, str) and _LAYER_NAME.match(name)):
            return True
    return False


# ---------------------------------------------------------------------------------------------------------------
# Plain values from pickled attributes.


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConversionError(f"StyleGAN3 attribute {what}={short_repr(value)} must be a bool")


def _num(value: Any, what: str) -> int | float:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    out = _number(value, what)
    if not math.isfinite(out):
        raise ConversionError(f"StyleGAN3 attribute {what}={out} must be finite")
    return out


def _opt_num(value: Any, what: str) -> int | float | None:
    return None if value is None else _num(value, what)


def _size(value: Any, what: str) -> list[int]:
    """NVIDIA stores sizes as ``np.broadcast_to(np.asarray(size), [2])``: [width, height]."""
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = np.asarray([value, value])
    if not isinstance(value, np.ndarray) or value.shape != (2,) or value.dtype.kind not in "iu":
        raise ConversionError(f"StyleGAN3 attribute {what}={short_repr(value)} must be two integers [w, h]")
    out = [int(v) for v in value]
    if min(out) < 1:
        raise ConversionError(f"StyleGAN3 attribute {what}={out} must be positive")
    return out


def _attr(mod: PersistentObject, key: str, where: str) -> Any:
    value = mod.state.get(key, _MISSING)
    if value is _MISSING:
        raise ConversionError(f"{where} does not record {key!r}: cannot convert this StyleGAN3 generator")
    return value


def _layer_dict(raw: dict, where: str) -> dict:
    """Normalise one layer's attributes (a dict with :data:`LAYER_KEYS`) to plain JSON-able values."""
    out: dict[str, Any] = {"name": raw["name"]}
    if not isinstance(out["name"], str) or not out["name"]:
        raise ConversionError(f"{where}: malformed layer name {short_repr(out['name'])}")
    for key in _LAYER_BOOLS:
        out[key] = _bool(raw[key], f"{where}.{key}")
    for key in _LAYER_INTS:
        out[key] = _int(raw[key], f"{where}.{key}", 1)
    for key in _LAYER_NUMBERS:
        out[key] = _num(raw[key], f"{where}.{key}")
    out["in_size"] = _size(raw["in_size"], f"{where}.in_size")
    out["out_size"] = _size(raw["out_size"], f"{where}.out_size")
    out["conv_clamp"] = _opt_num(raw["conv_clamp"], f"{where}.conv_clamp")
    pad = raw["padding"]
    if isinstance(pad, np.ndarray):
        pad = pad.tolist()
    if not isinstance(pad, (list, tuple)) or len(pad) != 4:
        raise ConversionError(f"{where}.padding={short_repr(pad)} must be [x0, x1, y0, y1]")
    out["padding"] = [_int(p, f"{where}.padding", -(1 << 30)) for p in pad]
    return {k: out[k] for k in LAYER_KEYS}


def _input_dict(raw: dict, where: str) -> dict:
    return {
        "channels": _int(raw["channels"], f"{where}.channels", 1),
        "size": _size(raw["size"], f"{where}.size"),
        "sampling_rate": _num(raw["sampling_rate"], f"{where}.sampling_rate"),
        "bandwidth": _num(raw["bandwidth"], f"{where}.bandwidth"),
    }


# ---------------------------------------------------------------------------------------------------------------
# Consistency of the per-layer attributes.


def _check_layers(config: dict, where: str) -> None:
    inp, layers = config["synthesis_input"], config["synthesis_layers"]
    if not layers:
        raise ConversionError(f"{where}: the StyleGAN3 synthesis network has no layers")
    names = [L["name"] for L in layers]
    seen: set = set()
    for n in names:
        if n in seen:
            raise ConversionError(f"{where}: StyleGAN3 layer name {short_repr(n)} appears twice")
        seen.add(n)
    if config["synthesis_kwargs"]["num_layers"] + 1 != len(layers):
        raise ConversionError(
            f"{where}: num_layers={config['synthesis_kwargs']['num_layers']} but the synthesis "
            f"network has {len(layers)} layers (incl. ToRGB)"
        )
    if not inp["sampling_rate"] > 2 * inp["bandwidth"] > 0:
        raise ConversionError(
            f"{where}: synthesis.input has sampling_rate {inp['sampling_rate']} and bandwidth "
            f"{inp['bandwidth']} (need sampling_rate/2 > bandwidth > 0)"
        )
    prev_c, prev_size = inp["channels"], inp["size"]
    for L in layers:
        n = L["name"]
        if (L["in_channels"], L["in_size"]) != (prev_c, prev_size):
            raise ConversionError(
                f"{where}: layer {n} expects {L['in_channels']} channels of {L['in_size']} but "
                f"receives {prev_c} of {prev_size}"
            )
        if L["is_torgb"] != (L is layers[-1]):
            raise ConversionError(f"{where}: the last StyleGAN3 layer (and only it) must be the ToRGB layer ({n})")
        k, up, down = L["conv_kernel"], L["up_factor"], L["down_factor"]
        if L["up_taps"] > 1 and L["up_taps"] % up or L["down_taps"] > 1 and L["down_taps"] % down:
            raise ConversionError(
                f"{where}: layer {n} has tap counts {L['up_taps']}/{L['down_taps']} that are not "
                f"multiples of its factors {up}/{down}"
            )
        x0, x1, y0, y1 = L["padding"]
        for axis, (p0, p1) in enumerate(((x0, x1), (y0, y1))):
            tmp = (L["in_size"][axis] + k - 1) * up + p0 + p1 - (L["up_taps"] - 1)
            out = (tmp - (L["down_taps"] - 1) + down - 1) // down
            if tmp < L["down_taps"] or out != L["out_size"][axis]:
                raise ConversionError(
                    f"{where}: layer {n}'s padding {L['padding']}, factors and taps give a "
                    f"{'xy'[axis]} size of {out}, not its out_size {L['out_size'][axis]}"
                )
        prev_c, prev_size = L["out_channels"], L["out_size"]
    R = config["img_resolution"]
    if (prev_c, prev_size) != (config["img_channels"], [R, R]):
        raise ConversionError(
            f"{where}: the ToRGB layer outputs {prev_c} channels of {prev_size}, not "
            f"{config['img_channels']} of [{R}, {R}]"
        )


# ---------------------------------------------------------------------------------------------------------------
# Config.


def _kwargs(G: PersistentObject, source: str) -> dict:
    kwargs = G.state.get("_init_kwargs")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ConversionError(f"{source}: Generator _init_kwargs is a {type(kwargs).__name__}, not a dict")
    kwargs = dict(kwargs)
    args = G.state.get("_init_args") or ()
    if not isinstance(args, (tuple, list)) or len(args) > len(_POSITIONAL):
        raise ConversionError(f"{source}: malformed Generator _init_args")
    for name, value in zip(_POSITIONAL, args):
        if name in kwargs:
            raise ConversionError(f"{source}: Generator kwarg {name!r} given twice")
        kwargs[name] = value
    return kwargs


def _unknown(kwargs: dict, allowed: Any, where: str, source: str) -> None:
    for key in kwargs:
        if key not in allowed:
            raise ConversionError(
                f"unknown StyleGAN3 generator kwarg {where}{short_repr(key, 60)}="
                f"{short_repr(kwargs[key])} in {source}: this converter does not know what it "
                f"does, so it refuses to guess"
            )


def _normalise_kwargs(top: dict, mapping: dict, synthesis: dict) -> dict:
    cfg: dict[str, Any] = {"family": "stylegan3"}
    cfg["z_dim"] = _int(top["z_dim"], "z_dim")
    cfg["c_dim"] = _int(top["c_dim"], "c_dim")
    cfg["w_dim"] = _int(top["w_dim"], "w_dim", 1)
    cfg["img_resolution"] = _int(top["img_resolution"], "img_resolution", 1)
    cfg["img_channels"] = _int(top["img_channels"], "img_channels", 1)
    if cfg["z_dim"] + cfg["c_dim"] == 0:
        raise ConversionError("generator has neither a latent (z_dim) nor a label (c_dim) input")
    beta = mapping["w_avg_beta"]
    cfg["mapping_kwargs"] = {
        "num_layers": _int(mapping["num_layers"], "mapping_kwargs.num_layers", 1),
        "lr_multiplier": _number(mapping["lr_multiplier"], "mapping_kwargs.lr_multiplier"),
        "w_avg_beta": None if beta is None else _number(beta, "mapping_kwargs.w_avg_beta"),
    }
    sk: dict[str, Any] = {}
    for key in SYNTHESIS_DEFAULTS:
        value = synthesis[key]
        if key in _BOOL_KWARGS:
            sk[key] = _bool(value, key)
        elif key in _OPTIONAL_KWARGS:
            sk[key] = None if value is None else _number(value, key)
        else:
            sk[key] = _number(value, key)
    for key in (
        "channel_base",
        "channel_max",
        "num_layers",
        "num_critical",
        "margin_size",
        "num_fp16_res",
        "conv_kernel",
        "filter_size",
        "lrelu_upsampling",
    ):
        sk[key] = _int(sk[key], key, 0)
    cfg["synthesis_kwargs"] = sk
    return cfg


def generator_config(G: PersistentObject, source: str) -> dict:
    """The StyleGAN3 generator's config (see the module docstring), read from the pickled module tree."""
    kwargs = _kwargs(G, source)
    top = {}
    for key in TOP_KEYS:
        value = kwargs.pop(key, _MISSING)
        if value is _MISSING:
            value = G.state.get(key, _MISSING)
        if value is _MISSING:
            raise ConversionError(f"{source}: the Generator does not record {key!r}")
        top[key] = value
    mapping_kw = kwargs.pop("mapping_kwargs", None) or {}
    if not isinstance(mapping_kw, dict):
        raise ConversionError(f"{source}: generator kwarg mapping_kwargs is a {type(mapping_kw).__name__}")
    _unknown(mapping_kw, tuple(MAPPING_DEFAULTS) + IGNORED_MAPPING_KWARGS, "mapping_kwargs.", source)
    _unknown(kwargs, SYNTHESIS_DEFAULTS, "", source)

    mapping_net, synthesis_net = _child(G, "mapping"), _child(G, "synthesis")
    if mapping_net is None or mapping_net.class_name != "MappingNetwork":
        raise ConversionError(f"{source}: the StyleGAN3 generator has no mapping network")
    if synthesis_net is None or synthesis_net.class_name != "SynthesisNetwork":
        raise ConversionError(f"{source}: the StyleGAN3 generator has no synthesis network")
    input_net = _child(synthesis_net, "input")
    if input_net is None or input_net.class_name != "SynthesisInput":
        raise ConversionError(f"{source}: the StyleGAN3 synthesis network has no SynthesisInput 'input'")

    # Layers, in forward order: synthesis.layer_names when recorded, else the SynthesisLayer children in order.
    children = _children(synthesis_net)
    names = synthesis_net.state.get("layer_names")
    if names is None:
        names = [n for n, ch in children.items() if getattr(ch, "class_name", None) == "SynthesisLayer"]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConversionError(f"{source}: malformed synthesis.layer_names {short_repr(names)}")
    layer_nets = []
    for name in names:
        net = children.get(name)
        if not isinstance(net, PersistentObject) or net.class_name != "SynthesisLayer":
            raise ConversionError(
                f"{source}: synthesis.{short_repr(name)[1:-1]} (in layer_names) is not a SynthesisLayer"
            )
        layer_nets.append(net)
    listed = set(names)
    extra = [n for n, ch in children.items() if getattr(ch, "class_name", None) == "SynthesisLayer" and n not in listed]
    if extra:
        raise ConversionError(
            f"{source}: synthesis layer {short_repr(extra[0])} (of {len(extra)}) is not in synthesis.layer_names"
        )

    mapping = dict(MAPPING_DEFAULTS)
    for key in ("num_layers", "w_avg_beta"):
        if key in mapping_net.state:
            mapping[key] = mapping_net.state[key]
    mapping.update({k: v for k, v in mapping_kw.items() if k in MAPPING_DEFAULTS})
    synthesis = dict(SYNTHESIS_DEFAULTS)
    for key in ("num_layers", "num_critical", "margin_size", "output_scale", "num_fp16_res"):
        if key in synthesis_net.state:
            synthesis[key] = synthesis_net.state[key]
    first = layer_nets[0] if layer_nets else None
    if first is not None and not first.state.get("is_torgb", False):
        for key in ("conv_kernel", "conv_clamp", "magnitude_ema_beta"):
            if key in first.state:
                synthesis[key] = first.state[key]
    synthesis.update(kwargs)
    config = _normalise_kwargs(top, mapping, synthesis)

    config["synthesis_input"] = _input_dict(
        {k: _attr(input_net, k, f"{source}: synthesis.input") for k in INPUT_KEYS}, "synthesis.input"
    )
    layers = []
    for name, net in zip(names, layer_nets):
        raw = {k: _attr(net, k, f"{source}: synthesis.{name}") for k in LAYER_KEYS if k != "name"}
        raw["name"] = name
        layers.append(_layer_dict(raw, f"synthesis.{name}"))
    config["synthesis_layers"] = layers
    _check_layers(config, source)
    return config


def finish_config(config: dict) -> dict:
    """Validate and re-normalise a StyleGAN3 config (e.g. read back from a converted ``.npz``)."""
    try:
        top = {k: config[k] for k in TOP_KEYS}
        mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
        _unknown(mk, MAPPING_DEFAULTS, "mapping_kwargs.", "the config")
        _unknown(sk, SYNTHESIS_DEFAULTS, "", "the config")
        out = _normalise_kwargs(top, {**MAPPING_DEFAULTS, **mk}, {**SYNTHESIS_DEFAULTS, **sk})
        out["synthesis_input"] = _input_dict(config["synthesis_input"], "synthesis.input")
        layers = config["synthesis_layers"]
        if not isinstance(layers, list):
            raise ConversionError("synthesis_layers must be a list")
        out["synthesis_layers"] = [
            _layer_dict({k: L[k] for k in LAYER_KEYS}, f"synthesis_layers[{i}]") for i, L in enumerate(layers)
        ]
    except (KeyError, TypeError) as exc:
        raise ConversionError(f"malformed StyleGAN3 config ({type(exc).__name__}: {exc})") from None
    _check_layers(out, "the config")
    return out


# ---------------------------------------------------------------------------------------------------------------
# State.


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of a StyleGAN3 ``G_ema`` with ``config``: torch key → shape, in ``state_dict()`` order."""
    w_dim, c_dim = config["w_dim"], config["c_dim"]
    C = config["synthesis_input"]["channels"]
    out: dict[str, tuple[int, ...]] = {
        "synthesis.input.weight": (C, C),
        "synthesis.input.transform": (3, 3),
        "synthesis.input.freqs": (C, 2),
        "synthesis.input.phases": (C,),
        "synthesis.input.affine.weight": (4, w_dim),
        "synthesis.input.affine.bias": (4,),
    }
    for L in config["synthesis_layers"]:
        p = f"synthesis.{L['name']}"
        k = L["conv_kernel"]
        out[f"{p}.weight"] = (L["out_channels"], L["in_channels"], k, k)
        out[f"{p}.bias"] = (L["out_channels"],)
        out[f"{p}.magnitude_ema"] = ()
        if L["up_taps"] > 1:
            out[f"{p}.up_filter"] = (L["up_taps"],)
        if L["down_taps"] > 1:
            out[f"{p}.down_filter"] = (L["down_taps"],) * (2 if L["down_radial"] else 1)
        out[f"{p}.affine.weight"] = (L["in_channels"], w_dim)
        out[f"{p}.affine.bias"] = (L["in_channels"],)
    out["mapping.w_avg"] = (w_dim,)
    if c_dim:
        out["mapping.embed.weight"] = (w_dim, c_dim)
        out["mapping.embed.bias"] = (w_dim,)
    features = [config["z_dim"] + (w_dim if c_dim else 0)] + [w_dim] * config["mapping_kwargs"]["num_layers"]
    for i in range(config["mapping_kwargs"]["num_layers"]):
        out[f"mapping.fc{i}.weight"] = (features[i + 1], features[i])
        out[f"mapping.fc{i}.bias"] = (features[i + 1],)
    return out


def describe(config: dict) -> str:
    sk = config["synthesis_kwargs"]
    kind = "r" if all(L["conv_kernel"] == 1 for L in config["synthesis_layers"]) else "t"
    return (
        f"StyleGAN3 config-{kind} {config['img_resolution']}px, z={config['z_dim']}, c={config['c_dim']}, "
        f"w={config['w_dim']}, {sk['num_layers']} synthesis layers"
    )


def check_state(config: dict, state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Check ``state`` against :func:`expected_shapes`; return float32 arrays in ``state_dict()`` order. Unknown,
    missing or mis-shaped tensors, and non-positive ``magnitude_ema``, raise :class:`ConversionError`."""
    out = check_tensors(
        state,
        expected_shapes(config),
        source,
        describe(config),
        owner=f"{describe(config)} generator",
        basis="the layer attributes",
    )
    for key, value in out.items():
        if key.endswith(".magnitude_ema") and not value > 0:
            raise ConversionError(f"tensor {key!r} in the {source} is {float(value)}: it must be positive")
    return out


def convert(G: PersistentObject, source: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` of a StyleGAN3 ``Generator`` record."""
    config = generator_config(G, source)
    state = check_state(config, module_tensors(G), f"generator of {source}")
    return config, state
