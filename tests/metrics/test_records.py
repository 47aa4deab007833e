"""Records: JSON lines round-trip and the errors of a bad records file."""

from __future__ import annotations

import json

import pytest

from trustbits.errors import TrustbitsError
from trustbits.metrics import Record, read_jsonl, write_jsonl


def sample_records() -> list[Record]:
    return [
        Record("adv", "sst2", "demo", "12", "positive", "negative", {"negative": -0.25, "positive": -1.5}, None, False),
        Record("ood", "knowledge", "qa_2023_idk", "20230106_0", "2", "4", {"0": -3.0, "1": -2.0, "2": -1.0, "3": -4.0, "4": -0.5}, None, True),
        Record("fairness", "adult", "zero_shot_br_0.5", "7", "no", None, {}, "Female", True, response="Uncertain \u00e9"),
    ]


def test_jsonl_round_trip(tmp_path):
    path = write_jsonl(sample_records(), tmp_path / "deep" / "records.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"trustbits_records": 1}
    assert len(lines) == 4
    assert read_jsonl(path) == sample_records()
    assert [Record.from_json(r.to_json()) for r in sample_records()] == sample_records()
    assert "response" not in sample_records()[0].to_json()


def test_record_properties():
    record = sample_records()[0]
    assert record.key == ("adv", "sst2", "demo", "12")
    assert record.setting_key == "adv/sst2/demo"
    assert not record.correct and sample_records()[1].correct is False


def test_bad_records_files(tmp_path):
    with pytest.raises(TrustbitsError, match="does not exist"):
        read_jsonl(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"trustbits_records": 1}\n{"perspective": \n')
    with pytest.raises(TrustbitsError, match="line 2 of .* is not JSON"):
        read_jsonl(broken)
    partial = tmp_path / "partial.jsonl"
    partial.write_text('{"perspective": "adv", "task": "sst2"}\n')
    with pytest.raises(TrustbitsError, match="lacks the field\\(s\\) setting, example_id"):
        read_jsonl(partial)
    future = tmp_path / "future.jsonl"
    future.write_text('{"trustbits_records": 9}\n')
    with pytest.raises(TrustbitsError, match="format version 9"):
        read_jsonl(future)
