"""Exact footprint: equals the bytes of the tensors the artifact stores, from shapes alone."""

from __future__ import annotations

import pytest
from safetensors import safe_open

from trustbits.quant.artifact import WEIGHTS, save_artifact
from trustbits.quant.assemble import apply_plan
from trustbits.quant.footprint import footprint, module_bytes, other_params
from trustbits.quant.inventory import quantizable_modules
from trustbits.quant.plan import Plan, QuantSpec


def _stored_tensor_bytes(path) -> int:
    with safe_open(str(path / WEIGHTS), framework="pt") as f:
        return sum(f.get_tensor(k).nbytes for k in f.keys())


@pytest.mark.parametrize("keep_dtype", ["float16", "float32"])
@pytest.mark.parametrize("head", ["keep", "rtn:4:64"])
def test_footprint_matches_the_saved_artifact(tiny_loaded, tiny_names, tmp_path, keep_dtype, head):
    plan = Plan.per_layer_range(tiny_names, {"0": "hqq:3:32"}, default="hqq:8:128")
    plan.modules["model.layers.1.mlp.up_proj"] = None
    plan.modules["lm_head"] = QuantSpec.parse(head)
    with apply_plan(tiny_loaded, plan, keep_dtype=keep_dtype) as applied:
        out = save_artifact(applied, tmp_path / "art", keep_dtype=keep_dtype)
        reported = applied.footprint.total_bytes
    stored = _stored_tensor_bytes(out)
    assert abs(reported - stored) <= 0.01 * stored
    assert reported == stored  # exact, in fact
    assert stored < (out / WEIGHTS).stat().st_size < stored * 1.2  # the rest is the header


def test_footprint_from_shapes_alone_equals_from_the_model(tiny_loaded, tiny_names):
    model = tiny_loaded.model
    infos = quantizable_modules(model)
    plan = Plan.uniform(tiny_names, QuantSpec("hqq", 4, 64))
    from_model = footprint(model, plan)
    from_shapes = footprint(infos, plan, other_params_bytes=2 * other_params(model, infos))
    assert from_model.total_bytes == from_shapes.total_bytes
    assert [m.name for m in from_shapes.modules] == tiny_names


def test_keep_everything_counts_a_tied_head_once(tiny_loaded, tiny_names):
    from trustbits.quant.inventory import float16_bytes

    fp = footprint(tiny_loaded.model, Plan.uniform(tiny_names, None))
    assert fp.total_bytes == float16_bytes(tiny_loaded.model)


def test_module_bytes_formula():
    from trustbits.quant.inventory import ModuleInfo

    info = ModuleInfo("m", 576, 1536, False, "linear", False, 0, "down_proj")
    row = module_bytes(info, QuantSpec("hqq", 3, 128))
    assert row.weight_bytes == 576 * 1536 * 3 // 8
    assert row.meta_bytes == 2 * 1536 * 5 * 2 + 16  # 576 = 4 x 128 + 64: five groups per row
    assert module_bytes(info, None).total == 576 * 1536 * 2
