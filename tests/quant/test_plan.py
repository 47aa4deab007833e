"""Plans: JSON round-trip, constructors, and every error they raise."""

from __future__ import annotations

import json

import pytest

from trustbits.errors import TrustbitsError
from trustbits.quant.plan import PLAN_VERSION, Plan, QuantSpec

NAMES = [f"model.layers.{i}.{p}" for i in range(4) for p in ("self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj")] + ["lm_head"]


def test_json_round_trip_keeps_specs_keep_and_meta(tmp_path):
    plan = Plan.from_rules(NAMES, {r"down_proj": "gptq:8:128", r"lm_head": "keep"}, default="hqq:3:32", model_name="m", model_fingerprint="abc")
    plan.meta["note"] = "x"
    again = Plan.load(plan.save(tmp_path / "plan.json"))
    assert again == plan and again.meta == {"note": "x"} and again.model_name == "m"
    assert again.modules["lm_head"] is None and again.modules["model.layers.0.mlp.down_proj"] == QuantSpec("gptq", 8, 128)
    assert json.loads((tmp_path / "plan.json").read_text())["version"] == PLAN_VERSION


def test_other_schema_version_is_refused():
    data = Plan.uniform(NAMES, QuantSpec()).to_json() | {"version": 99}
    with pytest.raises(TrustbitsError, match="schema version 99"):
        Plan.from_json(data)


def test_per_kind():
    plan = Plan.per_kind(NAMES, {"down_proj": "hqq:8:64", "lm_head": "keep"}, default="hqq:4:64")
    assert plan.modules["model.layers.2.mlp.down_proj"] == QuantSpec("hqq", 8, 64)
    assert plan.modules["lm_head"] is None
    assert plan.modules["model.layers.2.self_attn.q_proj"] == QuantSpec("hqq", 4, 64)
    with pytest.raises(TrustbitsError, match="did you mean 'down_proj'"):
        Plan.per_kind(NAMES, {"down_prj": "hqq:8:64"})


def test_per_layer_range_first_match_wins_and_head_gets_default():
    plan = Plan.per_layer_range(NAMES, {"0-1": "hqq:8:64", "1-3": "rtn:2:32"}, default="keep")
    assert plan.modules["model.layers.1.mlp.down_proj"] == QuantSpec("hqq", 8, 64)
    assert plan.modules["model.layers.3.self_attn.q_proj"] == QuantSpec("rtn", 2, 32)
    assert plan.modules["lm_head"] is None
    assert Plan.per_layer_range(NAMES, {"2": "hqq:3:64"}).bits_histogram() == {3: 3, 16: 10}


@pytest.mark.parametrize("bad, message", [("3-1", "cannot read layer range"), ("a-b", "cannot read layer range"), ("7-9", "covers no layer")])
def test_per_layer_range_errors(bad, message):
    with pytest.raises(TrustbitsError, match=message):
        Plan.per_layer_range(NAMES, {bad: "hqq:4:64"})


@pytest.mark.parametrize(
    "spec, message",
    [
        (("hqqq", 4, 64), "unknown quantization method 'hqqq' \\(did you mean 'hqq'\\?\\)"),
        (("hqq", 5, 64), "bit-width 5 is out of range"),
        (("hqq", 16, 64), "bit-width 16 is out of range"),
        (("hqq", 4, 48), "group size 48 is out of range"),
    ],
)
def test_spec_out_of_range(spec, message):
    with pytest.raises(TrustbitsError, match=message) as e:
        QuantSpec(*spec)
    assert "\n" not in e.value.message


def test_spec_strings():
    assert QuantSpec.parse("gptq:3") == QuantSpec("gptq", 3, 64)
    assert QuantSpec.parse("keep") is None
    with pytest.raises(TrustbitsError, match="cannot read quantization spec"):
        QuantSpec.parse("hqq-4")


def test_check_model_errors():
    plan = Plan.uniform(NAMES, QuantSpec(), model_fingerprint="aaaa")
    with pytest.raises(TrustbitsError, match="did you mean 'model.layers.0.mlp.down_proj'"):
        Plan({**plan.modules, "model.layers.0.mlp.down_prj": None}).check_model(NAMES)
    with pytest.raises(TrustbitsError, match="does not cover module 'lm_head'"):
        Plan({n: s for n, s in plan.modules.items() if n != "lm_head"}).check_model(NAMES)
    with pytest.raises(TrustbitsError, match="made for model weights aaaa"):
        plan.check_model(NAMES, "bbbb")
    plan.check_model(NAMES, "aaaa")


def test_unused_rule_is_an_error():
    with pytest.raises(TrustbitsError, match="matches no module"):
        Plan.from_rules(NAMES, {r"gate_proj": "hqq:4:64"})
