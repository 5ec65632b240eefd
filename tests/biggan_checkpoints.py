"""Random BigGAN-deep checkpoints in the exact layout of ``pytorch-pretrained-biggan``, written without torch.

A checkpoint folder holds ``config.json`` (``BigGANConfig.to_json_string()``: ``json.dumps(..., indent=2,
sort_keys=True) + "\\n"``) and ``pytorch_model.bin`` = ``torch.save(BigGAN(config).state_dict(), path)`` in either
serialization:

* ``legacy``: pickles (protocol 2) of the magic number, ``1001`` and ``sys_info``; the state dict (an
  ``OrderedDict`` whose BUILD state is ``{'_metadata': OrderedDict(module prefix → {'version': 1, ...})}``; each
  tensor ``torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`` with the storage a
  persistent id ``('storage', torch.FloatStorage, key, 'cpu', numel, None)``, keys being ``str(storage._cdata)``);
  the sorted key list; then per key an int64 element count and the raw float32 bytes.
* ``zip``: an uncompressed zip (data aligned to 64 bytes with torch's ``FB`` extra field) with
  ``<stem>/data.pkl`` (the same pickle, persistent ids ``('storage', torch.FloatStorage, '<n>', 'cpu', numel)``,
  keys numbered in order of first use), ``<stem>/byteorder`` (``little``), ``<stem>/data/<n>``, ``<stem>/version``
  (``3\\n``) and ``<stem>/.data/serialization_id``. ``<stem>`` is ``pytorch_model`` for ``torch.save`` to that path,
  ``archive`` for ``torch.save`` to a buffer.

The tensors follow the package's module tree and ``state_dict`` order (own parameters, own buffers, children):
spectral-normed layers store ``[bias,] weight_orig, weight_u, weight_v`` (``nn.utils.spectral_norm`` deletes
``weight`` and appends ``weight_orig``); ``u``/``v`` come from one power iteration from a random ``u0``, as the
package's TF→PyTorch conversion made them (so ``u·(W v)`` is NOT the largest singular value: a loader that used
anything but the stored vectors would be caught). Batch-norm statistics vary with the truncation index so that
the interpolation order matters.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import nvidia_pickles as nv

from converters.biggan import checkpoint_shapes, module_order

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001

LAYERS_128 = [
    [False, 16, 16],
    [True, 16, 16],
    [False, 16, 16],
    [True, 16, 8],
    [False, 8, 8],
    [True, 8, 4],
    [False, 4, 4],
    [True, 4, 2],
    [False, 2, 2],
    [True, 2, 1],
]
LAYERS_256 = [
    [False, 16, 16],
    [True, 16, 16],
    [False, 16, 16],
    [True, 16, 8],
    [False, 8, 8],
    [True, 8, 8],
    [False, 8, 8],
    [True, 8, 4],
    [False, 4, 4],
    [True, 4, 2],
    [False, 2, 2],
    [True, 2, 1],
]
LAYERS_512 = LAYERS_256 + [[False, 1, 1], [True, 1, 1]]
LAYERS = {128: LAYERS_128, 256: LAYERS_256, 512: LAYERS_512}


def biggan_config(resolution: int = 128, channel_width: int = 4, **overrides: Any) -> dict:
    """The package's BigGAN-deep config for ``resolution`` (its real layer structure), with a small width."""
    cfg = {
        "output_dim": resolution,
        "z_dim": 128,
        "class_embed_dim": 128,
        "channel_width": channel_width,
        "num_classes": 1000,
        "layers": [list(x) for x in LAYERS[resolution]],
        "attention_layer_position": 8,
        "eps": 1e-4,
        "n_stats": 51,
    }
    cfg.update(overrides)
    return cfg


def config_json(config: dict) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _normalize(x: np.ndarray, eps: float) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), eps)


