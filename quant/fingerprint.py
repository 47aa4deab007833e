"""A model's weight fingerprint: what caches and plans are keyed by.

Hashing every byte of a 13B model takes a minute; a fingerprint only has to tell models
apart. We hash, per tensor, its name, shape, dtype and a strided sample of at most 4096
values (plus the first and last), which separates any two real checkpoints, and costs
milliseconds. Two loads of the same weights give the same fingerprint, whatever the source
(GGUF, cached safetensors) as long as the dtype is the same.
"""

from __future__ import annotations

import hashlib

import torch

SAMPLES_PER_TENSOR = 4096


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A 16-hex-digit fingerprint of `model`'s parameters (tied parameters counted once)."""
    h = hashlib.blake2b(digest_size=8)
    seen: set[int] = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // SAMPLES_PER_TENSOR)
        # Sample in float32 so a bf16 and a float32 copy of one checkpoint differ only if the
        # values differ after rounding; the dtype is hashed separately anyway.
        sample = torch.cat([flat[::step], flat[-1:]]).to("cpu", torch.float32)
        h.update(f"{name}|{tuple(p.shape)}|{p.dtype}|".encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()
