"""The evaluation matrix with the local executor: real episodes (baseline and scripted LLM agents,
real sandbox, grader and scoring) on small tasks, retries of a killed worker, resume after the
driver is killed, the CLI, the lite suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from typer.testing import CliRunner

from mlsbench_env.cli import app
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.scale.matrix import (
    AgentSpec,
    Cell,
    EvalConfig,
    Event,
    agent_spec,
    expand,
    load_suite,
    resolve_tasks,
    run_eval,
)
from mlsbench_env.scale.progress import MatrixProgress
from mlsbench_env.scale.store import ResultsStore
from mlsbench_env.spec import builtin_task_ids, load_task

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- small real tasks
def make_guess_task(root: Path, task_id: str = "guess", domain: str = "toy", sleep_s: float = 0):
    """A real task in miniature: guess x, metric |guess - x| (bound 0). The scaffold returns 0
    (0 points), baseline `good` 0.8 x (50 points), `return x` scores 100. ``sleep_s`` makes each
    setting run that long (to kill workers mid-run). Anchors are the known closed form."""
    d = Path(root) / task_id
    (d / "repo").mkdir(parents=True)
    (d / "hidden").mkdir()
    (d / "baselines" / "good").mkdir(parents=True)
    spec = {
        "id": task_id,
        "version": 0,
        "title": "Guess a number",
        "domain": domain,
        "question": "Return a number as close as you can to the input x.",
        "editable": [{"file": "guess.py", "lines": [5, 5]}],
        "settings": [
            {"label": "one", "command": "python run.py 1"},
            {"label": "two", "command": "python run.py 2"},
            {"label": "three", "command": "python run_hidden.py", "hidden": True},
        ],
        "seeds": {"dev": 0, "final": [0, 1]},
        "metrics": [{"name": "error", "direction": "lower", "bound": 0.0}],
        "baselines": [{"name": "good", "title": "Eighty percent"}],
        "reference_baseline": "good",
        "budgets": {"tests": 3, "compute_s": 300, "max_steps": 12, "command_timeout_s": 30},
    }
    (d / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (d / "repo" / "guess.py").write_text(
        '"""Return a number close to x (a toy task for tests)."""\n\n\ndef guess(x):\n'
        "    return 0.0\n"
    )
    (d / "repo" / "run.py").write_text(
        dedent(
            f"""\
            import json, os, sys, time
            from guess import guess
            time.sleep({sleep_s})
            x = float(sys.argv[1])
            with open(os.path.join(os.environ["MLSBENCH_OUT"], "answer.json"), "w") as f:
                json.dump({{"guess": float(guess(x))}}, f)
            """
        )
    )
    (d / "hidden" / "run_hidden.py").write_text(
        "import subprocess, sys\nsys.exit(subprocess.call([sys.executable, 'run.py', '3']))\n"
    )
    (d / "baselines" / "good" / "guess.py").write_text("    return 0.8 * x\n")
    (d / "grader.py").write_text(
        dedent(
            """\
            import json
            TARGET = {"one": 1.0, "two": 2.0, "three": 3.0}
            def grade(setting, seed, out_dir, task_dir):
                answer = json.loads((out_dir / "answer.json").read_text())
                return {"error": abs(answer["guess"] - TARGET[setting])}
            """
        )
    )
    anchors = {
        label: {"error": {"floor": x, "reference": round(0.2 * x, 12)}}
        for label, x in (("one", 1.0), ("two", 2.0), ("three", 3.0))
    }
    (d / "anchors.json").write_text(json.dumps({"task": task_id, "anchors": anchors}))
    return load_task(d)


PERFECT = [
    {"tool": "view", "args": {"path": "guess.py"}},
    {
        "tool": "edit",
        "args": {
            "path": "guess.py",
            "action": "replace",
            "start": 5,
            "end": 5,
            "text": "    return x",
        },
    },
    {"tool": "test", "args": {}},
    {"tool": "submit", "args": {}},
]


def scripted_agent(path: Path, name: str = "scripted-perfect", script=PERFECT) -> str:
    """An agent YAML whose model replies with ``script`` (no API)."""
    path.write_text(
        yaml.safe_dump({"name": name, "model": {"provider": "scripted", "script": script}})
    )
    return str(path)


@pytest.fixture
def guess(tmp_path):
    return make_guess_task(tmp_path / "tasks")


def config(tmp_path, tasks, agents, **kw) -> EvalConfig:
    kw.setdefault("env", {"final_seeds": [0]})
    return EvalConfig(
        agents=agents,
        tasks=[str(t.root) if hasattr(t, "root") else t for t in tasks],
        store=str(tmp_path / "results.sqlite"),
        runs_dir=str(tmp_path / "runs"),
        **kw,
    )


# --------------------------------------------------------------------------- unit
def test_agent_specs_parse_and_hash_by_behaviour(tmp_path):
    a = agent_spec("baseline:strongest")
    assert (a.kind, a.label, a.baseline) == ("baseline", "baseline:strongest", "strongest")
    y = agent_spec(scripted_agent(tmp_path / "a.yaml"))
    assert y.kind == "llm" and y.label == "scripted-perfect" and y.config["model"]["script"]
    changed = agent_spec(str(tmp_path / "a.yaml"), ["model.temperature=0.5"])
    assert changed.hash != y.hash and changed.label == y.label
    with pytest.raises(MLSBenchError, match="baseline:<name>"):
        agent_spec("gpt-5")


def test_cells_are_keyed_by_task_agent_seed_and_options(tmp_path, guess):
    cells, _ = expand(
        config(tmp_path, [guess], ["baseline:good", "baseline:default"], seeds=(0, 1))
    )
    assert len(cells) == 4 and len({c.key for c in cells}) == 4
    # options equal to the defaults do not make another cell; the same agent twice runs once
    same, _ = expand(
        config(
            tmp_path,
            [guess, guess],
            ["baseline:good", "baseline:good", "baseline:default"],
            seeds=(0, 1),
            env={"final_seeds": [0], "sandbox": "local"},
        )
    )
    assert [c.key for c in same] == [c.key for c in cells]
    other, _ = expand(config(tmp_path, [guess], ["baseline:good"], env={"test_budget": 1}))
    assert other[0].key not in {c.key for c in cells}


def test_names_are_checked_before_anything_runs(tmp_path, guess):
    with pytest.raises(MLSBenchError, match="did you mean 'good'"):
        expand(config(tmp_path, [guess], ["baseline:goood"]))
    with pytest.raises(ValueError, match="final_seed"):
        expand(config(tmp_path, [guess], ["baseline:good"], env={"final_seed": [0]}))
    with pytest.raises(MLSBenchError, match="unknown task"):
        expand(config(tmp_path, ["no-such-task"], ["baseline:good"]))


def test_lite_suite_covers_every_domain_of_the_shipped_tasks():
    lite = load_suite("lite")
    assert len(lite) == len(set(lite))
    shipped = {p.name for p in (ROOT / "tasks").iterdir() if p.is_dir()}
    assert set(lite) <= shipped, f"lite names tasks that do not exist: {set(lite) - shipped}"
    domains = {}
    for tid in builtin_task_ids():
        try:
            domains[tid] = load_task(tid).spec.domain
        except MLSBenchError:
            continue  # a task still being written
    covered = {domains[t] for t in lite if t in domains}
    assert set(domains.values()) <= covered, "add a task of each new domain to suites/lite.yaml"
    assert resolve_tasks(["lite"])[0] == lite


def test_progress_counts_and_eta():
    p = MatrixProgress(total=4, workers=2)
    assert p.eta_s is None and "0/4 done" in p.line()


def test_progress_renders_and_counts_a_finished_cell():
    from rich.console import Console

    agent = AgentSpec("baseline:default", "baseline", "baseline:default", baseline="default")
    a, b, c = (Cell("guess", "guess", 1, "toy", agent, seed) for seed in range(3))
    p = MatrixProgress(total=3, workers=2)
    p.update(Event("skip", a))
    p.update(Event("start", b))
    p.update(Event("start", c))
    line = p.update(Event("done", b, row={"score": 87.5, "cost_usd": 0.25}))
    assert line == "done    guess x baseline:default x seed 1: score 87.5"
    assert "2/3 done (1 from before), 1 running, 0 failed" in p.line() and "$0.25" in p.line()
    assert p.eta_s is not None and p.eta_s >= 0  # one cell left at the rate of the first
    console = Console(record=True, width=160, color_system=None)
    console.print(p)
    shown = console.export_text()
    assert "score 87.5" in shown and "2/3" in shown and "1 running, 0 failed" in shown
    p.update(Event("failed", c, error="RuntimeError: boom\ntraceback"))
    assert "FAILED  guess x baseline:default x seed 2: RuntimeError: boom" in p.last
    assert "1 failed" in p.line() and p.eta_s == 0.0  # every cell settled


# --------------------------------------------------------------------------- real matrices
def test_local_matrix_runs_records_and_resumes(tmp_path, guess):
    agents = [scripted_agent(tmp_path / "perfect.yaml"), "baseline:strongest"]
    cfg = config(tmp_path, [guess], agents, seeds=(0, 1), workers=2)
    events = []
    summary = run_eval(cfg, on_event=events.append)
    assert (summary.cells, summary.done, summary.failed) == (4, 4, 0)
    store = ResultsStore(cfg.store)
    rows = store.episodes()
    assert len(rows) == 4 and len({r["cell_key"] for r in rows}) == 4
    by_agent = {(r["agent"], r["seed"]): r for r in rows}
    perfect = by_agent[("scripted-perfect", 0)]
    assert perfect["score"] == pytest.approx(100.0) and perfect["exit_status"] == "submitted"
    assert perfect["model_calls"] == 4 and perfect["steps"] == 4 and perfect["tests_used"] == 1
    assert perfect["score_curve"] == [[3, pytest.approx(100.0)]]
    strongest = by_agent[("baseline:strongest", 1)]
    assert strongest["score"] == pytest.approx(50.0) and strongest["vanilla_score"] == 50.0
    for r in rows:
        assert r["task_hash"] == guess.content_hash() and r["anchors_hash"]
        assert r["compute_s"] > 0 and r["wall_s"] > 0 and r["versions"]["mlsbench_env"]
        assert Path(r["trajectory"], "trajectory.jsonl").is_file()
        assert r["executor"] == "local" and r["attempts"] == 1
    kinds = [e.kind for e in events if e.kind != "tick"]
    assert kinds.count("start") == 4 and kinds.count("done") == 4
    # the rerun skips every finished cell
    again = run_eval(cfg)
    assert (again.skipped, again.done) == (4, 0)
    assert len(store.attempts()) == 4


@pytest.mark.parametrize("score_unsubmitted", [True, False])
def test_unsubmitted_episodes_are_scored_and_reported(tmp_path, guess, score_unsubmitted):
    """An agent that edits to `return x` and runs out of replies: its cell gets the final
    evaluation (100 points, exit status kept) unless the eval says not to (no score: 0)."""
    from mlsbench_env.analysis.report import build_report

    agent = scripted_agent(tmp_path / "stops.yaml", "stops", PERFECT[:2])
    cfg = config(tmp_path, [guess], [agent], score_unsubmitted=score_unsubmitted)
    assert run_eval(cfg).done == 1
    (row,) = ResultsStore(cfg.store).episodes()
    assert row["exit_status"] == "model_exhausted" and row["steps"] == 2
    assert row["score"] == (pytest.approx(100.0) if score_unsubmitted else None)
    end = [
        json.loads(line)
        for line in Path(row["trajectory"], "trajectory.jsonl").read_text().splitlines()
        if '"type": "end"' in line
    ]
    assert end[0]["status"] == ("not_submitted" if score_unsubmitted else "abandoned")
    (lb,) = build_report([row]).leaderboard
    assert lb["not_submitted"] == 1.0


def test_a_killed_worker_is_retried_and_nothing_is_doubled(tmp_path):
    task = make_guess_task(tmp_path / "tasks", sleep_s=1.5)
    cfg = config(tmp_path, [task], ["baseline:strongest", "baseline:default"], workers=2)
    result = {}
    t = threading.Thread(target=lambda: result.update(s=run_eval(cfg)))
    t.start()
    pid = _wait_for_running_worker(tmp_path / "runs")
    os.kill(pid, signal.SIGKILL)
    t.join(300)
    s = result["s"]
    assert (s.done, s.failed, s.retried) == (2, 0, 1)
    store = ResultsStore(cfg.store)
    rows = store.episodes()
    assert len(rows) == 2
    assert sorted(r["score"] for r in rows) == [0.0, pytest.approx(50.0)]
    attempts = store.attempts()
    failed = [a for a in attempts if a["status"] == "failed"]
    assert len(failed) == 1 and "killed by signal 9" in failed[0]["error"]
    assert failed[0]["pid"] == pid
    assert len([a for a in attempts if a["status"] == "ok"]) == 2
    assert [r["attempts"] for r in rows if r["cell_key"] == failed[0]["cell_key"]] == [2]


def test_a_cell_that_keeps_failing_is_recorded_failed_with_its_error(tmp_path, guess):
    # a replay agent whose trajectory does not exist: every try fails in the worker
    broken = tmp_path / "broken.yaml"
    model = {"provider": "replay", "trajectory": str(tmp_path / "missing.jsonl")}
    broken.write_text(yaml.safe_dump({"name": "broken", "model": model}))
    cfg = config(tmp_path, [guess], ["baseline:good", str(broken)], retries=1)
    s = run_eval(cfg)
    assert (s.done, s.failed, s.retried) == (1, 1, 1)
    store = ResultsStore(cfg.store)
    rows = {r["agent"]: r for r in store.episodes(status=None)}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["attempts"] == 2
    assert "missing.jsonl" in rows["broken"]["error"]
    assert rows["baseline:good"]["status"] == "ok"
    assert [a["status"] for a in store.attempts(rows["broken"]["cell_key"])] == ["failed"] * 2
    # a rerun tries the failed cell again (and only it); --skip-failed would not
    assert run_eval(cfg).skipped == 1
    assert run_eval(cfg.model_copy(update={"retry_failed": False})).skipped == 2


def _wait_for_running_worker(runs: Path, timeout: float = 120) -> int:
    """The pid of a worker that has started its episode (its state file names a trajectory)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for f in runs.glob(".matrix/*/running/*"):
            if f.name.endswith(".tmp"):
                continue
            try:
                state = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if state.get("trajectory"):
                return state["pid"]
        time.sleep(0.1)
    raise AssertionError("no worker started in time")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.slow
