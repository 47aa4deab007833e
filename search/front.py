"""A study's Pareto front and its baselines, as rows any view (table, plot, JSON) can show.

The front is `study.best_trials`: Optuna's own non-dominated, feasible trials, so a plain
`optuna.load_study(...).best_trials` sees exactly what `trustbits pareto` shows. Baselines
(the float model and the uniform plans) are always listed beside it for comparison, whether
or not they are on the front.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from trustbits.errors import TrustbitsError
from trustbits.search.sampler import is_ensemble, kind_of
from trustbits.search.spec import PERSPECTIVES
from trustbits.search.trial_attrs import trial_scores


@dataclass
class Row:
    """One configuration as the user compares it."""

    number: int
    label: str
    kind: str
    on_front: bool
    objectives: dict[str, float]
    scores: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    memory_mb: float
    latency_ms: float | None
    latency_modelled: bool
    avg_bits: float | None
    bits_histogram: dict[str, int]
    members: list[int] = field(default_factory=list)
    vote: str | None = None
    duplicate_of: int | None = None

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _intervals(scores_json: dict | None) -> dict[str, tuple[float, float]]:
    """name -> (low, high) of the 95% interval, from `Scores.to_json()` (intervals are
    stored as [value, low, high])."""
    out = {}
    for name, entry in (scores_json or {}).get("perspectives", {}).items():
        if entry.get("score"):
            out[name] = tuple(entry["score"][1:3])
    trust = (scores_json or {}).get("trust")
    if trust:
        out["trust"] = tuple(trust[1:3])
    return out


def row_of(trial, objectives: list[str], on_front: bool) -> Row:
    a = trial.user_attrs
    latency = a.get("latency") or {}
    return Row(
        number=trial.number,
        label=a.get("label", "sampled"),
        kind=kind_of(trial),
        on_front=on_front,
        objectives=dict(zip(objectives, trial.values or [])),
        scores=dict(a.get("flat") or {}),
        intervals=_intervals(trial_scores(trial)),
        memory_mb=a.get("memory_bytes", 0) / 1e6,
        latency_ms=latency.get("decode_ms_per_token"),
        latency_modelled=bool(latency.get("modelled", True)) if latency else False,
        avg_bits=a.get("avg_bits"),
        bits_histogram=dict(a.get("bits_histogram") or {}),
        members=list(a.get("members") or []),
        vote=a.get("vote"),
        duplicate_of=a.get("duplicate_of"),
    )


def is_baseline(trial) -> bool:
    label = trial.user_attrs.get("label", "")
    return label == "float" or label.startswith("uniform-")


@dataclass
class Front:
    study_name: str
    objectives: list[str]
    directions: list[str]
    front: list[Row]
    baselines: list[Row]
    counts: dict[str, int]  # singles, ensembles, stopped_early, skipped, failed

    def to_json(self) -> dict:
        return {
            "study": self.study_name,
            "objectives": self.objectives,
            "directions": self.directions,
            "front": [r.to_json() for r in self.front],
            "baselines": [r.to_json() for r in self.baselines],
            "trials": self.counts,
        }


def load_front(study: optuna.Study) -> Front:
    """The front and baselines of a study made by trustbits."""
    spec = study.user_attrs.get("trustbits:spec")
    if not spec:
        raise TrustbitsError(f"study '{study.study_name}' was not made by trustbits", "pass a study created by `trustbits search`")
    objectives = list(spec["search"]["objectives"])
    trials = study.get_trials(deepcopy=False)
    best = {t.number for t in study.best_trials}
    rows = {t.number: row_of(t, objectives, True) for t in trials if t.number in best}
    front = sorted(rows.values(), key=lambda r: (r.memory_mb, r.number))
    baselines = [rows.get(t.number) or row_of(t, objectives, False) for t in trials if t.state == TrialState.COMPLETE and not is_ensemble(t) and is_baseline(t)]
    baselines.sort(key=lambda r: -r.memory_mb)
    return Front(study.study_name, objectives, [d.name.lower() for d in study.directions], front, baselines, trial_counts(trials))


def trial_counts(trials) -> dict[str, int]:
    """Complete singles and ensembles, singles the early stop ended, trials skipped without
    scoring (over the memory budget, a repeated member set), failed trials."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    stopped = [t for t in pruned if not is_ensemble(t) and t.user_attrs.get("examples_scored")]
    return {
        "singles": sum(1 for t in complete if not is_ensemble(t)),
        "ensembles": sum(1 for t in complete if is_ensemble(t)),
        "stopped_early": len(stopped),
        "skipped": len(pruned) - len(stopped),
        "failed": sum(1 for t in trials if t.state == TrialState.FAIL),
    }


def perspective_columns(front: Front) -> list[str]:
    names = set()
    for r in front.front + front.baselines:
        names |= set(r.scores)
    return [p for p in ("trust",) + PERSPECTIVES if p in names]
