"""lsd_jax.analyze: the song's form (tempo, beats, downbeats, sections, drops) on synthetic songs of known form."""

from __future__ import annotations

import json

import chex
import numpy as np
import pytest
import soundfile as sf

from lsd_jax.audio import structure
from lsd_jax.errors import AudioError

SR = 22050


def _tone(freqs: list[float], n: int, *, harmonics: int, bright: float, sr: int = SR) -> np.ndarray:
    t = np.arange(n) / sr
    out = np.zeros(n)
    for f in freqs:
        for h in range(1, harmonics + 1):
            out += np.sin(2 * np.pi * f * h * t) * bright ** (h - 1) / len(freqs)
    return out


def _hits(n: int, times: np.ndarray, sound: np.ndarray) -> np.ndarray:
    out = np.zeros(n + sound.size)
    for t in times:
        i = int(round(t * SR))
        if 0 <= i < n:
            out[i : i + sound.size] += sound
    return out[:n]


def _kick(sr: int = SR) -> np.ndarray:
    t = np.arange(int(0.25 * sr)) / sr
    return np.sin(2 * np.pi * (45 + 90 * np.exp(-t * 30)) * t) * np.exp(-t * 12)


def _noise_hit(length: float, decay: float, rng: np.random.Generator, highpass: bool) -> np.ndarray:
    n = int(length * SR)
    x = rng.standard_normal(n)
    if highpass:
        x = np.diff(x, prepend=0.0)
    return x * np.exp(-np.arange(n) / SR * decay)


def part(kind: str, seconds: float, seed: int = 0) -> np.ndarray:
    """One section of a synthetic song: ``"A"`` (120 BPM kick and hat, a bright C major chord), ``"B"`` (96 BPM
    snares and a soft A minor pad), ``"build"`` (no low end: a rising noise sweep and quickening snares), ``"drop"``
    (120 BPM, loud kick and sub bass under a G chord). The same kind and seed give the same samples."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "A":
        beats = np.arange(0, seconds, 0.5)
        y = 0.5 * _hits(n, beats, _kick()) + 0.04 * _hits(n, beats, _noise_hit(0.05, 80, rng, True))
        y += 0.25 * _tone([261.6, 329.6, 392.0], n, harmonics=6, bright=0.7)
    elif kind == "B":
        beats = np.arange(0, seconds, 60 / 96)
        y = 0.3 * _hits(n, beats[1::2], _noise_hit(0.15, 25, rng, False))
        y += 0.3 * _tone([220.0, 261.6, 329.6], n, harmonics=2, bright=0.3) * (0.8 + 0.2 * np.sin(2 * np.pi * 0.5 * t))
        y += 0.08 * _hits(n, beats, _noise_hit(0.03, 120, rng, True))
    elif kind == "build":
        ramp = (t / seconds) ** 2
        y = 0.2 * np.diff(rng.standard_normal(n), prepend=0.0) * ramp
        gaps = 0.5 / (1 + 3 * np.arange(0, seconds, 0.25) / seconds)
        y += 0.2 * _hits(n, np.cumsum(gaps), _noise_hit(0.06, 60, rng, False)) * (0.3 + ramp)
    elif kind == "drop":
        beats = np.arange(0, seconds, 0.5)
        y = 0.9 * _hits(n, beats, _kick()) + 0.5 * np.sin(2 * np.pi * 49.0 * t) * (0.6 + 0.4 * (t % 0.5 < 0.3))
        y += 0.2 * _tone([196.0, 246.9, 293.7], n, harmonics=8, bright=0.8)
        y += 0.05 * _hits(n, beats, _noise_hit(0.05, 80, rng, True))
    else:
        raise ValueError(kind)
    return y


def song(plan: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated parts → (samples float32 at SR, boundary times (interior) in seconds)."""
    parts = [part(k, s) for k, s in plan]
    y = np.concatenate(parts)
    y = 0.8 * y / np.abs(y).max()
    return y.astype(np.float32), np.cumsum([s for _, s in plan])[:-1].astype(np.float64)


