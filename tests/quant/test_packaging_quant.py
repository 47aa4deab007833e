"""trustbits.quant's subpackages and shipped text are part of the distribution."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_quant_subpackage_is_listed_in_pyproject():
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    subpackages = {"trustbits.quant." + p.parent.relative_to(ROOT / "quant").as_posix().replace("/", ".") for p in (ROOT / "quant").rglob("__init__.py") if p.parent != ROOT / "quant"}
    assert subpackages and subpackages <= packages, subpackages - packages


def test_shipped_texts_are_readable_and_disjoint():
    from trustbits.quant.calibration import shipped_text

    calib, heldout = shipped_text("calibration.txt"), shipped_text("heldout.txt")
    assert len(calib.split()) > 1500 and len(heldout.split()) > 500
    assert not {s for s in calib.split(". ") if len(s) > 40} & {s for s in heldout.split(". ") if len(s) > 40}


def test_importing_trustbits_quant_does_not_import_torch():
    import subprocess

    code = "import sys, trustbits.quant as q; q.__all__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_every_lazy_export_resolves_to_what_it_names():
    import types

    import trustbits.quant as q
    from trustbits.quant import artifact, assemble, cache, footprint, methods, quality  # noqa: F401  (submodules set package attributes)

    for name in q.__all__:
        assert not isinstance(getattr(q, name), types.ModuleType), name
