"""The user-facing StyleGAN2 / StyleGAN3 generator API and the :class:`~lsd_jax.style.Style` adapter.

::

    gen = load_generator("network-snapshot.pkl")          # or Generator.from_state(config, state)
    ws = gen.mapping(z, c, truncation_psi=0.7)            # (N, num_ws, w_dim)
    img = gen.synthesis(ws, noise_mode="const")           # (N, R, R, 3) float32, about [-1, 1]
    img = gen(z, c, truncation_psi=0.7)

    # functional forms, params explicit (jit-friendly; config may be the dict or the hashable SG2Spec)
    img = generate_fn(gen.params, gen.config, z, c, truncation_psi=0.7)

    # StyleGAN3 (config["family"] == "stylegan3"): the same API; noise_mode is accepted and ignored, and a
    # per-sample (N, 3, 3) ``transform`` (see stylegan3_transform) may replace the stored input transform
    img = gen(z, c, transform=stylegan3_transform(angle, tx, ty))

The methods and functional forms dispatch to module-level ``jax.jit`` functions with the network spec static and
the params a traced argument, so they compile once per (spec, shapes, noise_mode, truncation_cutoff) and can also
be called inside an outer ``jit``. ``truncation_psi`` is traced (changing it never recompiles). A
:class:`Generator` is itself a pytree (params are the leaves), so it can be passed through ``jit`` too.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import stylegan2 as sg2
from . import stylegan3 as sg3
from .style import Style

Array = jax.Array
Spec = sg2.SG2Spec | sg3.SG3Spec
FAMILIES = ("stylegan2", "stylegan3")


def _freeze(obj: Any) -> Any:
    """A hashable copy of a JSON-like config (dicts → sorted item tuples tagged 'd', lists → tuples tagged 'l')."""
    if isinstance(obj, dict):
        return ("d", tuple(sorted((str(k), _freeze(v)) for k, v in obj.items())))
    if isinstance(obj, (list, tuple)):
        return ("l", tuple(_freeze(v) for v in obj))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _thaw(obj: Any) -> Any:
    if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "d":
        return {k: _thaw(v) for k, v in obj[1]}
    if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "l":
        return [_thaw(v) for v in obj[1]]
    return obj


# ---------------------------------------------------------------------------------------------------------------
# Jitted functional forms
# ---------------------------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("spec", "truncation_cutoff"))
def _mapping_jit(params, spec, z, c, truncation_psi, truncation_cutoff):
    return sg2.mapping(params, spec, z, c, truncation_psi, truncation_cutoff)


@functools.partial(jax.jit, static_argnames=("spec", "noise_mode"))
def _synthesis_jit(params, spec, ws, noise_mode, key):
    return sg2.synthesis(params, spec, ws, noise_mode, key)


@functools.partial(jax.jit, static_argnames=("spec", "truncation_cutoff", "noise_mode"))
def _generate_jit(params, spec, z, c, truncation_psi, truncation_cutoff, noise_mode, key):
    return sg2.generate(params, spec, z, c, truncation_psi, truncation_cutoff, noise_mode, key)


@functools.partial(jax.jit, static_argnames=("spec", "truncation_cutoff"))
def _sg3_mapping_jit(params, spec, z, c, truncation_psi, truncation_cutoff):
    return sg3.mapping(params, spec, z, c, truncation_psi, truncation_cutoff)


@functools.partial(jax.jit, static_argnames=("spec",))
def _sg3_synthesis_jit(params, spec, ws, transform):
    return sg3.synthesis(params, spec, ws, transform)


@functools.partial(jax.jit, static_argnames=("spec", "truncation_cutoff"))
def _sg3_generate_jit(params, spec, z, c, truncation_psi, truncation_cutoff, transform):
    return sg3.generate(params, spec, z, c, truncation_psi, truncation_cutoff, transform)


def spec_from_config(config: dict | Spec) -> Spec:
    """The hashable spec of a config dict of either family (``config["family"]``, default "stylegan2")."""
    if isinstance(config, (sg2.SG2Spec, sg3.SG3Spec)):
        return config
    family = config.get("family", "stylegan2")
    if family == "stylegan3":
        return sg3.spec_from_config(config)
    return sg2.spec_from_config(config)


def stylegan3_transform(angle: Any = 0.0, tx: Any = 0.0, ty: Any = 0.0) -> Array:
    """A per-sample StyleGAN3 input transform (N, 3, 3): rotate the image by ``angle`` radians (positive =
    counter-clockwise as displayed) about its centre, then translate it by ``(tx, ty)`` image widths/heights
    (x right, y down). The arguments broadcast (scalars or (N,) arrays, traced or not); see
    :func:`lsd_jax.stylegan3.transform_matrix`."""
    return sg3.transform_matrix(angle, tx, ty)


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in sg2.NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {sg2.NOISE_MODES}, got {noise_mode!r}")


def _transform(spec: Spec, transform: Any, params: Any = None, n: int | None = None) -> Array | None:
    """Validate a transform; for StyleGAN3 with ``n`` known, return it (or the stored buffer when None) broadcast
    to (n, 3, 3), so that every call with the same batch size shares one compiled program."""
    if not isinstance(spec, sg3.SG3Spec):
        if transform is not None:
            raise ValueError("transform is only supported by StyleGAN3 generators")
        return None
    if transform is None:
        if n is None:
            return None
        transform = params["synthesis"]["input"]["transform"]
    t = jnp.asarray(transform, jnp.float32)
    if t.shape == (3, 3):
        t = t[None]
    if t.ndim != 3 or t.shape[1:] != (3, 3) or (n is not None and t.shape[0] not in (1, n)):
        raise ValueError(f"transform must have shape (3, 3), (1, 3, 3) or (N, 3, 3), got {t.shape}")
    return t if n is None else jnp.broadcast_to(t, (n, 3, 3))


def _batch(spec: Spec, z: Any, c: Any) -> int | None:
    x = z if spec.z_dim > 0 else c
    return None if x is None else int(np.shape(x)[0])


def _psi(truncation_psi: Any) -> Array:
    return jnp.asarray(truncation_psi, jnp.float32)


def _cutoff(truncation_cutoff: Any) -> int | None:
    return None if truncation_cutoff is None else int(truncation_cutoff)


def _c(spec: Spec, c: Any) -> Array | None:
    return c if spec.c_dim > 0 else None


def mapping_fn(params: dict, config: dict | Spec, z: Array, c: Array | None = None,
               truncation_psi: float | Array = 1.0, truncation_cutoff: int | None = None) -> Array:
    """Jitted mapping with params explicit: → ws (N, num_ws, w_dim)."""
    spec = spec_from_config(config)
    jitted = _sg3_mapping_jit if isinstance(spec, sg3.SG3Spec) else _mapping_jit
    return jitted(params, spec, z, _c(spec, c), _psi(truncation_psi), _cutoff(truncation_cutoff))


def synthesis_fn(params: dict, config: dict | Spec, ws: Array, noise_mode: str = "const",
                 key: Array | None = None, transform: Array | None = None) -> Array:
    """Jitted synthesis with params explicit: ws → images (N, R, R, 3) float32. StyleGAN3: ``noise_mode`` and
    ``key`` are ignored (it has no noise inputs) and ``transform`` (N, 3, 3) may replace the input transform."""
    spec = spec_from_config(config)
    _check_noise_mode(noise_mode)
    if isinstance(spec, sg3.SG3Spec):
        return _sg3_synthesis_jit(params, spec, ws, _transform(spec, transform, params, int(np.shape(ws)[0])))
    _transform(spec, transform)
    if noise_mode != "random":
        key = None
    elif key is None:
        raise ValueError('noise_mode="random" needs a PRNG key')
    return _synthesis_jit(params, spec, ws, noise_mode, key)


def generate_fn(params: dict, config: dict | Spec, z: Array, c: Array | None = None,
                truncation_psi: float | Array = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "const", key: Array | None = None, transform: Array | None = None) -> Array:
    """Jitted mapping + synthesis with params explicit: z → images (N, R, R, 3) float32 (see
    :func:`synthesis_fn` for StyleGAN3's ``transform``)."""
    spec = spec_from_config(config)
    _check_noise_mode(noise_mode)
    if isinstance(spec, sg3.SG3Spec):
        cc = _c(spec, c)
        return _sg3_generate_jit(params, spec, z, cc, _psi(truncation_psi), _cutoff(truncation_cutoff),
                                 _transform(spec, transform, params, _batch(spec, z, cc)))
    _transform(spec, transform)
    if noise_mode != "random":
        key = None
    elif key is None:
        raise ValueError('noise_mode="random" needs a PRNG key')
    return _generate_jit(params, spec, z, _c(spec, c), _psi(truncation_psi), _cutoff(truncation_cutoff),
                         noise_mode, key)


# ---------------------------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------------------------


@jax.tree_util.register_pytree_node_class
class Generator:
    """A StyleGAN2(-ADA) or StyleGAN3 generator: a hashable spec + config (static) and a params pytree (the
    leaves). ``family`` is "stylegan2" or "stylegan3"."""

    def __init__(self, config: dict, params: dict, spec: Spec | None = None):
        self.config = config
        self.params = params
        self.spec = spec if spec is not None else spec_from_config(config)
        self.family = "stylegan3" if isinstance(self.spec, sg3.SG3Spec) else "stylegan2"
        self.z_dim = self.spec.z_dim
        self.c_dim = self.spec.c_dim
        self.w_dim = self.spec.w_dim
        self.num_ws = self.spec.num_ws
        self.img_resolution = self.spec.img_resolution

    @classmethod
    def from_state(cls, config: dict, state: dict[str, np.ndarray]) -> Generator:
        """Build from a converted model: the config dict and the torch-layout ``G_ema`` state dict."""
        spec = spec_from_config(config)
        module = sg3 if isinstance(spec, sg3.SG3Spec) else sg2
        params = jax.device_put(module.prepare_params(spec, state))
        return cls(config, params, spec)

    # pytree protocol: params are children; config/spec are static
    def tree_flatten(self):
        return (self.params,), (self.spec, _freeze(self.config))

    @classmethod
    def tree_unflatten(cls, aux, children):
        spec, frozen = aux
        return cls(_thaw(frozen), children[0], spec)

    def __repr__(self) -> str:
        kind = f"config-{self.spec.kind}" if self.family == "stylegan3" else self.spec.architecture
        return (f"Generator({self.family} {kind}, {self.img_resolution}x{self.img_resolution}, "
                f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws})")

    def mapping(self, z: Array, c: Array | None = None, truncation_psi: float | Array = 1.0,
                truncation_cutoff: int | None = None) -> Array:
        return mapping_fn(self.params, self.spec, z, c, truncation_psi, truncation_cutoff)

    def synthesis(self, ws: Array, noise_mode: str = "const", key: Array | None = None,
                  transform: Array | None = None) -> Array:
        return synthesis_fn(self.params, self.spec, ws, noise_mode, key, transform)

    def __call__(self, z: Array, c: Array | None = None, truncation_psi: float | Array = 1.0,
                 truncation_cutoff: int | None = None, noise_mode: str = "const",
                 key: Array | None = None, transform: Array | None = None) -> Array:
        return generate_fn(self.params, self.spec, z, c, truncation_psi, truncation_cutoff, noise_mode, key,
                           transform)


