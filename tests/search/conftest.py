"""Fixtures for real searches on the tiny model: a model directory and spec files."""

from __future__ import annotations

import json

import pytest

FAST_SPEC = """
[model]
name = "{model}"

[eval]
perspectives = ["adv", "fairness"]
limit = 2
first_fraction = 0.5

[search]
objectives = {objectives}
bits = [3, 4, 8, 16]
granularity = "layer"

[seeds]
sensitivity = 1

[sampler]
population = 4
seed = 0

[ensembles]
per_trial = 2
uniform_sets = true
uniform_votes = ["hard", "soft"]

[budget]
trials = {trials}
"""


def write_spec(folder, model_dir, trials: int = 6, name: str = "tiny", extra: str = "", objectives=("trust", "memory")):
    path = folder / f"{name}.toml"
    path.write_text(FAST_SPEC.format(model=model_dir, trials=trials, objectives=json.dumps(list(objectives))) + extra)
    return path


@pytest.fixture(scope="module")
def searched_study(tmp_path_factory, tiny_model_dir, link_kernel_timings):
    """One real search (6 trials), run once per test module; tests that change it copy it
    first (`copy_study`). Returns the spec path."""
    from trustbits.search import cli

    folder = tmp_path_factory.mktemp("searched")
    link_kernel_timings(folder / "cache")
    spec = write_spec(folder, tiny_model_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTBITS_CACHE", str(folder / "cache"))
        assert cli.main(["search", str(spec), "--no-progress", "--no-front"]) == 0
    return spec


@pytest.fixture
def copy_study(searched_study, tmp_path, monkeypatch):
    """A private copy of the searched study (spec, database, sampler state, layer cache)."""
    import shutil

    for f in searched_study.parent.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    shutil.copytree(searched_study.parent / "cache", tmp_path / "cache", symlinks=True)
    monkeypatch.setenv("TRUSTBITS_CACHE", str(tmp_path / "cache"))
    return tmp_path / searched_study.name


@pytest.fixture
def make_spec(tmp_path, tiny_model_dir):
    """Write a fast search spec on the tiny model; returns its path."""

    def make(trials: int = 6, name: str = "tiny", extra: str = "", objectives=("trust", "memory")) -> "Path":  # noqa: F821
        return write_spec(tmp_path, tiny_model_dir, trials, name, extra, objectives)

    return make
