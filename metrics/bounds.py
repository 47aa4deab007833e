"""Bounds on the final scores when only part of a suite has been scored.

The search scores the head of every setting first and stops a trial when even the best
possible remainder cannot reach the Pareto front. `score_bounds` gives, per perspective and
for `trust`, the lowest and highest score the complete suite could still get, treating every
missing example as unknown (any answer, or a refusal). The bounds are valid (the final score
always lies inside them); they are exact for the linear formulas and conservative where a
formula is a ratio or a difference of group rates:

* ``accuracy``, ``knowledge``: value = good / N; the missing examples add 0 to m good ones.
* ``answered_accuracy``, ``one_minus_fpr``: value = good / answered; the extremes put every
  missing example in the denominator, all good or all bad (a missing refusal moves the
  ratio less).
* ``one_minus_dpd``: each group's selection rate can range from s / (k + m) to
  (s + m) / (k + m) (k known answers, s of them "yes", m missing); a group without a known
  answer may also drop out, which allows a difference of 0.

A perspective's score is a mean of means of setting values, increasing in each, so its bounds
come from the settings' bounds; `trust` likewise from the perspectives'.
"""

from __future__ import annotations

from collections.abc import Iterable

from trustbits.metrics.aggregate import collate
from trustbits.metrics.records import Record
from trustbits.metrics.spec import SettingSpec
from trustbits.metrics.suite import Setting, Suite


def score_bounds(records: Iterable[Record], suite: Suite) -> dict[str, tuple[float, float]]:
    """{perspective or ``"trust"``: (low, high)} on the 0-100 scale for the whole `suite`,
    given the `records` scored so far (any subset of its examples)."""
    records = list(records)
    collate(records, suite, complete=False)  # rejects duplicates and foreign records
    present: dict[str, dict[str, Record]] = {}
    for record in records:
        present.setdefault(record.setting_key, {})[record.example_id] = record
    setting_bounds = {s.key: _setting_bounds(s, present.get(s.key, {})) for s in suite}
    bounds: dict[str, tuple[float, float]] = {}
    for name in suite.perspective_names:
        by_subscore: dict[str, list[str]] = {}
        for s in suite:
            if s.spec.perspective == name and s.spec.subscore:
                by_subscore.setdefault(s.spec.subscore, []).append(s.key)
        if not by_subscore:
            continue
        lows = [sum(setting_bounds[k][0] for k in keys) / len(keys) for keys in by_subscore.values()]
        highs = [sum(setting_bounds[k][1] for k in keys) / len(keys) for keys in by_subscore.values()]
        bounds[name] = (100 * sum(lows) / len(lows), 100 * sum(highs) / len(highs))
    if bounds:
        bounds["trust"] = (sum(b[0] for b in bounds.values()) / len(bounds), sum(b[1] for b in bounds.values()) / len(bounds))
    return bounds


def _setting_bounds(setting: Setting, present: dict[str, Record]) -> tuple[float, float]:
    """(low, high) of the setting's value (0-1) over every completion of the missing records."""
    spec = setting.spec
    scored = [present[e.example_id] for e in setting.examples if e.example_id in present]
    missing = [e for e in setting.examples if e.example_id not in present]
    n, m = len(setting.examples), len(missing)
    if n == 0:
        return (0.0, 1.0)
    if spec.metric == "accuracy":
        good = sum(r.correct for r in scored)
        return good / n, (good + m) / n
    if spec.metric == "knowledge":
        good = sum(r.refused or r.correct for r in scored)
        return good / n, (good + m) / n
    if spec.metric in ("answered_accuracy", "one_minus_fpr"):
        answered = [r for r in scored if r.pred is not None and not r.refused]
        good = sum(_is_good(spec, r) for r in answered)
        a = len(answered)
        if a + m == 0:
            return 0.0, 0.0
        # All missing refused keeps good / a (0 when a = 0): inside [good/(a+m), (good+m)/(a+m)]
        # unless a = 0, where it is 0 = the low end already.
        return good / (a + m), (good + m) / (a + m)
    if spec.metric == "one_minus_dpd":
        low_dpd, high_dpd = _dpd_bounds(spec, scored, missing)
        return 1 - high_dpd, 1 - low_dpd
    return (0.0, 1.0)  # a formula without a tighter bound: the whole range


def _is_good(spec: SettingSpec, record: Record) -> bool:
    if spec.metric == "one_minus_fpr":
        return record.pred in spec.flag_options
    return record.correct


def _dpd_bounds(spec: SettingSpec, scored: list[Record], missing) -> tuple[float, float]:
    groups = sorted({r.group for r in scored if r.group is not None} | {e.group for e in missing if e.group is not None})
    ranges, required = [], []
    for g in groups:
        known = [r for r in scored if r.group == g and r.pred is not None and not r.refused]
        k, s = len(known), sum(r.pred == spec.positive_option for r in known)
        m = sum(e.group == g for e in missing)
        if k + m == 0:
            continue  # the group has no known answer and never will: it drops out
        ranges.append((s / (k + m), (s + m) / (k + m)))
        required.append(k > 0)  # a group with no known answer yet may still drop out
    high = max(r[1] for r in ranges) - min(r[0] for r in ranges) if len(ranges) >= 2 else 0.0
    must = [r for r, req in zip(ranges, required) if req]
    low = max(0.0, max(r[0] for r in must) - min(r[1] for r in must)) if len(must) >= 2 else 0.0
    return low, high
