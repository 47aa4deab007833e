"""What a kernel is, and the one every device has: the dequantize fallback.

A kernel computes y = x @ W^T (+ bias) for a `QTensor` W in two steps:

    state = kernel.prepare(qtensor, device, dtype)   # once per module: re-layout the weights
    y = kernel.run(state, x2d, bias)                 # every call: x2d [rows, in] -> [rows, out]

`prepare` is lazy (QuantLinear calls it on the first forward that picks the kernel), so
building a QuantLinear stays cheap when the search swaps plans. Each kernel states how far it
may be from the reference, dequantize-then-matmul in float64 (`tolerance`, as the largest
absolute difference over the largest absolute reference output); the tests hold every kernel
to it at every supported shape and bit-width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from trustbits.kernels.qtensor import QTensor


@dataclass
class KernelState:
    """A kernel's prepared weights: tensors plus the integers its op needs.

    `nbytes` counts what one call reads from memory (the tensors), for bandwidth figures.
    """

    tensors: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def clone(self) -> "KernelState":
        """A copy in fresh memory (timing rotates over copies to defeat the caches)."""
        return KernelState({k: t.clone() for k, t in self.tensors.items()}, dict(self.meta))


class Kernel:
    """Base class; subclasses set `name`, `tolerance`, and implement the three methods."""

    name: str = ""
    tolerance: float = 0.0
    description: str = ""

    def tolerance_for(self, dtype: torch.dtype) -> float:
        """The largest relative error against the reference at this compute dtype."""
        return self.tolerance

    def unsupported(self, bits: int, group_size: int, shape: tuple[int, int], device: torch.device, dtype: torch.dtype) -> str | None:
        """None when this kernel can run that weight on that device at that compute dtype,
        else the reason it cannot (reported by `trustbits latency --debug` and the tests)."""
        raise NotImplementedError

    def prepare(self, q: QTensor, device: torch.device, dtype: torch.dtype) -> KernelState:
        raise NotImplementedError

    def run(self, state: KernelState, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """x [rows, in] at the compute dtype -> y [rows, out] at the compute dtype."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<kernel {self.name}>"


class DequantKernel(Kernel):
    """The labelled fallback: dequantize once to the compute dtype, keep that float weight,
    and run the device's dense matmul (MKL/oneDNN on the CPU, cuBLAS on a GPU). No memory
    saving and no low-bit speed-up, but the fastest choice for many rows at a time
    (evaluation and long prefills are compute-bound) and available everywhere."""

    name = "dequant-cached"
    description = "dequantized once to a float weight; dense matmul"

    def __init__(self, tolerance_fp32: float = 1e-5, tolerance_half: float = 2e-2):
        self._tol = {torch.float32: tolerance_fp32}
        self._tol_half = tolerance_half

    def tolerance_for(self, dtype: torch.dtype) -> float:
        return self._tol.get(dtype, self._tol_half)

    @property
    def tolerance(self) -> float:  # the float32 figure; bfloat16/float16 use tolerance_for
        return self._tol[torch.float32]

    def unsupported(self, bits, group_size, shape, device, dtype):
        return None

    def prepare(self, q, device, dtype):
        return KernelState({"weight": q.to(device).dequantize(dtype)})

    def run(self, state, x, bias):
        return F.linear(x, state.tensors["weight"], bias)


class FloatKernel(Kernel):
    """An unquantized weight (a plan's 'keep'): the dense matmul at the compute dtype. It runs
    no QTensor; the latency table times it so that kept modules are priced like the rest."""

    name = "float"
    tolerance = 0.0
    description = "unquantized float weight; dense matmul"

    def unsupported(self, bits, group_size, shape, device, dtype):
        return None if bits is None else "the float kernel runs unquantized weights only"

    def random_state(self, shape: tuple[int, int], device, dtype) -> KernelState:
        return KernelState({"weight": torch.randn(shape, device=device, dtype=dtype)})

    def run(self, state, x, bias):
        return F.linear(x, state.tensors["weight"], bias)
