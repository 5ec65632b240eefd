"""Projection: an image made from a known w is reached (PSNR) and the optimisation stops once converged; W+ where
one w falls short; the jitted step compiles once; deterministic for a seed; cached per (image, model, options);
clear errors for unreadable images."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from lsd_jax.errors import LsdError, ParamError
from lsd_jax.styles import projection as P
from lsd_jax.styles.generator import Generator
from lsd_jax.testing import random_sg2_state, sg2_config

STEPS = 200


@functools.cache
def gen(seed=0, **overrides):
    cfg = sg2_config(**overrides)  # 32x32, 8 ws, w_dim 32
    return Generator.from_state(cfg, random_sg2_state(cfg, seed))


@functools.cache
def target(zseed=5, psi=0.7):
    """A uint8 image made from a known w (ψ = 0.7 towards the mean of W)."""
    g = gen()
    stats = P.w_stats(g)
    z = jax.random.normal(jax.random.key(zseed), (1, g.z_dim))
    w = stats.mean + psi * (np.asarray(g.mapping(z)) - stats.mean)
    img = np.asarray(g.synthesis(jnp.asarray(w)))[0]
    return np.clip(np.round((img + 1) * 127.5), 0, 255).astype(np.uint8), w[0]


def mse(a, b):
    return float(np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def photo(n=48, seed=0):
    """A synthetic "photo" no random network makes: a sky gradient, a sun disc, a dark hill, a few squares."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n] / n
    img = np.stack([0.3 + 0.5 * yy, 0.5 + 0.3 * yy, 0.9 - 0.2 * yy], -1)
    img[(xx - 0.7) ** 2 + (yy - 0.3) ** 2 < 0.01] = [1.0, 0.9, 0.6]
    img[yy > 0.65 + 0.1 * np.sin(6 * xx)] = [0.15, 0.4, 0.1]
    for _ in range(3):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.15)
        img[(np.abs(xx - cx) < r) & (np.abs(yy - cy) < r)] = rng.uniform(0, 1, 3)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_reaches_a_generator_made_image_stops_when_converged_and_compiles_once():
    g = gen()
    u8, _ = target()
    tgt = P.to_float(u8)
    stats = P.w_stats(g)
    start = np.clip(np.asarray(g.synthesis(jnp.broadcast_to(stats.mean, (1, g.num_ws, g.w_dim))))[0], -1, 1)
    before = P._value_and_grad._cache_size()  # compiled programs of the loss-and-gradient function
    proj = P.project(g, u8, steps=STEPS, progress=False, cache=False)
    assert P._value_and_grad._cache_size() - before <= 1  # every step, W and W+: one compiled program
    after_first = P._value_and_grad._cache_size()
    e0, e1 = mse(start, tgt), mse(proj.image, tgt)
    n = len(proj.loss_history)
    print(f"projection: start {P.psnr(P.to_uint8(start), u8):.1f} dB -> {proj.psnr:.1f} dB in {n} steps")
    assert proj.psnr >= 35.0 and e1 < 1e-3 * e0, (proj.psnr, e0, e1)
    assert proj.psnr == pytest.approx(P.psnr(P.to_uint8(proj.image), u8))
    assert 10 < n < STEPS  # converged: it stopped before the budget
    assert P.converged(list(proj.loss_history), 1e-3) and not P.converged(list(proj.loss_history[:-1]), 1e-3)
    assert proj.w.shape == (g.num_ws, g.w_dim) and proj.w.dtype == np.float32
    assert np.all(proj.w == proj.w[0])  # reached in W (auto): the same w on every layer
    assert proj.image.shape == (32, 32, 3) and np.abs(proj.image).max() <= 1.0
    assert proj.loss_history[-1] < 1e-2 * proj.loss_history[0]
    assert np.all(np.diff(proj.loss_history) <= 1e-7)  # L-BFGS with a Wolfe line search: the loss never rises
    assert not proj.from_cache and proj.seconds > 0
    # the same image again, and another image: deterministic, and no new compile
    again = P.project(g, u8, steps=STEPS, progress=False, cache=False)
    np.testing.assert_array_equal(again.w, proj.w)
    np.testing.assert_array_equal(again.loss_history, proj.loss_history)
    other = P.project(g, target(zseed=6)[0], steps=20, progress=False, cache=False, seed=1)
    assert not np.array_equal(other.w, proj.w) and len(other.loss_history) <= 20
    assert P._value_and_grad._cache_size() == after_first
    # the reconstruction is what synthesis gives for the returned w
    np.testing.assert_allclose(np.clip(np.asarray(g.synthesis(proj.w[None]))[0], -1, 1), proj.image, atol=1e-5)


