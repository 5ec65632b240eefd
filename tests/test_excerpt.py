"""Where the web page's default excerpt starts (lsd_jax.audio.excerpt): the loudest stretch of the song."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lsd_jax.audio.excerpt import loudest_start, loudest_stretch
from lsd_jax.errors import AudioError


def test_loudest_start_slides_a_window_over_the_energy():
    e = np.array([1.0, 1.0, 5.0, 0.0, 6.0, 1.0, 0.0])
    assert loudest_start(e, 1) == 4
    assert loudest_start(e, 3) == 2  # 5 + 0 + 6 beats 0 + 6 + 1
    assert loudest_start(e, 7) == 0 and loudest_start(e, 9) == 0  # not longer than the window


def test_the_excerpt_starts_at_the_loudest_stretch(tmp_path):
    sr = 8000
    y = 0.01 * np.random.default_rng(0).normal(size=sr * 60).astype(np.float32)
    y[sr * 33 : sr * 40] *= 50  # a loud 7 s from 0:33
    sf.write(tmp_path / "x.wav", y, sr)
    assert abs(loudest_stretch(tmp_path / "x.wav", 5.0) - 33.0) <= 2.0 + 0.25
    assert loudest_stretch(tmp_path / "x.wav", 30.0) <= 33.0 < loudest_stretch(tmp_path / "x.wav", 30.0) + 30
    assert loudest_stretch(tmp_path / "x.wav", 90.0) == 0.0  # the song is shorter
    # decoded a piece at a time: the pieces join (the loud part straddles the 35 s boundary)
    assert loudest_stretch(tmp_path / "x.wav", 5.0, piece_s=35.0) == loudest_stretch(tmp_path / "x.wav", 5.0)


def test_an_unreadable_song_is_an_audio_error(tmp_path):
    (tmp_path / "notes.mp3").write_text("these are notes\n" * 40)
    with pytest.raises(AudioError, match=r"notes\.mp3"):
        loudest_stretch(tmp_path / "notes.mp3", 5.0)
