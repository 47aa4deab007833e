"""Deployable artifacts: save, reload to identical logits, `load_model(DIR)`, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from trustbits.errors import TrustbitsError
from trustbits.kernels.linear import QuantEmbedding, QuantLinear
from trustbits.quant.artifact import MANIFEST, WEIGHTS, artifact_plan, load_quantized, save_artifact
from trustbits.quant.assemble import apply_plan
from trustbits.quant.loading import load_model
from trustbits.quant.plan import Plan, QuantSpec


def _mixed(names, fingerprint):
    plan = Plan.per_kind(names, {"down_proj": "hqq:8:32", "q_proj": "rtn:2:64", "lm_head": "hqq:4:64"}, default="hqq:3:128", model_fingerprint=fingerprint)
    plan.modules["model.layers.1.self_attn.v_proj"] = None
    return plan


@pytest.mark.parametrize("keep_dtype", ["float32", "float16"])
def test_save_and_reload_gives_identical_logits(tiny_loaded, tiny_names, tiny_ids, tmp_path, keep_dtype):
    model = tiny_loaded.model
    if keep_dtype == "float16":
        # float16 storage is exact for float16-exact weights (a model loaded in half precision).
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
        from trustbits.quant.fingerprint import weights_fingerprint

        tiny_loaded.fingerprint = weights_fingerprint(model)
    with apply_plan(tiny_loaded, _mixed(tiny_names, tiny_loaded.fingerprint), keep_dtype=keep_dtype) as applied:
        logits = model(tiny_ids).logits
        out = save_artifact(applied, tmp_path / "art", keep_dtype=keep_dtype)
    again = load_model(str(out))  # --model DIR goes through the same loader
    assert again.quantized["keep_dtype"] == keep_dtype
    assert isinstance(again.model.get_submodule("model.layers.0.mlp.down_proj"), QuantLinear)
    assert isinstance(again.model.get_input_embeddings(), QuantEmbedding)
    assert isinstance(again.model.get_submodule("model.layers.1.self_attn.v_proj"), torch.nn.Linear)
    assert torch.equal(again.model(tiny_ids).logits, logits)
    plan = artifact_plan(out)
    assert set(plan.meta["layer_errors"]) == {n for n, s in plan.modules.items() if s is not None}


def test_kept_tied_head_is_stored_once_and_retied(tiny_loaded, tiny_names, tiny_ids, tmp_path):
    plan = Plan.uniform(tiny_names, QuantSpec("hqq", 4, 64))
    plan.modules["lm_head"] = None
    with apply_plan(tiny_loaded, plan, keep_dtype="float32") as applied:
        logits = tiny_loaded.model(tiny_ids).logits
        out = save_artifact(applied, tmp_path / "art", keep_dtype="float32")
    again = load_quantized(out)
    assert again.model.lm_head.weight is again.model.get_input_embeddings().weight
    assert torch.equal(again.model(tiny_ids).logits, logits)


def test_errors(tiny_loaded, tiny_names, tmp_path):
    with pytest.raises(TrustbitsError, match="not a trustbits quantized model"):
        load_quantized(tmp_path)
    with apply_plan(tiny_loaded, Plan.uniform(tiny_names, QuantSpec("rtn", 4, 64))) as applied:
        out = save_artifact(applied, tmp_path / "art")
        with pytest.raises(TrustbitsError, match="exists and is not empty"):
            save_artifact(applied, out)
    (out / WEIGHTS).write_bytes((out / WEIGHTS).read_bytes()[:100])
    with pytest.raises(TrustbitsError, match="corrupt or truncated"):
        load_quantized(out)
    manifest = json.loads((out / MANIFEST).read_text()) | {"version": 99}
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(TrustbitsError, match="artifact version 99"):
        load_quantized(out)
