"""The search space: how an Optuna trial's parameters become a per-module plan.

Modules are grouped by the spec's granularity and each group gets one bit-width parameter:

    layer       bits.layer.<i>       the 7 linears of decoder layer i (30 params on SmolLM2)
    projection  bits.proj.<kind>     every q_proj, every down_proj, ... (7 params)
    module      bits.module.<name>   every linear on its own (210 params)
    block       bits.block.<j>       layers [j*block_size, (j+1)*block_size)

plus ``bits.head`` for the output head (it moves more bytes at decode than all 4-bit linears
of SmolLM2 together, so it is always a choice of its own), and ``method`` / ``group_size``
when the spec offers more than one. Bit-width 16 means "keep in float".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trustbits.quant.inventory import ModuleInfo
from trustbits.quant.plan import KEEP_BITS, Plan, QuantSpec
from trustbits.search.spec import StudySpec

HEAD_GROUP = "head"


def _group_of(m: ModuleInfo, granularity: str, block_size: int) -> str:
    if m.role == "head":
        return HEAD_GROUP
    if granularity == "module":
        return f"module.{m.name}"
    if granularity == "projection":
        return f"proj.{m.kind}"
    layer = m.layer if m.layer is not None else -1
    if granularity == "block":
        return f"block.{layer // block_size}"
    return f"layer.{layer}"


@dataclass
class SearchSpace:
    """Groups of modules and the choices for each group."""

    modules: list[ModuleInfo]
    groups: dict[str, list[str]]  # group -> module names, in model order
    bits: tuple[int, ...]
    head_bits: tuple[int, ...]
    methods: tuple[str, ...]
    group_sizes: tuple[int, ...]
    model_name: str | None = None
    model_fingerprint: str | None = None

    @classmethod
    def from_spec(cls, spec: StudySpec, modules: list[ModuleInfo], *, model_name=None, model_fingerprint=None) -> SearchSpace:
        groups: dict[str, list[str]] = {}
        for m in modules:
            groups.setdefault(_group_of(m, spec.search.granularity, spec.search.block_size), []).append(m.name)
        return cls(
            modules=modules,
            groups=groups,
            bits=tuple(spec.search.bits),
            head_bits=tuple(spec.head_bits),
            methods=tuple(spec.search.methods),
            group_sizes=tuple(spec.search.group_sizes),
            model_name=model_name,
            model_fingerprint=model_fingerprint,
        )

    # ---- parameters ---------------------------------------------------------------------

    def choices(self, group: str) -> tuple[int, ...]:
        return self.head_bits if group == HEAD_GROUP else self.bits

    def suggest(self, trial) -> dict:
        """Sample every parameter on `trial` (an optuna.Trial); returns the params."""
        params = {f"bits.{g}": trial.suggest_categorical(f"bits.{g}", list(self.choices(g))) for g in self.groups}
        if len(self.methods) > 1:
            params["method"] = trial.suggest_categorical("method", list(self.methods))
        if len(self.group_sizes) > 1:
            params["group_size"] = trial.suggest_categorical("group_size", list(self.group_sizes))
        return params

    def plan(self, params: Mapping) -> Plan:
        """The plan for a full set of parameters."""
        method = params.get("method", self.methods[0])
        group_size = params.get("group_size", self.group_sizes[0])
        modules = {}
        for group, names in self.groups.items():
            bits = int(params[f"bits.{group}"])
            spec = None if bits == KEEP_BITS else QuantSpec(method, bits, group_size)
            for name in names:
                modules[name] = spec
        ordered = {m.name: modules[m.name] for m in self.modules}
        return Plan(ordered, self.model_name, self.model_fingerprint)

    def params_for(self, group_bits: Mapping[str, int], *, method: str | None = None, group_size: int | None = None) -> dict:
        """Parameters (for `enqueue_trial`) from a bit-width per group. A bit-width outside a
        group's choices is moved to the nearest allowed one above it (never below: seeds
        must not cost trust the allocation did not plan for)."""
        params = {}
        for g in self.groups:
            want = int(group_bits[g])
            allowed = sorted(self.choices(g))
            above = [b for b in allowed if b >= want]
            params[f"bits.{g}"] = above[0] if above else allowed[-1]
        if len(self.methods) > 1:
            params["method"] = method or self.methods[0]
        if len(self.group_sizes) > 1:
            params["group_size"] = group_size or self.group_sizes[0]
        return params

    def uniform_params(self, bits: int, **kw) -> dict:
        return self.params_for({g: bits for g in self.groups}, **kw)

    def specs(self) -> list[QuantSpec]:
        """Every (method, bits, group) this space can ask of the layer cache."""
        all_bits = sorted({b for b in self.bits + self.head_bits if b != KEEP_BITS})
        return [QuantSpec(m, b, g) for m in self.methods for g in self.group_sizes for b in all_bits]

    def group_params(self, group: str) -> int:
        names = set(self.groups[group])
        return sum(m.params for m in self.modules if m.name in names)


def average_bits(plan: Plan, modules: list[ModuleInfo]) -> float:
    """Parameter-weighted mean bit-width of the plan's modules (16 for kept ones)."""
    total = sum(m.params for m in modules)
    bits = sum(m.params * (KEEP_BITS if plan.modules[m.name] is None else plan.modules[m.name].bits) for m in modules)
    return bits / total if total else float(KEEP_BITS)
