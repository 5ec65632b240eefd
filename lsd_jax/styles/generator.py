"""The user-facing generator API over the NNX models (:mod:`lsd_jax.models`), and the StyleGAN :class:`Style`.

::

    gen = load_generator("network-snapshot.pkl")          # or .safetensors; or Generator.from_state(config, state)
    ws = gen.mapping(z, c, truncation_psi=0.7)            # (N, num_ws, w_dim)
    img = gen.synthesis(ws, noise_mode="const")           # (N, R, R, 3) float32, about [-1, 1]
    img = gen(z, c, truncation_psi=0.7)

    # the NNX module: find and edit a layer (paths are NVIDIA's torch state_dict() keys)
    gen.module.synthesis.b8.conv0.weight[...] *= 0.5      # later calls see the edit

    # functional forms (jit-friendly): graphdef static, state a pytree
    graphdef, state = gen.split()
    img = generate_fn(graphdef, state, z, c, truncation_psi=0.7)

    # StyleGAN3 (config["family"] == "stylegan3"): the same API; noise_mode is accepted and ignored, and a
    # per-sample (N, 3, 3) ``transform`` (see stylegan3_transform) may replace the stored input transform
    img = gen(z, c, transform=stylegan3_transform(angle, tx, ty))

    # StyleGAN 1 (config["family"] == "stylegan1", NVlabs/stylegan pickles): the same API (conditional ones,
    # label_size > 0, take c like StyleGAN2's); paths are NVIDIA's TF variable names
    # (getattr(gen.module.synthesis, "8x8").Conv1.weight)

    # BigGAN-deep (a pytorch-pretrained-biggan folder: config.json + pytorch_model.bin): a BigGANGenerator
    gen = load_generator("biggan-deep-256/")              # or the .bin with its config.json beside it
    z = gen.truncated_noise(4, truncation=0.5, seed=0)    # (4, 128): BigGAN's truncated_noise_sample
    img = gen(z, one_hot(["goldfish"] * 4), truncation_psi=0.5)  # lsd_jax.models.imagenet.one_hot; (4, 256, 256, 3)

The methods dispatch to module-level ``jax.jit`` functions with the graphdef static and the state a traced
argument, so they compile once per (network, shapes, noise_mode) and can be called inside an outer ``jit``;
``truncation_psi`` and ``truncation_cutoff`` are traced (changing them never recompiles).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..models import stylegan1 as sg1
from ..models import stylegan2 as sg2
from ..models import stylegan3 as sg3
from ..models.ops import noise_mode_index, truncation_args
from .style import Style

Array = jax.Array
FAMILIES = {"stylegan1": sg1, "stylegan2": sg2, "stylegan3": sg3}


def stylegan3_transform(angle: Any = 0.0, tx: Any = 0.0, ty: Any = 0.0) -> Array:
    """A per-sample StyleGAN3 input transform (N, 3, 3): rotate the image by ``angle`` radians (positive =
    counter-clockwise as displayed) about its centre, then translate it by ``(tx, ty)`` image widths/heights
    (x right, y down). The arguments broadcast (scalars or (N,) arrays, traced or not); see
    :func:`lsd_jax.models.stylegan3.transform_matrix`."""
    return sg3.transform_matrix(angle, tx, ty)


def build_model(config: dict, state: dict[str, Any]) -> nnx.Module:
    """The NNX module of ``config``'s family holding ``state`` (``KeyError``/``ValueError`` on a bad state)."""
    family = config.get("family", "stylegan2")
    if family not in FAMILIES:
        raise ValueError(f"a {family} generator is not supported")
    return FAMILIES[family].from_state(config, state)


# ---------------------------------------------------------------------------------------------------------------
# Jitted functional forms
# ---------------------------------------------------------------------------------------------------------------


# Through the w-space model protocol (map_latents / synthesize), so every family runs the same code.
@functools.partial(jax.jit, static_argnames=("graphdef",))
def _mapping_jit(graphdef, state, z, c, psi, cutoff):
    return nnx.merge(graphdef, state).map_latents(z, c, psi, cutoff)