@pytest.mark.slow
def test_w_plus_where_one_w_falls_short_and_progress_bar(capsys):
    """A photo the network cannot make: auto frees the layers (W+) and gets closer than one w can; an image the
    network made stays in W under auto (above); w_plus=True frees the layers after W."""
    g = gen()
    pic = photo()
    one = P.project(g, pic, steps=STEPS, w_plus=False, progress=False, cache=False)
    auto = P.project(g, pic, steps=STEPS, progress=True, cache=False)
    assert "projecting keyframe" in capsys.readouterr().err
    assert np.all(one.w == one.w[0]) and not np.all(auto.w == auto.w[0])
    assert one.psnr < P.W_PLUS_BELOW_DB
    assert auto.psnr > one.psnr + 1.0, (one.psnr, auto.psnr)
    print(f"photo: W {one.psnr:.1f} dB, auto (W+) {auto.psnr:.1f} dB")
    u8, _ = target()
    forced = P.project(g, u8, steps=60, w_plus=True, progress=False, cache=False)
    assert forced.w.shape == (g.num_ws, g.w_dim) and not np.all(forced.w == forced.w[0])
    assert forced.loss_history[-1] < 0.01 * forced.loss_history[0]


def test_converged():
    flat = [1.0] * 11
    assert P.converged(flat, 1e-3) and not P.converged(flat[:10], 1e-3)
    falling = list(np.geomspace(1.0, 0.5, 30))
    assert not P.converged(falling, 1e-3) and P.converged(falling, 0.5)
    assert P.converged([1.0, float("nan")], 1e-3)


@pytest.mark.slow
def test_cache_hit_miss_and_damaged_file():
    g = gen()
    u8, _ = target()
    first = P.project(g, u8, steps=30, progress=False)
    assert not first.from_cache
    files = list(P.projection_cache_dir().glob("*.npz"))
    assert files and not list(P.projection_cache_dir().glob("*.tmp*"))
    hit = P.project(g, u8, steps=30, progress=False)
    assert hit.from_cache
    np.testing.assert_array_equal(hit.w, first.w)
    np.testing.assert_array_equal(hit.image, first.image)
    np.testing.assert_array_equal(hit.loss_history, first.loss_history)
    assert (hit.psnr, hit.seconds) == (first.psnr, first.seconds)
    # the same pixels through a file hit the same entry; other options or another model miss
    assert P.project(g, Image.fromarray(u8), steps=30, progress=False).from_cache
    assert not P.project(g, u8, steps=30, seed=3, progress=False).from_cache
    assert not P.project(g, u8, steps=30, w_plus=False, progress=False).from_cache
    assert not P.project(gen(seed=1), u8, steps=30, progress=False).from_cache
    # a damaged cache file is recomputed and rewritten
    path = P.projection_cache_dir() / f"{P._cache_key(u8, g, _opts(30))}.npz"
    assert path.exists()
    path.write_bytes(b"not a zip")
    again = P.project(g, u8, steps=30, progress=False)
    assert not again.from_cache
    np.testing.assert_array_equal(again.w, first.w)
    assert P.project(g, u8, steps=30, progress=False).from_cache


def _opts(steps):
    return {
        "steps": steps,
        "w_plus": None,
        "seed": 0,
        "tol": 1e-3,
        "w_reg": 1e-3,
        "noise_mode": "const",
        "n_samples": 4096,
        "c": None,
    }