def random_state(config: dict, seed: int = 0) -> OrderedDict:
    """``BigGAN(config).state_dict()`` with random values (float32), name → array, in state_dict order."""
    rng = np.random.default_rng(seed)
    n_stats = config["n_stats"]
    state: OrderedDict = OrderedDict()
    shapes = checkpoint_shapes(config)
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[1]
        if leaf == "weight_orig":
            w = rng.normal(0.0, 1.0, shape)
            wm = w.reshape(shape[0], -1)
            u0 = _normalize(rng.normal(size=shape[0]), 1e-12)
            v = _normalize(wm.T @ u0, config["eps"])
            u = _normalize(wm @ v, config["eps"])
            state[name] = w.astype(np.float32)
            state[name[: -len("orig")] + "u"] = u.astype(np.float32)
            state[name[: -len("orig")] + "v"] = v.astype(np.float32)
        elif leaf in ("weight_u", "weight_v"):
            continue  # written with weight_orig
        elif leaf == "running_means":
            c = shape[1]
            ramp = np.linspace(0.0, 1.0, n_stats)[:, None]
            state[name] = (rng.normal(0, 0.2, c) + ramp * rng.normal(0, 0.5, c) + rng.normal(0, 0.05, shape)).astype(
                np.float32
            )
        elif leaf == "running_vars":
            c = shape[1]
            ramp = np.linspace(0.0, 1.0, n_stats)[:, None]
            state[name] = (rng.uniform(0.6, 1.4, c) * (1.0 + 0.8 * ramp) * rng.uniform(0.9, 1.1, shape)).astype(
                np.float32
            )
        elif name == "embeddings.weight":
            state[name] = rng.normal(0.0, 0.1, shape).astype(np.float32)
        elif leaf == "gamma":
            state[name] = np.array([0.8], np.float32)
        elif name == "generator.bn.weight":
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:  # biases
            state[name] = rng.normal(0.0, 0.1, shape).astype(np.float32)
    # the triplets were appended as weight_orig, u, v after the bias: re-order to exactly checkpoint_shapes()
    return OrderedDict((k, state[k]) for k in shapes)


def module_names(config: dict) -> list[str]:
    """Every module's ``state_dict`` prefix (``named_modules`` order), as in the state dict's ``_metadata``."""
    names = ["", "embeddings", "generator", "generator.gen_z", "generator.layers"]
    for m, (kind, _i) in enumerate(module_order(config)):
        p = f"generator.layers.{m}"
        names.append(p)
        if kind == "attn":
            names += [f"{p}.snconv1x1_{x}" for x in ("theta", "phi", "g", "o_conv")]
            names += [f"{p}.maxpool", f"{p}.softmax"]
            continue
        for j in range(4):
            names += [f"{p}.bn_{j}", f"{p}.bn_{j}.scale", f"{p}.bn_{j}.offset", f"{p}.conv_{j}"]
        names.append(f"{p}.relu")
    names += ["generator.bn", "generator.relu", "generator.conv_to_rgb", "generator.tanh"]
    return names


def state_metadata(config: dict) -> OrderedDict:
    """``state_dict()._metadata``: ``{'version': 1}`` per module, plus the spectral-norm hook's version entry."""
    sn = {k.rsplit(".", 1)[0] for k in checkpoint_shapes(config) if k.endswith(".weight_orig")}
    meta: OrderedDict = OrderedDict()
    for name in module_names(config):
        entry: dict[str, Any] = {"version": 1}
        if name in sn:
            entry["spectral_norm"] = {"weight.version": 1}
        meta[name] = entry
    return meta


# --------------------------------------------------------------------------------------------------------------
# torch.save, both serializations.


class _Storage:
    """Identity of one torch storage (the pickler turns it into a persistent id)."""

    def __init__(self, array: np.ndarray, key: str):
        self.array = np.ascontiguousarray(array, dtype="<f4").reshape(-1)
        self.key = key


