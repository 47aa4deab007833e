"""AWQ (Lin et al. 2023): scale salient input channels up before quantizing and fold the inverse
scale into the previous operation (a norm or a linear).

Two facts decide what trustbits can do with it:

* GPTQModel's AWQ (the maintained implementation) refuses to run without CUDA
  ("AWQ: CUDA is not available", measured with gptqmodel 7.6.0), so on the CPU trustbits
  refuses with that reason.
* The folded scales change neighbouring modules (the input norm is shared by q, k and v), so an
  AWQ layer is not a per-module object that the layer cache can mix with other specs. On a CUDA
  machine AWQ is therefore a whole-model, uniform quantization through GPTQModel
  (`trustbits.quant.awq_model.quantize_awq`), not a plan entry; a plan naming `awq` is refused on
  every device with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trustbits.errors import TrustbitsError
from trustbits.kernels.qtensor import QTensor
from trustbits.quant.methods.base import MethodConfig, register


@dataclass(frozen=True)
class AWQConfig(MethodConfig):
    """AWQ through GPTQModel (GEMM layout)."""

    @classmethod
    def preflight(cls, device) -> None:
        raise refusal(device)


def refusal(device: torch.device | str) -> TrustbitsError:
    """Why AWQ cannot quantize a plan's layer on `device`."""
    if torch.device(device).type != "cuda":
        return TrustbitsError(
            "AWQ cannot run on the CPU: GPTQModel's AWQ needs a CUDA GPU",
            "use --method hqq or gptq on this machine, or run on a CUDA machine",
        )
    return TrustbitsError(
        "AWQ cannot be mixed per layer: its scales are folded into the norms that q/k/v and gate/up share",
        "quantize the whole model with `trustbits quantize --method awq --bits B` (uniform), or use hqq or gptq in plans",
    )


@register("awq", AWQConfig)
def quantize_awq_layer(weight: torch.Tensor, config: AWQConfig, hessian: torch.Tensor | None = None) -> QTensor:
    raise refusal(weight.device)
