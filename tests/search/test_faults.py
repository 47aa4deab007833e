"""Faults a long search meets: out of memory, a full disk, a live dashboard, a tampered
sampler file. Each with real processes where the fault is real."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from trustbits.search import cli
from trustbits.search.sampler import is_ensemble

TRUSTBITS = str(Path(sys.executable).with_name("trustbits"))


def load(spec: Path):
    return optuna.load_study(study_name=spec.stem, storage=f"sqlite:///{spec.with_suffix('.db')}")


def done_singles(study):
    return [t for t in study.get_trials() if not is_ensemble(t) and t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def test_out_of_memory_fails_the_trial_backs_off_and_goes_on(make_spec, monkeypatch):
    import torch

    import trustbits.metrics.scorer as scorer

    real = scorer.score
    calls = {"n": 0}

    def score_that_runs_out_of_memory_once(model, tokenizer, suite, *, batch_size=None, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the second trial's first stage
            raise torch.OutOfMemoryError(f"injected: cannot allocate at batch size {batch_size}")
        return real(model, tokenizer, suite, batch_size=batch_size, **kw)

    import trustbits.metrics

    monkeypatch.setattr(trustbits.metrics, "score", score_that_runs_out_of_memory_once)
    spec = make_spec(trials=6, name="oom")
    assert cli.main(["search", str(spec), "--no-progress", "--no-front"]) == 0
    study = load(spec)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "out of memory at batch size 16" in failed[0].user_attrs["fail_reason"]
    retry = [t for t in study.trials if t.user_attrs.get("label", "").startswith(f"retry of {failed[0].number}")]
    assert len(retry) == 1 and retry[0].params == failed[0].params and retry[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert len(done_singles(study)) == 6


def _limit_file_size(max_bytes: int):
    def apply():
        # A file-size limit makes writes fail with EFBIG, as a full disk fails with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def test_full_disk_is_one_clear_error_and_the_next_run_recovers(make_spec):
    spec = make_spec(trials=6, name="full")
    # Let the first trials finish, then stop every file from growing past its size.
    first = subprocess.run([TRUSTBITS, "search", str(spec), "--no-progress", "--no-front", "--trials", "3"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    size = spec.with_suffix(".db").stat().st_size
    out = subprocess.run([TRUSTBITS, "search", str(spec), "--no-progress", "--no-front"], capture_output=True, text=True, preexec_fn=_limit_file_size(size + 4096))
    assert out.returncode == 2, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "the disk is full or failing" in lines[0] and "run the same command again" in lines[0]
    study = load(spec)  # still a readable database, with the first trials intact
    assert len(done_singles(study)) >= 3
    again = subprocess.run([TRUSTBITS, "search", str(spec), "--no-progress", "--no-front"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(done_singles(load(spec))) == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_live_dashboard_does_not_disturb_the_search(make_spec):
    spec = make_spec(trials=5, name="watched")
    # The study must exist before the dashboard opens it: a first short run creates it.
    assert subprocess.run([TRUSTBITS, "search", str(spec), "--no-progress", "--no-front", "--trials", "1"], capture_output=True).returncode == 0
    port = _free_port()
    dashboard = subprocess.Popen(
        [str(Path(sys.executable).with_name("optuna-dashboard")), f"sqlite:///{spec.with_suffix('.db')}", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        search = subprocess.Popen([TRUSTBITS, "search", str(spec), "--no-progress", "--no-front"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        polls = 0
        while search.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    polls += r.status == 200
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/1?after=0", timeout=10) as r:
                    polls += r.status == 200
            except OSError:
                pass  # the dashboard is still starting
            time.sleep(0.2)
        assert search.returncode == 0, search.stdout.read()[-3000:]
        assert polls >= 4, "the dashboard never answered while the search ran"
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=10)
    assert len(done_singles(load(spec))) == 5


def test_a_tampered_sampler_file_is_never_unpickled(make_spec, caplog):
    spec = make_spec(trials=2, name="tamper")
    assert cli.main(["search", str(spec), "--no-progress", "--no-front"]) == 0
    sampler_file = spec.with_suffix(".sampler")
    assert sampler_file.exists()
    marker = spec.parent / "pwned"
    # A pickle that would create a file if it were ever loaded.
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    sampler_file.write_bytes(payload)
    assert cli.main(["search", str(spec), "--trials", "3", "--no-progress", "--no-front"]) == 0
    assert not marker.exists()
    assert "does not match the study's checksum" in caplog.text
    assert len(done_singles(load(spec))) == 3


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 1 MiB filesystem (tmpfs) that can be grown later, where mounting is allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); the file-size-limit test covers the same path")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_really_full_disk_then_more_space(make_spec, small_tmpfs, monkeypatch):
    import shutil

    spec = make_spec(trials=6, name="enospc")
    first = subprocess.run([TRUSTBITS, "search", str(spec), "--no-progress", "--no-front", "--trials", "2"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    for f in spec.parent.glob("enospc*"):
        if f.is_file():
            shutil.copy(f, small_tmpfs / f.name)
    moved = small_tmpfs / spec.name
    db = moved.with_suffix(".db")
    # Leave 4 KB free, then keep searching: SQLite (or a cache write) hits ENOSPC.
    filler = small_tmpfs / "filler"
    free = shutil.disk_usage(small_tmpfs).free
    filler.write_bytes(b"\0" * max(0, free - 4 * 1024))
    out = subprocess.run([TRUSTBITS, "search", str(moved), "--no-progress", "--no-front"], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "disk is full" in lines[0], out.stderr[-2000:]
    assert len(done_singles(optuna.load_study(study_name="enospc", storage=f"sqlite:///{db}"))) >= 2
    # More space (the user frees some): the same command finishes the budget.
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    again = subprocess.run([TRUSTBITS, "search", str(moved), "--no-progress", "--no-front"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(done_singles(optuna.load_study(study_name="enospc", storage=f"sqlite:///{db}"))) == 6
