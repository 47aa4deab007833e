"""`QuantLinear`: an nn.Linear replacement that holds a `QTensor` and runs it through a kernel.

Contract used by `trustbits.quant` (keep it stable):

    layer = QuantLinear(qtensor, bias=None, compute_dtype=torch.float32)
    y = layer(x)            # x [..., in] -> y [..., out], like nn.Linear
    layer.qtensor           # the QTensor it was built from (for saving and footprints)
    layer.kernel_name       # which kernel runs it, e.g. "dequant-cached" (reported by tools)

`QuantEmbedding` lets a tied embedding share its quantized head: it looks rows up in the same
QTensor, so a tied head quantized once is stored once.
"""

from __future__ import annotations

import torch
from torch import nn

from trustbits.kernels.qtensor import QTensor


class QuantLinear(nn.Module):
    """Linear layer over a quantized weight.

    The reference path dequantizes once and keeps the float weight ("dequant-cached"): same
    numbers as every kernel, no speed-up. Faster kernels plug in through the kernels dispatch.
    """

    def __init__(self, qtensor: QTensor, bias: torch.Tensor | None = None, compute_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.qtensor = qtensor
        self.out_features, self.in_features = qtensor.shape
        self.compute_dtype = compute_dtype
        self.bias = nn.Parameter(bias.detach().to(compute_dtype), requires_grad=False) if bias is not None else None
        self.kernel_name = "dequant-cached"
        self.register_buffer("_weight", qtensor.dequantize(compute_dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.to(self.compute_dtype), self._weight, self.bias)

    def extra_repr(self) -> str:
        q = self.qtensor
        return f"in={self.in_features}, out={self.out_features}, bits={q.bits}, group={q.group_size}, kernel={self.kernel_name}"


class QuantEmbedding(nn.Module):
    """Embedding whose table is a QTensor [vocab, dim] (shared with a tied quantized head)."""

    def __init__(self, qtensor: QTensor, compute_dtype: torch.dtype = torch.float32, padding_idx: int | None = None):
        super().__init__()
        self.qtensor = qtensor
        self.num_embeddings, self.embedding_dim = qtensor.shape
        self.padding_idx = padding_idx
        self.compute_dtype = compute_dtype

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # Dequantize only the rows looked up: ids [...] -> [..., dim].
        q = self.qtensor
        flat = ids.reshape(-1)
        codes = q.codes[flat].to(torch.float32)  # [n, dim]
        col_group = torch.arange(self.embedding_dim, device=codes.device) // q.group_size
        scale = q.scale[flat][:, col_group].to(torch.float32)
        zero = q.zero[flat][:, col_group].to(torch.float32)
        rows = (codes - zero) * scale
        return rows.to(self.compute_dtype).view(*ids.shape, self.embedding_dim)
