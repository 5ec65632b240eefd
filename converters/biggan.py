"""BigGAN-deep checkpoints of the ``pytorch-pretrained-biggan`` package → ``(config, state)`` with NumPy only.

A checkpoint is a folder holding ``config.json`` and ``pytorch_model.bin`` (or the ``.bin`` itself, with its
``config.json`` beside it). The ``.bin`` is ``torch.save(model.state_dict())`` in either serialization, read by
:mod:`converters.torch_file` (nothing executed). Facts from the package's ``config.py`` / ``model.py`` (the code here
is independent):

* ``config``: ``BigGANConfig.from_dict`` starts from the 128-px defaults (:data:`CONFIG_DEFAULTS`) and overrides
  them with the JSON's keys; keys the model never reads are ignored. ``layers`` is a list of
  ``(up_sample, in_multiplier, out_multiplier)``; channels are ``channel_width × multiplier``. The condition vector
  is ``z`` concatenated with the class embedding, ``2·z_dim`` wide (``class_embed_dim`` is not used by the model).
* module tree (``state_dict`` order): ``embeddings`` (``Linear(num_classes, z_dim, bias=False)``),
  ``generator.gen_z`` (``Linear(2·z_dim, 4·4·16·channel_width)``), ``generator.layers.{i}`` — one ``GenBlock`` per
  config layer, with a ``SelfAttn`` inserted *before* the block whose index is ``attention_layer_position`` (so
  the module indices after it shift by one) — ``generator.bn`` (unconditional batch norm) and
  ``generator.conv_to_rgb`` (3×3 conv, ``channel_width`` outputs). A ``GenBlock(in, out)`` has ``bn_0..bn_3``
  (conditional batch norms with ``running_means``/``running_vars`` of shape ``(n_stats, C)`` and bias-free
  ``scale``/``offset`` linears from the condition vector) and ``conv_0`` (1×1, in→in/4), ``conv_1``, ``conv_2``
  (3×3, in/4→in/4), ``conv_3`` (1×1, in/4→out), all with bias. ``SelfAttn(C)`` has bias-free 1×1 convs
  ``snconv1x1_theta``/``_phi`` (C→C/8), ``snconv1x1_g`` (C→C/2), ``snconv1x1_o_conv`` (C/2→C) and ``gamma`` (1,).
* spectral norm (``torch.nn.utils.spectral_norm``) on every linear and conv except ``embeddings``: the checkpoint
  stores ``weight_orig``, ``weight_u`` (out,) and ``weight_v`` (in·kh·kw,). At inference (``eval``) torch uses the
  stored vectors without a power iteration: ``W = weight_orig / σ`` with ``σ = u · (W_mat v)``,
  ``W_mat = weight_orig.reshape(out, -1)``. :func:`fold_spectral_norm` applies this once, in float64.

**Name mapping** of the returned ``state`` (the NNX model's parameter paths): the checkpoint's ``state_dict`` keys,
except that each ``X.weight_orig``/``X.weight_u``/``X.weight_v`` triplet becomes one ``X.weight`` (the folded
weight, same shape as ``weight_orig``). Every other tensor keeps its name, shape and (float32) value. Every
expected tensor is checked by name and shape; a missing, unexpected or misshapen tensor is a clear error.

The returned ``config`` is :func:`read_config`'s (the model's keys, defaults filled) plus ``"family":
"biggan-deep"``, which tells a converted file's config from the StyleGAN families'; :func:`finish_config` checks
such a config again (e.g. read back from a converted ``.safetensors`` file) and :func:`check_state` its tensors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConversionError, SourceError
from .limits import Limits, short_repr
from .torch_file import load_torch_file

__all__ = [
    "CONFIG_DEFAULTS",
    "CONFIG_NAME",
    "FAMILY",
    "WEIGHTS_NAME",
    "check_state",
    "checkpoint_shapes",
    "expected_shapes",
    "finish_config",
    "fold_spectral_norm",
    "image_size",
    "is_checkpoint",
    "module_order",
    "parse_biggan",
    "parse_biggan_bytes",
    "read_config",
    "resolve_checkpoint",
    "state_shapes",
]

FAMILY = "biggan-deep"
WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"

#: ``BigGANConfig()`` defaults (the 128-px model); a config.json overrides any of them.
CONFIG_DEFAULTS: dict[str, Any] = {
    "output_dim": 128,
    "z_dim": 128,
    "class_embed_dim": 128,
    "channel_width": 128,
    "num_classes": 1000,
    "layers": [
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
    "attention_layer_position": 8,
    "eps": 1e-4,
    "n_stats": 51,
}
_SN = ("weight_orig", "weight_u", "weight_v")
_MAX_WIDTH = 1 << 16


# --------------------------------------------------------------------------------------------------------------
# Config.


def _int(cfg: dict, key: str, lo: int, hi: int, source: str) -> int:
    v = cfg[key]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ConversionError(f"{source}: config {key!r} must be an integer in [{lo}, {hi}], not {v!r}")
    return v


def read_config(obj: dict, source: str = "config.json") -> dict:
    """The model config: :data:`CONFIG_DEFAULTS` overridden by ``obj`` (keys the model does not read are
    dropped), validated. ``layers`` becomes a list of ``[bool, int, int]``."""
    if not isinstance(obj, dict):
        raise ConversionError(f"{source} must hold a JSON object, not {type(obj).__name__}")
    cfg = dict(CONFIG_DEFAULTS)
    cfg.update({k: v for k, v in obj.items() if k in CONFIG_DEFAULTS})
    for key, lo, hi in (
        ("z_dim", 1, 4096),
        ("num_classes", 1, 1 << 20),
        ("channel_width", 1, 4096),
        ("n_stats", 2, 100_000),
        ("output_dim", 1, 1 << 16),
        ("class_embed_dim", 0, 1 << 16),
    ):
        _int(cfg, key, lo, hi, source)
    pos = cfg["attention_layer_position"]
    if not isinstance(pos, int) or isinstance(pos, bool):
        raise ConversionError(f"{source}: config 'attention_layer_position' must be an integer, not {pos!r}")
    eps = cfg["eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ConversionError(f"{source}: config 'eps' must be a number in (0, 1), not {eps!r}")
    cfg["eps"] = float(eps)
    layers = cfg["layers"]
    if not isinstance(layers, list) or not 1 <= len(layers) <= 64:
        raise ConversionError(f"{source}: config 'layers' must be a list of 1 to 64 [up_sample, in, out] triples")
    out_layers = []
    for i, layer in enumerate(layers):
        if (
            not isinstance(layer, (list, tuple))
            or len(layer) != 3
            or not isinstance(layer[0], bool)
            or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in layer[1:])
        ):
            raise ConversionError(
                f"{source}: config layers[{i}] must be [up_sample (bool), in (int), out (int)], not {layer!r}"
            )
        up, c_in, c_out = layer
        width = cfg["channel_width"]
        if c_in * width > _MAX_WIDTH or c_out * width > _MAX_WIDTH:
            raise ConversionError(f"{source}: config layers[{i}] is too wide")
        if c_in * width < 4:
            raise ConversionError(
                f"{source}: layers[{i}] has {c_in * width} input channels; the bottleneck (in // 4) needs at least 4"
            )
        # the skip path keeps the first in/2 channels when in != out: the sum only works if out == in/2
        if c_in != c_out and c_out * width != (c_in * width) // 2:
            raise ConversionError(
                f"{source}: layers[{i}] maps {c_in * width} to {c_out * width} channels; a GenBlock "
                f"either keeps its width or halves it"
            )
        if i > 0 and c_in != out_layers[-1][2]:
            raise ConversionError(
                f"{source}: layers[{i}] takes {c_in}×channel_width channels but layers[{i - 1}] "
                f"gives {out_layers[-1][2]}×"
            )
        if i == pos and c_in * width < 8:
            raise ConversionError(
                f"{source}: self-attention (C // 8 query channels) needs at least 8 channels, "
                f"layers[{i}] has {c_in * width}"
            )
        out_layers.append([up, c_in, c_out])
    cfg["layers"] = out_layers
    if out_layers[0][1] != 16:
        raise ConversionError(f"{source}: layers[0] must take 16×channel_width channels (gen_z's output)")
    if out_layers[-1][2] != 1:
        raise ConversionError(
            f"{source}: the last layer must give 1×channel_width channels (what generator.bn normalises)"
        )
    if cfg["channel_width"] < 3:
        raise ConversionError(f"{source}: channel_width {cfg['channel_width']} gives fewer than 3 colour channels")
    if image_size(cfg) != cfg["output_dim"]:
        raise ConversionError(
            f"{source}: the layers make {image_size(cfg)}-pixel images but output_dim is {cfg['output_dim']}"
        )
    return cfg


def image_size(config: dict) -> int:
    """Output resolution: 4 pixels doubled by every up-sampling layer."""
    return 4 * 2 ** sum(1 for layer in config["layers"] if layer[0])


def module_order(config: dict) -> list[tuple[str, int]]:
    """``generator.layers`` in module order: ``("attn", config_index)`` or ``("block", config_index)``."""
    out: list[tuple[str, int]] = []
    for i in range(len(config["layers"])):
        if i == config["attention_layer_position"]:
            out.append(("attn", i))
        out.append(("block", i))
    return out


# --------------------------------------------------------------------------------------------------------------
# Expected tensors.


def _sn(prefix: str, out: int, fan_in: int, shape: tuple[int, ...], bias: bool) -> dict[str, tuple[int, ...]]:
    d: dict[str, tuple[int, ...]] = {}
    if bias:
        d[f"{prefix}.bias"] = (out,)
    d[f"{prefix}.weight_orig"] = shape
    d[f"{prefix}.weight_u"] = (out,)
    d[f"{prefix}.weight_v"] = (fan_in,)
    return d


def _bn(prefix: str, c: int, cond: int, n_stats: int) -> dict[str, tuple[int, ...]]:
    d = {f"{prefix}.running_means": (n_stats, c), f"{prefix}.running_vars": (n_stats, c)}
    d.update(_sn(f"{prefix}.scale", c, cond, (c, cond), False))
    d.update(_sn(f"{prefix}.offset", c, cond, (c, cond), False))
    return d


def _conv(prefix: str, c_out: int, c_in: int, k: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    return _sn(prefix, c_out, c_in * k * k, (c_out, c_in, k, k), bias)


def checkpoint_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of the package's ``BigGAN(config).state_dict()``, name → shape, in ``state_dict`` order."""
    ch, zd, ns = config["channel_width"], config["z_dim"], config["n_stats"]
    cond = 2 * zd
    d: dict[str, tuple[int, ...]] = {"embeddings.weight": (zd, config["num_classes"])}
    d.update(_sn("generator.gen_z", 4 * 4 * 16 * ch, cond, (4 * 4 * 16 * ch, cond), True))
    for m, (kind, i) in enumerate(module_order(config)):
        p = f"generator.layers.{m}"
        _, c_in, c_out = config["layers"][i]
        c_in, c_out = c_in * ch, c_out * ch
        if kind == "attn":
            d[f"{p}.gamma"] = (1,)
            d.update(_conv(f"{p}.snconv1x1_theta", c_in // 8, c_in, 1, False))
            d.update(_conv(f"{p}.snconv1x1_phi", c_in // 8, c_in, 1, False))
            d.update(_conv(f"{p}.snconv1x1_g", c_in // 2, c_in, 1, False))
            d.update(_conv(f"{p}.snconv1x1_o_conv", c_in, c_in // 2, 1, False))
            continue
        mid = c_in // 4
        for j, (c_bn, c_o, k) in enumerate(((c_in, mid, 1), (mid, mid, 3), (mid, mid, 3), (mid, c_out, 1))):
            d.update(_bn(f"{p}.bn_{j}", c_bn, cond, ns))
            d.update(_conv(f"{p}.conv_{j}", c_o, c_bn, k))
    d["generator.bn.weight"] = (ch,)
    d["generator.bn.bias"] = (ch,)
    d["generator.bn.running_means"] = (ns, ch)
    d["generator.bn.running_vars"] = (ns, ch)
    d.update(_conv("generator.conv_to_rgb", ch, ch, 3))
    return d


def state_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """The converted state's tensors (spectral-norm triplets folded into ``X.weight``), name → shape."""
    out: dict[str, tuple[int, ...]] = {}
    for name, shape in checkpoint_shapes(config).items():
        if name.endswith(".weight_orig"):
            out[name[: -len("_orig")]] = shape
        elif not name.endswith((".weight_u", ".weight_v")):
            out[name] = shape
    return out


# --------------------------------------------------------------------------------------------------------------
# Conversion.


def fold_spectral_norm(weight_orig: np.ndarray, u: np.ndarray, v: np.ndarray, name: str = "weight") -> np.ndarray:
    """``weight_orig / σ`` with ``σ = u · (W_mat v)``: torch's eval-time spectral norm (no power iteration)."""
    w = np.asarray(weight_orig, dtype=np.float64)
    sigma = float(np.dot(np.asarray(u, np.float64), w.reshape(w.shape[0], -1) @ np.asarray(v, np.float64)))
    if not math.isfinite(sigma) or sigma == 0.0:
        raise ConversionError(f"spectral norm of {name} is {sigma}: the stored weight_u/weight_v are unusable")
    return (w / sigma).astype(np.float32)


def convert_state(config: dict, raw: dict, source: str) -> dict[str, np.ndarray]:
    """Check a checkpoint's tensors against :func:`checkpoint_shapes` and fold spectral norm (see the module doc)."""
    expected = checkpoint_shapes(config)
    if not isinstance(raw, dict):
        raise ConversionError(f"{source} holds a {type(raw).__name__}, not a state dict")
    bad = [k for k in raw if not isinstance(k, str)]
    if bad:
        raise ConversionError(f"{source} has non-string state dict keys, e.g. {bad[0]!r}")
    missing = [k for k in expected if k not in raw]
    unexpected = [k for k in raw if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(short_repr(k, 60) for k in unexpected[:3])})")
        raise ConversionError(
            f"{source} does not match its config.json ({'; '.join(parts)}): is it a pytorch-pretrained-biggan "
            f"BigGAN-deep checkpoint, with the config.json it came with?"
        )
    for name, shape in expected.items():
        arr = raw[name]
        if not isinstance(arr, np.ndarray):
            raise ConversionError(f"{source}: {name} is a {type(arr).__name__}, not a tensor")
        if arr.shape != shape:
            raise ConversionError(
                f"{source}: {name} has shape {arr.shape}, but config.json says {shape} (is it the "
                f"config.json this checkpoint came with?)"
            )
        if arr.dtype.kind != "f":
            raise ConversionError(f"{source}: {name} is {arr.dtype}, not a floating-point tensor")
    state: dict[str, np.ndarray] = {}
    for name in expected:
        if name.endswith(".weight_orig"):
            base = name[: -len("_orig")]
            state[base] = fold_spectral_norm(raw[name], raw[base + "_u"], raw[base + "_v"], f"{source}: {base}")
        elif not name.endswith((".weight_u", ".weight_v")):
            state[name] = np.array(raw[name], dtype=np.float32)
    for name, arr in state.items():
        if not np.all(np.isfinite(arr)):
            raise ConversionError(f"{source}: {name} holds NaN or infinite values")
    return state


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """``(config.json, pytorch_model.bin)`` for a checkpoint folder or a ``.bin`` with config.json beside it."""
    p = Path(path).expanduser()
    if p.is_dir():
        weights, config = p / WEIGHTS_NAME, p / CONFIG_NAME
        if not weights.is_file():
            bins = sorted(x.name for x in p.glob("*.bin"))
            hint = f" (found {', '.join(bins)}: pass that file)" if bins else ""
            raise SourceError(
                f"{p} is a directory but not a BigGAN-deep checkpoint folder: it has no {WEIGHTS_NAME}{hint}"
            )
    elif p.is_file():
        weights, config = p, p.parent / CONFIG_NAME
        if not config.is_file():
            # the package's download cache names them <model>-pytorch_model.bin / <model>-config.json
            stem = p.name[: -len(WEIGHTS_NAME)] if p.name.endswith(WEIGHTS_NAME) else ""
            alt = p.parent / f"{stem}{CONFIG_NAME}"
            if stem and alt.is_file():
                config = alt
            else:
                raise SourceError(
                    f"no {CONFIG_NAME} beside {p}: a BigGAN checkpoint needs the config.json it came with"
                )
    else:
        raise SourceError(f"BigGAN checkpoint not found: {p}")
    if not config.is_file():
        raise SourceError(f"BigGAN folder {p} has no {CONFIG_NAME}")
    return config, weights


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_config_bytes(data: bytes, source: str = CONFIG_NAME) -> dict:
    """:func:`read_config` of a ``config.json``'s bytes, with ``"family": "biggan-deep"``."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{source} is not valid JSON ({exc})") from None
    except RecursionError:  # a config.json nested thousands deep
        raise ConversionError(f"{source} is not a BigGAN config (nested too deeply)") from None
    return {**read_config(obj, source), "family": FAMILY}


def parse_biggan_bytes(
    config_data: bytes,
    weights_data: bytes,
    config_name: str = CONFIG_NAME,
    weights_name: str = WEIGHTS_NAME,
    *,
    limits: Limits | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` from the bytes of a checkpoint's ``config.json`` and ``pytorch_model.bin`` (read within
    ``limits``, default :class:`~converters.limits.Limits`)."""
    config = parse_config_bytes(config_data, config_name)
    source = f"'{weights_name}'"
    raw = load_torch_file(weights_data, where=source, limits=limits)
    return config, convert_state(config, raw, source)


def parse_biggan(path: str | Path, *, limits: Limits | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` of a BigGAN-deep checkpoint folder (or its ``.bin`` with config.json beside it)."""
    config_path, weights_path = resolve_checkpoint(path)
    return parse_biggan_bytes(
        _read(config_path), _read(weights_path), config_path.name, weights_path.name, limits=limits
    )


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` names a BigGAN-deep checkpoint rather than a network pickle: a folder or a ``.bin``."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() == ".bin"


# --------------------------------------------------------------------------------------------------------------
# Converted configs and states (read back from a converted file).


def finish_config(config: dict, source: str = "the config") -> dict:
    """A converted config checked again: ``family`` "biggan-deep" and exactly the model's keys, valid."""
    if not isinstance(config, dict) or config.get("family") != FAMILY:
        raise ConversionError(f"{source}: not a {FAMILY} config")
    rest = {k: v for k, v in config.items() if k != "family"}
    if set(rest) != set(CONFIG_DEFAULTS):
        raise ConversionError(f"{source}: malformed {FAMILY} config (keys {sorted(rest)})")
    return {**read_config(rest, source), "family": FAMILY}


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """The converted state's tensors, name → shape (:func:`state_shapes`)."""
    return state_shapes(config)


def check_state(config: dict, state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """``state`` checked against :func:`expected_shapes` (every name, shape, float dtype), float32, in that order."""
    expected = expected_shapes(config)
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise ConversionError(
            f"unknown tensor {short_repr(unexpected[0], 100)} in the {source}: it does not belong "
            f"to a {FAMILY} generator"
        )
    out: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        if name not in state:
            raise ConversionError(f"the {source} lacks tensor {name!r}")
        arr = state[name]
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            raise ConversionError(f"tensor {name!r} in the {source} is not a floating-point array")
        if arr.shape != shape:
            raise ConversionError(f"tensor {name!r} in the {source} has shape {arr.shape}, the config implies {shape}")
        out[name] = np.asarray(arr, np.float32, order="C")
    return out
