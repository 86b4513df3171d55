"""Batched episodes: the asyncio pool (back-pressure, ramping, experiment slots) and gymnasium's
vector API, with scripted agents on real tasks in the real local sandbox, against sequential
runs of the same agents."""

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from test_agent_fakes import EDIT_LINE, tiny_task_once

from mlsbench_env.env import ResearchEnv
from mlsbench_env.env.vector import make_vector_env
from mlsbench_env.episode import BaselineAgent, run_episode
from mlsbench_env.errors import MLSBenchError, PoolTimeout
from mlsbench_env.evaluation.run import grade, load_grader
from mlsbench_env.scale.pool import EnvPool, arun_episode
from mlsbench_env.spec import load_task

FIRST_TASK = "opt-evolution-strategy"


class Plan:
    """A scripted agent: plays its actions in order."""

    def __init__(self, name, actions):
        self.name, self._actions = name, list(actions)

    def act(self, obs, info):
        return self._actions.pop(0)


def tiny_plans():
    def edit(text):
        return {
            "tool": "edit",
            "args": {
                "path": "guess.py",
                "action": "replace",
                "start": EDIT_LINE,
                "end": EDIT_LINE,
                "text": text,
            },
        }

    submit = {"tool": "submit", "args": {}}
    return {
        "default": [{"tool": "view", "args": {"path": "guess.py"}}, submit],
        "good": [edit("    return 0.8 * x"), submit],
        "perfect": [edit("    return x"), submit],
        "half": [edit("    return 0.5 * x"), submit],
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_expected(tiny, tmp_path_factory):
    """Each tiny plan's reward, played alone (the reference for the batched runs)."""
    return sequential(tiny, tiny_plans(), tmp_path_factory.mktemp("sequential"))


@pytest.fixture(autouse=True)
def private_slots(tmp_path, monkeypatch):
    # experiment slots are machine-wide; keep this test's apart from other runs on the machine
    monkeypatch.setenv("MLSBENCH_SLOTS_DIR", str(tmp_path / "slots"))


def options(tmp_path, **extra):
    return {
        "runs_dir": str(tmp_path / "runs"),
        "work_dir": str(tmp_path / "eps"),
        "final_seeds": (0,),
        **extra,
    }


def sequential(task, plans, tmp_path):
    out = {}
    for name, actions in plans.items():
        env = ResearchEnv(task, **options(tmp_path))
        try:
            out[name] = run_episode(env, Plan(name, actions), seed=0).reward
        finally:
            env.close()
    return out


def test_pool_8_concurrent_episodes_match_sequential_runs(tiny, tiny_expected, tmp_path):
    plans, expected = tiny_plans(), tiny_expected
    assert expected["perfect"] == pytest.approx(100.0) and expected["good"] == pytest.approx(50.0)
    names = [n for n in plans for _ in range(2)]

    async def main():
        async with EnvPool(max_live=4, max_experiments=2) as pool:
            envs = [pool.make(tiny, **options(tmp_path)) for _ in names]
            results = await asyncio.gather(
                *(
                    arun_episode(e, Plan(n, plans[n]), seed=0)
                    for e, n in zip(envs, names, strict=True)
                )
            )
            return results, pool.stats, envs

    results, stats, envs = asyncio.run(main())
    assert [r.reward for r in results] == [expected[n] for n in names]
    assert all(r.terminated for r in results)
    assert stats.peak_live <= 4 and stats.live == 0 and stats.episodes_ended == 8
    # an ended episode gave its sandbox back: no executor process, no workspace left
    assert all(e.unwrapped.episode is None for e in envs)
    assert not list((tmp_path / "eps").glob("ep-*"))


def test_pool_many_episodes_queue_instead_of_thrashing(tiny, tmp_path):
    """64 episodes asked of a pool with 3 sandboxes: they queue and all finish."""
    view = {"tool": "view", "args": {"path": "guess.py"}}

    async def main():
        async with EnvPool(max_live=3, ramp_per_s=None) as pool:
            envs = [pool.make(tiny, **options(tmp_path, max_steps=2)) for _ in range(64)]
            results = await asyncio.gather(
                *(arun_episode(e, Plan("viewer", [view, view])) for e in envs)
            )
            return results, pool.stats

    results, stats = asyncio.run(main())
    assert len(results) == 64 and all(r.truncated for r in results)
    assert stats.peak_live == 3 and stats.live == 0 and stats.waiting == 0


def test_experiment_slots_bound_concurrent_commands_and_waiting_is_not_billed(tiny, tmp_path):
    cmd = 'python -c "import time; a = time.time(); time.sleep(0.4); print(a, time.time())"'
    shell = {"tool": "shell", "args": {"command": cmd}}

    async def main():
        async with EnvPool(max_experiments=2, ramp_per_s=None) as pool:
            envs = [pool.make(tiny, **options(tmp_path, runs_dir=None)) for _ in range(6)]
            await asyncio.gather(*(e.areset(seed=0) for e in envs))
            started = time.perf_counter()
            outs = await asyncio.gather(*(e.astep(shell) for e in envs))
            return outs, time.perf_counter() - started

    outs, wall = asyncio.run(main())
    spans = [tuple(map(float, o[0].splitlines()[1].split())) for o in outs]
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2 and wall >= 3 * 0.4
    # compute is billed for running, not for waiting in the queue
    assert all(300 - o[4]["budget"]["compute_s_left"] < 1.5 for o in outs)


def test_reset_timeout_explains_the_batch_deadlock(tiny, tmp_path):
    async def main():
        async with EnvPool(max_live=1, reset_timeout_s=0.3, ramp_per_s=None) as pool:
            a, b = pool.make(tiny, **options(tmp_path)), pool.make(tiny, **options(tmp_path))
            await a.areset(seed=0)
            with pytest.raises(PoolTimeout, match="max_live >= the batch size"):
                await b.areset(seed=0)
            await a.aclose()  # a slot frees: b starts
            obs, _ = await b.areset(seed=0)
            assert "Research task" in obs

    asyncio.run(main())


def test_ramp_spaces_episode_starts(tiny, tmp_path):
    async def main():
        async with EnvPool(ramp_per_s=10, ramp_burst=1) as pool:
            envs = [pool.make(tiny, **options(tmp_path, runs_dir=None)) for _ in range(5)]
            started = time.perf_counter()
            await asyncio.gather(*(e.areset(seed=0) for e in envs))
            return time.perf_counter() - started

    assert asyncio.run(main()) >= 0.35  # 1 at once, then 4 at 10 a second


def test_vector_env_8_episodes_match_sequential_runs(tiny, tiny_expected, tmp_path):
    plans, expected = tiny_plans(), tiny_expected
    names = [n for n in plans for _ in range(2)]
    envs = make_vector_env(str(tiny.root), len(names), **options(tmp_path, max_experiments=2))
    try:
        obs, info = envs.reset(seed=0)
        assert all(isinstance(o, str) and "Research task" in o for o in obs)
        for k in range(2):
            actions = [json.dumps(plans[n][k]) for n in names]
            obs, rewards, terminated, truncated, info = envs.step(actions)
        assert list(terminated) == [True] * 8
        assert list(rewards) == pytest.approx([expected[n] for n in names])
    finally:
        envs.close()


def first_task_or_skip():
    try:
        task = load_task(FIRST_TASK)
    except MLSBenchError as e:
        pytest.skip(f"{FIRST_TASK} is not ready: {e}")
    if task.anchors() is None:
        pytest.skip(f"{FIRST_TASK} has no anchors.json yet")
    return task


@pytest.mark.slow
def test_pool_8_concurrent_first_task_episodes_match_sequential(tmp_path):
    """The first shipped task: its reference baseline and its scaffold, submitted without a
    test (one final evaluation each), 4 of each at once vs one of each alone."""
    task = first_task_or_skip()

    def plan(name):
        agent = BaselineAgent(task, name)
        actions = [a for a in agent._plan if a["tool"] == "edit"]
        return actions + [{"tool": "submit", "args": {}}]

    plans = {n: plan(n) for n in ("default", task.spec.reference_baseline)}
    expected = sequential(task, plans, tmp_path)
    names = [n for n in plans for _ in range(4)]

    async def main():
        async with EnvPool(max_experiments=2) as pool:
            envs = [pool.make(task, **options(tmp_path)) for _ in names]
            return await asyncio.gather(
                *(
                    arun_episode(e, Plan(n, plans[n]), seed=0)
                    for e, n in zip(envs, names, strict=True)
                )
            )

    results = asyncio.run(main())
    assert all(r.terminated for r in results)
    assert [r.reward for r in results] == pytest.approx([expected[n] for n in names], abs=1e-9)
    assert Path(results[0].run_dir).is_dir()


def test_concurrent_episodes_grade_the_first_task_without_races(tmp_path):
    """Pool episodes grade from threads of one process. The first task's grader registers its
    helper module in sys.modules while it loads it; run unguarded from many threads at once,
    one thread's clean-up removed another's module and a valid run was rejected (seen in CI)."""
    task = first_task_or_skip()
    # the objective the grader itself rebuilds for this setting, seed and instance
    obj = load_grader(task)._objective(task.root, "ackley", 30, 0, "public")
    x = (obj.lower + obj.upper) / 2
    result = {
        "function": "ackley",
        "dim": 30,
        "seed": 0,
        "instance": "public",
        "budget": 6000,
        "n_evals": 1,
        "best_f": float(obj(x[None, :])[0]),
        "best_x": x.tolist(),
    }
    (tmp_path / "result.json").write_text(json.dumps(result))
    start, errors = threading.Barrier(8), []

    def worker():
        start.wait()
        for _ in range(25):
            _, error = grade(task, "ackley-30d", 0, tmp_path)
            if error:
                errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
