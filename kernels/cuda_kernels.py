"""GPU kernels: maintained library code only, never home-made.

`cuda-int4pack` is PyTorch's own tinygemm int4 weight-only matmul (`aten._weight_int4pack_mm`,
the kernel torchao's int4 weight-only config runs), shipped with every CUDA build of torch, so
it needs no extra package. Like its CPU twin (`int4pack.py`) it runs any QTensor of at most 4
bits (W = (c - 8) * s + o with o = (8 - z) * s) on bfloat16 activations: tolerance 2e-2.
Input: codes re-packed two per byte, even column in the high nibble, then
`_convert_weight_to_int4pack(.., inner_k_tiles=8)`; in features padded to a multiple of
max(128, group). 8-bit weights and everything else on a GPU run on `dequant-cached` (cuBLAS).

No GPU was available while this was written; `tests/kernels/test_gpu.py` (marked `gpu`)
checks it against the dequantized reference wherever one is.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from trustbits.kernels.kernel import Kernel, KernelState

GROUPS = (32, 64, 128, 256)
INNER_K_TILES = 8


class CudaInt4PackKernel(Kernel):
    name = "cuda-int4pack"
    tolerance = 2e-2
    description = "torch tinygemm _weight_int4pack_mm (CUDA), bfloat16 activations"

    def unsupported(self, bits, group_size, shape, device, dtype):
        if device.type != "cuda":
            return "runs on CUDA GPUs only"
        if dtype != torch.bfloat16:
            return "computes in bfloat16 only"
        if bits > 4:
            return f"holds at most 4-bit codes, not {bits}"
        if group_size not in GROUPS:
            return f"needs a group size in {GROUPS}, not {group_size}"
        if shape[0] % 8:
            return f"needs out features divisible by 8, not {shape[0]}"
        if not hasattr(torch.ops.aten, "_weight_int4pack_mm"):
            return f"torch {torch.__version__} has no _weight_int4pack_mm"
        return None

    def prepare(self, q, device, dtype):
        q = q.to(device)
        out_f, in_f = q.shape
        g = q.group_size
        step = max(128, g)
        kp = math.ceil(in_f / step) * step
        shift = 8 - 2 ** (q.bits - 1)  # centre low-bit codes on 8: small offsets (see int4pack.py)
        codes = F.pad(q.codes.to(torch.int32) + shift, (0, kp - in_f), value=8)
        pairs = ((codes[:, 0::2] << 4) | codes[:, 1::2]).to(torch.uint8).contiguous()  # [out, kp / 2]
        packed = torch.ops.aten._convert_weight_to_int4pack(pairs, INNER_K_TILES)
        n_groups = kp // g
        scale = F.pad(q.scale.to(torch.float32), (0, n_groups - q.n_groups))
        zero = F.pad(q.zero.to(torch.float32), (0, n_groups - q.n_groups))
        offset = (8.0 - shift - zero) * scale
        sz = torch.stack([scale.t(), offset.t()], dim=-1).to(torch.bfloat16).contiguous()  # [G, out, 2]
        return KernelState({"packed": packed, "sz": sz}, {"group_size": g, "pad": kp - in_f})

    def run(self, state, x, bias):
        t, pad = state.tensors, state.meta["pad"]
        xb = (F.pad(x, (0, pad)) if pad else x).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm(xb, t["packed"], state.meta["group_size"], t["sz"]).to(x.dtype)
        return y if bias is None else y + bias