def test_load_image_formats(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = P.load_image(tmp_path / "a.png", 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    # centre crop then resize: equal to resizing the central 40x40 square
    want = np.asarray(Image.fromarray(rgb[:, 10:50]).resize((32, 32), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(out, want)
    rgba = np.concatenate([rgb, np.full((40, 60, 1), 128, np.uint8)], axis=2)
    np.testing.assert_array_equal(P.load_image(rgba, 32), out)
    gray = P.load_image(rgb[:, :, 0], 16)
    assert gray.shape == (16, 16, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    assert P.load_image(str(tmp_path / "a.jpg"), 8).shape == (8, 8, 3)


def test_unreadable_images_raise_clear_errors(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    good = tmp_path / "ok.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:40])
    cases = [
        (tmp_path / "missing.png", "not found"),
        (tmp_path, "directory"),
        (tmp_path / "junk.png", "decode"),
        (tmp_path / "cut.png", "cannot read"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8, 2), np.uint8), "shape"),
        (42, "path"),
    ]
    for bad, words in cases:
        with pytest.raises(P.ImageError, match=words):
            P.project(gen(), bad, steps=1, progress=False)
    assert issubclass(P.ImageError, LsdError)


def test_bad_options():
    u8, _ = target()
    for kw in [
        {"steps": 0},
        {"steps": 2.5},
        {"tol": -1e-3},
        {"tol": float("nan")},
        {"w_reg": -1},
        {"w_plus": "yes"},
        {"noise_mode": "random"},
        {"n_samples": 1},
    ]:
        with pytest.raises(ParamError):
            P.project(gen(), u8, progress=False, **kw)
    with pytest.raises(ParamError, match="unconditional"):
        P.project(gen(), u8, steps=1, c=[1.0], progress=False)


@pytest.mark.slow
def test_w_stats_conditional():
    g = gen(c_dim=4)
    all_classes = P.w_stats(g, n_samples=512)
    one = P.w_stats(g, c=np.eye(4)[2], n_samples=512)
    assert all_classes.mean.shape == (g.w_dim,) and (all_classes.std > 0).any()
    assert not np.allclose(all_classes.mean, one.mean)
    assert P.w_spread(one) == pytest.approx(float(np.sqrt(np.sum(one.std.astype(np.float64) ** 2))))
    with pytest.raises(ParamError):
        P.w_stats(g, c=np.ones(3))


@pytest.mark.parametrize("size", [(20_000, 20_000), (1 << 30, 4), (65_535, 65_535)])
def test_an_image_too_large_to_decode_is_a_clear_error(tmp_path, size):
    """A tiny PNG whose header claims billions of pixels: Pillow's decompression-bomb guard, as an ImageError."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "bomb.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", *size, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
    )
    with pytest.raises(P.ImageError, match="too large to decode safely"):
        P.load_image(path, 64)


def _png_claiming(path, width: int, height: int):
    """A valid PNG header (IHDR) claiming ``width`` x ``height`` RGB pixels, with no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )
    return path


def test_image_dimensions_are_checked_before_decoding(tmp_path, monkeypatch):
    """Issue 29: 13000 x 13000 is under Pillow's own bomb limit (2 x 89 MP) but decodes to 500 MB (1.6 GB peak):
    the header's size is checked first, and the message names the file, not its folder."""
    (tmp_path / "server-tmp").mkdir()
    path = _png_claiming(tmp_path / "server-tmp" / "huge.png", 13_000, 13_000)
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or real_load(self))
    with pytest.raises(P.ImageError, match=r"huge\.png is 13000 x 13000 pixels") as ei:
        P.load_image(path, 64)
    assert "server-tmp" not in str(ei.value)
    assert decoded == []  # refused from the header alone
    ok = tmp_path / "ok.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(ok)
    assert P.load_image(ok, 8).shape == (8, 8, 3)


@pytest.mark.timeout(60)  # the old code blocked here forever
def test_a_fifo_as_a_keyframe_image_is_refused_without_blocking(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes (forever): refused as not a regular file."""
    import os

    fifo = tmp_path / "cover.png"
    os.mkfifo(fifo)
    with pytest.raises(P.ImageError, match=r"cover\.png is not a regular file"):
        P.load_image(fifo, 64)
