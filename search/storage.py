"""Where a study lives, and opening it safely.

* Default: one SQLite file beside the spec, ``studies/NAME.db`` (one process at a time: a
  lock file guards it, because SQLite is not safe for parallel Optuna writers).
* ``--workers N`` on one machine: Optuna's JournalStorage, ``studies/NAME.journal``.
* ``--storage postgresql://...`` (or ``study.storage`` in the spec): many machines share one
  study; Optuna's heartbeats fail trials of dead workers and retry them.
* ``--storage journal`` or ``journal:///path/file.journal``: an explicit journal file.

The study is created once, before any worker starts, and holds the spec's fingerprint
(`open_study` refuses another spec). Per-example records live beside the trials (see
`trustbits.search.records`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from trustbits.errors import TrustbitsError
from trustbits.search.spec import StudySpec, diff_fingerprint_data

log = logging.getLogger(__name__)
# Heartbeats and their retry callback are marked experimental, and ensemble trials (milliseconds
# long, never heartbeating) use ask/tell on a heartbeat storage: both warnings are expected here.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=r"trustbits\.search\..*")
warnings.filterwarnings("ignore", message="Argument ``heartbeat_interval`` is an experimental feature")
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")

SPEC_ATTR = "trustbits:spec"
FINGERPRINT_ATTR = "trustbits:spec_fingerprint"
WORKER_ATTR = "trustbits:worker"
HEARTBEAT_INTERVAL_S = 20
MAX_RETRY = 2
GRACE_PERIOD_S = 60


@dataclass(frozen=True)
class StorageLocation:
    """A resolved study location.

    Attributes:
        kind: "sqlite", "journal" or "rdb" (any other SQLAlchemy URL, e.g. PostgreSQL).
        url: the Optuna storage URL, or the journal file path.
        records_url: SQLAlchemy URL of the per-example records table.
    """

    kind: str
    url: str
    records_url: str

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.removeprefix("sqlite:///")) if self.kind == "sqlite" else None

    def describe(self) -> str:
        return self.url if self.kind != "rdb" else self.url.split("@")[-1]


def _default_paths(spec: StudySpec) -> tuple[Path, Path]:
    folder = spec.path.parent if spec.path else Path.cwd()
    return folder / f"{spec.name}.db", folder / f"{spec.name}.journal"


def locate(spec: StudySpec, storage: str | None = None, *, workers: int = 1) -> StorageLocation:
    """Where `spec`'s study lives (or will live), given an optional `--storage` override."""
    db, journal = _default_paths(spec)
    url = storage or spec.study.storage
    if url is None:
        if workers > 1 or (journal.exists() and not db.exists()):
            url = "journal"
        else:
            url = f"sqlite:///{db}"
    if url == "journal" or url.startswith("journal://"):
        # journal:///abs/path.journal (three slashes, like sqlite:///) or journal://rel/path.
        path = journal if url == "journal" else Path(url.removeprefix("journal://"))
        return StorageLocation("journal", str(path), f"sqlite:///{path.with_suffix('.records.db')}")
    if url.startswith("sqlite:///"):
        if workers > 1:
            raise TrustbitsError(
                "SQLite is not safe for parallel workers",
                "run with --workers 1, or start the study with --workers (it then lives in a journal file), or use --storage postgresql://...",
            )
        return StorageLocation("sqlite", url, url)
    if "://" in url:
        return StorageLocation("rdb", url, url)
    raise TrustbitsError(f"cannot read storage '{url}'", "use sqlite:///FILE.db, journal, journal:///FILE.journal or postgresql://USER@HOST/DB")


def make_storage(loc: StorageLocation, *, heartbeat: bool = True):
    """The Optuna storage for a location (RDB storages with heartbeats and retries)."""
    if loc.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        Path(loc.url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(loc.url))
    kwargs = {}
    if loc.kind == "sqlite":
        loc.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if heartbeat:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        kwargs.update(
            heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=GRACE_PERIOD_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
        )
    try:
        return optuna.storages.RDBStorage(loc.url, **kwargs)
    except Exception as e:  # SQLAlchemy raises driver-specific errors; all mean "cannot open"
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        if "file is not a database" in reason or "malformed" in reason:
            raise TrustbitsError(
                f"study file '{loc.describe()}' is not a readable SQLite database ({reason})",
                "restore it from a backup, or move it away to start the study afresh",
            ) from e
        raise TrustbitsError(f"cannot open study storage '{loc.describe()}' ({reason})", "check the URL, that the server is running, and your credentials") from e


