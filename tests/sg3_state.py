"""Random StyleGAN3 ``G_ema`` state dicts + configs in torch layout, for tests.

Public helpers (used by tests/test_stylegan3.py and tests/nvidia_pickles_sg3.py; keep stable):

* ``sg3_config(kind="t", **overrides) -> dict``: a full StyleGAN3 config (NVIDIA's ``Generator`` init kwargs with
  every default filled in, plus ``synthesis_input`` / ``synthesis_layers``: the per-layer attributes exactly as
  the converter reads them from a pickle), small by default. ``kind="r"`` applies config-r's changes
  (``conv_kernel=1``, ``use_radial_filters=True``, channel_base and channel_max ×2), as NVIDIA's ``train.py`` does.
* ``derive_synthesis(config) -> (input_attrs, layer_attrs)``: what NVIDIA's ``SynthesisNetwork.__init__`` and
  ``SynthesisLayer.__init__`` compute, with NVIDIA's Python/numpy types (numpy arrays for sizes, ``np.float64``
  cutoffs, ``np.bool_`` use_fp16, ...), so that pickle fixtures carry format-faithful module attributes.
* ``design_lowpass_filter(numtaps, cutoff, width, fs, radial=False)``: the Kaiser-windowed sinc (scipy's
  ``firwin``) or, for ``radial``, the Kaiser-windowed jinc normalised to sum 1; ``None`` for one tap.
* ``random_sg3_state(config, seed, transform=None) -> dict``: every parameter AND buffer of ``G_ema`` under its
  torch ``state_dict()`` key, float32, in ``state_dict()`` order. Weights, biases, the input affine (NVIDIA
  initialises it to 0 / [1, 0, 0, 0]), ``magnitude_ema`` (positive) and ``w_avg`` are randomised; ``freqs`` and
  ``phases`` are drawn as NVIDIA draws them; filters are designed from each layer's cutoff, half-width and
  sampling rate; ``transform`` (the user inverse transform buffer) is the identity unless given.

Facts (not code) from the public NVlabs/stylegan3 ``training/networks_stylegan3.py``: the geometric progression
of cutoffs / stopbands, ``sampling_rates = 2^ceil(log2(min(2·stopband, R)))``, ``half_widths = max(stopband,
sr/2) − cutoff``, sizes ``sr + 2·margin`` except the last two (``R``), channels ``rint(min(channel_base/2 /
cutoff, channel_max))`` (last = img_channels), ``tmp_sampling_rate = max(in, out)·lrelu_upsampling`` (ToRGB ×1),
tap counts ``filter_size·factor`` (1 when the factor is 1 or for ToRGB), radial down filters for config-r's
non-critically-sampled layers, and the padding arithmetic; state-dict order (own params, own buffers, children;
synthesis before mapping); ``train.py`` for config-r's kwargs.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy.signal
import scipy.special

#: NVIDIA's SynthesisNetwork / SynthesisLayer defaults (networks_stylegan3.py).
SG3_SYNTHESIS_DEFAULTS: dict[str, Any] = {
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
SG3_MAPPING_DEFAULTS: dict[str, Any] = {"num_layers": 2, "lr_multiplier": 0.01, "w_avg_beta": 0.998}

#: The per-layer attributes a converted config carries (names as in NVIDIA's SynthesisLayer).
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
INPUT_KEYS = ("channels", "size", "sampling_rate", "bandwidth")

_SMALL = {
    "z_dim": 16,
    "c_dim": 0,
    "w_dim": 16,
    "img_resolution": 16,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 128, "channel_max": 8, "num_layers": 4},
}


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> np.ndarray | None:
    if numtaps == 1:
        return None
    if not radial:
        return scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs).astype(np.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(invalid="ignore", divide="ignore"):
        f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    f = np.where(r == 0, cutoff, f)  # the limit at r = 0 (never hit for even tap counts)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    win = np.kaiser(numtaps, beta)
    f = f * np.outer(win, win)
    return (f / np.sum(f)).astype(np.float32)


def _full_kwargs(config: dict) -> tuple[dict, dict]:
    return (
        {**SG3_MAPPING_DEFAULTS, **config.get("mapping_kwargs", {})},
        {**SG3_SYNTHESIS_DEFAULTS, **config.get("synthesis_kwargs", {})},
    )


def derive_synthesis(config: dict) -> tuple[dict, list[dict]]:
    """NVIDIA's derived SynthesisInput / SynthesisLayer attributes for ``config`` (NVIDIA's value types)."""
    _, sk = _full_kwargs(config)
    R, n, n_crit = config["img_resolution"], sk["num_layers"], sk["num_critical"]
    last_cutoff = R / 2
    last_stopband = last_cutoff * sk["last_stopband_rel"]
    exponents = np.minimum(np.arange(n + 1) / (n - n_crit), 1)
    cutoffs = sk["first_cutoff"] * (last_cutoff / sk["first_cutoff"]) ** exponents
    stopbands = sk["first_stopband"] * (last_stopband / sk["first_stopband"]) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, R))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + sk["margin_size"] * 2
    sizes[-2:] = R
    channels = np.rint(np.minimum((sk["channel_base"] / 2) / cutoffs, sk["channel_max"]))
    channels[-1] = config["img_channels"]

    inp = {
        "channels": int(channels[0]),
        "size": np.broadcast_to(np.asarray(int(sizes[0])), [2]),
        "sampling_rate": rates[0],
        "bandwidth": cutoffs[0],
    }
    layers = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == n
        crit = idx >= n - n_crit
        in_sr, out_sr = int(rates[prev]), int(rates[idx])
        tmp_sr = max(in_sr, out_sr) * (1 if is_torgb else sk["lrelu_upsampling"])
        kernel = 1 if is_torgb else sk["conv_kernel"]
        up = int(np.rint(tmp_sr / in_sr))
        down = int(np.rint(tmp_sr / out_sr))
        assert in_sr * up == tmp_sr and out_sr * down == tmp_sr
        up_taps = sk["filter_size"] * up if up > 1 and not is_torgb else 1
        down_taps = sk["filter_size"] * down if down > 1 and not is_torgb else 1
        in_size = np.broadcast_to(np.asarray(int(sizes[prev])), [2])
        out_size = np.broadcast_to(np.asarray(int(sizes[idx])), [2])
        pad_total = (out_size - 1) * down + 1
        pad_total -= (in_size + kernel - 1) * up
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        a = {
            "w_dim": config["w_dim"],
            "is_torgb": is_torgb,
            "is_critically_sampled": crit,
            "use_fp16": rates[idx] * (2 ** sk["num_fp16_res"]) > R,
            "in_channels": int(channels[prev]),
            "out_channels": int(channels[idx]),
            "in_size": in_size,
            "out_size": out_size,
            "in_sampling_rate": in_sr,
            "out_sampling_rate": out_sr,
            "tmp_sampling_rate": tmp_sr,
            "in_cutoff": cutoffs[prev],
            "out_cutoff": cutoffs[idx],
            "in_half_width": half_widths[prev],
            "out_half_width": half_widths[idx],
            "conv_kernel": kernel,
            "conv_clamp": sk["conv_clamp"],
            "magnitude_ema_beta": sk["magnitude_ema_beta"],
            "up_factor": up,
            "up_taps": up_taps,
            "down_factor": down,
            "down_taps": down_taps,
            "down_radial": bool(sk["use_radial_filters"] and not crit),
            "padding": [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])],
        }
        a["name"] = f"L{idx}_{int(out_size[0])}_{int(channels[idx])}"
        layers.append(a)
    return inp, layers


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def sg3_config(kind: str = "t", **overrides: Any) -> dict:
    """A full StyleGAN3 config, small by default. Top-level keys (``z_dim``, ``c_dim``, ``w_dim``,
    ``img_resolution``, ``img_channels``) are set directly; ``mapping_kwargs=`` / ``synthesis_kwargs=`` dicts are
    merged; any other key naming a mapping or synthesis kwarg is set in that sub-dict (``num_layers`` means the
    SYNTHESIS layers; use ``mapping_kwargs={"num_layers": 8}`` for the mapping). Unknown keys raise KeyError."""
    if kind not in ("t", "r"):
        raise ValueError(kind)
    cfg: dict[str, Any] = copy.deepcopy(_SMALL)
    mk, sk = dict(SG3_MAPPING_DEFAULTS), dict(SG3_SYNTHESIS_DEFAULTS)
    mk.update(cfg.pop("mapping_kwargs"))
    sk.update(cfg.pop("synthesis_kwargs"))
    for key, value in overrides.items():
        if key == "mapping_kwargs":
            mk.update(value)
        elif key == "synthesis_kwargs":
            sk.update(value)
        elif key in cfg:
            cfg[key] = value
        elif key in sk:
            sk[key] = value
        elif key in mk:
            mk[key] = value
        else:
            raise KeyError(f"unknown StyleGAN3 config key {key!r}")
    if set(mk) != set(SG3_MAPPING_DEFAULTS) or set(sk) != set(SG3_SYNTHESIS_DEFAULTS):
        raise KeyError("unknown mapping/synthesis kwargs")
    if kind == "r":  # train.py --cfg=stylegan3-r
        sk.update(
            conv_kernel=1,
            use_radial_filters=True,
            channel_base=sk["channel_base"] * 2,
            channel_max=sk["channel_max"] * 2,
        )
    config = {"family": "stylegan3", **cfg, "mapping_kwargs": mk, "synthesis_kwargs": sk}
    inp, layers = derive_synthesis(config)
    config["synthesis_input"] = {k: _plain(inp[k]) for k in INPUT_KEYS}
    config["synthesis_layers"] = [{k: _plain(a[k]) for k in LAYER_KEYS} for a in layers]
    return config


def random_sg3_state(config: dict, seed: int, transform: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """A random ``G_ema`` state dict (parameters + buffers, float32, torch layout, state_dict order)."""
    rng = np.random.default_rng(seed)

    def randn(*shape, scale=1.0, offset=0.0):
        return (offset + scale * rng.standard_normal(shape)).astype(np.float32)

    mk, sk = _full_kwargs(config)
    z_dim, c_dim, w_dim = config["z_dim"], config["c_dim"], config["w_dim"]
    inp, layers = derive_synthesis(config)
    state: dict[str, np.ndarray] = {}

    # SynthesisInput: weight (param), buffers transform, freqs, phases, then the affine child.
    C = inp["channels"]
    freqs = rng.standard_normal((C, 2))
    radii = np.sqrt(np.sum(freqs**2, axis=1, keepdims=True))
    freqs /= radii * np.exp(radii**2) ** 0.25
    freqs *= inp["bandwidth"]
    state["synthesis.input.weight"] = randn(C, C)
    state["synthesis.input.transform"] = (np.eye(3) if transform is None else np.asarray(transform)).astype(np.float32)
    state["synthesis.input.freqs"] = freqs.astype(np.float32)
    state["synthesis.input.phases"] = (rng.random(C) - 0.5).astype(np.float32)
    state["synthesis.input.affine.weight"] = randn(4, w_dim)
    state["synthesis.input.affine.bias"] = (np.array([1, 0, 0, 0]) + 0.3 * rng.standard_normal(4)).astype(np.float32)

    for a in layers:
        p = f"synthesis.{a['name']}"
        k, cin, cout = a["conv_kernel"], a["in_channels"], a["out_channels"]
        state[f"{p}.weight"] = randn(cout, cin, k, k)
        state[f"{p}.bias"] = randn(cout, scale=0.5)
        state[f"{p}.magnitude_ema"] = np.asarray(rng.uniform(0.3, 3.0), np.float32)
        fu = design_lowpass_filter(a["up_taps"], a["in_cutoff"], a["in_half_width"] * 2, a["tmp_sampling_rate"])
        fd = design_lowpass_filter(
            a["down_taps"], a["out_cutoff"], a["out_half_width"] * 2, a["tmp_sampling_rate"], radial=a["down_radial"]
        )
        if fu is not None:
            state[f"{p}.up_filter"] = fu
        if fd is not None:
            state[f"{p}.down_filter"] = fd
        state[f"{p}.affine.weight"] = randn(cin, w_dim)
        state[f"{p}.affine.bias"] = randn(cin, scale=0.3, offset=1.0)

    lr = mk["lr_multiplier"]
    features = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * mk["num_layers"]
    state["mapping.w_avg"] = randn(w_dim, scale=0.5)
    if c_dim:
        state["mapping.embed.weight"] = randn(w_dim, c_dim)
        state["mapping.embed.bias"] = randn(w_dim, scale=0.5)
    for i in range(mk["num_layers"]):
        state[f"mapping.fc{i}.weight"] = randn(features[i + 1], features[i], scale=1.0 / lr)
        state[f"mapping.fc{i}.bias"] = randn(features[i + 1], scale=0.5 / lr)
    return state
