"""The layer contract (pyproject.toml, ``[tool.importlinter]``): spec < workspace < sandbox <
tools < evaluation, scoring < env < episode < agent < scale, analysis, integrations < cli;
nothing imports upward, and the task kit imports nothing of the package."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project)}
    lint = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]
    return subprocess.run(lint, cwd=project, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers():
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "mlsbench_env", tmp_path / "mlsbench_env")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    workspace = tmp_path / "mlsbench_env" / "workspace" / "__init__.py"
    workspace.write_text(workspace.read_text() + "\nfrom mlsbench_env.env import ResearchEnv\n")
    out = lint_imports(tmp_path)
    assert out.returncode == 1
    assert "mlsbench_env.workspace -> mlsbench_env.env" in out.stdout, out.stdout
