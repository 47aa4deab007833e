"""Where trustbits keeps what it computed once and reuses (model weights, quantized layers,
latency tables): one cache root, `$TRUSTBITS_CACHE` or `~/.cache/trustbits`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache root; created on first use."""
    root = Path(os.environ.get("TRUSTBITS_CACHE") or Path.home() / ".cache" / "trustbits")
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """A sub-folder of the cache root, e.g. ``cache_dir("models", key)``; created on first use."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
