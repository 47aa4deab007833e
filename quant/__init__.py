"""trustbits.quant: models, per-layer plans, quantization methods, the layer cache, exact
footprints and deployable artifacts.

The contract the search and the eval CLI use (all names importable from here, lazily: importing
this package does not import torch):

    load_model(name, *, device=None, dtype=None) -> LoadedModel
        `builtin:NAME`, a .gguf file, a HF model folder, a hub id, or a trustbits artifact folder.

    Plan / QuantSpec(method, bits, group_size)            # trustbits.quant.plan
        Plan.uniform(names, spec) / Plan.from_rules(names, {regex: spec}, default)
        Plan.per_kind(names, {"down_proj": "hqq:8:64"}, default)
        Plan.per_layer_range(names, {"0-3": "hqq:8:64"}, default)
        plan.to_json() / Plan.from_json(d) / plan.save(path) / Plan.load(path)
        plan.check_model(names, fingerprint)

    quantizable_modules(model) -> [ModuleInfo]            # the head last

    LayerCache.for_model(loaded)                           # trustbits.quant.cache
        .build(loaded, specs, *, modules=None, progress=None) -> layers built
            specs: a Plan, QuantSpecs (each for every module), or (module, spec) pairs;
            the search warms it with every spec of its space before trials.
        .get(module, spec) -> CachedLayer(qtensor, rel_error) | None
        .list() / .size() / .clear(); .stats (hits, misses, corrupt)

    apply_plan(loaded, plan, *, cache=None, progress=None) -> AppliedPlan   # trustbits.quant.assemble
        swaps QuantLinear (and, for a quantized tied head, QuantEmbedding) into loaded.model;
        AppliedPlan.restore() or `with apply_plan(...) as applied:` gives the float model back.
        applied.footprint (Footprint), applied.layer_errors {module: relative output error},
        applied.summary(), applied.plan_with_errors()

    footprint(modules_or_model, plan, *, other_params_bytes=None, keep_dtype="float16") -> Footprint
        exact stored bytes from shapes alone; .total_bytes, .modules (per-module breakdown).
        Import it as `from trustbits.quant.footprint import footprint`: the package attribute
        `trustbits.quant.footprint` is the submodule of the same name.

    save_artifact(applied, out, *, keep_dtype="float16") / load_quantized(path) -> LoadedModel

    quantize_weight(weight, spec, hessian=None) -> QTensor   # one matrix, any method

`progress` arguments are callables progress(done, total, description); `rich_progress()` makes
one that draws rich bars.
"""

from __future__ import annotations

from trustbits.lazy import lazy_exports

_EXPORTS = {
    "load_model": "trustbits.quant.loading",
    "LoadedModel": "trustbits.quant.loading",
    "Plan": "trustbits.quant.plan",
    "QuantSpec": "trustbits.quant.plan",
    "BITS": "trustbits.quant.plan",
    "GROUP_SIZES": "trustbits.quant.plan",
    "METHODS": "trustbits.quant.plan",
    "quantizable_modules": "trustbits.quant.inventory",
    "ModuleInfo": "trustbits.quant.inventory",
    "LayerCache": "trustbits.quant.cache",
    "CachedLayer": "trustbits.quant.cache",
    "apply_plan": "trustbits.quant.assemble",
    "AppliedPlan": "trustbits.quant.assemble",
    "Footprint": "trustbits.quant.footprint",
    "other_params": "trustbits.quant.footprint",
    "save_artifact": "trustbits.quant.artifact",
    "load_quantized": "trustbits.quant.artifact",
    "quantize_weight": "trustbits.quant.methods",
    "CalibrationConfig": "trustbits.quant.calibration",
    "perplexity": "trustbits.quant.quality",
    "rich_progress": "trustbits.quant.progress",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
