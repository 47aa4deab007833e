"""apply_plan / restore: the quantized model runs, the float model comes back exactly."""

from __future__ import annotations

import pytest
import torch

from trustbits.errors import TrustbitsError
from trustbits.kernels.linear import QuantEmbedding, QuantLinear
from trustbits.quant.assemble import apply_plan
from trustbits.quant.cache import LayerCache
from trustbits.quant.plan import Plan, QuantSpec


def test_apply_then_restore_gives_back_the_exact_float_logits(tiny_loaded, tiny_names, tiny_ids):
    model = tiny_loaded.model
    ref = model(tiny_ids).logits
    plan = Plan.per_kind(tiny_names, {"down_proj": "hqq:8:32", "lm_head": "keep"}, default="hqq:2:64", model_fingerprint=tiny_loaded.fingerprint)
    with apply_plan(tiny_loaded, plan) as applied:
        assert isinstance(model.get_submodule("model.layers.0.mlp.down_proj"), QuantLinear)
        assert isinstance(model.lm_head, torch.nn.Linear)  # kept
        quantized = model(tiny_ids).logits
        assert not torch.allclose(quantized, ref, atol=1e-3)
        assert set(applied.layer_errors) == set(tiny_names) - {"lm_head"}
    assert torch.equal(model(tiny_ids).logits, ref)
    assert all(type(model.get_submodule(n)) is torch.nn.Linear for n in tiny_names)
    applied.restore()  # idempotent


def test_quantized_tied_head_shares_its_qtensor_with_the_embedding(tiny_loaded, tiny_names, tiny_ids):
    model = tiny_loaded.model
    ref = model(tiny_ids).logits
    emb = model.get_input_embeddings()
    plan = Plan.uniform(tiny_names, None)
    plan.modules["lm_head"] = QuantSpec("rtn", 8, 64)
    applied = apply_plan(tiny_loaded, plan)
    q_emb = model.get_input_embeddings()
    assert isinstance(q_emb, QuantEmbedding) and q_emb.qtensor is model.lm_head.qtensor
    assert torch.allclose(model(tiny_ids).logits, ref, atol=0.05)  # 8-bit head and table
    applied.restore()
    assert model.get_input_embeddings() is emb and model.lm_head.weight is emb.weight
    assert torch.equal(model(tiny_ids).logits, ref)


def test_layer_errors_rise_as_bits_fall_and_come_from_the_cache(tiny_loaded, tiny_names):
    cache = LayerCache.for_model(tiny_loaded)
    means = []
    for bits in (8, 4, 2):
        with apply_plan(tiny_loaded, Plan.uniform(tiny_names, QuantSpec("hqq", bits, 64)), cache=cache) as applied:
            means.append(applied.summary()["mean_layer_error"])
    assert means == sorted(means) and means[0] < 0.01
    with apply_plan(tiny_loaded, Plan.uniform(tiny_names, QuantSpec("hqq", 4, 64)), cache=cache) as again:
        assert again.built == 0  # warm cache: nothing quantized


def test_a_second_plan_without_restore_is_refused(tiny_loaded, tiny_names):
    apply_plan(tiny_loaded, Plan.uniform(tiny_names, QuantSpec("rtn", 4, 64)))
    with pytest.raises(TrustbitsError, match="already has a quantization plan applied"):
        apply_plan(tiny_loaded, Plan.uniform(tiny_names, QuantSpec("rtn", 4, 64)))


def test_a_plan_for_another_model_is_refused(tiny_loaded, tiny_names):
    with pytest.raises(TrustbitsError, match="made for model weights"):
        apply_plan(tiny_loaded, Plan.uniform(tiny_names, QuantSpec(), model_fingerprint="ffffffffffffffff"))
    plan = Plan.uniform(tiny_names + ["model.layers.7.mlp.down_proj"], QuantSpec())
    with pytest.raises(TrustbitsError, match="which this model does not have \\(did you mean"):
        apply_plan(tiny_loaded, plan)


def test_progress_is_reported(tiny_loaded, tiny_names):
    seen = []
    apply_plan(tiny_loaded, Plan.uniform(tiny_names, QuantSpec("rtn", 4, 64)), progress=lambda d, t, desc: seen.append((d, t, desc))).restore()
    assert ("assembling" in {s[2] for s in seen}) and seen[-1][0] == seen[-1][1]
