"""What a quantization method is: one config dataclass plus one registered function.

Following torchao's `quantize_`: each method module defines

    @dataclass(frozen=True)
    class HQQConfig(MethodConfig): ...           # its knobs, with their defaults

    @register("hqq", HQQConfig)
    def quantize_hqq(weight, config, hessian=None) -> QTensor: ...

and nothing else walks the model: the layer cache calls the function per module. The function
takes one weight W [out, in] (on the device to quantize on) and, for calibration-based methods,
the module's input Hessian H = X^T X / n [in, in] (float32, X the calibration inputs); it returns
a `QTensor` whose groups stay within rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from trustbits.kernels.qtensor import QTensor

QuantizeFn = Callable[[torch.Tensor, "MethodConfig", "torch.Tensor | None"], QTensor]


@dataclass(frozen=True)
class MethodConfig:
    """Fields every method shares; subclasses add their own knobs with defaults.

    Attributes:
        bits: code width (2, 3, 4 or 8).
        group_size: input columns per (scale, zero) pair.
    """

    bits: int
    group_size: int

    # True when the function needs the module's calibration Hessian.
    needs_calibration: ClassVar[bool] = False

    @classmethod
    def preflight(cls, device) -> None:
        """Raise `TrustbitsError` if the method cannot run on `device` (missing package, no
        CUDA), before the cache spends time on calibration."""

    def key(self) -> str:
        """A short stable hash of every field: cache entries made with other knobs never match."""
        text = json.dumps({"type": type(self).__name__, **asdict(self)}, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


@dataclass(frozen=True)
class Method:
    name: str
    config_type: type[MethodConfig]
    fn: QuantizeFn


REGISTRY: dict[str, Method] = {}


def register(name: str, config_type: type[MethodConfig]) -> Callable[[QuantizeFn], QuantizeFn]:
    """Register `fn` as method `name` with its config dataclass."""

    def deco(fn: QuantizeFn) -> QuantizeFn:
        REGISTRY[name] = Method(name, config_type, fn)
        return fn

    return deco
