"""Small songs for the web app's tests (3 s demo song, a copy as a stem, silence, a text file named
.mp3, an 8 s tone)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from lsd_jax.demo import write_demo_song

SR = 22050


def write_songs(d: Path) -> dict[str, Path]:
    song = write_demo_song(d / "my song.wav", seconds=3.0)
    drums = d / "drums.wav"
    shutil.copy(song, drums)
    sf.write(d / "silent.wav", np.zeros(SR * 2, np.float32), SR)
    (d / "notes.mp3").write_text("these are my notes, not an mp3\n" * 20)
    sf.write(d / "long.wav", (0.3 * np.sin(np.arange(8000 * 8) * 0.05)).astype(np.float32), 8000, subtype="PCM_16")
    return dict(song=song, drums=drums, silent=d / "silent.wav", text=d / "notes.mp3", long=d / "long.wav")