def load_generator(path: Any) -> Generator:
    """Load an NVIDIA StyleGAN2(-ADA) or StyleGAN3 pickle (via ``converters.load_pickle``) as a
    :class:`Generator`."""
    from converters import load_pickle  # lazily: the converters package is heavy and optional here

    from .errors import StyleError, from_converter

    with from_converter():
        config, state = load_pickle(path)
    family = config.get("family", "stylegan2")
    if family not in FAMILIES:
        raise StyleError(f"{path}: a {family} generator is not supported by lsd_jax.generator")
    try:
        return Generator.from_state(config, state)
    except (KeyError, ValueError) as e:
        raise StyleError(f"{path}: cannot build a {family} generator from this model: {e}") from e


# ---------------------------------------------------------------------------------------------------------------
# Style adapter
# ---------------------------------------------------------------------------------------------------------------


def _mix32(h: Array) -> Array:
    """A 32-bit integer finaliser (xorshift-multiply) on uint32 arrays."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x7FEB352D)
    h = h ^ (h >> 15)
    h = h * jnp.uint32(0x846CA68B)
    return h ^ (h >> 16)


def latent_noise_keys(z: Array, c: Array | None = None, seed: int = 0) -> Array:
    """One PRNG key per row, a pure function of that row's z (and c) bits: (N,) typed keys."""
    z = jnp.asarray(z, jnp.float32)
    rows = [z] if c is None or c.shape[-1] == 0 else [z, jnp.asarray(c, jnp.float32)]
    x = jnp.concatenate(rows, axis=1) if len(rows) > 1 else rows[0]
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    mult = np.random.default_rng(0x15D).integers(1, 2 ** 32, size=x.shape[1], dtype=np.uint64)
    mult = jnp.asarray((mult | 1).astype(np.uint32))
    h = _mix32(jnp.sum(_mix32(bits) * mult, axis=1, dtype=jnp.uint32))
    base = jax.random.key(seed)
    return jax.vmap(lambda v: jax.random.fold_in(base, v))(h)


