"""`cpu-lowbit`: trustbits' own fused unpack-and-matmul for 2-, 3-, 4- and 8-bit weights on the
CPU (C++, `csrc/lowbit_gemv.cpp`, built once by `_cpu_ext`).

It keeps activations in float32 and applies each group's scale and zero after a float32 dot
product of the raw codes, so it agrees with dequantize-then-matmul to float32 rounding
(tolerance 1e-5), at every group size that is a multiple of 16 and any shape (rows are padded
to a multiple of 64 columns with code 0, and the activations with zeros). It reads exactly
`bits` bits per weight plus a float16 scale and zero per group: the bytes the plan's
footprint counts.

The packed layout (see the C++ file) puts every 16 consecutive codes of a row behind one
16-byte load and one shift: 8 bits plain; 4 bits per 32 columns, byte j = c[j] | c[16+j] << 4;
2 bits per 64 columns, byte j = c[j] | c[16+j] << 2 | c[32+j] << 4 | c[48+j] << 6; 3 bits as the
2-bit layout of the low bits followed by one 64-bit word of third bits per 64 columns.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from trustbits.kernels import _cpu_ext
from trustbits.kernels.kernel import Kernel, KernelState
from trustbits.kernels.qtensor import QTensor

BLOCK = 64  # columns per packing block; rows are padded to a multiple of it


def padded_in(in_features: int) -> int:
    return math.ceil(in_features / BLOCK) * BLOCK


def pack_rows(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """codes uint8 [out, in] -> packed uint8 [out, padded_in * bits / 8] (layout above)."""
    out_f, in_f = codes.shape
    kp = padded_in(in_f)
    c = F.pad(codes.to(torch.int32), (0, kp - in_f))  # [out, kp], padded with code 0
    if bits == 8:
        return c.to(torch.uint8).contiguous()
    if bits == 4:
        c = c.view(out_f, kp // 32, 2, 16)
        return (c[:, :, 0] | (c[:, :, 1] << 4)).to(torch.uint8).reshape(out_f, kp // 2).contiguous()
    c = c.view(out_f, kp // 64, 4, 16)  # [out, block, quarter, lane]
    low = c & 3
    plane = (low[:, :, 0] | low[:, :, 1] << 2 | low[:, :, 2] << 4 | low[:, :, 3] << 6).to(torch.uint8)  # [out, blocks, 16]
    if bits == 2:
        return plane.reshape(out_f, kp // 4).contiguous()
    # 3 bits: third bit of column j of the block -> bit j % 8 of byte j // 8 of a 64-bit word.
    third = ((c >> 2) & 1).reshape(out_f, kp // 64, 8, 8)
    word = (third << torch.arange(8, device=c.device, dtype=torch.int32)).sum(-1).to(torch.uint8)  # [out, blocks, 8]
    return torch.cat([plane, word], dim=-1).reshape(out_f, kp * 3 // 8).contiguous()


def pack_scale_zero(q: QTensor) -> torch.Tensor:
    """(scale, zero) float16 pairs [out, G, 2], G = ceil(padded_in / group); groups past the
    QTensor's (only in the zero padding) get scale 0."""
    out_f, in_f = q.shape
    g_padded = math.ceil(padded_in(in_f) / q.group_size)
    sz = torch.zeros(out_f, g_padded, 2, dtype=torch.float16, device=q.codes.device)
    sz[:, : q.n_groups, 0] = q.scale.to(torch.float16)
    sz[:, : q.n_groups, 1] = q.zero.to(torch.float16)
    return sz


class CpuLowbitKernel(Kernel):
    name = "cpu-lowbit"
    tolerance = 1e-5
    description = "trustbits C++ fused unpack-and-matmul, float32 activations"

    def unsupported(self, bits, group_size, shape, device, dtype):
        if device.type != "cpu":
            return "runs on the CPU only"
        if dtype != torch.float32:
            return "computes in float32 only"
        if bits not in (2, 3, 4, 8):
            return f"no {bits}-bit layout"
        if group_size % 16:
            return f"needs a group size that is a multiple of 16, not {group_size}"
        if not _cpu_ext.available():
            return f"the C++ extension is unavailable ({_cpu_ext.unavailable_reason()})"
        return None

    def prepare(self, q, device, dtype):
        q = q.to(device)
        return KernelState(
            {"packed": pack_rows(q.codes, q.bits), "sz": pack_scale_zero(q)},
            {"bits": q.bits, "group_size": q.group_size},
        )

    def run(self, state, x, bias):
        t = state.tensors
        return torch.ops.trustbits_lowbit.mm(x.contiguous(), t["packed"], t["sz"], state.meta["bits"], state.meta["group_size"], bias)