class StudyLock:
    """An exclusive lock on a SQLite study: one search process at a time (SQLite is not safe
    for parallel Optuna writers). The OS releases it when the process dies, even by SIGKILL."""

    def __init__(self, path: Path):
        self.path = path.with_suffix(path.suffix + ".lock")
        self._fd = None

    def __enter__(self):
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self._fd)
            raise TrustbitsError(
                f"another trustbits process is already searching '{self.path.with_suffix('')}'",
                "wait for it to finish, or use --workers N to run several workers on a journal study",
            ) from e
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def create_or_check_study(spec: StudySpec, storage, *, sampler=None) -> tuple[optuna.Study, bool]:
    """Open the study for `spec`, creating it if needed; returns (study, created).

    Raises:
        TrustbitsError: the stored study was made from a spec whose results-relevant parts
            differ (names the changed keys and suggests --fork).
    """

    name = spec.name
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        created = False
    except KeyError:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, directions=spec.directions, load_if_exists=True)
        created = not study.user_attrs.get(FINGERPRINT_ATTR)
        if created:
            study.set_user_attr(FINGERPRINT_ATTR, spec.fingerprint())
            study.set_user_attr(SPEC_ATTR, spec.to_json())
            return study, True
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None:
        raise TrustbitsError(f"study '{name}' exists in this storage but was not made by trustbits", "use another study name (study.name) or storage")
    if stored != spec.fingerprint():
        old = dict(study.user_attrs.get(SPEC_ATTR) or {})
        old.pop("budget", None)
        old.get("study", {}).pop("storage", None)
        changed = diff_fingerprint_data(old, spec.result_fingerprint_data()) or ["(unknown keys)"]
        raise TrustbitsError(
            f"study '{name}' was made from another spec: changed {', '.join(changed)}",
            "restore the spec, or start a new study that reuses the layer cache with --fork NEW_NAME",
        )
    if [d.name.lower() for d in study.directions] != spec.directions:
        raise TrustbitsError(f"study '{name}' has directions {study.directions}, the spec asks for {spec.directions}", "use --fork NEW_NAME")
    return study, created


@contextlib.contextmanager
def seeding_lock(loc: StorageLocation, study_name: str):
    """Serializes seeding between machines that start one study at the same moment.

    SQLite studies hold `StudyLock` and journal workers are seeded by their parent before they
    start, so only shared databases need this: PostgreSQL's advisory lock (released by the
    server if the holder dies)."""
    if loc.kind != "rdb" or not loc.url.startswith("postgresql"):
        yield
        return
    import sqlalchemy as sa

    key = int.from_bytes(hashlib.blake2b(f"trustbits-seed:{study_name}".encode(), digest_size=8).digest(), "big", signed=True)
    engine = sa.create_engine(loc.url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    engine.dispose()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_workers_trials(study: optuna.Study, *, all_running: bool = False) -> list[int]:
    """Fail RUNNING trials whose worker process is dead (same host, PID gone), or every
    RUNNING trial when `all_running` (we hold the study's exclusive lock). Single trials
    with parameters are retried: their parameters are enqueued again. Returns failed numbers."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = []
    retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.system_attrs.get(WORKER_ATTR, "")
        owner_host, _, pid = owner.partition(":")
        dead = all_running or (owner_host == host and pid.isdigit() and not _pid_alive(int(pid)))
        if not dead:
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "fail_reason", "its worker died (killed or crashed) before finishing it")
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process finished or failed it meanwhile
        failed.append(t.number)
        if t.params:
            retry(study, study._storage.get_trial(t._trial_id))
    if failed:
        log.warning("failed %d trial(s) left running by a dead worker: %s (their parameters are retried)", len(failed), failed)
    return failed
