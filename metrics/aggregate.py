"""From per-example records to DecodingTrust scores with bootstrap intervals.

A perspective's score is 100 x the mean of its subscores, and a subscore the mean of its
settings' values (`trustbits.metrics.formulas`); `trust` is the mean of the perspective
scores present. Intervals come from a stratified bootstrap: each setting's examples are
resampled with replacement (the same resample for every statistic), the whole score is
recomputed per replicate, and the interval is the 2.5th-97.5th percentile of the replicates.
The resample of a setting depends only on the seed, the setting's key and its size, so two
record sets over the same examples are resampled identically: `paired_difference` relies on
it for a paired interval of a score difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from trustbits.errors import TrustbitsError, did_you_mean
from trustbits.metrics import defaults
from trustbits.metrics.formulas import METRIC_FUNCTIONS, Outcomes, fairlearn_differences
from trustbits.metrics.records import Record
from trustbits.metrics.scores import Interval, PerspectiveScore, Scores
from trustbits.metrics.spec import PerspectiveSpec, SettingSpec, builtin_names, load_perspective
from trustbits.metrics.suite import Suite


@dataclass
class SettingRecords:
    """A setting's declaration and its records (in suite order when a suite is known)."""

    spec: SettingSpec
    records: list[Record]


def collate(records: Iterable[Record], suite: Suite | None = None, *, complete: bool = True) -> tuple[dict[str, PerspectiveSpec], list[SettingRecords]]:
    """Group records by setting and find each setting's declaration.

    Declarations come from `suite` when given, else from the built-in perspective files.
    With a suite and `complete`, every example of the suite must have exactly one record.

    Raises:
        TrustbitsError: duplicate records, records of an unknown setting, or (complete)
            missing records.
    """
    by_setting: dict[str, dict[str, Record]] = {}
    for record in records:
        own = by_setting.setdefault(record.setting_key, {})
        if record.example_id in own:
            raise TrustbitsError(f"two records for example {record.example_id} of {record.setting_key}", "pass each example's record once")
        own[record.example_id] = record
    perspectives = dict(suite.perspectives) if suite is not None else {}
    specs = {s.key: s.spec for s in suite} if suite is not None else {}
    for key in by_setting:
        if key in specs:
            continue
        if suite is not None:
            raise TrustbitsError(f"records of {key} are not in the suite", "aggregate with the suite that produced them")
        name = key.split("/")[0]
        if name not in perspectives:
            if name not in builtin_names():
                raise TrustbitsError(f"records of perspective '{name}' are not built in", "pass the suite that produced them (aggregate(records, suite))")
            perspectives[name] = load_perspective(name)
            specs.update({s.key: s for s in perspectives[name].settings})
        if key not in specs:
            raise TrustbitsError(f"records of setting {key} match no declared setting", f"pass the suite that produced them; {did_you_mean(key, specs)}")
    groups = []
    if suite is not None:
        for setting in suite:
            own = by_setting.get(setting.key, {})
            ids = [e.example_id for e in setting.examples]
            missing = [i for i in ids if i not in own]
            if complete and missing:
                raise TrustbitsError(
                    f"{len(missing)} of {len(ids)} examples of {setting.key} have no record (e.g. {missing[0]})",
                    "score the whole suite first, or use score_bounds() for partial results",
                )
            kept = [own[i] for i in ids if i in own]
            if kept:
                groups.append(SettingRecords(setting.spec, kept))
    else:
        groups = [SettingRecords(specs[key], list(own.values())) for key, own in by_setting.items()]
    return perspectives, groups


