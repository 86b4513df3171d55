"""The Ray executor on a local Ray instance (127.0.0.1, usage stats off): the same matrix as the
local executor gives rows of the same form and scores; a killed Ray worker is retried; a rerun
resumes. Slow (Ray starts in ~5-30 s); CI runs it (.ci/run)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from test_matrix import _wait_for_running_worker, config, make_guess_task, scripted_agent

from mlsbench_env.scale.matrix import run_eval
from mlsbench_env.scale.store import ResultsStore

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

# columns that differ by design between two runs of the same cell
VARYING = {
    "eval_id",
    "executor",
    "trajectory",
    "started",
    "finished",
    "wall_s",
    "compute_s",
    "attempts",
    "host",
    "id",
}


def test_ray_matrix_matches_local_and_survives_a_killed_worker(tmp_path):
    task = make_guess_task(tmp_path / "tasks", sleep_s=1.0)
    agents = [scripted_agent(tmp_path / "perfect.yaml"), "baseline:strongest"]
    local = config(tmp_path / "local", [task], agents, seeds=(0, 1), workers=2)
    assert run_eval(local).done == 4

    on_ray = config(tmp_path / "ray", [task], agents, seeds=(0, 1), workers=2, executor="ray")
    result = {}
    t = threading.Thread(target=lambda: result.update(s=run_eval(on_ray)))
    t.start()
    try:
        worker = _wait_for_running_worker(tmp_path / "ray" / "runs", timeout=300)
        ray_worker = int(Path(f"/proc/{worker}/stat").read_text().split(")")[-1].split()[1])
        os.kill(ray_worker, signal.SIGKILL)  # the Ray worker process running the cell
    finally:
        t.join(600)
    s = result["s"]
    assert (s.done, s.failed) == (4, 0) and s.retried >= 1
    assert not ray.is_initialized()  # the executor shut down the instance it started

    a = {r["cell_key"]: r for r in ResultsStore(local.store).episodes()}
    b = {r["cell_key"]: r for r in ResultsStore(on_ray.store).episodes()}
    assert set(a) == set(b)
    for key, ra in a.items():
        rb = b[key]
        assert rb["executor"] == "ray" and ra["executor"] == "local"
        assert rb["score"] == pytest.approx(ra["score"])
        assert rb["setting_scores"] == pytest.approx(ra["setting_scores"])
        same = {k for k in ra if k not in VARYING}
        assert {k: ra[k] for k in same} == {k: rb[k] for k in same}
    attempts = ResultsStore(on_ray.store).attempts()
    assert any(x["status"] == "failed" for x in attempts)
    assert sum(x["status"] == "ok" for x in attempts) == 4

    again = run_eval(on_ray)  # resume: nothing left to run, Ray not even started
    assert (again.skipped, again.done) == (4, 0)