# On CPU, StyleGAN's high-resolution layers fall out of cache at larger batches: measured by
# `python -m lsd_jax.bench`, batch 1 is fastest at 256x256, so the pixel budget is 256*256.
CPU_BATCH_PIXELS = 256 * 256


def stylegan_style(gen: Generator, *, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                   noise_mode: str = "const", name: str | None = None) -> Style:
    """Wrap a :class:`Generator` as a :class:`Style`: ``apply(variables, z, c, size)`` returns native-size images
    (``size`` is ignored) and ``variables`` is the params pytree. With ``noise_mode="random"`` each sample's noise
    is drawn from a key hashed from its own z (and c), so ``apply`` stays a pure function of its inputs.

    StyleGAN3: ``noise_mode`` is accepted and ignored, and ``info["apply_transform"]`` is
    ``fn(variables, z, c, size, transform)`` with a per-sample (N, 3, 3) ``transform`` (see
    :func:`stylegan3_transform`; it may be traced) replacing the model's stored input transform."""
    _check_noise_mode(noise_mode)
    spec = gen.spec
    cutoff = _cutoff(truncation_cutoff)
    psi = float(truncation_psi)
    if isinstance(spec, sg3.SG3Spec):
        return _stylegan3_style(gen, spec, psi, cutoff, noise_mode, name or "stylegan3")
    name = name or "stylegan2"

    def apply(variables: Any, z: Array, c: Array, size: tuple[int, int]) -> Array:
        cc = c if spec.c_dim > 0 else None
        key = latent_noise_keys(z, cc) if noise_mode == "random" else None
        return _generate_jit(variables, spec, z, cc, _psi(psi), cutoff, noise_mode, key)

    res = spec.img_resolution
    return Style(name=name, z_dim=spec.z_dim, c_dim=spec.c_dim, apply=apply, variables=gen.params,
                 native_size=(res, res),
                 info={"family": "stylegan2", "architecture": spec.architecture, "num_ws": spec.num_ws,
                       "w_dim": spec.w_dim, "truncation_psi": psi, "truncation_cutoff": cutoff,
                       "noise_mode": noise_mode, "cpu_batch_pixels": CPU_BATCH_PIXELS, "generator": gen})


def _stylegan3_style(gen: Generator, spec: sg3.SG3Spec, psi: float, cutoff: int | None, noise_mode: str,
                     name: str) -> Style:
    def apply(variables: Any, z: Array, c: Array, size: tuple[int, int]) -> Array:
        return _sg3_generate_jit(variables, spec, z, _c(spec, c), _psi(psi), cutoff, None)

    def apply_transform(variables: Any, z: Array, c: Array, size: tuple[int, int], transform: Array) -> Array:
        cc = _c(spec, c)
        return _sg3_generate_jit(variables, spec, z, cc, _psi(psi), cutoff,
                                 _transform(spec, transform, variables, _batch(spec, z, cc)))

    res = spec.img_resolution
    return Style(name=name, z_dim=spec.z_dim, c_dim=spec.c_dim, apply=apply, variables=gen.params,
                 native_size=(res, res),
                 info={"family": "stylegan3", "config": spec.kind, "num_ws": spec.num_ws, "w_dim": spec.w_dim,
                       "truncation_psi": psi, "truncation_cutoff": cutoff, "noise_mode": noise_mode,
                       "apply_transform": apply_transform, "cpu_batch_pixels": CPU_BATCH_PIXELS,
                       "generator": gen})
