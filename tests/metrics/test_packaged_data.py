"""The data ships inside the wheel: an installed copy builds the suite from its own files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installed_wheel_builds_the_suite_from_its_own_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = tmp_path.glob("trustbits-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True, capture_output=True)
    code = (
        "import trustbits.metrics.sources as s; from trustbits.metrics import build_suite; "
        "suite = build_suite(['adv', 'ood', 'ethics', 'fairness'], limit=1, settings='all'); "
        "print(s.DATA_DIR); print(len(suite.settings))"
    )
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRUSTBITS_CACHE": str(tmp_path / "cache")}, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    data_dir, settings = out.stdout.split()
    assert data_dir.startswith(str(target))
    assert int(settings) == 6 + 56 + 12 + 8
