"""Test-side names for the random StyleGAN2 states (the code lives in ``lsd_jax.testing``)."""

from lsd_jax.testing import (block_resolutions, channels, config_f_config, paper256_config,  # noqa: F401
                                   random_sg2_state, setup_filter, sg2_config)
