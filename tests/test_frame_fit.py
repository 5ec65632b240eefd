"""Native widescreen and vertical frames from every generator (issue 22): the generators make the requested shape
themselves (``frame_fit``), with random networks in NVIDIA's formats."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import nvidia_pickles as nv
import nvidia_pickles_sg1 as nvs
import pytest
import soundfile as sf
from sg2_state import random_sg2_state, sg2_config
from sg3_state import random_sg3_state, sg3_config

import converters
from lsd_jax import ParamError
from lsd_jax.engine.pipeline import prepare
from lsd_jax.engine.step import make_frame_step
from lsd_jax.models import biggan, ops, stylegan1, stylegan2, stylegan3
from lsd_jax.params import FRAME_FIT_HELP, FRAME_FITS, PARAMS, RenderParams
from lsd_jax.styles.generator import Generator
from lsd_jax.styles.resolve import resolve_style
from lsd_jax.styles.style import frame_shape
from lsd_jax.testing import biggan_deep_config, random_biggan_state

MODES = tuple(ops.WIDEN_MODES)


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0, 1])


def _centre(x, size):
    return ops.trim_centre(x, size)


# --- the pure pieces


@pytest.mark.parametrize("mode", MODES)
def test_widen_keeps_the_original_in_the_centre_and_is_identity_at_its_own_shape(mode):
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
    chex.assert_trees_all_equal(ops.widen(x, (4, 4), mode), x)
    wide = ops.widen(x, (4, 8), mode)
    chex.assert_shape(wide, (2, 4, 8, 3))
    if mode != "stretch":  # padding: the original sits exactly in the middle
        chex.assert_trees_all_equal(wide[:, :, 2:6], x)
    with pytest.raises(ValueError, match="smaller"):
        ops.widen(x, (4, 2), mode)


def test_widen_modes_pad_as_named():
    x = jnp.asarray([[1.0, 2.0, 3.0, 4.0]]).reshape(1, 1, 4, 1)
    row = {m: np.asarray(ops.widen(x, (1, 8), m))[0, 0, :, 0].tolist() for m in ("reflect", "replicate", "circular")}
    assert row["reflect"] == [3, 2, 1, 2, 3, 4, 3, 2]
    assert row["replicate"] == [1, 1, 1, 2, 3, 4, 4, 4]
    assert row["circular"] == [3, 4, 1, 2, 3, 4, 1, 2]
    with pytest.raises(ValueError, match="widen mode"):
        ops.widen(x, (1, 8), "mirror")


def test_widened_grid_covers_the_size_with_even_pads():
    assert ops.widened_grid(4, 64, (64, 64)) == (4, 4)
    assert ops.widened_grid(4, 64, (64, 128)) == (4, 8)
    # 114 px at 16 px per cell: 8 cells (7.1, then even growth over 4), never fewer than the square's 4
    assert ops.widened_grid(4, 64, (64, 114)) == (4, 8)
    assert ops.widened_grid(4, 64, (20, 100)) == (4, 8)


def test_frame_shape_widens_or_heightens_never_narrows():
    assert frame_shape((256, 256), (720, 1280), "native") == (256, 455)
    assert frame_shape((256, 256), (1280, 720), "pad-reflect") == (455, 256)
    assert frame_shape((256, 256), (512, 512), "native") is None  # same aspect: the model's own frame
    assert frame_shape((256, 256), (720, 1280), "crop") is None
    with pytest.raises(ParamError, match="frame_fit"):
        frame_shape((256, 256), (720, 1280), "zoom")


def test_frame_fit_is_in_the_parameter_table_with_help_for_each_choice():
    row = next(p for p in PARAMS if p.name == "frame_fit")
    assert row.default == "native" and row.choices == FRAME_FITS
    assert FRAME_FITS == ("native", "crop", "pad-reflect", "pad-replicate", "pad-circular", "stretch")
    for name in FRAME_FITS:
        assert name in row.help and FRAME_FIT_HELP[name]
    assert RenderParams(frame_fit="crop").frame_fit == "crop"
    with pytest.raises(ParamError, match="frame_fit must be one of"):
        RenderParams(frame_fit="zoom")


# --- StyleGAN3: the infinite canvas


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t", "r"])
def test_stylegan3_wide_frame_centre_is_the_square_frame(kind):
    cfg = sg3_config(kind=kind, img_resolution=32, num_layers=6)
    gen = Generator.from_state(cfg, random_sg3_state(cfg, 1))
    ws = gen.mapping(jax.random.normal(jax.random.key(0), (2, cfg["z_dim"])))
    square = np.asarray(gen.synthesis(ws))
    wide = gen.synthesis(ws, size=(32, 64))
    tall = gen.synthesis(ws, size=(64, 32))
    chex.assert_shape(wide, (2, 32, 64, 3))
    chex.assert_shape(tall, (2, 64, 32, 3))
    scale = float(np.abs(square).max())
    assert scale > 0.05  # a network that draws something
    np.testing.assert_allclose(np.asarray(_centre(wide, (32, 32))), square, atol=1e-3 * scale)
    np.testing.assert_allclose(np.asarray(_centre(tall, (32, 32))), square, atol=1e-3 * scale)
    # and the sides are new content, not a copy of the square's edges
    assert np.abs(np.asarray(wide)[:, :, :16] - square[:, :, :16]).max() > 1e-2 * scale


@pytest.mark.slow
def test_stylegan3_margins_are_whole_at_every_layer():
    cfg = sg3_config(kind="r", img_resolution=32, num_layers=6)
    model = stylegan3.from_state(cfg, random_sg3_state(cfg, 1))
    ex, ey = model.synthesis.margins((32, 57))
    assert ey == 0 and ex > 0
    grow = ex
    for L in model.spec.layers:
        assert (grow * L.up) % L.down == 0
        grow = grow * L.up // L.down
    assert 2 * grow >= 57 - 32


# --- StyleGAN2 and 1, BigGAN: the feature map widened


@pytest.fixture(scope="module")
def sg2():
    cfg = sg2_config(img_resolution=32)
    return stylegan2.from_state(cfg, random_sg2_state(cfg, 0))


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(32, 64), (32, 57), (57, 32)])
def test_stylegan2_makes_the_requested_shape_in_every_mode(sg2, mode, size):
    ws = sg2.map_latents(jax.random.normal(jax.random.key(0), (2, sg2.z_dim)), None)
    out = sg2.synthesize(ws, size=size, widen_mode=mode, noise_mode="const")
    chex.assert_shape(out, (2, *size, 3))
    chex.assert_tree_all_finite(out)


@pytest.mark.slow
@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_stylegan2_wide_centre_resembles_the_square_frame(sg2, noise_mode):
    ws = sg2.map_latents(jax.random.normal(jax.random.key(1), (4, sg2.z_dim)), None)
    key = jax.random.key(3)
    square = sg2.synthesize(ws, noise_mode=noise_mode, key=key)
    wide = sg2.synthesize(ws, noise_mode=noise_mode, key=key, size=(32, 64), widen_mode="reflect")
    centre = _centre(wide, (32, 32))
    # the same image (its full height: not a crop of it), more like its own square than another sample's
    assert _corr(centre, square) > 0.6
    assert _corr(centre, square) > _corr(centre, jnp.roll(square, 1, axis=0)) + 0.2
    # the square's size through size= is the square frame itself
    chex.assert_trees_all_equal(sg2.synthesize(ws, noise_mode=noise_mode, key=key, size=(32, 32)), square)


@pytest.mark.slow
def test_stylegan2_random_noise_is_drawn_at_the_wider_shape(sg2):
    ws = sg2.map_latents(jax.random.normal(jax.random.key(1), (1, sg2.z_dim)), None)
    a = sg2.synthesize(ws, noise_mode="random", key=jax.random.key(0), size=(32, 64))
    b = sg2.synthesize(ws, noise_mode="random", key=jax.random.key(1), size=(32, 64))
    assert float(jnp.abs(a - b).max()) > 1e-3  # the noise reaches the whole frame


@pytest.fixture(scope="module")
def sg1():
    static = nvs.static_kwargs(32, fmap_base=64, fmap_max=16, latent_size=8, dlatent_size=8, mapping_layers=2)
    variables = nvs.generator_variables(static, 3)
    config, state = converters.parse_bytes(nvs.pickle_bytes(static, variables), "'sg1.pkl'")
    return stylegan1.from_state(config, state)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_stylegan1_makes_the_requested_shape_in_every_mode(sg1, mode):
    ws = sg1.map_latents(jax.random.normal(jax.random.key(0), (3, sg1.z_dim)), None)
    square = sg1.synthesize(ws)
    for size in [(32, 64), (64, 32), (32, 45)]:
        out = sg1.synthesize(ws, size=size, widen_mode=mode)
        chex.assert_shape(out, (3, *size, 3))
        chex.assert_tree_all_finite(out)
    wide = sg1.synthesize(ws, size=(32, 64), widen_mode=mode)
    # padding: the centre is the square's image; stretch: the whole frame squeezed back is
    seen = jax.image.resize(wide, square.shape, "linear") if mode == "stretch" else _centre(wide, (32, 32))
    assert _corr(seen, square) > 0.5
    chex.assert_trees_all_equal(sg1.synthesize(ws, size=(32, 32)), square)


@pytest.fixture(scope="module")
def big():
    cfg = biggan_deep_config(resolution=128, channel_width=8)
    return biggan.from_state(cfg, random_biggan_state(cfg, 0))


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_biggan_makes_the_requested_shape_in_every_mode(big, mode):
    z = 0.5 * jax.random.normal(jax.random.key(0), (2, big.z_dim))
    c = jax.nn.one_hot(jnp.asarray([1, 2]), big.c_dim)
    sw = biggan.bn_stats_weights(1.0, big.spec.n_stats)
    square = big.generate(z, c, sw)
    wide = big.generate(z, c, sw, (128, 228), mode)
    tall = big.generate(z, c, sw, (228, 128), mode)
    chex.assert_shape(wide, (2, 128, 228, 3))
    chex.assert_shape(tall, (2, 228, 128, 3))
    assert _corr(_centre(wide, (128, 128)), square) > 0.8
    assert _corr(_centre(tall, (128, 128)), square) > 0.8


# --- the render: frame_fit through the step


@pytest.fixture(scope="module")
def song_and_pkl(tmp_path_factory):
    d = tmp_path_factory.mktemp("wide")
    t = np.arange(22050 * 1) / 22050
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.3 * (np.mod(t, 0.25) < 0.01)
    sf.write(d / "song.wav", y.astype(np.float32), 22050)
    config = sg2_config(img_resolution=16, z_dim=24)
    return d / "song.wav", nv.write_torch_pickle(d / "g.pkl", config, random_sg2_state(config, 9))


def _frames(prep, n: int = 4) -> np.ndarray:
    inputs = {k: v[:n] for k, v in prep.inputs.items()}
    return np.asarray(prep.step(inputs))


@pytest.mark.slow
def test_render_at_16_9_shows_the_full_height_and_crop_is_todays_output(song_and_pkl):
    song, pkl = song_and_pkl
    kw = dict(width=64, height=36, fps=8, progress=False, batch_size=4)
    native = prepare(song, str(pkl), **kw)
    crop = prepare(song, str(pkl), frame_fit="crop", **kw)
    square = prepare(song, str(pkl), width=36, height=36, fps=8, progress=False, batch_size=4)
    assert native.params.frame_fit == "native" and native.step.program.frame_fit == "native"
    chex.assert_shape(_frames(native), (4, 36, 64, 3))

    # crop: the program today's render builds (frame_fit "crop" is the program as it was), byte for byte
    style = resolve_style(str(pkl))
    today = make_frame_step(style, (36, 64), crop.plan, 4, settings=crop.step.variables["settings"])
    np.testing.assert_array_equal(_frames(crop), np.asarray(today({k: v[:4] for k, v in crop.inputs.items()})))

    # native: the centre 36x36 is the whole square frame (full height); crop shows only its middle band
    n, c, s = (_frames(x).astype(np.float64) for x in (native, crop, square))
    centre = n[:, :, 14:50]
    assert np.abs(centre - s).mean() < np.abs(c[:, :, 14:50] - s).mean()
    assert _corr(centre, s) > 0.8


@pytest.mark.slow
def test_each_frame_fit_compiles_its_own_step_once_and_keyframe_free_styles_are_unchanged(song_and_pkl):
    song, pkl = song_and_pkl
    outs = {}
    from lsd_jax.engine.step import frame_step

    for fit in FRAME_FITS:
        prep = prepare(song, str(pkl), width=48, height=16, fps=4, progress=False, batch_size=2, frame_fit=fit)
        outs[fit] = _frames(prep, 2)
        compiled = frame_step._cache_size()
        chex.assert_shape(outs[fit], (2, 16, 48, 3))
        np.testing.assert_array_equal(_frames(prep, 2), outs[fit])
        assert frame_step._cache_size() == compiled  # the next batch reuses the step: one compile per shape
    assert not np.array_equal(outs["native"], outs["crop"])
    assert np.array_equal(outs["native"], outs["pad-reflect"])  # native is reflect for StyleGAN2
    assert not np.array_equal(outs["pad-reflect"], outs["pad-circular"])
    # the default style (a CPPN) renders any size itself: frame_fit leaves it alone
    cppn = resolve_style(None)
    assert cppn.with_frame_fit("pad-circular") is cppn


def test_bench_native_rows_count_the_generated_pixels():
    from lsd_jax import bench

    # a 1024 model at 16:9 makes 1024x1820 (its own pixels): the 4x4 const widened to 4x8, 2048 wide, trimmed
    assert bench.ops_grid(1024, (1024, 1820)) == (1024, 2048)
    assert bench.ops_grid(256, (256, 455)) == (256, 512)
    assert bench.ops_grid(256, (256, 256)) == (256, 256)


# --- several formats from one render


def test_format_sizes_come_from_the_shorter_side():
    from lsd_jax.engine.pipeline import format_size

    assert format_size("16:9", 1080) == (1080, 1920)
    assert format_size("9:16", 1080) == (1920, 1080)
    assert format_size("1:1", 1080) == (1080, 1080)
    for bad in ("16x9", "0:1", "wide"):
        with pytest.raises(ParamError, match="formats"):
            format_size(bad, 1080)


@pytest.mark.slow
def test_several_formats_from_one_analysis_each_with_the_song(song_and_pkl, tmp_path, monkeypatch):
    from lsd_jax.audio import analysis
    from lsd_jax.engine.pipeline import render_formats
    from lsd_jax.media import decode
    from lsd_jax.media.video import probe_video

    song, pkl = song_and_pkl
    calls = {"analyze": 0, "read_audio": 0}
    real_analyze, real_read = analysis.analyze, decode.read_audio

    def analyze(*a, **k):
        calls["analyze"] += 1
        return real_analyze(*a, **k)

    def read_audio(*a, **k):
        calls["read_audio"] += 1
        return real_read(*a, **k)

    monkeypatch.setattr(analysis, "analyze", analyze)
    monkeypatch.setattr(decode, "read_audio", read_audio)
    results = render_formats(
        song, str(pkl), formats="16:9,9:16,1:1", output=tmp_path / "song.mp4", resolution=16, fps=8, progress=False
    )
    assert calls == {"analyze": 1, "read_audio": 1}
    assert [r.path.name for r in results] == ["song.16x9.mp4", "song.9x16.mp4", "song.1x1.mp4"]
    for r, (w, h) in zip(results, [(28, 16), (16, 28), (16, 16)], strict=True):
        info = probe_video(r.path)
        assert (info["width"], info["height"]) == (w, h)
        assert info["audio_streams"] == 1 and info["n_frames"] == results[0].n_frames


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:keyframe at")  # 40 projection steps: a rough projection is enough here
def test_keyframes_project_the_square_and_land_in_a_wide_render(tmp_path):
    from PIL import Image

    from lsd_jax.engine.step import fit
    from lsd_jax.styles.generator import load_generator

    sr = 22050
    t = np.arange(sr * 3) / sr
    sf.write(tmp_path / "song.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    config = sg2_config(img_resolution=32)
    pkl = nv.write_torch_pickle(tmp_path / "g.pkl", config, random_sg2_state(config, 7))
    gen = load_generator(pkl)
    target = gen(np.random.default_rng(1).standard_normal((1, config["z_dim"])).astype(np.float32))
    Image.fromarray(np.clip((np.asarray(target[0]) + 1) * 127.5, 0, 255).astype(np.uint8)).save(tmp_path / "k.png")
    fps = 8
    prep = prepare(
        tmp_path / "song.wav",
        str(pkl),
        width=64,
        height=36,
        fps=fps,
        keyframes={1.5: str(tmp_path / "k.png")},
        projection_steps=40,
        progress=False,
    )
    k = int(1.5 * fps)
    frame = prep.frames([k])[0].astype(np.float32)
    chex.assert_shape(frame, (36, 64, 3))
    # the keyframe's w (projected from the square image) made at the wide shape by the network itself
    proj = np.asarray(prep.style.variables["control"]["key_ws"][0])[None]
    wide = gen.synthesis(proj, size=frame_shape((32, 32), (36, 64), "native"))
    want = np.clip(np.round((np.asarray(fit(wide, (36, 64)))[0] + 1) * 127.5), 0, 255)
    assert np.abs(frame - want).max() <= 1.0


# --- live mode: the same frame_fit as a render


@pytest.mark.slow
def test_live_mode_makes_the_wide_frame_as_a_render_does(song_and_pkl):
    """Issue 22: live mode's step honours frame_fit (it used to crop whatever it said): at 64×36 from a 16² StyleGAN2
    its frame is the render's native frame for the same latents, and "crop" still crops."""
    from lsd_jax.live.session import LiveRenderer

    song, pkl = song_and_pkl
    frames = {}
    for fit in ("native", "crop"):
        r = LiveRenderer(str(pkl), width=64, height=36, fps=8, frame_fit=fit, adapt=False)
        assert r.style.program.frame_fit == fit and r.size == (36, 64)
        step = r._step_for(r._target, r.size)
        assert step.program.frame_fit == fit
        z = np.random.default_rng(0).standard_normal(r.style.z_dim).astype(np.float32)
        inputs = r._inputs(r.style, z, np.zeros(r.style.c_dim, np.float32), (0.0, 0.0))
        frames[fit] = np.asarray(step(inputs))
        chex.assert_shape(frames[fit], (1, 36, 64, 3))
        # the render's step (prepare) for the same parameters makes the same frame of the same latents
        prep = prepare(song, str(pkl), width=64, height=36, fps=8, progress=False, batch_size=1, frame_fit=fit)
        assert prep.step.program == step.program
        np.testing.assert_allclose(np.asarray(prep.step(inputs)), frames[fit], atol=1e-5)
    assert not np.array_equal(frames["native"], frames["crop"])


