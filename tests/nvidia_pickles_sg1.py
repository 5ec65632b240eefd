"""StyleGAN (v1) ``(G, D, Gs)`` pickles in NVIDIA's exact layout, with random weights, without TF or NVIDIA's code.

What NVlabs/stylegan writes (``training/misc.py save_pkl``: ``pickle.dump((G, D, Gs), f, protocol=HIGHEST_PROTOCOL)``,
i.e. protocol 4 under the Python 3.6 it ran on): three ``dnnlib.tflib.network.Network`` objects whose
``__getstate__`` is ``{version: 3, name, static_kwargs, components, build_module_src, build_func_name, variables}``
(version 4 when re-saved by the StyleGAN2 code, same keys; version 2 has no ``components``). ``variables`` is the
list of ``(local name, value)`` in TF creation order, values as ``session.run`` returns them (float32 arrays; the
0-d ``lod`` as a numpy scalar). ``G``/``Gs`` are built by ``G_style`` with components ``synthesis`` (built first)
and ``mapping``; ``D`` by ``D_basic``. The template graph that names the variables uses the 'linear' structure, so
every ``ToRGB_lod{k}`` / ``FromRGB_lod{k}`` exists.

Static kwargs: train.py builds ``G = Network('G', num_channels, resolution, label_size, **G_args)`` and ``Gs =
G.clone('Gs')``; ``G_style`` hands its ``**kwargs`` (everything but its own named arguments) to both components, and
``dlatent_broadcast=num_layers`` to the mapping. Variable names and shapes follow ``training/networks_stylegan.py``
(``nf(stage) = min(int(fmap_base / 2**(stage*fmap_decay)), fmap_max)``); written here independently of
``converters.sg1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import nvidia_pickles as nv

#: A stand-in for the module source NVIDIA stores (``inspect.getsource(networks_stylegan)``); never executed.
BUILD_MODULE_SRC = (
    '"""Network architectures used in the StyleGAN paper (stand-in text; a loader must never '
    'execute it)."""\nimport numpy as np\nimport tensorflow as tf\nimport dnnlib\n'
)
G_STYLE_KWARGS = (
    "truncation_psi",
    "truncation_cutoff",
    "truncation_psi_val",
    "truncation_cutoff_val",
    "dlatent_avg_beta",
    "style_mixing_prob",
    "is_training",
    "is_validation",
    "is_template_graph",
)


def static_kwargs(resolution: int, **g_args: Any) -> dict:
    """``G``'s static kwargs as NVIDIA's training loop sets them: the dataset's three, then ``G_args``."""
    return {"num_channels": 3, "resolution": resolution, "label_size": 0, **g_args}


def _kw(static: dict, key: str, default: Any) -> Any:
    return static.get(key, default)


def _nf(static: dict, stage: int) -> int:
    base, decay, fmax = _kw(static, "fmap_base", 8192), _kw(static, "fmap_decay", 1.0), _kw(static, "fmap_max", 512)
    return min(int(base / (2.0 ** (stage * decay))), fmax)


