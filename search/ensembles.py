"""Ensemble trials: member sets drawn by Optuna from the trials already scored.

An ensemble trial's parameters are its size and one rank per member slot; ranks index the
pool of complete single trials ordered by their first trust objective (rank 0 = the best so
far), so the sampler learns which positions combine well while the pool grows. Duplicate
members are dropped, and a member set already scored is not scored twice. The vote itself
runs on stored records in milliseconds (`TrialEvaluator.evaluate_ensemble`).
"""

from __future__ import annotations

import optuna
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY
from optuna.trial import TrialState

from trustbits.search.objectives import set_constraints
from trustbits.search.sampler import ENSEMBLE, FIXED_ENSEMBLE, KIND_ATTR, is_ensemble, kind_of
from trustbits.search.spec import MAXIMIZE, StudySpec
from trustbits.search.storage import WORKER_ATTR, worker_id
from trustbits.search.trial_attrs import pack, set_attrs

SIZE_PARAM = "ens.size"


def member_pool(study: optuna.Study, spec: StudySpec) -> list:
    """Complete, fully scored, feasible non-ensemble trials, best first (at most `pool`)."""
    trust_index = next(i for i, o in enumerate(spec.search.objectives) if o in MAXIMIZE)
    pool = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not is_ensemble(t) and "duplicate_of" not in t.user_attrs and t.user_attrs.get("examples_scored") == t.user_attrs.get("examples_total")
    ]
    pool.sort(key=lambda t: (-t.values[trust_index], t.number))
    return pool[: spec.ensembles.pool]


def existing_member_sets(study: optuna.Study, vote: str) -> set[tuple[int, ...]]:
    return {
        tuple(t.user_attrs["members"]) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_ensemble(t) and "members" in t.user_attrs and t.user_attrs.get("vote") == vote
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


def _score_members(worker, members: list, rule: str):
    """Vote `members` (finished single trials) on their stored records."""
    numbers = [t.number for t in members]
    records = worker.store.get_many(numbers)
    outcome = worker.evaluator.evaluate_ensemble(
        [
            {
                "number": t.number,
                "records": records[t.number],
                "memory_bytes": t.user_attrs["memory_bytes"],
                "latency": t.user_attrs.get("latency"),
                "precision": t.user_attrs["avg_bits"],
            }
            for t in members
        ],
        rule=rule,
    )
    attrs = {
        "members": numbers,
        "vote": rule,
        "scores_z": pack(outcome.scores),
        "flat": outcome.flat_scores,
        "memory_bytes": outcome.memory_bytes,
        "latency": outcome.latency,
        "avg_bits": max(t.user_attrs["avg_bits"] for t in members),
        "examples_scored": outcome.examples_scored,
        "examples_total": outcome.examples_total,
        "seconds": round(outcome.seconds, 4),
    }
    return outcome, attrs


def run_sampled_ensemble(worker) -> None:
    """One ensemble trial whose member set the ensemble sampler draws from the pool."""
    study, spec = worker.study, worker.spec
    pool = member_pool(study, spec)
    worker.sampler.next_kind = ENSEMBLE
    trial = study.ask()
    if kind_of(trial) != ENSEMBLE:  # an enqueued single arrived meanwhile (another worker)
        study.tell(trial, state=TrialState.FAIL)
        return
    study._storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, worker_id())
    members = sorted(suggest_members(trial, spec, pool), key=lambda t: t.number)
    numbers = tuple(t.number for t in members)
    trial.set_user_attr("label", "ensemble")
    trial.set_user_attr("members", list(numbers))
    trial.set_user_attr("vote", spec.ensembles.vote)
    if len(members) < spec.ensembles.min_size:
        trial.set_user_attr("stop_reason", "member set too small after removing repeats")
        study.tell(trial, state=TrialState.PRUNED)
        return
    if numbers in existing_member_sets(study, spec.ensembles.vote):
        trial.set_user_attr("stop_reason", "member set already scored")
        study.tell(trial, state=TrialState.PRUNED)
        return
    outcome, attrs = _score_members(worker, members, spec.ensembles.vote)
    set_attrs(study, trial._trial_id, attrs)
    set_constraints(trial, outcome.constraints)
    study.tell(trial, outcome.values)


def run_uniform_sets(worker) -> None:
    """The paper's precision ensembles, once their members are scored: per method, the vote of
    its uniform plans at every quantized bit-width, for each rule in `uniform_votes`. They are
    added as finished trials of their own kind (the ensemble sampler does not learn from
    member sets it did not choose)."""
    from trustbits.quant.plan import KEEP_BITS

    study, spec = worker.study, worker.spec
    done = {
        (t.user_attrs["uniform"]["method"], t.user_attrs["uniform"]["bits"]): t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not is_ensemble(t) and "duplicate_of" not in t.user_attrs and t.user_attrs.get("uniform")
    }
    bits = sorted(b for b in spec.search.bits if b != KEEP_BITS)
    for method in spec.search.methods:
        members = [done.get((method, b)) for b in bits]
        if len(members) < 2 or any(m is None for m in members):
            continue
        for rule in spec.ensembles.uniform_votes:
            numbers = tuple(m.number for m in members)
            if numbers in existing_member_sets(study, rule):
                continue
            outcome, attrs = _score_members(worker, members, rule)
            label = f"uniform-{method}-{'/'.join(map(str, bits))}-{rule}-vote"
            study.add_trial(
                optuna.create_trial(
                    values=outcome.values,
                    user_attrs=attrs | {"label": label},
                    system_attrs={KIND_ATTR: FIXED_ENSEMBLE} | {f"{_CONSTRAINTS_KEY}:{k}": v for k, v in outcome.constraints.items()},
                )
            )


__all__ = ["can_run", "existing_member_sets", "member_pool", "run_sampled_ensemble", "run_uniform_sets", "suggest_members"]