# --- frame_layer: which block the frame is widened at (StyleGAN 2 and 1)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sg2", "sg1"])
def test_frame_layer_changes_the_wide_frame_but_not_the_square_one(sg2, sg1, family):
    g = {"sg2": sg2, "sg1": sg1}[family]
    ws = g.map_latents(jax.random.normal(jax.random.key(4), (2, g.z_dim)), None)
    square = g.synthesize(ws, noise_mode="const")
    wide = {}
    for layer in (4, 8, 16, 32):
        for size in [(32, 57), (57, 32)]:
            chex.assert_shape(g.synthesize(ws, noise_mode="const", size=size, frame_layer=layer), (2, *size, 3))
        wide[layer] = g.synthesize(ws, noise_mode="const", size=(32, 64), frame_layer=layer)
        # the square frame is the square frame, wherever a wide one would be widened
        chex.assert_trees_all_equal(g.synthesize(ws, noise_mode="const", size=(32, 32), frame_layer=layer), square)
    chex.assert_trees_all_equal(wide[4], g.synthesize(ws, noise_mode="const", size=(32, 64)))  # 4: the default
    assert float(jnp.abs(wide[8] - wide[4]).mean()) > 1e-2
    # widened later, more of the square's own composition survives in the centre (32: only the last block wide)
    err = {k: float(jnp.abs(_centre(v, (32, 32)) - square).mean()) for k, v in wide.items()}
    assert err[32] < err[4]
    with pytest.raises(ValueError, match="frame_layer must be a block resolution"):
        g.synthesize(ws, size=(32, 64), frame_layer=12)


