"""Episode snapshots: restore gives identical observations, in the same env or a fresh one."""

import json
import time

import pytest
from test_agent_fakes import EDIT_LINE, tiny_task_once

from mlsbench_env.analysis.export import load_episode
from mlsbench_env.env import ResearchEnv
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.spec import load_task

FIRST_TASK = "opt-evolution-strategy"


def act(tool, **args):
    return json.dumps({"tool": tool, "args": args})


@pytest.fixture
def first_task():
    try:
        return load_task(FIRST_TASK)
    except MLSBenchError as e:
        pytest.skip(f"{FIRST_TASK} is not ready: {e}")


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.fixture
def make(tmp_path):
    envs = []

    def make_env(task, **options):
        options.setdefault("runs_dir", str(tmp_path / "runs"))
        options.setdefault("work_dir", str(tmp_path / "eps"))
        env = ResearchEnv(task, **options)
        envs.append(env)
        return env

    yield make_env
    for env in envs:
        env.close()


def branch_actions(env):
    """Deterministic steps (no commands: those bill wall time) that read what a restore must
    bring back: files and folders, edits and their undo history, ranges, budgets."""
    file = next(iter(env.workspace.ranges))
    r = env.workspace.ranges[file][0]
    return [
        act("view", path="."),
        act("view", path="scratch"),
        act("view", path=file),
        act("edit", path=file, action="insert", after=r.start - 1, text="    # branch\n"),
        act("undo", n=2),
        act("view", path=file),
        "{not json",
        act("undo", n=1),
        act("view", path=file),
    ]


def play(env, actions):
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs, reward, terminated, truncated, json.dumps(info, sort_keys=True)))
    return out


def test_restore_gives_identical_observations_first_task(make, first_task):
    env = make(first_task)
    env.reset(seed=0)
    file = next(iter(env.workspace.ranges))
    r = env.workspace.ranges[file][0]
    env.step(act("edit", path=file, action="insert", after=r.start - 1, text="    a = 1\n"))
    env.step(act("edit", path=file, action="insert", after=r.start - 1, text="    b = 2\n"))
    last, *_ = env.step(act("shell", command="mkdir -p scratch && echo notes > scratch/n.txt"))
    snap = env.snapshot()
    actions = branch_actions(env)
    first = play(env, actions)
    # the branch changed things: a file, the history, the budget
    env.step(act("shell", command="rm -r scratch; echo x > extra.txt"))
    env.step(act("edit", path=file, action="insert", after=r.start - 1, text="    c = 3\n"))
    assert env.restore(snap) == last  # the observation at the snapshot
    again = play(env, actions)
    assert again == first
    # into a fresh env of the same task (branching rollouts)
    other = make(first_task)
    other.restore(snap)
    assert play(other, actions) == first
    assert (other.workspace.root / "scratch" / "n.txt").read_text() == "notes\n"
    assert not (other.workspace.root / "extra.txt").exists()


def test_restore_brings_back_budgets_tests_and_history(make, tiny):
    env = make(tiny, final_seeds=(0,))
    env.reset(seed=0)
    edit = act("edit", path="guess.py", action="replace", start=EDIT_LINE, end=EDIT_LINE, text="")
    env.step(edit.replace('"text": ""', '"text": "    return 0.8 * x"'))
    env.step(act("test"))
    snap = env.snapshot()
    budget = dict(env.budget.as_dict())
    env.step(edit.replace('"text": ""', '"text": "    return x"'))
    env.step(act("test"))
    assert len(env.tests) == 2
    env.restore(snap)
    assert env.budget.as_dict() == budget and [t["n"] for t in env.tests] == [1]
    assert "0.8 * x" in env.workspace.read("guess.py")
    obs, *_, info = env.step(act("submit", test=2))
    assert "no test number 2" in obs and not info["ok"]
    _, reward, terminated, *_ = env.step(act("submit", test=1))
    assert terminated and reward == pytest.approx(50.0, abs=1e-6)
    # a snapshot of an ended episode restores to playable state before it
    env.restore(snap)
    _, reward, terminated, *_ = env.step(act("test"))
    assert not terminated and env.tests[-1]["n"] == 2


def test_snapshot_refused_while_a_background_test_runs(make, tiny):
    env = make(tiny, max_jobs=1)
    env.reset(seed=0)
    env.step(act("test", wait=False))
    with pytest.raises(MLSBenchError, match="still running"):
        env.snapshot()
    env.step(act("jobs", action="wait"))
    snap = env.snapshot()
    env.restore(snap)
    obs, *_ = env.step(act("jobs"))
    assert "job 1 (test 1): done" in obs


def test_snapshot_errors_say_what_to_do(make, tiny, first_task):
    env = make(tiny)
    with pytest.raises(MLSBenchError, match="reset"):
        env.snapshot()
    env.reset(seed=0)
    snap = env.snapshot()
    other = make(first_task)
    with pytest.raises(MLSBenchError, match="cannot restore"):
        other.restore(snap)


def test_snapshot_and_restore_are_cheap_first_task(make, first_task):
    env = make(first_task, runs_dir=None)
    env.reset(seed=0)
    snap = env.snapshot()
    started = time.perf_counter()
    for _ in range(20):
        snap = env.snapshot()
        env.restore(snap)
    per_pair_ms = (time.perf_counter() - started) / 20 * 1000
    assert per_pair_ms < 100, per_pair_ms  # measured ~2 ms; generous for a loaded machine


def test_a_branch_exports_as_a_whole_episode(make, tiny):
    env = make(tiny, final_seeds=(0,))
    env.reset(seed=0)
    env.step(act("view", path="guess.py"))
    snap = env.snapshot()
    env.step(act("submit"))
    branch = make(tiny, final_seeds=(0,))
    branch.restore(snap)
    edit = act("edit", path="guess.py", action="replace", start=EDIT_LINE, end=EDIT_LINE, text="")
    branch.step(edit.replace('"text": ""', '"text": "    return x"'))
    branch.step(act("submit"))
    ep = load_episode(branch.run_dir)
    assert [s["tool"] for s in ep.steps] == ["view", "edit", "submit"]
    assert ep.score == pytest.approx(100.0)
    assert ep.branch_of == [str(env.run_dir / "trajectory.jsonl")]
    roles = [m["role"] for m in ep.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool"]
