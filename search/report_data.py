"""The numbers of a study report, computed from the study and its stored records.

Everything here is recomputed from what the search stored (per-example records, plans, exact
footprints), so a report regenerates from the study alone; only the certification (generate
mode) runs the model again, on the front.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optuna.trial import TrialState

from trustbits.search.sampler import is_ensemble, kind_of

DELTA_NAMES = ("trust", "adv", "ood", "ethics", "fairness")


@dataclass
class Config:
    """One scored configuration of the study."""

    number: int
    label: str
    kind: str
    memory_mb: float
    avg_bits: float | None
    latency_ms: float | None
    on_front: bool
    scores: object  # metrics.Scores
    records: list  # metrics.Record list (voted for ensembles)
    members: list[int] = field(default_factory=list)
    vote: str | None = None

    @property
    def name(self) -> str:
        return f"#{self.number} {self.label}"


@dataclass
class Delta:
    value: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def load_configs(study, store, suite) -> list[Config]:
    """Every complete, fully scored configuration (singles and ensembles, repeats dropped)."""
    from trustbits.metrics import aggregate, vote
    from trustbits.metrics.records import Record

    front = {t.number for t in study.best_trials}
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "duplicate_of" not in t.user_attrs]
    records: dict[int, list] = {}
    for t in trials:
        if not is_ensemble(t):
            records[t.number] = [Record.from_json(r) for r in store.get(t.number)]
    configs = []
    for t in trials:
        a = t.user_attrs
        if is_ensemble(t):
            members = list(a["members"])
            if not all(m in records for m in members):
                continue
            precisions = [study.trials[m].user_attrs["avg_bits"] for m in members]
            recs = vote([records[m] for m in members], precisions, rule=a.get("vote", "hard"))
        else:
            members, recs = [], records[t.number]
            if len(recs) != a.get("examples_total"):
                continue
        latency = (a.get("latency") or {}).get("decode_ms_per_token")
        configs.append(
            Config(t.number, a.get("label", "sampled"), kind_of(t), a["memory_bytes"] / 1e6, a.get("avg_bits"), latency, t.number in front, aggregate(recs, suite), recs, members, a.get("vote"))
        )
    return configs


def float_config(configs: list[Config]) -> Config | None:
    return next((c for c in configs if c.label == "float"), None)


def delta(a: Config, b: Config, name: str, suite) -> Delta | None:
    """score(a) - score(b) on `name` with a paired bootstrap 95% interval."""
    from trustbits.metrics import paired_difference

    if name != "trust" and (name not in a.scores.perspectives or name not in b.scores.perspectives):
        return None
    d, lo, hi = paired_difference(a.records, b.records, name, suite=suite)
    return Delta(d, lo, hi)


def perspective_names(configs: list[Config]) -> list[str]:
    present = set()
    for c in configs:
        present |= set(c.scores.values())
    return [n for n in DELTA_NAMES if n in present]


def agreement(a_records, b_records) -> float:
    """Share of common examples on which two record sets predict the same answer."""
    b = {r.key: r for r in b_records}
    common = [r for r in a_records if r.key in b]
    return sum(1 for r in common if r.pred == b[r.key].pred) / len(common) if common else float("nan")


def best_front_at_memory(configs: list[Config], budget_mb: float, objective: str) -> Config | None:
    """The front configuration with the best `objective` score within a memory budget."""
    fits = [c for c in configs if c.on_front and c.memory_mb <= budget_mb + 1e-9]
    return max(fits, key=lambda c: c.scores.values().get(objective, float("-inf")), default=None)
