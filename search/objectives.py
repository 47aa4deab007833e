"""Objective values and constraints of a trial, from its scores, footprint and latency.

Scores are on DecodingTrust's 0-100 scale (maximized); memory is in MB (10^6 bytes, exact
footprint of the deployed artifact) and latency in ms per decoded token (minimized).
Constraints follow Optuna's convention: a value <= 0 is satisfied. They are set on each trial
with `Trial.set_constraint` (named, e.g. ``memory_over_budget_mb``), which Optuna's samplers
and `study.best_trials` read, so `trustbits pareto` shows only feasible trials.
"""

from __future__ import annotations

from collections.abc import Mapping

from trustbits.search.spec import MAXIMIZE, StudySpec

MB = 1e6


def objective_values(spec: StudySpec, scores: Mapping[str, float], memory_bytes: int, latency_ms: float | None) -> list[float]:
    """Values in the order of `spec.search.objectives`."""
    out = []
    for name in spec.search.objectives:
        if name in MAXIMIZE:
            out.append(float(scores[name]))
        elif name == "memory":
            out.append(memory_bytes / MB)
        else:
            if latency_ms is None:
                raise ValueError("latency objective without a latency estimate")
            out.append(float(latency_ms))
    return out


def constraint_values(spec: StudySpec, scores: Mapping[str, float], memory_bytes: int, reference: Mapping[str, float] | None) -> dict[str, float]:
    """{"memory_over_budget_mb": .., "<perspective>_below_floor": ..} (<= 0: satisfied)."""
    c = spec.constraints
    out = {}
    if c.max_memory_mb is not None:
        out["memory_over_budget_mb"] = memory_bytes / MB - c.max_memory_mb
    for name, drop in sorted(c.max_drop.items()):
        if reference is None or name not in reference:
            raise ValueError(f"constraint on {name} needs the float model's score")
        out[f"{name}_below_floor"] = (reference[name] - drop) - float(scores[name])
    return out


def set_constraints(trial, values: Mapping[str, float]) -> None:
    for key, value in values.items():
        trial.set_constraint(key, value)


def dominates(a: list[float], b: list[float], directions: list[str]) -> bool:
    """Whether point `a` Pareto-dominates `b` (at least as good everywhere, better once)."""
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better
