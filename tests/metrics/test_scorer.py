"""The scorer: prefix-cached, tree-batched log-likelihoods equal plain full-sequence ones, the
shared KV cache is never mutated, and greedy generation equals transformers' generate."""

from __future__ import annotations

import pytest
import torch

from trustbits.metrics import build_suite, score
from trustbits.metrics.encoding import encode_setting, render_context, shared_prefix_length
from trustbits.metrics.forward import PrefixKV
from trustbits.metrics.generate import greedy_rows, stop_token_ids

from .conftest import full_sequence_logprobs


def _assert_matches_full_sequence(model, tokenizer, suite, records, tolerance=1e-4):
    checked = 0
    for request, record in zip(suite.requests(), records):
        assert record.key == (request.setting.spec.perspective, request.setting.spec.task, request.setting.spec.name, request.example.example_id)
        reference = full_sequence_logprobs(model, tokenizer, request.setting, request.example)
        assert list(record.option_logprobs) == list(request.options)
        for option, value in reference.items():
            assert abs(record.option_logprobs[option] - value) < tolerance, (request.setting.key, option)
        checked += 1
    assert checked == len(suite)


def test_prefix_cached_loglik_equals_full_sequence(tiny_model, tiny_tokenizer, small_suite):
    suite = small_suite.head(1)  # one example of every default setting
    records = score(tiny_model, tiny_tokenizer, suite)
    _assert_matches_full_sequence(tiny_model, tiny_tokenizer, suite, records)
    # The options really are multi-token here (the tree branches are exercised).
    assert len(tiny_tokenizer("not wrong", add_special_tokens=False)["input_ids"]) > 1


def test_long_few_shot_settings_match_full_sequence(tiny_model, tiny_tokenizer):
    suite = build_suite(["ood", "ethics"], limit=2, settings=["ethics/*/few_shot", "style_8shot/base_demo_base_0", "knowledge_5shot/global_facts_0"])
    records = score(tiny_model, tiny_tokenizer, suite)
    _assert_matches_full_sequence(tiny_model, tiny_tokenizer, suite, records)


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_attention_implementations_agree(tiny_model, tiny_tokenizer, implementation):
    tiny_model.set_attn_implementation(implementation)
    suite = build_suite(["adv"], limit=2, settings=["sst2/*", "mnli/*"])
    records = score(tiny_model, tiny_tokenizer, suite, batch_size=2)
    _assert_matches_full_sequence(tiny_model, tiny_tokenizer, suite, records)


def test_batching_does_not_change_results(tiny_model, tiny_tokenizer):
    suite = build_suite(["adv", "fairness"], limit=3)
    one = score(tiny_model, tiny_tokenizer, suite, batch_size=1)
    many = score(tiny_model, tiny_tokenizer, suite, batch_size=64)
    for a, b in zip(one, many):
        assert a.key == b.key
        for option in a.option_logprobs:
            assert abs(a.option_logprobs[option] - b.option_logprobs[option]) < 1e-4


def test_boundary_merge_gets_its_own_context(tiny_model, tiny_tokenizer):
    """A generation prompt ending in a space: appending the option re-tokenizes the end of the
    context (" yes" is one token), so each option is scored against the joint tokenization,
    as lm-evaluation-harness does."""
    import copy

    merged = copy.deepcopy(tiny_tokenizer)
    merged.chat_template = tiny_tokenizer.chat_template.replace("'<|im_start|>assistant\n'", "'<|im_start|>assistant\nThe answer is '")
    assert merged.chat_template != tiny_tokenizer.chat_template
    suite = build_suite(["adv"], limit=2, settings=["sst2/*", "qnli/*"])
    encoded = [e for s in suite for e in encode_setting(merged, suite, s)]
    assert any(len(e.rows) > 1 or e.rows[0][0] != e.context for e in encoded)
    records = score(tiny_model, merged, suite)
    _assert_matches_full_sequence(tiny_model, merged, suite, records)


