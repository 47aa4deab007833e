"""Per-example records of each trial, stored beside the study.

Ensembles vote on these records instead of running models, and reports compare trials on
them, so they are written before a trial is told COMPLETE (a kill in between leaves a RUNNING
trial that is failed and retried; its orphan records are never read, so nothing counts
twice). One row per (study, trial, stage), the records as zlib-compressed JSON lines: the
trial table stays small, so samplers (which read every trial's attributes) stay fast.

The table lives in the study's own database when that is SQLite or PostgreSQL (through
SQLAlchemy, which Optuna already uses), and in ``NAME.records.db`` beside a journal study.
"""

from __future__ import annotations

import json
import zlib

import sqlalchemy as sa

from trustbits.errors import TrustbitsError

_META = sa.MetaData()
RECORDS = sa.Table(
    "trustbits_records",
    _META,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True),
    sa.Column("stage", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)


def _encode(records: list[dict]) -> bytes:
    text = "\n".join(json.dumps(r, separators=(",", ":"), sort_keys=True) for r in records)
    return zlib.compress(text.encode(), 6)


def _decode(payload: bytes) -> list[dict]:
    text = zlib.decompress(payload).decode()
    return [json.loads(line) for line in text.splitlines() if line]


class RecordStore:
    """Records of one study, keyed by trial number and stage (0 = first slice, 1 = rest)."""

    def __init__(self, url: str, study_name: str):
        self.study_name = study_name
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        try:
            self.engine = sa.create_engine(url, **kwargs)
            _META.create_all(self.engine, checkfirst=True)
        except sa.exc.SQLAlchemyError as e:
            raise TrustbitsError(f"cannot open the records table at '{url.split('@')[-1]}' ({str(e).splitlines()[0][:160]})", "check the storage") from e

    def put(self, trial: int, stage: int, records: list[dict]) -> None:
        row = {"study": self.study_name, "trial": trial, "stage": stage, "n": len(records), "payload": _encode(records)}
        with self.engine.begin() as conn:
            conn.execute(sa.delete(RECORDS).where(RECORDS.c.study == self.study_name, RECORDS.c.trial == trial, RECORDS.c.stage == stage))
            conn.execute(sa.insert(RECORDS).values(**row))

    def get(self, trial: int) -> list[dict]:
        """All stages of a trial's records, in stage order ([] if none)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(RECORDS.c.payload).where(RECORDS.c.study == self.study_name, RECORDS.c.trial == trial).order_by(RECORDS.c.stage)).all()
        return [r for (payload,) in rows for r in _decode(payload)]

    def get_many(self, trials: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {t: [] for t in trials}
        if not trials:
            return out
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(RECORDS.c.trial, RECORDS.c.payload).where(RECORDS.c.study == self.study_name, RECORDS.c.trial.in_(trials)).order_by(RECORDS.c.trial, RECORDS.c.stage)).all()
        for trial, payload in rows:
            out[trial].extend(_decode(payload))
        return out

    def count(self, trial: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(RECORDS.c.n), 0)).where(RECORDS.c.study == self.study_name, RECORDS.c.trial == trial)).scalar())

    def close(self) -> None:
        self.engine.dispose()
