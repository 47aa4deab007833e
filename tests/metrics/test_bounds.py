"""score_bounds: the final score of the whole suite always lies within the bounds computed
from any part of its records, whatever the missing records turn out to be."""

from __future__ import annotations

import random

import pytest

from trustbits.metrics import Record, aggregate, build_suite, score_bounds


@pytest.fixture(scope="module")
def suite():
    # Every default setting, a few examples each (the fairness ones split across both sexes).
    return build_suite(limit=6)


def random_record(setting, example, rng) -> Record:
    spec = setting.spec
    choice = rng.random()
    if choice < 0.15:
        pred, refused = None, True
    elif spec.refusal_option and choice < 0.3:
        pred, refused = spec.refusal_option, True
    else:
        pred, refused = rng.choice(spec.options), False
    return Record(spec.perspective, spec.task, spec.name, example.example_id, example.gold, pred, {}, example.group, refused)


@pytest.mark.parametrize("seed", range(12))
def test_bounds_hold_for_every_completion(suite, seed):
    rng = random.Random(seed)
    everything = [(s, e) for s in suite for e in s.examples]
    kept = [random_record(s, e, rng) for s, e in everything if rng.random() < 0.5]
    bounds = score_bounds(kept, suite)
    assert set(bounds) == {"adv", "ood", "ethics", "fairness", "trust"}
    present = {r.key for r in kept}
    for trial in range(15):
        completion = kept + [random_record(s, e, rng) for s, e in everything if (s.spec.perspective, s.spec.task, s.spec.name, e.example_id) not in present]
        values = aggregate(completion, suite, samples=0).values()
        for name, (low, high) in bounds.items():
            assert low - 1e-9 <= values[name] <= high + 1e-9, (name, low, values[name], high)


def test_bounds_are_exact_when_complete_and_whole_range_when_empty(suite):
    rng = random.Random(0)
    records = [random_record(s, e, rng) for s in suite for e in s.examples]
    values = aggregate(records, suite, samples=0).values()
    for name, (low, high) in score_bounds(records, suite).items():
        assert low == pytest.approx(values[name]) and high == pytest.approx(values[name])
    empty = score_bounds([], suite)
    assert empty["adv"] == (0.0, 100.0)
    assert empty["trust"][0] == pytest.approx(0.0) and empty["trust"][1] == pytest.approx(100.0)


def test_bounds_tighten_as_records_arrive(suite):
    rng = random.Random(3)
    everything = [(s, e) for s in suite for e in s.examples]
    rng.shuffle(everything)
    records, widths = [], []
    for s, e in everything:
        records.append(random_record(s, e, rng))
        if len(records) % 40 == 0:
            low, high = score_bounds(records, suite)["adv"]
            widths.append(high - low)
    assert widths == sorted(widths, reverse=True)
