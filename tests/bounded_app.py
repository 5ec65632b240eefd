"""Targets for :func:`hostile.run_bounded` that render (JAX): requests through the library or the web app's
:class:`~lsd_jax.web.jobs.Jobs`, one after another in ONE child process under an address-space limit, so a test
proves that a bad request is a clear error *and* that the same process renders normally right after (a regression
that aborts or exhausts memory kills only the child)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def requests(items: list[dict[str, Any]], workdir: str, max_seconds: float = 600.0) -> list[dict[str, Any]]:
    """Run each request in order; ``{"via": "app" | "library", "song", "style", "style_file", "values"}``. Returns per
    request ``{"error": class name or None, "mro", "message", "frames", "seconds"}``."""
    import time
    import warnings

    from lsd_jax.engine.pipeline import render
    from lsd_jax.web.config import AppConfig
    from lsd_jax.web.jobs import Jobs

    warnings.simplefilter("ignore")
    out: list[dict[str, Any]] = []
    with Jobs(AppConfig(max_seconds=max_seconds, warm_up=False), keep=0.0, parent=workdir) as jobs:
        for i, item in enumerate(items):
            t = time.monotonic()
            try:
                if item.get("via", "app") == "app":
                    job = jobs.prepare(
                        item["song"], item.get("style", "default"), item.get("style_file"), **item.get("values", {})
                    )
                    path = jobs.render(job)
                else:
                    path = render(
                        item["song"],
                        style=item.get("style"),
                        output=Path(workdir) / f"lib{i}.mp4",
                        progress=False,
                        max_seconds=item.get("max_seconds"),
                        **item.get("values", {}),
                    ).path
                from lsd_jax.media.video import probe_video

                result = {"error": None, "mro": [], "message": "", "frames": probe_video(path)["n_frames"]}
            except Exception as e:
                result = {
                    "error": type(e).__name__,
                    "mro": [c.__name__ for c in type(e).__mro__],
                    "message": str(e)[:2000],
                    "frames": 0,
                }
            result["seconds"] = time.monotonic() - t
            out.append(result)
    return out
