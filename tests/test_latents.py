import chex
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsd_jax import ParamError, make_params
from lsd_jax.engine.latents import class_schedule, fold, keyframe_count, make_latents

N, FPS, D, C = 240, 24.0, 16, 20


def _feats(seed=0, n=N):
    rng = np.random.default_rng(seed)
    return rng.random(n).astype(np.float32), rng.random(n).astype(np.float32), rng.random((n, 12)).astype(np.float32)


def _lat(params, feats=None, d=D, c=C, fps=FPS):
    p, m, ch = feats if feats is not None else _feats()
    return make_latents(p, m, ch, params, fps=fps, z_dim=d, c_dim=c)


@pytest.mark.slow
def test_shapes_and_dtypes():
    z, c = _lat(make_params())
    chex.assert_shape(z, (N, D))
    chex.assert_shape(c, (N, C))
    assert z.dtype == np.float32 and c.dtype == np.float32
    z0, c0 = _lat(make_params(), c=0)
    chex.assert_shape(c0, (N, 0))


def test_same_seed_same_latents_different_seed_different():
    a = _lat(make_params(seed=3))
    b = _lat(make_params(seed=3))
    other = _lat(make_params(seed=4))
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_array_equal(a.c, b.c)
    assert np.abs(a.z - other.z).max() > 0.1
    assert np.abs(a.c - other.c).max() > 1e-3


@pytest.mark.slow
def test_silence_without_wandering_is_static():
    zeros = np.zeros(N, np.float32)
    z, c = _lat(make_params(speed_fpm=0), feats=(zeros, zeros, np.zeros((N, 12), np.float32)))
    np.testing.assert_array_equal(z, np.broadcast_to(z[0], z.shape))
    np.testing.assert_array_equal(c, np.broadcast_to(c[0], c.shape))


def test_pulse_kicks_every_dimension_on_a_hit_and_decays():
    pulse = np.zeros(N, np.float32)
    pulse[100] = 1.0
    zeros = np.zeros(N, np.float32)
    z, _ = _lat(make_params(speed_fpm=0, pulse_react=1.0), feats=(pulse, zeros, np.zeros((N, 12), np.float32)))
    step = np.diff(z, axis=0)
    assert np.all(step[99] > 0.2)  # the kick: +pulse_react*0.25 on every dim
    assert np.abs(step[:99]).max() == 0.0
    assert np.all(step[100:110] < 0)  # and it decays


def test_louder_motion_moves_faster():
    p, _, ch = _feats()
    quiet = np.full(N, 0.1, np.float32)
    loud = np.full(N, 1.0, np.float32)
    params = make_params(speed_fpm=0, pulse_react=0.0)
    dz_quiet = np.abs(np.diff(_lat(params, (p, quiet, ch)).z, axis=0)).mean()
    dz_loud = np.abs(np.diff(_lat(params, (p, loud, ch)).z, axis=0)).mean()
    assert dz_loud > 5 * dz_quiet


