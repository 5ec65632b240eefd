"""Image → latent: find the w (or W+ ws) whose image is closest to a picture, for keyframe images.

::

    proj = project(gen, "album_cover.png")        # cached per (image, model, options)
    proj.w          # (num_ws, w_dim) float32: the latent to put on the keyframe
    proj.image      # (R, R, 3) float32 in [-1, 1]: the generator's reconstruction
    proj.psnr       # dB: how closely it reaches the picture; proj.seconds, proj.loss_history

Method (no downloaded network is needed):

* the target is the picture, EXIF-rotated, centre-cropped to a square and resized to the generator's R×R (Pillow,
  Lanczos), as float32 in [-1, 1];
* the latent is optimised in whitened coordinates ``w = mean + std · u`` where ``mean`` / ``std`` are the per-
  dimension statistics of ``n_samples`` mapped random z's (computed once; conditional models: of the given ``c``,
  or of random one-hot classes), starting from ``u = 0`` (the mean w). Whitening is what makes one method fit every
  network: a deep mapping squeezes W into a narrow, uneven region, and in these coordinates every direction the
  model uses has unit scale, whatever the network's size, depth or w_dim;
* loss = mean over scales (full, ½, ¼, down to 8×8, by average pooling) of the pixel MSE (where a target pixel
  is saturated, at uint8 0 or 255, an image value beyond it counts as exact: the frame is clipped anyway)
  + ``w_reg · mean(u²)`` — the squared per-dimension distance to the mapping's distribution (≈ 1 for a mapped
  sample), which keeps the latent where blending and music-driven motion around it still look like the model;
  both terms are means, so their balance does not change with the resolution or w_dim;
* L-BFGS (SciPy's L-BFGS-B, see :func:`minimise`) until the loss stops falling (by less than ``tol`` of itself over
  :data:`CONVERGENCE_WINDOW` iterations) or ``steps`` iterations: first one w for every layer (W); then, with
  ``w_plus=True``, or by default where that one w reconstructs the image worse than :data:`W_PLUS_BELOW_DB`, a
  per-layer offset from it (W+). Noise inputs stay at the network's constant buffers (``noise_mode="const"``, what
  the render shows) or off;
* ONE jitted loss-and-gradient function at module level (the network's graphdef is static, its state traced, the
  W/W+ switch a traced mask), so it compiles once per (network, noise mode) and is reused by every later projection.

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
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..errors import LsdError, ParamError
from ..store.paths import cache_dir

Array = jax.Array
CACHE_VERSION = "projection-v3"
MIN_PYRAMID = 8  # smallest scale in the multi-scale pixel loss
NOISE_MODES = ("const", "none")
W_PLUS_BELOW_DB = 30.0  # w_plus=None: free the layers when one w reconstructs the image worse than this
CONVERGENCE_WINDOW = 10  # steps over which the loss must keep falling by ``tol`` of itself


class ImageError(LsdError):
    """A keyframe image cannot be read or used."""


class Projection(NamedTuple):
    w: np.ndarray  # (num_ws, w_dim) float32
    image: np.ndarray  # (R, R, 3) float32 in [-1, 1]: the reconstruction
    loss_history: np.ndarray  # (steps taken,) float32: the total loss after each step
    from_cache: bool = False
    psnr: float = math.nan  # dB: the reconstruction (as uint8) against the resized target
    seconds: float = 0.0  # time the optimisation took (when it ran, also for a cached result)


class WStats(NamedTuple):
    mean: np.ndarray  # (w_dim,) float32
    std: np.ndarray  # (w_dim,) float32


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


#: pixels an image file may have (read from its header before decoding): 40 MP is a large camera photo; a keyframe
#: is shrunk to the model's resolution (at most 1024²) anyway
MAX_IMAGE_PIXELS = 40_000_000


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
        name = p.name  # never the folder: uploaded keyframes live in the server's temp folders
        if not p.exists():
            raise ImageError(f"image file not found: {name}")
        if p.is_dir():
            raise ImageError(f"image path is a directory, not an image: {name}")
        if not p.is_file():  # a FIFO or a device would block (or never end) when read
            raise ImageError(f"image {name} is not a regular file (a pipe or a device?)")
        try:
            with Image.open(p) as f:
                # the size is the header's: refuse before decoding (a 20 KB PNG can claim 13000 x 13000 pixels)
                w, h = f.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise ImageError(
                        f"image {name} is {w} x {h} pixels, more than the {MAX_IMAGE_PIXELS // 10**6} "
                        "megapixels read here (it is too large to decode safely): scale it down"
                    )
                f.load()
                img = ImageOps.exif_transpose(f) or f
                img = img.copy()
        except UnidentifiedImageError:
            raise ImageError(f"cannot read image {name}: not an image format Pillow can decode") from None
        except Image.DecompressionBombError as e:  # a huge pixel count claimed by a small file
            raise ImageError(f"cannot read image {name}: it is too large to decode safely ({e})") from None
        except (OSError, ValueError, SyntaxError) as e:  # truncated / corrupt files
            raise ImageError(f"cannot read image {name}: {e}") from None
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
    terms = [
        jnp.mean(jnp.square(_pool(images, f) - _pool(target, f)), axis=(1, 2, 3)) for f in _scales(images.shape[1])
    ]
    return sum(terms) / len(terms)


def saturate_like(images: Array, target: Array) -> Array:
    """Where the target is saturated (exactly ±1: uint8 0 or 255), any image value beyond it displays the same:
    clamp the image there (no loss, no gradient); everywhere else the image is left as it is."""
    hi = (target >= 1.0) & (images > 1.0)
    lo = (target <= -1.0) & (images < -1.0)
    return jnp.where(hi, 1.0, jnp.where(lo, -1.0, images))


def _ws(x: tuple[Array, Array], mask: Array, mean: Array, std: Array) -> Array:
    """Whitened coordinates → ws (num_ws, w_dim): ``x = (u (1, w_dim) shared by every layer, delta (num_ws, w_dim)
    per layer)``; ``mask`` 0 keeps delta out (W), 1 lets it in (W+)."""
    u, delta = x
    return mean + std * (u + mask * delta)


def _loss(
    x: tuple[Array, Array],
    graphdef: Any,
    state: Any,
    noise_mode: str,
    target: Array,
    mean: Array,
    std: Array,
    w_reg: Array,
    mask: Array,
) -> Array:
    u, delta = x
    img = saturate_like(_synthesis(graphdef, state, _ws(x, mask, mean, std)[None], noise_mode), target[None])
    return pyramid_mse(img, target[None])[0] + w_reg * jnp.mean(jnp.square(u + mask * delta))


@functools.partial(jax.jit, static_argnames=("graphdef", "noise_mode"))
def _value_and_grad(
    graphdef: Any,
    state: Any,
    noise_mode: str,
    x: tuple[Array, Array],
    target: Array,
    mean: Array,
    std: Array,
    w_reg: Array,
    mask: Array,
) -> tuple[Array, tuple[Array, Array]]:
    """The loss and its gradient with respect to ``x = (u, delta)``: the one compiled program of a projection (W and
    W+ share it: ``mask`` is traced), so it compiles once per (network, noise mode)."""
    return jax.value_and_grad(_loss)(x, graphdef, state, noise_mode, target, mean, std, w_reg, mask)


def minimise(
    fun_and_grad: Any, x0: np.ndarray, max_steps: int, tol: float, on_step: Any = None
) -> tuple[np.ndarray, list[float]]:
    """L-BFGS (SciPy's L-BFGS-B, no bounds) from ``x0`` (a float64 vector) until :func:`converged` or
    ``max_steps`` iterations: → (the last x, the loss after each iteration). ``fun_and_grad(x) → (loss,
    gradient)``; ``on_step(loss)`` is called after each iteration.

    Why L-BFGS: a projection's loss is smooth and the variables are few (w_dim, or num_ws · w_dim), so a
    quasi-Newton method with a Wolfe line search reaches the exact optimum of an image the network made in a
    few dozen iterations where Adam with a learning-rate schedule stalls at 20-30 dB, and it has no learning rate
    to tune per network. It runs on the host around ONE compiled loss-and-gradient program (optax's jitted L-BFGS
    compiles the network's backward pass twice more, for its line search, ~3x the compile time)."""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    history: list[float] = []

    def callback(intermediate_result: Any) -> None:
        history.append(float(intermediate_result.fun))
        if on_step is not None:
            on_step(history[-1])
        if converged(history, tol):
            raise StopIteration

    # L-BFGS-B's small matrix products on several BLAS threads wait for the cores XLA keeps busy: on one BLAS
    # thread a whole projection took 2-3x less time (64-256 px, 2 cores)
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(
            fun_and_grad,
            x0,
            jac=True,
            method="L-BFGS-B",
            callback=callback,
            options={
                "maxiter": int(max_steps),
                "maxfun": 4 * int(max_steps) + 10,
                "maxcor": 10,
                "ftol": 0.0,
                "gtol": 0.0,
            },
        )
    return np.asarray(res.x, np.float64), history


def _stage(
    loss_and_grads: Any, x: tuple[np.ndarray, np.ndarray], free: int, budget: int, tol: float, on_step: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise over ``x[free]`` with the other part fixed: ``free`` 0 is u with delta masked out (W), 1 is delta
    (W+). ``loss_and_grads(x, mask) → (loss, (du, ddelta))``."""
    if budget < 1:
        return x
    shape = x[free].shape

    def fun_and_grad(v: np.ndarray) -> tuple[float, np.ndarray]:
        trial = (v.reshape(shape), x[1]) if free == 0 else (x[0], v.reshape(shape))
        loss, grads = loss_and_grads(trial, float(free))
        return loss, grads[free].ravel()

    v, _ = minimise(fun_and_grad, x[free].ravel(), budget, tol, on_step)
    return (v.reshape(shape), x[1]) if free == 0 else (x[0], v.reshape(shape))


@functools.partial(jax.jit, static_argnames=("graphdef", "noise_mode"))
def _render_w(graphdef: Any, state: Any, noise_mode: str, ws: Array) -> Array:
    return _synthesis(graphdef, state, ws, noise_mode)


def converged(history: list[float] | np.ndarray, tol: float, window: int = CONVERGENCE_WINDOW) -> bool:
    """Whether the loss has stopped falling: over the last ``window`` steps it fell by at most ``tol`` of its
    value (or it is no longer finite)."""
    if len(history) and not math.isfinite(history[-1]):
        return True
    if len(history) <= window:
        return False
    return history[-window - 1] - history[-1] <= tol * abs(history[-1])


def psnr(image_u8: np.ndarray, target_u8: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (inf when equal)."""
    err = np.mean(np.square(np.asarray(image_u8, np.float64) - np.asarray(target_u8, np.float64)))
    return math.inf if err == 0 else float(10.0 * np.log10(255.0**2 / err))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[-1, 1] float → uint8, rounded as the render's frame step rounds."""
    return np.clip(np.round((np.asarray(image, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------------------------


def model_hash(gen: Any) -> str:
    """sha256 over the generator's spec and every state leaf (path, dtype, shape, bytes). Not memoised (no
    module-level state): it is computed once per keyframe, ~0.2 s for a 1024² network's 120 MB."""
    h = hashlib.sha256(repr(gen.spec).encode())
    for path, leaf in jax.tree_util.tree_flatten_with_path(gen.state)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


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
            w, img, hist, info = f["w"], f["image"], f["loss_history"], f["info"]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing, damaged or from an older version: recompute (and overwrite)
    if (
        w.shape != shape_w
        or img.shape != (res, res, 3)
        or hist.ndim != 1
        or not 1 <= hist.size <= steps
        or info.shape != (2,)
    ):
        return None
    return Projection(
        w.astype(np.float32), img.astype(np.float32), hist.astype(np.float32), True, float(info[0]), float(info[1])
    )


def _save_cached(path: Path, proj: Projection) -> None:
    from ..store.paths import atomic_write

    info = np.asarray([proj.psnr, proj.seconds], np.float64)
    atomic_write(path, lambda f: np.savez(f, w=proj.w, image=proj.image, loss_history=proj.loss_history, info=info))


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def _check_options(steps: Any, tol: Any, w_reg: Any, w_plus: Any, noise_mode: str, n_samples: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ParamError(f"projection steps must be an integer >= 1, got {steps!r}")
    for name, v in (("tol", tol), ("w_reg", w_reg)):
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float, np.floating, np.integer))
            or not math.isfinite(v)
            or v < 0
        ):
            raise ParamError(f"projection {name} must be a finite number >= 0, got {v!r}")
    if w_plus is not None and not isinstance(w_plus, (bool, np.bool_)):
        raise ParamError(f"projection w_plus must be True, False or None (auto), got {w_plus!r}")
    if noise_mode not in NOISE_MODES:
        raise ParamError(f"projection noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ParamError(f"n_samples must be an integer >= 2, got {n_samples!r}")


def project(
    gen: Any,
    image: Any,
    *,
    steps: int = 500,
    w_plus: bool | None = None,
    seed: int = 0,
    tol: float = 1e-3,
    progress: bool = True,
    c: Any = None,
    w_reg: float = 1e-3,
    noise_mode: str = "const",
    n_samples: int = 4096,
    cache: bool = True,
) -> Projection:
    """Project ``image`` (a path, PIL image or uint8 (H, W, 3) array) into ``gen``'s latent space.

    Returns :class:`Projection` (``w`` (num_ws, w_dim), the reconstruction ``image`` (R, R, 3) in [-1, 1], the
    per-step ``loss_history``, ``from_cache``, its ``psnr`` against the resized target and the ``seconds`` it took).
    ``steps``: the most L-BFGS iterations (it stops earlier once the loss falls by less than ``tol`` of itself
    over :data:`CONVERGENCE_WINDOW` steps). ``w_plus=False`` gives the same w on every layer; ``w_plus=True``
    first converges in W (at most half the steps), then frees each layer; ``w_plus=None`` (auto) does the same
    only where W falls short of :data:`W_PLUS_BELOW_DB` (an image the network cannot make from one w, such as a
    photo), and otherwise keeps the one w, which blends and moves like the model's own. ``c``: class vector for a
    conditional model (default: the statistics over all classes; the class only shapes the prior, synthesis takes
    ws).
    ``noise_mode`` ("const" or "none") must match the render's. Deterministic for a ``seed``; cached unless
    ``cache=False``. Raises :class:`ImageError` / :class:`~lsd_jax.errors.ParamError`.
    """
    from tqdm.auto import tqdm

    _check_options(steps, tol, w_reg, w_plus, noise_mode, n_samples)
    spec = gen.spec
    if spec.img_channels != 3:
        raise ParamError(f"projection needs an RGB generator, this one has {spec.img_channels} channels")
    res = spec.img_resolution
    target_u8 = load_image(image, res)
    steps, seed = int(steps), int(seed)
    options = {
        "steps": steps,
        "w_plus": None if w_plus is None else bool(w_plus),
        "seed": seed,
        "tol": float(tol),
        "w_reg": float(w_reg),
        "noise_mode": noise_mode,
        "n_samples": int(n_samples),
        "c": None if c is None else np.asarray(c, np.float32).reshape(-1).tolist(),
    }
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

    t0 = time.perf_counter()
    stats = w_stats(gen, c, int(n_samples), seed)
    mean, std = jnp.asarray(stats.mean), jnp.asarray(stats.std)
    target = jnp.asarray(to_float(target_u8))
    w_reg_a = jnp.float32(w_reg)
    graphdef, state = gen.split()
    w_budget = steps if w_plus is False else max(1, steps // 2)
    losses: list[float] = []

    def loss_and_grads(x: tuple[np.ndarray, np.ndarray], mask: float) -> tuple[float, tuple[np.ndarray, ...]]:
        xs = (jnp.asarray(x[0], jnp.float32), jnp.asarray(x[1], jnp.float32))
        loss, grads = _value_and_grad(graphdef, state, noise_mode, xs, target, mean, std, w_reg_a, jnp.float32(mask))
        return float(loss), tuple(np.asarray(g, np.float64) for g in grads)

    def reconstruction(x: tuple[np.ndarray, np.ndarray], mask: float) -> tuple[Array, np.ndarray, float]:
        ws = _ws((jnp.asarray(x[0], jnp.float32), jnp.asarray(x[1], jnp.float32)), jnp.float32(mask), mean, std)
        img = np.asarray(jnp.clip(_render_w(graphdef, state, noise_mode, ws[None])[0], -1.0, 1.0), np.float32)
        return ws, img, psnr(to_uint8(img), target_u8)

    with tqdm(total=steps, desc="projecting keyframe", unit="step", disable=not progress, leave=False) as bar:

        def on_step(loss: float) -> None:
            losses.append(loss)
            bar.update(1)
            if progress:
                bar.set_postfix(loss=f"{loss:.5f}", refresh=False)

        # W: one u for every layer (delta stays 0); W+: then a per-layer delta from the converged u
        x = (np.zeros((1, spec.w_dim)), np.zeros((spec.num_ws, spec.w_dim)))
        x = _stage(loss_and_grads, x, 0, w_budget, float(tol), on_step)
        ws, img, db = reconstruction(x, 0.0)
        if w_plus or (w_plus is None and db < W_PLUS_BELOW_DB and steps > w_budget):
            x = _stage(loss_and_grads, x, 1, steps - w_budget, float(tol), on_step)
            ws, img, db = reconstruction(x, 1.0)
    proj = Projection(
        np.asarray(ws, np.float32), img, np.asarray(losses, np.float32), False, db, time.perf_counter() - t0
    )
    if path is not None:
        try:
            _save_cached(path, proj)
        except OSError as e:  # a read-only or full cache must not lose the result
            warnings.warn(f"could not cache the projection in {path.parent}: {e}", stacklevel=2)
    return proj
