"""Helpers shared by the metrics tests: a small suite and an independent full-sequence scorer."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def small_suite():
    """Two examples of every default setting (built once: building reads every data file)."""
    from trustbits.metrics import build_suite

    return build_suite(limit=2)


def full_sequence_logprobs(model, tokenizer, setting, example) -> dict[str, float]:
    """Each option's summed log-probability, the way lm-evaluation-harness computes it: one
    forward pass over tokenize(context + option) per option, no cache, no batching."""
    from trustbits.metrics.encoding import render_context

    context = render_context(tokenizer, setting, example)
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    result = {}
    for option in setting.spec.options:
        whole = tokenizer(context + option, add_special_tokens=False)["input_ids"]
        continuation = whole[len(context_ids) :]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), dim=-1)
        result[option] = sum(logprobs[len(context_ids) - 1 + t, token].item() for t, token in enumerate(continuation))
    return result
