"""The lsd-jax web app: ``python app.py`` (also a Hugging Face Space's entry point).

Limits come from the environment (LSD_JAX_MAX_SECONDS, LSD_JAX_MAX_FILE_SIZE, LSD_JAX_CONCURRENCY,
LSD_JAX_QUEUE_SIZE, LSD_JAX_MAX_RESOLUTION, LSD_JAX_CACHE_TTL, LSD_JAX_EXCERPT_SECONDS, LSD_JAX_EXAMPLES,
LSD_JAX_WARM_UP) or the command line (``python app.py --help``); the host and port from GRADIO_SERVER_NAME
and GRADIO_SERVER_PORT (what a Hugging Face Space sets) or --host/--port; the Live page's from LSD_JAX_LIVE_SESSIONS,
LSD_JAX_LIVE_RESOLUTION, LSD_JAX_LIVE_FPS, LSD_JAX_LIVE_QUIET, LSD_JAX_LIVE_MAX_SECONDS, LSD_JAX_LIVE_PER_CLIENT.
The app also serves Gradio's MCP server at /gradio_api/mcp/ (the render and preview tools). Everything else lives
in :mod:`lsd_jax.web`.
"""

from lsd_jax.web.page import main

if __name__ == "__main__":
    main()
