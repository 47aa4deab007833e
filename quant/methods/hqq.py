"""HQQ (Half-Quadratic Quantization, Badri & Shaji 2023): calibration-free. Starting from the
min-max grid, HQQ's proximal solver fits each group's zero point (fractional, in code units)
to minimise an l_p<1 norm of the weight error, which is robust to outlier weights.

We drive the `hqq` library's own `Quantizer.quantize` (its init, clamps and
`optimize_weights_proximal` solver) on blocks whose rows are exactly one group each (see
`_groups`), so groups never cross rows and the result maps 1:1 onto a `QTensor`. (Called on a
whole matrix, HQQ reshapes W into [-1, group_size], which crosses rows when `in` is not a
multiple of the group: SmolLM2's 576 with groups of 128.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trustbits.kernels.qtensor import QTensor
from trustbits.quant.methods._groups import quantize_groupwise
from trustbits.quant.methods.base import MethodConfig, register


@dataclass(frozen=True)
class HQQConfig(MethodConfig):
    """HQQ's knobs.

    Attributes:
        optimize: run the proximal solver (False: HQQ's min-max init only).
        round_zero: round zero points to integers (HQQ's default keeps them fractional).
    """

    optimize: bool = True
    round_zero: bool = False


@register("hqq", HQQConfig)
def quantize_hqq(weight: torch.Tensor, config: HQQConfig, hessian: torch.Tensor | None = None) -> QTensor:
    """weight [out, in] -> QTensor; `hessian` is ignored (HQQ needs no data)."""
    from hqq.core.quantize import Quantizer

    device = str(weight.device)

    def rows(block: torch.Tensor):
        # block [rows, width]: one group per row, so HQQ's axis=1 grouping is exactly ours.
        width = block.shape[1]
        w_q, meta = Quantizer.quantize(
            block.float(),
            nbits=config.bits,
            channel_wise=True,
            group_size=width,
            optimize=config.optimize,
            round_zero=config.round_zero,
            axis=1,
            bitpack=False,
            device=device,
        )
        # meta["scale"] is already the dequantization scale (HQQ inverts it before returning).
        return w_q.reshape(block.shape), meta["scale"].reshape(-1).float(), meta["zero"].reshape(-1).float()

    return quantize_groupwise(weight, config.bits, config.group_size, rows)
