"""The quantized-weight format every method produces and every kernel consumes.

A `QTensor` is a group-wise affine quantization of a weight matrix W [out, in]:

    W[o, i] ~= (codes[o, i] - zero[o, g]) * scale[o, g],    g = i // group_size

with `codes` unsigned integers in [0, 2**bits), and one (scale, zero) pair per row and group of
`group_size` consecutive input columns; the last group of a row is shorter when `in` is not a
multiple of `group_size` (SmolLM2's 576 is not a multiple of 128). `zero` is in code units and
may be fractional (HQQ optimizes it); GPTQ and RTN produce integer zeros in the same form.

In memory `codes` stay unpacked (uint8), which every kernel can re-layout cheaply. On disk and
in footprints the codes are bit-packed tightly (`pack_codes`): `out * in * bits / 8` bytes, plus
scale and zero at float16: exactly what `state_dict()` writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SUPPORTED_BITS = (2, 3, 4, 8)
# Scales and zeros are stored (and counted in footprints) at this dtype.
META_DTYPE = torch.float16


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Bit-pack integer codes (any shape, values < 2**bits) into a flat uint8 tensor.

    Codes are laid out little-endian in a bit stream: code k occupies bits [k*b, (k+1)*b).
    Length: ceil(numel * bits / 8) bytes.
    """
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
    flat = codes.reshape(-1).to(torch.uint8)
    if bits == 8:
        return flat.clone()
    # Pad to a whole number of 8-code blocks; each block is exactly `bits` bytes.
    n = flat.numel()
    pad = (-n) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    blocks = flat.view(-1, 8).to(torch.int64)  # [n_blocks, 8]
    shifts = torch.arange(8, dtype=torch.int64) * bits
    word = (blocks << shifts).sum(dim=1)  # [n_blocks], 8*bits <= 24 bits used
    byte_shifts = torch.arange(bits, dtype=torch.int64) * 8
    packed = ((word[:, None] >> byte_shifts) & 0xFF).to(torch.uint8)  # [n_blocks, bits]
    return packed.reshape(-1)[: math.ceil(n * bits / 8)]


def unpack_codes(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of `pack_codes`: a flat uint8 tensor of `numel` codes."""
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
    packed = packed.reshape(-1).to(torch.uint8)
    if bits == 8:
        return packed[:numel].clone()
    n_blocks = math.ceil(numel / 8)
    need = n_blocks * bits
    if packed.numel() < need:
        packed = torch.cat([packed, packed.new_zeros(need - packed.numel())])
    by = packed[:need].view(n_blocks, bits).to(torch.int64)
    word = (by << (torch.arange(bits, dtype=torch.int64) * 8)).sum(dim=1)
    codes = (word[:, None] >> (torch.arange(8, dtype=torch.int64) * bits)) & ((1 << bits) - 1)
    return codes.reshape(-1)[:numel].to(torch.uint8)


@dataclass
class QTensor:
    """A group-wise affine quantized weight matrix (see the module docstring).

    Attributes:
        codes: uint8 [out, in], values in [0, 2**bits).
        scale: float16 [out, n_groups].
        zero: float16 [out, n_groups], in code units.
        bits: 2, 3, 4 or 8.
        group_size: input columns per (scale, zero) pair.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int

    def __post_init__(self):
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {self.bits}")
        out_f, in_f = self.codes.shape
        n_groups = math.ceil(in_f / self.group_size)
        for name in ("scale", "zero"):
            t = getattr(self, name)
            if tuple(t.shape) != (out_f, n_groups):
                raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {(out_f, n_groups)}")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)

    @property
    def n_groups(self) -> int:
        return self.scale.shape[1]

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """W [out, in] at `dtype`: the reference every kernel is checked against."""
        out_f, in_f = self.shape
        # Expand per-group params to per-column: [out, n_groups] -> [out, in].
        idx = torch.arange(in_f, device=self.codes.device) // self.group_size
        scale = self.scale.to(torch.float32)[:, idx]
        zero = self.zero.to(torch.float32)[:, idx]
        return ((self.codes.to(torch.float32) - zero) * scale).to(dtype)

    def nbytes(self) -> int:
        """Bytes as stored: packed codes + float16 scales and zeros."""
        out_f, in_f = self.shape
        return math.ceil(out_f * in_f * self.bits / 8) + 2 * self.scale.numel() * self.scale.element_size()

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Tensors for safetensors: packed codes, scale, zero, and a small int32 header
        [bits, group_size, out, in] so a file is self-describing."""
        out_f, in_f = self.shape
        return {
            f"{prefix}qweight": pack_codes(self.codes.cpu(), self.bits),
            f"{prefix}scale": self.scale.to(META_DTYPE).cpu().contiguous(),
            f"{prefix}zero": self.zero.to(META_DTYPE).cpu().contiguous(),
            f"{prefix}qheader": torch.tensor([self.bits, self.group_size, out_f, in_f], dtype=torch.int32),
        }

    @classmethod
    def from_state_dict(cls, tensors: dict[str, torch.Tensor], prefix: str = "") -> "QTensor":
        """Inverse of `state_dict`."""
        bits, group_size, out_f, in_f = (int(v) for v in tensors[f"{prefix}qheader"].tolist())
        codes = unpack_codes(tensors[f"{prefix}qweight"], bits, out_f * in_f).view(out_f, in_f)
        return cls(codes, tensors[f"{prefix}scale"], tensors[f"{prefix}zero"], bits, group_size)

    def to(self, device) -> "QTensor":
        return QTensor(self.codes.to(device), self.scale.to(device), self.zero.to(device), self.bits, self.group_size)
