"""`trustbits eval` end to end on the tiny model, and its errors: exit code 2, one line."""

from __future__ import annotations

import json

import pytest

from trustbits.metrics import read_jsonl
from trustbits.search.cli import main


def test_eval_writes_records_and_scores(tiny_model_dir, tmp_path, capsys):
    dump, scores = tmp_path / "records.jsonl", tmp_path / "scores.json"
    code = main(["eval", "--model", str(tiny_model_dir), "--perspectives", "adv,fairness", "--limit", "2", "--dump", str(dump), "--json", str(scores)])
    assert code == 0
    out = capsys.readouterr().out
    assert "DecodingTrust scores of" in out and "trust" in out and "AdvGLUE++" in out
    records = read_jsonl(dump)
    assert len(records) == 6 * 2 + 3 * 2
    data = json.loads(scores.read_text())
    assert set(data["perspectives"]) == {"adv", "fairness"}
    assert data["metadata"]["limit"] == 2 and data["metadata"]["scoring"] == "loglik"
    assert data["trust"][1] <= data["trust"][0] <= data["trust"][2]


def test_eval_json_to_stdout_and_generate_mode(tiny_model_dir, capsys):
    code = main(["eval", "--model", str(tiny_model_dir), "--perspectives", "ethics", "--settings", "commonsense_short/zero_shot", "--limit", "2", "--scoring", "generate", "--json", "-"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metadata"]["scoring"] == "generate"
    assert data["perspectives"]["ethics"]["settings"]["ethics/commonsense_short/zero_shot"]["n"] == 2


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--perspectives", "adv,ethcs"], "error: unknown perspective 'ethcs'; did you mean 'ethics'?"),
        (["--perspectives", "toxicity"], "expected one of: adv, ethics, fairness, ood"),
        (["--limit", "0"], "error: --limit must be an integer >= 1, not '0'; pass e.g. --limit 50."),
        (["--limit", "ten"], "error: --limit must be an integer >= 1, not 'ten'"),
        (["--batch-size", "-1"], "error: --batch-size must be an integer >= 1"),
        (["--scoring", "gen"], "error: unknown scoring mode 'gen'; expected one of: generate, loglik."),
        (["--settings", "nothing/*"], "matches no setting"),
        (["--perspectives", "missing.toml"], "perspective file missing.toml does not exist"),
        (["--plan", "no_plan.json"], "plan file 'no_plan.json' does not exist"),
    ],
)
def test_eval_errors_are_one_line(tiny_model_dir, capsys, arguments, message):
    code = main(["eval", "--model", str(tiny_model_dir), *arguments])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_missing_data_file_via_the_cli(tiny_model_dir, tmp_path, capsys):
    spec = tmp_path / "mine.toml"
    text = open(__import__("trustbits.metrics.spec", fromlist=["x"]).PERSPECTIVES_DIR / "adv.toml", encoding="utf-8").read()
    spec.write_text(text.replace('path = "adv/advglue_dev.json", field = "sst2"', f'path = "{tmp_path / "gone.json"}", field = "sst2"'))
    assert main(["eval", "--model", str(tiny_model_dir), "--perspectives", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "gone.json does not exist" in err and err.count("\n") == 1


def _rtn_plan(model_dir, path):
    from trustbits.quant.inventory import quantizable_modules
    from trustbits.quant.loading import load_model
    from trustbits.quant.plan import Plan, QuantSpec

    loaded = load_model(str(model_dir))
    names = [m.name for m in quantizable_modules(loaded.model)]
    Plan.uniform(names, QuantSpec("rtn", 4, 32), model_name=loaded.name, model_fingerprint=loaded.fingerprint).save(path)
    return loaded


def test_eval_with_a_plan(tiny_model_dir, tmp_path, capsys):
    _rtn_plan(tiny_model_dir, tmp_path / "plan.json")
    code = main(["eval", "--model", str(tiny_model_dir), "--plan", str(tmp_path / "plan.json"), "--perspectives", "adv", "--settings", "sst2/*", "--limit", "1", "--json", "-"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metadata"]["plan"].endswith("plan.json") and data["metadata"]["footprint_bytes"] > 0


def test_quantized_model_scores_match_full_sequence(tiny_model_dir, tmp_path):
    """QuantLinear modules (same forward signature) go through the same prefix-cached path."""
    from trustbits.kernels import exact_kernels
    from trustbits.metrics import build_suite, score
    from trustbits.quant.assemble import apply_plan
    from trustbits.quant.plan import Plan

    from .conftest import full_sequence_logprobs

    loaded = _rtn_plan(tiny_model_dir, tmp_path / "plan.json")
    suite = build_suite(["adv", "ethics"], limit=1, settings=["mnli/*", "commonsense_short/zero_shot"])
    float_records = score(loaded.model, loaded.tokenizer, suite)
    with apply_plan(loaded, Plan.load(tmp_path / "plan.json")), exact_kernels():
        assert "QuantLinear" in {type(m).__name__ for m in loaded.model.modules()}
        records = score(loaded.model, loaded.tokenizer, suite)
        for request, record in zip(suite.requests(), records):
            reference = full_sequence_logprobs(loaded.model, loaded.tokenizer, request.setting, request.example)
            worst = max(abs(record.option_logprobs[o] - v) for o, v in reference.items())
            kernels = sorted({n for m in loaded.model.modules() if type(m).__name__ == "QuantLinear" for n in m.kernel_names.values()})
            # Exact kernels only (what scoring uses): chunked and full runs agree as float
            # layers do, whatever kernel each row count picked.
            assert worst < 1e-4, (worst, kernels)
    assert any(a.option_logprobs != b.option_logprobs for a, b in zip(records, float_records))


def test_eval_of_a_plan_scores_with_exact_kernels(tiny_model_dir, tmp_path, monkeypatch):
    """Even where the bfloat16-activation kernel is the fastest, `eval --plan` scores what the
    quantized weights compute: its log-probabilities equal those of every layer pinned to the
    dequantized matmul (otherwise a plan's scores would depend on batching and timings)."""
    from trustbits.kernels import dispatch
    from trustbits.metrics import build_suite, score
    from trustbits.quant.assemble import apply_plan
    from trustbits.quant.plan import Plan

    real = dispatch.timed_choices
    monkeypatch.setattr(dispatch, "timed_choices", lambda *a, **k: {n: (1e-9 if n == "cpu-int4pack" else t) for n, t in real(*a, **k).items()})
    loaded = _rtn_plan(tiny_model_dir, tmp_path / "plan.json")
    dump = tmp_path / "records.jsonl"
    args = ["eval", "--model", str(tiny_model_dir), "--plan", str(tmp_path / "plan.json"), "--perspectives", "adv", "--settings", "sst2/*,mnli/*", "--limit", "2"]
    assert main([*args, "--dump", str(dump)]) == 0
    suite = build_suite(["adv"], limit=2, settings=["sst2/*", "mnli/*"])
    with apply_plan(loaded, Plan.load(tmp_path / "plan.json")):
        layers = [m for m in loaded.model.modules() if type(m).__name__ == "QuantLinear"]
        assert layers[0].kernel_for(1).name == "cpu-int4pack"  # the patch took
        for m in layers:
            m.use_kernel("dequant-cached")
        reference = {r.key: r for r in score(loaded.model, loaded.tokenizer, suite)}
    for r in read_jsonl(dump):
        assert max(abs(r.option_logprobs[o] - reference[r.key].option_logprobs[o]) for o in r.option_logprobs) < 1e-4
