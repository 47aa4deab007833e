"""RTN: round-to-nearest on an asymmetric min-max grid per group, the reference every other
method is compared with (no data, no optimization)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trustbits.kernels.qtensor import QTensor
from trustbits.quant.methods._groups import minmax_rows, quantize_groupwise
from trustbits.quant.methods.base import MethodConfig, register


@dataclass(frozen=True)
class RTNConfig(MethodConfig):
    """Round-to-nearest; only `bits` and `group_size`."""


@register("rtn", RTNConfig)
def quantize_rtn(weight: torch.Tensor, config: RTNConfig, hessian: torch.Tensor | None = None) -> QTensor:
    """weight [out, in] -> QTensor; `hessian` is ignored (RTN needs no data)."""
    maxq = 2**config.bits - 1

    def rows(block: torch.Tensor):
        scale, zero = minmax_rows(block.float(), config.bits)
        codes = torch.round(block.float() / scale[:, None] + zero[:, None]).clamp_(0, maxq)
        return codes, scale, zero

    return quantize_groupwise(weight, config.bits, config.group_size, rows)
