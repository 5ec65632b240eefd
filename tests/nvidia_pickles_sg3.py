"""Writers for StyleGAN3 network pickles byte-compatible with NVIDIA's (NVlabs/stylegan3 ``train.py`` snapshots),
without torch or NVIDIA's code, reusing the pickler and torch stand-ins of tests/nvidia_pickles.py.

A snapshot is ``pickle.dump({'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'})`` (protocol 4; that key
order) whose generators are persistent ``training.networks_stylegan3`` modules: ``Generator`` → ``synthesis``
(``SynthesisNetwork``: ``input`` = ``SynthesisInput``, then ``L{idx}_{size}_{channels}`` = ``SynthesisLayer``) and
``mapping`` (``MappingNetwork``: ``embed``, ``fc{i}`` = ``FullyConnectedLayer``). Module states carry NVIDIA's
attributes with NVIDIA's types (numpy arrays for sizes, ``np.float64`` cutoffs / weight gains, ``np.bool_``
``use_fp16``, ``None`` filter buffers for one-tap filters, ``embed = None`` for unconditional models), from
tests/sg3_state.py's ``derive_synthesis``. The discriminator is the StyleGAN2 one (as in NVIDIA's SG3 snapshots).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import nvidia_pickles as nv
from sg3_state import derive_synthesis

MODULE_SRC = (
    '"""training/networks_stylegan3.py stand-in: a loader must never execute it."""\n'
    'import os\nos.system("touch /tmp/lsd_jax_sg3_module_src_was_executed")\n'
)


def init_kwargs(config: dict) -> dict:
    """``Generator._init_kwargs`` as NVIDIA's stylegan3 ``train.py`` builds them: z_dim, w_dim,
    mapping_kwargs(num_layers), channel_base, channel_max, magnitude_ema_beta, config-r's conv_kernel and
    use_radial_filters, any other non-default synthesis kwarg, then c_dim, img_resolution, img_channels."""
    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    mapping = nv.EasyDict(num_layers=mk["num_layers"])
    for key, default in (("lr_multiplier", 0.01), ("w_avg_beta", 0.998)):
        if mk[key] != default:
            mapping[key] = mk[key]
    kw: dict[str, Any] = {
        "z_dim": config["z_dim"],
        "w_dim": config["w_dim"],
        "mapping_kwargs": mapping,
        "channel_base": sk["channel_base"],
        "channel_max": sk["channel_max"],
        "magnitude_ema_beta": sk["magnitude_ema_beta"],
    }
    if sk["use_radial_filters"]:
        kw.update(conv_kernel=sk["conv_kernel"], use_radial_filters=True)
    defaults = {
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
        "conv_clamp": 256,
    }
    for key, default in defaults.items():
        if sk[key] != default and key not in kw:
            kw[key] = sk[key]
    kw.update(c_dim=config["c_dim"], img_resolution=config["img_resolution"], img_channels=config["img_channels"])
    return kw


def _module(
    class_name: str, params: dict, buffers: dict, modules: dict, attrs: dict, kwargs: dict | None = None
) -> nv.Persistent:
    real_buffers = {k: v for k, v in buffers.items() if v is not None}
    state = nv.module_state(params, real_buffers, modules, attrs, (), kwargs or {})
    # keep NVIDIA's buffer order, None buffers included (register_buffer(name, None))
    tensors = state["_buffers"]
    state["_buffers"] = OrderedDict((k, tensors[k] if v is not None else None) for k, v in buffers.items())
    return nv.Persistent(class_name, state, MODULE_SRC)


def _fc(state: dict, prefix: str, n_in: int, n_out: int, activation: str = "linear", lr: float = 1.0) -> nv.Persistent:
    return _module(
        "FullyConnectedLayer",
        {"weight": state[f"{prefix}.weight"], "bias": state[f"{prefix}.bias"]},
        {},
        {},
        {
            "in_features": n_in,
            "out_features": n_out,
            "activation": activation,
            "weight_gain": np.float64(lr / np.sqrt(n_in)),
            "bias_gain": lr,
        },
        {"in_features": n_in, "out_features": n_out, "activation": activation, "lr_multiplier": lr}
        if activation != "linear"
        else {"in_features": n_in, "out_features": n_out},
    )


def generator(
    config: dict,
    state: dict[str, np.ndarray],
    *,
    kwargs: dict | None = None,
    drop_attrs: dict[str, tuple[str, ...]] | None = None,
) -> nv.Persistent:
    """A persistent StyleGAN3 ``Generator`` holding ``state`` (torch layout). ``drop_attrs``: module path →
    attribute names to leave out (for wrong-pickle tests)."""
    drop_attrs = drop_attrs or {}
    mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
    w_dim, c_dim, z_dim = config["w_dim"], config["c_dim"], config["z_dim"]
    inp, layers = derive_synthesis(config)
    num_ws = len(layers) + 1

    def attrs(path: str, a: dict) -> dict:
        return {k: v for k, v in a.items() if k not in drop_attrs.get(path, ())}

    p = "synthesis.input"
    input_mod = _module(
        "SynthesisInput",
        {"weight": state[f"{p}.weight"]},
        {"transform": state[f"{p}.transform"], "freqs": state[f"{p}.freqs"], "phases": state[f"{p}.phases"]},
        {"affine": _fc(state, f"{p}.affine", w_dim, 4)},
        attrs(
            p,
            {
                "w_dim": w_dim,
                "channels": inp["channels"],
                "size": inp["size"],
                "sampling_rate": inp["sampling_rate"],
                "bandwidth": inp["bandwidth"],
            },
        ),
        {
            "w_dim": w_dim,
            "channels": inp["channels"],
            "size": int(inp["size"][0]),
            "sampling_rate": inp["sampling_rate"],
            "bandwidth": inp["bandwidth"],
        },
    )
    children: dict[str, Any] = {"input": input_mod}
    for a in layers:
        p = f"synthesis.{a['name']}"
        layer_attrs = {k: v for k, v in a.items() if k != "name"}
        layer_attrs["in_size"], layer_attrs["out_size"] = a["in_size"], a["out_size"]
        ctor = {
            k: layer_attrs[k]
            for k in (
                "w_dim",
                "is_torgb",
                "is_critically_sampled",
                "use_fp16",
                "in_channels",
                "out_channels",
                "in_sampling_rate",
                "out_sampling_rate",
                "in_cutoff",
                "out_cutoff",
                "in_half_width",
                "out_half_width",
            )
        }
        ctor.update(
            in_size=int(a["in_size"][0]),
            out_size=int(a["out_size"][0]),
            conv_kernel=sk["conv_kernel"],
            filter_size=sk["filter_size"],
            lrelu_upsampling=sk["lrelu_upsampling"],
            use_radial_filters=sk["use_radial_filters"],
            conv_clamp=sk["conv_clamp"],
            magnitude_ema_beta=sk["magnitude_ema_beta"],
        )
        children[a["name"]] = _module(
            "SynthesisLayer",
            {"weight": state[f"{p}.weight"], "bias": state[f"{p}.bias"]},
            {
                "magnitude_ema": state[f"{p}.magnitude_ema"],
                "up_filter": state.get(f"{p}.up_filter"),
                "down_filter": state.get(f"{p}.down_filter"),
            },
            {"affine": _fc(state, f"{p}.affine", w_dim, a["in_channels"])},
            attrs(p, layer_attrs),
            ctor,
        )
    synthesis = _module(
        "SynthesisNetwork",
        {},
        {},
        children,
        attrs(
            "synthesis",
            {
                "w_dim": w_dim,
                "num_ws": num_ws,
                "img_resolution": config["img_resolution"],
                "img_channels": config["img_channels"],
                "num_layers": sk["num_layers"],
                "num_critical": sk["num_critical"],
                "margin_size": sk["margin_size"],
                "output_scale": sk["output_scale"],
                "num_fp16_res": sk["num_fp16_res"],
                "layer_names": [a["name"] for a in layers],
            },
        ),
        {
            "w_dim": w_dim,
            "img_resolution": config["img_resolution"],
            "img_channels": config["img_channels"],
            **{
                k: v
                for k, v in sk.items()
                if k
                not in (
                    "conv_kernel",
                    "filter_size",
                    "lrelu_upsampling",
                    "use_radial_filters",
                    "conv_clamp",
                    "magnitude_ema_beta",
                )
            },
        },
    )

    features = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * mk["num_layers"]
    m_children: dict[str, Any] = {}
    m_attrs: dict[str, Any] = {
        "z_dim": z_dim,
        "c_dim": c_dim,
        "w_dim": w_dim,
        "num_ws": num_ws,
        "num_layers": mk["num_layers"],
        "w_avg_beta": mk["w_avg_beta"],
        "trainable_layers": mk["num_layers"],
    }
    if c_dim:
        m_children["embed"] = _fc(state, "mapping.embed", c_dim, w_dim)
    else:
        m_attrs["embed"] = None  # `self.embed = ... if c_dim > 0 else None`: a plain attribute
    for i in range(mk["num_layers"]):
        m_children[f"fc{i}"] = _fc(state, f"mapping.fc{i}", features[i], features[i + 1], "lrelu", mk["lr_multiplier"])
    mapping = _module(
        "MappingNetwork",
        {},
        {"w_avg": state["mapping.w_avg"]},
        m_children,
        attrs("mapping", m_attrs),
        {"z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "num_ws": num_ws, **dict(mk)},
    )

    g_attrs = {k: config[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    g_attrs["num_ws"] = num_ws
    return _module(
        "Generator",
        {},
        {},
        {"synthesis": synthesis, "mapping": mapping},
        attrs("", g_attrs),
        init_kwargs(config) if kwargs is None else kwargs,
    )


def raw_generator_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``G`` (the non-EMA generator) differs from ``G_ema``: weights and biases negated (buffers kept)."""
    return {k: (-v if k.endswith((".weight", ".bias")) else v) for k, v in state.items()}


def snapshot(config: dict, state: dict[str, np.ndarray], *, with_augment: bool = True, **kwargs: Any) -> dict:
    """The dict NVIDIA's stylegan3 training loop pickles, in its key order."""
    return {
        "G": generator(config, raw_generator_state(state), **kwargs),
        "D": nv.discriminator(config),
        "G_ema": generator(config, state, **kwargs),
        "augment_pipe": nv.augment_pipe() if with_augment else None,
        "training_set_kwargs": nv.training_set_kwargs(config),
    }


def pickle_bytes(
    config: dict, state: dict[str, np.ndarray], *, protocol: int = 4, numpy1_names: bool = True, **kwargs: Any
) -> bytes:
    return nv.dumps(snapshot(config, state, **kwargs), protocol=protocol, numpy1_names=numpy1_names)


def write_pickle(path: Any, config: dict, state: dict[str, np.ndarray], **kwargs: Any) -> Any:
    with open(path, "wb") as f:
        f.write(pickle_bytes(config, state, **kwargs))
    return path
