"""The real embedded model (slow): its own chat template and tokenizer through the prefix cache."""

from __future__ import annotations

import pytest

from trustbits.metrics import aggregate, build_suite, score

from .conftest import full_sequence_logprobs


@pytest.mark.slow
def test_smollm2_prefix_cache_and_generation(smollm2):
    suite = build_suite(["adv", "ethics", "fairness"], limit=1, settings=["mnli/*", "commonsense_short/zero_shot", "adult/zero_shot_br_0.5"])
    records = score(smollm2.model, smollm2.tokenizer, suite)
    for request, record in zip(suite.requests(), records):
        reference = full_sequence_logprobs(smollm2.model, smollm2.tokenizer, request.setting, request.example)
        assert all(abs(record.option_logprobs[o] - v) < 1e-4 for o, v in reference.items()), request.setting.key
    generated = score(smollm2.model, smollm2.tokenizer, suite, mode="generate")
    assert all(isinstance(r.response, str) and r.response for r in generated)
    scores = aggregate(generated, suite, samples=0)
    assert set(scores.values()) == {"trust", "adv", "ethics", "fairness"}
