"""Real searches on the tiny model: a front, resume, spec-change refusal, ensembles voted from
stored records, export round-trips, and the same study seen by a plain `optuna.load_study`."""

from __future__ import annotations

import json
import math
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from trustbits.search import cli
from trustbits.search.records import RecordStore
from trustbits.search.sampler import ENSEMBLE, FIXED_ENSEMBLE, SINGLE, is_ensemble, kind_of
from trustbits.search.spec import load_spec
from trustbits.search.study_access import open_study


def singles(study):
    return [t for t in study.trials if not is_ensemble(t)]


@pytest.fixture
def searched(searched_study, monkeypatch):
    monkeypatch.setenv("TRUSTBITS_CACHE", str(searched_study.parent / "cache"))
    return searched_study


def test_search_makes_a_front_with_baselines_and_plots(searched, capsys):
    assert cli.main(["pareto", str(searched)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of study tiny" in out and "uniform-hqq-4" in out
    opened = open_study(str(searched))
    study = opened.study
    done = [t for t in singles(study) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 6
    labels = [t.user_attrs["label"] for t in study.trials[:5]]
    assert labels[:4] == ["float", "uniform-hqq-8", "uniform-hqq-4", "uniform-hqq-3"]
    assert labels[4].startswith("sensitivity-")
    assert (searched.parent / "tiny" / "pareto.png").stat().st_size > 10_000
    assert (searched.parent / "tiny" / "pareto.html").exists()
    # A plain Optuna load sees the same front as `trustbits pareto --json`.
    plain = optuna.load_study(study_name="tiny", storage=f"sqlite:///{searched.with_suffix('.db')}")
    assert cli.main(["pareto", str(searched), "--json", "-"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(r["number"] for r in shown["front"]) == sorted(t.number for t in plain.best_trials)
    # The float reference is stored for constraints and comparisons.
    assert set(study.user_attrs["trustbits:reference"]) >= {"trust", "adv", "fairness"}


def test_resume_extends_the_budget_without_rescoring(copy_study):
    searched = copy_study
    before = {t.number: (t.state, t.values) for t in open_study(str(searched)).study.trials}
    assert cli.main(["search", str(searched), "--trials", "8", "--no-progress", "--no-front"]) == 0
    study = open_study(str(searched), check_spec=False).study
    after = {t.number: (t.state, t.values) for t in study.trials}
    assert all(after[n] == v for n, v in before.items())  # finished trials untouched
    done = [t for t in singles(study) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 8
    # Rerunning at the same budget does nothing.
    assert cli.main(["search", str(searched), "--trials", "8", "--no-progress", "--no-front"]) == 0
    assert len(open_study(str(searched), check_spec=False).study.trials) == len(study.trials)


def test_changed_spec_is_refused_and_fork_reuses_the_cache(copy_study, capsys):
    searched = copy_study
    text = searched.read_text().replace("bits = [3, 4, 8, 16]", "bits = [4, 8, 16]")
    searched.write_text(text)
    assert cli.main(["search", str(searched), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "changed search.bits" in err and "--fork" in err
    assert cli.main(["search", str(searched), "--fork", "tiny2", "--trials", "2", "--no-progress", "--no-front"]) == 0
    assert (searched.parent / "tiny2.db").exists()


def test_ensembles_are_votes_of_stored_records(searched):
    from trustbits.metrics import aggregate, build_suite
    from trustbits.metrics.records import Record

    opened = open_study(str(searched))
    study = opened.study
    ens = [t for t in study.trials if is_ensemble(t) and t.state == TrialState.COMPLETE]
    assert any(kind_of(t) == ENSEMBLE for t in ens), "no sampled ensemble trial ran"
    fixed = [t for t in ens if kind_of(t) == FIXED_ENSEMBLE]
    # The paper's ensembles: the uniform 3/4/8 plans of the method, under both rules.
    assert sorted(t.user_attrs["vote"] for t in fixed) == ["hard", "soft"]
    for t in fixed:
        assert sorted(study.trials[m].user_attrs["uniform"]["bits"] for m in t.user_attrs["members"]) == [3, 4, 8]
    store = RecordStore(opened.location.records_url, "tiny")
    spec = load_spec(searched)
    suite = build_suite(spec.eval.perspectives, limit=spec.eval.limit, seed=spec.eval.seed)
    for trial in ens:
        members = trial.user_attrs["members"]
        precision = {n: study.trials[n].user_attrs["avg_bits"] for n in members}
        member_records = {n: {tuple(r[k] for k in ("perspective", "task", "setting", "example_id")): r for r in store.get(n)} for n in members}
        keys = list(member_records[members[0]])
        top_member = max(members, key=lambda n: precision[n])
        voted = []
        for key in keys:
            base = dict(member_records[members[0]][key])
            if trial.user_attrs["vote"] == "hard":
                answers = [(member_records[n][key]["pred"], precision[n]) for n in members if member_records[n][key]["pred"] is not None and not member_records[n][key]["refused"]]
                counts = Counter(p for p, _ in answers)
                if not counts:  # nobody answered: the highest-precision member's answer stands
                    pred, refused = member_records[top_member][key]["pred"], member_records[top_member][key]["refused"]
                else:
                    top = max(counts.values())
                    # Majority; a tie goes to the highest-precision member among the tied labels.
                    pred = max((a for a in answers if counts[a[0]] == top), key=lambda a: a[1])[0]
                    refused = False
            else:
                # Soft: mean over members of the softmax of their option log-probabilities.
                options = list(base["option_logprobs"])
                mean = {o: 0.0 for o in options}
                for n in members:
                    lp = member_records[n][key]["option_logprobs"]
                    z = sum(math.exp(v) for v in lp.values())
                    for o in options:
                        mean[o] += math.exp(lp[o]) / z / len(members)
                pred = max(options, key=lambda o: mean[o])
                refused = any(member_records[n][key]["refused"] and member_records[n][key]["pred"] == pred for n in members)
            base.update(pred=pred, refused=refused, option_logprobs={})
            voted.append(Record.from_json(base))
        by_hand = aggregate(voted, suite).values()
        for name, value in trial.user_attrs["flat"].items():
            assert by_hand[name] == pytest.approx(value, abs=1e-9), (trial.number, name)
        assert trial.user_attrs["memory_bytes"] == sum(study.trials[n].user_attrs["memory_bytes"] for n in members)


def test_export_roundtrip_reproduces_the_trial_scores(searched, tmp_path, capsys):
    study = open_study(str(searched)).study
    trial = next(t for t in study.best_trials if kind_of(t) == SINGLE)
    assert cli.main(["export", str(searched), "--trial", str(trial.number), "--format", "json", "-o", str(tmp_path / "cfg")]) == 0
    plan_path = tmp_path / "cfg" / "plan.json"
    spec = load_spec(searched)
    scores = tmp_path / "scores.json"
    code = cli.main(["eval", "--model", spec.model.name, "--plan", str(plan_path), "--perspectives", ",".join(spec.eval.perspectives), "--limit", str(spec.eval.limit), "--json", str(scores)])
    assert code == 0
    data = json.loads(scores.read_text())
    flat = {"trust": data["trust"][0]} | {k: v["score"][0] for k, v in data["perspectives"].items()}
    for name, value in trial.user_attrs["flat"].items():
        assert flat[name] == pytest.approx(value, abs=1e-9)


def test_export_errors_through_the_cli(searched, tmp_path, capsys):
    assert cli.main(["export", str(searched), "--trial", "999", "-o", str(tmp_path)]) == 2
    assert "has no trial 999" in capsys.readouterr().err
    assert cli.main(["export", str(searched), "--trial", "0", "--format", "onnx", "-o", str(tmp_path)]) == 2
    assert "unknown export format 'onnx'" in capsys.readouterr().err


def test_pareto_before_any_search(make_spec, capsys):
    path = make_spec(name="fresh")
    assert cli.main(["pareto", str(path)]) == 2
    assert "has no results yet" in capsys.readouterr().err


def test_latency_objective_is_modelled_and_summed_for_ensembles(make_spec):
    spec = make_spec(trials=4, name="lat", objectives=("trust", "memory", "latency"))
    assert cli.main(["search", str(spec), "--no-progress", "--no-front"]) == 0
    study = open_study(str(spec)).study
    done = {t.number: t for t in study.trials if t.state == TrialState.COMPLETE}
    for t in done.values():
        latency = t.user_attrs["latency"]
        assert latency["modelled"] is True and t.values[2] == pytest.approx(latency["decode_ms_per_token"])
    ens = [t for t in done.values() if is_ensemble(t)]
    assert ens
    for t in ens:
        members = t.user_attrs["members"]
        assert t.values[2] == pytest.approx(sum(done[m].values[2] for m in members))
    assert all(t.values[2] > 0 for t in done.values())
