"""Deep Music Visualizer's algorithm (Matt Siegelman's ``visualize.py``, msieg/deep-music-visualizer) as pure
functions: a song's features → one BigGAN noise vector and one class mixture per video frame.

Facts from ``visualize.py`` (master; the code here is independent), for a song loaded at 22050 Hz:

* parameters (:class:`~lsd_jax.dmv.params.DMVParams`): ``pitch_sensitivity`` becomes ``(300 − ps)·512/frame_length``,
  ``tempo_sensitivity`` becomes ``ts·frame_length/512``, ``smooth_factor`` becomes ``int(sf·512/frame_length)``
  when ``sf > 1``; the video runs at ``22050/frame_length`` frames per second (one frame per analysis hop).
* features (:func:`dmv_features`): ``spec = melspectrogram(n_mels=128, fmax=8000, hop_length=frame_length)``;
  ``specm`` = its mean over mel bands; ``gradm = gradient(specm)``, divided by its maximum, negatives set to 0;
  ``specm`` then min-max normalised to [0, 1]; ``chroma = chroma_cqt(hop_length=frame_length)`` (12 × T);
  ``chromasort`` = pitches by decreasing mean chroma.
* classes: the given ones (12, or ``num_classes``), else 12 random ImageNet classes; with
  ``sort_classes_by_power`` they are reordered ``classes[argsort(chromasort[:num_classes])]``. Frame 0's class
  vector puts ``chroma[p, t0]`` on ``classes[p]`` (``classes[i]`` for the i-th strongest pitch when
  ``num_classes < 12``), ``t0`` being the first frame where any pitch is positive.
* noise: ``nv₀ = truncation · truncnorm(−2, 2)`` (BigGAN's ``truncated_noise_sample``); each unit's direction starts
  at ``+1`` where ``nv₀ < 0``, else ``−1``. Every frame ``i``: ``u = ts·(gradm[i] + specm[i])·dir·jitter``,
  ``u = (u + 3·u_prev)/4``, ``nv += u``; a unit turns to ``−1`` at ``nv ≥ 2·truncation − ts`` and to ``+1`` at
  ``nv < −2·truncation + ts``. The jitter is redrawn every 200 frames: each unit 1 or ``1 − jitter`` with equal odds.
* class mixture, every frame: ``cv[classes[j]] = (cv_prev[classes[j]] + chroma[chromasort[j], i]/ps)/(1 + 1/ps)``
  for ``j < num_classes`` (other classes 0); with more than 6 classes the nonzero values are rescaled to [0, 1]
  (the smallest nonzero value becomes 0), else divided by their maximum; times ``depth``; if the nonzero values'
  standard deviation is below 1e-7, ``classes[0]`` gets ``+0.01``.
* smoothing: the class vectors are averaged in bins of ``smooth_factor`` frames and interpolated linearly between
  consecutive bin means (``(⌊L/sf⌋ − 1)·sf`` vectors from ``L``).
* frames: ``min(⌊seconds·22050/frame_length/batch_size⌋, ⌊len(class vectors)/batch_size⌋) · batch_size``, frame
  ``n`` drawing noise vector ``n`` and class vector ``n``; ``seconds`` is ``duration`` or the song's length.

Where the original divides by zero (a class mixture whose values are all equal or all zero: NaN frames, or a
crash) the mixture here is 0 before the ``+0.01`` rule, which then applies. Randomness (classes, initial noise,
jitter) comes from a JAX key, so a render is reproducible. The per-frame recurrences run as one jitted
``lax.scan``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..errors import AudioError
from ..models.imagenet import NUM_CLASSES
from .params import RESOLUTIONS, SR, DMVParams

__all__ = [
    "RESOLUTIONS",
    "SR",
    "DMVFeatures",
    "DMVParams",
    "DMVVectors",
    "class_slots",
    "deep_music_vectors",
    "dmv_features",
    "dmv_scan",
    "dmv_vectors",
    "frame_count",
    "pitch_order",
    "random_inputs",
    "smooth",
]

Z_DIM = 128
JITTER_PERIOD = 200  # frames between jitter redraws

# --------------------------------------------------------------------------------------------------------------
# Features.


@dataclass(frozen=True)
class DMVFeatures:
    """Per analysis frame (T = 1 + samples // frame_length at 22050 Hz)."""

    specm: np.ndarray  # (T,) mean mel power, min-max normalised to [0, 1]
    gradm: np.ndarray  # (T,) its rises: gradient / max gradient, negatives 0
    chroma: np.ndarray  # (12, T) chroma_cqt
    n_samples: int  # song length at 22050 Hz


def dmv_features(y: np.ndarray, sr: int, frame_length: int = 512) -> DMVFeatures:
    """The original's analysis of a song (mono or ``(channels, n)`` samples at ``sr``; resampled to 22050 Hz)."""
    from ..store.paths import use_persistent_caches

    use_persistent_caches()  # before librosa loads numba: its compiled functions are kept for the next process
    import librosa

    y = np.asarray(y, np.float32)
    if y.ndim == 2:
        y = librosa.to_mono(y)
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR, res_type="soxr_hq")
    if y.size < frame_length or not np.any(np.abs(y) > 1e-6):
        raise AudioError("the song is silent or shorter than one frame: Deep Music Visualizer mode needs music")
    spec = librosa.feature.melspectrogram(y=y, sr=SR, n_mels=128, fmax=8000, hop_length=frame_length)
    specm = np.mean(spec, axis=0).astype(np.float64)
    gradm = np.gradient(specm)
    top = gradm.max()
    gradm = np.clip(gradm / top, 0.0, None) if top > 0 else np.zeros_like(gradm)  # original: NaN or sign flip
    ptp = np.ptp(specm)
    specm = (specm - specm.min()) / ptp if ptp > 0 else np.zeros_like(specm)
    chroma = librosa.feature.chroma_cqt(y=y, sr=SR, hop_length=frame_length).astype(np.float64)
    t = min(specm.size, chroma.shape[1])
    return DMVFeatures(specm[:t], gradm[:t], chroma[:, :t], int(y.size))


