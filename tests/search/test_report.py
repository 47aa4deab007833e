"""`trustbits report` on a real (tiny) study: every section, the plots, numbers that match the
stored trials, the certification run, and the refusal of a study with nothing to report."""

from __future__ import annotations

import re

import pytest

from trustbits.search import cli
from trustbits.search.study_access import open_study


@pytest.fixture
def searched(searched_study, monkeypatch):
    monkeypatch.setenv("TRUSTBITS_CACHE", str(searched_study.parent / "cache"))
    return searched_study


def _row(markdown: str, section: str, name: str) -> list[str]:
    """The cells of the first table row of `section` whose first cell starts with `name`."""
    body = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].startswith(name):
            return cells
    raise AssertionError(f"no row {name!r} in section {section!r}")


def test_report_sections_plots_and_numbers_match_the_study(searched, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli.main(["report", str(searched), "-o", str(out), "--max-certify", "1"]) == 0
    md = (out / "README.md").read_text()
    for section in ("Configurations against the float model", "Sub-scores", "Precision ensembles", "The front against the uniform grid", "Certification of the front (generate mode)"):
        assert f"## {section}" in md
    assert (out / "deltas.png").stat().st_size > 5_000 and (out / "front.png").stat().st_size > 5_000
    assert "Regenerate: `trustbits search " in md

    study = open_study(str(searched), check_spec=False).study
    by_label = {t.user_attrs.get("label"): t for t in study.trials if "flat" in t.user_attrs}
    header = _row(md, "Configurations against the float model", "configuration")
    trust_col = next(i for i, h in enumerate(header) if h.startswith("trust"))
    for label in ("float", "uniform-hqq-4"):
        t = by_label[label]
        cells = _row(md, "Configurations against the float model", f"#{t.number} {label}")
        shown = float(re.match(r"[\d.]+", cells[trust_col]).group())
        assert shown == pytest.approx(t.user_attrs["flat"]["trust"], abs=0.051)
        assert float(cells[2]) == pytest.approx(t.user_attrs["memory_bytes"] / 1e6, abs=0.051)
    # No latency objective in this study: no empty latency column.
    assert "ms/token" not in header

    # The float model is certified beside the front, with an agreement rate in [0, 100] %.
    f = by_label["float"]
    cert = _row(md, "Certification of the front (generate mode)", f"#{f.number} float")
    agree = float(cert[3].rstrip("%"))
    assert 0.0 <= agree <= 100.0
    assert float(cert[1]) == pytest.approx(f.user_attrs["flat"]["trust"], abs=0.051)


def test_report_of_a_study_never_run_is_one_line_and_exit_2(make_spec, tmp_path, capsys):
    spec = make_spec(trials=2, name="never_run")
    assert cli.main(["report", str(spec), "-o", str(tmp_path / "r"), "--no-certify"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trustbits search" in err
    assert not (tmp_path / "r" / "README.md").exists()


def test_delta_plot_accepts_an_interval_that_misses_its_point(tmp_path):
    # Seen on the paper-search study: fairness -5.6 with a bootstrap interval [-4.9, -3.1].
    from trustbits.search.report_data import Delta
    from trustbits.search.report_plots import deltas_vs_float

    rows = [("#1 a", {"trust": Delta(-5.6, -4.9, -3.1)}), ("#2 b", {"trust": Delta(1.0, -1.0, 2.0)})]
    path = deltas_vs_float(rows, ["trust"], tmp_path / "d.png")
    assert path.stat().st_size > 2_000