@functools.partial(jax.jit, static_argnames=("graphdef", "noise_mode", "size", "widen_mode", "frame_layer"))
def _synthesis_jit(
    graphdef, state, ws, noise_mode, key, transform, noise_gain, size=None, widen_mode="reflect", frame_layer=4
):
    kw = {} if size is None else {"size": size, "widen_mode": widen_mode}
    if size is not None and frame_layer != 4:  # StyleGAN 2/1 only
        kw["frame_layer"] = frame_layer
    return nnx.merge(graphdef, state).synthesize(
        ws, noise_mode=noise_mode, key=key, transform=transform, noise_gain=noise_gain, **kw
    )


@functools.partial(jax.jit, static_argnames=("graphdef", "noise_mode"))
def _generate_jit(graphdef, state, z, c, psi, cutoff, noise_mode, key, transform, noise_gain):
    model = nnx.merge(graphdef, state)
    ws = model.map_latents(z, c, psi, cutoff)
    return model.synthesize(ws, noise_mode=noise_mode, key=key, transform=transform, noise_gain=noise_gain)


def _args(model: Any, noise_mode: str, key: Any, transform: Any, n: int | None) -> tuple[str, Any, Any]:
    """Validated (noise_mode, key, transform) for the jitted forms; StyleGAN3 ignores noise, and its transform
    defaults to the stored buffer broadcast to the batch (so every call with a batch size shares one program)."""
    noise_mode_index(noise_mode)
    if model.supports_transform:
        if transform is None:
            if n is None:
                return "const", None, None
            transform = model.synthesis.input.transform[...]
        t = jnp.asarray(transform, jnp.float32)
        if t.shape == (3, 3):
            t = t[None]
        if t.ndim != 3 or t.shape[1:] != (3, 3) or (n is not None and t.shape[0] not in (1, n)):
            raise ValueError(f"transform must have shape (3, 3), (1, 3, 3) or (N, 3, 3), got {t.shape}")
        return "const", None, (t if n is None else jnp.broadcast_to(t, (n, 3, 3)))
    if transform is not None:
        raise ValueError("transform is only supported by StyleGAN3 generators")
    if noise_mode != "random":
        return noise_mode, None, None
    if key is None:
        raise ValueError('noise_mode="random" needs a PRNG key')
    return noise_mode, key, None


def _c(model: Any, c: Any) -> Any:
    return c if model.spec.c_dim > 0 else None


def _batch(model: Any, z: Any, c: Any) -> int | None:
    x = z if model.spec.z_dim > 0 else c
    return None if x is None else int(np.shape(x)[0])


def mapping_fn(
    graphdef: Any,
    state: Any,
    z: Array,
    c: Array | None = None,
    truncation_psi: float | Array = 1.0,
    truncation_cutoff: int | Array | None = None,
) -> Array:
    """Jitted mapping with the state explicit: → ws (N, num_ws, w_dim)."""
    spec = nnx.merge(graphdef, state).spec
    psi, cutoff = truncation_args(spec.num_ws, truncation_psi, truncation_cutoff)
    return _mapping_jit(graphdef, state, z, c if spec.c_dim > 0 else None, psi, cutoff)


def synthesis_fn(
    graphdef: Any,
    state: Any,
    ws: Array,
    noise_mode: str = "const",
    key: Array | None = None,
    transform: Array | None = None,
    noise_gain: Array | None = None,
    size: tuple[int, int] | None = None,
    widen_mode: str = "reflect",
    frame_layer: int = 4,
) -> Array:
    """Jitted synthesis with the state explicit: ws → images (N, R, R, 3) float32. StyleGAN3: ``noise_mode``,
    ``key`` and ``noise_gain`` are ignored (it has no noise inputs) and ``transform`` (N, 3, 3) may replace the
    input transform. ``noise_gain`` (N,): per-sample noise strength (traced; None = 1). ``size`` (H, W), in the
    generator's pixels: images (N, H, W, 3) made by the generator itself (StyleGAN3: a wider view of its canvas;
    StyleGAN 1/2: the 4×4 const widened by ``widen_mode``, one of ``reflect``, ``replicate``, ``circular``,
    ``stretch``; ``frame_layer``: the block from which the frame is wide, 4 the const)."""
    model = nnx.merge(graphdef, state)
    noise_mode, key, transform = _args(model, noise_mode, key, transform, int(np.shape(ws)[0]))
    size = None if size is None else (int(size[0]), int(size[1]))
    return _synthesis_jit(
        graphdef, state, ws, noise_mode, key, transform, noise_gain, size, widen_mode, int(frame_layer)
    )


