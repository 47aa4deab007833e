"""trustbits.metrics: the four DecodingTrust trust perspectives (adversarial robustness,
out-of-distribution robustness, machine ethics, fairness), scored fast by label
log-likelihood, certified by generation.

Perspectives and tasks are data (``perspectives/*.toml``; data files under ``data/``, with
their license and provenance). The code that runs them is shared, needs only a model and a
tokenizer, and never imports `trustbits.quant`.

The contract (all names below are importable from `trustbits.metrics`; this module stays
import-light, torch and friends load on first use):

``build_suite(perspectives=("adv", "ood", "ethics", "fairness"), *, limit=None, seed=0,
settings="default", data_dir=None) -> Suite``
    The default suite of issue 3 (or ``settings="all"``, or glob patterns). `limit` keeps at
    most that many examples per setting, label-stratified and identical across models.
    `Suite` iterates `Setting`s (each with `examples` carrying a stable `example_id`),
    `suite.requests()` flattens them, `suite.fingerprint()` changes with any prompt or
    example, `suite.to_json()`/`Suite.from_json()` round-trip, and `suite.head(part)` /
    `suite.tail(part)` / `suite.split(k)` cut every setting for an early stop.

``score(model, tokenizer, suite, *, mode="loglik", batch_size=None, progress=None)
-> list[Record]``
    One `Record` per example (`perspective, task, setting, example_id, gold, pred,
    option_logprobs, group, refused`; `to_json`/`from_json`; `write_jsonl`/`read_jsonl`).
    ``mode="generate"`` decodes greedily and parses as DecodingTrust does. `progress` is
    called as ``progress(done, total)``.

``aggregate(records, suite=None, *, require_complete=False) -> Scores``
    Per perspective: the 0-100 score with a 95% bootstrap interval, subscores (with
    intervals), refusal rate; `trust` = mean of the perspectives present. `Scores.values()`
    is the flat ``{"trust": .., "adv": .., ...}``; `Scores.to_json()`/`from_json()`.
    Records missing from `suite` are counted in ``metadata["missing"]`` (refused with
    `require_complete`). Scores carry the suite's recorded choices in ``metadata["notes"]``.

``score_bounds(records, suite) -> {perspective or "trust": (low, high)}``
    Valid bounds on the final scores when only part of the suite is scored.

``paired_difference(records_a, records_b, perspective) -> (delta, low, high)``
    score(a) - score(b) with a paired bootstrap 95% interval.

``vote(member_records, precisions, rule="hard"|"soft") -> list[Record]``
    Precision-ensemble voting over stored records (milliseconds).

Example::

    from trustbits.metrics import aggregate, build_suite, score
    from trustbits.quant.loading import load_model

    loaded = load_model("builtin:smollm2-135m-instruct")
    suite = build_suite(limit=20)
    records = score(loaded.model, loaded.tokenizer, suite)
    print(aggregate(records, suite).values())
"""

from __future__ import annotations

from trustbits.lazy import lazy_exports

_EXPORTS = {
    "build_suite": "trustbits.metrics.suite",
    "Suite": "trustbits.metrics.suite",
    "Setting": "trustbits.metrics.suite",
    "Example": "trustbits.metrics.suite",
    "Request": "trustbits.metrics.suite",
    "score": "trustbits.metrics.scorer",
    "Record": "trustbits.metrics.records",
    "write_jsonl": "trustbits.metrics.records",
    "read_jsonl": "trustbits.metrics.records",
    "aggregate": "trustbits.metrics.aggregate",
    "paired_difference": "trustbits.metrics.aggregate",
    "Scores": "trustbits.metrics.scores",
    "PerspectiveScore": "trustbits.metrics.scores",
    "Interval": "trustbits.metrics.scores",
    "score_bounds": "trustbits.metrics.bounds",
    "vote": "trustbits.metrics.vote",
    "load_perspective": "trustbits.metrics.spec",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
