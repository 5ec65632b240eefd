"""Small songs for the web app's tests (3 s demo song, a copy as a stem, silence, a text file named
.mp3, an 8 s tone), and :func:`slow_batches` to act in the middle of a render."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lsd_jax.audio.demo_song import write_demo_song

SR = 22050


def write_songs(d: Path) -> dict[str, Path]:
    song = write_demo_song(d / "my song.wav", seconds=3.0)
    drums = d / "drums.wav"
    shutil.copy(song, drums)
    sf.write(d / "silent.wav", np.zeros(SR * 2, np.float32), SR)
    (d / "notes.mp3").write_text("these are my notes, not an mp3\n" * 20)
    sf.write(d / "long.wav", (0.3 * np.sin(np.arange(8000 * 8) * 0.05)).astype(np.float32), 8000, subtype="PCM_16")
    return dict(song=song, drums=drums, silent=d / "silent.wav", text=d / "notes.mp3", long=d / "long.wav")


@contextlib.contextmanager
def slow_batches(seconds: float, until: Callable[[], bool] | None = None, free: int = 1):
    """Renders in this process wait ``seconds`` before handing each batch to the encoder (a test can
    then cancel one mid-way, or watch it play while it renders). ``until``: after the first ``free`` batches,
    batches wait until it holds, e.g. until the run was cancelled (so that a render cannot end first on a loaded
    machine)."""
    module = importlib.import_module("lsd_jax.engine.pipeline")
    real = module.render_frames

    @functools.wraps(real)
    def slow(*args, **kwargs):
        bound = inspect.signature(real).bind(*args, **kwargs)
        sink = bound.arguments["sink"]

        handed = [0]

        def slow_sink(frames):
            time.sleep(seconds)
            while until is not None and handed[0] >= free and not until():
                time.sleep(0.02)
            handed[0] += 1
            sink(frames)

        bound.arguments["sink"] = slow_sink
        return real(*bound.args, **bound.kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "render_frames", slow)
        yield