PLAN = [("A", 8.0), ("B", 8.0), ("A", 8.0), ("build", 6.0), ("drop", 8.0)]
TRUE_BOUNDS = np.array([8.0, 16.0, 24.0, 30.0])  # PLAN's; the drop is the last one


@pytest.fixture(scope="module")
def form():
    from lsd_jax.audio.structure import analyze_signal

    y, bounds = song(PLAN)
    chex.assert_trees_all_close(bounds, TRUE_BOUNDS)
    return analyze_signal(y, SR)


@pytest.fixture(scope="module")
def song_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("form") / "song.wav"
    sf.write(path, song(PLAN)[0], SR)
    return path


# --- the pieces, on made-up arrays -----------------------------------------------------------------


def _blocks(labels: str, size: int) -> np.ndarray:
    """(N, N) affinity of a song whose ``size``-block parts follow ``labels``: 1 within a label, 0.1 across."""
    seq = np.repeat(list(labels), size)
    return np.where(seq[:, None] == seq[None, :], 1.0, 0.1)


def test_novelty_peaks_at_each_change_of_part():
    aff = _blocks("ABAC", 40)
    nov = structure.novelty(aff, 16)
    chex.assert_shape(nov, (160,))
    peaks = structure.pick_peaks(nov, 20, 1.0)
    np.testing.assert_array_equal(peaks, [40, 80, 120])


def test_pick_peaks_keeps_the_stronger_of_two_close_peaks_and_none_at_the_ends():
    curve = np.zeros(100)
    curve[[2, 40, 45, 97]] = [9.0, 5.0, 6.0, 9.0]
    np.testing.assert_array_equal(structure.pick_peaks(curve, 10, 0.5), [45])


def test_labels_repeat_for_repeated_parts_in_order_of_first_appearance():
    aff = _blocks("BCBAC", 30)  # the letters in the matrix are not the answer's: first appearance renames them
    bounds = np.arange(0, 151, 30)
    assert structure.label_sections(aff, bounds) == ["A", "B", "A", "C", "B"]


def test_neighbours_of_the_same_part_are_joined_and_others_kept():
    aff = _blocks("AABCB", 30)  # a part split in two (a boundary too many), then three different neighbours
    keep = structure.merge_neighbours(aff, np.arange(0, 151, 30))
    np.testing.assert_array_equal(keep, [True, False, True, True, True, True])


def test_a_boundary_between_alike_wide_spans_is_dropped():
    # chords alternating every 10 blocks inside one part (X Y X Y), then a new part Z: at the scale of 40 blocks
    # only the boundary at 20 has the same mixture on both sides
    aff = _blocks("XYXYXYZZZ", 10)
    alike = structure.alike_around(aff, np.array([0, 20, 40, 60, 90]), 40)
    np.testing.assert_array_equal(alike, [False, True, False, False, False])


def test_drop_needs_a_rise_of_both_loudness_and_low_end():
    rate = 20.0
    n = 400
    level, low = np.full(n, -30.0), np.full(n, -50.0)
    level[200:], low[200:] = -15.0, -20.0  # a drop at column 200 (10 s)
    onset = np.zeros(n)
    onset[203] = 1.0  # the kick lands a little after the rise
    np.testing.assert_array_equal(structure.find_drops(level, low, onset, rate), [203])
    # louder but no low end (a bright chorus): no drop
    assert structure.find_drops(level, np.full(n, -50.0), onset, rate).size == 0


def test_snap_moves_only_times_near_a_beat():
    beats = np.array([1.0, 1.5, 2.0])
    np.testing.assert_allclose(structure._snap(np.array([1.45, 3.0]), beats, 0.1), [1.5, 3.0])


# --- a synthetic song of known form ---------------------------------------------------------------


@pytest.mark.slow
def test_boundaries_within_half_a_second(form):
    starts = np.array([s.start for s in form.sections])
    assert starts.size == TRUE_BOUNDS.size + 1, starts
    assert starts[0] == 0.0 and form.sections[-1].end == pytest.approx(38.0, abs=0.05)
    np.testing.assert_allclose(starts[1:], TRUE_BOUNDS, atol=0.5)
    for a, b in zip(form.sections[:-1], form.sections[1:], strict=True):
        assert a.end == b.start  # contiguous


