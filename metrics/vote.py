"""Precision-ensemble voting over stored records (arXiv 2511.22483, Section "precision
ensembles"): copies of one model at several bit-widths answer, and their answers are combined
per example. No model runs here; combining a few thousand records takes milliseconds, so the
search can score every candidate ensemble from the records its members already stored.

Rules:

* ``hard`` (the paper's): invalid answers and refusals are dropped; the majority label among
  the valid answers wins; a tie goes to the highest-precision member among those that voted
  for a tied label. With no valid answer at all, the highest-precision member's answer is
  kept as it is (a refusal stays a refusal).
* ``soft``: each member's option log-probabilities are normalized over the options
  (softmax) and averaged; the argmax wins, ties to the first option. It needs loglik records.

The output records are ordinary records (`aggregate` scores them); their `option_logprobs`
hold the log of the members' averaged option probabilities, and `refused` is set when the
winning answer is one a member gave as a refusal (OOD knowledge's "I don't know").
"""

from __future__ import annotations

import math
import sys

from trustbits.errors import TrustbitsError, did_you_mean
from trustbits.metrics.records import Record

RULES = ("hard", "soft")


def vote(member_records: list[list[Record]], precisions: list[int], rule: str = "hard") -> list[Record]:
    """Combine the members' records example by example (order: the first member's).

    Args:
        member_records: one list of records per member, over the same examples.
        precisions: each member's precision (bits); a higher one wins hard-vote ties.
        rule: ``"hard"`` or ``"soft"``.

    Raises:
        TrustbitsError: unknown rule, mismatched lengths, members that did not score the same
            examples, or a soft vote over records without option log-probabilities.
    """
    if rule not in RULES:
        raise TrustbitsError(f"unknown voting rule '{rule}'", did_you_mean(rule, RULES))
    if not member_records:
        raise TrustbitsError("an ensemble needs at least one member", "pass the records of each member")
    if len(precisions) != len(member_records):
        raise TrustbitsError(f"{len(member_records)} members but {len(precisions)} precisions", "give one precision per member")
    indexed = [{r.key: r for r in records} for records in member_records]
    keys = [r.key for r in member_records[0]]
    for m, own in enumerate(indexed[1:], start=1):
        if len(own) != len(keys) or any(k not in own for k in keys):
            raise TrustbitsError(f"member {m} did not score the same examples as member 0", "score every member on the same suite")
    # Members from the highest precision down (stable: equal precisions keep their order).
    ranked = sorted(range(len(indexed)), key=lambda m: -precisions[m])
    combined = []
    for key in keys:
        answers = [indexed[m][key] for m in ranked]
        combined.append(_hard(answers) if rule == "hard" else _soft(answers))
    return combined


def _hard(answers: list[Record]) -> Record:
    """`answers` ranked from the highest precision down."""
    valid = [a for a in answers if a.pred is not None and not a.refused]
    if not valid:
        winner = answers[0]
        return _with(answers, winner.pred, winner.refused)
    counts: dict[str, int] = {}
    for a in valid:
        counts[a.pred] = counts.get(a.pred, 0) + 1
    top = max(counts.values())
    # The first (highest-precision) valid answer among the tied labels wins.
    pred = next(a.pred for a in valid if counts[a.pred] == top)
    return _with(answers, pred, False)


def _soft(answers: list[Record]) -> Record:
    first = answers[0]
    options = list(first.option_logprobs)
    if not options or any(list(a.option_logprobs) != options for a in answers):
        raise TrustbitsError(
            f"soft voting needs every member's option log-probabilities for {first.setting_key} example {first.example_id}",
            "score the members in loglik mode, or use rule='hard'",
        )
    average = _mean_probabilities(answers, options)
    pred = max(options, key=lambda o: average[o])  # max keeps the first on ties
    refused = any(a.refused and a.pred == pred for a in answers)
    return _with(answers, pred, refused)


def _mean_probabilities(answers: list[Record], options: list[str]) -> dict[str, float]:
    """Each member's option probabilities (softmax over its option log-probabilities), averaged."""
    total = dict.fromkeys(options, 0.0)
    for a in answers:
        top = max(a.option_logprobs.values())
        weights = {o: math.exp(a.option_logprobs[o] - top) for o in options}
        norm = sum(weights.values())
        for o in options:
            total[o] += weights[o] / norm / len(answers)
    return total


def _with(answers: list[Record], pred: str | None, refused: bool) -> Record:
    first = answers[0]
    logprobs = {}
    if first.option_logprobs and all(list(a.option_logprobs) == list(first.option_logprobs) for a in answers):
        average = _mean_probabilities(answers, list(first.option_logprobs))
        # Floored so an underflowed probability stays a finite, JSON-safe number.
        logprobs = {o: math.log(max(p, sys.float_info.min)) for o, p in average.items()}
    return Record(
        perspective=first.perspective,
        task=first.task,
        setting=first.setting,
        example_id=first.example_id,
        gold=first.gold,
        pred=pred,
        option_logprobs=logprobs,
        group=first.group,
        refused=refused,
    )
