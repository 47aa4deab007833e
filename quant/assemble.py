"""Assemble a plan: swap cached quantized layers into the float model, and swap them back.

gpt-fast's two phases: the layer cache makes the weights (phase 1, once per layer and spec);
`apply_plan` only converts modules (phase 2, every trial). Each planned module's nn.Linear is
replaced by a `QuantLinear` over its cached `QTensor`; a quantized head tied to the embedding
also turns the embedding into a `QuantEmbedding` over the same QTensor (stored once). The float
modules are kept aside, so `restore()` puts the exact float model back without reloading.

    with apply_plan(loaded, plan, cache=cache) as applied:
        score(loaded.model)                       # the quantized model
        applied.footprint.total_bytes, applied.layer_errors
    # here loaded.model is the float model again
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from torch import nn

from trustbits.errors import TrustbitsError
from trustbits.quant.cache import LayerCache
from trustbits.quant.footprint import DEFAULT_KEEP_DTYPE, Footprint, footprint
from trustbits.quant.plan import Plan

log = logging.getLogger(__name__)


@dataclass
class AppliedPlan:
    """A plan swapped into a model; a context manager that restores the float model on exit.

    Attributes:
        loaded: the LoadedModel whose `model` now runs the plan.
        plan: the plan.
        footprint: exact stored bytes of the plan (`trustbits.quant.footprint`).
        layer_errors: module -> relative output error on the calibration activations
            (||X (W - W_q)^T|| / ||X W^T||), from the cache, for every quantized module.
        seconds: wall time of the assembly (building missing layers included).
        built: layers quantized during this call (0 from a warm cache).
    """

    loaded: object
    plan: Plan
    footprint: Footprint
    layer_errors: dict[str, float]
    seconds: float
    built: int = 0
    _originals: dict[str, nn.Module] = field(default_factory=dict, repr=False)
    _original_embedding: nn.Module | None = field(default=None, repr=False)
    active: bool = True

    @property
    def model(self):
        return self.loaded.model

    def restore(self) -> None:
        """Put the float modules back (idempotent)."""
        if not self.active:
            return
        model = self.loaded.model
        for name, module in self._originals.items():
            _set_submodule(model, name, module)
        if self._original_embedding is not None:
            model.set_input_embeddings(self._original_embedding)
        self._originals.clear()
        self.active = False

    def __enter__(self) -> "AppliedPlan":
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def summary(self) -> dict:
        """JSON-ready: bytes, bits histogram, mean and worst layer error."""
        errors = self.layer_errors
        worst = max(errors, key=errors.get) if errors else None
        return {
            "total_bytes": self.footprint.total_bytes,
            "bits_per_weight": round(self.footprint.bits_per_weight, 4),
            "bits_histogram": self.plan.bits_histogram(),
            "mean_layer_error": sum(errors.values()) / len(errors) if errors else 0.0,
            "max_layer_error": errors[worst] if worst else 0.0,
            "worst_layer": worst,
            "assemble_seconds": round(self.seconds, 3),
            "layers_built": self.built,
        }

    def plan_with_errors(self) -> Plan:
        """The plan with the layer errors recorded in its meta (what an artifact saves)."""
        meta = dict(self.plan.meta) | {"layer_errors": {k: round(v, 6) for k, v in self.layer_errors.items()}}
        return Plan(dict(self.plan.modules), self.plan.model_name, self.plan.model_fingerprint, meta)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, leaf, module)


def apply_plan(loaded, plan: Plan, *, cache: LayerCache | None = None, progress=None, keep_dtype: str = DEFAULT_KEEP_DTYPE) -> AppliedPlan:
    """Swap `plan`'s quantized layers into `loaded.model` (see the module docstring).

    Args:
        loaded: a float `LoadedModel` (no other plan applied).
        plan: covers every quantizable module; refused if made for other weights.
        cache: the layer cache (default: `LayerCache.for_model(loaded)`); missing layers are
            quantized into it first.
        progress: optional callable(done, total, description).
        keep_dtype: storage dtype of unquantized tensors, for the footprint.

    Returns:
        An `AppliedPlan`; call `restore()` (or use it in a `with`) to get the float model back.

    Raises:
        TrustbitsError: a plan for another model or with unknown modules, a model that already
            has a plan applied, or a method that cannot run here.
    """
    from trustbits.kernels.linear import QuantEmbedding, QuantLinear
    from trustbits.quant.inventory import quantizable_modules

    t0 = time.perf_counter()
    model = loaded.model
    infos = quantizable_modules(model)
    plan.check_model([m.name for m in infos], loaded.fingerprint)
    quantized = [m for m in infos if plan.modules[m.name] is not None]
    if any(not isinstance(model.get_submodule(m.name), nn.Linear) for m in infos):
        raise TrustbitsError("this model already has a quantization plan applied", "restore() the previous AppliedPlan before applying another")
    cache = cache or LayerCache.for_model(loaded)
    built = cache.build(loaded, plan, progress=progress)
    fp = footprint(model, plan, keep_dtype=keep_dtype)

    device, dtype = loaded.device, loaded.dtype
    applied = AppliedPlan(loaded, plan, fp, {}, 0.0, built)
    try:
        for i, info in enumerate(quantized):
            spec = plan.modules[info.name]
            layer = cache.get(info.name, spec)
            if layer is None:  # removed between build and now (another process cleared it)
                raise TrustbitsError(f"cached layer {info.name} at {spec} vanished during assembly", "run again; the cache rebuilds it")
            original = model.get_submodule(info.name)
            qtensor = layer.qtensor.to(device)
            bias = original.bias.detach() if original.bias is not None else None
            _set_submodule(model, info.name, QuantLinear(qtensor, bias=bias, compute_dtype=dtype))
            applied._originals[info.name] = original
            applied.layer_errors[info.name] = layer.rel_error
            if info.tied:
                emb = model.get_input_embeddings()
                applied._original_embedding = emb
                model.set_input_embeddings(QuantEmbedding(qtensor, compute_dtype=dtype, padding_idx=getattr(emb, "padding_idx", None)))
            if progress:
                progress(i + 1, len(quantized), "assembling")
    except BaseException:
        applied.restore()
        raise
    applied.seconds = time.perf_counter() - t0
    log.info("assembled %d quantized modules in %.2f s (%d built)", len(quantized), applied.seconds, built)
    return applied