@pytest.mark.slow
def test_the_repeated_part_shares_its_letter(form):
    assert [s.label for s in form.sections] == ["A", "B", "A", "C", "D"]


@pytest.mark.slow
def test_the_drop_is_found_within_one_beat(form):
    assert form.drops.size == 1, form.drops
    assert abs(form.drops[0] - 30.0) <= 0.5  # one beat at 120 BPM


@pytest.mark.slow
def test_beats_follow_each_sections_tempo_and_downbeats_are_beats(form):
    for sec, period in zip(form.sections, [0.5, 60 / 96, 0.5, None, 0.5], strict=True):
        inside = form.beats[(form.beats >= sec.start) & (form.beats < sec.end)]
        if period is not None:
            assert np.median(np.diff(inside)) == pytest.approx(period, abs=0.02), sec
            # on the kicks (A: every 0.5 s from 0; B: every 0.625 s from 8), within two spectral columns
            phase = np.abs((inside - sec.start + 0.05) % period - 0.05)
            assert np.median(phase) < 0.05, (sec, inside)
    assert np.all(np.diff(form.beats) > 0)
    assert np.all(np.isin(form.downbeats, form.beats))
    assert 90 < form.tempo < 125


@pytest.mark.slow
def test_section_loudness_orders_the_parts(form):
    loud = {s.label: s.loudness for s in form.sections}
    assert loud["D"] > loud["A"] > loud["C"]
    assert form.sections[0].loudness == pytest.approx(form.sections[2].loudness, abs=1.0)


@pytest.mark.slow
def test_no_drop_without_a_rise_of_the_low_end():
    from lsd_jax.audio.structure import analyze_signal

    y, bounds = song([("A", 6.0), ("B", 6.0), ("A", 6.0)])
    f = analyze_signal(y, SR)
    assert f.drops.size == 0
    assert [s.label for s in f.sections] == ["A", "B", "A"]
    np.testing.assert_allclose([s.start for s in f.sections[1:]], bounds, atol=0.5)


def test_silence_is_a_clear_error():
    from lsd_jax.audio.structure import analyze_signal

    with pytest.raises(AudioError, match="silent"):
        analyze_signal(np.zeros(SR * 3, np.float32), SR)


# --- the file API: cache, errors ------------------------------------------------------------------


@pytest.mark.slow
def test_analyze_is_cached_per_song_hash(song_file, monkeypatch, tmp_path):
    import lsd_jax

    first = lsd_jax.analyze(song_file)
    where = structure.cache_path(song_file)
    assert where.is_file()

    def boom(*a, **k):
        raise AssertionError("analysed again despite the cache")

    monkeypatch.setattr(structure, "analyze_signal", boom)
    copy = tmp_path / "renamed.wav"  # the same bytes under another name: the same key
    copy.write_bytes(song_file.read_bytes())
    again = lsd_jax.analyze(copy)
    assert again.sections == first.sections
    np.testing.assert_array_equal(again.beats, first.beats)
    np.testing.assert_array_equal(again.drops, first.drops)
    with pytest.raises(AssertionError, match="analysed again"):
        lsd_jax.analyze(song_file, cache=False)


def test_a_damaged_cache_file_is_analysed_again(tmp_path, monkeypatch):
    path = tmp_path / "s.wav"
    y, _ = song([("A", 3.0)])
    sf.write(path, y, SR)
    structure.cache_path(path).write_text("{not json")
    calls = []
    fake = structure.SongForm(
        3.0, 120.0, np.zeros(0), np.zeros(0), (structure.Section(0.0, 3.0, "A", -20.0),), np.zeros(0)
    )
    monkeypatch.setattr(structure, "analyze_signal", lambda y, sr: calls.append(1) or fake)
    assert structure.analyze(path).sections == fake.sections
    assert calls == [1]
    assert json.loads(structure.cache_path(path).read_text())["sections"][0]["label"] == "A"


def test_missing_and_silent_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav"):
        structure.analyze(tmp_path / "nope.wav")
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(SR, np.float32), SR)
    with pytest.raises(AudioError, match="quiet.wav.*silent"):
        structure.analyze(quiet)