def bootstrap_index(key: str, n: int, samples: int, seed: int) -> np.ndarray:
    """(samples + 1, n) indices: row 0 the identity (point estimate), then resamples."""
    digest = hashlib.sha256(f"{seed}:{key}:{n}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    resamples = rng.integers(0, n, size=(samples, n), dtype=np.int64)
    return np.concatenate([np.arange(n, dtype=np.int64)[None], resamples])


def setting_statistics(group: SettingRecords, samples: int, seed: int) -> dict[str, np.ndarray]:
    """A setting's statistics per replicate, each (samples + 1,); row 0 is the point."""
    spec = group.spec
    idx = bootstrap_index(spec.key, len(group.records), samples, seed)
    stats = METRIC_FUNCTIONS[spec.metric](Outcomes.from_records(spec, group.records), idx)
    if spec.metric == "one_minus_dpd":
        # DecodingTrust's point estimates come from fairlearn; the twin in formulas.py
        # (tested equal) resamples them.
        dpd, eod = fairlearn_differences(group.records, spec)
        stats["dpd"][0], stats["eod"][0], stats["value"][0] = dpd, eod, 1 - dpd
    return stats


def perspective_replicates(perspective: PerspectiveSpec, groups: list[SettingRecords], stats: dict[str, dict]) -> dict | None:
    """Score, refusal, subscores and reported metrics of a perspective per replicate (0-1)."""
    counted = [g for g in groups if g.spec.perspective == perspective.name and g.spec.subscore]
    if not counted:
        return None
    by_subscore: dict[str, list[str]] = {}
    for g in counted:
        by_subscore.setdefault(g.spec.subscore, []).append(g.spec.key)
    subscores = {name: np.mean([stats[k]["value"] for k in keys], axis=0) for name, keys in by_subscore.items()}
    if perspective.refusal_average == "subscores":
        refusal = np.mean([np.mean([stats[k]["refusal"] for k in keys], axis=0) for keys in by_subscore.values()], axis=0)
    else:
        refusal = np.mean([stats[g.spec.key]["refusal"] for g in counted], axis=0)
    reported: dict[str, list] = {}
    for g in counted:
        for name, values in stats[g.spec.key].items():
            if name not in ("value", "refusal"):
                reported.setdefault(name, []).append(values)
    return {
        "score": np.mean(list(subscores.values()), axis=0),
        "refusal": refusal,
        "subscores": subscores,
        "reported": {name: np.mean(values, axis=0) for name, values in reported.items()},
    }


def _interval(replicates: np.ndarray, confidence: float = defaults.CONFIDENCE) -> Interval:
    """Point (row 0) and percentile interval of the resamples, x 100."""
    point = float(replicates[0]) * 100
    if len(replicates) < 2:
        return Interval(point, point, point)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(replicates[1:], [tail, 100 - tail])
    return Interval(point, float(low) * 100, float(high) * 100)


def aggregate(
    records: Iterable[Record],
    suite: Suite | None = None,
    *,
    require_complete: bool = False,
    samples: int = defaults.BOOTSTRAP_SAMPLES,
    seed: int = defaults.BOOTSTRAP_SEED,
) -> Scores:
    """DecodingTrust scores of `records` (see the package docstring for the contract).

    Args:
        records: one record per example (from `score`, `read_jsonl` or `vote`).
        suite: the suite they were scored on: gives the declarations of user-defined tasks
            and the example order. Built-in tasks need no suite.
        require_complete: with a suite, refuse records that miss some of its examples.
            Otherwise the scores cover the examples present (a search trial stopped early),
            and ``metadata["missing"]`` counts the others; `score_bounds` bounds the rest.
        samples: bootstrap replicates (0: no interval).
        seed: seed of the resampling.

    Raises:
        TrustbitsError: duplicate or unknown records, or (require_complete) missing ones.
    """
    records = list(records)
    perspectives, groups = collate(records, suite, complete=require_complete)
    if not groups:
        raise TrustbitsError("there are no records to aggregate", "score a suite first")
    stats = {g.spec.key: setting_statistics(g, samples, seed) for g in groups}
    results, trust_parts = {}, []
    for name in dict.fromkeys(g.spec.perspective for g in groups):
        declaration = perspectives[name]
        reps = perspective_replicates(declaration, groups, stats)
        settings = {}
        for g in groups:
            if g.spec.perspective == name:
                settings[g.spec.key] = {k: float(v[0]) * 100 for k, v in stats[g.spec.key].items()}
                settings[g.spec.key]["n"] = len(g.records)
        results[name] = PerspectiveScore(
            name=name,
            title=declaration.title,
            score=_interval(reps["score"]) if reps else None,
            refusal_rate=float(reps["refusal"][0]) * 100 if reps else None,
            subscores={k: _interval(v) for k, v in reps["subscores"].items()} if reps else {},
            reported={k: _interval(v) for k, v in reps["reported"].items()} if reps else {},
            settings=settings,
        )
        if reps:
            trust_parts.append(reps["score"])
    metadata = {
        "examples": sum(len(g.records) for g in groups),
        "bootstrap": {"samples": samples, "seed": seed, "confidence": defaults.CONFIDENCE},
        "notes": [note for name in results for note in perspectives[name].notes],
    }
    if suite is not None:
        metadata["suite"] = suite.fingerprint()
        metadata["missing"] = len(suite) - metadata["examples"]
    trust = _interval(np.mean(trust_parts, axis=0)) if trust_parts else None
    return Scores(results, trust, metadata)


def paired_difference(records_a: Iterable[Record], records_b: Iterable[Record], perspective: str, *, suite: Suite | None = None, samples: int = defaults.BOOTSTRAP_SAMPLES, seed: int = defaults.BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """score(a) - score(b) of `perspective` (or ``"trust"``) on the examples both scored,
    with a paired bootstrap interval (each resample draws the same examples for a and b).

    Returns:
        (delta, low, high) on the 0-100 scale.

    Raises:
        TrustbitsError: no common example, or `perspective` absent from the records.
    """
    a = {r.key: r for r in records_a}
    b = {r.key: r for r in records_b}
    common = [key for key in a if key in b]
    if not common:
        raise TrustbitsError("the two record sets share no example", "score both models on the same suite")
    replicates = []
    for chosen in (a, b):
        perspectives, groups = collate([chosen[key] for key in common], suite, complete=False)
        stats = {g.spec.key: setting_statistics(g, samples, seed) for g in groups}
        names = list(dict.fromkeys(g.spec.perspective for g in groups))
        scores = {n: perspective_replicates(perspectives[n], groups, stats) for n in names}
        scores = {n: s["score"] for n, s in scores.items() if s is not None}
        if perspective == "trust" and scores:
            replicates.append(np.mean(list(scores.values()), axis=0))
        elif perspective in scores:
            replicates.append(scores[perspective])
        else:
            raise TrustbitsError(f"the records hold no scored '{perspective}' perspective", did_you_mean(perspective, ["trust", *scores]))
    delta = _interval(replicates[0] - replicates[1])
    return delta.value, delta.low, delta.high