def generate_fn(
    graphdef: Any,
    state: Any,
    z: Array,
    c: Array | None = None,
    truncation_psi: float | Array = 1.0,
    truncation_cutoff: int | Array | None = None,
    noise_mode: str = "const",
    key: Array | None = None,
    transform: Array | None = None,
    noise_gain: Array | None = None,
) -> Array:
    """Jitted mapping + synthesis with the state explicit: z → images (N, R, R, 3) float32 (arguments as
    :func:`mapping_fn` and :func:`synthesis_fn`)."""
    model = nnx.merge(graphdef, state)
    cc = _c(model, c)
    noise_mode, key, transform = _args(model, noise_mode, key, transform, _batch(model, z, cc))
    psi, cutoff = truncation_args(model.spec.num_ws, truncation_psi, truncation_cutoff)
    return _generate_jit(graphdef, state, z, cc, psi, cutoff, noise_mode, key, transform, noise_gain)


# ---------------------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------------------


class _ModuleGenerator:
    """What every generator wrapper shares: the NNX ``module``, its ``config`` and the split state."""

    def __init__(self, module: nnx.Module, config: dict):
        self.module = module
        self.config = config
        self.spec = module.spec

    def split(self) -> tuple[Any, dict]:
        """(graphdef, state as a plain dict of arrays) of the module as it is now."""
        graphdef, state = nnx.split(self.module)
        return graphdef, nnx.to_pure_dict(state)

    @property
    def state(self) -> dict:
        """The module's arrays as a nested plain dict (``state["synthesis"]["b4"]["const"]``)."""
        return self.split()[1]


class Generator(_ModuleGenerator):
    """A StyleGAN 1, StyleGAN2(-ADA) or StyleGAN3 generator: the NNX ``module`` (see :mod:`lsd_jax.models`) and
    its config. ``family`` is "stylegan1", "stylegan2" or "stylegan3"."""

    def __init__(self, module: nnx.Module, config: dict):
        super().__init__(module, config)
        self.family = module.family
        self.z_dim = self.spec.z_dim
        self.c_dim = self.spec.c_dim
        self.w_dim = self.spec.w_dim
        self.num_ws = self.spec.num_ws
        self.img_resolution = self.spec.img_resolution

    @classmethod
    def from_state(cls, config: dict, state: dict[str, np.ndarray]) -> Generator:
        """Build from a converted model: the config dict and the torch-layout ``G_ema`` state dict."""
        return cls(build_model(config, state), config)

    def __repr__(self) -> str:
        kind = {"stylegan3": lambda: f"config-{self.spec.kind}", "stylegan1": lambda: "G_style"}.get(
            self.family, lambda: self.spec.architecture
        )()
        return (
            f"Generator({self.family} {kind}, {self.img_resolution}x{self.img_resolution}, "
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws})"
        )

    # the jitted functional forms on this module's split state
    def mapping(
        self,
        z: Array,
        c: Array | None = None,
        truncation_psi: float | Array = 1.0,
        truncation_cutoff: int | Array | None = None,
    ) -> Array:
        return mapping_fn(*nnx.split(self.module), z, c, truncation_psi, truncation_cutoff)

    def synthesis(
        self,
        ws: Array,
        noise_mode: str = "const",
        key: Array | None = None,
        transform: Array | None = None,
        noise_gain: Array | None = None,
        size: tuple[int, int] | None = None,
        widen_mode: str = "reflect",
        frame_layer: int = 4,
    ) -> Array:
        """ws → images (N, R, R, 3), or (N, H, W, 3) for ``size`` (see :func:`synthesis_fn`)."""
        return synthesis_fn(
            *nnx.split(self.module), ws, noise_mode, key, transform, noise_gain, size, widen_mode, frame_layer
        )

    def __call__(
        self,
        z: Array,
        c: Array | None = None,
        truncation_psi: float | Array = 1.0,
        truncation_cutoff: int | Array | None = None,
        noise_mode: str = "const",
        key: Array | None = None,
        transform: Array | None = None,
        noise_gain: Array | None = None,
    ) -> Array:
        return generate_fn(
            *nnx.split(self.module), z, c, truncation_psi, truncation_cutoff, noise_mode, key, transform, noise_gain
        )


