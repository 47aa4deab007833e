"""What a trial stores, and reading it back.

Every trial (single or ensemble) carries user attributes written by trustbits:

    label          "float", "uniform-hqq-4", "sensitivity-4.7b", "sampled", "ensemble"
    plan_z         the full plan (zlib + base64 JSON; decision 1: never re-derived)
    scores_z       every perspective and sub-score with its 95% interval (zlib + base64)
    flat           {"trust": .., "adv": .., ...} point scores
    memory_bytes   exact footprint (sum of members for ensembles)
    latency        the latency estimate (modelled: says so) or null
    avg_bits       parameter-weighted mean bits (ensembles: of the highest-precision member)
    bits_histogram {bits: modules}
    examples_scored / examples_total / seconds / stop_reason
    members, vote  ensembles only

Constraint values (<= 0 satisfied) are Optuna's own, set with `Trial.set_constraint`.
Large values are compressed because samplers read every trial's attributes on every ask.
"""

from __future__ import annotations

import base64
import json
import zlib


def pack(data) -> str:
    return base64.b64encode(zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 9)).decode()


def unpack(text: str):
    return json.loads(zlib.decompress(base64.b64decode(text)).decode())


def trial_plan(trial):
    """The plan a trial stored (None for ensembles)."""
    from trustbits.quant.plan import Plan

    z = trial.user_attrs.get("plan_z")
    return Plan.from_json(unpack(z)) if z else None


def trial_scores(trial) -> dict | None:
    z = trial.user_attrs.get("scores_z")
    return unpack(z) if z else None


def set_attrs(study, trial_id: int, attrs: dict) -> None:
    for key, value in attrs.items():
        study._storage.set_trial_user_attr(trial_id, key, value)
