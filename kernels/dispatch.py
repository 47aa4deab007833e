"""Which kernel runs a quantized linear: the fastest one measured for its case.

A case is (device, compute dtype, bits, group size, shape) and a regime, the number of
activation rows per call, rounded up to a bucket of `BUCKETS`:

* 1 row is decode at batch 1: memory-bound, where moving fewer bytes wins (the low-bit
  kernels);
* 4 and 16 rows are small batches of decode;
* 128 rows and more are prefill and evaluation (the search scores hundreds of prompts per
  trial): compute-bound, where the dense matmul on a dequantized float weight usually wins.

Every kernel that supports the case is timed at the bucket (`table.TimingTable`, cached on
disk per device) and the fastest runs. Kernels are timed bucket by bucket upward, and one that
is already `PRUNE_FACTOR` times slower than the best at a smaller bucket is not timed at larger
ones (low-bit kernels only fall further behind as rows grow, and timing them at 128 rows can
take seconds). `dequant-cached` supports every case, so there is always a choice.

Scores use `exact_kernels()`: a kernel that rounds activations (`cpu-int4pack` runs them in
bfloat16) moved SmolLM2's option log-probabilities by up to 0.13 nats against the exact ones,
enough to flip a near-tied answer, and which kernel runs depends on the batch's row count and
on this machine's timings. Inside the context only kernels as exact as the dequantized
matmul at the compute dtype are chosen, so a plan's scores depend on its weights alone.
Latency keeps the fastest kernel: it prices what a deployment runs.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import logging

import torch

from trustbits.kernels.cpu_lowbit import CpuLowbitKernel
from trustbits.kernels.cuda_kernels import CudaInt4PackKernel
from trustbits.kernels.int4pack import CpuInt4PackKernel
from trustbits.kernels.kernel import DequantKernel, FloatKernel, Kernel
from trustbits.kernels.table import timing_table

log = logging.getLogger(__name__)

BUCKETS = (1, 4, 16, 128)
PRUNE_FACTOR = 3.0

DEQUANT = DequantKernel()
FLOAT = FloatKernel()
# Every quantized-weight kernel, the fallback last.
KERNELS: tuple[Kernel, ...] = (CpuLowbitKernel(), CpuInt4PackKernel(), CudaInt4PackKernel(), DEQUANT)


def bucket_for(rows: int) -> int:
    """The regime bucket of a call with `rows` activation rows (the largest bucket beyond)."""
    i = bisect.bisect_left(BUCKETS, max(1, rows))
    return BUCKETS[min(i, len(BUCKETS) - 1)]


def kernel_by_name(name: str) -> Kernel:
    for k in KERNELS + (FLOAT,):
        if k.name == name:
            return k
    raise KeyError(name)


def candidates(bits: int, group_size: int, shape: tuple[int, int], device: torch.device, dtype: torch.dtype) -> list[Kernel]:
    """Kernels that can run this case, the fallback last."""
    out = []
    for k in KERNELS:
        reason = k.unsupported(bits, group_size, tuple(shape), device, dtype)
        if reason is None:
            out.append(k)
        else:
            log.debug("%s skipped for %s-bit g%s %s on %s: %s", k.name, bits, group_size, tuple(shape), device, reason)
    return out


def timed_choices(bits: int | None, group_size: int | None, shape, device, dtype, rows: int) -> dict[str, float]:
    """Kernel name -> seconds per call at the bucket of `rows` (infinite: pruned), measuring
    what the table lacks. For bits None (a kept float module) the only kernel is `float`."""
    device = torch.device(device)
    table = timing_table(device)
    target = bucket_for(rows)
    shape = tuple(shape)
    if bits is None:
        return {FLOAT.name: table.seconds(FLOAT, shape, None, None, dtype, target)}
    kernels = candidates(bits, group_size, shape, device, dtype)
    if len(kernels) == 1:
        return {kernels[0].name: table.seconds(kernels[0], shape, bits, group_size, dtype, target)}
    times: dict[str, float] = {}
    for b in BUCKETS[: BUCKETS.index(target) + 1]:
        times = {}
        for k in kernels:
            known = table.lookup(k.name, shape, bits, group_size, dtype, b)
            times[k.name] = known if known is not None else table.seconds(k, shape, bits, group_size, dtype, b, save=False)
        best = min(times.values())
        for k in list(kernels):
            if k is not DEQUANT and times[k.name] > PRUNE_FACTOR * best:
                for later in BUCKETS[BUCKETS.index(b) + 1 :]:
                    table.mark_skipped(k.name, shape, bits, group_size, dtype, later)
                kernels.remove(k)
    table.save()
    return times


_EXACT = contextvars.ContextVar("trustbits_exact_kernels", default=False)


@contextlib.contextmanager
def exact_kernels():
    """Within this context, quantized linears run only exact kernels (see the module doc)."""
    token = _EXACT.set(True)
    try:
        yield
    finally:
        _EXACT.reset(token)


def exact_mode() -> bool:
    return _EXACT.get()


def is_exact(kernel: Kernel, dtype: torch.dtype) -> bool:
    """Whether `kernel` is as exact as dequantize-then-matmul at `dtype`."""
    return kernel.tolerance_for(dtype) <= DEQUANT.tolerance_for(dtype)


def choose(bits: int, group_size: int, shape, device, dtype, rows: int, *, exact: bool = False) -> Kernel:
    """The fastest kernel for this case and number of rows (see the module docstring); with
    `exact`, the fastest exact one (`dequant-cached` is exact, and `timed_choices` never prunes it)."""
    times = timed_choices(bits, group_size, shape, device, dtype, rows)
    if exact:
        times = {name: t for name, t in times.items() if is_exact(kernel_by_name(name), dtype)}
    return kernel_by_name(min(times, key=times.get))
