"""Image → latent: find the w (or W+ ws) whose image is closest to a picture, for keyframe images.

::

    proj = project(gen, "album_cover.png", steps=300)        # cached per (image, model, options)
    proj.w          # (num_ws, w_dim) float32: the latent to put on the keyframe
    proj.image      # (R, R, 3) float32 in [-1, 1]: the generator's reconstruction
    proj.loss_history

Method (no downloaded network is needed):

* the target is the picture, EXIF-rotated, centre-cropped to a square and resized to the generator's R×R (Pillow,
  Lanczos), as float32 in [-1, 1];
* the latent is optimised in whitened coordinates ``w = mean + std · u`` where ``mean`` / ``std`` are the per-
  dimension statistics of ``n_samples`` mapped random z's (computed once; conditional models: of the given ``c``,
  or of random one-hot classes), starting from ``u = 0`` (the mean w). ``w_plus=False`` optimises one w shared by
  all layers; ``w_plus=True`` one per layer;
* loss = mean over scales (full, ½, ¼, down to 8×8, by average pooling) of the pixel MSE (where a target pixel
  is saturated, at uint8 0 or 255, an image value beyond it counts as exact: the frame is clipped anyway)
  + ``w_reg · mean(u²)`` — the squared per-dimension distance to the mapping's distribution (≈ 1 for a mapped
  sample), which keeps the latent where blending and music-driven motion around it still look like the model;
* Adam (optax ``scale_by_adam``) with a warm-up + cosine-decay learning-rate schedule (optax
  ``warmup_cosine_decay_schedule``, peak ``lr``) and a decaying Gaussian jitter on ``u`` over the first three
  quarters (NVIDIA's projector does the same with its w noise), all deterministic for a ``seed``;
* ONE jitted step function at module level (the schedule's value is an argument; the network's graphdef is static,
  its state traced), so it compiles once per (network, latent shape, noise mode) and is reused by every later
  projection.

Discriminator features (as NVIDIA's projector uses VGG/LPIPS, and as the issue suggests trying) are NOT available:
the converter keeps only ``G_ema``, so this loss is pixels + the w prior only.

Results are cached in ``cache_dir()/"projections"`` as ``.npz`` (``allow_pickle=False``, written atomically) under
the sha256 of (the target pixels after resizing, the model's state and spec, the options).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import warnings
import weakref
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from flax import nnx

from .errors import LsdError, ParamError
from .paths import cache_dir

Array = jax.Array
CACHE_VERSION = "projection-v2"
MIN_PYRAMID = 8  # smallest scale in the multi-scale pixel loss
NOISE_MODES = ("const", "none")


class ImageError(LsdError):
    """A keyframe image cannot be read or used."""


class Projection(NamedTuple):
    w: np.ndarray  # (num_ws, w_dim) float32
    image: np.ndarray  # (R, R, 3) float32 in [-1, 1]: the reconstruction
    loss_history: np.ndarray  # (steps,) float32: the total loss at each step
    from_cache: bool = False


class WStats(NamedTuple):
    mean: np.ndarray  # (w_dim,) float32
    std: np.ndarray  # (w_dim,) float32


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


def _open_image(image: Any) -> Any:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(image, Image.Image):
        img = image
    elif isinstance(image, np.ndarray):
        a = image
        if a.dtype != np.uint8:
            raise ImageError(f"an image array must be uint8 (H, W, 3), (H, W, 4) or (H, W); got dtype {a.dtype}")
        if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))) or min(a.shape[:2]) < 1:
            raise ImageError(f"an image array must have shape (H, W, 3), (H, W, 4) or (H, W); got {a.shape}")
        img = Image.fromarray(a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a)
    elif isinstance(image, (str, os.PathLike)):
        p = Path(image).expanduser()
        if not p.exists():
            raise ImageError(f"image file not found: {image}")
        if p.is_dir():
            raise ImageError(f"image path is a directory, not an image: {image}")
        try:
            with Image.open(p) as f:
                f.load()
                img = ImageOps.exif_transpose(f) or f
                img = img.copy()
        except UnidentifiedImageError:
            raise ImageError(f"cannot read image {image}: not an image format Pillow can decode") from None
        except Image.DecompressionBombError as e:  # a huge pixel count claimed by a small file
            raise ImageError(f"cannot read image {image}: it is too large to decode safely ({e})") from None
        except (OSError, ValueError, SyntaxError) as e:  # truncated / corrupt files
            raise ImageError(f"cannot read image {image}: {e}") from None
    else:
        raise ImageError(f"an image must be a path, a PIL image or a uint8 array, got {type(image).__name__}")
    return img


def load_image(image: Any, resolution: int) -> np.ndarray:
    """A path, PIL image or uint8 array → (R, R, 3) uint8 RGB: EXIF-rotated, centre-cropped to a square, resized
    with Lanczos (alpha is dropped). Raises :class:`ImageError` for anything unreadable."""
    from PIL import Image

    img = _open_image(image)
    try:
        img = img.convert("RGB")
        w, h = img.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
        if img.size != (resolution, resolution):
            img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    except (OSError, ValueError) as e:
        what = f" {image}" if isinstance(image, (str, os.PathLike)) else ""
        raise ImageError(f"cannot convert image{what} to RGB: {e}") from None
    return np.asarray(img, np.uint8).copy()


def to_float(image_u8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [-1, 1]."""
    return (np.asarray(image_u8, np.float32) / 127.5 - 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Statistics of W
# ---------------------------------------------------------------------------------------------------------------


def _class_vectors(spec: Any, c: Any, n: int, key: Array) -> Array | None:
    if spec.c_dim == 0:
        if c is not None and np.size(c) > 0:
            raise ParamError("this generator is unconditional: leave c=None")
        return None
    if c is None:  # the distribution of W over all classes: random one-hot classes
        return jax.nn.one_hot(jax.random.randint(key, (n,), 0, spec.c_dim), spec.c_dim, dtype=jnp.float32)
    cv = np.asarray(c, np.float32).reshape(-1)
    if cv.shape != (spec.c_dim,) or not np.isfinite(cv).all():
        raise ParamError(f"c must be a finite vector of {spec.c_dim} class weights, got shape {np.shape(c)}")
    return jnp.broadcast_to(jnp.asarray(cv), (n, spec.c_dim))


def w_stats(gen: Any, c: Any = None, n_samples: int = 4096, seed: int = 0) -> WStats:
    """Per-dimension mean and std of ``n_samples`` mapped random z's (ψ = 1) — the distribution of W."""
    spec = gen.spec
    kz, kc = jax.random.split(jax.random.key(seed))
    z = jax.random.normal(kz, (n_samples, spec.z_dim), jnp.float32)
    cc = _class_vectors(spec, c, n_samples, kc)
    ws = np.asarray(gen.mapping(z, cc), np.float64)[:, 0]  # (n, w_dim)
    return WStats(ws.mean(axis=0).astype(np.float32), ws.std(axis=0).astype(np.float32))


def w_spread(stats: WStats) -> float:
    """The RMS distance of a mapped sample from the mean w: ``sqrt(Σ std²)`` (a natural unit for moving w)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(stats.std, np.float64)))))


# ---------------------------------------------------------------------------------------------------------------
# The optimisation
# ---------------------------------------------------------------------------------------------------------------


def _synthesis(graphdef: Any, state: Any, ws: Array, noise_mode: str) -> Array:
    return nnx.merge(graphdef, state).synthesize(ws, noise_mode=noise_mode)


def _scales(resolution: int) -> tuple[int, ...]:
    """Pooling factors of the loss pyramid: 1, 2, 4 while the pooled image is at least 8×8 (always 1)."""
    return tuple(f for f in (1, 2, 4) if f == 1 or resolution // f >= MIN_PYRAMID)


def _pool(x: Array, f: int) -> Array:
    if f == 1:
        return x
    n, h, w, ch = x.shape
    return x.reshape(n, h // f, f, w // f, f, ch).mean(axis=(2, 4))


def pyramid_mse(images: Array, target: Array) -> Array:
    """Mean over scales (full, ½, ¼ by average pooling, down to 8×8) of the per-image MSE: (N, R, R, 3) → (N,)."""
    terms = [jnp.mean(jnp.square(_pool(images, f) - _pool(target, f)), axis=(1, 2, 3))
             for f in _scales(images.shape[1])]
    return sum(terms) / len(terms)


def saturate_like(images: Array, target: Array) -> Array:
    """Where the target is saturated (exactly ±1: uint8 0 or 255), any image value beyond it displays the same:
    clamp the image there (no loss, no gradient); everywhere else the image is left as it is."""
    hi = (target >= 1.0) & (images > 1.0)
    lo = (target <= -1.0) & (images < -1.0)
    return jnp.where(hi, 1.0, jnp.where(lo, -1.0, images))


def _loss(u: Array, graphdef: Any, state: Any, noise_mode: str, target: Array, mean: Array, std: Array,
          w_reg: Array, jitter: Array) -> Array:
    num_ws, w_dim = nnx.merge(graphdef, state).spec.num_ws, mean.shape[-1]
    ws = mean + std * jnp.broadcast_to(u + jitter, (num_ws, w_dim))
    img = saturate_like(_synthesis(graphdef, state, ws[None], noise_mode), target[None])
    return pyramid_mse(img, target[None])[0] + w_reg * jnp.mean(jnp.square(u))


_ADAM = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)


@functools.partial(jax.jit, static_argnames=("graphdef", "noise_mode"))
def _step(graphdef: Any, state: Any, noise_mode: str, u: Array, opt_state: Any, lr_t: Array, jitter_t: Array,
          key: Array, target: Array, mean: Array, std: Array, w_reg: Array) -> tuple[Array, Any, Array]:
    """One Adam step on u; lr_t and the jitter scale are arguments, so every step and call shares one program."""
    jitter = jitter_t * jax.random.normal(key, u.shape, jnp.float32)
    loss, grad = jax.value_and_grad(_loss)(u, graphdef, state, noise_mode, target, mean, std, w_reg, jitter)
    updates, opt_state = _ADAM.update(grad, opt_state, u)
    return u - lr_t * updates, opt_state, loss


@functools.partial(jax.jit, static_argnames=("graphdef", "noise_mode"))
def _render_w(graphdef: Any, state: Any, noise_mode: str, ws: Array) -> Array:
    return _synthesis(graphdef, state, ws, noise_mode)


def lr_schedule(steps: int, lr: float) -> np.ndarray:
    """The learning rate at each step: linear warm-up over 5% of the steps to ``lr``, then cosine decay to
    ``lr/100`` (optax ``warmup_cosine_decay_schedule``)."""
    warm = max(1, int(round(0.05 * steps)))
    sched = optax.warmup_cosine_decay_schedule(init_value=0.0, peak_value=lr, warmup_steps=warm,
                                               decay_steps=max(steps, warm + 1), end_value=lr * 0.01)
    return np.asarray([sched(i + 1) for i in range(steps)], np.float32)


def jitter_schedule(steps: int, scale: float) -> np.ndarray:
    """Std of the Gaussian jitter on u at each step: ``scale · max(0, 1 − t/0.75)²`` (t = step / steps)."""
    t = np.arange(steps, dtype=np.float64) / max(steps, 1)
    return (scale * np.square(np.maximum(0.0, 1.0 - t / 0.75))).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------------------------

_MODEL_HASHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_hash(gen: Any) -> str:
    """sha256 over the generator's spec and every state leaf (path, dtype, shape, bytes); memoised per object."""
    try:
        return _MODEL_HASHES[gen]
    except (KeyError, TypeError):
        pass
    h = hashlib.sha256(repr(gen.spec).encode())
    for path, leaf in jax.tree_util.tree_flatten_with_path(gen.state)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    digest = h.hexdigest()
    try:
        _MODEL_HASHES[gen] = digest
    except TypeError:
        pass
    return digest


def _cache_key(target_u8: np.ndarray, gen: Any, options: dict) -> str:
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(hashlib.sha256(np.ascontiguousarray(target_u8).tobytes()).digest())
    h.update(str(target_u8.shape).encode())
    h.update(model_hash(gen).encode())
    h.update(repr(sorted(options.items())).encode())
    return h.hexdigest()


def projection_cache_dir() -> Path:
    d = cache_dir() / "projections"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _load_cached(path: Path, shape_w: tuple[int, int], res: int, steps: int) -> Projection | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            w, img, hist = f["w"], f["image"], f["loss_history"]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing or damaged: recompute (and overwrite)
    if w.shape != shape_w or img.shape != (res, res, 3) or hist.shape != (steps,):
        return None
    return Projection(w.astype(np.float32), img.astype(np.float32), hist.astype(np.float32), True)


def _save_cached(path: Path, proj: Projection) -> None:
    from .paths import atomic_write

    atomic_write(path, lambda f: np.savez(f, w=proj.w, image=proj.image, loss_history=proj.loss_history))


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def _check_options(steps: Any, lr: Any, w_reg: Any, jitter: Any, noise_mode: str, n_samples: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ParamError(f"projection steps must be an integer >= 1, got {steps!r}")
    for name, v, lo_ok in (("lr", lr, False), ("w_reg", w_reg, True), ("jitter", jitter, True)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                or not math.isfinite(v) or v < 0 or (v == 0 and not lo_ok):
            raise ParamError(f"projection {name} must be a finite number {'>= 0' if lo_ok else '> 0'}, got {v!r}")
    if noise_mode not in NOISE_MODES:
        raise ParamError(f"projection noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ParamError(f"n_samples must be an integer >= 2, got {n_samples!r}")


def project(gen: Any, image: Any, *, steps: int = 300, w_plus: bool = False, seed: int = 0, lr: float = 0.1,
            progress: bool = True, c: Any = None, w_reg: float = 1e-3, jitter: float = 0.05,
            noise_mode: str = "const", n_samples: int = 4096, cache: bool = True) -> Projection:
    """Project ``image`` (a path, PIL image or uint8 (H, W, 3) array) into ``gen``'s latent space.

    Returns :class:`Projection` (``w`` (num_ws, w_dim), the reconstruction ``image`` (R, R, 3) in [-1, 1], the
    per-step ``loss_history``, ``from_cache``). ``w_plus=False`` gives the same w on every layer. ``c``: class
    vector for a conditional model (default: the statistics over all classes; the class only shapes the prior,
    synthesis takes ws). ``noise_mode`` ("const" or "none") must match the render's. Deterministic for a
    ``seed``; cached unless ``cache=False``. Raises :class:`ImageError` / :class:`~lsd_jax.errors.ParamError`.
    """
    from tqdm.auto import tqdm

    _check_options(steps, lr, w_reg, jitter, noise_mode, n_samples)
    spec = gen.spec
    if spec.img_channels != 3:
        raise ParamError(f"projection needs an RGB generator, this one has {spec.img_channels} channels")
    res = spec.img_resolution
    target_u8 = load_image(image, res)
    steps, seed = int(steps), int(seed)
    options = {"steps": steps, "w_plus": bool(w_plus), "seed": seed, "lr": float(lr), "w_reg": float(w_reg),
               "jitter": float(jitter), "noise_mode": noise_mode, "n_samples": int(n_samples),
               "c": None if c is None else np.asarray(c, np.float32).reshape(-1).tolist()}
    path = None
    if cache:
        try:
            path = projection_cache_dir() / f"{_cache_key(target_u8, gen, options)}.npz"
        except OSError as e:
            warnings.warn(f"projection cache unavailable ({e}); projecting without it", stacklevel=2)
    if path is not None and path.exists():
        hit = _load_cached(path, (spec.num_ws, spec.w_dim), res, steps)
        if hit is not None:
            return hit

    stats = w_stats(gen, c, int(n_samples), seed)
    mean, std = jnp.asarray(stats.mean), jnp.asarray(stats.std)
    target = jnp.asarray(to_float(target_u8))
    u = jnp.zeros((spec.num_ws if w_plus else 1, spec.w_dim), jnp.float32)
    opt_state = _ADAM.init(u)
    lrs, jit_s = lr_schedule(steps, float(lr)), jitter_schedule(steps, float(jitter))
    base_key = jax.random.fold_in(jax.random.key(seed), 0x9E37)
    w_reg_a = jnp.float32(w_reg)
    graphdef, state = gen.split()
    losses = []
    with tqdm(total=steps, desc="projecting keyframe", unit="step", disable=not progress, leave=False) as bar:
        for i in range(steps):
            u, opt_state, loss = _step(graphdef, state, noise_mode, u, opt_state, lrs[i], jit_s[i],
                                       jax.random.fold_in(base_key, i), target, mean, std, w_reg_a)
            losses.append(loss)
            bar.update(1)
            if progress and (i % 10 == 9 or i == steps - 1):
                bar.set_postfix(loss=f"{float(loss):.4f}")
    ws = mean + std * jnp.broadcast_to(u, (spec.num_ws, spec.w_dim))
    img = jnp.clip(_render_w(graphdef, state, noise_mode, ws[None])[0], -1.0, 1.0)
    proj = Projection(np.asarray(ws, np.float32), np.asarray(img, np.float32),
                      np.asarray(jnp.stack(losses), np.float32), False)
    if path is not None:
        try:
            _save_cached(path, proj)
        except OSError as e:  # a read-only or full cache must not lose the result
            warnings.warn(f"could not cache the projection in {path.parent}: {e}", stacklevel=2)
    return proj
