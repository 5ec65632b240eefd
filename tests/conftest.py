import os
import socket

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never read or write the user's real cache."""
    old = os.environ.get("LSD_JAX_CACHE")
    os.environ["LSD_JAX_CACHE"] = str(tmp_path_factory.mktemp("lsd-jax-cache"))
    yield
    if old is None:
        os.environ.pop("LSD_JAX_CACHE", None)
    else:
        os.environ["LSD_JAX_CACHE"] = old


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served(str):
    """A served app's URL, with its Blocks (the test runs in the server's process)."""

    demo: object


@pytest.fixture(scope="module")
def served():
    """The page, launched on 127.0.0.1 (6 s of music at most, one job at a time, no examples, no warm-up)."""
    from lsd_jax.web import page
    from lsd_jax.web.config import AppConfig

    cfg = AppConfig(max_seconds=6, concurrency=1, examples="off", warm_up=False)
    demo = page.build_app(cfg)
    port = free_port()
    page.launch(
        demo, cfg, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    url = Served(f"http://127.0.0.1:{port}")
    url.demo = demo
    yield url
    demo.close()
