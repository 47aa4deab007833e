"""Study storage: locations, the SQLite lock, spec-fingerprint refusal, dead workers; and the
per-example records table."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import optuna
import pytest

from trustbits import TrustbitsError
from trustbits.search import storage as st
from trustbits.search.records import RecordStore
from trustbits.search.spec import load_spec


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "mystudy.toml"
    path.write_text('[search]\nobjectives = ["trust", "memory"]\nbits = [4, 16]\n')
    return path


def test_locations(spec_file):
    spec = load_spec(spec_file)
    loc = st.locate(spec)
    assert loc.kind == "sqlite" and loc.url.endswith("mystudy.db") and loc.records_url == loc.url
    j = st.locate(spec, workers=2)
    assert j.kind == "journal" and j.url.endswith("mystudy.journal") and j.records_url.endswith("mystudy.records.db")
    assert st.locate(spec, "postgresql://u@localhost/db").kind == "rdb"
    with pytest.raises(TrustbitsError, match="SQLite is not safe for parallel workers"):
        st.locate(spec, f"sqlite:///{spec_file.parent}/x.db", workers=2)
    with pytest.raises(TrustbitsError, match="cannot read storage"):
        st.locate(spec, "mystery")


def test_unreachable_server_is_one_sentence(spec_file):
    spec = load_spec(spec_file)
    loc = st.locate(spec, "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(TrustbitsError, match="cannot open study storage"):
        st.make_storage(loc, heartbeat=False)


def test_corrupt_sqlite_file(spec_file):
    spec = load_spec(spec_file)
    db = spec_file.with_suffix(".db")
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TrustbitsError, match="not a readable SQLite database"):
        st.make_storage(st.locate(spec), heartbeat=False)


def test_spec_change_is_refused_naming_the_keys(spec_file):
    spec = load_spec(spec_file)
    storage = st.make_storage(st.locate(spec))
    study, created = st.create_or_check_study(spec, storage)
    assert created
    again, created = st.create_or_check_study(spec, storage)
    assert not created and again.study_name == study.study_name
    longer = dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, trials=99))
    st.create_or_check_study(longer, storage)  # a larger budget extends the study
    changed = dataclasses.replace(spec, search=dataclasses.replace(spec.search, bits=(3, 4, 16)))
    with pytest.raises(TrustbitsError, match=r"changed search\.bits.*--fork"):
        st.create_or_check_study(changed, storage)


def test_lock_excludes_a_second_process(spec_file, tmp_path):
    db = tmp_path / "x.db"
    with st.StudyLock(db):
        code = f"import trustbits.search.storage as s, pathlib; s.StudyLock(pathlib.Path({str(db)!r})).__enter__()"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode != 0 and "already searching" in out.stderr
    # Released: another process can take it.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_trials_of_dead_workers_are_failed_and_retried():
    study = optuna.create_study(directions=["maximize"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = study.ask({"bits.a": optuna.distributions.CategoricalDistribution([3, 4])})
    orphan = study.ask({"bits.a": optuna.distributions.CategoricalDistribution([3, 4])})
    host = st.worker_id().split(":")[0]
    study._storage.set_trial_system_attr(alive._trial_id, st.WORKER_ATTR, f"{host}:{os.getpid()}")
    study._storage.set_trial_system_attr(orphan._trial_id, st.WORKER_ATTR, f"{host}:{dead.pid}")
    assert st.fail_dead_workers_trials(study) == [orphan.number]
    states = {t.number: t.state for t in study.trials}
    assert states[alive.number] == optuna.trial.TrialState.RUNNING
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == orphan.params
    # With the exclusive lock held, every RUNNING trial is stale.
    assert st.fail_dead_workers_trials(study, all_running=True) == [alive.number]


def test_record_store_roundtrip(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = RecordStore(url, "s")
    recs = [{"example_id": str(i), "pred": "yes", "option_logprobs": {"yes": -0.1, "no": -2.5}} for i in range(50)]
    store.put(3, 0, recs[:20])
    store.put(3, 1, recs[20:])
    store.put(3, 1, recs[20:])  # rewriting a stage replaces it
    assert store.get(3) == recs and store.count(3) == 50
    assert store.get(4) == []
    assert RecordStore(url, "other").get(3) == []  # keyed by study
    assert store.get_many([3, 4]) == {3: recs, 4: []}
