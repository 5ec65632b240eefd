"""Independent float64 NumPy oracle for StyleGAN (v1) ``G_style`` at inference (lod 0), NCHW like TensorFlow.

Written from the published maths of NVlabs/stylegan ``training/networks_stylegan.py`` (not from lsd-jax's JAX code,
and with different algorithms: direct 2-D correlations, nearest-neighbour repetition, a scatter-form transposed
convolution, a 2-D blur kernel). Input: the raw TF variables (``{'synthesis/4x4/Const/const': ..., ...}``, see
``tests/nvidia_pickles_sg1.flat_variables``) and ``G``'s static kwargs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DEFAULTS: dict[str, Any] = {
    # G_style
    "truncation_psi": 0.7,
    "truncation_cutoff": 8,
    # G_mapping
    "latent_size": 512,
    "dlatent_size": 512,
    "mapping_layers": 8,
    "mapping_fmaps": 512,
    "mapping_lrmul": 0.01,
    "mapping_nonlinearity": "lrelu",
    "use_wscale": True,
    "normalize_latents": True,
    # G_synthesis
    "num_channels": 3,
    "resolution": 1024,
    "fmap_base": 8192,
    "fmap_decay": 1.0,
    "fmap_max": 512,
    "use_noise": True,
    "nonlinearity": "lrelu",
    "use_pixel_norm": False,
    "use_instance_norm": True,
    "fused_scale": "auto",
    "blur_filter": [1, 2, 1],
}


def _kw(static: dict, key: str) -> Any:
    return static.get(key, DEFAULTS[key])


def _act(x: np.ndarray, kind: str) -> np.ndarray:
    return np.where(x >= 0, x, 0.2 * x) if kind == "lrelu" else np.maximum(x, 0.0)


def _coef(shape: tuple[int, ...], gain: float, use_wscale: bool, lrmul: float = 1.0) -> float:
    fan_in = int(np.prod(shape[:-1]))
    return gain / math.sqrt(fan_in) * lrmul if use_wscale else lrmul


def _f64(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Ops (NCHW, float64).


def conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TF ``conv2d`` (correlation), 'SAME', stride 1; w [k, k, I, O]."""
    k = w.shape[0]
    p = k // 2
    n, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((n, w.shape[3], h, wd))
    for ky in range(k):
        for kx in range(k):
            out += np.einsum("nihw,io->nohw", xp[:, :, ky : ky + h, kx : kx + wd], w[ky, kx])
    return out


def upscale2d(x: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)


