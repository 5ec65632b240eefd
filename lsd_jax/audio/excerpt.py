"""Where in a song to take an excerpt: :func:`loudest_stretch` (the web page's default excerpt starts there).

The song is decoded a piece at a time (:func:`lsd_jax.media.decode.read_audio`, so memory stays small whatever its
length) and reduced to its energy per hop; the pure part, :func:`loudest_start`, slides a window over that.
"""

from __future__ import annotations

import os

import numpy as np

from ..media.decode import BeyondEnd, read_audio, to_mono


def loudest_start(energy: np.ndarray, window: int) -> int:
    """The first index of the ``window`` consecutive entries of ``energy`` (N,) with the largest sum (0 when N is
    not more than ``window``)."""
    e = np.asarray(energy, np.float64).reshape(-1)
    window = max(1, int(window))
    if e.size <= window:
        return 0
    c = np.concatenate([[0.0], np.cumsum(e)])
    return int(np.argmax(c[window:] - c[:-window]))


def loudest_stretch(
    path: str | os.PathLike[str], seconds: float, hop_s: float = 0.25, limit_s: float = 1800.0, piece_s: float = 120.0
) -> float:
    """Where the ``seconds``-long stretch of the song with the most energy starts (seconds, on a ``hop_s`` grid; 0
    when the song is not longer). Decodes ``piece_s`` at a time, the first ``limit_s`` seconds at most. An
    :class:`~lsd_jax.errors.AudioError` naming the file when it cannot be decoded."""
    energy: list[np.ndarray] = []
    start = 0.0
    while start < limit_s:
        try:
            data, sr = read_audio(path, start=start, duration=piece_s)
        except BeyondEnd:
            break
        y = to_mono(data)
        hop = max(1, int(round(hop_s * sr)))
        n = len(y) // hop
        energy.append(np.square(y[: n * hop].reshape(n, hop).astype(np.float64)).sum(axis=1))
        if len(y) < int(piece_s * sr) - hop:  # the end of the song
            break
        start += piece_s
    e = np.concatenate(energy) if energy else np.zeros(0)
    return round(loudest_start(e, int(round(seconds / hop_s))) * hop_s, 3)
