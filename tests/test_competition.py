"""Competitions (``kind: competition``): the workspace, `validate`, grading on private labels,
medals and the report by kind, on a shipped competition in the real sandbox."""

import hashlib
import json
import os
from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env

from mlsbench_env.analysis.report import build_report
from mlsbench_env.env import ResearchEnv
from mlsbench_env.evaluation import grade_submission
from mlsbench_env.scoring import medal, medal_thresholds
from mlsbench_env.spec import builtin_task_ids, load_task

COMPETITIONS = builtin_task_ids("competition")
# the quickest shipped competition (MLSBENCH_TEST_COMPETITION: a folder, while writing one)
COMP = os.environ.get("MLSBENCH_TEST_COMPETITION") or (
    "comp-caravan-insurance" if "comp-caravan-insurance" in COMPETITIONS else COMPETITIONS[0]
)


def act(tool, **args):
    return json.dumps({"tool": tool, "args": args})


@pytest.fixture
def env(tmp_path):
    e = ResearchEnv(COMP, runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps"))
    e.reset(seed=0)
    yield e
    e.close()


def test_prompt_and_tools(env):
    task = env.task
    obs = env.episode.last_obs
    assert obs.startswith("# Competition:") and "description.md" in obs
    assert env.tool_names == ["view", "edit", "undo", "shell", "validate", "submit"]
    assert task.spec.competition.sample_submission in obs
    for p in (task.root / "private").rglob("*"):
        assert p.name not in obs


def test_test_means_validate(tmp_path):
    e = ResearchEnv(COMP, tools=["view", "test"], runs_dir=None, work_dir=str(tmp_path))
    assert e.tool_names == ["view", "validate", "submit"]


def test_check_env_passes(tmp_path):
    e = ResearchEnv(COMP, runs_dir=None, work_dir=str(tmp_path))
    check_env(e, skip_render_check=True)
    e.close()


def _fingerprints(task, folder="private"):
    return {
        p.stat().st_size: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (task.root / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


SEARCH = r"""
import hashlib, json, os, sys
want = {int(k): v for k, v in json.loads(sys.argv[1]).items()}
CHECKOUT = os.environ.get("SEARCH_CHECKOUT", "")
names = set(json.loads(sys.argv[2]))
found = []
for top in sys.argv[3:]:
    for dirpath, dirnames, filenames in os.walk(top):
        skip = ("/proc", "/sys", "/dev")
        # another checkout of this project on the machine (CI clones beside the original) is
        # outside what the environment can know of; this checkout's own copies are searched
        dirnames[:] = [
            d
            for d in dirnames
            if os.path.join(dirpath, d) not in skip
            and not (
                os.path.isfile(os.path.join(dirpath, d, "mlsbench_env", "spec.py"))
                and os.path.join(dirpath, d) != CHECKOUT
            )
        ]
        for f in filenames:
            p = os.path.join(dirpath, f)
            try:
                size = os.lstat(p).st_size
                digest = size in want and hashlib.sha256(open(p, "rb").read()).hexdigest()
                same = digest and digest == want[size]
                if f in names or same:
                    found.append(p)
            except OSError:
                pass
print("FOUND:" + json.dumps(found))
"""


def _search(run, task, roots, folder="private"):
    fp = _fingerprints(task, folder)
    names = [p.name for p in (task.root / folder).rglob("*") if p.is_file()]
    if folder != "private":
        names = []  # a research task's hidden files have common names (run.py...): by content
    args = f"'{json.dumps(fp)}' '{json.dumps(names)}' {' '.join(roots)}"
    checkout = Path(__file__).resolve().parent.parent
    out = run(f"SEARCH_CHECKOUT={checkout} python - {args} <<'EOF'\n{SEARCH}\nEOF")
    line = next(x for x in out.splitlines() if x.startswith("FOUND:"))
    return json.loads(line[len("FOUND:") :])


def test_private_labels_cannot_be_found_from_inside_the_sandbox(env):
    task = env.task

    def run_inside(cmd):
        obs, *_ = env.step(act("shell", command=cmd, timeout=600))
        return obs

    def run_outside(cmd):
        import subprocess

        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True).stdout

    # the search finds them where they are readable (so it can fail)...
    assert _search(run_outside, task, [str(task.root)])
    # ...and nowhere on the sandbox's whole filesystem, by name or by content
    assert _search(run_inside, task, ["/"]) == []
    # the source data the competition was built from is hidden too
    for src in task.hidden_sources():
        obs = run_inside(f"ls -A {src} | wc -l")
        assert obs.split()[2] == "0", obs


def test_no_copy_of_a_tasks_hidden_files_is_readable_from_the_sandbox(make_env):
    """Hidden settings' code in every copy of the task folders (an editable install copies
    tasks/ into site-packages too) stays out of reach."""
    env = make_env()
    env.reset(seed=0)

    def run_inside(cmd):
        obs, *_ = env.step(act("shell", command=cmd, timeout=600))
        return obs

    assert _search(run_inside, env.task, ["/"], folder="hidden") == []


def test_malformed_submission_gets_a_clear_validate_message_and_scores_zero(env):
    sub = env.task.spec.competition.submission
    env.step(
        act("shell", command=f"head -n 3 {env.task.spec.competition.sample_submission} > {sub}")
    )
    obs, reward, terminated, _, info = env.step(act("validate"))
    assert not info["ok"] and "not a valid submission" in obs and not terminated
    assert reward == 0
    obs, reward, terminated, _, info = env.step(act("submit"))
    assert terminated and reward == 0 and info["score"] == 0
    assert set(info["errors"]) == {s.label for s in env.task.spec.settings}
    assert all("not a valid submission" in e for e in info["errors"].values())


def test_missing_and_oversized_submissions_are_refused(env):
    comp = env.task.spec.competition
    obs, *_, info = env.step(act("validate"))
    assert not info["ok"] and f"no submission file at {comp.submission}" in obs
    mb = int(comp.max_submission_mb) + 1
    env.step(act("shell", command=f"truncate -s {mb}M {comp.submission}"))
    obs, *_, info = env.step(act("validate"))
    assert not info["ok"] and "capped" in obs


def test_copying_the_sample_submission_scores_zero(env):
    comp = env.task.spec.competition
    env.step(act("shell", command=f"cp {comp.sample_submission} {comp.submission}"))
    obs, *_, info = env.step(act("validate"))
    assert info["ok"] and "valid" in obs
    obs, reward, terminated, _, info = env.step(act("submit"))
    assert terminated and info["score"] == pytest.approx(0.0, abs=1.0), obs
    assert info["medal"] is None


def test_the_workspace_is_the_agents(env):
    ws = env.workspace
    obs, *_, info = env.step(act("edit", path="work/notes.md", action="create", text="plan\n"))
    assert info["ok"], obs
    obs, *_, info = env.step(
        act("edit", path="description.md", action="insert", after=0, text="my notes\n")
    )
    assert info["ok"], obs
    env.step(act("shell", command="echo scratch > description.md && mkdir -p a/b && touch a/b/c"))
    assert ws.read("description.md") == "scratch\n" and (ws.root / "a/b/c").exists()


def test_a_submission_linked_to_the_private_labels_is_refused(env):
    """The host, not the sandbox, reads the submission: a link in its place would make it read
    the task's private labels (its path is guessable) and grade them against themselves."""
    comp = env.task.spec.competition
    labels = env.task.root / "private" / "test_labels.csv"
    assert labels.is_file()
    env.step(act("shell", command=f"rm -f {comp.submission}; ln -s {labels} {comp.submission}"))
    obs, *_, info = env.step(act("validate"))
    assert not info["ok"] and "outside the workspace" in obs, obs
    obs, _, terminated, _, info = env.step(act("submit"))
    assert not info.get("score") and "outside the workspace" in obs, obs
    # the grading itself reads no link either, whatever the env checked first
    runs = grade_submission(env.task, env.workspace.root / comp.submission, env.workspace.root)
    assert all(r.metrics is None and "regular file" in r.error for r in runs), runs


def test_medal_thresholds_follow_kaggles_rules():
    values = [float(v) for v in range(1, 13)]  # 12 entries, higher is better
    t = medal_thresholds(values, "higher")
    # < 100 teams: top 10% gold, 20% silver, 40% bronze, ranks rounded down as MLE-bench
    # rounds them (ranks 1, 2 and 4 of 12)
    assert t == {"gold": 12.0, "silver": 11.0, "bronze": 9.0}
    assert medal(12.0, t, "higher") == "gold" and medal(9.0, t, "higher") == "bronze"
    assert medal(8.9, t, "higher") is None
    low = medal_thresholds(values, "lower")
    assert low["gold"] == 1.0 and medal(1.0, low, "lower") == "gold"
    big = medal_thresholds([float(v) for v in range(500)], "higher")
    assert big["gold"] == 499 - 10 and big["silver"] == 499 - 49 and big["bronze"] == 499 - 99


# MLE-bench's published package, beside the checkout in CI (../shared/mle-bench)
MLEBENCH_CHECKOUT = Path(__file__).resolve().parents[1].parent / "shared" / "mle-bench"


def mlebench_module(name: str):
    """Import ``mlebench.<name>`` from MLE-bench's checkout, or skip saying what is missing."""
    import importlib
    import sys

    if not (MLEBENCH_CHECKOUT / "mlebench").is_dir():
        pytest.skip(f"MLE-bench's package is not at {MLEBENCH_CHECKOUT} (../shared/mle-bench)")
    if str(MLEBENCH_CHECKOUT) not in sys.path:
        sys.path.append(str(MLEBENCH_CHECKOUT))
    try:
        return importlib.import_module(f"mlebench.{name}")
    except ImportError as e:  # its modules import py7zr, appdirs, ... at the top
        pytest.skip(
            f"mlebench.{name} does not import here ({e}): pip install 'mlsbench-env[mlebench]'"
        )


@pytest.mark.parametrize("n", [1, 7, 12, 99, 100, 101, 249, 250, 251, 999, 1000, 1001, 2500])
@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_medal_thresholds_equal_mlebenchs_own(n, direction):
    import numpy as np
    import pandas as pd

    helpers = mlebench_module("grade_helpers")
    rng = np.random.default_rng(n)
    # ties included: scores on a coarse grid, as real leaderboards have them
    values = [float(v) for v in np.round(rng.normal(0.7, 0.1, n), 3)]
    ranked = sorted(values, reverse=direction == "higher")  # MLE-bench reads a ranked board
    grader = helpers.Grader("accuracy", "mlebench.competitions.spaceship-titanic.grade:grade")
    theirs = grader.rank_score(None, pd.DataFrame({"score": ranked}))
    ours = medal_thresholds(values, direction)
    assert ours == {k: theirs[f"{k}_threshold"] for k in ("gold", "silver", "bronze")}
    for score in [*values[:25], 0.0, 1.5]:  # and the medal each score wins
        won = grader.rank_score(score, pd.DataFrame({"score": ranked}))
        theirs_medal = next((k for k in ("gold", "silver", "bronze") if won[f"{k}_medal"]), None)
        if len(set(ranked)) > 1:  # a flat board reads as "higher is better" to MLE-bench
            assert medal(score, ours, direction) == theirs_medal, score


@pytest.mark.parametrize("task_id", COMPETITIONS)
def test_shipped_medals_follow_the_rule(task_id):
    task = load_task(task_id)
    anchors = task.anchors()
    values = [e["value"] for e in anchors["leaderboard"]]
    assert anchors["medals"] == medal_thresholds(values, task.spec.metrics[0].direction)


def test_report_shows_competitions_beside_research_tasks():
    def row(task, kind, agent, seed, score, medal=None):
        return {
            "task": task,
            "task_kind": kind,
            "domain": "tabular" if kind == "competition" else "optimization",
            "agent": agent,
            "agent_hash": agent,
            "seed": seed,
            "score": score,
            "medal": medal,
            "cost_usd": 0.0,
        }

    rows = [
        row("opt", "research", "a", 0, 40.0),
        row("opt", "research", "a", 1, 44.0),
        row("comp", "competition", "a", 0, 60.0, "gold"),
        row("comp", "competition", "a", 1, 20.0),
    ]
    rep = build_report(rows)
    assert rep.kinds == ["research", "competition"]
    kinds = rep.leaderboard[0]["kinds"]
    assert kinds["research"]["score"] == pytest.approx(42.0)
    assert kinds["competition"]["score"] == pytest.approx(40.0)
    assert kinds["competition"]["any_medal"] == pytest.approx(0.5)
    comp_row = next(t for t in rep.tasks if t["task"] == "comp")
    assert comp_row["kind"] == "competition" and comp_row["medals"]["gold"] == 0.5


@pytest.mark.parametrize("task_id", COMPETITIONS)
def test_competition_files_and_anchors(task_id):
    task = load_task(task_id)
    anchors = task.anchors()
    assert anchors and anchors["medals"] and anchors["leaderboard"]
    assert anchors["reference_baseline"] == task.spec.reference_baseline
    # the reference pipeline sits above the sample submission on every split
    for s in task.spec.settings:
        for m in task.spec.metrics:
            a = anchors["anchors"][s.label][m.name]
            assert a["reference"] != a["floor"]


@pytest.mark.docker
def test_docker_covers_the_source_data_inside_the_image_too(tmp_path):
    """A package's data inside the image's own venv is covered like the host's copy."""
    from test_sandbox_conformance import require  # tests/ is on sys.path under pytest

    require("docker")
    import sklearn

    from mlsbench_env.sandbox import SandboxConfig, make_sandbox
    from mlsbench_env.sandbox.docker import IMAGE_SITE_PACKAGES

    data = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data")
    root = tmp_path / "ep"
    root.mkdir()
    inside = f"{IMAGE_SITE_PACKAGES}/sklearn/datasets/data"
    for hidden, want in (((), "iris.csv"), ((data,), "")):
        sb = make_sandbox("docker", SandboxConfig(root=root, hidden=hidden))
        try:
            r = sb.exec(f"ls {inside} | grep -x iris.csv; python -c 'import sklearn'", timeout=60)
        finally:
            sb.close()
        assert r.output.strip() == want, r.output


@pytest.mark.docker
def test_private_labels_cannot_be_found_inside_a_container(tmp_path):
    from test_sandbox_conformance import require

    require("docker")
    e = ResearchEnv(COMP, sandbox="docker", runs_dir=None, work_dir=str(tmp_path))
    e.reset(seed=0)
    try:

        def run_inside(cmd):
            obs, *_ = e.step(act("shell", command=cmd, timeout=600))
            return obs

        assert _search(run_inside, e.task, ["/"]) == []
    finally:
        e.close()
