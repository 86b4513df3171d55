"""The package passes mypy (configured in pyproject.toml), every module of it: none is exempt."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_type_checks():
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_no_module_is_exempt_from_the_type_check():
    config = (ROOT / "pyproject.toml").read_text()
    assert "ignore_errors" not in config, "a module is exempt from mypy in pyproject.toml"
