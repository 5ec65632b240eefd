"""Writers for pickles byte-compatible with NVIDIA's network pickles, without torch, TensorFlow or NVIDIA's code.

* PyTorch (stylegan2-ada-pytorch / stylegan3 repo): a plain ``pickle.dump`` (protocol 4) of a dict whose networks
  pickle as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, ``meta = dict(type='class', version=6,
  module_src=..., class_name=..., state=<nn.Module.__dict__>)``; tensors as ``torch._utils._rebuild_tensor_v2`` /
  ``_rebuild_parameter`` over ``torch.storage._load_from_bytes(<legacy torch.save stream>)``; numpy scalars and
  arrays under numpy 1.x names (``numpy.core.multiarray.scalar`` / ``_reconstruct``), ``dnnlib.util.EasyDict``,
  ``collections.OrderedDict``.
* TF (stylegan2 / stylegan2-ada TF): ``pickle.dump((G, D, Gs))`` (protocol 3) of ``dnnlib.tflib.network.Network``
  objects with the v5 state; ``tf_variables_from_state`` inverts converters.tf_pickle's TF→torch mapping.

How: :class:`NvPickler` is the pure-Python pickler with one change: a global is written under the module/name the
object *claims* (``__module__``/``__qualname__``) without importing it, so stand-ins named ``torch._utils.…`` or
``dnnlib.util.EasyDict`` produce exactly the opcodes NVIDIA's pickles hold. Nothing here imports torch, TF, dnnlib
or torch_utils.
"""

from __future__ import annotations

import _compat_pickle
import io
import itertools
import math
import pickle
import struct
import types
from collections import OrderedDict
from typing import Any

import numpy as np

TORCH_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_PROTOCOL = 1001
MODULE_SRC = '"""networks.py (stand-in source text; a loader must never execute it)."""\nimport torch\n'


# --------------------------------------------------------------------------------------------------------------
# The pickler.


