"""Not a bench: setup shared by the quant benches (a fixed thread count and a private cache root)."""

from __future__ import annotations

import os
import tempfile


def setup(threads: int, cache: str | None) -> str:
    """Pin torch to `threads` CPU threads and point TRUSTBITS_CACHE at `cache` (a fresh temp
    folder when None, so the layer cache starts cold); the dequantized embedded model is
    copied from the user's cache when present so loading does not re-read the GGUF."""
    import shutil
    from pathlib import Path

    user_models = Path(os.environ.get("TRUSTBITS_CACHE") or Path.home() / ".cache" / "trustbits") / "models"
    root = cache or tempfile.mkdtemp(prefix="trustbits-bench-")
    if user_models.is_dir() and not (Path(root) / "models").exists():
        shutil.copytree(user_models, Path(root) / "models")
    os.environ["TRUSTBITS_CACHE"] = root
    import torch

    torch.set_num_threads(threads)
    return root