def load_generator(path: Any, *, isolated: bool = False) -> Generator | BigGANGenerator:
    """Load an NVIDIA StyleGAN 1, StyleGAN2(-ADA) or StyleGAN3 pickle (converted once and cached) or a converted
    ``.safetensors`` file (see :mod:`lsd_jax.store.weights`) as a :class:`Generator`; a BigGAN-deep checkpoint folder
    (or its ``.bin``) as a :class:`BigGANGenerator`. ``isolated``: convert a pickle in a separate, limited process
    (see :func:`lsd_jax.store.weights.load`)."""
    from ..errors import StyleError
    from ..store import weights

    config, state = weights.load(path, isolated=isolated)
    family = config.get("family", "stylegan2")
    if family == BIGGAN:
        return BigGANGenerator.from_state(config, state)
    if family not in FAMILIES:
        raise StyleError(f"{path}: a {family} generator is not supported by lsd_jax.styles.generator")
    try:
        return Generator.from_state(config, state)
    except (KeyError, ValueError) as e:
        raise StyleError(f"{path}: cannot build a {family} generator from this model: {e}") from e


# On CPU, StyleGAN's high-resolution layers fall out of cache at larger batches: measured by
# `python -m lsd_jax.bench`, batch 1 is fastest at 256x256, so the pixel budget is 256*256.
CPU_BATCH_PIXELS = 256 * 256


def stylegan_style(gen: Generator, *, name: str | None = None) -> Style:
    """Wrap a :class:`Generator` as a :class:`~lsd_jax.styles.style.Style` (its program is
    :class:`~lsd_jax.styles.program.StyleGANProgram`; truncation and noise mode are render settings, not part of it).
    The style holds a snapshot of the module's state: later edits to ``gen.module`` need a new style."""
    from .program import StyleGANProgram

    graphdef, state = gen.split()
    res = gen.img_resolution
    return Style(
        name=name or gen.family,
        z_dim=gen.z_dim,
        c_dim=gen.c_dim,
        program=StyleGANProgram(graphdef),
        variables={"model": state},
        native_size=(res, res),
        transform=gen.module.supports_transform,
        noise=gen.module.has_noise,
        w_control=True,
        generator=gen,
        cpu_batch_pixels=CPU_BATCH_PIXELS,
        description=repr(gen),
    )


# ---------------------------------------------------------------------------------------------------------------
# BigGAN-deep
# ---------------------------------------------------------------------------------------------------------------

BIGGAN = "biggan-deep"