def generator_variables(static: dict, seed: int = 0) -> dict[str, list[tuple[str, Any]]]:
    """Random variables of a ``G_style`` with these kwargs, per network, in TF creation order, at realistic scales
    (equalized-lr weights ~N(0, 1/lrmul); biases, noise strengths and style biases non-zero)."""
    rng = np.random.default_rng(seed)

    def r(*shape: int, std: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    R = static["resolution"]
    lg_R = int(math.log2(R))
    num_layers = 2 * lg_R - 2
    w_dim = _kw(static, "dlatent_size", 512)
    channels = static["num_channels"]
    use_noise = _kw(static, "use_noise", True)

    synthesis: list[tuple[str, Any]] = [("lod", np.float32(0.0))]
    if use_noise:
        for i in range(num_layers):
            res = 2 ** (i // 2 + 2)
            synthesis.append((f"noise{i}", r(1, 1, res, res)))

    def epilogue(scope: str, c: int) -> list:
        v = [(f"{scope}/Noise/weight", r(c, std=0.3))] if use_noise else []
        return v + [
            (f"{scope}/bias", r(c, std=0.2)),
            (f"{scope}/StyleMod/weight", r(w_dim, 2 * c)),
            (f"{scope}/StyleMod/bias", r(2 * c, std=0.2)),
        ]

    def torgb(lod: int, c: int) -> list:
        return [(f"ToRGB_lod{lod}/weight", r(1, 1, c, channels)), (f"ToRGB_lod{lod}/bias", r(channels, std=0.1))]

    c1 = _nf(static, 1)
    synthesis.append(("4x4/Const/const", r(1, c1, 4, 4)))
    synthesis += epilogue("4x4/Const", c1)
    synthesis.append(("4x4/Conv/weight", r(3, 3, c1, c1)))
    synthesis += epilogue("4x4/Conv", c1)
    synthesis += torgb(lg_R - 2, c1)
    for lg in range(3, lg_R + 1):
        s, cin, cout = f"{2**lg}x{2**lg}", _nf(static, lg - 2), _nf(static, lg - 1)
        synthesis.append((f"{s}/Conv0_up/weight", r(3, 3, cin, cout)))
        synthesis += epilogue(f"{s}/Conv0_up", cout)
        synthesis.append((f"{s}/Conv1/weight", r(3, 3, cout, cout)))
        synthesis += epilogue(f"{s}/Conv1", cout)
        synthesis += torgb(lg_R - lg, cout)

    mapping: list[tuple[str, Any]] = []
    n = _kw(static, "mapping_layers", 8)
    lrmul = _kw(static, "mapping_lrmul", 0.01)
    latent, labels = _kw(static, "latent_size", 512), static.get("label_size", 0)
    if labels:  # G_mapping: LabelConcat/weight [label_size, latent_size], random_normal, before the dense layers
        mapping.append(("LabelConcat/weight", r(labels, latent)))
    fan = [latent * (2 if labels else 1)] + [_kw(static, "mapping_fmaps", 512)] * (n - 1) + [w_dim] * (n > 0)
    for i in range(n):
        mapping += [
            (f"Dense{i}/weight", r(fan[i], fan[i + 1], std=1.0 / lrmul)),
            (f"Dense{i}/bias", r(fan[i + 1], std=0.1 / lrmul)),
        ]
    return {
        "G": [("lod", np.float32(0.0)), ("dlatent_avg", r(w_dim, std=0.3))],
        "mapping": mapping,
        "synthesis": synthesis,
    }


def flat_variables(variables: dict[str, list]) -> dict[str, np.ndarray]:
    """``{'dlatent_avg': ..., 'mapping/Dense0/weight': ..., 'synthesis/4x4/Const/const': ...}`` (float arrays)."""
    out = {name: np.asarray(v) for name, v in variables["G"]}
    for comp in ("mapping", "synthesis"):
        out.update({f"{comp}/{name}": np.asarray(v) for name, v in variables[comp]})
    return out


def network_state(
    name: str,
    func: str,
    static: dict,
    variables: list,
    components: dict | None = None,
    version: int = 3,
    module_src: str = BUILD_MODULE_SRC,
) -> dict:
    """``Network.__getstate__()`` of NVlabs/stylegan (v3), StyleGAN2 (v4, same keys) or the older v2 (no
    components)."""
    state: dict[str, Any] = {"version": version, "name": name, "static_kwargs": dict(static)}
    if version >= 3:
        state["components"] = dict(components or {})
    state["build_module_src"] = module_src
    state["build_func_name"] = func
    state["variables"] = list(variables)
    return state


def generator(
    static: dict, variables: dict[str, list], name: str = "Gs", version: int = 3, module_src: str = BUILD_MODULE_SRC
) -> nv.TFNetwork:
    num_layers = 2 * int(math.log2(static["resolution"])) - 2
    sub = {k: v for k, v in static.items() if k not in G_STYLE_KWARGS}
    synthesis = nv.TFNetwork(
        network_state("G_synthesis", "G_synthesis", sub, variables["synthesis"], version=version, module_src=module_src)
    )
    mapping = nv.TFNetwork(
        network_state(
            "G_mapping",
            "G_mapping",
            {**sub, "dlatent_broadcast": num_layers},
            variables["mapping"],
            version=version,
            module_src=module_src,
        )
    )
    return nv.TFNetwork(
        network_state(
            name, "G_style", static, variables["G"], {"synthesis": synthesis, "mapping": mapping}, version, module_src
        )
    )


def discriminator(static: dict, seed: int = 1, version: int = 3) -> nv.TFNetwork:
    """``D_basic`` with its real variable names (linear-structure creation order) and random weights."""
    rng = np.random.default_rng(seed)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    kw = {
        k: v
        for k, v in static.items()
        if k in ("num_channels", "resolution", "label_size", "fmap_base", "fmap_decay", "fmap_max")
    }
    lg_R = int(math.log2(static["resolution"]))
    ch = static["num_channels"]
    v: list[tuple[str, Any]] = [("lod", np.float32(0.0))]

    def fromrgb(res_lg: int) -> list:
        lod, c = lg_R - res_lg, _nf(kw, res_lg - 1)
        return [(f"FromRGB_lod{lod}/weight", r(1, 1, ch, c)), (f"FromRGB_lod{lod}/bias", r(c))]

    v += fromrgb(lg_R)
    for lg in range(lg_R, 2, -1):
        s = f"{2**lg}x{2**lg}"
        c0, c1 = _nf(kw, lg - 1), _nf(kw, lg - 2)
        v += [
            (f"{s}/Conv0/weight", r(3, 3, c0, c0)),
            (f"{s}/Conv0/bias", r(c0)),
            (f"{s}/Conv1_down/weight", r(3, 3, c0, c1)),
            (f"{s}/Conv1_down/bias", r(c1)),
        ]
        v += fromrgb(lg - 1)
    c1, c0 = _nf(kw, 1), _nf(kw, 0)
    out = max(kw.get("label_size", 0), 1)  # D_basic scores every label (conditional networks)
    v += [
        ("4x4/Conv/weight", r(3, 3, c1 + 1, c1)),
        ("4x4/Conv/bias", r(c1)),
        ("4x4/Dense0/weight", r(c1 * 16, c0)),
        ("4x4/Dense0/bias", r(c0)),
        ("4x4/Dense1/weight", r(c0, out)),
        ("4x4/Dense1/bias", r(out)),
    ]
    return nv.TFNetwork(network_state("D", "D_basic", kw, v, {}, version))


def raw_variables(variables: dict[str, list]) -> dict[str, list]:
    """``G`` (the raw, non-averaged generator) with other values than ``Gs``, so a converter that picks the wrong
    network is caught (``lod`` stays 0)."""
    return {
        comp: [(n, v if n == "lod" else -np.asarray(v) * np.float32(1.5)) for n, v in items]
        for comp, items in variables.items()
    }


def pickle_bytes(
    static: dict, variables: dict[str, list], *, version: int = 3, protocol: int = 4, module_src: str = BUILD_MODULE_SRC
) -> bytes:
    """``pickle.dump((G, D, Gs))`` as NVlabs/stylegan writes it."""
    G = generator(static, raw_variables(variables), "G", version, module_src)
    D = discriminator(static, version=version)
    Gs = generator(static, variables, "Gs", version, module_src)
    return nv.dumps((G, D, Gs), protocol=protocol)


#: Small configs for tests: (static kwargs, fused up-conv expected at 128 px).
SMALL = {
    "32": static_kwargs(
        32, fmap_base=128, fmap_max=16, latent_size=16, dlatent_size=16, mapping_layers=3, mapping_fmaps=24
    ),
    "64": static_kwargs(
        64,
        fmap_base=96,
        fmap_max=16,
        fmap_decay=0.9,
        latent_size=12,
        dlatent_size=10,
        mapping_layers=2,
        mapping_fmaps=16,
        truncation_psi=0.5,
        truncation_cutoff=4,
    ),
    "128-fused": static_kwargs(
        128, fmap_base=128, fmap_max=8, latent_size=8, dlatent_size=8, mapping_layers=2, mapping_fmaps=8
    ),
}

#: A conditional network (``label_size`` > 0: G_mapping's LabelConcat), as train.py builds one for a labelled
#: dataset (the dataset's label_size reaches every network's kwargs).
CONDITIONAL = {
    **static_kwargs(
        32, fmap_base=128, fmap_max=16, latent_size=12, dlatent_size=10, mapping_layers=2, mapping_fmaps=14
    ),
    "label_size": 5,
}
