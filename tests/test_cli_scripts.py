"""The maintenance scripts in scripts/ that run without a long job."""

import os
import subprocess
import sys
from pathlib import Path

from mlsbench_env.spec import builtin_task_ids

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def count(package: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPTS / "count_core_lines.py", "--package", str(package), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_count_core_lines_counts_the_core_and_enforces_the_limit(tmp_path):
    files = {
        "spec/__init__.py": 3,
        "spec/registration.py": 2,
        "sandbox/__init__.py": 4,
        "sandbox/visibility.py": 1,
        "sandbox/docker.py": 50,  # not core
        "tools/__init__.py": 5,
        "tools/jobs.py": 70,  # not core
        "agent/loop.py": 90,  # not core
        "episode.py": 6,
    }
    for rel, n in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n" * n)
    r = count(tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].split()[0] == "21"
    assert "not found: workspace" in r.stdout
    r = count(tmp_path, "--max", "20")
    assert r.returncode == 1 and "over the limit by 1 lines" in r.stderr


def test_calibrate_all_calibrates_every_task_and_reports_failures(tmp_path):
    fake = tmp_path / "mlsbench"  # the real `list --json`, a recorded calibrate that fails once
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'if [[ $1 == list ]]; then exec {sys.executable} -m mlsbench_env.cli "$@"; fi\n'
        f'echo "$*" >> {tmp_path / "calls"}\n'
        "[[ $2 != opt-evolution-strategy ]]\n"
    )
    fake.chmod(0o755)
    r = subprocess.run(
        ["bash", SCRIPTS / "calibrate_all.sh", "--workers", "2"],
        env={**os.environ, "MLSBENCH": str(fake)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "calibration failed: opt-evolution-strategy" in r.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [f"calibrate {t} --workers 2" for t in builtin_task_ids()]
