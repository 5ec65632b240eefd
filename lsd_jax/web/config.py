"""What this server accepts: :class:`AppConfig`, from environment variables and launch flags."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..params import MAX_FPS

#: The page's fps limit (the library's is higher).
MAX_APP_FPS = min(60.0, MAX_FPS)
EXAMPLE_MODES = ("eager", "lazy", "off")


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"lsd-jax app: {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SystemExit(f"lsd-jax app: {name} must be a positive number, got {raw!r}")
    return value


def _env_choice(env: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise SystemExit(f"lsd-jax app: {name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class AppConfig:
    """What this server accepts. Each field has an environment variable and a launch argument."""

    max_seconds: float = 600.0  # LSD_JAX_MAX_SECONDS: longest excerpt rendered, seconds
    max_file_size: str = "100mb"  # LSD_JAX_MAX_FILE_SIZE: largest upload (Gradio's max_file_size)
    concurrency: int = 1  # LSD_JAX_CONCURRENCY: renders/previews running at once
    queue_size: int = 16  # LSD_JAX_QUEUE_SIZE: requests waiting at most
    max_resolution: int = 1024  # LSD_JAX_MAX_RESOLUTION: largest side of the video, pixels
    cache_ttl: int = 3600  # LSD_JAX_CACHE_TTL: seconds before uploads and results are deleted
    preview_stills: int = 6  # LSD_JAX_PREVIEW_STILLS: stills in the preview
    excerpt_seconds: float = 30.0  # LSD_JAX_EXCERPT_SECONDS: the page's excerpt length, from the loudest stretch
    examples: str = "eager"  # LSD_JAX_EXAMPLES: render the one-click examples at start-up (eager), at first click
    #                          (lazy), or show none (off)
    warm_up: bool = True  # LSD_JAX_WARM_UP: measure (and compile) the default style at start-up (0: at first use)
    per_client: int = 2  # LSD_JAX_PER_CLIENT: jobs one visitor (address) may have queued or running at once
    forwarded: bool = False  # LSD_JAX_FORWARDED: the visitor's address is the last of X-Forwarded-For (behind a
    #                          proxy that sets it; on by default in a Hugging Face Space), else the connection's

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppConfig:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            max_seconds=_env_float(env, "LSD_JAX_MAX_SECONDS", d.max_seconds),
            max_file_size=(env.get("LSD_JAX_MAX_FILE_SIZE") or d.max_file_size).strip(),
            concurrency=int(_env_float(env, "LSD_JAX_CONCURRENCY", d.concurrency)),
            queue_size=int(_env_float(env, "LSD_JAX_QUEUE_SIZE", d.queue_size)),
            max_resolution=int(_env_float(env, "LSD_JAX_MAX_RESOLUTION", d.max_resolution)),
            cache_ttl=int(_env_float(env, "LSD_JAX_CACHE_TTL", d.cache_ttl)),
            preview_stills=int(_env_float(env, "LSD_JAX_PREVIEW_STILLS", d.preview_stills)),
            excerpt_seconds=_env_float(env, "LSD_JAX_EXCERPT_SECONDS", d.excerpt_seconds),
            examples=_env_choice(env, "LSD_JAX_EXAMPLES", EXAMPLE_MODES, d.examples),
            warm_up=_env_choice(env, "LSD_JAX_WARM_UP", ("1", "0"), "1" if d.warm_up else "0") == "1",
            per_client=int(_env_float(env, "LSD_JAX_PER_CLIENT", d.per_client)),
            forwarded=_env_choice(env, "LSD_JAX_FORWARDED", ("1", "0"), "1" if env.get("SPACE_ID") else "0") == "1",
        )

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
    ) -> tuple[AppConfig, dict[str, Any]]:
        """The config from the environment overridden by launch flags (``python app.py --help``), and
        the arguments for ``Blocks.launch`` (server_name, server_port)."""
        base = cls.from_env(env)
        args = build_parser(base).parse_args(argv)
        cfg = dataclasses.replace(
            base,
            max_seconds=args.max_seconds,
            max_file_size=args.max_file_size,
            concurrency=max(1, args.concurrency),
            queue_size=max(1, args.queue_size),
            max_resolution=args.max_resolution,
            cache_ttl=args.cache_ttl,
            examples=args.examples,
        )
        return cfg, {"server_name": args.host, "server_port": args.port}


def build_parser(defaults: AppConfig | None = None) -> argparse.ArgumentParser:
    d = defaults or AppConfig()
    ap = argparse.ArgumentParser(prog="app.py", description="The lsd-jax web app (a Gradio page).")
    ap.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    ap.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=d.max_seconds,
        help="longest excerpt rendered, seconds (env LSD_JAX_MAX_SECONDS)",
    )
    ap.add_argument(
        "--max-file-size", default=d.max_file_size, help="largest upload, e.g. 100mb (env LSD_JAX_MAX_FILE_SIZE)"
    )
    ap.add_argument("--concurrency", type=int, default=d.concurrency, help="renders at once (env LSD_JAX_CONCURRENCY)")
    ap.add_argument("--queue-size", type=int, default=d.queue_size, help="waiting requests at most")
    ap.add_argument("--max-resolution", type=int, default=d.max_resolution, help="largest video side, pixels")
    ap.add_argument("--cache-ttl", type=int, default=d.cache_ttl, help="seconds before uploads and videos are deleted")
    ap.add_argument(
        "--examples",
        choices=EXAMPLE_MODES,
        default=d.examples,
        help="render the one-click examples at start-up (eager), at their first click (lazy), or show "
        "none (off) (env LSD_JAX_EXAMPLES)",
    )
    return ap


def duration_text(seconds: float) -> str:
    """``90`` -> "90 s", ``600`` -> "10 min"."""
    if seconds < 120:
        return f"{seconds:g} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min" + (f" {s} s" if s else "")


def client_key(request: Any, forwarded: bool = False) -> str | None:
    """The visitor's address: the connection's, or (``forwarded``: behind a proxy that appends it, as a Hugging Face
    Space's does) the last entry of ``X-Forwarded-For`` (earlier entries are the client's own word). None when
    unknown (a call from Python)."""
    if request is None:
        return None
    if forwarded:
        headers = getattr(request, "headers", None) or {}
        chain = [h.strip() for h in str(headers.get("x-forwarded-for", "")).split(",") if h.strip()]
        if chain:
            return chain[-1]
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or None
