"""Export formats written from the plan stored on a trial, and the errors for bad trials."""

from __future__ import annotations

import json
import re

import optuna
import pytest
import yaml

from trustbits import TrustbitsError
from trustbits.quant.inventory import quantizable_modules
from trustbits.quant.plan import Plan
from trustbits.search.export import FORMATS, export_trial, gguf_tensor_name, gptqmodel_config
from trustbits.search.sampler import ENSEMBLE, KIND_ATTR
from trustbits.search.spec import parse_spec
from trustbits.search.trial_attrs import pack


@pytest.fixture
def plan(tiny_model):
    names = [m.name for m in quantizable_modules(tiny_model)]
    return Plan.from_rules(names, {r"mlp\.down_proj": "hqq:8:64", r"layers\.1\.self_attn": "keep"}, default="hqq:4:64", model_name="tiny", model_fingerprint="f" * 16)


@pytest.fixture
def study(plan):
    spec = parse_spec({"search": {"objectives": ["trust", "memory"]}})
    study = optuna.create_study(directions=spec.directions)
    study.set_user_attr("trustbits:spec", spec.to_json())
    float_plan = Plan.uniform(plan.modules, None, model_name="tiny")
    attrs = lambda p, label, trust, mem: {"plan_z": pack(p.to_json()), "label": label, "flat": {"trust": trust}, "memory_bytes": mem, "avg_bits": 5.0}  # noqa: E731
    study.add_trial(optuna.create_trial(values=[60.0, 2.0], user_attrs=attrs(plan, "sampled", 60.0, 2e6)))  # 0: on the front
    study.add_trial(optuna.create_trial(values=[61.0, 9.0], user_attrs=attrs(float_plan, "float", 61.0, 9e6)))  # 1: on the front
    study.add_trial(optuna.create_trial(values=[50.0, 8.0], user_attrs=attrs(plan, "sampled", 50.0, 8e6)))  # 2: dominated
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={"stop_reason": "stopped early"}))  # 3
    study.add_trial(optuna.create_trial(values=[62.0, 11.0], user_attrs={"label": "ensemble", "members": [0, 1], "vote": "hard", "flat": {"trust": 62.0}, "memory_bytes": 11e6}, system_attrs={KIND_ATTR: ENSEMBLE}))  # 4
    return study


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_writes_the_stored_plan(study, plan, fmt, tmp_path):
    written = export_trial(study, 0, fmt, tmp_path)
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert Plan.from_json(doc) == plan
    assert doc["provenance"]["trial"] == 0 and doc["provenance"]["scores"] == {"trust": 60.0}
    assert all(p.exists() for p in written)


def test_format_contents(plan, tmp_path):
    cfg = gptqmodel_config(plan)
    assert (cfg["bits"], cfg["group_size"]) == (4, 64)
    keep = [k for k in cfg["dynamic"] if k.startswith("-:")]
    assert len(keep) == 4 and all(re.fullmatch(k[2:], k[2:].strip("^$").replace("\\", "")) for k in keep)
    assert cfg["dynamic"]["+:^model\\.layers\\.0\\.mlp\\.down_proj$"] == {"bits": 8, "group_size": 64}

    from trustbits.search.export import llamacpp_tensor_types, llmcompressor_recipe

    recipe = yaml.safe_load(llmcompressor_recipe(plan))
    groups = recipe["quant_stage"]["quant_modifiers"]["QuantizationModifier"]["config_groups"]
    assert set(groups) == {"w4_g64", "w8_g64"}
    assert groups["w8_g64"]["weights"]["num_bits"] == 8 and len(groups["w8_g64"]["targets"]) == 2
    lines = llamacpp_tensor_types(plan).splitlines()
    assert "blk\\.0\\.ffn_down=q8_0" in lines and "blk\\.1\\.attn_q=f16" in lines and "output=q4_k" in lines
    assert gguf_tensor_name("model.layers.12.self_attn.o_proj") == "blk.12.attn_output"


def test_ensemble_exports_a_manifest_and_its_members(study, tmp_path):
    export_trial(study, 4, "gptqmodel", tmp_path)
    manifest = json.loads((tmp_path / "ensemble.json").read_text())
    assert [m["trial"] for m in manifest["members"]] == [0, 1] and manifest["vote"] == "hard"
    assert "tie goes to the member with the highest mean bits" in manifest["rule"]
    assert (tmp_path / "member-0" / "quantize_config.json").exists()


@pytest.mark.parametrize(
    "number, fragment",
    [(99, "has no trial 99"), (3, "trial 3 is not complete (stopped early)"), (2, "trial 2 is not on the Pareto front")],
)
def test_bad_trials(study, tmp_path, number, fragment):
    with pytest.raises(TrustbitsError, match=re.escape(fragment)):
        export_trial(study, number, "json", tmp_path)


def test_off_front_allowed_on_request_and_unknown_format(study, tmp_path):
    export_trial(study, 2, "json", tmp_path, allow_off_front=True)
    with pytest.raises(TrustbitsError, match="did you mean 'gptqmodel'"):
        export_trial(study, 0, "gptq-model", tmp_path)


def test_float_model_has_no_gptq_config(study, tmp_path):
    with pytest.raises(TrustbitsError, match="nothing to export"):
        export_trial(study, 1, "gptqmodel", tmp_path)