@pytest.mark.slow
def test_keyframes_follow_speed_fpm():
    assert keyframe_count(43 * 60, 43.0, 12) == 12
    assert keyframe_count(100, 43.0, 12) == 0
    zeros = np.zeros(N, np.float32)
    flat = (zeros, zeros, np.zeros((N, 12), np.float32))
    slow = _lat(make_params(speed_fpm=0), flat).z
    fast = _lat(make_params(speed_fpm=60), flat).z
    assert np.abs(np.diff(slow, axis=0)).max() == 0.0
    assert np.abs(np.diff(fast, axis=0)).max() > 0.0


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    truncation=st.floats(0.0, 1.0),
    motion_react=st.floats(0.0, 10.0),
    pulse_react=st.floats(0.0, 3.0),
    motion_randomness=st.floats(0.0, 1.0),
    speed_fpm=st.sampled_from([0.0, 12.0, 120.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_bounce_keeps_every_coordinate_within_the_truncation_bound(
    truncation, motion_react, pulse_react, motion_randomness, speed_fpm, seed
):
    params = make_params(
        truncation=truncation,
        motion_react=motion_react,
        pulse_react=pulse_react,
        motion_randomness=motion_randomness,
        speed_fpm=speed_fpm,
        seed=seed,
    )
    p, m, ch = _feats(seed % 1000)
    z, _ = _lat(params, (p, m, ch))
    tol = 1e-4
    # drift and keyframes stay in [-2t, 2t]; the pulse (in [0, pulse_react]) pushes every dim up
    assert z.min() >= -2 * truncation - tol
    assert z.max() <= 2 * truncation + pulse_react + tol


@pytest.mark.slow
def test_fold_reflects():
    vals, flips = fold(np.array([0.5, 1.5, -1.2, 3.5, 4.5], np.float32), np.float32(1.0))
    np.testing.assert_allclose(np.asarray(vals), [0.5, 0.5, -0.8, -0.5, 0.5], atol=1e-6)
    assert list(np.asarray(flips)) == [False, True, True, False, False]


def test_class_vectors_in_range_and_follow_chroma():
    ch = np.zeros((N, 12), np.float32)
    ch[:, 4] = 1.0  # only pitch E sounds
    params = make_params(classes=list(range(12)), class_smooth_seconds=0, class_complexity=0.8)
    _, c = _lat(params, (np.zeros(N, np.float32), np.zeros(N, np.float32), ch), c=12)
    assert c.min() >= 0 and c.max() <= 0.8 + 1e-6
    assert np.all(c[5:].argmax(axis=1) == 4)


def test_class_schedule_rotation_and_dominance():
    ch = np.zeros((N, 12), np.float32)
    ch[:, 7] = 1.0
    p = make_params(classes=list(range(12)), dominant_classes_first=True)
    table = class_schedule(p, 12, ch, FPS)
    assert table[0, 7] == 0  # the first class goes to the dominant pitch
    p = make_params(classes=list(range(12)), class_shuffle_seconds=2.0, class_shuffle_strength=0.25)
    table = class_schedule(p, 12, ch, FPS)
    assert list(table[0]) == list(range(12))
    assert list(table[int(2 * FPS)]) == list(np.roll(np.arange(12), -3))
    p = make_params(classes=list(range(12)), class_shuffle_seconds=[1.0], class_shuffle_strength=0.5)
    table = class_schedule(p, 12, ch, FPS)
    assert list(table[int(FPS) - 1]) == list(range(12)) and list(table[int(FPS)]) == list(np.roll(np.arange(12), -6))


def test_classes_out_of_range_is_a_clear_error():
    with pytest.raises(ParamError, match="out of range"):
        _lat(make_params(classes=[3, 50]), c=C)


def _lsd_class_vectors(chroma, classes, c_dim, fps, gain, complexity, dominant=False, shuffle_every=None, strength=0.5):
    """Lucid Sonic Dreams' class-vector rule, re-implemented in float64 NumPy (no smoothing): the class list is
    repeated to 12 and zipped with the 12 pitches, so a class named twice takes the LAST pitch's value."""
    chroma = np.asarray(chroma, np.float64)
    classes = (list(classes) * 12)[:12]
    if dominant:
        share = (chroma / chroma.sum(axis=1, keepdims=True)).sum(axis=0)
        ranks = np.argsort(np.argsort(share)[::-1])  # rank of each pitch, 0 = most dominant
        classes = [classes[r] for r in ranks]
    k = round(strength * 12)
    first = int(np.flatnonzero(chroma.sum(axis=1) > 0)[0])
    out = []
    for i in range(chroma.shape[0]):
        if shuffle_every and i and i % round(shuffle_every * fps) == 0:
            classes = classes[k:] + classes[:k]
        update = dict(zip(classes, chroma[first if i == 0 else i]))
        add = np.array([update.get(c, 0.0) for c in range(c_dim)])
        v = add if i == 0 else out[-1] + gain * 43.0 / fps * add
        if np.any(v != 0):
            v = (v - v.min()) / np.ptp(v)
        out.append(v * complexity)
    return np.stack(out)


@pytest.mark.slow
@pytest.mark.parametrize(
    "classes, c_dim, dominant, shuffle",
    [
        ([0, 1, 2], 5, False, None),  # each class named four times: pitches 9, 10, 11 win
        ([4, 2, 4, 7, 1], 9, False, None),
        ([0, 1, 2, 3, 4], 5, True, 2.0),  # dominant pitch first, then the pitch-ordered list rotates
        (list(range(12)), 12, True, 1.0),
    ],
)
def test_repeated_classes_take_the_last_pitch_as_lucid_sonic_dreams(classes, c_dim, dominant, shuffle):
    n = 120
    rng = np.random.default_rng(len(classes) + c_dim)
    chroma = rng.random((n, 12)).astype(np.float32) + 0.01
    params = make_params(
        classes=classes,
        class_smooth_seconds=0,
        class_pitch_react=0.7,
        class_complexity=0.9,
        dominant_classes_first=dominant,
        class_shuffle_seconds=shuffle,
        class_shuffle_strength=0.25,
    )
    _, c = make_latents(np.zeros(n, np.float32), np.zeros(n, np.float32), chroma, params, fps=FPS, z_dim=4, c_dim=c_dim)
    want = _lsd_class_vectors(chroma, classes, c_dim, FPS, 0.7, 0.9, dominant, shuffle, 0.25)
    chex.assert_shape(c, (n, c_dim))
    np.testing.assert_allclose(c, want, atol=1e-5)
    if classes == [0, 1, 2]:  # the sum of four pitches (the old rule) would differ
        row = chroma[0].astype(np.float64)
        summed = np.array([row[0::3].sum(), row[1::3].sum(), row[2::3].sum(), 0, 0])
        assert not np.allclose(c[0], 0.9 * (summed - summed.min()) / np.ptp(summed), atol=1e-3)


@pytest.mark.slow
def test_stepping_frame_by_frame_equals_the_scan():
    """The live stepper runs the scans' own bodies: one frame at a time, with the state carried, it gives the
    offline scan's z (with bounces: a large motion_react) and class vectors (with shuffles; unsmoothed)."""
    import jax

    from lsd_jax.engine.latents import (
        advance,
        class_latents,
        motion_controls,
        motion_frames,
        motion_init,
        motion_latents,
        motion_signs,
    )

    pulse, motion, chroma = _feats(seed=7)
    key = jax.random.key(3)
    shape = dict(z_dim=D, n_keyframes=4, period=24)
    react = dict(pulse_react=0.8, motion_react=6.0, truncation=0.4)
    z_scan = np.asarray(motion_latents(key, pulse, motion, motion_randomness=0.5, fps=FPS, **shape, **react))
    params = make_params(class_shuffle_seconds=1.5, class_shuffle_strength=0.4, seed=2)
    table = class_schedule(params, C, chroma, FPS)
    c_scan = np.asarray(class_latents(chroma, table, 0, c_dim=C, smooth_frames=1, gain=0.7, complexity=0.9))

    frames = motion_frames(key, pulse, motion, motion_randomness=0.5, truncation=0.4, **shape)
    controls = motion_controls(fps=FPS, **react)
    state, v, zs, cs = motion_init(motion_signs(key, D)), np.zeros(C, np.float32), [], []
    for i in range(N):
        state, v, z = advance(
            state, v, jax.tree.map(lambda a, i=i: a[i], frames), controls, chroma[i], table[i], 0.7, 0.9
        )
        zs.append(np.asarray(z))
        cs.append(np.asarray(v))
    assert np.abs(z_scan).max() > 0.79  # it bounced off +-2*truncation
    assert len(np.unique(table, axis=0)) > 2  # the schedule rotated
    np.testing.assert_allclose(np.stack(zs), z_scan, rtol=0, atol=2e-6)
    np.testing.assert_allclose(np.stack(cs), c_scan, rtol=0, atol=2e-6)


def test_the_pulse_takes_no_part_in_the_bounce():
    """Unlike Lucid Sonic Dreams (whose direction test sees z with the pulse in it), a kick never turns a dimension
    round: with fast motion bouncing off the band, z with a pulse is z without it plus the pulse's EMA, exactly."""
    _, motion, chroma = _feats(seed=2)
    pulse = np.zeros(N, np.float32)
    pulse[::12] = 1.0  # a kick every half second
    params = make_params(speed_fpm=0, pulse_react=2.0, motion_react=5.0, truncation=0.3)
    kicked = _lat(params, feats=(pulse, motion, chroma)).z
    still = _lat(params, feats=(np.zeros(N, np.float32), motion, chroma)).z
    assert np.abs(still).max() > 0.55  # the drift does reach the edges of the +-0.6 band
    ema = np.zeros(N)
    for i in range(N):
        ema[i] = 2.0 * pulse[i] if i == 0 else 0.75 * ema[i - 1] + 0.25 * 2.0 * pulse[i]
    np.testing.assert_allclose(kicked - still, np.broadcast_to(ema[:, None], kicked.shape), atol=1e-5)


def test_class_smoothing_is_centred_on_the_music():
    """A chord change at frame 120 is half-way through the smoothed class vector at frame ~120 (Lucid Sonic Dreams'
    block smoothing gets there half a block, ~0.5 s, early)."""
    chroma = np.zeros((N, 12), np.float32)
    chroma[:120, 0] = 1.0
    chroma[120:, 7] = 1.0
    params = make_params(classes=list(range(12)), class_smooth_seconds=1.0, class_pitch_react=50.0)
    c = _lat(params, feats=(np.zeros(N, np.float32), np.zeros(N, np.float32), chroma), c=12).c
    half = int(np.argmax(c[:, 7] > c[:, 0]))  # where class 7 overtakes class 0
    assert abs(half - 120) <= 0.25 * FPS, half