def test_matrix_resume_after_the_driver_is_killed(tmp_path):
    """Kill `mlsbench eval` mid-run: its workers stop, and the rerun completes the matrix with
    nothing lost or doubled (cells finished before the kill are not run again)."""
    tasks = [make_guess_task(tmp_path / "tasks", f"guess-{d}", d, 1.0) for d in ("a", "b")]
    args = [
        sys.executable,
        "-m",
        "mlsbench_env.cli",
        "eval",
        "--agents",
        "baseline:strongest,baseline:default",
        "--tasks",
        ",".join(str(t.root) for t in tasks),
        "--seeds",
        "2",
        "--workers",
        "2",
        "--final-seeds",
        "0",
        "--store",
        str(tmp_path / "r.sqlite"),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    store = ResultsStore(tmp_path / "r.sqlite")
    while time.time() < deadline and not store.episodes():
        time.sleep(0.2)
    finished_before = {r["cell_key"] for r in store.episodes()}
    assert finished_before, "no cell finished in time"
    worker = _wait_for_running_worker(tmp_path / "runs")
    driver.kill()
    driver.wait()
    for _ in range(150):  # the orphaned worker notices and stops (its sandbox with it)
        if not _alive(worker):
            break
        time.sleep(0.1)
    assert not _alive(worker)
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = store.episodes()
    assert len(rows) == 8 and len({r["cell_key"] for r in rows}) == 8
    ok = [a for a in store.attempts() if a["status"] == "ok"]
    assert len(ok) == 8  # nothing ran twice to completion
    for key in finished_before:
        assert len(store.attempts(key)) == 1
    assert f"{len(finished_before)} finished before" in done.stdout


def _complete_task() -> str | None:
    """The first shipped task that loads and has anchors (the first task preferred)."""
    ids = builtin_task_ids()
    for tid in sorted(ids, key=lambda t: t != "opt-evolution-strategy"):
        try:
            if load_task(tid).anchors() is not None:
                return tid
        except MLSBenchError:
            continue
    return None


@pytest.mark.slow
def test_real_task_matrix_with_scripted_and_baseline_agents(tmp_path):
    tid = _complete_task()
    if tid is None:
        pytest.skip("no shipped task is complete (anchors.json) yet")
    task = load_task(tid)
    look = [
        {"tool": "view", "args": {"path": task.regions[0].file}},
        {"tool": "test", "args": {}},
        {"tool": "submit", "args": {}},
    ]
    agents = [scripted_agent(tmp_path / "look.yaml", "scripted-look", look), "baseline:strongest"]
    cfg = config(tmp_path, [tid], agents, seeds=(0, 1), workers=2)
    s = run_eval(cfg)
    assert (s.done, s.failed) == (4, 0)
    rows = ResultsStore(cfg.store).episodes()
    scores = {(r["agent"], r["seed"]): r["score"] for r in rows}
    for seed in (0, 1):
        assert scores[("baseline:strongest", seed)] > scores[("scripted-look", seed)]
    for r in rows:
        assert r["task"] == tid and r["vanilla_score"] is not None and r["tests_used"] == 1
        assert set(r["setting_scores"]) == {x.label for x in task.spec.settings}


# --------------------------------------------------------------------------- CLI
def test_cli_eval_takes_lists_and_dry_runs(tmp_path, guess):
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--agents",
            "baseline:strongest",
            "--agents",
            "baseline:default",
            "--tasks",
            str(guess.root),
            "--seeds",
            "3",
            "--store",
            str(tmp_path / "s.sqlite"),
            "--dry-run",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "6 cells: 1 tasks x 2 agents x 3 seeds" in r.output
    assert r.output.count("todo") == 6
    r = CliRunner().invoke(app, ["eval", "--agents", "gpt", "--tasks", str(guess.root)])
    assert r.exit_code == 2 and "baseline:<name>" in r.output


def test_cli_eval_then_report(tmp_path, guess):
    store = str(tmp_path / "s.sqlite")
    r = CliRunner().invoke(
        app,
        [
            "eval",
            "--agents",
            "baseline:strongest,baseline:default",
            "--tasks",
            str(guess.root),
            "--workers",
            "2",
            "--final-seeds",
            "0",
            "--store",
            store,
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        terminal_width=200,
    )
    assert r.exit_code == 0, r.output
    assert "2 done, 0 finished before, 0 failed" in r.output
    r = CliRunner().invoke(
        app, ["report", "--store", store, "--out", str(tmp_path / "rep")], terminal_width=200
    )
    assert r.exit_code == 0, r.output
    assert "overall" in r.output and "50.0" in r.output
    assert (tmp_path / "rep" / "index.html").is_file()
