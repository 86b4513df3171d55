"""The `mlsbench` command line, run as a user would (real tasks, real sandbox)."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mlsbench_env.cli import app
from mlsbench_env.spec import builtin_task_ids, load_task

runner = CliRunner()


def test_list_shows_every_task_with_hidden_counts():
    r = runner.invoke(app, ["list"], terminal_width=250)
    assert r.exit_code == 0, r.output
    for tid in builtin_task_ids():
        assert tid in r.output


def test_show_prints_the_prompt_without_hidden_settings():
    r = runner.invoke(app, ["show", "opt-evolution-strategy"])
    assert r.exit_code == 0 and "## Question" in r.output
    task = load_task("opt-evolution-strategy")
    for s in task.spec.settings:
        assert (s.label in r.output) != s.hidden


def test_unknown_task_and_agent_are_clear_errors():
    r = runner.invoke(app, ["show", "opt-evolution"])
    assert r.exit_code == 2 and "did you mean" in r.output
    r = runner.invoke(app, ["run", "--task", "opt-evolution-strategy", "--agent", "gpt"])
    assert r.exit_code == 2 and "baseline:<name>" in r.output


@pytest.mark.parametrize("task_id", builtin_task_ids())
def test_validate_static_checks_pass(task_id):
    r = runner.invoke(app, ["validate", task_id, "--no-run"])
    assert r.exit_code == 0, r.output


def test_play_reads_short_form_and_json(tmp_path):
    script = 'view path=.\n{"tool": "undo", "args": {}}\nbogus key\n'
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlsbench_env.cli",
            "play",
            "--task",
            "opt-evolution-strategy",
            "--runs-dir",
            str(tmp_path),
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "(directory)" in r.stdout and "nothing to undo" in r.stdout
    assert "expected key=value" in r.stdout and "Trajectory:" in r.stdout
