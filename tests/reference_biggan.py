"""Independent float64 NumPy oracle of the BigGAN-deep generator of ``pytorch-pretrained-biggan``, NCHW like torch.

Written from the published maths (Brock et al. 2018, BigGAN-deep; the package's ``model.py`` for the exact module
layout), reading the RAW checkpoint tensors: spectral norm is applied here from ``weight_orig``/``weight_u``/
``weight_v`` as torch's ``spectral_norm`` does in eval mode (``W / (u · W_mat v)``), so the converter's folding is
checked too. Nothing here is shared with the JAX model or the converter.
"""

from __future__ import annotations

import math

import numpy as np


def sn_weight(state: dict, prefix: str) -> np.ndarray:
    w = np.asarray(state[prefix + ".weight_orig"], np.float64)
    u = np.asarray(state[prefix + ".weight_u"], np.float64)
    v = np.asarray(state[prefix + ".weight_v"], np.float64)
    sigma = u @ (w.reshape(w.shape[0], -1) @ v)
    return w / sigma


def stats(running: np.ndarray, truncation: float, swapped: bool = True) -> np.ndarray:
    """The package's interpolation of the per-truncation statistics (``swapped=False``: an ordinary lerp, used
    only to show that the order matters)."""
    step = 1.0 / (running.shape[0] - 1)
    coef, start = math.modf(truncation / step)
    i = int(start)
    r = np.asarray(running, np.float64)
    if coef == 0.0:
        return r[i]
    if swapped:
        return r[i] * coef + r[i + 1] * (1 - coef)
    return r[i] * (1 - coef) + r[i + 1] * coef


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    y = x @ w.T
    return y if b is None else y + b


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """Cross-correlation (torch ``conv2d``), NCHW × OIHW, stride 1, zero padding ``pad``."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, o, h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + out.shape[2], j : j + out.shape[3]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def batch_norm(
    state: dict, prefix: str, x: np.ndarray, truncation: float, eps: float, cond: np.ndarray | None, swapped: bool
) -> np.ndarray:
    mean = stats(state[prefix + ".running_means"], truncation, swapped)
    var = stats(state[prefix + ".running_vars"], truncation, swapped)
    xn = (x - mean[None, :, None, None]) / np.sqrt(var + eps)[None, :, None, None]
    if cond is None:
        w = np.asarray(state[prefix + ".weight"], np.float64)
        b = np.asarray(state[prefix + ".bias"], np.float64)
        return xn * w[None, :, None, None] + b[None, :, None, None]
    weight = 1.0 + linear(cond, sn_weight(state, prefix + ".scale"))
    bias = linear(cond, sn_weight(state, prefix + ".offset"))
    return xn * weight[:, :, None, None] + bias[:, :, None, None]


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def upsample_nearest(x: np.ndarray) -> np.ndarray:
    return x.repeat(2, axis=2).repeat(2, axis=3)


def maxpool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def gen_block(
    state: dict, p: str, x: np.ndarray, cond: np.ndarray, t: float, eps: float, up: bool, c_out: int, swapped: bool
) -> np.ndarray:
    x0 = x
    h = batch_norm(state, p + ".bn_0", x, t, eps, cond, swapped)
    h = conv2d(relu(h), sn_weight(state, p + ".conv_0"), np.float64(state[p + ".conv_0.bias"]), 0)
    h = relu(batch_norm(state, p + ".bn_1", h, t, eps, cond, swapped))
    if up:
        h = upsample_nearest(h)
    h = conv2d(h, sn_weight(state, p + ".conv_1"), np.float64(state[p + ".conv_1.bias"]), 1)
    h = relu(batch_norm(state, p + ".bn_2", h, t, eps, cond, swapped))
    h = conv2d(h, sn_weight(state, p + ".conv_2"), np.float64(state[p + ".conv_2.bias"]), 1)
    h = relu(batch_norm(state, p + ".bn_3", h, t, eps, cond, swapped))
    h = conv2d(h, sn_weight(state, p + ".conv_3"), np.float64(state[p + ".conv_3.bias"]), 0)
    if x0.shape[1] != c_out:
        x0 = x0[:, : x0.shape[1] // 2]
    if up:
        x0 = upsample_nearest(x0)
    return h + x0


def self_attn(state: dict, p: str, x: np.ndarray) -> np.ndarray:
    n, ch, h, w = x.shape
    theta = conv2d(x, sn_weight(state, p + ".snconv1x1_theta"), None, 0).reshape(n, ch // 8, h * w)
    phi = maxpool2(conv2d(x, sn_weight(state, p + ".snconv1x1_phi"), None, 0)).reshape(n, ch // 8, h * w // 4)
    logits = np.einsum("ncq,nck->nqk", theta, phi)
    logits -= logits.max(axis=-1, keepdims=True)
    attn = np.exp(logits)
    attn /= attn.sum(axis=-1, keepdims=True)
    g = maxpool2(conv2d(x, sn_weight(state, p + ".snconv1x1_g"), None, 0)).reshape(n, ch // 2, h * w // 4)
    attn_g = np.einsum("nck,nqk->ncq", g, attn).reshape(n, ch // 2, h, w)
    o = conv2d(attn_g, sn_weight(state, p + ".snconv1x1_o_conv"), None, 0)
    return x + np.float64(state[p + ".gamma"])[0] * o


def biggan(
    config: dict, state: dict, z: np.ndarray, c: np.ndarray, truncation: float, swapped: bool = True
) -> np.ndarray:
    """``BigGAN(config)(z, c, truncation)`` of the package in float64, returned NHWC ``(N, H, W, 3)``."""
    assert 0 < truncation <= 1
    eps, ch = config["eps"], config["channel_width"]
    z = np.asarray(z, np.float64)
    embed = linear(np.asarray(c, np.float64), np.asarray(state["embeddings.weight"], np.float64))
    cond = np.concatenate([z, embed], axis=1)
    x = linear(cond, sn_weight(state, "generator.gen_z"), np.float64(state["generator.gen_z.bias"]))
    x = x.reshape(-1, 4, 4, 16 * ch).transpose(0, 3, 1, 2)  # the TF-layout view, then to NCHW
    m = 0
    for i, (up, _a, b) in enumerate(config["layers"]):
        if i == config["attention_layer_position"]:
            x = self_attn(state, f"generator.layers.{m}", x)
            m += 1
        x = gen_block(state, f"generator.layers.{m}", x, cond, truncation, eps, up, b * ch, swapped)
        m += 1
    x = relu(batch_norm(state, "generator.bn", x, truncation, eps, None, swapped))
    x = conv2d(x, sn_weight(state, "generator.conv_to_rgb"), np.float64(state["generator.conv_to_rgb.bias"]), 1)
    return np.tanh(x[:, :3]).transpose(0, 2, 3, 1)