def conv2d_transpose_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TF ``conv2d_transpose(x, w, stride 2, 'SAME')`` to (2H, 2W) for w [4, 4, O, I]: the adjoint of a 'SAME'
    stride-2 conv on 2H (padding 1 before, 1 after): ``out[2i + k - 1] += x[i] · w[k]`` per axis, as a scatter."""
    n, _, h, wd = x.shape
    k = w.shape[0]
    full = np.zeros((n, w.shape[2], 2 * h + k, 2 * wd + k))  # index = output position + 1
    for ky in range(k):
        for kx in range(k):
            full[:, :, ky : ky + 2 * h : 2, kx : kx + 2 * wd : 2] += np.einsum("nihw,oi->nohw", x, w[ky, kx])
    return full[:, :, 1 : 2 * h + 1, 1 : 2 * wd + 1]


def upscale2d_conv2d_fused(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """NVIDIA's fused up-conv: w [3, 3, I, O] → [3, 3, O, I], zero-padded to 5×5, the sum of its four 4×4 shifts,
    then the stride-2 transposed convolution."""
    w = np.transpose(w, (0, 1, 3, 2))
    w = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    w = w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]
    return conv2d_transpose_same(x, w)


def blur2d(x: np.ndarray, f: list) -> np.ndarray:
    """Depthwise 'SAME' correlation with the normalised 2-D kernel ``outer(f, f) / sum``."""
    f = _f64(f)
    k2 = np.outer(f, f)
    k2 /= k2.sum()
    L = len(f)
    lo, hi = (L - 1) // 2, L - 1 - (L - 1) // 2
    _, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (lo, hi), (lo, hi)))
    out = np.zeros_like(x)
    for ky in range(L):
        for kx in range(L):
            out += xp[:, :, ky : ky + h, kx : kx + wd] * k2[ky, kx]
    return out


def pixel_norm(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + 1e-8)


def instance_norm(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=(2, 3), keepdims=True)
    return x / np.sqrt(np.mean(x * x, axis=(2, 3), keepdims=True) + 1e-8)


# ---------------------------------------------------------------------------------------------------------------
# Networks.


def mapping(V: dict, static: dict, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """G_mapping: (N, latent) [and labels (N, label_size) when label_size > 0] → (N, num_layers, dlatent)
    (broadcast). With labels: ``concat([z, labels @ LabelConcat/weight], axis=1)`` before the normalisation."""
    x = _f64(z)
    if static.get("label_size", 0):
        x = np.concatenate([x, _f64(labels) @ _f64(V["mapping/LabelConcat/weight"])], axis=1)
    if _kw(static, "normalize_latents"):
        x = pixel_norm(x)
    lrmul = _kw(static, "mapping_lrmul")
    for i in range(_kw(static, "mapping_layers")):
        w = _f64(V[f"mapping/Dense{i}/weight"])
        x = x @ (w * _coef(w.shape, math.sqrt(2), _kw(static, "use_wscale"), lrmul))
        x = _act(x + _f64(V[f"mapping/Dense{i}/bias"]) * lrmul, _kw(static, "mapping_nonlinearity"))
    num_layers = 2 * int(math.log2(static["resolution"])) - 2
    return np.repeat(x[:, None, :], num_layers, axis=1)


def truncate(V: dict, ws: np.ndarray, psi: float | None, cutoff: int | None) -> np.ndarray:
    """G_style: skipped when psi is None or 1, or cutoff is None or <= 0; else lerp(avg, w, psi) below cutoff."""
    if psi is None or psi == 1 or cutoff is None or cutoff <= 0:
        return ws
    avg = _f64(V["dlatent_avg"])
    coefs = np.where(np.arange(ws.shape[1])[None, :, None] < cutoff, psi, 1.0)
    return avg + (ws - avg) * coefs


def synthesis(V: dict, static: dict, ws: np.ndarray, noise_mode: str = "const") -> np.ndarray:
    """G_synthesis at lod 0: ws (N, num_layers, dlatent) → images (N, channels, R, R). noise_mode 'const' uses the
    stored ``noise{i}`` variables (randomize_noise=False), 'none' adds no noise."""
    ws = _f64(ws)
    n = ws.shape[0]
    wscale = _kw(static, "use_wscale")
    act = _kw(static, "nonlinearity")
    lg_R = int(math.log2(static["resolution"]))
    blur_f = _kw(static, "blur_filter")
    fused_opt = _kw(static, "fused_scale")
    use_noise = _kw(static, "use_noise")

    def epilogue(x: np.ndarray, scope: str, idx: int) -> np.ndarray:
        if use_noise and noise_mode == "const":
            x = x + _f64(V[f"synthesis/noise{idx}"]) * _f64(V[f"{scope}/Noise/weight"]).reshape(1, -1, 1, 1)
        x = _act(x + _f64(V[f"{scope}/bias"]).reshape(1, -1, 1, 1), act)
        if _kw(static, "use_pixel_norm"):
            x = pixel_norm(x)
        if _kw(static, "use_instance_norm"):
            x = instance_norm(x)
        sw = _f64(V[f"{scope}/StyleMod/weight"])
        style = ws[:, idx] @ (sw * _coef(sw.shape, 1.0, wscale)) + _f64(V[f"{scope}/StyleMod/bias"])
        style = style.reshape(n, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]

    def conv_w(scope: str) -> np.ndarray:
        w = _f64(V[f"{scope}/weight"])
        return w * _coef(w.shape, math.sqrt(2), wscale)

    const = _f64(V["synthesis/4x4/Const/const"])
    x = epilogue(np.tile(const, (n, 1, 1, 1)), "synthesis/4x4/Const", 0)
    x = epilogue(conv2d_same(x, conv_w("synthesis/4x4/Conv")), "synthesis/4x4/Conv", 1)
    for lg in range(3, lg_R + 1):
        s = f"synthesis/{2**lg}x{2**lg}"
        fused = (min(x.shape[2:]) * 2 >= 128) if fused_opt == "auto" else fused_opt
        if fused:
            y = upscale2d_conv2d_fused(x, conv_w(f"{s}/Conv0_up"))
        else:
            y = conv2d_same(upscale2d(x), conv_w(f"{s}/Conv0_up"))
        if blur_f:
            y = blur2d(y, blur_f)
        x = epilogue(y, f"{s}/Conv0_up", 2 * lg - 4)
        x = epilogue(conv2d_same(x, conv_w(f"{s}/Conv1")), f"{s}/Conv1", 2 * lg - 3)
    w = _f64(V["synthesis/ToRGB_lod0/weight"])
    return conv2d_same(x, w * _coef(w.shape, 1.0, wscale)) + _f64(V["synthesis/ToRGB_lod0/bias"]).reshape(1, -1, 1, 1)


def generate(
    V: dict,
    static: dict,
    z: np.ndarray,
    psi: float | None = None,
    cutoff: int | None = None,
    noise_mode: str = "const",
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Gs.run(z, labels, truncation_psi=psi, truncation_cutoff=cutoff, randomize_noise=False) in float64, NCHW."""
    return synthesis(V, static, truncate(V, mapping(V, static, z, labels), psi, cutoff), noise_mode)
