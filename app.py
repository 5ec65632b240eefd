"""The lsd-jax web app: ``python app.py`` (also a Hugging Face Space's entry point).

Limits come from the environment (LSD_JAX_MAX_SECONDS, LSD_JAX_MAX_FILE_SIZE, LSD_JAX_CONCURRENCY,
LSD_JAX_QUEUE_SIZE, LSD_JAX_MAX_RESOLUTION, LSD_JAX_CACHE_TTL) or the command line
(``python app.py --help``). Everything else lives in :mod:`lsd_jax.web`.
"""

from lsd_jax.web.page import main

if __name__ == "__main__":
    main()
