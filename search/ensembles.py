"""Ensemble trials: member sets drawn by Optuna from the trials already scored.

An ensemble trial's parameters are its size and one rank per member slot; ranks index the
pool of complete single trials ordered by their first trust objective (rank 0 = the best so
far), so the sampler learns which positions combine well while the pool grows. Duplicate
members are dropped, and a member set already scored is not scored twice. The vote itself
runs on stored records in milliseconds (`TrialEvaluator.evaluate_ensemble`).
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from trustbits.search.sampler import ENSEMBLE, SINGLE, kind_of
from trustbits.search.spec import MAXIMIZE, StudySpec

SIZE_PARAM = "ens.size"


def member_pool(study: optuna.Study, spec: StudySpec) -> list:
    """Complete, fully scored, feasible non-ensemble trials, best first (at most `pool`)."""
    trust_index = next(i for i, o in enumerate(spec.search.objectives) if o in MAXIMIZE)
    pool = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if kind_of(t) != ENSEMBLE
        and "duplicate_of" not in t.user_attrs
        and t.user_attrs.get("examples_scored") == t.user_attrs.get("examples_total")
    ]
    pool.sort(key=lambda t: (-t.values[trust_index], t.number))
    return pool[: spec.ensembles.pool]


def existing_member_sets(study: optuna.Study) -> set[tuple[int, ...]]:
    return {
        tuple(t.user_attrs["members"])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if kind_of(t) == ENSEMBLE and "members" in t.user_attrs
    }


def suggest_members(trial: optuna.Trial, spec: StudySpec, pool: list) -> list:
    """Sample the size and member ranks; returns distinct member trials (maybe fewer than the
    sampled size when ranks repeat)."""
    ens = spec.ensembles
    size = trial.suggest_int(SIZE_PARAM, ens.min_size, ens.max_size)
    # Every slot is sampled on every trial (a fixed search space for the sampler); only the
    # first `size` are used.
    ranks = [trial.suggest_int(f"ens.m{i}", 0, ens.pool - 1) for i in range(ens.max_size)]
    members, seen = [], set()
    for r in ranks[:size]:
        t = pool[r % len(pool)]
        if t.number not in seen:
            seen.add(t.number)
            members.append(t)
    return members


def can_run(study: optuna.Study, spec: StudySpec) -> bool:
    """Ensembles run only when enabled, when the pool is large enough, and when no enqueued
    single trial is waiting (`study.ask` would hand it to us instead)."""
    if not spec.ensembles.enabled:
        return False
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return False
    return len(member_pool(study, spec)) >= spec.ensembles.min_size


__all__ = ["SINGLE", "member_pool", "existing_member_sets", "suggest_members", "can_run"]