def global_stub(module: str, name: str) -> types.FunctionType:
    """A function that pickles as the global ``module.name`` (it is never called)."""

    def stub(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
        raise AssertionError(f"stub {module}.{name} called")

    stub.__module__ = module
    stub.__qualname__ = stub.__name__ = name
    return stub


def _named_class(module: str, name: str, base: tuple = (object,), ns: dict | None = None) -> type:
    cls = type(name, base, dict(ns or {}))
    cls.__module__ = module
    cls.__qualname__ = name
    return cls


class NvPickler(pickle._Pickler):  # the pure-Python pickler, so that dispatch can be customised
    """Writes globals by their claimed names, without importing them. ``numpy1_names`` writes numpy ≥ 2's
    ``numpy._core`` as ``numpy.core`` (what pickles written with numpy 1.x, i.e. NVIDIA's, contain)."""

    def __init__(self, file: Any, protocol: int = 4, numpy1_names: bool = True):
        super().__init__(file, protocol=protocol)
        self.numpy1_names = numpy1_names

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = getattr(obj, "__module__", None)
        name = name or getattr(obj, "__qualname__", None) or obj.__name__
        if module is None:
            raise pickle.PicklingError(f"no module for {obj!r}")
        if self.numpy1_names and module.startswith("numpy._core"):
            module = "numpy.core" + module[len("numpy._core") :]
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            if self.proto < 3 and self.fix_imports:
                r_name_mapping = _compat_pickle.REVERSE_NAME_MAPPING
                r_import_mapping = _compat_pickle.REVERSE_IMPORT_MAPPING
                if (module, name) in r_name_mapping:
                    module, name = r_name_mapping[(module, name)]
                elif module in r_import_mapping:
                    module = r_import_mapping[module]
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    def _save_type(self, obj: Any) -> None:
        if obj is type(None) or obj is type(NotImplemented) or obj is type(...):
            return pickle._Pickler.dispatch[type](self, obj)
        return self.save_global(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[types.FunctionType] = save_global
    dispatch[type] = _save_type


def dumps(obj: Any, protocol: int = 4, numpy1_names: bool = True) -> bytes:
    buf = io.BytesIO()
    NvPickler(buf, protocol=protocol, numpy1_names=numpy1_names).dump(obj)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------------
# torch stand-ins.

REBUILD_TENSOR_V2 = global_stub("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = global_stub("torch._utils", "_rebuild_parameter")
REBUILD_PARAMETER_WITH_STATE = global_stub("torch._utils", "_rebuild_parameter_with_state")
LOAD_FROM_BYTES = global_stub("torch.storage", "_load_from_bytes")
RECONSTRUCT_PERSISTENT = global_stub("torch_utils.persistence", "_reconstruct_persistent_obj")
FloatStorage = _named_class("torch", "FloatStorage")
EasyDict = _named_class("dnnlib.util", "EasyDict", (dict,))
_storage_keys = itertools.count(94_000_000_000_000, 1616)


def legacy_storage_bytes(array: np.ndarray, storage_class: type = FloatStorage, dtype: str = "<f4") -> bytes:
    """A legacy (non-zip) ``torch.save`` stream of one storage: magic, protocol, sys_info, the storage as a
    BINPERSID, the sorted key list, then int64 element count + raw little-endian data."""
    flat = np.ascontiguousarray(array, dtype=dtype).reshape(-1)
    key = str(next(_storage_keys))
    buf = io.BytesIO()
    sys_info = {
        "protocol_version": TORCH_PROTOCOL,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 8},
    }
    for obj in (TORCH_MAGIC, TORCH_PROTOCOL, sys_info):
        NvPickler(buf, protocol=2).dump(obj)
    marker = object()
    p = NvPickler(buf, protocol=2)
    p.persistent_id = lambda o: ("storage", storage_class, key, "cpu", flat.size, None) if o is marker else None
    p.dump(marker)
    NvPickler(buf, protocol=2).dump([key])
    buf.write(struct.pack("<q", flat.size))
    buf.write(flat.tobytes())
    return buf.getvalue()


class Storage:
    def __init__(self, array: np.ndarray):
        self.array = array

    def __reduce_ex__(self, protocol: int) -> tuple:
        return (LOAD_FROM_BYTES, (legacy_storage_bytes(self.array),))


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride, acc = [], 1
    for s in reversed(shape):
        stride.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(stride))


class Tensor:
    """Pickles like ``torch.Tensor`` (contiguous, own storage, offset 0)."""

    def __init__(self, array: np.ndarray, requires_grad: bool = False):
        self.array = np.asarray(array, dtype=np.float32)
        self.requires_grad = requires_grad

    def __reduce_ex__(self, protocol: int) -> tuple:
        shape = tuple(int(s) for s in self.array.shape)
        return (
            REBUILD_TENSOR_V2,
            (Storage(self.array), 0, shape, _contiguous_stride(shape), self.requires_grad, OrderedDict()),
        )


class Parameter:
    """Pickles like ``torch.nn.Parameter``."""

    def __init__(self, array: np.ndarray, requires_grad: bool = False, with_state: bool = False):
        self.tensor = Tensor(array)
        self.requires_grad = requires_grad
        self.with_state = with_state

    def __reduce_ex__(self, protocol: int) -> tuple:
        if self.with_state:
            return (REBUILD_PARAMETER_WITH_STATE, (self.tensor, self.requires_grad, OrderedDict(), {}))
        return (REBUILD_PARAMETER, (self.tensor, self.requires_grad, OrderedDict()))


class Persistent:
    """Pickles like an NVIDIA ``@persistence.persistent_class`` module."""

    def __init__(self, class_name: str, state: dict, module_src: str = MODULE_SRC):
        self.class_name = class_name
        self.state = state
        self.module_src = module_src

    def __reduce_ex__(self, protocol: int) -> tuple:
        meta = dict(type="class", version=6, module_src=self.module_src, class_name=self.class_name, state=self.state)
        return (RECONSTRUCT_PERSISTENT, (meta,), None)


def module_state(
    params: dict, buffers: dict, modules: dict, attrs: dict, init_args: tuple = (), init_kwargs: dict | None = None
) -> dict:
    """An ``nn.Module.__dict__`` as torch 1.9 lays it out, plus NVIDIA's ``_init_args`` / ``_init_kwargs``."""
    state: dict[str, Any] = {
        "training": False,
        "_parameters": OrderedDict((k, None if v is None else Parameter(v)) for k, v in params.items()),
        "_buffers": OrderedDict((k, Tensor(v)) for k, v in buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_is_full_backward_hook": None,
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(modules),
    }
    state.update(attrs)
    state["_init_args"] = tuple(init_args)
    state["_init_kwargs"] = dict(init_kwargs or {})
    return state


BUFFER_NAMES = ("resample_filter", "noise_const", "w_avg", "p", "Hz_geom")


def module_tree(
    state: dict[str, np.ndarray],
    class_of: Any,
    attrs_of: Any,
    kwargs_of: Any,
    extra_children: dict[str, dict[str, tuple]] | None = None,
) -> Persistent:
    """Rebuild a persistent module tree from a flat ``state_dict`` (in ``state_dict()`` order). ``class_of(path)``,
    ``attrs_of(path)`` and ``kwargs_of(path) -> (args, kwargs)`` describe each module; ``extra_children`` adds
    tensor-less submodules: ``{parent_path: {name: (class_name, attrs)}}``."""
    nodes: dict[str, dict] = {}

    def node(path: str) -> dict:
        if path not in nodes:
            nodes[path] = {"params": {}, "buffers": {}, "children": []}
            if path:
                parent, _, name = path.rpartition(".")
                node(parent)["children"].append(name)
        return nodes[path]

    node("")
    for key, value in state.items():
        path, _, leaf = key.rpartition(".")
        n = node(path)
        (n["buffers"] if leaf in BUFFER_NAMES else n["params"])[leaf] = value

    def build(path: str) -> Persistent:
        n = nodes[path]
        children: dict[str, Any] = {}
        for name in n["children"]:
            children[name] = build(f"{path}.{name}" if path else name)
        for name, (cls, attrs) in (extra_children or {}).get(path, {}).items():
            children[name] = Persistent(cls, module_state({}, {}, {}, attrs))
        args, kwargs = kwargs_of(path)
        return Persistent(
            class_of(path), module_state(n["params"], n["buffers"], children, attrs_of(path), args, kwargs)
        )

    return build("")


# --------------------------------------------------------------------------------------------------------------
# StyleGAN2 generator (ADA and stylegan3-repo flavours).


def ada_init_kwargs(config: dict, full: bool = False) -> dict:
    """``Generator._init_kwargs`` as stylegan2-ada-pytorch's train.py builds them (z_dim, w_dim, mapping_kwargs,
    synthesis_kwargs, then c_dim, img_resolution, img_channels), with only non-default kwargs unless ``full``."""
    defaults_m = {
        "num_layers": 8,
        "embed_features": None,
        "layer_features": None,
        "activation": "lrelu",
        "lr_multiplier": 0.01,
        "w_avg_beta": 0.995,
    }
    defaults_s = {
        "channel_base": 32768,
        "channel_max": 512,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "architecture": "skip",
        "resample_filter": [1, 3, 3, 1],
    }
    always_m, always_s = ("num_layers",), ("channel_base", "channel_max", "num_fp16_res", "conv_clamp")
    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    mapping = EasyDict((k, v) for k, v in mk.items() if full or k in always_m or v != defaults_m[k])
    synthesis = EasyDict((k, v) for k, v in sk.items() if full or k in always_s or v != defaults_s[k])
    return {
        "z_dim": config["z_dim"],
        "w_dim": config["w_dim"],
        "mapping_kwargs": mapping,
        "synthesis_kwargs": synthesis,
        "c_dim": config["c_dim"],
        "img_resolution": config["img_resolution"],
        "img_channels": config["img_channels"],
    }


def sg3repo_init_kwargs(config: dict) -> dict:
    """``_init_kwargs`` of the stylegan3 repo's ``networks_stylegan2.Generator`` (flat synthesis kwargs), as its
    train.py builds them for ``--cfg=stylegan2``."""
    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    mapping = EasyDict(num_layers=mk["num_layers"])
    for k, default in (
        ("embed_features", None),
        ("layer_features", None),
        ("activation", "lrelu"),
        ("lr_multiplier", 0.01),
        ("w_avg_beta", 0.998),
    ):
        if mk[k] != default:
            mapping[k] = mk[k]
    kw: dict[str, Any] = {
        "z_dim": config["z_dim"],
        "w_dim": config["w_dim"],
        "mapping_kwargs": mapping,
        "channel_base": sk["channel_base"],
        "channel_max": sk["channel_max"],
        "num_fp16_res": sk["num_fp16_res"],
        "conv_clamp": sk["conv_clamp"],
        "fused_modconv_default": "inference_only",
    }
    if sk["architecture"] != "skip":
        kw["architecture"] = sk["architecture"]
    if list(sk["resample_filter"]) != [1, 3, 3, 1]:
        kw["resample_filter"] = sk["resample_filter"]
    kw.update(c_dim=config["c_dim"], img_resolution=config["img_resolution"], img_channels=config["img_channels"])
    return kw


def _channels(config: dict, res: int) -> int:
    sk = config["synthesis_kwargs"]
    return int(min(sk["channel_base"] // res, sk["channel_max"]))


def _generator_describers(config: dict, init_kwargs: dict, flavor: str):
    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    R = config["img_resolution"]
    log2 = int(math.log2(R))
    fp16_res = max(2 ** (log2 + 1 - sk["num_fp16_res"]), 8)
    num_ws = 2 * log2 - 2
    sg3 = flavor == "sg3"
    w_dim = config["w_dim"]

    def class_of(path: str) -> str:
        parts = path.split(".") if path else []
        if not parts:
            return "Generator"
        if parts == ["mapping"]:
            return "MappingNetwork"
        if parts == ["synthesis"]:
            return "SynthesisNetwork"
        last = parts[-1]
        if last.startswith("fc") or last in ("embed", "affine"):
            return "FullyConnectedLayer"
        if len(parts) == 2:
            return "SynthesisBlock"
        return {"conv0": "SynthesisLayer", "conv1": "SynthesisLayer", "torgb": "ToRGBLayer", "skip": "Conv2dLayer"}[
            last
        ]

    def attrs_of(path: str) -> dict:
        cls = class_of(path)
        parts = path.split(".") if path else []
        if cls == "Generator":
            return {k: config[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")} | {
                "num_ws": num_ws
            }
        if cls == "MappingNetwork":
            a = {
                "z_dim": config["z_dim"],
                "c_dim": config["c_dim"],
                "w_dim": w_dim,
                "num_ws": num_ws,
                "num_layers": mk["num_layers"],
                "w_avg_beta": mk["w_avg_beta"],
            }
            return a
        if cls == "SynthesisNetwork":
            a = {
                "w_dim": w_dim,
                "img_resolution": R,
                "img_resolution_log2": log2,
                "img_channels": config["img_channels"],
            }
            if sg3:
                a["num_fp16_res"] = sk["num_fp16_res"]
            a["block_resolutions"] = [2**i for i in range(2, log2 + 1)]
            a["num_ws"] = num_ws
            return a
        if cls == "SynthesisBlock":
            res = int(parts[1][1:])
            a = {
                "in_channels": _channels(config, res // 2) if res > 4 else 0,
                "w_dim": w_dim,
                "resolution": res,
                "img_channels": config["img_channels"],
                "is_last": res == R,
                "architecture": sk["architecture"],
                "use_fp16": res >= fp16_res,
                "channels_last": False,
            }
            if sg3:
                a["fused_modconv_default"] = "inference_only"
            a.update(num_conv=1 if res == 4 else 2, num_torgb=1 if (res == R or sk["architecture"] == "skip") else 0)
            return a
        if cls == "FullyConnectedLayer":
            lr = mk["lr_multiplier"] if parts[-1].startswith("fc") else 1
            fan_in = {"affine": w_dim, "embed": config["c_dim"]}.get(parts[-1], config["z_dim"])
            return {
                "activation": "lrelu" if parts[-1].startswith("fc") else "linear",
                "weight_gain": np.float64(lr / np.sqrt(max(fan_in, 1))),
                "bias_gain": lr,
            }
        if cls == "SynthesisLayer":
            res = int(parts[1][1:])
            return {
                "resolution": res,
                "up": 2 if parts[-1] == "conv0" else 1,
                "use_noise": True,
                "activation": "lrelu",
                "conv_clamp": sk["conv_clamp"],
                "padding": 1,
                "act_gain": np.float64(np.sqrt(2)),
            }
        if cls == "ToRGBLayer":
            res = int(parts[1][1:])
            return {"conv_clamp": sk["conv_clamp"], "weight_gain": np.float64(1 / np.sqrt(_channels(config, res)))}
        if cls == "Conv2dLayer":
            res = int(parts[1][1:])
            return {
                "activation": "linear",
                "up": 2,
                "down": 1,
                "conv_clamp": None,
                "padding": 0,
                "weight_gain": np.float64(1 / np.sqrt(_channels(config, res // 2))),
                "act_gain": np.float64(1.0),
            }
        raise AssertionError(cls)

    def kwargs_of(path: str) -> tuple[tuple, dict]:
        cls = class_of(path)
        if cls == "Generator":
            return (), init_kwargs
        if cls == "MappingNetwork":
            return (), {
                "z_dim": config["z_dim"],
                "c_dim": config["c_dim"],
                "w_dim": w_dim,
                "num_ws": num_ws,
                **dict(init_kwargs.get("mapping_kwargs", {})),
            }
        if cls == "SynthesisNetwork":
            return (), {"w_dim": w_dim, "img_resolution": R, "img_channels": config["img_channels"]}
        if cls == "SynthesisLayer":
            res = int(path.split(".")[1][1:])
            return (_channels(config, res), _channels(config, res)), {
                "w_dim": w_dim,
                "resolution": res,
                "conv_clamp": sk["conv_clamp"],
                "channels_last": False,
            }
        return (), {}

    return class_of, attrs_of, kwargs_of


def generator(
    config: dict, state: dict[str, np.ndarray], *, flavor: str = "ada", init_kwargs: dict | None = None
) -> Persistent:
    """A persistent StyleGAN2 ``Generator`` holding ``state``. ``flavor``: 'ada' (stylegan2-ada-pytorch, nested
    synthesis_kwargs) or 'sg3' (stylegan3 repo's networks_stylegan2, flat synthesis kwargs)."""
    if init_kwargs is None:
        init_kwargs = ada_init_kwargs(config) if flavor == "ada" else sg3repo_init_kwargs(config)
    class_of, attrs_of, kwargs_of = _generator_describers(config, init_kwargs, flavor)
    return module_tree(state, class_of, attrs_of, kwargs_of)


# --------------------------------------------------------------------------------------------------------------
# Discriminator and AugmentPipe (they sit next to G_ema in real pickles).


def discriminator_state(config: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """A (small, random) stylegan2-ada-pytorch resnet ``Discriminator`` state dict with its real key names."""
    rng = np.random.default_rng(seed)
    R, c_dim = config["img_resolution"], config["c_dim"]
    filt = (np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64).astype(np.float32)
    out: dict[str, np.ndarray] = {}

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    res = R
    while res > 4:
        tmp, cout = _channels(config, res), _channels(config, res // 2)
        p = f"b{res}"
        out[f"{p}.resample_filter"] = filt
        if res == R:
            out[f"{p}.fromrgb.weight"], out[f"{p}.fromrgb.bias"] = r(tmp, config["img_channels"], 1, 1), r(tmp)
            out[f"{p}.fromrgb.resample_filter"] = filt
        out[f"{p}.conv0.weight"], out[f"{p}.conv0.bias"] = r(tmp, tmp, 3, 3), r(tmp)
        out[f"{p}.conv0.resample_filter"] = filt
        out[f"{p}.conv1.weight"], out[f"{p}.conv1.bias"] = r(cout, tmp, 3, 3), r(cout)
        out[f"{p}.conv1.resample_filter"] = filt
        out[f"{p}.skip.weight"] = r(cout, tmp, 1, 1)
        out[f"{p}.skip.resample_filter"] = filt
        res //= 2
    c4 = _channels(config, 4)
    cmap = c4 if c_dim else 0
    if c_dim:
        out["mapping.embed.weight"], out["mapping.embed.bias"] = r(cmap, c_dim), r(cmap)
    out["b4.conv.weight"], out["b4.conv.bias"] = r(c4, c4 + 1, 3, 3), r(c4)
    out["b4.conv.resample_filter"] = filt
    out["b4.fc.weight"], out["b4.fc.bias"] = r(c4, c4 * 16), r(c4)
    out["b4.out.weight"], out["b4.out.bias"] = r(cmap or 1, c4), r(cmap or 1)
    return out


def discriminator(config: dict, seed: int = 0) -> Persistent:
    state = discriminator_state(config, seed)

    def class_of(path: str) -> str:
        parts = path.split(".") if path else []
        if not parts:
            return "Discriminator"
        if parts == ["mapping"]:
            return "MappingNetwork"
        if parts == ["b4"]:
            return "DiscriminatorEpilogue"
        if len(parts) == 1:
            return "DiscriminatorBlock"
        return "FullyConnectedLayer" if parts[-1] in ("fc", "out", "embed") else "Conv2dLayer"

    def attrs_of(path: str) -> dict:
        cls = class_of(path)
        if cls == "Discriminator":
            return {
                "c_dim": config["c_dim"],
                "img_resolution": config["img_resolution"],
                "img_resolution_log2": int(math.log2(config["img_resolution"])),
                "img_channels": config["img_channels"],
            }
        if cls == "Conv2dLayer":
            return {
                "activation": "lrelu",
                "up": 1,
                "down": 2 if path.endswith(("conv1", "skip")) else 1,
                "conv_clamp": None,
                "padding": 1,
                "weight_gain": np.float64(0.25),
                "act_gain": np.float64(1.4),
            }
        return {"architecture": "resnet"} if cls.startswith("Discriminator") else {}

    def kwargs_of(path: str) -> tuple[tuple, dict]:
        if not path:
            return (), {
                "c_dim": config["c_dim"],
                "img_resolution": config["img_resolution"],
                "img_channels": config["img_channels"],
                "channel_base": 32768,
                "channel_max": 512,
                "num_fp16_res": 4,
                "conv_clamp": 256,
                "block_kwargs": EasyDict(),
                "mapping_kwargs": EasyDict(),
                "epilogue_kwargs": EasyDict(mbstd_group_size=4),
            }
        return (), {}

    extra = {"b4": {"mbstd": ("MinibatchStdLayer", {"group_size": 4, "num_channels": 1})}}
    return module_tree(state, class_of, attrs_of, kwargs_of, extra)


def augment_pipe() -> Persistent:
    """A minimal persistent ``AugmentPipe`` (buffers ``p`` and ``Hz_geom``, numpy-scalar attributes)."""
    hz = np.asarray([0.1, -0.2, 0.3, 0.5, 0.3, -0.2, 0.1, 0.0, 0.0, 0.01, 0.02, 0.0], np.float32)
    return module_tree(
        {"p": np.float32(0.3) * np.ones((), np.float32), "Hz_geom": hz},
        lambda p: "AugmentPipe",
        lambda p: {
            "xflip": 1.0,
            "rotate90": 1.0,
            "xint": 1.0,
            "xint_max": 0.125,
            "scale_std": np.float64(0.2),
            "rotate_max": 1.0,
        },
        lambda p: ((), {"xflip": 1, "rotate90": 1, "xint": 1}),
    )


# --------------------------------------------------------------------------------------------------------------
# PyTorch snapshot pickles.


def training_set_kwargs(config: dict) -> dict:
    return {
        "class_name": "training.dataset.ImageFolderDataset",
        "path": "/data/images.zip",
        "use_labels": bool(config["c_dim"]),
        "max_size": 1000,
        "xflip": False,
        "resolution": config["img_resolution"],
    }


def torch_snapshot(
    config: dict,
    state: dict[str, np.ndarray],
    *,
    flavor: str = "ada",
    init_kwargs: dict | None = None,
    with_augment: bool = True,
    seed: int = 1,
) -> dict:
    """The object NVIDIA's training loop pickles. ``G`` (raw generator) differs from ``G_ema`` (values negated),
    so a converter that picks the wrong one is caught."""
    g_raw = {k: (-v if not k.endswith("resample_filter") else v) for k, v in state.items()}
    G = generator(config, g_raw, flavor=flavor, init_kwargs=init_kwargs)
    G_ema = generator(config, state, flavor=flavor, init_kwargs=init_kwargs)
    D = discriminator(config, seed)
    aug = augment_pipe() if with_augment else None
    tsk = training_set_kwargs(config)
    if flavor == "ada":
        return {"training_set_kwargs": tsk, "G": G, "D": D, "G_ema": G_ema, "augment_pipe": aug}
    return {"G": G, "D": D, "G_ema": G_ema, "augment_pipe": aug, "training_set_kwargs": tsk}


def torch_pickle_bytes(config: dict, state: dict[str, np.ndarray], *, protocol: int = 4, **kwargs: Any) -> bytes:
    return dumps(torch_snapshot(config, state, **kwargs), protocol=protocol)


def write_torch_pickle(path: Any, config: dict, state: dict[str, np.ndarray], **kwargs: Any) -> Any:
    with open(path, "wb") as f:
        f.write(torch_pickle_bytes(config, state, **kwargs))
    return path


# --------------------------------------------------------------------------------------------------------------
# TF pickles.


class TFNetwork:
    """Pickles like ``dnnlib.tflib.network.Network``: protocol >= 2 object reduction, i.e. NEWOBJ of the class
    ``dnnlib.tflib.network.Network`` + BUILD of its v5 ``__getstate__`` dict."""

    def __init__(self, state: dict):
        self._state = state

    def __getstate__(self) -> dict:
        return self._state


TFNetwork.__module__ = "dnnlib.tflib.network"
TFNetwork.__qualname__ = TFNetwork.__name__ = "Network"


def _tf_net_state(
    name: str,
    func: str,
    static_kwargs: dict,
    components: dict,
    variables: list,
    inputs: list[tuple[str, list]],
    outputs: list[tuple[str, list]],
) -> dict:
    return {
        "version": 5,
        "name": name,
        "static_kwargs": dict(static_kwargs),
        "components": dict(components),
        "build_module_src": '"""training/networks.py stand-in; never executed."""\nimport tensorflow as tf\n',
        "build_func_name": func,
        "variables": [(n, np.asarray(v, dtype=np.float32)) for n, v in variables],
        "input_shapes": [shape for _, shape in inputs],
        "output_shapes": [shape for _, shape in outputs],
        "input_names": [n for n, _ in inputs],
        "output_names": [n for n, _ in outputs],
    }


def tf_static_kwargs(config: dict) -> dict:
    """Inverse of the TF→torch kwarg mapping: the ``static_kwargs`` a TF ``G`` with ``config`` has (the keys the
    TF training scripts set, plus any non-default one)."""
    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    assert sk["channel_base"] % 2 == 0
    assert mk["w_avg_beta"] == 0.995, "TF pickles carry no w_avg_beta"
    kw: dict[str, Any] = {
        "num_channels": config["img_channels"],
        "resolution": config["img_resolution"],
        "label_size": config["c_dim"],
        "fmap_base": sk["channel_base"] // 2,
        "fmap_max": sk["channel_max"],
        "mapping_layers": mk["num_layers"],
        "num_fp16_res": sk["num_fp16_res"],
        "conv_clamp": sk["conv_clamp"],
    }
    if config["z_dim"] != 512:
        kw["latent_size"] = config["z_dim"]
    if config["w_dim"] != 512:
        kw["dlatent_size"] = config["w_dim"]
    if mk["embed_features"] is not None:
        kw["label_fmaps"] = mk["embed_features"]
    if mk["layer_features"] is not None:
        kw["mapping_fmaps"] = mk["layer_features"]
    if mk["lr_multiplier"] != 0.01:
        kw["mapping_lrmul"] = mk["lr_multiplier"]
    if mk["activation"] != "lrelu":
        kw["mapping_nonlinearity"] = mk["activation"]
    if sk["architecture"] != "skip":
        kw["architecture"] = sk["architecture"]
    if list(sk["resample_filter"]) != [1, 3, 3, 1]:
        kw["resample_kernel"] = list(sk["resample_filter"])
    return kw


def tf_variables_from_state(config: dict, state: dict[str, np.ndarray]) -> dict[str, list]:
    """Invert converters.tf_pickle.tf_state: torch-layout ``state`` → TF variables, in TF creation order, as
    ``{'G': [...], 'mapping': [...], 'synthesis': [...]}`` lists of ``(name, float32 array)``."""
    f32 = np.float32
    R = config["img_resolution"]
    log2 = int(math.log2(R))
    arch = config["synthesis_kwargs"]["architecture"]

    def dense(w: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(w.T, dtype=f32)

    def conv(w: np.ndarray, flip: bool = False) -> np.ndarray:
        t = w.transpose(2, 3, 1, 0)
        return np.ascontiguousarray(t[::-1, ::-1] if flip else t, dtype=f32)

    def layer(scope: str, prefix: str, flip: bool = False, noise: bool = True) -> list:
        v = [
            (f"{scope}/weight", conv(state[f"{prefix}.weight"], flip)),
            (f"{scope}/mod_weight", dense(state[f"{prefix}.affine.weight"])),
            (f"{scope}/mod_bias", (state[f"{prefix}.affine.bias"] - f32(1)).astype(f32)),
        ]
        if noise:
            v.append((f"{scope}/noise_strength", state[f"{prefix}.noise_strength"].astype(f32)))
        v.append((f"{scope}/bias", state[f"{prefix}.bias"].astype(f32)))
        return v

    synthesis: list = []
    noise_src = ["synthesis.b4.conv1"]
    for lg in range(3, log2 + 1):
        noise_src += [f"synthesis.b{2**lg}.conv0", f"synthesis.b{2**lg}.conv1"]
    for i, prefix in enumerate(noise_src):
        synthesis.append((f"noise{i}", state[f"{prefix}.noise_const"][None, None].astype(f32)))
    synthesis.append(("4x4/Const/const", state["synthesis.b4.const"][None].astype(f32)))
    synthesis += layer("4x4/Conv", "synthesis.b4.conv1")
    if arch == "skip" or R == 4:
        synthesis += layer("4x4/ToRGB", "synthesis.b4.torgb", noise=False)
    for lg in range(3, log2 + 1):
        r = 2**lg
        s, p = f"{r}x{r}", f"synthesis.b{r}"
        synthesis += layer(f"{s}/Conv0_up", f"{p}.conv0", flip=True)
        synthesis += layer(f"{s}/Conv1", f"{p}.conv1")
        if arch == "resnet":
            synthesis.append((f"{s}/Skip/weight", conv(state[f"{p}.skip.weight"], flip=True)))
        if arch == "skip" or r == R:
            synthesis += layer(f"{s}/ToRGB", f"{p}.torgb", noise=False)

    mapping: list = []
    if config["c_dim"]:
        mapping += [
            ("LabelEmbed/weight", dense(state["mapping.embed.weight"])),
            ("LabelEmbed/bias", state["mapping.embed.bias"].astype(f32)),
        ]
    for i in range(config["mapping_kwargs"]["num_layers"]):
        mapping += [
            (f"Dense{i}/weight", dense(state[f"mapping.fc{i}.weight"])),
            (f"Dense{i}/bias", state[f"mapping.fc{i}.bias"].astype(f32)),
        ]
    return {"G": [("dlatent_avg", state["mapping.w_avg"].astype(f32))], "mapping": mapping, "synthesis": synthesis}


def tf_generator(
    config: dict,
    state: dict[str, np.ndarray],
    name: str = "Gs",
    *,
    static_kwargs: dict | None = None,
    with_lod: bool = False,
) -> TFNetwork:
    kw = tf_static_kwargs(config) if static_kwargs is None else static_kwargs
    v = tf_variables_from_state(config, state)
    num_ws = 2 * int(math.log2(config["img_resolution"])) - 2
    z, c, w, R = config["z_dim"], config["c_dim"], config["w_dim"], config["img_resolution"]
    synthesis = TFNetwork(
        _tf_net_state(
            "G_synthesis",
            "G_synthesis",
            kw,
            {},
            v["synthesis"],
            [("dlatents_in", [None, num_ws, w])],
            [("images_out", [None, config["img_channels"], R, R])],
        )
    )
    mapping = TFNetwork(
        _tf_net_state(
            "G_mapping",
            "G_mapping",
            {**kw, "dlatent_broadcast": num_ws},
            {},
            v["mapping"],
            [("latents_in", [None, z]), ("labels_in", [None, c])],
            [("dlatents_out", [None, num_ws, w])],
        )
    )
    top = ([("lod", np.float32(0))] if with_lod else []) + v["G"]
    return TFNetwork(
        _tf_net_state(
            name,
            "G_main",
            kw,
            {"synthesis": synthesis, "mapping": mapping},
            top,
            [("latents_in", [None, z]), ("labels_in", [None, c])],
            [("images_out", [None, config["img_channels"], R, R])],
        )
    )


def tf_discriminator(config: dict, seed: int = 0) -> TFNetwork:
    """A small TF ``D_main`` network with its real variable names (resnet)."""
    rng = np.random.default_rng(seed)
    R, c_dim = config["img_resolution"], config["c_dim"]

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    variables: list = []
    res = R
    while res > 4:
        tmp, cout = _channels(config, res), _channels(config, res // 2)
        s = f"{res}x{res}"
        if res == R:
            variables += [(f"{s}/FromRGB/weight", r(1, 1, config["img_channels"], tmp)), (f"{s}/FromRGB/bias", r(tmp))]
        variables += [
            (f"{s}/Conv0/weight", r(3, 3, tmp, tmp)),
            (f"{s}/Conv0/bias", r(tmp)),
            (f"{s}/Conv1_down/weight", r(3, 3, tmp, cout)),
            (f"{s}/Conv1_down/bias", r(cout)),
            (f"{s}/Skip/weight", r(1, 1, tmp, cout)),
        ]
        res //= 2
    c4 = _channels(config, 4)
    if c_dim:
        variables += [("LabelEmbed/weight", r(c_dim, c4)), ("LabelEmbed/bias", r(c4))]
    variables += [
        ("4x4/Conv/weight", r(3, 3, c4 + 1, c4)),
        ("4x4/Conv/bias", r(c4)),
        ("4x4/Dense0/weight", r(c4 * 16, c4)),
        ("4x4/Dense0/bias", r(c4)),
        ("Output/weight", r(c4, c4 if c_dim else 1)),
        ("Output/bias", r(c4 if c_dim else 1)),
    ]
    kw = {
        "num_channels": config["img_channels"],
        "resolution": R,
        "label_size": c_dim,
        "fmap_base": config["synthesis_kwargs"]["channel_base"] // 2,
        "fmap_max": 512,
        "num_fp16_res": 4,
        "conv_clamp": 256,
        "mbstd_group_size": 4,
    }
    return TFNetwork(
        _tf_net_state(
            "D",
            "D_main",
            kw,
            {},
            variables,
            [("images_in", [None, config["img_channels"], R, R]), ("labels_in", [None, c_dim])],
            [("scores_out", [None, 1])],
        )
    )


def tf_pickle_bytes(
    config: dict,
    state: dict[str, np.ndarray],
    *,
    protocol: int = 3,
    with_lod: bool = False,
    static_kwargs: dict | None = None,
    seed: int = 1,
) -> bytes:
    """``pickle.dump((G, D, Gs))``. ``G`` (raw) has different values than ``Gs`` so picking the wrong one shows."""
    g_raw = {k: (v * np.float32(2) if not k.endswith("resample_filter") else v) for k, v in state.items()}
    G = tf_generator(config, g_raw, "G", static_kwargs=static_kwargs, with_lod=with_lod)
    D = tf_discriminator(config, seed)
    Gs = tf_generator(config, state, "Gs", static_kwargs=static_kwargs, with_lod=with_lod)
    return dumps((G, D, Gs), protocol=protocol)


def write_tf_pickle(path: Any, config: dict, state: dict[str, np.ndarray], **kwargs: Any) -> Any:
    with open(path, "wb") as f:
        f.write(tf_pickle_bytes(config, state, **kwargs))
    return path
