"""Samplers: one for single-model plans, one for ensemble member sets, in one study.

Singles and ensembles share one study (so one front, and `optuna.load_study` sees what
`trustbits pareto` shows), but they have different parameters: a plan's bit-widths versus
an ensemble's member ranks. Optuna's samplers infer their search space from the trials they
see (NSGA-II and GP use the intersection of all completed trials' parameters), so mixing the
two kinds would collapse that space. `KindRoutingSampler` therefore records each trial's kind
in its system attrs when the trial starts and gives each inner sampler a view of the study
that holds only trials of its own kind.
"""

from __future__ import annotations

import copy

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

KIND_ATTR = "trustbits:kind"
SINGLE = "single"
ENSEMBLE = "ensemble"  # member set drawn by the ensemble sampler
FIXED_ENSEMBLE = "ensemble-fixed"  # a member set the spec names (the paper's uniform 3/4/8 vote)
ENSEMBLE_KINDS = (ENSEMBLE, FIXED_ENSEMBLE)


def system_attrs(trial) -> dict:
    """System attrs of a FrozenTrial or of a live optuna.Trial (which no longer exposes them)."""
    attrs = getattr(trial, "system_attrs", None)
    if attrs is None:
        attrs = trial.study._storage.get_trial_system_attrs(trial._trial_id)
    return attrs


def kind_of(trial) -> str:
    return system_attrs(trial).get(KIND_ATTR, SINGLE)


def is_ensemble(trial) -> bool:
    return kind_of(trial) in ENSEMBLE_KINDS


class _KindView:
    """A study as one inner sampler sees it: trials of other kinds appear as FAILed.

    They cannot simply be left out: Optuna's genetic samplers index the trial list by trial
    number. A failed trial is ignored by every sampler (no population, no search space, no
    density estimate), which is exactly what a trial of the other kind must be.
    """

    def __init__(self, study: optuna.Study, kind: str):
        self._study = study
        self._kind = kind

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False):
        trials = self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=use_cache)
        shown = []
        for t in trials:
            if kind_of(t) != self._kind:
                t = copy.copy(t)
                t.state = TrialState.FAIL
                t._values = None
            if states is None or t.state in states:
                shown.append(t)
        return shown

    def get_trials(self, deepcopy: bool = True, states=None):
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self):
        return self.get_trials()

    def __getattr__(self, name):
        return getattr(self._study, name)


def make_sampler(name: str, *, seed: int, population: int) -> BaseSampler:
    """An Optuna sampler by the spec's name (constraints reach it through `Trial.set_constraint`)."""
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=population)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=population)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


class KindRoutingSampler(BaseSampler):
    """Routes each trial to the single or the ensemble sampler (see the module docstring).

    The driver sets `next_kind` before `study.ask()`. A trial that was enqueued with fixed
    parameters (seeds, retries of failed trials) is always a single, whatever `next_kind`.
    """

    def __init__(self, single: BaseSampler, ensemble: BaseSampler):
        self.single = single
        self.ensemble = ensemble
        self.next_kind = SINGLE

    def _route(self, study, trial):
        kind = kind_of(trial)
        return (self.ensemble if kind == ENSEMBLE else self.single), _KindView(study, kind)

    def before_trial(self, study, trial) -> None:
        # Retries carry their kind over; enqueued trials (seeds) are singles.
        kind = trial.system_attrs.get(KIND_ATTR) or (SINGLE if "fixed_params" in trial.system_attrs else self.next_kind)
        study._storage.set_trial_system_attr(trial._trial_id, KIND_ATTR, kind)
        trial.system_attrs[KIND_ATTR] = kind
        sampler, view = self._route(study, trial)
        sampler.before_trial(view, trial)

    def infer_relative_search_space(self, study, trial):
        sampler, view = self._route(study, trial)
        return sampler.infer_relative_search_space(view, trial)

    def sample_relative(self, study, trial, search_space):
        sampler, view = self._route(study, trial)
        return sampler.sample_relative(view, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        sampler, view = self._route(study, trial)
        return sampler.sample_independent(view, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        sampler, view = self._route(study, trial)
        sampler.after_trial(view, trial, state, values)

    def reseed_rng(self) -> None:
        self.single.reseed_rng()
        self.ensemble.reseed_rng()
