"""StyleGAN3 (config-t and config-r) generator as pure functions over a params pytree (NHWC, float32).

The math follows NVIDIA's public StyleGAN3 code and paper (facts only; this code is independent):

* ``training/networks_stylegan3.py`` (NVlabs/stylegan3):

  - ``MappingNetwork``: ``normalize_2nd_moment(z)``; when conditional, ``normalize_2nd_moment(embed(c))`` with the
    embedding to ``w_dim``; concatenate; ``num_layers`` (default 2) fully connected lrelu layers of width ``w_dim``
    with lr multiplier 0.01 (weight gain ``lr/√in``, bias gain ``lr``); broadcast to ``num_ws = num_layers + 2``
    (synthesis layers + 2); truncation ``w_avg + ψ(w − w_avg)`` on the first ``truncation_cutoff`` ws (all when
    None).
  - ``SynthesisInput``: ``t = affine(w₀)`` (w → 4), ``t /= |t[:2]|``; ``T = R·Tr·U`` with ``R = [[t₀, −t₁],
    [t₁, t₀]]``, ``Tr`` the translation by ``−t[2:]`` and ``U`` the user's inverse transform (the ``transform``
    buffer, identity by default); ``phases += freqs @ T[:2, 2]``, ``freqs = freqs @ T[:2, :2]``; amplitudes
    ``clamp(1 − (|f| − bandwidth)/(sampling_rate/2 − bandwidth), 0, 1)``; features
    ``sin(2π(grid·f + φ))·amp`` on the ``affine_grid`` (``align_corners=False``) of ``size`` pixels whose pixel
    centres sit at ``(i + ½ − size/2)/sampling_rate``; then ``x @ (weight/√C)ᵀ``.
  - ``SynthesisLayer``: ``input_gain = rsqrt(magnitude_ema)``; ``s = affine(w)`` (bias init 1; ToRGB multiplies
    by ``1/√(I·k²)``); ``modulated_conv2d``: when demodulating, pre-normalise ``W·rsqrt(mean_{I,k,k} W²)`` and
    ``s·rsqrt(mean s²)``, modulate, demodulate ``rsqrt(Σ_{I,k,k} W'² + 1e-8)``, then scale the weights by the
    input gain; convolution with padding ``k − 1``; then ``filtered_lrelu`` with the layer's ``up_factor``,
    ``down_factor``, ``padding``, ``up_filter``/``down_filter`` buffers, gain √2 and slope 0.2 (ToRGB: 1 and 1),
    clamp ``conv_clamp``.
  - ``SynthesisNetwork``: input with ``ws[0]``, layer ``i`` with ``ws[i + 1]``, output ``· output_scale``.

* ``torch_utils/ops/filtered_lrelu.py`` (reference path) and ``torch_utils/ops/upfirdn2d.py``: ``+bias`` →
  ``upfirdn2d(up, fu, padding, gain=up²)`` → lrelu(slope)·gain → clamp → ``upfirdn2d(down, fd)``. ``upfirdn2d``
  inserts ``up − 1`` zeros after each pixel, pads (negative = crop), *convolves* with the filter (a 1-D filter is
  applied along x and y, each with ``√gain``; a 2-D one once with ``gain``), and keeps every ``down``-th pixel.

Implementation choices for XLA on CPU (measured; ``python -m lsd_jax.bench`` shows the result):

* modulation/demodulation scale the activations around ONE shared-weight convolution (``x·s → conv → ·d``);
  ``d`` uses precomputed ``Σ_k W²`` per (in, out); the input gain is folded into the weights;
  the style pre-normalisation uses each sample's own RMS (NVIDIA takes the mean over the whole batch; the two
  differ only through the ``1e-8`` of the demodulation, a relative effect below 1e-9, and per-sample keeps every
  image a function of its own latent only);
* the separable up-filter is a polyphase FIR (``up`` phases of ``taps/up`` shifted slices each, then an
  interleaving reshape), the separable down-filter is a strided shifted-slice sum, and config-r's radial 2-D
  down-filter a direct strided 2-D FIR (shifted-slice sums too): never a depthwise convolution;
* the FIR taps are params (from the state's buffers, flipped, gain folded in), so the spec holds no tensors;
* everything is float32 (NVIDIA's fp16 layers are not reproduced; ``conv_clamp`` still applies).

``config`` is the dict described in :mod:`converters.sg3` (NVIDIA's ``Generator`` kwargs with defaults filled in,
plus ``synthesis_input`` and ``synthesis_layers``: the per-layer attributes read from the pickle), or the hashable
:class:`SG3Spec` derived from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .stylegan2 import _lrelu, _pad_axis

Array = jax.Array
_SQRT2 = math.sqrt(2.0)
_DN = ("NHWC", "HWIO", "NHWC")


# ---------------------------------------------------------------------------------------------------------------
# Static description of the network
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SG3InputSpec:
    channels: int
    size: tuple[int, int]  # (width, height)
    sampling_rate: float
    bandwidth: float


@dataclass(frozen=True)
class SG3LayerSpec:
    name: str
    is_torgb: bool
    in_channels: int
    out_channels: int
    in_size: tuple[int, int]  # (width, height)
    out_size: tuple[int, int]
    conv_kernel: int
    up: int
    down: int
    padding: tuple[int, int, int, int]  # (x0, x1, y0, y1), w.r.t. the upsampled image
    up_taps: int
    down_taps: int
    down_radial: bool
    conv_clamp: float | None

    @property
    def tmp_size(self) -> tuple[int, int]:
        """(width, height) after the conv and the upsampling filter, before the downsampling filter."""
        k = self.conv_kernel
        x0, x1, y0, y1 = self.padding
        return ((self.in_size[0] + k - 1) * self.up + x0 + x1 - (self.up_taps - 1),
                (self.in_size[1] + k - 1) * self.up + y0 + y1 - (self.up_taps - 1))


@dataclass(frozen=True)
class SG3Spec:
    """Everything about a StyleGAN3 config that shapes the computation (hashable: usable as a jit static arg)."""

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_layers: int
    lr_multiplier: float
    output_scale: float
    input: SG3InputSpec
    layers: tuple[SG3LayerSpec, ...]

    @property
    def num_ws(self) -> int:
        return len(self.layers) + 1

    @property
    def family(self) -> str:
        return "stylegan3"

    @property
    def kind(self) -> str:
        """'r' when the layers use 1×1 convolutions (config-r), else 't'."""
        return "r" if all(L.conv_kernel == 1 for L in self.layers) else "t"


def _pair(value: Any, what: str) -> tuple[int, int]:
    a = np.broadcast_to(np.asarray(value), [2])
    if a.dtype.kind not in "iuf" or not np.all(a == np.round(a)):
        raise ValueError(f"{what} must be one or two integers, got {value!r}")
    return int(a[0]), int(a[1])


def _layer_spec(d: dict, i: int) -> SG3LayerSpec:
    name = str(d.get("name", f"L{i}"))
    try:
        clamp = d.get("conv_clamp")
        L = SG3LayerSpec(
            name=name, is_torgb=bool(d["is_torgb"]), in_channels=int(d["in_channels"]),
            out_channels=int(d["out_channels"]), in_size=_pair(d["in_size"], f"{name}.in_size"),
            out_size=_pair(d["out_size"], f"{name}.out_size"), conv_kernel=int(d["conv_kernel"]),
            up=int(d["up_factor"]), down=int(d["down_factor"]),
            padding=tuple(int(p) for p in d["padding"]),  # type: ignore[arg-type]
            up_taps=int(d["up_taps"]), down_taps=int(d["down_taps"]), down_radial=bool(d["down_radial"]),
            conv_clamp=None if clamp is None else float(clamp),
        )
    except KeyError as e:
        raise ValueError(f"StyleGAN3 layer {name} lacks attribute {e.args[0]!r}") from None
    if len(L.padding) != 4:
        raise ValueError(f"{name}.padding must have 4 entries (x0, x1, y0, y1), got {L.padding}")
    if min(L.in_channels, L.out_channels, L.conv_kernel, L.up, L.down, L.up_taps, L.down_taps) < 1:
        raise ValueError(f"{name}: channels, kernel, up/down factors and tap counts must be >= 1")
    for axis in (0, 1):
        tmp = L.tmp_size[axis]
        out = (tmp - (L.down_taps - 1) + L.down - 1) // L.down
        if tmp < max(L.down_taps, 1) or out != L.out_size[axis]:
            raise ValueError(f"{name}: its padding {list(L.padding)}, factors and taps give a {'xy'[axis]} size "
                             f"of {out}, not its out_size {L.out_size[axis]}")
    return L


def spec_from_config(config: dict | SG3Spec) -> SG3Spec:
    """Validate a StyleGAN3 config dict and derive its hashable :class:`SG3Spec` (an ``SG3Spec`` passes through)."""
    if isinstance(config, SG3Spec):
        return config
    family = config.get("family")
    if family != "stylegan3":
        raise ValueError(f"not a StyleGAN3 config (family={family!r})")
    mk = dict(config.get("mapping_kwargs") or {})
    sk = dict(config.get("synthesis_kwargs") or {})
    z_dim, c_dim, w_dim = int(config["z_dim"]), int(config["c_dim"]), int(config["w_dim"])
    res, img_channels = int(config["img_resolution"]), int(config.get("img_channels", 3))
    if z_dim <= 0 and c_dim <= 0:
        raise ValueError("z_dim and c_dim cannot both be 0")
    inp = config.get("synthesis_input")
    layer_dicts = config.get("synthesis_layers")
    if not isinstance(inp, dict) or not isinstance(layer_dicts, (list, tuple)) or not layer_dicts:
        raise ValueError("a StyleGAN3 config needs 'synthesis_input' and 'synthesis_layers' (the per-layer "
                         "attributes read from the pickle)")
    try:
        ispec = SG3InputSpec(channels=int(inp["channels"]), size=_pair(inp["size"], "synthesis_input.size"),
                             sampling_rate=float(inp["sampling_rate"]), bandwidth=float(inp["bandwidth"]))
    except KeyError as e:
        raise ValueError(f"synthesis_input lacks attribute {e.args[0]!r}") from None
    layers = tuple(_layer_spec(d, i) for i, d in enumerate(layer_dicts))
    prev_c, prev_size = ispec.channels, ispec.size
    for L in layers:
        if (L.in_channels, L.in_size) != (prev_c, prev_size):
            raise ValueError(f"{L.name} expects {L.in_channels} channels of {list(L.in_size)}, but its input has "
                             f"{prev_c} of {list(prev_size)}")
        prev_c, prev_size = L.out_channels, L.out_size
    last = layers[-1]
    if not last.is_torgb or any(L.is_torgb for L in layers[:-1]):
        raise ValueError("the last StyleGAN3 layer (and only it) must be the ToRGB layer")
    if (last.out_channels, last.out_size) != (img_channels, (res, res)):
        raise ValueError(f"the ToRGB layer outputs {last.out_channels} channels of {list(last.out_size)}, not "
                         f"{img_channels} of [{res}, {res}]")
    n_syn = sk.get("num_layers")
    if n_syn is not None and int(n_syn) + 1 != len(layers):
        raise ValueError(f"synthesis num_layers={n_syn} but the config lists {len(layers)} layers (incl. ToRGB)")
    return SG3Spec(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=img_channels,
        mapping_layers=int(mk.get("num_layers", 2)), lr_multiplier=float(mk.get("lr_multiplier", 0.01)),
        output_scale=float(sk.get("output_scale", 0.25)), input=ispec, layers=layers,
    )


def num_ws(config: dict | SG3Spec) -> int:
    return spec_from_config(config).num_ws


# ---------------------------------------------------------------------------------------------------------------
# torch state dict → params pytree (host side, once)
# ---------------------------------------------------------------------------------------------------------------


def _get(state: dict, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if key not in state:
        raise KeyError(f"StyleGAN3 state is missing {key!r}")
    a = np.asarray(state[key], dtype=np.float64)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{key}: expected shape {tuple(shape)}, got {a.shape}")
    return a


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def prepare_params(config: dict | SG3Spec, state: dict) -> dict[str, Any]:
    """Convert a torch-layout StyleGAN3 ``G_ema`` state dict to this module's params pytree (NumPy, host side).

    Layout: dense weights ``[in, out]`` with NVIDIA's gains folded in; conv weights HWIO, pre-normalised per
    output channel (demodulated layers) and times ``rsqrt(magnitude_ema)``; ``wsq[i, o] = Σ_k Ŵ[o, i, k]²`` of the
    pre-normalised weight (without the input gain); ToRGB's ``1/√(I·k²)`` style gain folded into its affine;
    FIR taps flipped (convolution) with the upsampling gain ``up`` per axis folded in; the input's
    ``weight/√C`` stored transposed.
    """
    spec = spec_from_config(config)
    wd, lr = spec.w_dim, spec.lr_multiplier

    def fc(prefix: str, n_in: int, n_out: int, lr_mul: float, extra_gain: float = 1.0) -> dict[str, np.ndarray]:
        w = _get(state, f"{prefix}.weight", (n_out, n_in))
        b = _get(state, f"{prefix}.bias", (n_out,))
        return {"w": _f32(w.T * (lr_mul / math.sqrt(n_in) * extra_gain)), "b": _f32(b * (lr_mul * extra_gain))}

    mapping: dict[str, Any] = {}
    embed = wd if spec.c_dim > 0 else 0
    if spec.c_dim > 0:
        mapping["embed"] = fc("mapping.embed", spec.c_dim, wd, 1.0)
    feats = [spec.z_dim + embed] + [wd] * spec.mapping_layers
    mapping["fc"] = [fc(f"mapping.fc{i}", feats[i], feats[i + 1], lr) for i in range(spec.mapping_layers)]
    mapping["w_avg"] = _f32(_get(state, "mapping.w_avg", (wd,)) if "mapping.w_avg" in state else np.zeros(wd))

    C = spec.input.channels
    aff = fc("synthesis.input.affine", wd, 4, 1.0)
    inp = {"aw": aff["w"], "ab": aff["b"],
           "weight": _f32(_get(state, "synthesis.input.weight", (C, C)).T / math.sqrt(C)),
           "freqs": _f32(_get(state, "synthesis.input.freqs", (C, 2))),
           "phases": _f32(_get(state, "synthesis.input.phases", (C,))),
           "transform": _f32(_get(state, "synthesis.input.transform", (3, 3))
                             if "synthesis.input.transform" in state else np.eye(3))}

    layers = []
    for L in spec.layers:
        p = f"synthesis.{L.name}"
        k, cin, cout = L.conv_kernel, L.in_channels, L.out_channels
        w = _get(state, f"{p}.weight", (cout, cin, k, k))
        mag = _get(state, f"{p}.magnitude_ema").reshape(())
        if not mag > 0:
            raise ValueError(f"{p}.magnitude_ema must be positive, got {float(mag)}")
        gain = 1.0 / math.sqrt(float(mag))
        out: dict[str, np.ndarray] = {"b": _f32(_get(state, f"{p}.bias", (cout,)))}
        if L.is_torgb:
            a = fc(f"{p}.affine", wd, cin, 1.0, extra_gain=1.0 / math.sqrt(cin * k * k))
        else:
            a = fc(f"{p}.affine", wd, cin, 1.0)
            w = w / np.sqrt(np.mean(np.square(w), axis=(1, 2, 3), keepdims=True))
            out["wsq"] = _f32(np.square(w).sum(axis=(2, 3)).T)
        out["aw"], out["ab"] = a["w"], a["b"]
        out["w"] = _f32((w * gain).transpose(2, 3, 1, 0))
        if L.up_taps > 1:
            fu = _get(state, f"{p}.up_filter", (L.up_taps,))
        elif f"{p}.up_filter" in state:
            raise ValueError(f"{p}.up_filter is present but the layer has up_taps=1")
        else:
            fu = np.ones(1)
        out["fu"] = _f32(fu[::-1] * L.up)
        if L.down_taps > 1:
            shape = (L.down_taps, L.down_taps) if L.down_radial else (L.down_taps,)
            fd = _get(state, f"{p}.down_filter", shape)
            out["fd"] = _f32(fd[::-1, ::-1] if L.down_radial else fd[::-1])
        elif f"{p}.down_filter" in state:
            raise ValueError(f"{p}.down_filter is present but the layer has down_taps=1")
        layers.append(out)
    return {"mapping": mapping, "synthesis": {"input": inp, "layers": layers}}


# ---------------------------------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------------------------------


def mapping(params: dict, config: dict | SG3Spec, z: Array, c: Array | None = None,
            truncation_psi: float | Array = 1.0, truncation_cutoff: int | None = None) -> Array:
    """z: (N, z_dim), c: (N, c_dim) or None → ws (N, num_ws, w_dim) float32 (``num_ws`` = synthesis layers + 2).

    ``truncation_psi`` may be traced (exactly 1 leaves ws untouched); ``truncation_cutoff`` (a Python int, or None
    for all ws) is static.
    """
    from .stylegan2 import mapping_network  # the same network as StyleGAN2's (num_ws differs)

    return mapping_network(params["mapping"], spec_from_config(config), z, c, truncation_psi, truncation_cutoff)


# ---------------------------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------------------------


def transform_matrix(angle: Any = 0.0, tx: Any = 0.0, ty: Any = 0.0) -> Array:
    """The ``synthesis.input.transform`` that rotates the image by ``angle`` radians and then translates it by
    ``(tx, ty)``: (N, 3, 3) float32, N the broadcast length of the arguments (1 for scalars).

    Conventions (those of NVIDIA's ``gen_images.py`` / visualizer, which store the *inverse* of
    ``[[cos, sin, tx], [−sin, cos, ty], [0, 0, 1]]``): a positive angle turns the picture counter-clockwise as
    displayed (rows downwards), about the image centre; ``tx`` moves it right and ``ty`` down, in units of the
    image width/height (the output image spans 1.0 in these coordinates). Jittable; the arguments may be traced.
    """
    a, x, y = jnp.broadcast_arrays(*(jnp.atleast_1d(jnp.asarray(v, jnp.float32)) for v in (angle, tx, ty)))
    c, s = jnp.cos(a), jnp.sin(a)
    zero, one = jnp.zeros_like(a), jnp.ones_like(a)
    # inverse of [[R, t], [0, 1]] with R = [[c, s], [-s, c]]: [[Rᵀ, −Rᵀt], [0, 1]]
    rows = [jnp.stack([c, -s, -(c * x - s * y)], -1),
            jnp.stack([s, c, -(s * x + c * y)], -1),
            jnp.stack([zero, zero, one], -1)]
    return jnp.stack(rows, axis=1)


def _batch_transform(transform: Array | None, default: Array, n: int) -> Array:
    if transform is None:
        return jnp.broadcast_to(default, (n, 3, 3))
    t = jnp.asarray(transform, jnp.float32)
    if t.shape == (3, 3):
        t = t[None]
    if t.ndim != 3 or t.shape[1:] != (3, 3) or t.shape[0] not in (1, n):
        raise ValueError(f"transform must have shape (3, 3), (1, 3, 3) or ({n}, 3, 3), got {t.shape}")
    return jnp.broadcast_to(t, (n, 3, 3))


# ---------------------------------------------------------------------------------------------------------------
# Synthesis input (Fourier features)
# ---------------------------------------------------------------------------------------------------------------


def synthesis_input(params: dict, config: dict | SG3Spec, w: Array, transform: Array | None = None) -> Array:
    """The Fourier-feature input: w (N, w_dim) → (N, H, W, C). ``transform``: per-sample (N, 3, 3) (or one
    (3, 3)) replacing the stored ``transform`` buffer (NVIDIA's user-specified inverse transform)."""
    spec = spec_from_config(config)
    ip = params["synthesis"]["input"]
    n = w.shape[0]
    t = w @ ip["aw"] + ip["ab"]  # (N, 4) = (r_c, r_s, t_x, t_y)
    t = t * lax.rsqrt(jnp.sum(jnp.square(t[:, :2]), axis=1, keepdims=True))
    rc, rs, tx, ty = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
    zero, one = jnp.zeros_like(rc), jnp.ones_like(rc)
    # m_r @ m_t = [[rc, -rs, -(rc·tx - rs·ty)], [rs, rc, -(rs·tx + rc·ty)], [0, 0, 1]]
    m = jnp.stack([jnp.stack([rc, -rs, -(rc * tx - rs * ty)], -1),
                   jnp.stack([rs, rc, -(rs * tx + rc * ty)], -1),
                   jnp.stack([zero, zero, one], -1)], axis=1)
    T = m @ _batch_transform(transform, ip["transform"], n)
    freqs0 = ip["freqs"]  # (C, 2)
    phases = ip["phases"][None, :] + jnp.einsum("ck,nk->nc", freqs0, T[:, :2, 2])
    freqs = jnp.einsum("ck,nkj->ncj", freqs0, T[:, :2, :2])  # (N, C, 2)
    sr, bw = spec.input.sampling_rate, spec.input.bandwidth
    amp = jnp.clip(1 - (jnp.sqrt(jnp.sum(jnp.square(freqs), axis=2)) - bw) / (sr / 2 - bw), 0, 1)
    W, H = spec.input.size
    gx = jnp.asarray((np.arange(W) + 0.5 - W / 2) / sr, jnp.float32)
    gy = jnp.asarray((np.arange(H) + 0.5 - H / 2) / sr, jnp.float32)
    arg = (gx[None, None, :, None] * freqs[:, None, None, :, 0] + gy[None, :, None, None] * freqs[:, None, None, :, 1]
           + phases[:, None, None, :])
    x = jnp.sin(arg * (2 * np.pi)) * amp[:, None, None, :]
    return jnp.einsum("nhwc,co->nhwo", x, ip["weight"])


# ---------------------------------------------------------------------------------------------------------------
# FIR resampling (shifted-slice sums; never a depthwise conv)
# ---------------------------------------------------------------------------------------------------------------


def _up_fir_axis(x: Array, g: Array, up: int, pad0: int, out_len: int, axis: int) -> Array:
    """upfirdn2d along one axis: zero insertion (×up), pad ``pad0`` in front, convolve with taps (``g`` is the
    flipped, gain-scaled filter), keeping ``out_len`` outputs; as ``up`` polyphase FIRs over ``x`` itself.

    Output ``m = up·q + r`` reads ``Σ_k g[k]·u[m + k − pad0]`` with ``u[up·j] = x[j]``, i.e. the taps with
    ``r + k − pad0 ≡ 0 (mod up)`` at offsets ``(r + k − pad0)/up`` into ``x`` (zero outside)."""
    n_taps, n = g.shape[0], x.shape[axis]
    q = -(-out_len // up)
    phases = [[(k, (r + k - pad0) // up) for k in range(n_taps) if (r + k - pad0) % up == 0] for r in range(up)]
    offs = [o for ph in phases for _, o in ph] or [0]
    lo, hi = max(0, -min(offs)), max(0, q - 1 + max(offs) - (n - 1))
    xp = _pad_axis(x, axis, lo, hi)
    outs = []
    for ph in phases:
        acc = None
        for k, o in ph:
            term = lax.slice_in_dim(xp, o + lo, o + lo + q, axis=axis) * g[k]
            acc = term if acc is None else acc + term
        if acc is None:
            shape = list(x.shape)
            shape[axis] = q
            acc = jnp.zeros(shape, x.dtype)
        outs.append(acc)
    if up == 1:
        y = outs[0]
    else:
        y = jnp.stack(outs, axis=axis + 1)
        shape = list(y.shape)
        shape[axis:axis + 2] = [q * up]
        y = y.reshape(shape)
    return lax.slice_in_dim(y, 0, out_len, axis=axis)


def _down_fir_axis(x: Array, g: Array, down: int, axis: int) -> Array:
    """upfirdn2d along one axis with no padding: convolve (``g`` flipped) and keep every ``down``-th output."""
    n_taps, n = g.shape[0], x.shape[axis]
    q = (n - n_taps) // down + 1
    acc = None
    for k in range(n_taps):
        term = lax.slice_in_dim(x, k, k + down * (q - 1) + 1, stride=down, axis=axis) * g[k]
        acc = term if acc is None else acc + term
    return acc


def _down_fir_2d(x: Array, g: Array, down: int) -> Array:
    """Non-separable (radial) 2-D FIR + ``down``× decimation on NHWC, as strided shifted-slice sums."""
    kh, kw = g.shape
    n, h, w, c = x.shape
    qh, qw = (h - kh) // down + 1, (w - kw) // down + 1
    acc = None
    for ky in range(kh):
        for kx in range(kw):
            term = lax.slice(x, (0, ky, kx, 0), (n, ky + down * (qh - 1) + 1, kx + down * (qw - 1) + 1, c),
                             (1, down, down, 1)) * g[ky, kx]
            acc = term if acc is None else acc + term
    return acc


def _filtered_lrelu(x: Array, p: dict, L: SG3LayerSpec) -> Array:
    x = x + p["b"]
    x0, x1, y0, y1 = L.padding
    if not (L.up == 1 and L.up_taps == 1 and L.padding == (0, 0, 0, 0)):
        tw, th = L.tmp_size
        x = _up_fir_axis(x, p["fu"], L.up, y0, th, axis=1)
        x = _up_fir_axis(x, p["fu"], L.up, x0, tw, axis=2)
    if not L.is_torgb:  # ToRGB: slope 1, gain 1 (linear)
        x = _lrelu(x, _SQRT2)
    if L.conv_clamp is not None:
        x = jnp.clip(x, -L.conv_clamp, L.conv_clamp)
    if L.down_taps > 1:
        if L.down_radial:
            x = _down_fir_2d(x, p["fd"], L.down)
        else:
            x = _down_fir_axis(x, p["fd"], L.down, axis=1)
            x = _down_fir_axis(x, p["fd"], L.down, axis=2)
    elif L.down > 1:
        x = x[:, ::L.down, ::L.down, :]
    return x


# ---------------------------------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------------------------------


def _synthesis_layer(p: dict, x: Array, w: Array, L: SG3LayerSpec) -> Array:
    s = w @ p["aw"] + p["ab"]  # (N, I); ToRGB's 1/√(I·k²) folded in
    if not L.is_torgb:
        s = s * lax.rsqrt(jnp.mean(jnp.square(s), axis=1, keepdims=True))
    x = (x * s[:, None, None, :]).astype(p["w"].dtype)  # the params' dtype (bfloat16 under compute_dtype)
    k = L.conv_kernel
    if k == 1:
        x = jnp.einsum("nhwi,io->nhwo", x, p["w"][0, 0])
    else:
        x = lax.conv_general_dilated(x, p["w"], (1, 1), ((k - 1, k - 1), (k - 1, k - 1)), dimension_numbers=_DN)
    if not L.is_torgb:
        d = lax.rsqrt(jnp.square(s) @ p["wsq"] + 1e-8)  # (N, O)
        x = x * d[:, None, None, :]
    return _filtered_lrelu(x, p, L)


def synthesis(params: dict, config: dict | SG3Spec, ws: Array, transform: Array | None = None) -> Array:
    """ws (N, num_ws, w_dim) → images (N, R, R, img_channels) float32, NHWC, times ``output_scale`` (≈[-1, 1]).

    ``transform``: optional per-sample (N, 3, 3) (or a single (3, 3)) inverse transform replacing the stored
    ``synthesis.input.transform`` buffer; see :func:`transform_matrix`. It may be traced.
    """
    spec = spec_from_config(config)
    ws = jnp.asarray(ws, params["synthesis"]["input"]["weight"].dtype)  # float32; bfloat16 when the params are (compute_dtype)
    if ws.ndim != 3 or ws.shape[1:] != (spec.num_ws, spec.w_dim):
        raise ValueError(f"ws must have shape (N, {spec.num_ws}, {spec.w_dim}), got {ws.shape}")
    x = synthesis_input(params, spec, ws[:, 0], transform)
    for i, (L, p) in enumerate(zip(spec.layers, params["synthesis"]["layers"])):
        x = _synthesis_layer(p, x, ws[:, i + 1], L)
    if spec.output_scale != 1:
        x = x * spec.output_scale
    return x


def generate(params: dict, config: dict | SG3Spec, z: Array, c: Array | None = None,
             truncation_psi: float | Array = 1.0, truncation_cutoff: int | None = None,
             transform: Array | None = None) -> Array:
    """mapping then synthesis: z (N, z_dim) → images (N, R, R, img_channels)."""
    ws = mapping(params, config, z, c, truncation_psi, truncation_cutoff)
    return synthesis(params, config, ws, transform)
