"""Exact memory of a plan: bytes as the deployed artifact stores them, from shapes alone.

Per quantized module [out, in] at b bits with groups of g (n_groups = ceil(in / g)):

    packed codes   ceil(out * in * b / 8)            (`QTensor.state_dict` packs tightly)
    scale + zero   2 * out * n_groups * 2            (float16 each)
    header         16                                (int32 [bits, group, out, in])
    bias           out * keep_bytes                  (kept unquantized)

A module the plan keeps costs out * in * keep_bytes (+ bias). Everything else the model holds
(embeddings, norms) costs its parameter count * keep_bytes; a head tied to the embedding is one
tensor, counted once: under the head (quantized or kept), never again as the embedding.

`keep_dtype` is the dtype the artifact stores unquantized tensors at (float16 by default, the
"16" of a plan's KEEP). The search prices plans with this before assembling anything.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from trustbits.quant.inventory import ModuleInfo
from trustbits.quant.plan import Plan, QuantSpec

DEFAULT_KEEP_DTYPE = "float16"
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
HEADER_BYTES = 16  # QTensor qheader: 4 x int32
META_BYTES = 2  # float16 scale and zero


@dataclass(frozen=True)
class ModuleBytes:
    name: str
    spec: str  # "hqq:4:64" or "keep"
    bits: int
    weight_bytes: int  # packed codes, or the float weight when kept
    meta_bytes: int  # scales + zeros + header
    bias_bytes: int

    @property
    def total(self) -> int:
        return self.weight_bytes + self.meta_bytes + self.bias_bytes


@dataclass
class Footprint:
    """Bytes of a quantized model as stored (see the module docstring)."""

    modules: list[ModuleBytes]
    other_bytes: int  # parameters outside the quantizable modules
    keep_dtype: str = DEFAULT_KEEP_DTYPE
    extra: dict = field(default_factory=dict)

    @property
    def module_bytes(self) -> int:
        return sum(m.total for m in self.modules)

    @property
    def total_bytes(self) -> int:
        return self.module_bytes + self.other_bytes

    @property
    def bits_per_weight(self) -> float:
        """Average stored bits per quantizable weight (scales and zeros included)."""
        params = sum(self.extra.get("params", {}).values()) or 1
        return 8 * sum(m.weight_bytes + m.meta_bytes for m in self.modules) / params

    def to_json(self) -> dict:
        return {
            "total_bytes": self.total_bytes,
            "module_bytes": self.module_bytes,
            "other_bytes": self.other_bytes,
            "keep_dtype": self.keep_dtype,
            "bits_per_weight": round(self.bits_per_weight, 4),
            "modules": [asdict(m) | {"total": m.total} for m in self.modules],
        }


def keep_bytes_per_param(keep_dtype: str) -> int:
    from trustbits.errors import TrustbitsError

    if keep_dtype not in _DTYPE_BYTES:
        raise TrustbitsError(f"unknown storage dtype '{keep_dtype}'", "use float16, bfloat16 or float32")
    return _DTYPE_BYTES[keep_dtype]


def module_bytes(info: ModuleInfo, spec: QuantSpec | None, keep_dtype: str = DEFAULT_KEEP_DTYPE) -> ModuleBytes:
    """Stored bytes of one module under `spec` (None: kept unquantized)."""
    kb = keep_bytes_per_param(keep_dtype)
    bias = info.out_features * kb if info.bias else 0
    if spec is None:
        return ModuleBytes(info.name, "keep", 8 * kb, info.params * kb, 0, bias)
    n_groups = math.ceil(info.in_features / spec.group_size)
    codes = math.ceil(info.params * spec.bits / 8)
    meta = 2 * info.out_features * n_groups * META_BYTES + HEADER_BYTES
    return ModuleBytes(info.name, str(spec), spec.bits, codes, meta, bias)


def other_params(model: torch.nn.Module, modules: list[ModuleInfo]) -> int:
    """Parameters outside the quantizable modules' weights and biases (a tied embedding, which
    the head stores, excluded)."""
    inside = set()
    for info in modules:
        mod = model.get_submodule(info.name)
        for p in mod.parameters(recurse=False):
            inside.add(id(p))
        weight = getattr(mod, "weight", None)
        if weight is not None:
            inside.add(id(weight))
        if info.tied:
            emb = model.get_input_embeddings()
            inside.update(id(p) for p in emb.parameters(recurse=False))
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in inside and id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def footprint(
    modules: list[ModuleInfo] | torch.nn.Module,
    plan: Plan,
    *,
    other_params_bytes: int | None = None,
    keep_dtype: str = DEFAULT_KEEP_DTYPE,
) -> Footprint:
    """Exact stored bytes of `plan` (see the module docstring).

    Args:
        modules: the model's `quantizable_modules` (shapes only), or the float model itself.
        plan: covers every module (checked).
        other_params_bytes: bytes of every other parameter; computed when `modules` is a model,
            required otherwise (the search computes it once per model).
        keep_dtype: storage dtype of unquantized tensors.

    Example:
        >>> fp = footprint(quantizable_modules(model), plan, other_params_bytes=other)
        >>> fp.total_bytes, fp.modules[0]
    """
    from trustbits.errors import TrustbitsError
    from trustbits.quant.inventory import quantizable_modules

    if isinstance(modules, torch.nn.Module):
        model = modules
        modules = quantizable_modules(model)
        if other_params_bytes is None:
            other_params_bytes = other_params(model, modules) * keep_bytes_per_param(keep_dtype)
    if other_params_bytes is None:
        raise TrustbitsError("footprint from shapes alone needs other_params_bytes", "pass the model, or other_params(model, modules) * bytes per parameter")
    plan.check_model([m.name for m in modules])
    rows = [module_bytes(m, plan.modules[m.name], keep_dtype) for m in modules]
    return Footprint(rows, int(other_params_bytes), keep_dtype, {"params": {m.name: m.params for m in modules}})
