"""Group-wise layout shared by every method: groups never cross rows.

A weight W [out, in] is cut, per row, into groups of `group_size` consecutive input columns;
when `in` is not a multiple of `group_size` (SmolLM2: 576 = 4 x 128 + 64) the last group of
every row is shorter. Methods that treat each group independently (RTN, HQQ) see the groups
as rows of 2-D blocks:

    full: W[:, : n_full * g].reshape(out * n_full, g)     one row per full group
    tail: W[:, n_full * g :]                              [out, tail], one row per short group

`quantize_groupwise` runs a per-row quantizer on both blocks and reassembles the codes
[out, in] and the per-group scale and zero [out, n_groups] that `QTensor` stores.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trustbits.kernels.qtensor import META_DTYPE, QTensor

# quantize_rows(block [rows, width]) -> (codes [rows, width], scale [rows], zero [rows]),
# with W_block ~= (codes - zero[:, None]) * scale[:, None].
RowQuantizer = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def quantize_groupwise(weight: torch.Tensor, bits: int, group_size: int, quantize_rows: RowQuantizer) -> QTensor:
    """Quantize `weight` [out, in] group by group with `quantize_rows` (see the module docstring)."""
    out_f, in_f = weight.shape
    n_full, tail = divmod(in_f, group_size)
    codes = torch.empty(out_f, in_f, dtype=torch.uint8, device=weight.device)
    scale = torch.empty(out_f, math.ceil(in_f / group_size), dtype=torch.float32, device=weight.device)
    zero = torch.empty_like(scale)
    if n_full:
        block = weight[:, : n_full * group_size].reshape(out_f * n_full, group_size)
        c, s, z = quantize_rows(block)
        codes[:, : n_full * group_size] = c.reshape(out_f, n_full * group_size).to(torch.uint8)
        scale[:, :n_full] = s.reshape(out_f, n_full)
        zero[:, :n_full] = z.reshape(out_f, n_full)
    if tail:
        c, s, z = quantize_rows(weight[:, n_full * group_size :].contiguous())
        codes[:, n_full * group_size :] = c.to(torch.uint8)
        scale[:, n_full] = s
        zero[:, n_full] = z
    return QTensor(codes, scale.to(META_DTYPE), zero.to(META_DTYPE), bits, group_size)


def codes_from_dequantized(q_weight: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int, group_size: int) -> QTensor:
    """QTensor of a weight already on a quantization grid: q_weight [out, in] == (c - zero) * scale
    per group (what GPTQ returns), with scale and zero [out, n_groups] in float32."""
    in_f = q_weight.shape[1]
    idx = torch.arange(in_f, device=q_weight.device) // group_size  # column -> group
    s, z = scale.float()[:, idx], zero.float()[:, idx]
    codes = torch.round(q_weight.float() / s + z).clamp_(0, 2**bits - 1)
    return QTensor(codes.to(torch.uint8), scale.to(META_DTYPE), zero.to(META_DTYPE), bits, group_size)


def minmax_rows(block: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric min-max grid per row: (scale [rows], integer zero [rows]).

    The range always includes 0 (as GPTQ's and AWQ's quantizers do), so an all-positive group
    still represents 0 exactly; a constant group gets a unit range instead of a zero scale.
    """
    maxq = 2**bits - 1
    lo = block.amin(dim=1).clamp(max=0)
    hi = block.amax(dim=1).clamp(min=0)
    flat = (hi - lo) == 0
    lo, hi = torch.where(flat, -1.0, lo), torch.where(flat, 1.0, hi)
    scale = (hi - lo) / maxq
    zero = torch.round(-lo / scale)
    return scale, zero
