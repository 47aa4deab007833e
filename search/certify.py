"""Certification of a front: DecodingTrust's own generate-and-parse scoring of configurations
the search scored by label log-likelihood, and how often the two modes agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Certified:
    number: int
    scores: object  # metrics.Scores in generate mode
    records: list
    agreement: float  # share of examples where generate and loglik predict the same answer


def certify(spec, study, configs, suite, *, progress=None) -> dict[int, Certified]:
    """Generate-mode scores of `configs` (singles run; ensembles vote on their members'
    generate-mode records, as they do in loglik mode).

    Args:
        progress: optional callable(description, done, total).
    """
    from trustbits.kernels import exact_kernels
    from trustbits.metrics import aggregate, score, vote
    from trustbits.quant.assemble import apply_plan
    from trustbits.quant.cache import LayerCache
    from trustbits.quant.loading import load_model
    from trustbits.search.report_data import agreement
    from trustbits.search.trial_attrs import trial_plan

    loaded = load_model(spec.model.name, device=spec.model.device, dtype=spec.model.dtype)
    cache = LayerCache.for_model(loaded)
    needed = sorted({m for c in configs for m in (c.members or [c.number])})
    generated: dict[int, list] = {}
    for i, number in enumerate(needed):
        plan = trial_plan(study.trials[number])
        step = (lambda d, t, _n=number, _i=i: progress(f"certify #{_n} ({_i + 1}/{len(needed)})", d, t)) if progress else None
        with apply_plan(loaded, plan, cache=cache), exact_kernels():
            generated[number] = score(loaded.model, loaded.tokenizer, suite, mode="generate", progress=step)
    out = {}
    for c in configs:
        if c.members:
            precisions = [study.trials[m].user_attrs["avg_bits"] for m in c.members]
            recs = vote([generated[m] for m in c.members], precisions, rule=c.vote or "hard")
        else:
            recs = generated[c.number]
        out[c.number] = Certified(c.number, aggregate(recs, suite), recs, agreement(recs, c.records))
    return out
