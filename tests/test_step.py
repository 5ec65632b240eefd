"""lsd_jax.engine.step: render settings are step inputs, so renders that differ only in them compile nothing new."""

from __future__ import annotations

import jax
import numpy as np
import nvidia_pickles as nv
import pytest
import soundfile as sf
from sg2_state import random_sg2_state, sg2_config

import lsd_jax
from lsd_jax.params import make_params
from lsd_jax.styles.style import CUTOFF_ALL, render_settings

BACKEND_COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, secs, **kw: (
        BACKEND_COMPILES.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
    )
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("step")
    t = np.arange(22050 * 2) / 22050
    sf.write(d / "song.wav", (0.4 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(9 * t))).astype(np.float32), 22050)
    config = sg2_config(img_resolution=16, z_dim=20)  # a network no other test renders
    return d / "song.wav", nv.write_torch_pickle(d / "g.pkl", config, random_sg2_state(config, 6))


def test_render_settings_are_arrays():
    s = render_settings(make_params(truncation_psi=0.5, truncation_cutoff=3, noise_mode="random"))
    assert s["truncation_psi"].dtype == np.float32 and float(s["truncation_psi"]) == 0.5
    assert s["truncation_cutoff"].dtype == np.int32 and int(s["truncation_cutoff"]) == 3
    assert int(s["noise_mode"]) == 1
    assert int(render_settings(make_params())["truncation_cutoff"]) == CUTOFF_ALL


@pytest.mark.slow
def test_a_new_psi_cutoff_noise_mode_or_noise_react_compiles_nothing(files, tmp_path):
    song, pkl = files
    kw = dict(fps=8.0, progress=False)
    first = lsd_jax.render(song, style=str(pkl), output=tmp_path / "a.mp4", truncation_psi=0.7, **kw)
    before = len(BACKEND_COMPILES)
    second = lsd_jax.render(song, style=str(pkl), output=tmp_path / "b.mp4", truncation_psi=0.4, **kw)
    assert len(BACKEND_COMPILES) - before == 0  # the second render, with another psi, compiles nothing
    third = lsd_jax.render(
        song,
        style=str(pkl),
        output=tmp_path / "c.mp4",
        truncation_psi=1.0,
        truncation_cutoff=3,
        noise_mode="random",
        noise_react=2.0,
        **kw,
    )
    assert len(BACKEND_COMPILES) - before == 0
    frames = [
        np.stack(list(lsd_jax.media.video.read_frames(r.path))).astype(np.float32) for r in (first, second, third)
    ]
    assert np.abs(frames[0] - frames[1]).mean() > 1.0 and np.abs(frames[1] - frames[2]).mean() > 1.0  # settings act


@pytest.mark.slow
def test_truncation_in_the_step_matches_the_generator(files):
    from lsd_jax.styles.generator import load_generator
    from lsd_jax.styles.resolve import resolve_style

    _, pkl = files
    style = resolve_style(str(pkl))
    gen = load_generator(pkl)
    z = np.random.default_rng(0).standard_normal((3, gen.z_dim)).astype(np.float32)
    c = np.zeros((3, 0), np.float32)
    for psi, cutoff in ((1.0, None), (0.5, None), (0.5, 2), (-0.3, 5)):
        got = style.images(
            {"z": z, "c": c}, settings=render_settings(make_params(truncation_psi=psi, truncation_cutoff=cutoff))
        )
        want = gen(z, truncation_psi=psi, truncation_cutoff=cutoff)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


# --- the batch is bounded by the free memory before anything compiles (issue 18) ---------------------------------


def _cppn_at(size):
    from lsd_jax.engine.step import plan_effects
    from lsd_jax.styles.resolve import resolve_style

    return resolve_style(None), plan_effects(make_params(), size)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(64, 64), (128, 96)])
def test_step_memory_is_close_to_xlas_own_analysis(size):
    from lsd_jax.engine.step import make_frame_step, step_memory
    from lsd_jax.memory import MARGIN

    style, plan = _cppn_at(size)
    for batch in (1, 4, 16):
        mem = step_memory(style, size, plan, batch)
        assert mem.batch == batch and mem.temporaries > batch * size[0] * size[1] * 3  # at least the uint8 frames
        spec = {
            "z": jax.ShapeDtypeStruct((batch, style.z_dim), np.float32),
            "c": jax.ShapeDtypeStruct((batch, style.c_dim), np.float32),
            "amps": jax.ShapeDtypeStruct((batch, 0), np.float32),
        }
        xla = make_frame_step(style, size, plan, batch).lower(spec).compile().memory_analysis()
        xla_bytes = xla.temp_size_in_bytes + xla.output_size_in_bytes
        assert 0.25 * mem.temporaries <= xla_bytes <= MARGIN * mem.temporaries, (batch, mem, xla_bytes)