@pytest.mark.slow
def test_frame_layer_reaches_the_render_and_is_checked_at_its_field(song_and_pkl):
    song, pkl = song_and_pkl
    kw = dict(fps=8, progress=False, batch_size=2)
    wide = {k: prepare(song, str(pkl), width=64, height=36, frame_layer=k, **kw) for k in (4, 8)}
    assert wide[8].step.program.frame_layer == 8 and wide[4].step.program.frame_layer == 4
    assert not np.array_equal(_frames(wide[8], 2), _frames(wide[4], 2))  # the wide frame changes
    square = {k: prepare(song, str(pkl), width=36, height=36, frame_layer=k, **kw) for k in (4, 16)}
    np.testing.assert_array_equal(_frames(square[16], 2), _frames(square[4], 2))  # the square one does not
    with pytest.raises(ParamError, match="frame_layer must be a block resolution of .*from 4 to 16; got 12"):
        prepare(song, str(pkl), width=64, height=36, frame_layer=12, **kw)
    with pytest.raises(ParamError, match="frame_layer must be"):
        RenderParams(frame_layer=2)
    cppn = resolve_style(None)  # renders any shape itself: frame_layer leaves it alone
    assert cppn.with_frame_fit("native", 8) is cppn
    # the loaded generator's synthesis takes it too
    import lsd_jax

    gen = lsd_jax.load_generator(str(pkl))
    ws = gen.mapping(np.random.default_rng(0).standard_normal((1, gen.z_dim)).astype(np.float32))
    chex.assert_trees_all_equal(gen.synthesis(ws, size=(16, 32)), gen.synthesis(ws, size=(16, 32), frame_layer=4))
    assert (
        float(
            np.abs(
                np.asarray(gen.synthesis(ws, size=(16, 32), frame_layer=8)) - gen.synthesis(ws, size=(16, 32))
            ).mean()
        )
        > 1e-2
    )