class BigGANGenerator(_ModuleGenerator):
    """A BigGAN-deep generator (:mod:`lsd_jax.models.biggan`; paths are pytorch-pretrained-biggan's ``state_dict()``
    keys, e.g. ``gen.module.generator.layers[3].conv_1.weight``) and its config.

    ``gen(z, c, truncation_psi=1.0)`` → ``(N, R, R, 3)`` float32 in [-1, 1]: ``z`` ``(N, z_dim)`` (BigGAN samples it
    as ``truncation × truncnorm(-2, 2)``: :meth:`truncated_noise`), ``c`` ``(N, c_dim)`` a class mixture (one-hot or
    soft weights; :func:`lsd_jax.models.imagenet.one_hot`), ``truncation_psi`` the package's ``truncation`` argument in
    (0, 1]: it picks the batch-norm statistics (interpolated exactly as the package does, in float64 on the host;
    a traced value inside an outer ``jit`` gets the same rule in float32). It does not scale ``z``: pass noise
    sampled with the same truncation, as the package's users do. A new value never recompiles."""

    family = BIGGAN
    w_dim = 0
    num_ws = 0

    def __init__(self, module: nnx.Module, config: dict):
        super().__init__(module, config)
        self.z_dim = self.spec.z_dim
        self.c_dim = self.spec.num_classes
        self.img_resolution = self.spec.img_resolution

    @classmethod
    def from_state(cls, config: dict, state: dict[str, np.ndarray]) -> BigGANGenerator:
        """Build from a converted checkpoint (:func:`converters.biggan.parse_biggan`)."""
        from ..models import biggan

        return cls(biggan.from_state(config, state), config)

    def __repr__(self) -> str:
        return (
            f"BigGANGenerator(biggan-deep, {self.img_resolution}x{self.img_resolution}, z_dim={self.z_dim}, "
            f"c_dim={self.c_dim}, channel_width={self.spec.channel_width})"
        )

    def truncated_noise(self, n: int, truncation: float = 1.0, seed: int = 0) -> Array:
        """``(n, z_dim)`` BigGAN noise: ``truncation × truncnorm(-2, 2)`` (``truncated_noise_sample``)."""
        from ..models import biggan

        return biggan.truncated_noise(jax.random.key(seed), n, self.z_dim, truncation)

    def __call__(self, z: Array, c: Array, truncation_psi: float | Array = 1.0) -> Array:
        from ..errors import ParamError
        from ..models import biggan

        n = np.shape(z)[0] if np.ndim(z) == 2 else None
        if n is None or np.shape(z)[1] != self.z_dim:
            raise ParamError(f"z must have shape (N, {self.z_dim}), got {np.shape(z)}")
        if np.shape(c) != (n, self.c_dim):
            raise ParamError(
                f"c must be an (N, {self.c_dim}) class mixture matching z's N={n}, got shape "
                f"{np.shape(c)} (lsd_jax.models.imagenet.one_hot(['goldfish', ...]) makes one-hot rows)"
            )
        graphdef, state = nnx.split(self.module)
        stats_w = biggan.bn_stats_weights(truncation_psi, self.spec.n_stats)
        return biggan.generate(graphdef, state, z, c, stats_w)


@dataclass(frozen=True)
class BigGANSettings:
    """A BigGAN style's own render settings (:attr:`Style.settings_fn`): ``bn_stats_weights``, the batch-norm
    statistics weights of the parameters' ``truncation`` (the package's float64 rule)."""

    n_stats: int

    def __call__(self, params: Any) -> dict[str, np.ndarray]:
        from ..errors import ParamError
        from ..models import biggan

        psi = getattr(params, "truncation_psi", 1.0)
        if psi != 1.0:
            raise ParamError(
                f"truncation_psi ({psi:g}) is StyleGAN's w-space truncation; BigGAN has no w space: its "
                "truncation is `truncation` (it scales the noise and picks the batch-norm statistics)"
            )
        try:
            w = biggan.bn_stats_weights(params.truncation, self.n_stats)
        except ParamError as e:
            raise ParamError(f"BigGAN: {e}") from None
        return {"bn_stats_weights": np.asarray(w, np.float32)}


# On CPU, measured by `python -m lsd_jax.bench` (BigGAN-deep section): frames per step = this // pixels.
BIGGAN_CPU_BATCH_PIXELS = 256 * 256


def biggan_style(gen: BigGANGenerator, *, name: str | None = None) -> Style:
    """Wrap a :class:`BigGANGenerator` as a :class:`~lsd_jax.styles.style.Style` for :func:`lsd_jax.render`: per frame,
    ``z`` is Lucid Sonic Dreams' latent (``truncation × truncnorm(-2, 2)`` keyframes, drift bounded by
    ``±2·truncation``: BigGAN's own truncated sampling) and ``c`` its class mixture over the 1000 ImageNet classes
    (names accepted by ``classes=``); ``truncation`` also picks the batch-norm statistics, as the package's
    ``model(z, c, truncation)`` does. ``truncation_psi`` must stay 1 (BigGAN has no w space); ``noise_mode`` and
    ``truncation_cutoff`` do nothing."""
    from ..models.imagenet import NUM_CLASSES, class_index
    from .style import ModuleProgram

    graphdef, state = gen.split()
    res = gen.img_resolution
    return Style(
        name=name or BIGGAN,
        z_dim=gen.z_dim,
        c_dim=gen.c_dim,
        program=ModuleProgram(graphdef),
        variables={"model": state},
        native_size=(res, res),
        generator=gen,
        cpu_batch_pixels=BIGGAN_CPU_BATCH_PIXELS,
        description=repr(gen),
        settings_fn=BigGANSettings(gen.spec.n_stats),
        class_index=class_index if gen.c_dim == NUM_CLASSES else None,
    )
