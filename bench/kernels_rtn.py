"""Round-to-nearest quantization for the kernel benchmarks: QTensors without trustbits.quant.

The benchmarks time kernels, not quantization quality, so plain asymmetric RTN per group is
enough (the search itself quantizes with HQQ/GPTQ through trustbits.quant). `quantize_model`
swaps QuantLinear modules into a model per a {module name: (bits, group) | None} plan and
returns a function that puts the float modules back.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trustbits.kernels.linear import QuantLinear
from trustbits.kernels.qtensor import QTensor


def rtn(weight: torch.Tensor, bits: int, group_size: int) -> QTensor:
    """W [out, in] -> QTensor with per-(row, group) min/max scale and integer zero."""
    out_f, in_f = weight.shape
    n_groups = math.ceil(in_f / group_size)
    w = torch.nn.functional.pad(weight.float(), (0, n_groups * group_size - in_f))
    g = w.view(out_f, n_groups, group_size)
    lo = g.amin(-1)
    hi = g.amax(-1)
    if in_f % group_size:  # the padded tail of the last group must not widen its range
        tail = weight.float()[:, (n_groups - 1) * group_size :]
        lo[:, -1], hi[:, -1] = tail.amin(-1), tail.amax(-1)
    qmax = 2**bits - 1
    scale = ((hi - lo) / qmax).clamp_min(1e-8)
    zero = (-lo / scale).round().clamp(0, qmax)
    codes = (g / scale[..., None] + zero[..., None]).round().clamp(0, qmax).to(torch.uint8)
    codes = codes.view(out_f, -1)[:, :in_f].contiguous()
    return QTensor(codes, scale.to(torch.float16), zero.to(torch.float16), bits, group_size)


def quantize_model(model: nn.Module, plan: dict, *, pin_kernel: str | None = None):
    """Swap QuantLinear into `model` per `plan` (name -> (bits, group) or None); returns a
    function that restores the float modules."""
    swapped = []
    for name, spec in plan.items():
        if spec is None:
            continue
        parent_name, _, leaf = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, leaf)
        new = QuantLinear(rtn(old.weight.data, *spec), old.bias, old.weight.dtype)
        if pin_kernel:
            new.use_kernel(pin_kernel)
        setattr(parent, leaf, new)
        swapped.append((parent, leaf, old))

    def restore() -> None:
        for parent, leaf, old in reversed(swapped):
            setattr(parent, leaf, old)

    return restore
