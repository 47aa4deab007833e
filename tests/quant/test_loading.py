"""Model loading: every `--model` form, the dequantized-weights cache, and each error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from trustbits import TrustbitsError
from trustbits.quant.builtin import builtin_gguf_path
from trustbits.quant.inventory import quantizable_modules
from trustbits.quant.loading import load_model
from trustbits.search import cli


def test_local_directory(tiny_model_dir):
    lm = load_model(str(tiny_model_dir))
    assert lm.device.type == "cpu" and lm.dtype == torch.float32
    names = [m.name for m in quantizable_modules(lm.model)]
    assert len(names) == 2 * 7 + 1 and names[-1] == "lm_head"
    assert lm.tokenizer.chat_template  # the tokenizer's own template
    assert not lm.chat_template_fallback
    # Same weights, same fingerprint.
    assert load_model(str(tiny_model_dir)).fingerprint == lm.fingerprint


def test_dtype_and_device_options(tiny_model_dir):
    lm = load_model(str(tiny_model_dir), dtype="bfloat16", device="cpu")
    assert next(lm.model.parameters()).dtype == torch.bfloat16


def test_tokenizer_without_template_gets_the_plain_fallback(tiny_model_dir, tmp_path):
    copy = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, copy)
    cfg = json.loads((copy / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(cfg))
    for f in copy.glob("chat_template.*"):
        f.unlink()
    lm = load_model(str(copy))
    assert lm.chat_template_fallback
    text = lm.tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "System: S\n\nUser: U\n\nAssistant: "


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("builtin:nope", "unknown builtin model 'builtin:nope'"),
        ("builtin:smollm2-135m", "did you mean 'smollm2-135m-instruct'?"),
        ("./no/such/dir", "model './no/such/dir' does not exist"),
        ("/tmp/definitely-missing.gguf", "does not exist"),
    ],
)
def test_bad_model_names(name, fragment):
    with pytest.raises(TrustbitsError, match=fragment.replace("?", r"\?").replace("(", r"\(")):
        load_model(name)


def test_hub_id_offline_fails_fast_with_a_sentence(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(TrustbitsError, match="cannot reach the Hugging Face hub"):
        load_model("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_hub_id_with_offline_flag_uses_local_cache_only(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(TrustbitsError, match="HF_HUB_OFFLINE=1"):
        load_model("someone/not-cached")


def test_non_gguf_file(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"abc")
    with pytest.raises(TrustbitsError, match="is a file but not a .gguf model"):
        load_model(str(f))


def test_corrupt_and_truncated_gguf(tmp_path):
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"hello, not a gguf")
    with pytest.raises(TrustbitsError, match="not a readable GGUF file"):
        load_model(str(garbage))
    truncated = tmp_path / "truncated.gguf"
    with open(builtin_gguf_path("smollm2-135m-instruct"), "rb") as src:
        truncated.write_bytes(src.read(3_000_000))
    with pytest.raises(TrustbitsError, match="corrupt or truncated"):
        load_model(str(truncated))


def test_directory_without_config(tmp_path):
    with pytest.raises(TrustbitsError, match="no model config found"):
        load_model(str(tmp_path))


def test_not_a_causal_lm(tmp_path):
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=8, patch_size=4)).save_pretrained(tmp_path)
    with pytest.raises(TrustbitsError, match="not a causal language model"):
        load_model(str(tmp_path))


def test_architecture_without_linear_layers(tmp_path, tiny_tokenizer):
    # GPT-2 builds its decoder projections from Conv1D, not nn.Linear; only its head is one.
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=16, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(TrustbitsError, match="has no nn.Linear layers to quantize in its decoder"):
        load_model(str(tmp_path))


def test_info_cli_json(tiny_model_dir, capsys):
    assert cli.main(["info", "--model", str(tiny_model_dir), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"] == 2 and data["linear_modules"] == 14
    assert data["head"]["tied"] is True
    assert data["float16_bytes"] == 2 * data["parameters"]


def test_info_cli_error_exit_code(tmp_path, capsys):
    assert cli.main(["info", "--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_model_info_and_cached_reload(smollm2, capsys):
    mods = quantizable_modules(smollm2.model)
    linears = [m for m in mods if m.role == "linear"]
    assert len(linears) == 210 and mods[-1].name == "lm_head" and mods[-1].tied
    assert smollm2.model.config.num_hidden_layers == 30
    # The second load comes from the safetensors cache, with identical weights.
    again = load_model("builtin:smollm2-135m-instruct")
    assert again.from_cache and again.fingerprint == smollm2.fingerprint
    assert again.load_seconds < 3.0, f"cached load took {again.load_seconds:.2f} s"
    ids = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(again.model(ids).logits, smollm2.model(ids).logits)


@pytest.mark.slow
def test_corrupt_model_cache_is_rebuilt(smollm2, tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTBITS_CACHE", str(tmp_path))
    first = load_model("builtin:smollm2-135m-instruct")
    (entry,) = (Path(tmp_path) / "models").iterdir()
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    again = load_model("builtin:smollm2-135m-instruct")
    assert not again.from_cache and again.fingerprint == first.fingerprint
