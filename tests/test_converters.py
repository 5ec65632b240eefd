"""converters: NVIDIA pickles (PyTorch + TF) → (config, state), the restricted unpickler, and the cache.

Fixtures are written by tests/nvidia_pickles.py in NVIDIA's exact byte formats from tests/sg2_state.py's random
torch-layout states; no torch / TF / NVIDIA code is involved anywhere.
"""

from __future__ import annotations

import builtins
import importlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import nvidia_pickles as nv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sg2_state import random_sg2_state, sg2_config

import converters
import lsd_jax
from converters.errors import ConversionError, ConverterError, PickleSecurityError
from converters.errors import SourceError as StyleError
from converters.safe_pickle import ALLOWED_GLOBALS
from lsd_jax.store import weights

# Several configs: resolutions 32..256, conditional or not, skip / resnet / orig, mapping depth 2..8.
CONFIGS = {
    "32-skip-uncond-map2": sg2_config(),
    "64-resnet-cond-map8-clamp": sg2_config(
        img_resolution=64, c_dim=5, num_layers=8, architecture="resnet", conv_clamp=256, num_fp16_res=2
    ),
    "128-skip-cond-embed-layerfeat": sg2_config(
        img_resolution=128, c_dim=3, embed_features=16, layer_features=24, num_layers=4, lr_multiplier=0.02
    ),
    "256-resnet-map3-z16w24": sg2_config(
        img_resolution=256, z_dim=16, w_dim=24, num_layers=3, architecture="resnet", channel_base=1024, channel_max=16
    ),
    "32-orig-filter121-4ch": sg2_config(img_channels=4, architecture="orig", resample_filter=[1, 2, 1], num_layers=5),
}


def _state(config: dict, seed: int = 0) -> dict[str, np.ndarray]:
    return random_sg2_state(config, seed)


def _assert_same_state(got: dict, want: dict) -> None:
    assert list(got) == list(want), "keys / state_dict order differ"
    for key, value in want.items():
        assert got[key].dtype == np.float32, key
        assert got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


# ----------------------------------------------------------------------------------------------------------------
# Formats.


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("flavor", ["ada", "sg3"])
def test_torch_pickle_roundtrip(name: str, flavor: str) -> None:
    config = CONFIGS[name]
    state = _state(config, seed=len(name))
    data = nv.torch_pickle_bytes(config, state, flavor=flavor)
    got_config, got_state = converters.parse_bytes(data)
    assert got_config == config
    _assert_same_state(got_state, state)


