"""Preview stills: a few frames at the loudest moments of a song, through the *same* prepared render (latents,
effects, compiled step) as the full video, so a still is exactly that frame of the render. The web app's Preview
(:meth:`lsd_jax.web.jobs.Jobs.preview`) and ``lsd-jax preview`` both use :func:`preview_of`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def loudest_frames(pulse: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` frame indices at the peaks of ``pulse`` (N,), spread out (at least N/(2n) apart), in time
    order: (k,) int64, k <= n."""
    pulse = np.asarray(pulse, np.float64).reshape(-1)
    total = pulse.size
    n = max(1, min(n, total))
    gap = max(1, total // (2 * n))
    chosen: list[int] = []
    for i in np.argsort(-pulse, kind="stable"):
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
            if len(chosen) == n:
                break
    return np.array(sorted(chosen), dtype=np.int64)


@dataclass(frozen=True)
class Preview:
    indices: np.ndarray  # (k,) frame indices in the full render
    times: np.ndarray  # (k,) seconds in the song
    frames: np.ndarray  # (k, H, W, 3) uint8


def preview_of(prep: Any, n: int) -> Preview:
    """``n`` stills at the loudest moments of a prepared render (:class:`lsd_jax.engine.pipeline.Prepared`)."""
    idx = loudest_frames(prep.features.pulse, n)
    frames = prep.frames(idx)
    return Preview(indices=idx, times=prep.params.start + idx / float(prep.features.fps), frames=frames)