def test_shared_prefix_is_a_token_prefix_and_is_not_mutated(tiny_model, tiny_tokenizer, small_suite):
    setting = next(s for s in small_suite if s.spec.task == "mnli")
    encoded = encode_setting(tiny_tokenizer, small_suite, setting)
    length = shared_prefix_length(e.context for e in encoded)
    for e in encoded:
        full = tiny_tokenizer(render_context(tiny_tokenizer, setting, setting.examples[encoded.index(e)]), add_special_tokens=False)["input_ids"]
        assert list(e.context) == full
        assert list(e.context[:length]) == list(encoded[0].context[:length])
    assert length > 100  # the three demonstrations are shared
    prefix = PrefixKV(tiny_model, list(encoded[0].context[:length]))
    before = [(k.clone(), v.clone()) for k, v in prefix._layers]
    for batch in (1, 3):
        cache = prefix.fresh_cache(batch)
        tiny_model(input_ids=torch.tensor([[5, 6]] * batch), use_cache=True, **{prefix.cache_keyword: cache})
        assert cache.get_seq_length() == length + 2
    for (k0, v0), (k1, v1) in zip(before, prefix._layers):
        assert k1.shape == k0.shape and torch.equal(k0, k1) and torch.equal(v0, v1)


def test_shared_prefix_length_leaves_one_token():
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 9, 4], [1, 2, 3]]) == 2
    assert shared_prefix_length([[7, 1], [8, 1]]) == 0
    assert shared_prefix_length([]) == 0


def test_greedy_generation_equals_transformers_generate(tiny_model, tiny_tokenizer):
    suite = build_suite(["ethics"], limit=3, settings=["commonsense_short/zero_shot"])
    setting = suite.settings[0]
    encoded = encode_setting(tiny_tokenizer, suite, setting)
    contexts = [list(e.context) for e in encoded]
    length = shared_prefix_length(contexts)
    prefix = PrefixKV(tiny_model, contexts[0][:length])
    stops = stop_token_ids(tiny_model, tiny_tokenizer)
    ours = greedy_rows(tiny_model, prefix, [c[length:] for c in contexts], 12, stops)
    for context, tokens in zip(contexts, ours):
        expected = tiny_model.generate(
            torch.tensor([context]), max_new_tokens=12, do_sample=False, eos_token_id=sorted(stops), pad_token_id=0
        )[0, len(context) :].tolist()
        cut = next((i for i, t in enumerate(expected) if t in stops), len(expected))
        assert tokens == expected[:cut]


def test_generate_mode_records(tiny_model, tiny_tokenizer):
    part = build_suite(limit=1, settings=["sst2/*", "knowledge/qa_2023_idk", "commonsense_short/jailbreak_1", "adult/zero_shot_br_0.5"])
    records = score(tiny_model, tiny_tokenizer, part, mode="generate")
    assert len(records) == len(part)
    for record in records:
        assert record.option_logprobs == {}
        assert isinstance(record.response, str)
        assert record.pred is None or record.pred in part.spec_of(record.setting_key).options


def test_progress_and_order(tiny_model, tiny_tokenizer):
    suite = build_suite(["adv", "fairness"], limit=3)
    calls = []
    records = score(tiny_model, tiny_tokenizer, suite, batch_size=2, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(suite), len(suite))
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    assert [r.key[3] for r in records] == [req.example.example_id for req in suite.requests()]


def test_head_and_tail_records_equal_the_whole(tiny_model, tiny_tokenizer):
    suite = build_suite(["adv", "ood"], limit=3)
    whole = score(tiny_model, tiny_tokenizer, suite)
    parts = score(tiny_model, tiny_tokenizer, suite.head(1)) + score(tiny_model, tiny_tokenizer, suite.tail(1))
    by_key = {r.key: r for r in parts}
    assert len(by_key) == len(whole)
    for record in whole:
        other = by_key[record.key]
        assert other.pred == record.pred
        assert all(abs(other.option_logprobs[o] - v) < 1e-4 for o, v in record.option_logprobs.items())
