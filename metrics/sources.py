"""Reading a setting's rows from its data file, with Hugging Face `datasets`.

The shipped data lives in ``trustbits/metrics/data/`` (see its README for provenance and
licenses); a task may point at any other file (absolute path, or relative to ``data_dir``).
Formats, by file name: ``.csv``, ``.jsonl``/``.jsonl.gz`` (one record per line), ``.parquet``,
and ``.json`` with a ``/``-separated ``field`` path to a list of records inside the document
(``dev/shake_w`` in OOD's style.json), which `datasets`' own json builder cannot descend into.

Every row gets ``_index``: its position in the file (or list) before any filter, which is the
default example id and is stable across models and runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from trustbits.errors import TrustbitsError
from trustbits.metrics.spec import DataRef

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).parent / "data"
_BUILDERS = {".csv": "csv", ".jsonl": "json", ".parquet": "parquet"}


def resolve_path(path: str, data_dir: str | Path | None) -> Path:
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    return Path(data_dir or DATA_DIR) / candidate


class TableLoader:
    """Loads data files once per suite build (OOD's style.json feeds 38 settings)."""

    def __init__(self, data_dir: str | Path | None = None):
        self.data_dir = data_dir
        self._documents: dict[Path, object] = {}
        self._tables: dict[tuple, list[dict]] = {}

    def rows(self, ref: DataRef, where: str) -> list[dict]:
        """The rows of `ref` after its filters, each with ``_index``.

        Raises:
            TrustbitsError: the file is missing or malformed, the field path or a filter
                column does not exist.
        """
        path = resolve_path(ref.path, self.data_dir)
        table = self._table(path, ref.field, where)
        rows = table
        for column, value in ref.where:
            if rows and column not in rows[0]:
                raise TrustbitsError(
                    f"{where}: filter column '{column}' is not in {path.name}",
                    f"use one of its columns: {', '.join(c for c in rows[0] if c != '_index')}",
                )
            rows = [r for r in rows if r[column] == value]
        if ref.head is not None:
            rows = rows[: ref.head]
        return rows

    def _table(self, path: Path, field: str | None, where: str) -> list[dict]:
        key = (path, field)
        if key not in self._tables:
            records = self._load(path, field, where)
            self._tables[key] = [{**r, "_index": i} for i, r in enumerate(records)]
        return self._tables[key]

    def _load(self, path: Path, field: str | None, where: str) -> list[dict]:
        if not path.is_file():
            raise TrustbitsError(f"{where}: data file {path} does not exist", "fix `data.path`, or pass data_dir= the folder that holds it")
        suffixes = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
        suffix = suffixes.removesuffix(".gz")
        if suffix == ".json":
            return _dataset_from_list(self._json_field(path, field, where), path, where)
        if suffix not in _BUILDERS:
            raise TrustbitsError(f"{where}: cannot read {path.name}", "use a .csv, .json, .jsonl, .jsonl.gz or .parquet file")
        if field:
            raise TrustbitsError(f"{where}: `field` only applies to .json files, not {path.name}", "remove `field`")
        return _load_with_builder(_BUILDERS[suffix], path, where)

    def _json_field(self, path: Path, field: str | None, where: str) -> list:
        if path not in self._documents:
            try:
                self._documents[path] = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise TrustbitsError(f"{where}: {path} is not valid JSON ({e})", "fix or replace the file") from None
        node = self._documents[path]
        for part in (field or "").split("/") if field else []:
            if not isinstance(node, dict) or part not in node:
                keys = ", ".join(list(node)[:20]) if isinstance(node, dict) else "(not an object)"
                raise TrustbitsError(f"{where}: {path.name} has no field '{field}' ('{part}' missing)", f"choose among: {keys}")
            node = node[part]
        if not isinstance(node, list):
            raise TrustbitsError(f"{where}: field '{field}' of {path.name} is not a list of records", "point `field` at a list")
        return node


def _dataset_from_list(records: list, path: Path, where: str) -> list[dict]:
    import datasets

    if not all(isinstance(r, dict) for r in records):
        raise TrustbitsError(f"{where}: {path.name} holds something other than records (JSON objects)", "fix the file")
    try:
        return datasets.Dataset.from_list(records).to_list()
    except Exception as e:  # pyarrow raises several types for inconsistent records
        raise TrustbitsError(f"{where}: {path.name} has records of inconsistent types ({e})", "fix the file") from None


def _load_with_builder(builder: str, path: Path, where: str) -> list[dict]:
    import datasets

    from trustbits.paths import cache_dir

    # `datasets` shows a progress bar per load; trustbits shows its own progress.
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        table = datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=str(cache_dir("datasets")))
    except Exception as e:  # the builders raise pyarrow, pandas and json errors alike
        raise TrustbitsError(f"{where}: {path} could not be read as {builder} ({type(e).__name__}: {e})", "fix or replace the file") from None
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return table.to_list()
