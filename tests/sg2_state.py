"""Test-side names for the random StyleGAN2 states (the code lives in ``lsd_jax.testing``)."""

from lsd_jax.testing import (  # noqa: F401
    block_resolutions,
    channels,
    config_f_config,
    paper256_config,
    random_sg2_state,
    setup_filter,
    sg2_config,
)
