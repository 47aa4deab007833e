"""Study spec: defaults, validation errors (one sentence each), fingerprints and diffs."""

from __future__ import annotations

import pytest

from trustbits import TrustbitsError
from trustbits.search import cli
from trustbits.search.spec import diff_fingerprint_data, load_spec, parse_spec

ROOT_STUDIES = __import__("pathlib").Path(__file__).resolve().parents[2] / "studies"


def test_shipped_specs_are_valid():
    specs = sorted(ROOT_STUDIES.glob("*.toml"))
    assert specs, "no study specs shipped"
    for path in specs:
        spec = load_spec(path)
        assert spec.name == path.stem or spec.study.name
        assert len(spec.directions) == len(spec.search.objectives)


def test_defaults_and_directions():
    spec = parse_spec({})
    assert spec.search.objectives == ("trust", "memory", "latency")
    assert spec.directions == ["maximize", "minimize", "minimize"]
    assert spec.head_bits == spec.search.bits


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"serch": {}}, "unknown key 'serch' (did you mean 'search'?)"),
        ({"search": {"bitz": [4]}}, "unknown key 'search.bitz' (did you mean 'bits'?)"),
        ({"search": {"bits": "four"}}, "search.bits: expected a list of integers, got 'four'"),
        ({"search": {"bits": [4, 5]}}, "search.bits: bit-width 5 is out of range"),
        ({"search": {"group_sizes": [100]}}, "search.group_sizes: group size 100 is out of range"),
        ({"search": {"methods": ["hqqq"]}}, "unknown method 'hqqq' (did you mean 'hqq'?)"),
        ({"search": {"objectives": ["memory"]}}, "has no trust objective"),
        ({"search": {"objectives": ["trust", "speed"]}}, "unknown objective 'speed'"),
        ({"search": {"granularity": "layers"}}, "did you mean 'layer'?"),
        ({"eval": {"perspectives": ["ethcs"]}}, "unknown perspective 'ethcs' (did you mean 'ethics'?)"),
        ({"eval": {"limit": 1}}, "eval.limit = 1 is too small"),
        ({"eval": {"limit": True}}, "eval.limit: expected an integer"),
        ({"constraints": {"max_drop": {"ethics": -1}}}, "constraints.max_drop.ethics = -1.0 is negative"),
        ({"constraints": {"max_drop": {"fair": 1}}}, "did you mean 'fairness'?"),
        ({"ensembles": {"min_size": 1}}, "2 <= min_size <= max_size"),
        ({"ensembles": {"vote": "majority"}}, "unknown vote 'majority'"),
        ({"sampler": {"name": "cmaes"}}, "unknown sampler 'cmaes'"),
        ({"budget": {"trials": 0}}, "budget.trials = 0 must be at least 1"),
    ],
)
def test_validation_errors(data, fragment):
    with pytest.raises(TrustbitsError) as e:
        parse_spec(data)
    assert fragment in e.value.message
    assert "\n" not in e.value.message


def test_bad_files(tmp_path):
    with pytest.raises(TrustbitsError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\nbits = [4]")
    with pytest.raises(TrustbitsError, match="is not valid TOML"):
        load_spec(bad)


def test_fingerprint_ignores_budget_and_storage_but_not_the_space():
    a = parse_spec({"budget": {"trials": 5}})
    b = parse_spec({"budget": {"trials": 50}, "study": {"storage": "sqlite:///x.db"}})
    c = parse_spec({"search": {"bits": [2, 4]}})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert diff_fingerprint_data(a.result_fingerprint_data(), c.result_fingerprint_data()) == ["search.bits"]


def test_cli_reports_spec_errors_in_one_line(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text("[search]\nbits = [4, 7]\n")
    assert cli.main(["search", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bit-width 7 is out of range" in err[0]
