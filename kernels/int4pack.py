"""`cpu-int4pack`: PyTorch's own packed int4 weight-only matmul on the CPU
(`aten._weight_int4pack_mm_for_cpu`, weights re-laid by `_convert_weight_to_int4pack_for_cpu`).

Its weights are 4-bit codes with a float scale and offset per group: W = (c - 8) * s + o. Our
W = (c - z) * s is the same with o = (8 - z) * s, so any QTensor of at most 4 bits runs on it
(2- and 3-bit codes, shifted to sit around 8, are valid 4-bit codes; they then move 4 bits per
weight, which the latency table records). Its fast path takes bfloat16 activations (float32 ones take a slow scalar
path, ~15x slower here), so x is rounded to bfloat16: tolerance 2e-2. Constraints: out features
a multiple of 16, groups of 32, 64, 128 or 256; in features are padded to a whole group.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from trustbits.kernels.kernel import Kernel, KernelState

GROUPS = (32, 64, 128, 256)


def _have_ops() -> bool:
    aten = torch.ops.aten
    return hasattr(aten, "_weight_int4pack_mm_for_cpu") and hasattr(aten, "_convert_weight_to_int4pack_for_cpu")


class CpuInt4PackKernel(Kernel):
    name = "cpu-int4pack"
    tolerance = 2e-2
    description = "torch _weight_int4pack_mm_for_cpu, bfloat16 activations"

    def unsupported(self, bits, group_size, shape, device, dtype):
        if device.type != "cpu":
            return "runs on the CPU only"
        if bits > 4:
            return f"holds at most 4-bit codes, not {bits}"
        if group_size not in GROUPS:
            return f"needs a group size in {GROUPS}, not {group_size}"
        if shape[0] % 16:
            return f"needs out features divisible by 16, not {shape[0]}"
        if not _have_ops():
            return f"torch {torch.__version__} has no _weight_int4pack_mm_for_cpu"
        return None

    def prepare(self, q, device, dtype):
        q = q.to(device)
        out_f, in_f = q.shape
        g = q.group_size
        kp = math.ceil(in_f / g) * g
        # Codes of fewer bits are centred on 8 (c' = c + 8 - 2**(bits-1)), so the offset
        # (2**(bits-1) - z) * s stays about one scale in size: it is rounded to bfloat16, and
        # its error adds up over a whole group (offsets near 8 * s cost 2-bit weights ~2%).
        shift = 8 - 2 ** (q.bits - 1)
        # Padded columns get code 8 (any value: the padded activations are 0).
        codes = F.pad(q.codes.to(torch.int32) + shift, (0, kp - in_f), value=8)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 2)
        scale = q.scale.to(torch.float32)
        offset = (8.0 - shift - q.zero.to(torch.float32)) * scale
        sz = torch.stack([scale.t(), offset.t()], dim=-1).to(torch.bfloat16).contiguous()  # [G, out, 2]
        return KernelState({"packed": packed, "sz": sz}, {"group_size": g, "pad": kp - in_f})

    def run(self, state, x, bias):
        t, pad = state.tensors, state.meta["pad"]
        xb = (F.pad(x, (0, pad)) if pad else x).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(xb, t["packed"], state.meta["group_size"], t["sz"]).to(x.dtype)
        return y if bias is None else y + bias