# --------------------------------------------------------------------------------------------------------------
# Class assignment (host side: integer bookkeeping).


@dataclass(frozen=True)
class ClassSlots:
    """The classes in play as K distinct slots: ``indices`` (K,) ImageNet classes, ``pitch`` (K,) the chroma row
    feeding each slot every frame, ``init`` (K,) frame 0's values, ``first`` the slot of ``classes[0]``."""

    indices: np.ndarray
    pitch: np.ndarray
    init: np.ndarray
    first: int


def pitch_order(chroma: np.ndarray) -> np.ndarray:
    """``chromasort``: pitch rows by decreasing mean chroma (NumPy's argsort, reversed, as the original)."""
    return np.argsort(np.mean(chroma, axis=1))[::-1]


def class_slots(chroma: np.ndarray, classes: Sequence[int], num_classes: int, sort_by_power: bool) -> ClassSlots:
    """The original's class bookkeeping (see the module docstring), duplicates resolved as its assignments do
    (the last write to a class wins)."""
    chromasort = pitch_order(chroma)
    classes = [int(c) for c in classes]
    if sort_by_power:
        classes = [classes[s] for s in np.argsort(chromasort[:num_classes])]
    positive = [np.flatnonzero(row > 0) for row in chroma]
    firsts = [p[0] for p in positive if p.size]
    if not firsts:
        raise AudioError("the song has no pitch content (its chroma is zero everywhere)")
    t0 = int(min(firsts))
    init: dict[int, float] = {}
    for pi, p in enumerate(chromasort[:num_classes]):
        init[classes[pi] if num_classes < 12 else classes[p]] = float(chroma[p, t0])
    feed: dict[int, int] = {}
    for j in range(num_classes):
        feed[classes[j]] = int(chromasort[j])
    indices = np.array(list(feed), np.int32)
    return ClassSlots(
        indices,
        np.array([feed[c] for c in feed], np.int32),
        np.array([init.get(c, 0.0) for c in feed], np.float32),
        list(feed).index(classes[0]),
    )


# --------------------------------------------------------------------------------------------------------------
# The per-frame recurrences: one jitted scan.


