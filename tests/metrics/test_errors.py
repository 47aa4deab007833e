"""Every error a user can cause in trustbits.metrics: one sentence naming the problem and the fix."""

from __future__ import annotations

import json

import pytest

from trustbits.errors import TrustbitsError
from trustbits.metrics import build_suite, score
from trustbits.metrics.spec import load_perspective

MINIMAL_TASK = """
name = "mine"
[task.t]
data = {{ path = "{path}"{extra} }}
layout = "zero_shot"
instruction = "Answer."
input = "{{text}}"
gold = "{{label}}"
options = ["a", "b"]
metric = "accuracy"
parser = "advglue"
max_new_tokens = 4
setting = [{{ name = "s", default = true }}]
"""


def write_task(tmp_path, path: str, extra: str = "", body: str | None = None):
    spec = tmp_path / "mine.toml"
    spec.write_text(body if body is not None else MINIMAL_TASK.format(path=path, extra=extra))
    return spec


def test_unknown_perspective_lists_the_known_ones():
    with pytest.raises(TrustbitsError) as e:
        build_suite(["adv", "ethcs"])
    assert e.value.message == "unknown perspective 'ethcs'; did you mean 'ethics'? (or pass the path of a perspective .toml file)."
    with pytest.raises(TrustbitsError, match="expected one of: adv, ethics, fairness, ood"):
        build_suite(["toxicity"])
    with pytest.raises(TrustbitsError, match="no perspective was given"):
        build_suite([])


@pytest.mark.parametrize("limit", [0, -3, 2.5, "10", True])
def test_bad_limit(limit):
    with pytest.raises(TrustbitsError, match=r"limit must be a positive integer, not .*; pass e\.g\. limit=50"):
        build_suite(["adv"], limit=limit)


def test_missing_data_file(tmp_path):
    spec = write_task(tmp_path, "nowhere.csv")
    with pytest.raises(TrustbitsError, match=r"setting mine/t/s .*data file .*nowhere\.csv does not exist; fix `data.path`"):
        build_suite([str(spec)], data_dir=tmp_path)
    with pytest.raises(TrustbitsError, match="perspective file .* does not exist"):
        build_suite([str(tmp_path / "absent.toml")])


def test_malformed_data_files(tmp_path):
    (tmp_path / "bad.json").write_text('{"rows": [{"text": "x", "label": "a"},')
    with pytest.raises(TrustbitsError, match=r"bad\.json is not valid JSON"):
        build_suite([str(write_task(tmp_path, "bad.json", ', field = "rows"'))], data_dir=tmp_path)
    (tmp_path / "good.json").write_text(json.dumps({"rows": [{"text": "x", "label": "a"}]}))
    with pytest.raises(TrustbitsError, match=r"good\.json has no field 'lines'.*choose among: rows"):
        build_suite([str(write_task(tmp_path, "good.json", ', field = "lines"'))], data_dir=tmp_path)
    (tmp_path / "bad.csv").write_text('text,label\n"unclosed,a\nx,b,c,d\n')
    with pytest.raises(TrustbitsError, match=r"bad\.csv could not be read as csv"):
        build_suite([str(write_task(tmp_path, "bad.csv"))], data_dir=tmp_path)
    (tmp_path / "cols.csv").write_text("words,label\nx,a\n")
    with pytest.raises(TrustbitsError, match=r"template '\{text\}' uses field 'text' which the data lacks; use one of: words, label"):
        build_suite([str(write_task(tmp_path, "cols.csv"))], data_dir=tmp_path)
    (tmp_path / "labels.csv").write_text("text,label\nx,c\n")
    with pytest.raises(TrustbitsError, match=r"gold label 'c', which maps to no option"):
        build_suite([str(write_task(tmp_path, "labels.csv"))], data_dir=tmp_path)
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(TrustbitsError, match=r"cannot read data\.txt; use a \.csv"):
        build_suite([str(write_task(tmp_path, "data.txt"))], data_dir=tmp_path)


def test_malformed_declarations(tmp_path):
    with pytest.raises(TrustbitsError, match=r"mine\.toml is not valid TOML"):
        load_perspective(write_task(tmp_path, "", body="name = [unclosed"))
    body = MINIMAL_TASK.format(path="x.csv", extra="").replace("instruction =", "instructions =")
    with pytest.raises(TrustbitsError, match=r"unknown field 'instructions'; did you mean 'instruction'"):
        load_perspective(write_task(tmp_path, "", body=body))
    body = MINIMAL_TASK.format(path="x.csv", extra="").replace('metric = "accuracy"\n', "")
    with pytest.raises(TrustbitsError, match=r"setting 't/s' lacks metric; declare it"):
        load_perspective(write_task(tmp_path, "", body=body))
    body = MINIMAL_TASK.format(path="x.csv", extra="").replace('"zero_shot"', '"zeroshot"')
    with pytest.raises(TrustbitsError, match=r"layout 'zeroshot' is not known; did you mean 'zero_shot'"):
        load_perspective(write_task(tmp_path, "", body=body))
    body = MINIMAL_TASK.format(path="x.csv", extra="").replace('input = "{text}"', 'input = "${missing}"')
    with pytest.raises(TrustbitsError, match=r"variable \$\{missing\} is not defined"):
        load_perspective(write_task(tmp_path, "", body=body))


def test_bad_scoring_arguments(tiny_model, tiny_tokenizer):
    suite = build_suite(["adv"], limit=1)
    with pytest.raises(TrustbitsError, match="unknown scoring mode 'gen'; expected one of: generate, loglik"):
        score(tiny_model, tiny_tokenizer, suite, mode="gen")
    with pytest.raises(TrustbitsError, match="batch_size must be a positive integer, not 0"):
        score(tiny_model, tiny_tokenizer, suite, batch_size=0)
    with pytest.raises(TrustbitsError, match="cannot take -1 of a suite"):
        suite.head(-1)
    with pytest.raises(TrustbitsError, match="cannot split a suite into 0 parts"):
        suite.split(0)
    tiny_model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(TrustbitsError, match="'flash_attention_2' attention, which takes no custom attention mask; load it with attn_implementation='sdpa'"):
        score(tiny_model, tiny_tokenizer, suite)
