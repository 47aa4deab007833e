"""The distribution installs the four code folders as `trustbits.*` subpackages and never as
top-level modules (other distributions own `search`, `quant`, `metrics` and `kernels`)."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_TOP_LEVEL = {"search", "quant", "metrics", "kernels", "core", "tests", "bench"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        cwd=out,
    )
    (whl,) = out.glob("trustbits-*.whl")
    return whl


def test_wheel_has_only_the_trustbits_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"trustbits"}, top
    for sub in ("search", "quant", "metrics", "kernels"):
        assert f"trustbits/{sub}/__init__.py" in names
    assert "trustbits/errors.py" in names
    assert not FORBIDDEN_TOP_LEVEL & top


def test_wheel_installs_into_a_fresh_target(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True)
    installed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert "trustbits" in installed
    assert not FORBIDDEN_TOP_LEVEL & installed, installed - {"trustbits", "bin"}
    # The installed copy imports on its own (not the checkout).
    out = subprocess.run(
        [sys.executable, "-c", "import trustbits.search, trustbits.errors; print(trustbits.errors.__file__)"],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert out.stdout.strip().startswith(str(target))


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys, trustbits.search.cli as c; c.build_parser(); print('torch' in sys.modules)"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "False"
    cli = Path(sys.executable).with_name("trustbits")
    t0 = time.perf_counter()
    res = subprocess.run([str(cli), "--help"], capture_output=True, text=True, cwd="/")
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0 and "info" in res.stdout
    assert elapsed < 1.0, f"trustbits --help took {elapsed:.2f} s"


def test_checkout_does_not_shadow_huggingface_kernels():
    # `python -c` from the checkout root puts it on sys.path; importing trustbits first must
    # keep transformers' `import kernels` pointed at Hugging Face's package, not our folder.
    code = "import trustbits, transformers.activations, sys; print(sys.modules['kernels'].__file__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "site-packages" in out.stdout
