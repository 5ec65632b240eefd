"""NVIDIA TensorFlow network pickles (stylegan2, stylegan2-ada TF) → ``(config, state)`` in torch names/layouts.

A StyleGAN (v1) ``Gs`` (``build_func_name == 'G_style'``) is handed to :mod:`converters.sg1` instead, which keeps
NVIDIA's TF names and layouts.

Input: what :func:`converters.safe_pickle.safe_loads` returns for ``pickle.dump((G, D, Gs))``: a tuple of three
:class:`~converters.safe_pickle.TFNetwork` records (or a single one). ``Gs`` is converted. The mapping follows
the public NVlabs/stylegan2-ada-pytorch ``legacy.py`` conventions:

* kwargs: latent_size→z_dim, label_size→c_dim, dlatent_size→w_dim, resolution, num_channels; mapping_layers,
  label_fmaps, mapping_fmaps, mapping_nonlinearity, mapping_lrmul, w_avg_beta; fmap_base×2→channel_base,
  fmap_max, num_fp16_res, conv_clamp, architecture, resample_kernel (+ use_noise / nonlinearity, which must be
  True / 'lrelu'); truncation_psi, truncation_cutoff, style_mixing_prob, structure ignored; anything else refused;
* tensors: dense ``W.T``; conv ``W.transpose(3,2,0,1)``, ``Conv0_up`` and ``Skip`` spatially flipped first;
  ``affine.bias = mod_bias + 1``; ``const = const[0]``; ``noise_const = noise{i}[0, 0]`` (b4.conv1←noise0,
  b{R}.conv0←noise{2·log2R−5}, b{R}.conv1←noise{2·log2R−4}); ``w_avg = dlatent_avg``; the ``resample_filter``
  buffers (not stored by TF) = ``setup_filter(resample_kernel)``.

Every TF variable must be used (``lod``, a progressive-growing scalar of the original StyleGAN2 ``G_main``, is the
one exception); a variable left over fails loudly, naming it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from . import sg1, sg2
from .errors import ConversionError
from .safe_pickle import TFNetwork, short_repr

_IGNORED_KWARGS = ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure")


def is_tf(obj: Any) -> bool:
    return isinstance(obj, TFNetwork) or (isinstance(obj, tuple) and any(isinstance(x, TFNetwork) for x in obj))


def _pick_gs(obj: Any, source: str) -> TFNetwork:
    if isinstance(obj, tuple):
        if len(obj) != 3 or not all(isinstance(x, TFNetwork) for x in obj):
            raise ConversionError(f"{source}: a TF network pickle must be a tuple (G, D, Gs) of networks")
        return obj[2]
    return obj


def _check_version(net: TFNetwork, source: str) -> dict:
    st = net.state
    version = st.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 4:
        raise ConversionError(
            f"{source}: TensorFlow network pickle version {short_repr(version)} is too old (need >= 4)"
        )
    return st


def tf_config(static: Any, source: str) -> dict:
    """Generator config from a TF ``Gs``'s ``static_kwargs`` (legacy.py's mapping, defaults filled in)."""
    if not isinstance(static, dict):
        raise ConversionError(f"{source}: TF static_kwargs is a {type(static).__name__}, not a dict")
    known: set[str] = set()

    def kw(name: str, default: Any = None, none: Any = None) -> Any:
        known.add(name)
        value = static.get(name, default)
        return none if value is None else value

    top = {
        "z_dim": kw("latent_size", 512),
        "c_dim": kw("label_size", 0),
        "w_dim": kw("dlatent_size", 512),
        "img_resolution": kw("resolution", 1024),
        "img_channels": kw("num_channels", 3),
    }
    embed = kw("label_fmaps", None)
    if embed is None and top["c_dim"] and top["z_dim"] != top["w_dim"]:
        embed = top["z_dim"]  # TF's G_mapping embeds labels to latent_size features by default
    mapping = {
        "num_layers": kw("mapping_layers", 8),
        "embed_features": embed,
        "layer_features": kw("mapping_fmaps", None),
        "activation": kw("mapping_nonlinearity", "lrelu"),
        "lr_multiplier": kw("mapping_lrmul", 0.01),
        "w_avg_beta": kw("w_avg_beta", 0.995, none=1),
    }
    fmap_base = kw("fmap_base", 16384)
    if isinstance(fmap_base, bool) or not isinstance(fmap_base, (int, np.integer)):
        raise ConversionError(f"{source}: TF kwarg fmap_base={short_repr(fmap_base)} must be an integer")
    resample = kw("resample_kernel", [1, 3, 3, 1])
    if resample is None:  # kw() maps an explicit None to None
        raise ConversionError(f"{source}: TF kwarg resample_kernel=None (box filter) is not supported")
    synthesis = {
        "channel_base": int(fmap_base) * 2,
        "channel_max": kw("fmap_max", 512),
        "num_fp16_res": kw("num_fp16_res", 0),
        "conv_clamp": kw("conv_clamp", None),
        "architecture": kw("architecture", "skip"),
        "resample_filter": list(resample) if isinstance(resample, (list, tuple)) else resample,
    }
    for tf_name, wanted in (("use_noise", True), ("nonlinearity", "lrelu")):
        if kw(tf_name, wanted) != wanted:
            raise ConversionError(
                f"{source}: TF kwarg {tf_name}={short_repr(static[tf_name])} is not supported "
                f"(only {wanted!r}): this generator cannot be converted"
            )
    for name in _IGNORED_KWARGS:
        kw(name)
    unknown = sorted(set(static) - known, key=str)
    if unknown:
        raise ConversionError(
            f"unknown TensorFlow generator kwarg {short_repr(unknown[0], 60)}={short_repr(static[unknown[0]])} in "
            f"{source}: "
            f"this converter does not know what it does, so it refuses to guess"
        )
    return sg2.finish_config(top, mapping, synthesis)


def collect_variables(net: TFNetwork, source: str) -> dict[str, np.ndarray]:
    """``{'dlatent_avg': …, 'mapping/Dense0/weight': …, 'synthesis/4x4/Conv/weight': …}`` (legacy.py's naming).

    Each network and each array is visited once: a component reached twice, or one array stored under two variable
    names (NVIDIA's TF pickles never share either; the conversion would copy a shared array once per name), is
    refused."""
    out: dict[str, np.ndarray] = {}
    seen_nets: set[int] = set()
    seen_arrays: dict[int, str] = {}

    def recurse(prefix: str, node: Any, depth: int) -> None:
        if depth > 8 or not isinstance(node, TFNetwork):
            raise ConversionError(f"{source}: malformed TF network component {short_repr(prefix)}")
        if id(node) in seen_nets:
            raise ConversionError(
                f"{source}: TF network component {short_repr(prefix)} appears twice (shared); "
                "NVIDIA's TF pickles never share components"
            )
        seen_nets.add(id(node))
        variables = node.state.get("variables", [])
        components = node.state.get("components", {})
        at = short_repr(prefix) if prefix else "top level"
        if not isinstance(variables, (list, tuple)) or not isinstance(components, dict):
            raise ConversionError(f"{source}: malformed TF network state at {at}")
        for item in variables:
            if (
                not isinstance(item, (list, tuple))
                or len(item) != 2
                or not isinstance(item[0], str)
                or not isinstance(item[1], (np.ndarray, np.generic))
            ):
                raise ConversionError(f"{source}: malformed TF variable entry under {at}")
            name = prefix + item[0]
            if isinstance(item[1], np.ndarray):
                if id(item[1]) in seen_arrays:
                    raise ConversionError(
                        f"{source}: TF variables {short_repr(seen_arrays[id(item[1])], 60)} and "
                        f"{short_repr(name, 60)} are the same array; NVIDIA's TF pickles never "
                        "share variables"
                    )
                seen_arrays[id(item[1])] = name
            # TF's session.run returns 0-d variables (lod, noise_strength) as numpy scalars, not arrays
            out[name] = np.asarray(item[1])
        for name, comp in components.items():
            recurse(f"{prefix}{name}/", comp, depth + 1)

    recurse("", net, 0)
    return out


_LAYER = re.compile(
    r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(weight|bias|noise_strength|noise_const|"
    r"affine\.weight|affine\.bias)"
)


def tf_state(config: dict, tf_vars: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The torch-layout state dict for ``config`` from TF variables (the mapping in the module docstring)."""
    used: set[str] = set()
    filt = sg2.setup_filter(config["synthesis_kwargs"]["resample_filter"])

    def take(name: str, ndim: int, key: str) -> np.ndarray:
        if name not in tf_vars:
            raise ConversionError(f"{source}: the TF generator lacks variable {name!r} (needed for {key!r})")
        value = tf_vars[name]
        if value.ndim != ndim:
            raise ConversionError(f"{source}: TF variable {name!r} has shape {value.shape}, expected {ndim} dims")
        if value.dtype.kind != "f":
            raise ConversionError(f"{source}: TF variable {name!r} has dtype {value.dtype}, expected floats")
        used.add(name)
        return value.astype(np.float32, copy=False)

    def conv(w: np.ndarray, flip: bool) -> np.ndarray:
        if flip:
            w = w[::-1, ::-1]
        return w.transpose(3, 2, 0, 1)

    def value_for(key: str) -> np.ndarray:
        if key.endswith("resample_filter"):
            return filt.copy()
        if key == "mapping.w_avg":
            return take("dlatent_avg", 1, key)
        m = re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", key)
        if m:
            scope = "mapping/LabelEmbed" if m.group(1) == "embed" else f"mapping/Dense{m.group(2)}"
            if m.group(3) == "weight":
                return take(f"{scope}/weight", 2, key).T
            return take(f"{scope}/bias", 1, key)
        if key == "synthesis.b4.const":
            return take("synthesis/4x4/Const/const", 4, key)[0]
        m = re.fullmatch(r"synthesis\.b(\d+)\.skip\.weight", key)
        if m:
            r = m.group(1)
            return conv(take(f"synthesis/{r}x{r}/Skip/weight", 4, key), flip=True)
        m = _LAYER.fullmatch(key)
        if not m:
            raise ConversionError(f"no TF variable is known for torch tensor {key!r}")
        r, layer, field = int(m.group(1)), m.group(2), m.group(3)
        scope = (
            f"synthesis/{r}x{r}/"
            + {"conv0": "Conv0_up", "conv1": "Conv" if r == 4 else "Conv1", "torgb": "ToRGB"}[layer]
        )
        if field == "weight":
            return conv(take(f"{scope}/weight", 4, key), flip=(layer == "conv0"))
        if field in ("bias", "noise_strength"):
            return take(f"{scope}/{field}", 1 if field == "bias" else 0, key)
        if field == "affine.weight":
            return take(f"{scope}/mod_weight", 2, key).T
        if field == "affine.bias":
            return take(f"{scope}/mod_bias", 1, key) + np.float32(1)
        # noise_const
        log2 = int(round(math.log2(r)))
        index = 0 if r == 4 else 2 * log2 - (5 if layer == "conv0" else 4)
        return take(f"synthesis/noise{index}", 4, key)[0, 0]

    state = {key: np.asarray(value_for(key), dtype=np.float32, order="C") for key in sg2.expected_shapes(config)}
    for name, value in tf_vars.items():
        if name in used or (name.rsplit("/", 1)[-1] == "lod" and value.ndim == 0):
            continue
        raise ConversionError(
            f"unknown TF variable {short_repr(name, 100)} {tuple(value.shape)} in {source}: it does not belong to a "
            "StyleGAN2 "
            f"generator with this config ({sg2.describe(config)}); conversion refused"
        )
    return sg2.check_state(config, state, f"TF generator of {source}")


def convert_tf(obj: Any, source: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, state)`` from a loaded TF network pickle (``(G, D, Gs)`` or a single network)."""
    Gs = _pick_gs(obj, source)
    func = Gs.state.get("build_func_name")
    if func == "D_main" or (isinstance(func, str) and func.startswith("D_")):
        raise ConversionError(f"{source} holds a TF discriminator ({func}), not a generator: nothing to render with")
    if func == "G_style":  # StyleGAN (v1): NVlabs/stylegan's G_style with G_mapping / G_synthesis components
        return sg1.convert(Gs, source)
    st = _check_version(Gs, source)
    if func != "G_main":
        raise ConversionError(
            f"{source}: TF network built by {short_repr(func)}, expected a StyleGAN2 generator (G_main)"
        )
    components = st.get("components")
    if not isinstance(components, dict) or not {"mapping", "synthesis"} <= set(components):
        raise ConversionError(f"{source}: the TF generator lacks its mapping / synthesis components")
    config = tf_config(st.get("static_kwargs"), source)
    return config, tf_state(config, collect_variables(Gs, source), source)
