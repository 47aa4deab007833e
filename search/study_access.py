"""Opening an existing study for reading (pareto, export, report), never creating one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from trustbits.errors import TrustbitsError
from trustbits.search import storage as storage_mod
from trustbits.search.spec import StudySpec, load_spec


@dataclass
class OpenStudy:
    spec: StudySpec
    study: optuna.Study
    location: storage_mod.StorageLocation


def open_study(spec_path: str, *, storage: str | None = None, check_spec: bool = True, study_name: str | None = None) -> OpenStudy:
    """The study of a spec, read-only in spirit (nothing is created).

    Raises:
        TrustbitsError: the spec is invalid, the study does not exist yet, its file is not a
            database, or it was made from another spec.
    """
    spec = load_spec(spec_path)
    if study_name:  # a study forked from this spec under another name
        spec = spec.with_name(study_name)
    loc = storage_mod.locate(spec, storage)
    if loc.kind == "sqlite" and not loc.sqlite_path.is_file():
        raise TrustbitsError(f"study '{spec.name}' has no results yet ({loc.sqlite_path} does not exist)", f"run `trustbits search {spec_path}` first")
    if loc.kind == "journal" and not Path(loc.url).is_file():
        raise TrustbitsError(f"study '{spec.name}' has no results yet ({loc.url} does not exist)", f"run `trustbits search {spec_path}` first")
    st = storage_mod.make_storage(loc, heartbeat=False)
    try:
        study = optuna.load_study(study_name=spec.name, storage=st)
    except KeyError as e:
        raise TrustbitsError(f"no study named '{spec.name}' in {loc.describe()}", f"run `trustbits search {spec_path}` first") from e
    if check_spec:
        stored = study.user_attrs.get(storage_mod.FINGERPRINT_ATTR)
        if stored and stored != spec.fingerprint():
            raise TrustbitsError(f"study '{spec.name}' in {loc.describe()} was made from another version of this spec", "restore the spec it was made from, or pass --no-spec-check to read it anyway")
    return OpenStudy(spec, study, loc)
