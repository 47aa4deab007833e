"""The real embedded model (slow): HQQ at 4 and 8 bits over every linear, mixed plans from the
cache, perplexity against float, apply/restore, and a saved artifact."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warm(smollm2):
    from trustbits.quant import LayerCache, QuantSpec, quantizable_modules

    names = [m.name for m in quantizable_modules(smollm2.model)]
    cache = LayerCache.for_model(smollm2)
    cache.build(smollm2, [QuantSpec("hqq", 4, 64), QuantSpec("hqq", 8, 64)], modules=names[:-1])
    return cache, names


def test_hqq_perplexity_and_exact_restore(smollm2, warm):
    from trustbits.quant import Plan, QuantSpec, apply_plan, perplexity

    cache, names = warm
    model = smollm2.model
    ids = smollm2.tokenizer("The river town was built where two valleys meet.", return_tensors="pt").input_ids
    ref = model(ids).logits
    ppl = perplexity(model, smollm2.tokenizer, max_tokens=512)
    results = {}
    for bits in (8, 4):
        plan = Plan.uniform(names, QuantSpec("hqq", bits, 64), model_fingerprint=smollm2.fingerprint)
        plan.modules[names[-1]] = None
        with apply_plan(smollm2, plan, cache=cache) as applied:
            assert applied.built == 0
            results[bits] = (perplexity(model, smollm2.tokenizer, max_tokens=512), applied.summary()["mean_layer_error"])
    assert results[8][0] < ppl * 1.02 and results[8][1] < 0.01  # 8-bit near-lossless
    assert ppl < results[4][0] < ppl * 1.5 and results[4][1] < 0.15
    assert torch.equal(model(ids).logits, ref)


def test_mixed_plan_artifact_round_trip(smollm2, warm, tmp_path):
    from trustbits.quant import Plan, apply_plan, load_model, save_artifact

    cache, names = warm
    plan = Plan.per_kind(names, {"down_proj": "hqq:8:64", "lm_head": "keep"}, default="hqq:4:64", model_fingerprint=smollm2.fingerprint)
    ids = smollm2.tokenizer("Interest is the price of borrowing money.", return_tensors="pt").input_ids
    with apply_plan(smollm2, plan, cache=cache, keep_dtype="float32") as applied:
        assert applied.seconds < 30  # the bench measures the real figure; this only catches a blow-up
        logits = smollm2.model(ids).logits
        out = save_artifact(applied, tmp_path / "art", keep_dtype="float32")
        stored = applied.footprint.total_bytes
    again = load_model(str(out))
    assert torch.equal(again.model(ids).logits, logits)
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert sum(f.get_tensor(k).nbytes for k in f.keys()) == stored
