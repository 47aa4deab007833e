"""Search space grouping, seeds, and the kind-routing sampler (singles and ensembles in one
study without collapsing the samplers' search spaces)."""

from __future__ import annotations

import optuna
import pytest

from trustbits.quant.inventory import quantizable_modules
from trustbits.quant.plan import QuantSpec
from trustbits.search.sampler import ENSEMBLE, SINGLE, KindRoutingSampler, kind_of, make_sampler
from trustbits.search.seeds import allocate, reference_seeds, sensitivity_seeds
from trustbits.search.space import SearchSpace, average_bits
from trustbits.search.spec import parse_spec


def space_for(model, **search):
    spec = parse_spec({"search": search})
    return SearchSpace.from_spec(spec, quantizable_modules(model))


@pytest.mark.parametrize(
    "granularity, extra, groups",
    [("layer", {}, 3), ("projection", {}, 8), ("module", {}, 15), ("block", {"block_size": 2}, 2)],
)
def test_granularity_groups(tiny_model, granularity, extra, groups):
    space = space_for(tiny_model, granularity=granularity, **extra)
    assert len(space.groups) == groups  # the head is always a group of its own
    assert space.groups["head"] == ["lm_head"]
    names = [n for g in space.groups.values() for n in g]
    assert sorted(names) == sorted(m.name for m in quantizable_modules(tiny_model))


def test_plan_from_params_and_keep(tiny_model):
    space = space_for(tiny_model, bits=[4, 16], granularity="layer")
    params = {"bits.layer.0": 4, "bits.layer.1": 16, "bits.head": 4}
    plan = space.plan(params)
    assert plan.modules["model.layers.0.mlp.down_proj"] == QuantSpec("hqq", 4, 64)
    assert plan.modules["model.layers.1.self_attn.q_proj"] is None
    assert plan.modules["lm_head"] == QuantSpec("hqq", 4, 64)
    assert 4 < average_bits(plan, space.modules) < 16


def test_reference_seeds_and_allocation(tiny_model):
    space = space_for(tiny_model, bits=[3, 4, 8, 16], granularity="layer")
    seeds = reference_seeds(space, float_model=True, uniform=True)
    assert [s.label for s in seeds] == ["float", "uniform-hqq-8", "uniform-hqq-4", "uniform-hqq-3"]
    # Layer 1 is far more sensitive than layer 0: a budget allocation upgrades it first.
    sens = {"layer.0": {3: 0.01, 4: 0.005, 8: 0.001, 16: 0}, "layer.1": {3: 1.0, 4: 0.5, 8: 0.01, 16: 0}, "head": {3: 0.1, 4: 0.05, 8: 0.01, 16: 0}}
    bits = allocate(space, sens, target_avg_bits=5.0)
    assert bits["layer.1"] > bits["layer.0"]
    total = sum(space.group_params(g) for g in space.groups)
    assert sum(bits[g] * space.group_params(g) for g in space.groups) <= 5.0 * total
    assert len(sensitivity_seeds(space, sens, 2)) >= 1


def test_routing_sampler_keeps_each_kind_to_itself():
    sampler = KindRoutingSampler(make_sampler("nsga2", seed=0, population=4), make_sampler("tpe", seed=1, population=4))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for i in range(12):
        sampler.next_kind = ENSEMBLE if i % 3 == 2 else SINGLE
        trial = study.ask()
        if kind_of(trial) == SINGLE:
            x = trial.suggest_categorical("bits.a", [3, 4, 8])
            y = trial.suggest_categorical("bits.b", [3, 4, 8])
            study.tell(trial, [x + y, x * y])
        else:
            n = trial.suggest_int("ens.size", 2, 3)
            study.tell(trial, [n, n])
    singles = [t for t in study.trials if kind_of(t) == SINGLE]
    ensembles = [t for t in study.trials if kind_of(t) == ENSEMBLE]
    assert len(singles) == 8 and len(ensembles) == 4
    # NSGA-II sampled the bits relatively once past its first generation: its intersection
    # search space was not collapsed by the ensemble trials' different parameters.
    from optuna.search_space import IntersectionSearchSpace

    from trustbits.search.sampler import _KindView

    space = IntersectionSearchSpace().calculate(_KindView(study, SINGLE))
    assert set(space) == {"bits.a", "bits.b"}


def test_enqueued_trials_are_always_singles():
    sampler = KindRoutingSampler(make_sampler("random", seed=0, population=2), make_sampler("random", seed=0, population=2))
    study = optuna.create_study(directions=["maximize"], sampler=sampler)
    study.enqueue_trial({"bits.a": 4})
    sampler.next_kind = ENSEMBLE
    trial = study.ask()
    assert kind_of(trial) == SINGLE
