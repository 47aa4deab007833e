"""GPTQ (Frantar et al. 2022): quantize a layer's columns one at a time and push each column's
rounding error onto the columns not yet quantized, through the inverse Hessian of the layer's
calibration inputs. We run GPTQModel's own per-layer routine (see `trustbits.quant._gptqmodel`)
on the Hessian the layer cache captured from calibration text on the float model.

GPTQ is sequential in the original: layer k sees inputs from layers < k already quantized.
A cached layer instead saw the float prefix (EvoPress makes the same approximation);
`bench/quant_gptq_approx.py` measures what that costs against quantizing a mixed plan directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from trustbits.kernels.qtensor import QTensor
from trustbits.quant.methods._groups import codes_from_dequantized
from trustbits.quant.methods.base import MethodConfig, register


@dataclass(frozen=True)
class GPTQConfig(MethodConfig):
    """GPTQ's knobs.

    Attributes:
        sym: symmetric grid (zero fixed mid-range); asymmetric 2-bit GPTQ files decode
            wrongly in some readers.
        damp_percent: dampening added to the Hessian diagonal, as a fraction of its mean
            (GPTQModel's default).
        blocksize: columns updated together (lazy batch updates; changes speed, not results).
    """

    sym: bool = True
    damp_percent: float = 0.05
    blocksize: int = 128

    needs_calibration: ClassVar[bool] = True

    @classmethod
    def preflight(cls, device) -> None:
        from trustbits.quant import _gptqmodel

        _gptqmodel.gptqmodel()  # the install command if it is missing


@register("gptq", GPTQConfig)
def quantize_gptq(weight: torch.Tensor, config: GPTQConfig, hessian: torch.Tensor | None = None) -> QTensor:
    """weight [out, in] and its input Hessian [in, in] -> QTensor."""
    from trustbits.quant import _gptqmodel

    q, scale, zero = _gptqmodel.gptq_layer(
        weight,
        hessian,
        bits=config.bits,
        group_size=config.group_size,
        sym=config.sym,
        damp_percent=config.damp_percent,
        blocksize=config.blocksize,
    )
    return codes_from_dequantized(q, scale, zero, config.bits, config.group_size)
