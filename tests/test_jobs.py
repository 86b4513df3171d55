"""Background tests (`test` with wait=false, the `jobs` tool), the machine-wide experiment
slots, and the opt-in dense reward, on a real (tiny) task in the real local sandbox."""

import json
import subprocess
import sys
import threading
import time

import pytest
from test_agent_fakes import EDIT_LINE, tiny_task_once

from mlsbench_env.env import ResearchEnv
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.tools.jobs import Slots


def act(tool, **args):
    return json.dumps({"tool": tool, "args": args})


def guess(text):
    return act("edit", path="guess.py", action="replace", start=EDIT_LINE, end=EDIT_LINE, text=text)


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.fixture
def make(tiny, tmp_path):
    envs = []

    def make_env(**options):
        options.setdefault("runs_dir", str(tmp_path / "runs"))
        options.setdefault("work_dir", str(tmp_path / "eps"))
        options.setdefault("final_seeds", (0,))
        env = ResearchEnv(tiny, **options)
        envs.append(env)
        return env

    yield make_env
    for env in envs:
        env.close()


def test_jobs_are_opt_in_and_the_default_tools_are_unchanged(make):
    env = make()
    _, info = env.reset(seed=0)
    names = [t["name"] for t in info["tools"]]
    assert "jobs" not in names
    test_schema = next(t for t in info["tools"] if t["name"] == "test")
    assert test_schema["parameters"]["properties"] == {}
    obs, *_, info = env.step(act("test", wait=False))
    assert "bad arguments for test" in obs and "unknown argument" in obs and not info["ok"]
    env = make(max_jobs=2)
    obs, info = env.reset(seed=0)
    assert "jobs" in [t["name"] for t in info["tools"]] and "- jobs(" in obs
    test_schema = next(t for t in info["tools"] if t["name"] == "test")
    assert "wait" in test_schema["parameters"]["properties"]
    with pytest.raises(MLSBenchError, match="max_jobs"):
        make(tools=["view", "test", "jobs"])


def test_background_test_returns_at_once_and_runs_the_code_as_it_was(make):
    env = make(max_jobs=2)
    env.reset(seed=0)
    env.step(guess("    return x"))
    started = time.perf_counter()
    obs, reward, _, _, info = env.step(act("test", wait=False))
    assert time.perf_counter() - started < 1.0  # no setting ran inside this step
    assert info["job"] == 1 and info["test"] == 1 and "job 1" in obs and reward == 0
    assert info["budget"]["tests_left"] == 2  # charged when it starts
    # later edits do not leak into the running test: it runs a copy of the code
    env.step(guess("    return 0.0"))
    obs, *_, info = env.step(act("jobs", action="wait", id=1))
    assert "Job 1 finished" in obs and info["tests"][0]["score"] == pytest.approx(100.0)
    assert info["jobs"][0]["state"] == "done"
    # the same code, tested blocking, scores the same
    env.step(guess("    return x"))
    obs, *_, info = env.step(act("test"))
    assert info["score"] == pytest.approx(100.0) and info["test"] == 2
    assert [t["n"] for t in env.tests] == [1, 2]
    # compute was billed for the background runs too
    assert info["budget"]["compute_s_left"] < 300.0


def test_job_limit_list_poll_and_cancel(make):
    env = make(max_jobs=1)
    env.reset(seed=0)
    env.step(act("test", wait=False))
    obs, *_, info = env.step(act("test", wait=False))
    assert "already running" in obs and not info["ok"]
    assert info["budget"]["tests_left"] == 2  # the refused test is not charged
    obs, *_, info = env.step(act("jobs", action="cancel", id=1))
    assert "Cancelled job(s) 1" in obs and info["jobs"][0]["state"] == "cancelled"
    obs, *_, info = env.step(act("jobs", action="poll", id=7))
    assert "no job 7" in obs and "internal error" not in obs and not info["ok"]
    env.step(act("test", wait=False))
    env.step(act("jobs", action="wait", timeout=60))
    obs, *_, info = env.step(act("jobs"))
    assert "job 1 (test 1): cancelled" in obs and "job 2 (test 2): done" in obs
    assert [j["state"] for j in info["jobs"]] == ["cancelled", "done"]
    # a cancelled test is not a test result: submit refuses it
    obs, *_, info = env.step(act("submit", test=1))
    assert "no test number 1" in obs and not info["ok"]


def test_submit_cancels_running_jobs_and_says_so(make, tmp_path):
    env = make(max_jobs=2)
    env.reset(seed=0)
    env.step(act("test", wait=False))
    obs, reward, terminated, _, info = env.step(act("submit"))
    assert terminated and info["cancelled_jobs"] == [1]
    assert "Cancelled 1 running background job(s)" in obs
    assert reward == pytest.approx(info["score"])
    assert not any(j.running for j in env.episode.jobs.values())
    assert not list((tmp_path / "eps").glob("ep-*/jobs/job*"))  # their folders are gone


def test_truncation_cancels_running_jobs(make):
    env = make(max_jobs=1, max_steps=2)
    env.reset(seed=0)
    env.step(act("test", wait=False))
    obs, _, _, truncated, info = env.step(act("view"))
    assert truncated and info["cancelled_jobs"] == [1] and "Cancelled 1" in obs


def test_dense_reward_is_opt_in_and_leaves_the_terminal_reward_alone(make):
    env = make()
    env.reset(seed=0)
    env.step(guess("    return x"))
    _, reward, *_ = env.step(act("test"))
    assert reward == 0.0
    env = make(dense_reward=0.1, reward_scale=0.01)
    env.reset(seed=0)
    env.step(guess("    return 0.8 * x"))  # the reference baseline: 50 points
    _, reward, *_, info = env.step(act("test"))
    assert reward == pytest.approx(0.1 * 50 * 0.01) and info["dense_reward"] == pytest.approx(5)
    env.step(guess("    return x"))  # 100 points: +50 over the best so far
    _, reward, *_ = env.step(act("test"))
    assert reward == pytest.approx(0.1 * 50 * 0.01)
    _, reward, *_, info = env.step(act("test"))  # no improvement
    assert reward == 0.0 and "dense_reward" not in info
    _, reward, terminated, *_ = env.step(act("submit"))
    assert terminated and reward == pytest.approx(100 * 0.01)


def test_slots_bound_holders_across_threads_and_processes(tmp_path):
    slots = Slots(2, tmp_path / "slots")
    inside, peak, lock = [0], [0], threading.Lock()

    def work():
        with slots.hold():
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.1)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2 and slots.busy() == 0
    # a process holding both slots blocks us; killing it frees them (the kernel drops flocks)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom mlsbench_env.tools.jobs import Slots\n"
            f"s = Slots(2, {str(tmp_path / 'slots')!r})\n"
            "with s.hold(), s.hold():\n    print('held', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert slots.busy() == 2
        cancelled = threading.Event()
        threading.Timer(0.2, cancelled.set).start()
        with pytest.raises(Exception, match="cancelled"), slots.hold(cancelled):
            pass
    finally:
        holder.kill()
        holder.wait()
    with slots.hold() as waited:
        assert waited < 1.0
