"""StyleGAN (v1) TF pickles (NVlabs/stylegan, ``G_style``) → ``(config, flat state)`` with numpy only.

A StyleGAN 1 ``(G, D, Gs)`` pickle holds three ``dnnlib.tflib.network.Network`` states (version 3 from NVlabs/stylegan,
4 when re-saved by the StyleGAN2 code, 2 for the oldest). ``Gs`` is built by ``G_style`` and has two components,
``synthesis`` (``G_synthesis``) and ``mapping`` (``G_mapping``), each with its own ``static_kwargs`` and variables.
The facts used here are from the public ``training/networks_stylegan.py`` and ``dnnlib/tflib/network.py``.

**State names.** NVIDIA's TF variable names, the component key as prefix and ``/`` made ``.``:
``mapping.LabelConcat.weight [label_size, latent_size]`` (conditional networks), ``mapping.Dense{i}.{weight [in, out],
bias}`` (``Dense0``'s ``in`` is ``2·latent_size`` with labels: z ‖ its label embedding), ``synthesis.noise{i} [1, 1,
r, r]`` (the stored noise inputs),
``synthesis.4x4.Const.const [1, C, 4, 4]``, ``synthesis.{R}x{R}.{Const|Conv|Conv0_up|Conv1}.{weight [3, 3, I, O],
Noise.weight [O], bias [O], StyleMod.weight [w, 2·O], StyleMod.bias [2·O]}``, ``synthesis.ToRGB_lod0.{weight [1, 1, C,
channels], bias}`` and ``dlatent_avg [w]``. Values and layouts are the original ones (TF HWIO kernels, NCHW
constants, unscaled weights: the equalized-lr gains are applied by the model). Two kinds of TF variable are checked
and then dropped: the ``lod`` scalars (which must be 0, a finished network) and the ``ToRGB_lod{k}`` layers for
k ≥ 1, which only the progressive-growing blend at lod > 0 reads.

**Config**::

    {"family": "stylegan1", "z_dim", "c_dim" (label_size; 0: unconditional), "w_dim", "img_resolution",
     "img_channels", "num_ws",
     "truncation_psi", "truncation_cutoff",            # G_style's defaults (0.7, 8; None = disabled), informative
     "mapping_kwargs": {"num_layers", "layer_features", "lr_multiplier", "activation", "use_wscale",
                        "normalize_latents"},
     "synthesis_kwargs": {"fmap_base", "fmap_decay", "fmap_max", "activation", "use_wscale", "use_pixel_norm",
                          "use_instance_norm", "use_noise", "blur_filter", "fused_scale"}}

Every kwarg is read from ``static_kwargs`` with NVIDIA's defaults: the mapping's from the mapping component, the
synthesis's from the synthesis component, the truncation defaults from ``Gs``. A kwarg none of ``G_style``,
``G_mapping`` and ``G_synthesis`` declares fails loudly, naming it; variants this project does not implement
(``use_styles=False``, no constant input, float16) fail with what is unsupported. Conditional networks
(``label_size`` > 0) are converted: ``G_mapping`` concatenates ``labels @ LabelConcat/weight`` to the latents.

LSUN cars (512×384): NVIDIA trained it at 512×512 on images letterboxed with black bars (``dataset_tool.py
create_lsun_wide``) and its generator outputs 512×512; NVIDIA crops rows 64…447 only for its figures. So it is
converted as a 512 px generator, like NVIDIA's code runs it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ConversionError
from .safe_pickle import TFNetwork, short_repr
from .sg2 import _int, _number, check_tensors

FAMILY = "stylegan1"

#: ``G_style``'s own keyword arguments (NVlabs/stylegan ``training/networks_stylegan.py``) and their defaults.
STYLE_DEFAULTS: dict[str, Any] = {
    "truncation_psi": 0.7,
    "truncation_cutoff": 8,
    "truncation_psi_val": None,
    "truncation_cutoff_val": None,
    "dlatent_avg_beta": 0.995,
    "style_mixing_prob": 0.9,
    "is_training": False,
    "is_validation": False,
    "is_template_graph": False,
}
#: ``G_mapping``'s keyword arguments and defaults.
MAPPING_DEFAULTS: dict[str, Any] = {
    "latent_size": 512,
    "label_size": 0,
    "dlatent_size": 512,
    "dlatent_broadcast": None,
    "mapping_layers": 8,
    "mapping_fmaps": 512,
    "mapping_lrmul": 0.01,
    "mapping_nonlinearity": "lrelu",
    "use_wscale": True,
    "normalize_latents": True,
    "dtype": "float32",
}
#: ``G_synthesis``'s keyword arguments and defaults.
SYNTHESIS_DEFAULTS: dict[str, Any] = {
    "dlatent_size": 512,
    "num_channels": 3,
    "resolution": 1024,
    "fmap_base": 8192,
    "fmap_decay": 1.0,
    "fmap_max": 512,
    "use_styles": True,
    "const_input_layer": True,
    "use_noise": True,
    "randomize_noise": True,
    "nonlinearity": "lrelu",
    "use_wscale": True,
    "use_pixel_norm": False,
    "use_instance_norm": True,
    "dtype": "float32",
    "fused_scale": "auto",
    "blur_filter": [1, 2, 1],
    "structure": "auto",
    "is_template_graph": False,
    "force_clean_graph": False,
}
KNOWN_KWARGS = frozenset(STYLE_DEFAULTS) | frozenset(MAPPING_DEFAULTS) | frozenset(SYNTHESIS_DEFAULTS)

MAPPING_KEYS = ("num_layers", "layer_features", "lr_multiplier", "activation", "use_wscale", "normalize_latents")
SYNTHESIS_KEYS = (
    "fmap_base",
    "fmap_decay",
    "fmap_max",
    "activation",
    "use_wscale",
    "use_pixel_norm",
    "use_instance_norm",
    "use_noise",
    "blur_filter",
    "fused_scale",
)
TOP_KEYS = (
    "family",
    "z_dim",
    "c_dim",
    "w_dim",
    "img_resolution",
    "img_channels",
    "num_ws",
    "truncation_psi",
    "truncation_cutoff",
    "mapping_kwargs",
    "synthesis_kwargs",
)
ACTIVATIONS = ("lrelu", "relu")
#: Network state versions written by NVlabs/stylegan (3), ProGAN-era code (2), StyleGAN2 (4) and StyleGAN2-ADA (5).
VERSIONS = (2, 3, 4, 5)

_MAX_TAPS = 64


# ---------------------------------------------------------------------------------------------------------------
# Config.


def _bool(value: Any, what: str) -> bool:
    # NVIDIA's code tests these for truth; accept bools and the integers 0/1 (use_noise is used as a shape: 1).
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and int(value) in (0, 1)):
        return bool(value)
    raise ConversionError(f"generator kwarg {what}={short_repr(value)} must be True or False")


def _choice(value: Any, what: str, allowed: tuple) -> Any:
    if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
        raise ConversionError(f"generator kwarg {what}={short_repr(value)} must be one of {allowed}")
    return value


def _blur_filter(value: Any) -> list[int | float] | None:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return None  # NVIDIA: ``blur2d(x) if blur_filter else x``
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or len(value) > _MAX_TAPS:
        raise ConversionError(f"generator kwarg blur_filter={short_repr(value)} must be a short list of numbers")
    if any(isinstance(v, (list, tuple)) for v in value):
        raise ConversionError(f"generator kwarg blur_filter={short_repr(value)}: 2-D blur filters are not supported")
    taps = [_number(v, "blur_filter") for v in value]
    if sum(taps) == 0:
        raise ConversionError(f"generator kwarg blur_filter={taps} sums to 0 (NVIDIA normalises by the sum)")
    return taps


def _unknown(static: dict, where: str, source: str) -> None:
    unknown = sorted((k for k in static if k not in KNOWN_KWARGS), key=str)
    if unknown:
        k = unknown[0]
        raise ConversionError(
            f"unknown StyleGAN (v1) generator kwarg {short_repr(k, 60)}={short_repr(static[k])} in the {where} of "
            f"{source}: this converter does not know what it does, so it refuses to guess"
        )


def _static(net: TFNetwork, where: str, source: str) -> dict:
    static = net.state.get("static_kwargs", {})
    if not isinstance(static, dict) or not all(isinstance(k, str) for k in static):
        raise ConversionError(f"{source}: the {where}'s static_kwargs is not a dict of keyword arguments")
    _unknown(static, where, source)
    return static


def _refuse_variant(what: str, source: str) -> ConversionError:
    return ConversionError(
        f"{source}: this StyleGAN (v1) generator has {what}, which lsd-jax does not implement; it cannot be converted"
    )


def generator_config(Gs: TFNetwork, source: str) -> dict:
    """The config of a ``G_style`` network (its ``mapping`` and ``synthesis`` components' kwargs)."""
    top = _static(Gs, "generator (Gs)", source)
    m_static = _static(Gs.state["components"]["mapping"], "mapping network", source)
    s_static = _static(Gs.state["components"]["synthesis"], "synthesis network", source)

    def style(key: str) -> Any:
        return top.get(key, STYLE_DEFAULTS[key])

    def mapping(key: str) -> Any:
        return m_static.get(key, MAPPING_DEFAULTS[key])

    def synthesis(key: str) -> Any:
        return s_static.get(key, SYNTHESIS_DEFAULTS[key])

    for key in ("is_training", "is_validation", "is_template_graph"):
        for name, static in (("generator", top), ("mapping", m_static), ("synthesis", s_static)):
            if key in static and _bool(static[key], key):
                raise ConversionError(f"{source}: the {name} network was saved with {key}=True (a training graph)")
    for key, fn in (("dtype", mapping), ("dtype", synthesis)):
        if fn(key) != "float32":
            raise _refuse_variant(f"dtype={short_repr(fn(key))} (only float32)", source)
    if not _bool(synthesis("use_styles"), "use_styles"):
        raise _refuse_variant("use_styles=False (the 'traditional' generator of the paper's ablations)", source)
    if not _bool(synthesis("const_input_layer"), "const_input_layer"):
        raise _refuse_variant("const_input_layer=False (a dense input layer instead of the learned constant)", source)
    _bool(synthesis("randomize_noise"), "randomize_noise")  # a render setting here (noise_mode); checked, not kept
    _bool(synthesis("force_clean_graph"), "force_clean_graph")
    _choice(synthesis("structure"), "structure", ("auto", "fixed", "linear", "recursive"))  # same image at lod 0
    for key in ("dlatent_avg_beta", "style_mixing_prob", "truncation_psi_val", "truncation_cutoff_val"):
        if style(key) is not None:
            _number(style(key), key)  # training / validation only

    w_dim = _int(synthesis("dlatent_size"), "dlatent_size", 1)
    if _int(mapping("dlatent_size"), "dlatent_size", 1) != w_dim:
        raise ConversionError(
            f"{source}: the mapping network outputs dlatent_size={mapping('dlatent_size')} but the "
            f"synthesis network takes {w_dim}"
        )
    res = _int(synthesis("resolution"), "img_resolution", 4)
    if res & (res - 1):
        raise ConversionError(f"{source}: generator kwarg resolution={res} must be a power of two")
    num_ws = 2 * int(math.log2(res)) - 2
    broadcast = mapping("dlatent_broadcast")
    if broadcast is None or _int(broadcast, "dlatent_broadcast") != num_ws:
        raise ConversionError(
            f"{source}: the mapping network broadcasts to dlatent_broadcast={short_repr(broadcast)} "
            f"layers, but a {res}px synthesis network has {num_ws}"
        )
    psi = style("truncation_psi")
    cutoff = style("truncation_cutoff")
    config = {
        "family": FAMILY,
        "z_dim": mapping("latent_size"),
        "c_dim": mapping("label_size"),
        "w_dim": w_dim,
        "img_resolution": res,
        "img_channels": synthesis("num_channels"),
        "num_ws": num_ws,
        "truncation_psi": psi,
        "truncation_cutoff": cutoff,
        "mapping_kwargs": {
            "num_layers": mapping("mapping_layers"),
            "layer_features": mapping("mapping_fmaps"),
            "lr_multiplier": mapping("mapping_lrmul"),
            "activation": mapping("mapping_nonlinearity"),
            "use_wscale": mapping("use_wscale"),
            "normalize_latents": mapping("normalize_latents"),
        },
        "synthesis_kwargs": {
            "fmap_base": synthesis("fmap_base"),
            "fmap_decay": synthesis("fmap_decay"),
            "fmap_max": synthesis("fmap_max"),
            "activation": synthesis("nonlinearity"),
            "use_wscale": synthesis("use_wscale"),
            "use_pixel_norm": synthesis("use_pixel_norm"),
            "use_instance_norm": synthesis("use_instance_norm"),
            "use_noise": synthesis("use_noise"),
            "blur_filter": synthesis("blur_filter"),
            "fused_scale": synthesis("fused_scale"),
        },
    }
    return finish_config(config, source)


def finish_config(config: dict, source: str = "the config") -> dict:
    """Validate a StyleGAN 1 config and normalise it to plain JSON-able values (also for one read back from disk)."""
    try:
        if not isinstance(config, dict) or set(config) != set(TOP_KEYS):
            raise ConversionError(f"{source}: a StyleGAN (v1) config has exactly the keys {TOP_KEYS}")
        if config["family"] != FAMILY:
            raise ConversionError(f"{source}: config family {config['family']!r} is not {FAMILY!r}")
        mk, sk = config["mapping_kwargs"], config["synthesis_kwargs"]
        if not isinstance(mk, dict) or set(mk) != set(MAPPING_KEYS):
            raise ConversionError(f"{source}: mapping_kwargs must have exactly the keys {MAPPING_KEYS}")
        if not isinstance(sk, dict) or set(sk) != set(SYNTHESIS_KEYS):
            raise ConversionError(f"{source}: synthesis_kwargs must have exactly the keys {SYNTHESIS_KEYS}")
        out: dict[str, Any] = {"family": FAMILY}
        out["z_dim"] = _int(config["z_dim"], "latent_size", 1)
        out["c_dim"] = _int(config["c_dim"], "label_size")
        out["w_dim"] = _int(config["w_dim"], "dlatent_size", 1)
        res = _int(config["img_resolution"], "img_resolution", 4)
        if res & (res - 1):
            raise ConversionError(f"{source}: resolution={res} must be a power of two")
        out["img_resolution"] = res
        out["img_channels"] = _int(config["img_channels"], "img_channels", 1)
        out["num_ws"] = _int(config["num_ws"], "num_ws", 2)
        if out["num_ws"] != 2 * int(math.log2(res)) - 2:
            raise ConversionError(f"{source}: num_ws={out['num_ws']} does not match resolution {res}")
        psi = config["truncation_psi"]
        out["truncation_psi"] = None if psi is None else _number(psi, "truncation_psi")
        cutoff = config["truncation_cutoff"]
        out["truncation_cutoff"] = None if cutoff is None else _int(cutoff, "truncation_cutoff", -(1 << 16))
        lr = _number(mk["lr_multiplier"], "mapping_lrmul")
        if lr <= 0:
            raise ConversionError(f"{source}: generator kwarg mapping_lrmul={lr} must be positive")
        out["mapping_kwargs"] = {
            "num_layers": _int(mk["num_layers"], "num_layers"),
            "layer_features": _int(mk["layer_features"], "mapping_fmaps", 1),
            "lr_multiplier": lr,
            "activation": _choice(mk["activation"], "mapping_nonlinearity", ACTIVATIONS),
            "use_wscale": _bool(mk["use_wscale"], "use_wscale"),
            "normalize_latents": _bool(mk["normalize_latents"], "normalize_latents"),
        }
        if out["mapping_kwargs"]["num_layers"] == 0 and mapping_inputs(out) != out["w_dim"]:
            raise ConversionError(
                f"{source}: with mapping_layers=0, the mapping's input ({mapping_inputs(out)}: "
                f"latent_size, doubled with labels) must equal dlatent_size ({out['w_dim']})"
            )
        fmap_base = _number(sk["fmap_base"], "fmap_base")
        fmap_decay = _number(sk["fmap_decay"], "fmap_decay")
        fused = sk["fused_scale"]
        out["synthesis_kwargs"] = {
            "fmap_base": fmap_base,
            "fmap_decay": fmap_decay,
            "fmap_max": _int(sk["fmap_max"], "fmap_max", 1),
            "activation": _choice(sk["activation"], "nonlinearity", ACTIVATIONS),
            "use_wscale": _bool(sk["use_wscale"], "use_wscale"),
            "use_pixel_norm": _bool(sk["use_pixel_norm"], "use_pixel_norm"),
            "use_instance_norm": _bool(sk["use_instance_norm"], "use_instance_norm"),
            "use_noise": _bool(sk["use_noise"], "use_noise"),
            "blur_filter": _blur_filter(sk["blur_filter"]),
            "fused_scale": fused if isinstance(fused, str) else _bool(fused, "fused_scale"),
        }
        _choice(out["synthesis_kwargs"]["fused_scale"], "fused_scale", (True, False, "auto"))
        for r in range(1, int(math.log2(res))):
            _int(nf(out, r), f"feature maps at {2 ** (r + 1)}px (fmap_base / 2^(stage·fmap_decay))", 1)
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise ConversionError(f"{source}: malformed StyleGAN (v1) config ({type(exc).__name__}: {exc})") from None
    return out


def nf(config: dict, stage: int) -> int:
    """NVIDIA's ``nf(stage) = min(int(fmap_base / 2^(stage·fmap_decay)), fmap_max)``: the feature maps of the
    layers at resolution ``2^(stage+1)``."""
    sk = config["synthesis_kwargs"]
    return min(int(sk["fmap_base"] / (2.0 ** (stage * sk["fmap_decay"]))), sk["fmap_max"])


def mapping_inputs(config: dict) -> int:
    """The width of ``Dense0``'s input: ``latent_size``, or twice that with labels (z ‖ its ``LabelConcat``)."""
    return config["z_dim"] * (2 if config["c_dim"] > 0 else 1)


# ---------------------------------------------------------------------------------------------------------------
# State.


def _layer_shapes(config: dict, scope: str, cout: int, weight: tuple[int, ...] | None) -> dict[str, tuple]:
    sk = config["synthesis_kwargs"]
    out: dict[str, tuple] = {}
    if weight is not None:
        out[f"{scope}.weight"] = weight
    if sk["use_noise"]:
        out[f"{scope}.Noise.weight"] = (cout,)
    out[f"{scope}.bias"] = (cout,)
    out[f"{scope}.StyleMod.weight"] = (config["w_dim"], 2 * cout)
    out[f"{scope}.StyleMod.bias"] = (2 * cout,)
    return out


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor the converted generator holds: dotted name → shape, in NVIDIA's creation order (synthesis,
    mapping, then ``dlatent_avg``)."""
    res_log2 = int(math.log2(config["img_resolution"]))
    out: dict[str, tuple[int, ...]] = {}
    if config["synthesis_kwargs"]["use_noise"]:
        for i in range(config["num_ws"]):
            r = 2 ** (i // 2 + 2)
            out[f"synthesis.noise{i}"] = (1, 1, r, r)
    c = nf(config, 1)
    out["synthesis.4x4.Const.const"] = (1, c, 4, 4)
    out.update(_layer_shapes(config, "synthesis.4x4.Const", c, None))
    out.update(_layer_shapes(config, "synthesis.4x4.Conv", c, (3, 3, c, c)))
    for lg in range(3, res_log2 + 1):
        cin, cout, s = nf(config, lg - 2), nf(config, lg - 1), f"synthesis.{2**lg}x{2**lg}"
        out.update(_layer_shapes(config, f"{s}.Conv0_up", cout, (3, 3, cin, cout)))
        out.update(_layer_shapes(config, f"{s}.Conv1", cout, (3, 3, cout, cout)))
    out["synthesis.ToRGB_lod0.weight"] = (1, 1, nf(config, res_log2 - 1), config["img_channels"])
    out["synthesis.ToRGB_lod0.bias"] = (config["img_channels"],)
    mk = config["mapping_kwargs"]
    n = mk["num_layers"]
    if config["c_dim"] > 0:
        out["mapping.LabelConcat.weight"] = (config["c_dim"], config["z_dim"])
    features = [mapping_inputs(config)] + [mk["layer_features"]] * (n - 1) + [config["w_dim"]] * (n > 0)
    for i in range(n):
        out[f"mapping.Dense{i}.weight"] = (features[i], features[i + 1])
        out[f"mapping.Dense{i}.bias"] = (features[i + 1],)
    out["dlatent_avg"] = (config["w_dim"],)
    return out


def dropped_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """TF variables a finished ``Gs`` holds that the converted generator does not keep (checked, then dropped):
    the ``lod`` scalars and the lower-resolution ``ToRGB_lod{k}`` layers of progressive growing."""
    res_log2 = int(math.log2(config["img_resolution"]))
    out: dict[str, tuple[int, ...]] = {"lod": (), "synthesis.lod": ()}
    for lod in range(1, res_log2 - 1):
        out[f"synthesis.ToRGB_lod{lod}.weight"] = (1, 1, nf(config, res_log2 - 1 - lod), config["img_channels"])
        out[f"synthesis.ToRGB_lod{lod}.bias"] = (config["img_channels"],)
    return out


def describe(config: dict) -> str:
    sk, mk = config["synthesis_kwargs"], config["mapping_kwargs"]
    labels = f", {config['c_dim']} labels" if config["c_dim"] else ""
    return (
        f"StyleGAN (v1) {config['img_resolution']}px, z={config['z_dim']}{labels}, w={config['w_dim']}, "
        f"{mk['num_layers']} mapping layers, fmap_base={sk['fmap_base']}, fmap_max={sk['fmap_max']}"
    )


def check_state(config: dict, state: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """``state`` checked against :func:`expected_shapes` (names, shapes, float dtype), as float32 in that order."""
    return check_tensors(
        state,
        expected_shapes(config),
        source,
        describe(config),
        owner=f"{describe(config)} generator",
        basis="the config",
    )


def _variables(net: TFNetwork, prefix: str, source: str) -> dict[str, np.ndarray]:
    variables = net.state.get("variables", [])
    if not isinstance(variables, (list, tuple)):
        raise ConversionError(f"{source}: malformed TF network variables under {prefix or 'the top level'!r}")
    out: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    for item in variables:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], str):
            raise ConversionError(f"{source}: malformed TF variable entry under {prefix or 'the top level'!r}")
        name, value = item
        if isinstance(value, np.generic):  # TF's session.run returns 0-d variables (lod) as numpy scalars
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            raise ConversionError(f"{source}: TF variable {short_repr(name)} is a {type(value).__name__}, not an array")
        key = prefix + name.replace("/", ".")
        if key in out:
            raise ConversionError(f"{source}: TF variable {short_repr(name)} appears twice")
        if id(value) in seen:  # one array under two names would be copied once per name
            raise ConversionError(
                f"{source}: TF variable {short_repr(name)} is the same array as another one; "
                "NVIDIA's TF pickles never share variables"
            )
        seen.add(id(value))
        out[key] = value
    return out


def convert(Gs: TFNetwork, source: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` of a ``G_style`` network (``Gs`` of a StyleGAN 1 pickle)."""
    st = Gs.state
    version = st.get("version")
    if version not in VERSIONS or isinstance(version, bool):
        raise ConversionError(
            f"{source}: unsupported TF network pickle version {short_repr(version)} (StyleGAN 1 "
            f"pickles have {VERSIONS[0]}-{VERSIONS[-1]})"
        )
    components = st.get("components")
    if not isinstance(components, dict) or set(components) != {"synthesis", "mapping"}:
        got = sorted(components) if isinstance(components, dict) else components
        raise ConversionError(
            f"{source}: a StyleGAN (v1) generator has exactly the components 'synthesis' and "
            f"'mapping', this one has {short_repr(got)}"
        )
    for key, func in (("synthesis", "G_synthesis"), ("mapping", "G_mapping")):
        comp = components[key]
        if not isinstance(comp, TFNetwork) or not isinstance(comp.state, dict):
            raise ConversionError(f"{source}: the generator's {key} component is not a TF network")
        if comp.state.get("build_func_name") != func:
            raise ConversionError(
                f"{source}: the generator's {key} component is built by "
                f"{short_repr(comp.state.get('build_func_name'))}, expected {func}"
            )
        if comp.state.get("components"):
            raise ConversionError(f"{source}: the generator's {key} component has sub-components")
    config = generator_config(Gs, source)
    tf_vars = {
        **_variables(components["synthesis"], "synthesis.", source),
        **_variables(components["mapping"], "mapping.", source),
        **_variables(Gs, "", source),
    }
    dropped = dropped_shapes(config)
    kept = {}
    for key, value in tf_vars.items():
        if key not in dropped:
            kept[key] = value
            continue
        if tuple(value.shape) != dropped[key] or value.dtype.kind != "f":
            raise ConversionError(
                f"{source}: TF variable {key!r} has shape {tuple(value.shape)} ({value.dtype}), "
                f"expected {dropped[key]} floats"
            )
        if key.endswith("lod") and float(value) != 0.0:
            raise ConversionError(
                f"{source} was saved during progressive growing (lod={float(value):g}): only finished StyleGAN "
                f"(v1) networks (lod 0) can be converted; use a final snapshot"
            )
    for key in ("lod", "synthesis.lod"):
        if key not in tf_vars:
            raise ConversionError(f"{source}: the TF generator lacks variable {key!r}")
    state = check_tensors(
        kept,
        expected_shapes(config),
        f"generator of {source}",
        describe(config),
        owner=f"{describe(config)} generator",
        basis="the config",
    )
    return config, state
