"""Parallel workers on one machine (`trustbits search --workers N`).

The parent has created and seeded the study; each worker is a fresh process (spawn) that loads
the model and runs the same loop against the shared study (a journal file, or a database). A
worker dies with its parent, so a killed search leaves no orphan behind; what a dead worker
left RUNNING is failed and retried by the next run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time

from trustbits.errors import TrustbitsError
from trustbits.search import storage as storage_mod


def worker_main(spec_path: str, study_name: str | None, loc, deadline: float | None) -> None:
    """Entry point of a spawned worker process (--workers N)."""
    import ctypes
    import signal

    # Die with the parent: a killed `trustbits search` must not leave workers running.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    import trustbits  # noqa: F401 - unshadows the checkout before transformers loads
    from trustbits.search.driver import Worker
    from trustbits.search.spec import load_spec

    spec = load_spec(spec_path)
    if study_name:
        spec = spec.with_name(study_name)
    worker = Worker(spec, loc, save_sampler=False, heartbeat=loc.kind != "journal")
    worker.setup()
    worker.run(deadline=deadline)


def run_workers(spec, loc, workers: int, deadline, probe) -> None:
    from trustbits.search.driver import done_singles

    if spec.path is None:
        raise TrustbitsError("parallel workers need a spec file", "save the spec as a .toml file and pass its path")
    storage_mod.fail_dead_workers_trials(probe.study)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker_main, args=(str(spec.path), spec.study.name, loc, deadline), daemon=False) for _ in range(workers)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(2)
            if probe.view:
                probe.view.trial_finished(len(done_singles(probe.study)), probe.status_line())
    finally:
        for p in procs:
            p.join(timeout=5)
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise TrustbitsError(f"{len(bad)} of {workers} workers exited with an error (exit codes {bad})", "rerun with --debug and one worker to see the error; finished trials are kept")