class _Tensor:
    """Pickles like a torch tensor: ``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce_ex__(self, protocol: int) -> tuple:
        return (nv.REBUILD_TENSOR_V2, (self.storage, self.offset, self.size, self.stride, False, OrderedDict()))


def _stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(out))


class _TorchPickler(nv.NvPickler):
    def __init__(self, file: Any, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy = legacy
        self.storages: dict[str, _Storage] = {}

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, _Storage):
            return None
        self.storages.setdefault(obj.key, obj)
        if self.legacy:
            return ("storage", nv.FloatStorage, obj.key, "cpu", obj.array.size, None)
        return ("storage", nv.FloatStorage, obj.key, "cpu", obj.array.size)


def _state_object(
    state: dict, metadata: dict | None, keys: list[str], shared: dict[str, tuple[str, int]] | None = None
) -> OrderedDict:
    """The state dict of tensor stand-ins, one storage per tensor with the given keys (``shared`` makes a tensor a
    view into another tensor's storage: ``name → (other name, offset)``)."""
    obj: OrderedDict = OrderedDict()
    storages: dict[str, _Storage] = {}
    for (name, arr), key in zip(state.items(), keys):
        if shared and name in shared:
            continue
        storages[name] = _Storage(arr, key)
        obj[name] = _Tensor(storages[name], 0, tuple(int(s) for s in arr.shape), _stride(arr.shape))
    for name, (other, offset) in (shared or {}).items():
        arr = state[name]
        obj[name] = _Tensor(storages[other], offset, tuple(arr.shape), _stride(arr.shape))
    if shared:
        obj = OrderedDict((k, obj[k]) for k in state)
    if metadata is not None:
        obj._metadata = metadata
    return obj


def torch_save_legacy(
    state: dict, metadata: dict | None = None, shared: dict | None = None, little_endian: bool = True
) -> bytes:
    """``torch.save(state_dict, f, _use_new_zipfile_serialization=False)`` bytes."""
    base = 94_186_426_374_016  # keys are str(storage._cdata): heap addresses, all of one length here
    keys = [str(base + 4096 * i) for i in range(len(state))]
    obj = _state_object(state, metadata, keys, shared)
    buf = io.BytesIO()
    sys_info = {
        "protocol_version": PROTOCOL,
        "little_endian": little_endian,
        "type_sizes": {"short": 2, "int": 4, "long": 8},
    }
    for x in (MAGIC, PROTOCOL, sys_info):
        nv.NvPickler(buf, protocol=2).dump(x)
    p = _TorchPickler(buf, legacy=True)
    p.dump(obj)
    order = sorted(p.storages)
    nv.NvPickler(buf, protocol=2).dump(order)
    for key in order:
        arr = p.storages[key].array
        buf.write(struct.pack("<q", arr.size))
        buf.write(arr.astype("<f4" if little_endian else ">f4").tobytes())
    return buf.getvalue()


def _zip_entry(zf: zipfile.ZipFile, name: str, data: bytes, pos: int) -> None:
    """One stored entry whose data starts on a 64-byte boundary (torch's ``FB`` padding extra field)."""
    start = pos + 30 + len(name.encode()) + 4
    pad = (-start) % 64
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def torch_save_zip(
    state: dict,
    metadata: dict | None = None,
    archive: str = "pytorch_model",
    shared: dict | None = None,
    byteorder: str | None = "little",
) -> bytes:
    """``torch.save(state_dict, '<archive>.bin')`` bytes (torch ≥ 1.6 zip serialization)."""
    keys = [str(i) for i in range(len(state))]
    obj = _state_object(state, metadata, keys, shared)
    pkl = io.BytesIO()
    p = _TorchPickler(pkl, legacy=False)
    p.dump(obj)
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        records = [("data.pkl", pkl.getvalue())]
        if byteorder is not None:
            records.append(("byteorder", byteorder.encode()))
        dt = "<f4" if byteorder != "big" else ">f4"
        records += [(f"data/{k}", p.storages[k].array.astype(dt).tobytes()) for k in sorted(p.storages, key=int)]
        records += [("version", b"3\n"), (".data/serialization_id", b"0" * 20 + b"1234567890" * 2)]
        for name, data in records:
            _zip_entry(zf, f"{archive}/{name}", data, raw.tell())
    return raw.getvalue()


def write_checkpoint(folder: Path, config: dict, state: dict, serialization: str = "legacy", **kwargs: Any) -> Path:
    """A checkpoint folder: ``config.json`` + ``pytorch_model.bin`` in the given serialization."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config_json(config), encoding="utf-8")
    meta = state_metadata(config)
    data = (
        torch_save_legacy(state, meta, **kwargs) if serialization == "legacy" else torch_save_zip(state, meta, **kwargs)
    )
    (folder / "pytorch_model.bin").write_bytes(data)
    return folder
