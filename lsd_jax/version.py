"""The package's version: one place (``pyproject.toml`` reads it; recipes record it)."""

__version__ = "0.1.0"
