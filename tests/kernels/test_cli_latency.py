"""`trustbits latency`: measures and prints both figures; bad input is one line, exit 2."""

from __future__ import annotations

import json

import pytest

from trustbits.search.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--prompt-len", "0"], "--prompt-len must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--plan", "no/such/plan.json"], "plan file 'no/such/plan.json' does not exist"),
        (["--bits", "5"], "bit-width 5 is out of range"),
        (["--bits", "4", "--method", "nope"], "unknown quantization method 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tiny_model_dir, argv, message):
    code, out, err = _run(capsys, "latency", "--model", str(tiny_model_dir), "--repeats", "1", *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_plan_and_bits_are_exclusive(capsys, tiny_model_dir):
    with pytest.raises(SystemExit) as e:
        main(["latency", "--model", str(tiny_model_dir), "--plan", "p.json", "--bits", "4"])
    assert e.value.code == 2


def test_measures_the_float_model_and_writes_json(capsys, tiny_model_dir, tmp_path, one_thread):
    target = tmp_path / "lat.json"
    code, out, err = _run(capsys, "latency", "--model", str(tiny_model_dir), "--repeats", "2", "--prompt-len", "16",
                          "--decode-tokens", "4", "--predict", "--json", str(target))
    assert code == 0, err
    assert "ms/token" in out and "tokens/s" in out and "modelled" in out
    data = json.loads(target.read_text())
    for key in ("decode_ms_per_token", "prefill_tokens_per_s"):
        assert data[key]["median"] > 0 and data[key]["min"] <= data[key]["median"] <= data[key]["max"]
    assert data["modelled"]["modelled"] is True and data["kernels"] == {"float": 15}


def test_measures_a_uniform_plan(capsys, tiny_model_dir, one_thread):
    code, out, err = _run(capsys, "latency", "--model", str(tiny_model_dir), "--bits", "4", "--method", "rtn", "--group-size", "32",
                          "--repeats", "1", "--prompt-len", "8", "--decode-tokens", "2", "--json", "-")
    assert code == 0, err
    data = json.loads(out)
    assert data["plan"] == "uniform rtn:4:32"
    assert "float" not in data["kernels"] and sum(data["kernels"].values()) == 15
