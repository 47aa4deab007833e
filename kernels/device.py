"""The name of the device a measurement belongs to.

Latency tables are keyed by it: a table measured on one machine is never used on another. On
the CPU the name includes the thread count (`torch.get_num_threads()`), since the same chip
with 1 or 2 threads is a different device for timing purposes.
"""

from __future__ import annotations

import hashlib
import platform
import re
from pathlib import Path

import torch


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_name(device: torch.device | str | None = None) -> str:
    """A human-readable, stable name, e.g. ``"cpu: Intel(R) Xeon(R) Processor, 2 threads"`` or
    ``"cuda: NVIDIA H200"``."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu: {_cpu_model()}, {torch.get_num_threads()} threads"
    return device.type


def device_slug(name: str) -> str:
    """A file-name-safe key for a device name: readable prefix plus a hash."""
    short = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return f"{short}-{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
