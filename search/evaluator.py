"""Scoring one trial: a plan (assemble, score in two stages, price) or an ensemble (vote).

A single trial assembles its plan from the layer cache, prices it (exact footprint, modelled
latency: both known before any scoring), scores the first slice of every task, and stops
early when even a perfect remainder could not reach the front or a constraint floor; the
rest of the suite is scored only for survivors. Records are stored per stage before the
trial is told COMPLETE.

An ensemble trial runs no model: it votes on its members' stored records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from trustbits.search.objectives import constraint_values, dominates, objective_values
from trustbits.search.spec import MAXIMIZE, StudySpec


@dataclass
class TrialOutcome:
    """What a trial produced; `values` is None when it stopped early."""

    values: list[float] | None
    constraints: dict[str, float]
    scores: dict  # Scores.to_json()
    flat_scores: dict[str, float]
    memory_bytes: int
    latency: dict | None  # LatencyEstimate as JSON (modelled: says so)
    examples_scored: int
    examples_total: int
    seconds: float
    stop_reason: str | None = None
    extra: dict = field(default_factory=dict)


def optimistic_point(spec: StudySpec, bounds: dict, memory_bytes: int, latency_ms: float | None) -> list[float]:
    """The best values a trial could still reach: score upper bounds, exact memory/latency."""
    highs = {name: hi for name, (_lo, hi) in bounds.items()}
    return objective_values(spec, highs, memory_bytes, latency_ms)


def cannot_reach_front(spec: StudySpec, optimistic: list[float], front: list[list[float]]) -> int | None:
    """Index of a front point that dominates even the optimistic point, else None."""
    for i, point in enumerate(front):
        if dominates(point, optimistic, spec.directions):
            return i
    return None


class TrialEvaluator:
    """Everything a worker needs to score trials, built once per worker.

    Args:
        spec: the study spec.
        loaded: the float model (`LoadedModel`); plans are swapped in and out of it.
        modules: its quantizable modules (`ModuleInfo` list).
        suite: the metrics suite every trial is scored on.
        layer_cache: the quantized-layer cache.
        store: the study's `RecordStore`.
        latency_model: a kernels `LatencyModel` for this device and model, or None.
        reference: the float model's flat scores (for max_drop constraints), or None.
    """

    def __init__(self, spec, loaded, modules, suite, layer_cache, store, latency_model=None, reference=None):
        self.spec = spec
        self.loaded = loaded
        self.modules = modules
        self.suite = suite
        self.layer_cache = layer_cache
        self.store = store
        self.latency_model = latency_model
        self.reference = reference
        from trustbits.quant.footprint import DEFAULT_KEEP_DTYPE, keep_bytes_per_param, other_params

        # Bytes of everything outside the quantizable modules: computed once, on the float model.
        self.other_bytes = other_params(loaded.model, modules) * keep_bytes_per_param(DEFAULT_KEEP_DTYPE)

    # ---- pricing ------------------------------------------------------------------------

    def price(self, plan) -> tuple[object, dict | None]:
        """(Footprint, latency estimate JSON) of a plan, from shapes alone."""
        from trustbits.quant.footprint import footprint

        fp = footprint(self.modules, plan, other_params_bytes=self.other_bytes)
        latency = None
        if self.latency_model is not None:
            specs = {name: (None if s is None else (s.bits, s.group_size)) for name, s in plan.modules.items()}
            latency = self.latency_model.predict(self.modules, specs).to_json()
        return fp, latency

    # ---- singles ------------------------------------------------------------------------

    def evaluate_plan(self, trial_number: int, plan, front: list[list[float]], progress=None, *, batch_size=None, reference_is_self=False) -> TrialOutcome:
        """Assemble, score (two stages with early stop) and price `plan`.

        Args:
            front: objective values of the current feasible front (for the early stop).
            progress: optional callable(done, total, stage) for the live view.
            batch_size: scoring batch size (None: the scorer's default).
            reference_is_self: this is the float model, the constraints' own reference.
        """
        from trustbits.kernels import exact_kernels
        from trustbits.metrics import aggregate, score, score_bounds
        from trustbits.quant.assemble import apply_plan

        t0 = time.perf_counter()
        fp, latency = self.price(plan)
        latency_ms = latency["decode_ms_per_token"] if latency else None
        total = len(list(self.suite.requests()))
        stages = [self.suite]
        e = self.spec.eval
        if e.early_stop:
            stages = [self.suite.head(e.first_fraction), self.suite.tail(e.first_fraction)]
        records, done, stop_reason = [], 0, None
        with apply_plan(self.loaded, plan, cache=self.layer_cache) as applied:
            for stage, part in enumerate(stages):
                n_part = len(list(part.requests()))

                def on_progress(d, _t, _stage=stage, _base=done):
                    if progress:
                        progress(_base + d, total, _stage)

                with exact_kernels():  # scores must not depend on batching (kernels.dispatch)
                    part_records = score(self.loaded.model, self.loaded.tokenizer, part, batch_size=batch_size, progress=on_progress)
                self.store.put(trial_number, stage, [r.to_json() for r in part_records])
                records += part_records
                done += n_part
                if stage == 0 and len(stages) > 1:
                    stop_reason = self._early_stop_reason(score_bounds(records, self.suite), fp.total_bytes, latency_ms, front)
                    if stop_reason:
                        break
            layer_errors = getattr(applied, "layer_errors", None) or {}
        scores = aggregate(records, self.suite)
        flat = scores.values()
        values = None if stop_reason else objective_values(self.spec, flat, fp.total_bytes, latency_ms)
        reference = flat if reference_is_self and self.reference is None else self.reference
        constraints = {} if stop_reason else constraint_values(self.spec, flat, fp.total_bytes, reference)
        extra = {"mean_layer_error": (sum(layer_errors.values()) / len(layer_errors)) if layer_errors else None}
        return TrialOutcome(values, constraints, scores.to_json(), flat, fp.total_bytes, latency, done, total, time.perf_counter() - t0, stop_reason, extra)

    def _early_stop_reason(self, bounds: dict, memory_bytes: int, latency_ms, front) -> str | None:
        for name, drop in self.spec.constraints.max_drop.items():
            if self.reference is None:
                break
            floor = self.reference[name] - drop
            if bounds[name][1] < floor:
                return f"{name} can reach at most {bounds[name][1]:.1f}, below its floor {floor:.1f}"
        point = optimistic_point(self.spec, {k: bounds[k] for k in MAXIMIZE if k in bounds}, memory_bytes, latency_ms)
        i = cannot_reach_front(self.spec, point, front)
        if i is not None:
            shown = ", ".join(f"{o}={v:.2f}" for o, v in zip(self.spec.search.objectives, front[i]))
            return f"even a perfect remainder is dominated by a front point ({shown})"
        return None

    # ---- ensembles ----------------------------------------------------------------------

    def evaluate_ensemble(self, members: list[dict], rule: str | None = None) -> TrialOutcome:
        """Vote on stored records. Each member: {"number", "records", "memory_bytes",
        "latency" (JSON or None), "precision" (mean bits)}."""
        from trustbits.metrics import aggregate, vote
        from trustbits.metrics.records import Record

        t0 = time.perf_counter()
        member_records = [[Record.from_json(r) for r in m["records"]] for m in members]
        voted = vote(member_records, [m["precision"] for m in members], rule=rule or self.spec.ensembles.vote)
        scores = aggregate(voted, self.suite)
        flat = scores.values()
        memory = sum(m["memory_bytes"] for m in members)
        latency = None
        if all(m["latency"] for m in members):
            from trustbits.kernels import ensemble_latency

            # Members stored their estimates as JSON; the kernels helper reads attributes.
            stored = [SimpleNamespace(**m["latency"]) for m in members]
            latency = ensemble_latency(stored, parallel=self.spec.ensembles.parallel).to_json()
        latency_ms = latency["decode_ms_per_token"] if latency else None
        values = objective_values(self.spec, flat, memory, latency_ms)
        constraints = constraint_values(self.spec, flat, memory, self.reference)
        n = len(voted)
        return TrialOutcome(values, constraints, scores.to_json(), flat, memory, latency, n, n, time.perf_counter() - t0)
