"""The per-call cost of a module around its kernel, and the free stand-in used to measure the
rest of a model.

A decode step of SmolLM2 calls 211 linear modules; at ~5-20 us of Python per module call
(`nn.Module.__call__`, reshapes, dispatch) that is milliseconds per token, as much as a
quantized model's matmuls. The timing table times kernels alone, so the latency model adds,
per module, the measured overhead of its kind of module (`float`: nn.Linear, `quant`:
QuantLinear), and removes the cost of the `free` stand-in that replaced it while the
remainder was measured. Each is the median of several batches of calls on a tiny (64x64)
layer, where the matmul itself is negligible, minus the bare kernel call.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from trustbits.kernels.device import synchronize

KINDS = ("float", "quant", "free")


class FreeLinear(nn.Module):
    """Stands in for a linear while the remainder is measured: zeros of the output shape."""

    def __init__(self, out_features: int):
        super().__init__()
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(*x.shape[:-1], self.out_features)


def _per_call(fn, device, calls: int = 200, batches: int = 7) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(batches):
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def measure_call_overheads(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """Seconds per call spent outside the kernel, by module kind (see the module docstring)."""
    from trustbits.kernels.linear import QuantLinear
    from trustbits.kernels.table import random_qtensor

    x = torch.randn(1, 1, 64, device=device, dtype=dtype)
    x2 = x.reshape(1, 64)
    lin = nn.Linear(64, 64, bias=False).to(device=device, dtype=dtype)
    q = QuantLinear(random_qtensor((64, 64), 4, 32, device), None, dtype)
    q.use_kernel("dequant-cached")
    free = FreeLinear(64)
    with torch.inference_mode():
        q(x)
        kernel = q.kernel_for(1, x.device)
        state = q._state(kernel, x.device)
        bare_float = _per_call(lambda: F.linear(x2, lin.weight), device)
        bare_quant = _per_call(lambda: kernel.run(state, x2, None), device)
        return {
            "float": max(0.0, _per_call(lambda: lin(x), device) - bare_float),
            "quant": max(0.0, _per_call(lambda: q(x), device) - bare_quant),
            "free": _per_call(lambda: free(x), device),
        }
