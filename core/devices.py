"""Which device and dtype a model runs on: CUDA when there is one, else the CPU; float32 on
the CPU (its bfloat16 matmuls are slow on most CPUs), bfloat16 on a GPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustbits.errors import TrustbitsError

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "bfloat16", "float16")


def resolve_device(requested: str | None = None) -> "torch.device":
    """The device to run on: `requested` if given and present, else CUDA if present, else CPU.

    Raises:
        TrustbitsError: `requested` names CUDA on a machine without it, or is not a device.
    """
    import torch

    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as e:
        raise TrustbitsError(f"'{requested}' is not a device", "use cpu, cuda or cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrustbitsError(
            f"device '{requested}' was asked for but this machine has no CUDA GPU",
            "drop --device to run on the CPU",
        )
    return device


def resolve_dtype(requested: str | None, device: "torch.device") -> "torch.dtype":
    """float32 on the CPU, bfloat16 on a GPU, unless `requested` names one of `DTYPES`."""
    import torch

    if requested in (None, "", "auto"):
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    if requested not in DTYPES:
        raise TrustbitsError(f"unknown dtype '{requested}'", f"use one of: {', '.join(DTYPES)}")
    return getattr(torch, requested)
