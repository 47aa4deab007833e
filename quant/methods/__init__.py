"""Quantization methods: one config dataclass + one registered function each (see `base`).

    hqq   HQQ (default): calibration-free half-quadratic optimization of scale-free zeros
    gptq  GPTQ through GPTQModel's per-layer routine (needs `pip install 'trustbits[gptq]'`)
    awq   AWQ: GPTQModel's AWQ needs CUDA; refused on the CPU with the reason
    rtn   round-to-nearest, the reference

    >>> from trustbits.quant.methods import quantize_weight
    >>> qt = quantize_weight(linear.weight, QuantSpec("hqq", 4, 64))   # -> QTensor
"""

from __future__ import annotations

import torch

from trustbits.errors import TrustbitsError, did_you_mean
from trustbits.kernels.qtensor import QTensor
from trustbits.quant.methods import awq, gptq, hqq, rtn  # noqa: F401  (each registers itself)
from trustbits.quant.methods.base import REGISTRY, Method, MethodConfig, register
from trustbits.quant.plan import QuantSpec

__all__ = ["REGISTRY", "Method", "MethodConfig", "register", "get_method", "method_config", "quantize_weight"]


def get_method(name: str) -> Method:
    """The registered method `name`.

    Raises:
        TrustbitsError: unknown name (with "did you mean").
    """
    if name not in REGISTRY:
        raise TrustbitsError(f"unknown quantization method '{name}' ({did_you_mean(name, REGISTRY)})", "use one of: " + ", ".join(sorted(REGISTRY)))
    return REGISTRY[name]


def method_config(spec: QuantSpec, **overrides) -> MethodConfig:
    """The method's config for `spec`, with its defaults for every other knob."""
    return get_method(spec.method).config_type(bits=spec.bits, group_size=spec.group_size, **overrides)


def quantize_weight(weight: torch.Tensor, spec: QuantSpec | MethodConfig, hessian: torch.Tensor | None = None) -> QTensor:
    """Quantize one weight matrix [out, in] on its own device.

    Args:
        weight: the float weight.
        spec: a plan's QuantSpec (method defaults) or a method config.
        hessian: H = X^T X / n [in, in] of the module's calibration inputs; required by
            methods whose config has `needs_calibration`.
    """
    config = method_config(spec) if isinstance(spec, QuantSpec) else spec
    method = next(m for m in REGISTRY.values() if type(config) is m.config_type)
    if config.needs_calibration and hessian is None:
        raise TrustbitsError(f"method '{method.name}' needs calibration activations", "quantize through the layer cache, which captures them")
    with torch.no_grad():
        return method.fn(weight.detach(), config, hessian)
