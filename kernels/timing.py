"""Timing one kernel call the way a decode step sees it: with the weights out of cache.

In a model, each linear's weights were last touched a whole forward pass ago, so at decode
they stream from memory. Timing one layer in a loop would keep its weights in cache and
flatter every kernel (a 576x576 float32 matmul runs ~5x faster from L2). So each timing
rotates over copies of the prepared weights totalling at least `flush_bytes` (default
128 MiB: more than this machine's effective last-level cache, where read bandwidth falls from
~55 to ~27 GB/s) and reports the median time of one call over several rounds.

`copy_bandwidth` is the STREAM-like reference the benchmark compares kernels with.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import torch

from trustbits.kernels.device import synchronize
from trustbits.kernels.kernel import KernelState

FLUSH_BYTES = 128 * 2**20
MAX_COPIES = 512
ROUNDS = 5
# A round calls every copy once; copies are capped so that a round takes about this long.
# Slow (compute-bound, many-row) calls then use a single copy: the cache no longer matters.
ROUND_SECONDS = 0.05


def time_rotating(
    run: Callable[[KernelState, torch.Tensor], object],
    state: KernelState,
    x: torch.Tensor,
    *,
    flush_bytes: int | None = None,
    rounds: int | None = None,
) -> float:
    """Median seconds of `run(copy, x)` over `rounds` rounds, each calling every copy once.

    Args:
        run: calls the kernel on one prepared copy.
        state: the prepared weights; copied until the copies total `flush_bytes`.
        x: the activations [rows, in].
        flush_bytes, rounds: default `FLUSH_BYTES`, `ROUNDS`.
    """
    flush_bytes = FLUSH_BYTES if flush_bytes is None else flush_bytes
    rounds = ROUNDS if rounds is None else rounds
    device = x.device
    with torch.inference_mode():
        run(state, x)  # warm-up: lazy allocations, thread pool start
        synchronize(device)
        t0 = time.perf_counter()
        run(state, x)
        synchronize(device)
        single = time.perf_counter() - t0
    by_bytes = -(-flush_bytes // max(1, state.nbytes))
    n_copies = max(1, min(MAX_COPIES, by_bytes, int(ROUND_SECONDS / max(single, 1e-7))))
    if single > 0.02:
        rounds = min(rounds, 3)
    copies = [state] + [state.clone() for _ in range(n_copies - 1)]
    per_call = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with torch.inference_mode():
            for c in copies[1:]:  # first touch of the copies
                run(c, x)
            for _ in range(rounds):
                synchronize(device)
                t0 = time.perf_counter()
                for c in copies:
                    run(c, x)
                synchronize(device)
                per_call.append((time.perf_counter() - t0) / len(copies))
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(per_call)


def copy_bandwidth(device: torch.device | str = "cpu", nbytes: int = 512 * 2**20, rounds: int = 7) -> float:
    """Bytes per second of a large tensor copy (read + write counted), median of `rounds`:
    the memory bandwidth a memory-bound kernel can hope for on this device."""
    device = torch.device(device)
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(rounds):
        synchronize(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return 2 * src.numel() * 4 / statistics.median(times)
