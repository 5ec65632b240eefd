import os

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
