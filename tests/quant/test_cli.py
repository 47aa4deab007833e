"""`trustbits quantize` and `trustbits cache` end to end, and their errors (exit code 2, one line)."""

from __future__ import annotations

import json

import pytest
import torch

from trustbits.search.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_quantize_writes_an_artifact_that_loads_everywhere(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "art"
    code, stdout, _ = _run(capsys, "quantize", "--model", str(tiny_model_dir), "--bits", "4", "--group-size", "32", "-o", str(out), "--json", str(tmp_path / "s.json"))
    assert code == 0 and "wrote" in stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["layers_built"] == 15 and summary["total_bytes"] > 0
    from trustbits.quant.loading import load_model

    loaded = load_model(str(out))
    assert loaded.quantized["quantized"]["lm_head"] == "hqq:4:32"
    assert torch.isfinite(loaded.model(torch.tensor([[1, 2, 3]])).logits).all()
    # An artifact cannot be quantized again.
    code, _, err = _run(capsys, "quantize", "--model", str(out), "--bits", "4", "-o", str(tmp_path / "again"))
    assert code == 2 and "already quantized" in err


def test_quantize_with_a_plan_file(tiny_model_dir, tmp_path, capsys):
    from trustbits.quant.loading import load_model
    from trustbits.quant.inventory import quantizable_modules
    from trustbits.quant.plan import Plan

    loaded = load_model(str(tiny_model_dir))
    names = [m.name for m in quantizable_modules(loaded.model)]
    Plan.per_layer_range(names, {"0": "rtn:8:64"}, default="keep", model_fingerprint=loaded.fingerprint).save(tmp_path / "plan.json")
    code, _, _ = _run(capsys, "quantize", "--model", str(tiny_model_dir), "--plan", str(tmp_path / "plan.json"), "-o", str(tmp_path / "art"))
    assert code == 0
    assert len(load_model(str(tmp_path / "art")).quantized["quantized"]) == 7


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bits", "5"], "bit-width 5 is out of range"),
        (["--bits", "4", "--group-size", "100"], "group size 100 is out of range"),
        (["--bits", "4", "--method", "hqqq"], "did you mean 'hqq'"),
        (["--bits", "4", "--method", "awq"], "AWQ cannot run on the CPU"),
        (["--bits", "4", "--method", "hqq", "--format", "gptqmodel"], "writes GPTQ checkpoints, but the plan uses 'hqq'"),
    ],
)
def test_quantize_errors_are_one_line_with_exit_code_2(tiny_model_dir, tmp_path, capsys, args, message):
    code, _, err = _run(capsys, "quantize", "--model", str(tiny_model_dir), "-o", str(tmp_path / "x"), *args)
    assert code == 2
    assert message in err.replace("\n", " ") and err.strip().splitlines()[0].startswith("error:")


def test_a_plan_for_another_model_fails_on_the_cli(tiny_model_dir, tmp_path, capsys):
    from trustbits.quant.plan import Plan, QuantSpec

    Plan.uniform(["model.layers.0.self_attn.q_prj"], QuantSpec()).save(tmp_path / "plan.json")
    code, _, err = _run(capsys, "quantize", "--model", str(tiny_model_dir), "--plan", str(tmp_path / "plan.json"), "-o", str(tmp_path / "x"))
    assert code == 2 and "did you mean 'model.layers.0.self_attn.q_proj'" in err.replace("\n", " ")


def test_cache_list_size_clear(tiny_model_dir, tmp_path, capsys):
    assert _run(capsys, "quantize", "--model", str(tiny_model_dir), "--bits", "2", "-o", str(tmp_path / "a"))[0] == 0
    code, out, _ = _run(capsys, "cache", "list", "--json", "-")
    layers = json.loads(out)["layers"]
    assert code == 0 and len(layers) == 1 and layers[0]["files"] == 15 and layers[0]["folder"].startswith("hqq-w2-g64")
    code, out, _ = _run(capsys, "cache", "size", "--json", "-")
    assert json.loads(out)["bytes"]["layers"] == layers[0]["bytes"]
    code, out, _ = _run(capsys, "cache", "clear")
    assert code == 0 and "removed 15 cached layer files" in out
    assert json.loads(_run(capsys, "cache", "list", "--json", "-")[1])["layers"] == []
    code, _, err = _run(capsys, "cache", "clear", "--fingerprint", "nope")
    assert code == 2 and "no cached layers for fingerprint 'nope'" in err