@functools.partial(jax.jit, static_argnames=("rescale",))
def dmv_scan(
    nv0: jax.Array,
    cv0: jax.Array,
    gradm: jax.Array,
    specm: jax.Array,
    chroma_k: jax.Array,
    jitters: jax.Array,
    first: jax.Array,
    *,
    tempo_rate: float | jax.Array,
    truncation: float | jax.Array,
    pitch_rate: float | jax.Array,
    depth: float | jax.Array,
    rescale: bool,
) -> tuple[jax.Array, jax.Array]:
    """Noise and class recurrences over T frames.

    ``nv0`` (128,) initial noise; ``cv0`` (K,) frame 0's class values; ``gradm``/``specm`` (T,); ``chroma_k``
    (T, K) each slot's chroma; ``jitters`` (⌈T/200⌉, 128); ``first`` the slot of ``classes[0]``; ``rescale``:
    ``num_classes > 6``. Returns noise ``(T+1, 128)`` and class values ``(T+1, K)`` (frame 0 first)."""
    nv0 = jnp.asarray(nv0, jnp.float32)
    dir0 = jnp.where(nv0 < 0, 1.0, -1.0)
    ts = jnp.float32(tempo_rate)
    hi = 2 * jnp.float32(truncation) - ts
    ps = jnp.float32(pitch_rate)
    k = cv0.shape[0]

    def step(carry, x):
        nv, direction, last, cv = carry
        g, s, chroma_i, i = x
        update = ts * (g + s) * direction * jitters[i // JITTER_PERIOD]
        update = (update + last * 3) / 4
        nv = nv + update
        direction = jnp.where(nv >= hi, -1.0, jnp.where(nv < -hi, 1.0, direction))

        cv = (cv + chroma_i / ps) / (1 + 1 / ps)
        nonzero = cv != 0
        if rescale:  # (cv − min nonzero) / (max − min nonzero) on the nonzero values; the rest stays 0
            lo = jnp.min(jnp.where(nonzero, cv, jnp.inf))
            span = jnp.max(cv) - lo
            cv = jnp.where(nonzero & (span > 0), (cv - lo) / jnp.where(span > 0, span, 1.0), 0.0)
        else:
            top = jnp.max(cv)
            cv = jnp.where(top > 0, cv / jnp.where(top > 0, top, 1.0), 0.0)
        cv = cv * jnp.float32(depth)
        nonzero = cv != 0
        count = jnp.sum(nonzero)
        mean = jnp.sum(jnp.where(nonzero, cv, 0.0)) / jnp.maximum(count, 1)
        std = jnp.sqrt(jnp.sum(jnp.where(nonzero, (cv - mean) ** 2, 0.0)) / jnp.maximum(count, 1))
        cv = cv + jnp.where((std < 1e-7) | (count == 0), 0.01, 0.0) * jax.nn.one_hot(first, k, dtype=jnp.float32)
        return (nv, direction, update, cv), (nv, cv)

    t = gradm.shape[0]
    xs = (
        jnp.asarray(gradm, jnp.float32),
        jnp.asarray(specm, jnp.float32),
        jnp.asarray(chroma_k, jnp.float32),
        jnp.arange(t),
    )
    init = (nv0, dir0, jnp.zeros_like(nv0), jnp.asarray(cv0, jnp.float32))
    _, (nvs, cvs) = lax.scan(step, init, xs)
    return jnp.concatenate([nv0[None], nvs]), jnp.concatenate([jnp.asarray(cv0, jnp.float32)[None], cvs])


def smooth(values: jax.Array, factor: int) -> jax.Array:
    """The original's smoothing: ``(L, K)`` → ``((⌊L/f⌋ − 1)·f, K)``, linear between consecutive bin means."""
    if factor == 1:
        return values
    n_bins = values.shape[0] // factor - 1
    if n_bins <= 0:
        return values[:0]
    means = values[: (n_bins + 1) * factor].reshape(n_bins + 1, factor, -1).mean(axis=1)
    w = (jnp.arange(factor, dtype=jnp.float32) / (factor - 1))[None, :, None]
    out = means[:-1, None, :] * (1 - w) + means[1:, None, :] * w
    return out.reshape(n_bins * factor, -1)


# --------------------------------------------------------------------------------------------------------------
# Putting it together.


@dataclass(frozen=True)
class DMVVectors:
    """Per video frame: BigGAN noise and the class mixture over ``class_indices`` (compact: K ≤ 12 classes)."""

    noise: np.ndarray  # (n_frames, 128) float32
    class_values: np.ndarray  # (n_frames, K) float32
    class_indices: np.ndarray  # (K,) ImageNet indices
    fps: Fraction

    @property
    def n_frames(self) -> int:
        return int(self.noise.shape[0])

    def class_vectors(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``start:stop`` as dense ``(n, 1000)`` class mixtures (BigGAN's ``c``)."""
        vals = self.class_values[start:stop]
        out = np.zeros((vals.shape[0], NUM_CLASSES), np.float32)
        out[:, self.class_indices] = vals
        return out


def random_inputs(key: jax.Array, n_frames: int, params: DMVParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The original's randomness from a key: 12 random classes (used when ``params.classes`` is None), the
    initial noise ``truncation·truncnorm(−2, 2)`` and the jitter table (one row per 200 frames)."""
    k_cls, k_nv, k_jit = jax.random.split(key, 3)
    classes = np.asarray(jax.random.choice(k_cls, NUM_CLASSES, (12,), replace=False))
    nv0 = params.truncation * jax.random.truncated_normal(k_nv, -2.0, 2.0, (Z_DIM,), jnp.float32)
    rows = -(-n_frames // JITTER_PERIOD)
    jitters = jnp.where(jax.random.bernoulli(k_jit, 0.5, (rows, Z_DIM)), 1.0, 1.0 - params.jitter)
    return classes, np.asarray(nv0), np.asarray(jitters, np.float32)


def frame_count(n_samples: int, n_class_vectors: int, params: DMVParams) -> int:
    """Frames the original renders: whole batches, limited by ``duration`` (or the song) and the class vectors."""
    seconds = params.duration if params.duration is not None else n_samples / SR
    batches = min(
        int(np.floor(seconds * SR / params.frame_length / params.batch_size)), n_class_vectors // params.batch_size
    )
    return max(batches, 0) * params.batch_size


def dmv_vectors(
    features: DMVFeatures, params: DMVParams, classes: Sequence[int], nv0: np.ndarray, jitters: np.ndarray
) -> DMVVectors:
    """Deterministic core: the vectors for ``classes`` (12 or ``num_classes`` ImageNet indices), initial noise
    ``nv0`` (128,) and jitter table ``jitters`` (⌈T/200⌉, 128)."""
    t = features.specm.size
    slots = class_slots(features.chroma, classes, params.num_classes, params.sort_classes_by_power)
    noise, cvals = dmv_scan(
        jnp.asarray(nv0, jnp.float32),
        jnp.asarray(slots.init),
        jnp.asarray(features.gradm, jnp.float32),
        jnp.asarray(features.specm, jnp.float32),
        jnp.asarray(features.chroma[slots.pitch].T, jnp.float32),
        jnp.asarray(jitters, jnp.float32),
        jnp.int32(slots.first),
        tempo_rate=params.tempo_rate,
        truncation=params.truncation,
        pitch_rate=params.pitch_rate,
        depth=params.depth,
        rescale=params.num_classes > 6,
    )
    cvals = smooth(cvals, params.smooth_frames)
    n = frame_count(features.n_samples, int(cvals.shape[0]), params)
    if n == 0:
        raise AudioError(
            f"the song is too short for Deep Music Visualizer mode with these settings: {t} analysis frames give "
            f"{int(cvals.shape[0])} smoothed class vectors, fewer than one batch of {params.batch_size} (shorten "
            f"smooth_factor or batch_size)"
        )
    return DMVVectors(np.asarray(noise[:n]), np.asarray(cvals[:n]), slots.indices, params.fps)


def deep_music_vectors(features: DMVFeatures, params: DMVParams) -> DMVVectors:
    """:func:`dmv_vectors` with the randomness drawn from ``params.seed``."""
    classes, nv0, jitters = random_inputs(jax.random.key(params.seed), features.specm.size, params)
    return dmv_vectors(features, params, params.classes if params.classes is not None else classes, nv0, jitters)
