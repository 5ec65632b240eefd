"""The generators as Flax NNX modules whose parameter paths mirror the original networks' names:
:mod:`.stylegan1`, :mod:`.stylegan2`, :mod:`.stylegan3` and :mod:`.biggan` (a ``frame_images`` model:
BigGAN-deep, its truncation's batch-norm weights a host-computed render setting), sharing :mod:`.ops`; and the
embedded default style's CPPN, :mod:`.cppn_forward` (pure functions of fixed weights: no module, no loader).

Conventions (every model follows them):

* the module tree's ``nnx.to_flat_state`` dotted paths are EXACTLY the original network's parameter and buffer
  names (StyleGAN2/3: torch ``state_dict()`` keys of ``G_ema``), holding the ORIGINAL values and layouts; gains
  are applied in the forward. Trainable tensors are ``nnx.Param``, buffers :class:`.ops.Buffer`; static
  hyperparameters (resolutions, channels, taps, clamps) are plain attributes (they live in the hashable graphdef);
* a model module file has ``abstract(config)`` (the module with shape-only variables, via ``nnx.eval_shape``) and
  ``from_state(config, flat_state)`` (filled with :func:`.ops.load_module`, which checks every name and shape);
* render settings are call arguments that may be traced arrays (truncation ψ, cutoff, noise mode, noise gain),
  so changing them never recompiles;
* an optional ``constants()`` returns weight-only subexpressions of the forward (e.g. HWIO kernels, demodulation
  sums) that the render step computes once per render and passes back as ``consts=`` (redoing them per batch
  costs ~20% at batch 1 on CPU); without them the forward computes them itself, so editing a weight always shows.

How to add a model (e.g. StyleGAN1, BigGAN):

1. ``converters/<name>.py``: bytes/file → ``(config dict, {original name: np.ndarray})``, pure parsing, plus an
   ``expected_shapes(config)`` (the weights loader checks safetensors headers against it before reading).
2. ``lsd_jax/models/<name>.py``: the NNX module with the paths above, ``abstract`` and ``from_state``, and the
   attributes ``family``, ``z_dim``, ``c_dim``, ``img_resolution``, ``has_noise``, ``supports_transform``.
3. Its step entry point: a w-space model (``map_latents(z, c, truncation_psi, truncation_cutoff) -> ws`` and
   ``synthesize(ws, *, noise_mode, key, noise_gain, transform, consts, size, widen_mode) -> images``, plus
   ``w_dim``/``num_ws``; ``size`` (H, W) asks for a frame of that shape made by the network itself (its first
   feature map widened by ``widen_mode``, :data:`.ops.WIDEN_MODES`; StyleGAN3: its Fourier grid);
   whatever its submodules are called, e.g. TF names) is driven by :class:`lsd_jax.styles.program.StyleGANProgram`
   (keyframes, bands, noise reactivity for free); any other model (e.g. class-conditional BigGAN, whose
   truncation is in its sampling) implements
   ``frame_images(inputs, settings, *, size=None, widen_mode, consts=None) -> (B, h, w, 3)`` in about [-1, 1]
   (``size``: as for ``synthesize``; None: the native square), with ``inputs`` the
   per-frame arrays (``z`` (B, z_dim), ``c`` (B, c_dim), ...) and ``settings`` the render-setting arrays
   (``truncation_psi``, ``truncation_cutoff``, ``noise_mode``), and is driven by
   :class:`lsd_jax.styles.style.ModuleProgram`.
4. Register the family in :data:`lsd_jax.styles.generator.FAMILIES` (and its shapes in :mod:`lsd_jax.store.weights`); a
model
   whose user API differs (BigGAN-deep: ``gen(z, c, truncation_psi)``, no w space) gets its own generator class
   and style function there (:class:`lsd_jax.styles.generator.BigGANGenerator`,
   :func:`lsd_jax.styles.generator.biggan_style`).

Editing a layer (network bending)::

    gen = lsd_jax.load_generator("network.pkl")
    layer = gen.module.synthesis.b8.conv0
    layer.weight[...] = layer.weight[...] * 0.5            # the next gen(...) call uses it
"""
