"""Per-layer bands (W+): the song's low, mid and high bands move the coarse, middle and fine layers' w.

::

    env = band_envelopes(y, sr, fps, n_frames, edges_hz=(250.0, 2000.0))      # (N, 3) in [0, 1]
    groups = layer_groups(gen.num_ws, gen.img_resolution)                      # (L,) 0 coarse / 1 mid / 2 fine
    dirs = band_directions(jax.random.key(seed), gen.w_dim, scale=w_spread)   # (3, w_dim)
    ws = apply_bands(ws, env, jnp.array([low, mid, high]), dirs, groups)       # (N, L, w_dim)

Envelopes: the mel power spectrogram (the song's own, shared with ``audio.py``'s loudness) is split at
``edges_hz`` by mel-bin centre frequency into low (< edges[0]), mid and high (>= edges[1]) groups; each band's
loudness per spectral column is the max over its bins (``audio.py``'s loudness, per band), pooled to frames with
:func:`lsd_jax.audio.envelopes.pool_columns` (max) and min-max normalised per band — except that a band whose range is
below ``floor_db`` (default -40 dB) of the loudest band's range is divided by that floor instead of its own range,
so a band with nothing in it (only spectral leakage) stays near 0 instead of being blown up to full scale.

Layers: :func:`layer_groups` documents the split (StyleGAN's coarse 4²–8², middle 16²–32², fine 64²+).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ParamError
from .envelopes import analysis_hop, is_silent, pool_columns
from .spectral import N_MELS, mel_frequencies, mel_spectrogram

Array = jax.Array
BAND_NAMES = ("low", "mid", "high")
DEFAULT_EDGES_HZ = (250.0, 2000.0)
FLOOR_DB = -40.0


def check_edges(edges_hz: Any, sr: int) -> tuple[float, float]:
    """Validate band edges: two increasing frequencies strictly inside (0, sr/2). Raises ParamError."""
    try:
        lo, hi = (float(e) for e in edges_hz)
    except (TypeError, ValueError):
        raise ParamError(f"band edges must be two frequencies in Hz (low/mid, mid/high), got {edges_hz!r}") from None
    nyq = sr / 2
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi < nyq):
        raise ParamError(
            f"band edges must satisfy 0 < low/mid < mid/high < {nyq:g} Hz (half the analysis rate), got {edges_hz!r}"
        )
    return lo, hi


def mel_band_index(edges_hz: Any, sr: int, n_mels: int = N_MELS) -> np.ndarray:
    """The band (0 low, 1 mid, 2 high) of each of the ``n_mels`` mel bins of
    :func:`lsd_jax.audio.spectral.mel_filterbank` (fmin 0, fmax sr/2), by bin centre frequency. Raises ParamError if a
    band gets no bin."""
    lo, hi = check_edges(edges_hz, sr)
    centres = mel_frequencies(n_mels + 2, fmin=0.0, fmax=sr / 2)[1:-1]
    band = np.where(centres < lo, 0, np.where(centres < hi, 1, 2)).astype(np.int32)
    for b, name in enumerate(BAND_NAMES):
        if not np.any(band == b):
            raise ParamError(
                f"band edges {tuple(edges_hz)} leave the {name} band without any of the {n_mels} mel "
                f"bins: move them apart"
            )
    return band


def normalise_bands(env: np.ndarray, floor_db: float = FLOOR_DB) -> np.ndarray:
    """(N, 3) raw band loudness → [0, 1] per band: min-max, with each band's range at least ``10^(floor_db/10)``
    times the largest band range (so an empty band stays near 0). All-flat input gives zeros."""
    env = np.asarray(env, np.float64)
    if env.size == 0:
        return env.astype(np.float32)
    lo = env.min(axis=0)
    rng = env.max(axis=0) - lo
    top = float(rng.max())
    if not top > 0:
        return np.zeros(env.shape, np.float32)
    denom = np.maximum(rng, top * 10.0 ** (floor_db / 10.0))
    return np.clip((env - lo) / denom, 0.0, 1.0).astype(np.float32)


def band_envelopes(
    y: np.ndarray,
    sr: int,
    fps: float | Fraction,
    n_frames: int,
    edges_hz: Any = DEFAULT_EDGES_HZ,
    *,
    offset: float | Fraction = 0,
    duration: float | Fraction | None = None,
    S: np.ndarray | None = None,
    floor_db: float = FLOOR_DB,
) -> np.ndarray:
    """Low / mid / high loudness envelopes (N, 3) float32 in [0, 1] of the mono signal ``y`` at ``sr``.

    Frame i covers ``[i/fps, (i+1)/fps)`` of the excerpt, which starts ``offset`` seconds into ``y`` (the
    analysis context, as in ``audio._Analysis``) and lasts ``duration`` (default ``n_frames/fps``). ``S``: an
    already computed mel power spectrogram of ``y`` (128 mels, n_fft 2048, hop ``analysis_hop(sr, fps)``, as the
    render's analysis passes) to reuse. A silent signal gives zeros.
    """
    y = np.asarray(y, np.float32)
    hop = analysis_hop(sr, fps)
    band = mel_band_index(edges_hz, sr, N_MELS if S is None else int(np.shape(S)[0]))
    if S is None:
        if is_silent(y):
            check_edges(edges_hz, sr)
            return np.zeros((int(n_frames), 3), np.float32)
        S = mel_spectrogram(y, sr, hop)
    S = np.asarray(S, np.float64)
    cols = np.stack([S[band == b].max(axis=0) for b in range(3)], axis=0)  # (3, columns)
    pooled = pool_columns(cols, hop, sr, fps, int(n_frames), "max", offset, duration)  # (N, 3)
    return normalise_bands(pooled, floor_db)


# ---------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------


def layer_groups(num_ws: int, img_resolution: int | None = None) -> np.ndarray:
    """The band (0 coarse/low, 1 middle/mid, 2 fine/high) that drives each of the ``num_ws`` layers: (L,) int32.

    StyleGAN2 layout (``num_ws == 2·log2(R) − 2``, R ≥ 64): w index l feeds resolution ``2^(2 + l//2)`` (the
    StyleGAN convention: ws 0–3 are 4²–8², 4–7 are 16²–32², 8+ are 64²+), so coarse = l < 4, middle = 4 ≤ l < 8,
    fine = l ≥ 8 (at 1024²: 4 / 4 / 10 layers; 256²: 4 / 4 / 6; 64²: 4 / 4 / 2). Otherwise (R < 64, which would
    have no fine layer; StyleGAN3, whose layers do not follow that layout; or ``img_resolution=None``) the layers
    are split in thirds: group ``floor(3·l / L)``.
    """
    L = int(num_ws)
    if L < 1:
        raise ParamError(f"num_ws must be >= 1, got {num_ws!r}")
    if img_resolution is not None:
        r = int(img_resolution)
        log2 = int(round(math.log2(r))) if r > 0 else 0
        if r >= 64 and 2**log2 == r and 2 * log2 - 2 == L:
            res = 2 ** (2 + np.arange(L) // 2)
            return np.where(res <= 8, 0, np.where(res <= 32, 1, 2)).astype(np.int32)
    return (3 * np.arange(L) // L).astype(np.int32)


def band_directions(key: Array, w_dim: int, scale: float | Array = 1.0) -> Array:
    """Three fixed random orthonormal directions in W (3, w_dim), times ``scale`` (e.g. the spread of W,
    :func:`lsd_jax.styles.projection.w_spread`, so that react = 1 moves w by one typical sample distance)."""
    if w_dim < 3:
        raise ParamError(f"w_dim must be >= 3 for three band directions, got {w_dim}")
    q, r = jnp.linalg.qr(jax.random.normal(key, (w_dim, 3), jnp.float32))
    q = q * jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0)[None, :]  # a unique (sign-fixed) orthonormal basis
    return (q.T * scale).astype(jnp.float32)


@jax.jit
def _apply_bands(ws: Array, bands: Array, react: Array, directions: Array, groups: Array) -> Array:
    onehot = jax.nn.one_hot(groups, 3, dtype=jnp.float32)  # (L, 3)
    amount = bands * react[None, :]  # (N, 3)
    # offset[n, l, :] = Σ_g onehot[l, g] · amount[n, g] · directions[g, :]
    offset = jnp.einsum("lg,ng,gd->nld", onehot, amount, directions)
    return ws + offset


def apply_bands(ws: Array, bands: Array, react: Any, directions: Array, groups: Any = None) -> Array:
    """Move each layer's w along its band's direction: ``ws[n, l] + react[g] · bands[n, g] · directions[g]`` with
    ``g = groups[l]``. ws (N, L, D), bands (N, 3), react (3,), directions (3, D) — or a PRNG key, giving unit
    :func:`band_directions` — and groups (L,) (default ``layer_groups(L)``, i.e. thirds: pass
    ``layer_groups(num_ws, img_resolution)`` for the StyleGAN2 split). Pure and jittable (everything may be
    traced; groups too). A layer whose band is silent, or whose react is 0, keeps its w exactly."""
    ws = jnp.asarray(ws, jnp.float32)
    if ws.ndim != 3:
        raise ValueError(f"ws must have shape (N, L, D), got {ws.shape}")
    n, L, d = ws.shape
    if groups is None:
        groups = layer_groups(L)
    directions = jnp.asarray(directions) if not isinstance(directions, jax.Array) else directions
    if jnp.issubdtype(directions.dtype, jax.dtypes.prng_key) or (
        directions.dtype == jnp.uint32 and directions.shape == (2,)
    ):
        directions = band_directions(directions, d)
    bands = jnp.asarray(bands, jnp.float32)
    react = jnp.broadcast_to(jnp.asarray(react, jnp.float32), (3,))
    groups = jnp.asarray(groups, jnp.int32)
    if bands.shape != (n, 3) or directions.shape != (3, d) or groups.shape != (L,):
        raise ValueError(
            f"apply_bands: expected bands (N={n}, 3), directions (3, {d}), groups ({L},); got "
            f"{bands.shape}, {directions.shape}, {groups.shape}"
        )
    return _apply_bands(ws, bands, react, directions.astype(jnp.float32), groups)