def test_torch_pickle_top_level_order_is_nvidias() -> None:
    config = CONFIGS["32-skip-uncond-map2"]
    ada = nv.torch_snapshot(config, _state(config), flavor="ada")
    sg3 = nv.torch_snapshot(config, _state(config), flavor="sg3")
    assert list(ada) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    assert list(sg3) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]
    # G (raw) holds other values than G_ema: the converter must take G_ema.
    data = nv.dumps(ada)
    _, got = converters.parse_bytes(data)
    np.testing.assert_array_equal(got["mapping.fc0.weight"], _state(config)["mapping.fc0.weight"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_tf_pickle_roundtrip(name: str) -> None:
    config = CONFIGS[name]
    state = _state(config, seed=3)
    tf_vars = nv.tf_variables_from_state(config, state)
    got_config, got_state = converters.parse_bytes(nv.tf_pickle_bytes(config, state))
    assert got_config == config
    assert list(got_state) == list(state)
    mod_bias = {f"synthesis/{n}": v for n, v in tf_vars["synthesis"] if n.endswith("mod_bias")}
    for key, want in state.items():
        got = got_state[key]
        assert got.dtype == np.float32 and got.shape == want.shape, key
        if key.endswith("affine.bias"):
            # TF stores mod_bias = affine.bias - 1; the converter adds the 1 back (float32 rounding).
            res = int(key.split(".")[1][1:])
            scope = {"conv0": "Conv0_up", "conv1": "Conv" if res == 4 else "Conv1", "torgb": "ToRGB"}[key.split(".")[2]]
            np.testing.assert_array_equal(got, mod_bias[f"synthesis/{res}x{res}/{scope}/mod_bias"] + np.float32(1))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)


def test_tf_mapping_details() -> None:
    """Spot-check the TF→torch rules on hand-made values: flips, transposes, noise indices, const[0]."""
    config = CONFIGS["32-skip-uncond-map2"]
    state = _state(config, seed=9)
    tf = {n: v for group in nv.tf_variables_from_state(config, state).values() for n, v in group}
    _, got = converters.parse_bytes(nv.tf_pickle_bytes(config, state))
    w_tf = tf["16x16/Conv0_up/weight"]  # [k, k, I, O], stored spatially flipped relative to torch
    np.testing.assert_array_equal(got["synthesis.b16.conv0.weight"], w_tf[::-1, ::-1].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(got["synthesis.b16.conv1.weight"], tf["16x16/Conv1/weight"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(got["mapping.fc1.weight"], tf["Dense1/weight"].T)
    np.testing.assert_array_equal(got["synthesis.b4.const"], tf["4x4/Const/const"][0])
    np.testing.assert_array_equal(got["synthesis.b4.conv1.noise_const"], tf["noise0"][0, 0])
    np.testing.assert_array_equal(got["synthesis.b32.conv0.noise_const"], tf["noise5"][0, 0])  # 2*5-5
    np.testing.assert_array_equal(got["synthesis.b32.conv1.noise_const"], tf["noise6"][0, 0])  # 2*5-4
    np.testing.assert_array_equal(got["mapping.w_avg"], tf["dlatent_avg"])
    f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) / 64
    np.testing.assert_array_equal(got["synthesis.b8.conv0.resample_filter"], f)


def test_tf_original_stylegan2_lod_and_protocol2() -> None:
    """The original StyleGAN2 G_main also stores a scalar 'lod'; protocol-2 pickles store bytes via
    _codecs.encode. Both load."""
    config = CONFIGS["64-resnet-cond-map8-clamp"]
    state = _state(config, seed=4)
    cfg, got = converters.parse_bytes(nv.tf_pickle_bytes(config, state, protocol=2, with_lod=True))
    assert cfg == config
    np.testing.assert_array_equal(got["synthesis.b64.skip.weight"], state["synthesis.b64.skip.weight"])


def test_tf_kwarg_mapping_and_defaults() -> None:
    """fmap_base×2 → channel_base, and legacy.py's TF defaults where kwargs are absent."""
    config = sg2_config(z_dim=512, w_dim=512, img_resolution=32, num_layers=8, channel_base=32768, channel_max=16)
    state = _state(config, seed=5)
    static = {"resolution": 32, "fmap_max": 16}  # everything else at its TF default (latent 512, fmap_base 16384)
    cfg, got = converters.parse_bytes(nv.tf_pickle_bytes(config, state, static_kwargs=static))
    assert cfg == config
    assert cfg["synthesis_kwargs"]["channel_base"] == 2 * 16384
    static = {**static, "truncation_psi": 0.5, "style_mixing_prob": 0.9, "structure": "auto"}  # ignored kwargs
    assert converters.parse_bytes(nv.tf_pickle_bytes(config, state, static_kwargs=static))[0] == config


def test_torch_partial_kwargs_get_nvidia_defaults() -> None:
    """Absent kwargs are NVIDIA's defaults (ADA: 8 mapping layers, lr 0.01, beta 0.995, no clamp, skip, [1,3,3,1])."""
    config = sg2_config(num_layers=8)  # everything else in sg2_config is already ADA's default but the channels
    state = _state(config, seed=6)
    kwargs = {
        "z_dim": 32,
        "w_dim": 32,
        "c_dim": 0,
        "img_resolution": 32,
        "img_channels": 3,
        "synthesis_kwargs": nv.EasyDict(channel_base=512, channel_max=32),
    }
    snap = nv.torch_snapshot(config, state, init_kwargs=kwargs)
    for mod in (snap["G_ema"].state["_modules"]["mapping"],):  # drop the attributes too: defaults must fill in
        mod.state.pop("num_layers")
        mod.state.pop("w_avg_beta")
    cfg, got = converters.parse_bytes(nv.dumps(snap))
    assert cfg == config
    _assert_same_state(got, state)


def test_sg3repo_defaults_differ_from_ada() -> None:
    """The stylegan3 repo's networks_stylegan2 defaults: w_avg_beta 0.998, num_fp16_res 4, conv_clamp 256."""
    config = sg2_config(w_avg_beta=0.998, num_fp16_res=4, conv_clamp=256, num_layers=8)
    state = _state(config, seed=7)
    kwargs = {
        "z_dim": 32,
        "w_dim": 32,
        "mapping_kwargs": nv.EasyDict(),
        "channel_base": 512,
        "channel_max": 32,
        "fused_modconv_default": "inference_only",
        "c_dim": 0,
        "img_resolution": 32,
        "img_channels": 3,
    }
    snap = nv.torch_snapshot(config, state, flavor="sg3", init_kwargs=kwargs)
    mapping = snap["G_ema"].state["_modules"]["mapping"]
    mapping.state.pop("num_layers")
    mapping.state.pop("w_avg_beta")
    assert converters.parse_bytes(nv.dumps(snap))[0] == config


def test_torch_init_args_positional_and_legacy_full_kwargs() -> None:
    config = CONFIGS["64-resnet-cond-map8-clamp"]
    state = _state(config, seed=8)
    full = nv.ada_init_kwargs(config, full=True)
    full["synthesis_kwargs"].update(use_noise=True, activation="lrelu")  # as legacy.py's TF conversion writes
    assert converters.parse_bytes(nv.torch_pickle_bytes(config, state, init_kwargs=full))[0] == config
    snap = nv.torch_snapshot(config, state)
    g = snap["G_ema"].state
    kw = dict(g["_init_kwargs"])
    g["_init_args"] = tuple(kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"))
    g["_init_kwargs"] = kw
    cfg, got = converters.parse_bytes(nv.dumps(snap))
    assert cfg == config
    _assert_same_state(got, state)


def _walk(obj, fn) -> None:
    if isinstance(obj, nv.Persistent):
        fn(obj)
        for child in obj.state["_modules"].values():
            _walk(child, fn)


def test_torch_variants_parameter_with_state_numpy2_names_protocol2() -> None:
    config = CONFIGS["32-skip-uncond-map2"]
    state = _state(config, seed=2)
    snap = nv.torch_snapshot(config, state)

    def with_state(mod):
        for p in mod.state["_parameters"].values():
            p.with_state = True

    _walk(snap["G_ema"], with_state)
    for numpy1 in (True, False):  # numpy.core.* (NVIDIA's) and numpy._core.* (numpy >= 2) spellings
        for protocol in (2, 4):
            cfg, got = converters.parse_bytes(nv.dumps(snap, protocol=protocol, numpy1_names=numpy1))
            assert cfg == config
            _assert_same_state(got, state)


def test_bare_generator_pickle() -> None:
    config = CONFIGS["32-skip-uncond-map2"]
    state = _state(config)
    cfg, got = converters.parse_bytes(nv.dumps(nv.generator(config, state)))
    assert cfg == config
    _assert_same_state(got, state)


# ----------------------------------------------------------------------------------------------------------------
# Malicious pickles: refused, nothing runs.


class _Reduce:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


class _Build:
    """Pickles as ``func(*args)`` followed by ``BUILD state``."""

    def __init__(self, func, args, state):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args, self.state)


def _touch_code(canary: Path) -> str:
    return f"open({str(canary)!r}, 'w').close()"


def _uni(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _getattr_payload(cmd: str) -> bytes:
    """Protocol 2: getattr(__import__('os'), 'system')(cmd), written opcode by opcode."""
    return (
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n("
        + _uni("os")
        + b"tR"
        + _uni("system")
        + b"tR("
        + _uni(cmd)
        + b"tR."
    )


def _payloads(canary: Path) -> dict[str, tuple[bytes, str | None]]:
    """name → (pickle bytes, the global the refusal message must name or None)."""
    cmd = f"touch {canary}"
    code = _touch_code(canary)
    stub = nv.global_stub
    p = {
        "os.system (real, protocol 4)": (pickle.dumps(_Reduce(os.system, cmd), protocol=4), "posix.system"),
        "os.system (GLOBAL 'os system')": (nv.dumps(_Reduce(stub("os", "system"), cmd), protocol=2), "os.system"),
        "posix.system (protocol 0)": (pickle.dumps(_Reduce(os.system, cmd), protocol=0), "posix.system"),
        "subprocess.Popen": (pickle.dumps(_Reduce(subprocess.Popen, ["touch", str(canary)])), "subprocess.Popen"),
        "subprocess.check_output": (
            pickle.dumps(_Reduce(subprocess.check_output, ["touch", str(canary)])),
            "subprocess.check_output",
        ),
        "builtins.eval": (pickle.dumps(_Reduce(builtins.eval, code)), "builtins.eval"),
        "builtins.exec": (pickle.dumps(_Reduce(builtins.exec, code)), "builtins.exec"),
        "builtins.__import__": (pickle.dumps(_Reduce(builtins.__import__, "os")), "builtins.__import__"),
        "builtins.getattr(__import__('os'), 'system')": (_getattr_payload(cmd), "builtins.getattr"),
        "importlib.import_module": (pickle.dumps(_Reduce(importlib.import_module, "os")), "importlib.import_module"),
        "io.open (any callable off the allow-list)": (pickle.dumps(_Reduce(io.open, str(canary), "w")), "io.open"),
        "builtins.open": (nv.dumps(_Reduce(stub("builtins", "open"), str(canary), "w")), "builtins.open"),
        "shutil.copyfile": (pickle.dumps(_Reduce(shutil.copyfile, __file__, str(canary))), "shutil.copyfile"),
        "global hidden in a dict value": (
            pickle.dumps({"G_ema": _Reduce(os.system, cmd), "training_set_kwargs": {}}),
            "posix.system",
        ),
        "BUILD setstate with a global": (
            nv.dumps(_Build(nv.EasyDict, (), {"__setstate__": stub("os", "system")})),
            "os.system",
        ),
        "INST opcode": (f"(S'{cmd}'\nios\nsystem\n.".encode(), "INST"),
        "INST of an allow-listed name": (b"(icollections\nOrderedDict\n.", "INST"),
        "OBJ opcode": (f"(cos\nsystem\nS'{cmd}'\no.".encode(), None),
        "OBJ of an allow-listed class": (b"(cdnnlib.util\nEasyDict\no.", "OBJ"),
        "EXT1 opcode": (b"\x80\x02\x82\x01.", "EXT1"),
        "top-level persistent id": (b"\x80\x02X\x03\x00\x00\x00abcQ.", "persistent id"),
        "global inside a torch storage stream": (
            nv.dumps(
                _Reduce(
                    nv.LOAD_FROM_BYTES,
                    nv.legacy_storage_bytes(np.zeros(3), storage_class=nv._named_class("os", "system")),
                )
            ),
            "os.system",
        ),
    }
    return p


PAYLOAD_NAMES = list(_payloads(Path("/nonexistent/canary")))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_malicious_pickle_refused_without_side_effect(tmp_path: Path, name: str) -> None:
    canary = tmp_path / "canary"
    data, global_name = _payloads(canary)[name]
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(PickleSecurityError) as info:
        converters.parse_pickle(path)
    msg = str(info.value)
    if global_name:
        assert global_name in msg
    assert "Traceback" not in msg
    assert not canary.exists()
    with pytest.raises(PickleSecurityError):  # the cached entry point refuses too, and caches nothing
        weights.load(path)
    assert not canary.exists()
    # through lsd-jax the same refusal is an lsd-jax StyleError (what the CLI and the app catch)
    with pytest.raises(lsd_jax.PickleSecurityError) as info:
        lsd_jax.load_generator(path)
    assert isinstance(info.value, lsd_jax.StyleError) and str(info.value) == msg
    assert not canary.exists()


def test_payloads_are_live_with_stdlib_pickle(tmp_path: Path) -> None:
    """Control: the same payloads DO run under the standard unpickler, so the refusals above prove something."""
    canary = tmp_path / "control"
    pickle.loads(pickle.dumps(_Reduce(builtins.exec, _touch_code(canary))))
    assert canary.exists()
    canary.unlink()
    pickle.loads(pickle.dumps(_Reduce(os.system, f"touch {canary}")))
    assert canary.exists()


def test_module_src_is_never_executed(tmp_path: Path) -> None:
    """A persistent object's module_src is the code NVIDIA's loader exec()s. Ours never does: the weights load
    and the canary the source would create does not appear."""
    canary = tmp_path / "canary"
    evil_src = f"import os\n{_touch_code(canary)}\nos.system('touch {canary}')\n"
    config = CONFIGS["32-skip-uncond-map2"]
    state = _state(config)
    snap = nv.torch_snapshot(config, state)

    def poison(mod):
        mod.module_src = evil_src

    for key in ("G", "D", "G_ema", "augment_pipe"):
        _walk(snap[key], poison)
    cfg, got = converters.parse_bytes(nv.dumps(snap))
    assert cfg == config
    _assert_same_state(got, state)
    assert not canary.exists()


@pytest.mark.parametrize("case", ["persistent", "tf-twice", "dtype-object", "ndarray-object-data"])
def test_build_tricks_refused(tmp_path: Path, case: str) -> None:
    canary = tmp_path / "canary"
    meta = dict(type="class", version=6, module_src=_touch_code(canary), class_name="Generator", state={})
    if case == "persistent":  # BUILD on what _reconstruct_persistent_obj returned
        data = nv.dumps(_Build(nv.RECONSTRUCT_PERSISTENT, (meta,), {"class_name": "x", "__class__": None}))
    elif case == "tf-twice":  # a second BUILD on a TF Network (e.g. to plant attributes after validation)
        net = nv.TFNetwork({"version": 5})
        data = nv.dumps(net)
        assert data.endswith(b"b.")  # ... BUILD STOP
        data = data[:-1] + b"}b."  # EMPTY_DICT BUILD STOP: a second BUILD
    elif case == "dtype-object":
        data = pickle.dumps(np.array([print, os.system], dtype=object))
    else:
        data = pickle.dumps(np.array(["x", 1], dtype=object))
    with pytest.raises(PickleSecurityError):
        converters.parse_bytes(data)
    assert not canary.exists()


def test_allow_list_is_small_and_has_no_dangerous_names() -> None:
    names = {f"{m}.{n}" for m, n in ALLOWED_GLOBALS}
    for bad in (
        "os.system",
        "posix.system",
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "importlib.import_module",
        "subprocess.Popen",
        "numpy.load",
        "torch.load",
        "pickle.loads",
        "copyreg._reconstructor",
        "builtins.object",
    ):
        assert bad not in names
    assert len(names) <= 25
    # every stand-in is ours: none of them is the real object of that name
    for (module, name), standin in ALLOWED_GLOBALS.items():
        assert getattr(standin, "__module__", "converters.safe_pickle").startswith("converters"), (module, name)


_SMALL_CONFIG = sg2_config(img_resolution=8, channel_base=64, channel_max=4, z_dim=4, w_dim=4, c_dim=2)
_SMALL_STATE = random_sg2_state(_SMALL_CONFIG, 0)
_SMALL_PICKLES = [
    nv.torch_pickle_bytes(_SMALL_CONFIG, _SMALL_STATE, with_augment=False),
    nv.tf_pickle_bytes(_SMALL_CONFIG, {**_SMALL_STATE, "mapping.w_avg": _SMALL_STATE["mapping.w_avg"]}),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_pickles_fail_cleanly(data) -> None:
    """Random truncations / byte flips of valid PyTorch and TF pickles: only ConverterErrors (or success), never a raw
    exception from deep inside pickle or the converters."""
    blob = bytearray(data.draw(st.sampled_from(_SMALL_PICKLES)))
    cut = data.draw(st.integers(0, len(blob)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), max_size=4))
    for pos, val in flips:
        if pos < cut:
            blob[pos] = val
    try:
        converters.parse_bytes(bytes(blob[:cut]))
    except ConverterError:
        pass


# ----------------------------------------------------------------------------------------------------------------
# Wrong pickles: clear errors.


def _sg3_generator() -> nv.Persistent:
    rng = np.random.default_rng(0)
    tensor_state = {
        "synthesis.input.weight": rng.standard_normal((8, 8)).astype(np.float32),
        "synthesis.input.freqs": rng.standard_normal((8, 2)).astype(np.float32),
        "synthesis.L0_36_8.weight": rng.standard_normal((8, 8, 3, 3)).astype(np.float32),
        "mapping.fc0.weight": rng.standard_normal((8, 8)).astype(np.float32),
    }
    classes = {
        "": "Generator",
        "synthesis": "SynthesisNetwork",
        "synthesis.input": "SynthesisInput",
        "synthesis.L0_36_8": "SynthesisLayer",
        "mapping": "MappingNetwork",
        "mapping.fc0": "FullyConnectedLayer",
    }
    kwargs = {
        "z_dim": 8,
        "w_dim": 8,
        "mapping_kwargs": nv.EasyDict(num_layers=2),
        "channel_base": 32768,
        "channel_max": 512,
        "magnitude_ema_beta": 0.999,
        "c_dim": 0,
        "img_resolution": 32,
        "img_channels": 3,
    }
    return nv.module_tree(
        tensor_state,
        classes.__getitem__,
        lambda p: {"in_size": np.array([36, 36])} if p == "synthesis.L0_36_8" else {},
        lambda p: ((), kwargs if p == "" else {}),
    )


def _wrong(tmp_path: Path, name: str) -> Path:
    config = CONFIGS["32-skip-uncond-map2"]
    path = tmp_path / "style.pkl"  # a neutral name: the messages below must not match the file name
    good = nv.torch_pickle_bytes(config, _state(config))
    if name == "no-generator":
        data = pickle.dumps({"training_set_kwargs": {"path": "x"}, "epoch": 3})
    elif name == "discriminator-alone":
        data = nv.dumps({"D": nv.discriminator(config)})
    elif name == "bare-discriminator":
        data = nv.dumps(nv.discriminator(config))
    elif name == "tf-discriminator-alone":
        data = nv.dumps(nv.tf_discriminator(config), protocol=3)
    elif name == "truncated":
        data = good[: len(good) // 2]
    elif name == "truncated-last-byte":
        data = good[:-1]
    elif name == "stylegan3":
        g = _sg3_generator()
        data = nv.dumps({"G": g, "D": nv.discriminator(config), "G_ema": g, "augment_pipe": None})
    elif name == "stylegan3-no-kwargs":
        g = _sg3_generator()
        g.state["_init_kwargs"] = {}
        data = nv.dumps({"G_ema": g})
    elif name == "random-binary":
        data = np.random.default_rng(0).bytes(4096)
    elif name == "empty":
        data = b""
    elif name == "zip-archive":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", b"x")
        data = buf.getvalue()
    elif name == "plain-numpy-array":
        data = pickle.dumps(np.zeros(3))
    else:
        raise AssertionError(name)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name, match",
    [
        ("no-generator", "no generator"),
        ("discriminator-alone", "discriminator"),
        ("bare-discriminator", "discriminator"),
        ("tf-discriminator-alone", "discriminator"),
        ("truncated", "truncated"),
        ("truncated-last-byte", "truncated"),
        # incomplete StyleGAN3 generators (complete ones convert: tests/test_stylegan3.py)
        ("stylegan3", "synthesis.input does not record 'channels': cannot convert this StyleGAN3 generator"),
        ("stylegan3-no-kwargs", "the Generator does not record 'z_dim'"),
        ("random-binary", "not a valid pickle"),
        ("empty", "empty"),
        ("zip-archive", "zip archive"),
        ("plain-numpy-array", "not an NVIDIA"),
    ],
)
def test_wrong_pickles_give_clear_errors(tmp_path: Path, name: str, match: str) -> None:
    path = _wrong(tmp_path, name)
    with pytest.raises(ConversionError, match=match) as info:
        weights.load(path)
    assert "'style.pkl'" in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StyleError, match="not found"):
        converters.parse_pickle(tmp_path / "nope.pkl")
    with pytest.raises(StyleError, match="directory"):
        converters.parse_pickle(tmp_path)
    with pytest.raises(lsd_jax.StyleError, match="not found"):
        weights.load(tmp_path / "nope.pkl")
    with pytest.raises(lsd_jax.StyleError, match="directory"):
        weights.load(tmp_path)
    with pytest.raises(lsd_jax.StyleError, match="not found"):
        weights.load_safetensors(tmp_path / "nope.safetensors")


@pytest.mark.parametrize(
    "case",
    [
        "extra-tensor",
        "missing-tensor",
        "wrong-shape",
        "unknown-kwarg",
        "unknown-top-kwarg",
        "use-noise-false",
        "tf-unknown-kwarg",
        "tf-unknown-variable",
        "tf-missing-variable",
    ],
)
def test_unknown_or_missing_keys_fail_loudly(case: str) -> None:
    config = CONFIGS["64-resnet-cond-map8-clamp"]
    state = _state(config)
    key = None
    if case == "extra-tensor":
        key = "synthesis.b8.conv0.extra_scale"
        bad = dict(state)
        bad[key] = np.ones(3, np.float32)
        data = nv.torch_pickle_bytes(config, bad)
    elif case == "missing-tensor":
        key = "synthesis.b16.conv1.noise_const"
        data = nv.torch_pickle_bytes(config, {k: v for k, v in state.items() if k != key})
    elif case == "wrong-shape":
        key = "mapping.fc3.bias"
        data = nv.torch_pickle_bytes(config, {**state, key: np.zeros(7, np.float32)})
    elif case == "unknown-kwarg":
        key = "foo_gain"
        kw = nv.ada_init_kwargs(config)
        kw["synthesis_kwargs"][key] = 2
        data = nv.torch_pickle_bytes(config, state, init_kwargs=kw)
    elif case == "unknown-top-kwarg":
        key = "epochs"
        kw = {**nv.ada_init_kwargs(config), key: 0.0}
        data = nv.torch_pickle_bytes(config, state, init_kwargs=kw)
    elif case == "use-noise-false":
        key = "use_noise"
        kw = nv.ada_init_kwargs(config)
        kw["synthesis_kwargs"][key] = False
        data = nv.torch_pickle_bytes(config, state, init_kwargs=kw)
    elif case == "tf-unknown-kwarg":
        key = "fmap_decay"
        data = nv.tf_pickle_bytes(config, state, static_kwargs={**nv.tf_static_kwargs(config), key: 1.0})
    else:
        gs = nv.tf_generator(config, state)
        syn = gs._state["components"]["synthesis"]._state
        if case == "tf-unknown-variable":
            key = "8x8/Conv1/extra"
            syn["variables"].append((key, np.zeros(2, np.float32)))
        else:
            key = "8x8/Conv1/noise_strength"
            syn["variables"] = [(n, v) for n, v in syn["variables"] if n != key]
        data = nv.dumps((gs, nv.tf_discriminator(config), gs), protocol=3)
    with pytest.raises(ConversionError) as info:
        converters.parse_bytes(data)
    assert key in str(info.value)


def test_no_torch_or_tensorflow_imported() -> None:
    import sys

    assert "torch" not in sys.modules and "tensorflow" not in sys.modules
    assert not any(m.split(".")[0] in ("torch_utils", "dnnlib") for m in sys.modules)
