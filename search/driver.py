"""The search loop: one study, seeded with reference points, sampled by Optuna, resumable.

`run_search` opens (or creates) the study, seeds it once, scores the float reference first
(constraints are measured against it), then runs workers. A worker repeatedly asks for a
single trial (plan), scores it through `study.optimize(n_trials=1)` (so RDB storages get
Optuna's heartbeats), then runs a few ensemble trials on stored records, until the trial
budget counts done. Killing it at any point loses no finished trial: the next run fails what
the dead process left RUNNING, retries its parameters, and continues the sampler from its
saved state.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from trustbits.search import ensembles
from trustbits.search import storage as storage_mod
from trustbits.search.objectives import set_constraints
from trustbits.search.sampler import SINGLE, KindRoutingSampler, is_ensemble, make_sampler, system_attrs
from trustbits.search.sampler_state import SamplerState
from trustbits.search.spec import StudySpec
from trustbits.search.trial_attrs import pack, set_attrs
from trustbits.search.workers import run_workers

log = logging.getLogger(__name__)
REFERENCE = "reference"
SEEDED_ATTR = "trustbits:seeded"
REFERENCE_ATTR = "trustbits:reference"
optuna.logging.set_verbosity(optuna.logging.WARNING)


class TrialFailed(Exception):
    """A trial that failed for a recorded reason (e.g. out of memory); the search goes on."""


@dataclass
class SearchSummary:
    study_name: str
    location: str
    singles_done: int
    ensembles_done: int
    early_stopped: int
    examples_saved: int
    examples_total: int
    seconds: float


def done_singles(study) -> list:
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return [t for t in study.get_trials(deepcopy=False, states=states) if not is_ensemble(t)]


def _front_values(study) -> list[list[float]]:
    return [list(t.values) for t in study.best_trials]


def new_sampler(spec: StudySpec) -> KindRoutingSampler:
    s = spec.sampler
    single = make_sampler(s.name, seed=s.seed, population=s.population)
    # Ensemble member sets: few parameters, cheap trials: TPE learns them well.
    ensemble = make_sampler("tpe", seed=s.seed + 1, population=max(4, spec.ensembles.max_size * 2))
    return KindRoutingSampler(single, ensemble)


class Worker:
    """One search process: the model, the evaluator and the loop (see the module docstring)."""

    def __init__(self, spec: StudySpec, loc, *, view=None, save_sampler: bool = True, heartbeat: bool = True):
        self.spec = spec
        self.loc = loc
        self.view = view
        self.save_sampler = save_sampler
        self.storage = storage_mod.make_storage(loc, heartbeat=heartbeat)
        self.sampler_state = SamplerState(spec)
        self.batch_size = spec.eval.batch_size

    # ---- setup ----------------------------------------------------------------------------

    def setup(self) -> None:
        from trustbits.metrics import build_suite
        from trustbits.quant.cache import LayerCache
        from trustbits.quant.inventory import quantizable_modules
        from trustbits.quant.loading import load_model
        from trustbits.search.evaluator import TrialEvaluator
        from trustbits.search.records import RecordStore
        from trustbits.search.space import SearchSpace

        spec = self.spec
        self._stage("loading the model", 0, 1)
        self.loaded = load_model(spec.model.name, device=spec.model.device, dtype=spec.model.dtype)
        self.modules = quantizable_modules(self.loaded.model)
        self.space = SearchSpace.from_spec(spec, self.modules, model_name=self.loaded.name, model_fingerprint=self.loaded.fingerprint)
        e = spec.eval
        self.suite = build_suite(e.perspectives, limit=e.limit, seed=e.seed)
        self.store = RecordStore(self.loc.records_url, spec.name)
        self.layer_cache = LayerCache.for_model(self.loaded)
        self.layer_cache.build(self.loaded, self.space.specs(), progress=lambda d, t, desc="": self._stage(f"layer cache: {desc}", d, t))
        self.latency_model = None
        if "latency" in spec.search.objectives:
            from trustbits.kernels import LatencyModel

            self._stage("latency table", 0, 1)
            self.latency_model = LatencyModel.for_model(self.loaded.model)
        self.study, _ = storage_mod.create_or_check_study(spec, self.storage)
        self.sampler = (self.sampler_state.load(self.study) if self.save_sampler else None) or new_sampler(spec)
        self.study = optuna.load_study(study_name=spec.name, storage=self.storage, sampler=self.sampler)
        self.evaluator = TrialEvaluator(spec, self.loaded, self.modules, self.suite, self.layer_cache, self.store, self.latency_model, self.study.user_attrs.get(REFERENCE_ATTR))

    def _stage(self, description: str, done: int, total: int) -> None:
        if self.view:
            self.view.stage(description, done, total)

    # ---- seeding (once per study, before workers start) -----------------------------------

    def seed(self) -> None:
        from trustbits.quant.plan import KEEP_BITS
        from trustbits.search.seeds import reference_seeds, sensitivity_seeds
        from trustbits.search.sensitivity import measure_sensitivity

        if self.study.user_attrs.get(SEEDED_ATTR):
            return
        sp = self.spec.seeds
        seeds = reference_seeds(self.space, float_model=sp.float_model or bool(self.spec.constraints.max_drop), uniform=sp.uniform)
        if sp.sensitivity:
            table = measure_sensitivity(self.loaded, self.space, self.layer_cache, progress=lambda d, t, desc: self._stage(desc, d, t))
            seeds += sensitivity_seeds(self.space, table, sp.sensitivity)
        with storage_mod.seeding_lock(self.loc, self.spec.name):
            # Another machine may have seeded while we measured: check again under the lock.
            if optuna.load_study(study_name=self.spec.name, storage=self.storage).user_attrs.get(SEEDED_ATTR):
                return
            for s in seeds:
                attrs = {"label": s.label} | ({"uniform": s.uniform} if s.uniform else {})
                self.study.enqueue_trial(s.params, user_attrs=attrs, skip_if_exists=True)
            self.study.set_user_attr(SEEDED_ATTR, [s.label for s in seeds])
        need_reference = sp.float_model or self.spec.constraints.max_drop
        if need_reference and KEEP_BITS not in self.space.bits:
            self.run_reference()

    def run_reference(self) -> None:
        """The float model as a trial of its own kind, when 16 bits is not in the space (it is
        then not a plan the sampler can propose, but it stays on the front for comparison)."""
        from trustbits.quant.plan import Plan

        self.sampler.next_kind = REFERENCE
        trial = self.study.ask()
        plan = Plan.uniform([m.name for m in self.modules], None, model_name=self.loaded.name, model_fingerprint=self.loaded.fingerprint)
        set_attrs(self.study, trial._trial_id, {"label": "float"})
        values = self._score_plan(trial, plan, "float")
        self.study.tell(trial, values)

    # ---- the loop -------------------------------------------------------------------------

    def budget_left(self) -> int:
        running = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if not is_ensemble(t)]
        return self.spec.budget.trials - len(done_singles(self.study)) - len(running)

    def run(self, *, deadline: float | None = None) -> None:
        storage_mod.fail_dead_workers_trials(self.study, all_running=self.loc.kind == "sqlite")
        while self.budget_left() > 0 and (deadline is None or time.time() < deadline):
            self.sampler.next_kind = SINGLE
            self.study.optimize(self._objective, n_trials=1, catch=(TrialFailed,))
            for _ in range(self.spec.ensembles.per_trial):
                if not ensembles.can_run(self.study, self.spec):
                    break
                self.run_ensemble()
            if self.spec.ensembles.uniform_sets:
                ensembles.run_uniform_sets(self)
            if self.save_sampler:
                self.sampler_state.save(self.study, self.sampler)
            if self.view:
                self.view.trial_finished(len(done_singles(self.study)), self.status_line())

    def status_line(self) -> str:
        front = self.study.best_trials
        done = done_singles(self.study)
        stopped = sum(1 for t in done if t.state == TrialState.PRUNED)
        trust = [t.user_attrs.get("flat", {}).get("trust") for t in front]
        best = max((x for x in trust if x is not None), default=None)
        best_text = f"{best:.1f}" if best is not None else "-"
        return f"front: {len(front)} configurations, best trust {best_text}; {stopped} trial(s) stopped early"

    def _objective(self, trial: optuna.Trial):
        self.study._storage.set_trial_system_attr(trial._trial_id, storage_mod.WORKER_ATTR, storage_mod.worker_id())
        params = self.space.suggest(trial)
        plan = self.space.plan(params)
        label = trial.user_attrs.get("label") or ("retry" if "failed_trial" in system_attrs(trial) else "sampled")
        if "label" not in trial.user_attrs:
            trial.set_user_attr("label", label)
        original = self._same_params(trial, params)
        if original is not None:
            return self._repeat(trial, original)
        values = self._score_plan(trial, plan, label)
        if values is None:
            raise optuna.TrialPruned()
        return values

    def _same_params(self, trial, params: dict):
        """An earlier finished single trial with exactly these parameters (samplers do propose
        repeats in small spaces), or None."""
        for t in done_singles(self.study):
            if t.number != trial.number and t.params == params and "duplicate_of" not in t.user_attrs:
                return t
        return None

    def _repeat(self, trial, original):
        """A repeat costs nothing: it takes the original's results (same plan, same examples,
        deterministic scoring) and says so."""
        keep = ("plan_z", "scores_z", "flat", "memory_bytes", "latency", "avg_bits", "bits_histogram", "examples_scored", "examples_total", "stop_reason")
        attrs = {k: original.user_attrs[k] for k in keep if k in original.user_attrs}
        set_attrs(self.study, trial._trial_id, attrs | {"duplicate_of": original.number, "seconds": 0.0})
        set_constraints(trial, original.constraints)
        if original.state != TrialState.COMPLETE:
            raise optuna.TrialPruned()
        return list(original.values)

    def _score_plan(self, trial, plan, label: str):
        """Score a plan on `trial`; returns its objective values, or None when it stopped early
        (or was over the memory budget, which costs no scoring at all)."""
        import torch

        from trustbits.search.space import average_bits

        if self.view:
            self.view.trial_started(trial.number, label)
        fp, latency = self.evaluator.price(plan)
        base = {
            "plan_z": pack(plan.to_json()),
            "memory_bytes": fp.total_bytes,
            "latency": latency,
            "avg_bits": round(average_bits(plan, self.modules), 4),
            "bits_histogram": {str(k): v for k, v in plan.bits_histogram().items()},
        }
        set_attrs(self.study, trial._trial_id, base)
        budget = self.spec.constraints.max_memory_mb
        if budget is not None and fp.total_bytes / 1e6 > budget:
            set_attrs(self.study, trial._trial_id, {"stop_reason": f"over the memory budget ({fp.total_bytes / 1e6:.1f} MB > {budget} MB): not scored", "examples_scored": 0})
            return None
        self.evaluator.spec = self.spec
        is_float = all(s is None for s in plan.modules.values())
        try:
            outcome = self.evaluator.evaluate_plan(
                trial.number,
                plan,
                _front_values(self.study),
                progress=lambda d, t, stage: self._stage(f"trial {trial.number} ({label}) stage {stage + 1}", d, t),
                batch_size=self.batch_size,
                reference_is_self=is_float,
            )
        except torch.OutOfMemoryError as e:
            return self._out_of_memory(trial, e)
        except RuntimeError as e:
            if "out of memory" not in str(e).lower():
                raise
            return self._out_of_memory(trial, e)
        attrs = {
            "scores_z": pack(outcome.scores),
            "flat": outcome.flat_scores,
            "examples_scored": outcome.examples_scored,
            "examples_total": outcome.examples_total,
            "seconds": round(outcome.seconds, 3),
            **({"stop_reason": outcome.stop_reason} if outcome.stop_reason else {}),
            **outcome.extra,
        }
        set_attrs(self.study, trial._trial_id, attrs)
        set_constraints(trial, outcome.constraints)
        if is_float and outcome.values is not None and REFERENCE_ATTR not in self.study.user_attrs:
            self.study.set_user_attr(REFERENCE_ATTR, outcome.flat_scores)
            self.evaluator.reference = outcome.flat_scores
        return outcome.values

    def _out_of_memory(self, trial, error) -> None:
        """Record the reason, halve the batch size for the next trials (and retry this plan
        with it when that can help), and let the search go on."""
        import gc

        gc.collect()
        old = self.batch_size or 16
        self.batch_size = max(1, old // 2)
        retry = self.batch_size < old
        set_attrs(self.study, trial._trial_id, {"fail_reason": f"out of memory at batch size {old} ({str(error).splitlines()[0][:160]})"})
        if retry and trial.params:
            self.study.enqueue_trial(trial.params, user_attrs={"label": f"retry of {trial.number} (out of memory)"})
        log.warning("trial %d ran out of memory at batch size %d; %s", trial.number, old, f"retrying at {self.batch_size}" if retry else "giving up on it")
        raise TrialFailed(f"out of memory at batch size {old}")

    def run_ensemble(self) -> None:
        ensembles.run_sampled_ensemble(self)


def run_search(spec: StudySpec, *, storage: str | None = None, workers: int = 1, view_factory=None) -> SearchSummary:
    """Launch or resume the study of `spec` (see the module docstring).

    Args:
        storage: overrides the spec's storage (sqlite:///, journal, postgresql://...).
        workers: processes on this machine; more than one uses a journal (or the given RDB).
        view_factory: callable(name, budget, done) -> a `SearchView`, or None for no display.
    """
    t0 = time.time()
    loc = storage_mod.locate(spec, storage, workers=workers)
    lock = storage_mod.StudyLock(loc.sqlite_path) if loc.kind == "sqlite" else contextlib.nullcontext()
    deadline = t0 + spec.budget.timeout_minutes * 60 if spec.budget.timeout_minutes else None
    with lock:
        # Creating and seeding happen once, here, before any worker starts.
        probe = Worker(spec, loc, save_sampler=workers == 1, heartbeat=loc.kind != "journal")
        study, _ = storage_mod.create_or_check_study(spec, probe.storage)
        done = len(done_singles(study))
        if done >= spec.budget.trials:
            # Nothing left to do: answer without loading the model.
            storage_mod.fail_dead_workers_trials(study, all_running=loc.kind == "sqlite")
            return summarize(study, loc, time.time() - t0)
        view = view_factory(spec.name, spec.budget.trials, done) if view_factory else None
        probe.view = view
        with view or contextlib.nullcontext():
            probe.setup()
            probe.seed()
            if workers > 1 and spec.constraints.max_drop and REFERENCE_ATTR not in probe.study.user_attrs:
                # Floors are measured against the float model: score it (first in the queue)
                # before workers start, so every worker reads the reference.
                probe.sampler.next_kind = SINGLE
                probe.study.optimize(probe._objective, n_trials=1, catch=(TrialFailed,))
            if workers == 1:
                probe.run(deadline=deadline)
            else:
                run_workers(spec, loc, workers, deadline, probe)
        study = probe.study
    return summarize(study, loc, time.time() - t0)


def summarize(study, loc, seconds: float) -> SearchSummary:
    singles = done_singles(study)
    ens = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_ensemble(t)]
    stopped = [t for t in singles if t.state == TrialState.PRUNED and t.user_attrs.get("examples_scored")]
    saved = sum(t.user_attrs.get("examples_total", 0) - t.user_attrs.get("examples_scored", 0) for t in stopped)
    total = sum(t.user_attrs.get("examples_total", 0) for t in singles)
    return SearchSummary(study.study_name, loc.describe(), len(singles), len(ens), len(stopped), saved, total, seconds)
