"""The search survives SIGKILL mid-trial and shares a study between parallel workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from trustbits.search.records import RecordStore
from trustbits.search.sampler import is_ensemble

TRUSTBITS = str(Path(sys.executable).with_name("trustbits"))


def singles(study):
    return [t for t in study.get_trials() if not is_ensemble(t)]


def start_search(spec: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    return subprocess.Popen([TRUSTBITS, "search", str(spec), "--no-progress", "--no-front", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def load(spec: Path, storage: str | None = None):
    url = storage or f"sqlite:///{spec.with_suffix('.db')}"
    if url.endswith(".journal"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        url = JournalStorage(JournalFileBackend(url))
    return optuna.load_study(study_name=spec.stem, storage=url)


def wait_until(predicate, timeout: float, proc: subprocess.Popen):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"search exited early ({proc.returncode}):\n{proc.stdout.read()[-3000:]}")
        try:
            if predicate():
                return
        except (KeyError, optuna.exceptions.StorageInternalError, Exception):  # noqa: BLE001 - the study may not exist yet
            pass
        time.sleep(0.3)
    raise AssertionError("timed out waiting for the search")


def test_sigkill_during_scoring_loses_nothing(make_spec):
    spec = make_spec(trials=6)
    proc = start_search(spec)

    def scoring_third_trial():
        study = load(spec)
        done = [t for t in singles(study) if t.state == TrialState.COMPLETE]
        running = [t for t in singles(study) if t.state == TrialState.RUNNING and "memory_bytes" in t.user_attrs]
        return len(done) >= 2 and running

    wait_until(scoring_third_trial, 300, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    study = load(spec)
    before = {t.number: (t.values, t.user_attrs.get("flat")) for t in study.get_trials() if t.state == TrialState.COMPLETE}
    killed = [t for t in singles(study) if t.state == TrialState.RUNNING]
    assert len(killed) == 1

    rerun = start_search(spec)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out[-3000:]
    study = load(spec)
    trials = {t.number: t for t in study.get_trials()}
    for n, (values, flat) in before.items():  # finished trials intact
        assert trials[n].values == values and trials[n].user_attrs.get("flat") == flat
    dead = trials[killed[0].number]
    assert dead.state == TrialState.FAIL and "worker died" in dead.user_attrs["fail_reason"]
    retried = [t for t in singles(study) if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retried) == 1 and retried[0].params == dead.params and retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    done = [t for t in singles(study) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 6  # the budget, each trial counted once
    store = RecordStore(f"sqlite:///{spec.with_suffix('.db')}", spec.stem)
    for t in done:
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs:
            assert store.count(t.number) == t.user_attrs["examples_total"]


def test_two_workers_share_a_journal_study(make_spec):
    spec = make_spec(trials=6, name="par")
    proc = start_search(spec, "--workers", "2")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    journal = spec.with_suffix(".journal")
    assert journal.exists() and not spec.with_suffix(".db").exists()
    study = load(spec, str(journal))
    done = [t for t in singles(study) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 6 <= len(done) <= 7  # workers check the budget before starting; at most one overshoots by a race
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    workers = {t.system_attrs.get("trustbits:worker") for t in done if "duplicate_of" not in t.user_attrs}
    assert len(workers) >= 2, workers  # both workers (and the seeding parent) scored trials
    numbers = [t.number for t in study.get_trials()]
    assert len(numbers) == len(set(numbers))
    store = RecordStore(f"sqlite:///{journal.with_suffix('.records.db')}", "par")
    for t in done:
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs:
            assert store.count(t.number) == t.user_attrs["examples_total"]


@pytest.mark.postgres
def test_two_machines_share_a_postgresql_study(make_spec, postgres_url):
    spec = make_spec(trials=6, name="pgshared")
    try:
        optuna.delete_study(study_name="pgshared", storage=postgres_url)
    except KeyError:
        pass
    # Two independent `trustbits search` processes, as two machines would run them.
    procs = [start_search(spec, "--storage", postgres_url) for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    study = optuna.load_study(study_name="pgshared", storage=postgres_url)
    done = [t for t in singles(study) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 6 <= len(done) <= 7
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    pids = {t.system_attrs.get("trustbits:worker") for t in done if "duplicate_of" not in t.user_attrs}
    assert len(pids) == 2, pids  # both "machines" did work
    labels = [t.user_attrs.get("label") for t in singles(study)]
    assert labels.count("float") == 1  # seeds enqueued once, even though both started together
    store = RecordStore(postgres_url, "pgshared")
    for t in done:
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs:
            assert store.count(t.number) == t.user_attrs["examples_total"]