def test_json_round_trip():
    f = structure.SongForm(
        10.0,
        120.0,
        np.arange(0.5, 10, 0.5),
        np.arange(0.5, 10, 2.0),
        (structure.Section(0.0, 4.0, "A", -20.0), structure.Section(4.0, 10.0, "B", -12.5)),
        np.array([4.0]),
    )
    g = structure.SongForm.from_json(json.loads(json.dumps(f.to_json())))
    assert g.sections == f.sections and g.tempo == f.tempo
    np.testing.assert_array_equal(g.downbeats, f.downbeats)
    assert f.bar_at(4.0) == 2 and f.bar_at(0.1) == 0
    assert [r[2] for r in f.table()] == ["A", "B", "drop"]


@pytest.mark.slow
def test_analyze_is_exported_lazily():
    import subprocess
    import sys

    code = "import sys, lsd_jax; assert 'lsd_jax.audio.structure' not in sys.modules; print(lsd_jax.analyze.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "lsd_jax.audio.structure"


# --- the CLI ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_prints_the_table_and_draws_the_picture(song_file, tmp_path, capsys):
    from PIL import Image

    from lsd_jax.cli import main

    png = tmp_path / "form.png"
    assert main(["analyze", str(song_file), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:] if line[:1].isdigit()]
    assert [r[2] for r in rows] == ["A", "B", "A", "C", "D", "drop"]
    assert rows[-1][0] == rows[-2][0]  # the drop starts the last section
    assert "BPM" in out.splitlines()[0] and f"wrote {png}" in out
    img = np.asarray(Image.open(png).convert("RGB"))
    chex.assert_shape(img, (320, 1200, 3))
    # the two A sections are drawn in A's colour (dimmed), B in another; the drop's red line at 30 s
    dim_a = np.array(structure.label_colour("A")) // 3
    np.testing.assert_array_equal(img[30, 100], dim_a)
    np.testing.assert_array_equal(img[30, 600], dim_a)
    assert not np.array_equal(img[30, 300], dim_a)
    x_drop = round(30.0 / 38.0 * 1199)
    assert any(tuple(img[150, x]) == (255, 40, 40) for x in range(x_drop - 20, x_drop + 21))


def test_cli_refuses_a_plot_it_cannot_write(tmp_path, capsys):
    from lsd_jax.cli import main

    song_path = tmp_path / "s.wav"
    sf.write(song_path, np.zeros(SR, np.float32), SR)
    assert main(["analyze", str(song_path), "--plot", str(tmp_path / "form.txt")]) == 2
    assert "--plot" in capsys.readouterr().err
    assert main(["analyze", str(song_path), "--plot", str(tmp_path / "no" / "form.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_a_long_song_is_compared_in_larger_blocks(monkeypatch):
    # MAX_BLOCKS bounds the (N, N) matrix of an hour-long mix; shrunk here so that a 38 s song needs 11-column
    # blocks (~0.26 s): the boundaries must still hold
    monkeypatch.setattr(structure, "MAX_BLOCKS", 150)
    f = structure.analyze_signal(song(PLAN)[0], SR)
    assert [s.label for s in f.sections] == ["A", "B", "A", "C", "D"]
    np.testing.assert_allclose([s.start for s in f.sections[1:]], TRUE_BOUNDS, atol=0.5)


def test_a_cache_that_cannot_be_written_does_not_lose_the_analysis(tmp_path, monkeypatch, caplog):
    import lsd_jax.store.paths as paths

    path = tmp_path / "s.wav"
    sf.write(path, song([("B", 3.5)])[0], SR)  # bytes no other test caches (the cache folder is per session)
    assert not structure.cache_path(path).exists()
    one = (structure.Section(0.0, 3.5, "A", -20.0),)
    fake = structure.SongForm(3.5, 120.0, np.zeros(0), np.zeros(0), one, np.zeros(0))
    monkeypatch.setattr(structure, "analyze_signal", lambda y, sr: fake)

    def full(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(paths, "atomic_write", full)
    assert structure.analyze(path).sections == one
    assert "could not cache" in caplog.text and "s.wav" in caplog.text
    assert not structure.cache_path(path).exists()
