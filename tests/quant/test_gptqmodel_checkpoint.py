"""`trustbits quantize --format gptqmodel`: a GPTQ checkpoint that GPTQModel itself loads."""

from __future__ import annotations

import json

from trustbits.search.cli import main

from .conftest import needs_gptqmodel


@needs_gptqmodel
def test_gptqmodel_checkpoint_loads_with_gptqmodel(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from trustbits.quant import _gptqmodel
    from trustbits.quant.loading import load_model

    monkeypatch.chdir(tmp_path)  # GPTQModel must not write ./logs here
    out = tmp_path / "ckpt"
    code = main(["quantize", "--model", str(tiny_model_dir), "--bits", "4", "--method", "gptq", "--group-size", "32", "--keep-head", "--format", "gptqmodel", "-o", str(out)])
    assert code == 0, capsys.readouterr().err[-2000:]
    config = json.loads((out / "quantize_config.json").read_text())
    assert config["bits"] == 4 and config["group_size"] == 32 and config["sym"] is True and config["desc_act"] is False
    weights = _gptqmodel.dequantized_weights(_gptqmodel.load_checkpoint(out))
    float_model = load_model(str(tiny_model_dir)).model
    assert len(weights) == 14  # every decoder linear; the head stays float
    for name, w in weights.items():
        ref = float_model.get_submodule(name).weight
        assert float((w - ref).norm() / ref.norm()) < 0.2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


@needs_gptqmodel
def test_gptqmodel_format_refuses_a_quantized_head(tiny_model_dir, tmp_path, capsys):
    code = main(["quantize", "--model", str(tiny_model_dir), "--bits", "4", "--method", "gptq", "--format", "gptqmodel", "-o", str(tmp_path / "x")])
    assert code == 2 and "keep the output head unquantized" in capsys.readouterr().err.replace("\n", " ")