def test_a_batch_too_large_for_the_memory_is_refused_or_lowered(caplog):
    import logging

    from lsd_jax.engine.step import CPU_BATCH, fit_batch, step_memory
    from lsd_jax.errors import ParamError
    from lsd_jax.memory import Budget

    size = (64, 64)
    style, plan = _cppn_at(size)
    budget = Budget(step_memory(style, size, plan, 24).need + 1, "in this test")
    assert step_memory(style, size, plan, 25).need > budget.bytes
    assert fit_batch(style, size, plan, 24, free=budget) == 24
    with pytest.raises(
        ParamError,
        match=r"batch_size=100 at 64x64 needs about .* more than the .* free in this test: "
        r"use batch_size=24 or less",
    ):
        fit_batch(style, size, plan, 100, free=budget)
    # automatic: the CPU's pixel budget (64x64 allows the most, CPU_BATCH), lowered to what fits, and said
    assert style.cpu_batch_pixels // (64 * 64) > CPU_BATCH > 24
    with caplog.at_level(logging.INFO, logger="lsd_jax.engine.step"):
        assert fit_batch(style, size, plan, free=budget) == 24
    assert f"{CPU_BATCH} frames per step at 64x64" in caplog.text and "using 24" in caplog.text
    assert fit_batch(style, size, plan, most=10, free=budget) == 10  # an upper bound (DMV's batch_size) that fits
    # two devices: the batch is split over them
    assert fit_batch(style, size, plan, 48, n_devices=2, free=budget) == 48
    with pytest.raises(ParamError, match="use batch_size=48 or less"):
        fit_batch(style, size, plan, 50, n_devices=2, free=budget)


def test_a_model_that_does_not_fit_is_not_told_to_lower_its_batch(files):
    from lsd_jax.engine.step import fit_batch, plan_effects, step_memory
    from lsd_jax.errors import ParamError
    from lsd_jax.memory import Budget
    from lsd_jax.styles.resolve import resolve_style

    size = (64, 64)
    style, plan = _cppn_at(size)
    one = step_memory(style, size, plan, 1)
    for batch in (16, None, 1):
        with pytest.raises(
            ParamError, match="one 64x64 frame of the style 'cppn' needs about .*: choose a smaller resolution"
        ) as e:
            fit_batch(style, size, plan, batch, free=Budget(one.need - 1, "here"))
        assert "batch_size" not in str(e.value)
    with pytest.raises(ParamError, match=r"needs .* for its weights alone, more than the 1\.0 KB of memory free here"):
        fit_batch(style, size, plan, 16, free=Budget(1024, "here"))

    model = resolve_style(str(files[1]))  # a model renders at its own size: a smaller video does not help
    plan = plan_effects(make_params(), (32, 32))
    need = step_memory(model, (32, 32), plan, 1).need
    with pytest.raises(ParamError, match=r"this model \(it makes 16x16 images\) is too large for this machine") as e:
        fit_batch(model, (32, 32), plan, 16, free=Budget(need - 1, "here"))
    assert "batch_size" not in str(e.value)


# --- one engine (issue 26) -----------------------------------------------------------------------------------------


def test_the_render_modules_import_no_file_reader_and_no_private_names():
    """engine.step, engine.pipeline, dmv.pipeline and live.session share public functions only, and a render module
    depends on no file reader (converters): sizes in messages come from lsd_jax.memory.human_bytes."""
    import ast
    from pathlib import Path

    root = Path(lsd_jax.__file__).parent
    for rel in ("engine/step.py", "engine/pipeline.py", "dmv/pipeline.py", "live/session.py"):
        tree = ast.parse((root / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("converters"), (rel, node.module)
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
                assert not private, (rel, node.module, private)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("converters") for a in node.names), rel


def test_one_builder_chooses_the_batch_for_every_mode():
    """build_frame_step: the user's batch is kept when it fits and refused when not; an automatic one is capped."""
    from lsd_jax.engine.step import build_frame_step, step_memory
    from lsd_jax.errors import ParamError
    from lsd_jax.memory import Budget

    size = (64, 64)
    style, plan = _cppn_at(size)
    settings = render_settings(make_params(), style)
    assert build_frame_step(style, size, plan, settings=settings, batch=3).batch == 3
    assert build_frame_step(style, size, plan, settings=settings, most=5).batch == 5
    budget = Budget(step_memory(style, size, plan, 24).need + 1, "in this test")  # 25 does not fit (test above)
    assert build_frame_step(style, size, plan, settings=settings, most=30, free=budget).batch == 24
    with pytest.raises(ParamError, match="use batch_size=24 or less"):
        build_frame_step(style, size, plan, settings=settings, batch=30, free=budget)
