"""Protocol presets (env/protocol.py) played by scripted agents on a real task (the tiny task of
test_agent_fakes: real scaffold, grader, hidden setting, calibrated anchors, local sandbox):
budgets, tool lists, the seed schedule, required iteration, auto-submit, `submit(n)` and the
recorded preset."""

import json

import pytest
from test_agent_fakes import EDIT_LINE, tiny_task_once

import mlsbench_env  # noqa: F401  (registers the ids)
from mlsbench_env.env import EnvConfig
from mlsbench_env.env.log import protocol_of, read_log
from mlsbench_env.env.protocol import PROTOCOLS, get_protocol, with_agent_defaults
from mlsbench_env.errors import MLSBenchError, UnknownNameError

SEEDS = (0, 1)


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.fixture
def play(make_env, tiny):
    """An env of the tiny task under ``protocol`` with three final seeds; returns (env, step)
    where step(tool, **args) -> (obs, reward, terminated, truncated, info)."""

    def make(protocol, **options):
        env = make_env(tiny, protocol=protocol, final_seeds=SEEDS, **options)
        runs = []
        env.progress = lambda label, seed, run: runs.append((label, seed))

        def step(tool, **args):
            return env.step(json.dumps({"tool": tool, "args": args}))

        return env, step, runs

    return make


def guess(factor):
    text = f"    return {factor} * x"
    return {"path": "guess.py", "action": "replace", "start": EDIT_LINE, "end": EDIT_LINE} | {
        "text": text
    }


def log_of(env):
    return read_log(env.run_dir / "trajectory.jsonl")


# ------------------------------------------------------------------------------ the table
def test_unknown_protocol_lists_the_presets():
    with pytest.raises(UnknownNameError, match="unknown protocol 'paper'") as e:
        get_protocol("paper")
    for name in PROTOCOLS:
        assert name in str(e.value)
    with pytest.raises(UnknownNameError, match="mlsbench-lite"):
        EnvConfig(protocol="mlsbench-papr")


def test_a_preset_refuses_a_conflicting_option_and_names_it():
    with pytest.raises(MLSBenchError, match=r"fixes max_steps=20, but max_steps=60"):
        EnvConfig(protocol="mlsbench-paper", max_steps=60)
    with pytest.raises(MLSBenchError, match=r"fixes tools=edit,undo,test,submit"):
        EnvConfig(protocol="mlsbench-lite", tools=("view", "edit", "test", "submit"))
    with pytest.raises(MLSBenchError, match="no compute budget"):
        EnvConfig(protocol="mlsbench-v3", compute_budget_s=100)
    # the same value as the preset's is no conflict; the recorded config says what ran
    c = EnvConfig(protocol="mlsbench-paper", test_budget=3)
    assert (c.max_steps, c.test_budget, c.tools) == (20, 3, ("edit", "undo", "test", "submit"))
    assert c.show_baseline_code is True and c.max_jobs == 0
    assert EnvConfig().protocol == "default" and EnvConfig().max_steps is None


def test_agent_defaults_give_way_to_the_preset():
    # an agent YAML's tool subset is a default: the preset's tool list replaces it
    opts = with_agent_defaults({}, {"tools": ("view", "shell"), "protocol": "mlsbench-lite"})
    assert opts == {"protocol": "mlsbench-lite"}
    # the caller's protocol wins over the agent's
    opts = with_agent_defaults({"protocol": "default"}, {"protocol": "mlsbench-paper"})
    assert opts["protocol"] == "default"
    assert with_agent_defaults({}, {"obs_max_tokens": 500}) == {"obs_max_tokens": 500}


# ------------------------------------------------------------------------------ default
def test_default_is_unchanged_and_recorded(play):
    env, step, _ = play("default")
    obs, info = env.reset(seed=0)
    assert [t["name"] for t in info["tools"]] == ["view", "edit", "undo", "shell", "test", "submit"]
    assert set(info["budget"]) == {"steps_left", "tests_left", "compute_s_left"}
    assert info["protocol"] == "default" and "## Protocol" not in obs
    step("nonsense")
    assert env.budget.steps == 11  # every action costs a step, a malformed one too
    assert protocol_of(log_of(env)[0]) == "default"
    assert protocol_of({"type": "header"}) == "default"  # a trajectory from before presets


def test_gym_make_takes_the_protocol(make_gym):
    _, info = make_gym(protocol="mlsbench-lite").reset(seed=0)
    assert [t["name"] for t in info["tools"]] == ["edit", "undo", "test", "submit"]
    assert info["budget"]["steps_left"] == 8 and info["budget"]["tests_left"] == 1


# ------------------------------------------------------------------------------ paper
def test_paper_budgets_iteration_seed_schedule_and_submit_n(play):
    env, step, runs = play("mlsbench-paper")
    obs, info = env.reset(seed=0)
    assert [t["name"] for t in info["tools"]] == ["edit", "undo", "test", "submit"]
    assert info["budget"] == {
        "steps_left": 20,
        "tests_left": 3,
        "compute_s_left": None,
        "actions_left": 60,
    }
    assert "## Protocol: mlsbench-paper" in obs and "shell(" not in obs
    assert "return 0.8 * x" in obs  # the baselines' code, as MLS-Bench's prompt shows it
    submit_doc = next(t for t in info["tools"] if t["name"] == "submit")["description"]
    assert "nothing is re-run" in submit_doc

    obs, *_, info = step("view", path="guess.py")  # no viewer in this protocol
    assert "unknown tool 'view'" in obs and info["budget"]["steps_left"] == 20
    obs, r, term, trunc, info = step("submit")
    assert not term and "refused" in obs and "test" in obs and "edit" in obs
    assert info["budget"]["steps_left"] == 20 and info["budget"]["actions_left"] == 58

    # test 1: every setting on every final seed, only the visible ones shown
    obs, r, term, trunc, info = step("test")
    assert not term and info["seeds"] == list(SEEDS) and set(info["metrics"]) == {"one", "two"}
    assert "three" not in obs and "three" not in json.dumps(info)
    assert sorted(runs) == sorted((s, seed) for s in ("one", "two") for seed in SEEDS)
    assert info["score"] == 0.0 and info["budget"]["steps_left"] == 20

    obs, *_, info = step("edit", **guess(0.8))
    assert info["budget"]["steps_left"] == 19
    obs, _, term, *_ = step("submit")  # a test and an edit: not yet an iteration
    assert not term and "refused" in obs

    runs.clear()
    obs, r, term, trunc, info = step("test")  # test 2: one seed
    assert info["seeds"] == [SEEDS[0]] and runs == [("one", 0), ("two", 0)]
    assert info["score"] == pytest.approx(50.0, abs=0.5)

    runs.clear()
    obs, r, term, trunc, info = step("submit", test=1)
    assert term and not trunc and runs == []  # selected, not re-run
    assert info["selected_test"] == 1 and info["seeds"] == list(SEEDS)
    assert info["score"] == 0.0 == r and info["vanilla_score"] == 0.0
    assert set(info["metrics"]) == {"one", "two", "three"} and "three" in obs
    end = log_of(env)[-1]
    assert end["type"] == "end" and end["selected_test"] == 1 and end["tests_used"] == 2
    assert protocol_of(log_of(env)[0]) == "mlsbench-paper"


def test_paper_submit_defaults_to_the_last_test_and_steps_count_only_edits(play):
    env, step, runs = play("mlsbench-paper")
    env.reset(seed=0)
    step("test")
    for _ in range(19):
        step("undo")  # nothing to undo: refused, but an editing step spent
    obs, *_, info = step("edit", **guess(1))
    assert info["ok"] and info["budget"]["steps_left"] == 0
    obs, *_, info = step("edit", **guess(0.8))
    assert not info["ok"] and "No editing steps left" in obs
    assert env.workspace.read("guess.py").splitlines()[EDIT_LINE - 1] == "    return 1 * x"
    step("test")
    obs, r, term, trunc, info = step("submit")
    assert term and info["selected_test"] == 2 and r == pytest.approx(100.0)
    assert info["setting_scores"]["three"] == pytest.approx(100.0)


@pytest.mark.slow
def test_paper_auto_submits_the_last_test(play):
    env, step, runs = play("mlsbench-paper")
    env.reset(seed=0)
    step("test")
    step("edit", **guess(0.8))
    step("test")
    step("edit", **guess(0.9))
    runs.clear()
    obs, r, term, trunc, info = step("test")
    assert term and not trunc and info["selected_test"] == 3 and info["seeds"] == [0]
    assert "submitted automatically" in obs and "three" in obs
    assert r == info["score"] > 50
    assert [e["status"] for e in log_of(env) if e["type"] == "end"] == ["submitted"]


def test_rescore_takes_the_selected_test(play):
    from mlsbench_env.analysis.rescore import submitted_code

    env, step, _ = play("mlsbench-lite")
    env.reset(seed=0)
    step("edit", **guess(0.8))
    assert step("test")[2]  # the one test is submitted: the episode is over
    regions, _, what = submitted_code(log_of(env))
    assert what == "test 1" and regions[("guess.py", 1)] == "    return 0.8 * x\n"


# ------------------------------------------------------------------------------ lite
def test_lite_one_test_is_submitted_and_every_action_counts(play):
    env, step, runs = play("mlsbench-lite")
    _, info = env.reset(seed=0)
    assert [t["name"] for t in info["tools"]] == ["edit", "undo", "test", "submit"]
    assert info["budget"]["steps_left"] == 8 and "actions_left" not in info["budget"]
    obs, *_, info = step("submit")  # no iteration required, but nothing tested to select
    assert not info["ok"] and "no test has run yet" in obs and info["budget"]["steps_left"] == 7
    step("nonsense")
    assert env.budget.steps == 6
    step("edit", **guess(0.8))
    obs, r, term, trunc, info = step("test")
    assert term and info["selected_test"] == 1 and info["seeds"] == list(SEEDS)
    assert r == pytest.approx(50.0, abs=0.5) and set(info["metrics"]) == {"one", "two", "three"}
    assert sorted(runs) == [("one", 0), ("one", 1), ("two", 0), ("two", 1)]  # visible ones


def test_lite_runs_out_of_actions_without_a_test(play):
    env, step, _ = play("mlsbench-lite")
    env.reset(seed=0)
    for _ in range(7):
        step("undo")
    obs, r, term, trunc, info = step("undo")
    assert trunc and not term and r == 0.0 and "max_steps" in obs and "score" not in info


# ------------------------------------------------------------------------------ v3
def test_v3_viewer_and_string_replace(play):
    env, step, _ = play("mlsbench-v3")
    _, info = env.reset(seed=0)
    names = [t["name"] for t in info["tools"]]
    assert names == ["view", "edit", "replace", "undo", "test", "submit"]
    obs, *_, info = step("view", path="guess.py")
    assert "5*|" in obs and info["budget"]["steps_left"] == 20  # viewing is free
    before = env.workspace.read("guess.py")
    obs, *_, info = step("replace", path="guess.py", old="def guess(x):", new="def guess(y):")
    assert not info["ok"] and "not inside one editable range" in obs
    obs, *_, info = step("replace", path="guess.py", old="return 1.0", new="return 2.0")
    assert not info["ok"] and "does not occur" in obs
    obs, *_, info = step("replace", path="guess.py", old="x", new="y")
    assert not info["ok"] and "occurs" in obs and "times" in obs
    assert env.workspace.read("guess.py") == before and info["budget"]["steps_left"] == 17
    obs, *_, info = step("replace", path="guess.py", old="0.0", new="0.8 * x")
    assert info["ok"] and env.workspace.read("guess.py").endswith("    return 0.8 * x\n")
    assert info["budget"]["steps_left"] == 16


@pytest.mark.slow
def test_v3_requires_iteration_and_submits_a_test(play):
    env, step, _ = play("mlsbench-v3")
    env.reset(seed=0)
    step("replace", path="guess.py", old="0.0", new="0.8 * x")
    step("test")
    step("undo")
    obs, _, term, *_ = step("submit")
    assert not term and "refused" in obs  # test, edit: not yet a second test
    step("test")
    obs, r, term, trunc, info = step("submit", test=1)
    assert term and r == pytest.approx(50.0, abs=0.5)


# ------------------------------------------------------------------------------ records
def test_store_rows_and_reports_keep_presets_apart(tmp_path):
    from test_report import rows
    from test_store import row

    from mlsbench_env.analysis.report import build_report, comparable, report_from_store
    from mlsbench_env.scale.store import ResultsStore

    store = ResultsStore(tmp_path / "results.sqlite")
    store.record_episode(row("old"))  # a row without the field reads as default
    store.record_episode(row("new", protocol="mlsbench-paper", agent="b", agent_hash="h2"))
    assert {r["cell_key"]: r["protocol"] for r in store.episodes()} == {
        "old": "default",
        "new": "mlsbench-paper",
    }
    with pytest.raises(MLSBenchError, match="several protocol presets.*--protocol"):
        report_from_store(store)
    rep = report_from_store(store, protocol="mlsbench-paper")
    assert rep.protocol == "mlsbench-paper" and rep.agents == ["b"]

    with pytest.raises(MLSBenchError, match=r"default, mlsbench-paper"):
        build_report(rows() + rows(protocol="mlsbench-paper"))
    ours, paper = build_report(rows()), build_report(rows(protocol="mlsbench-paper"))
    assert ours.fingerprint["key"] == build_report(rows(protocol=None)).fingerprint["key"]
    assert ours.fingerprint["key"] != paper.fingerprint["key"]
    why = comparable(ours.to_json(), paper.to_json())
    assert why and all("protocol presets differ" in w for w in why)


def test_cli_refuses_an_unknown_protocol():
    from typer.testing import CliRunner

    from mlsbench_env.cli import app

    r = CliRunner().invoke(
        app,
        ["run", "--task", "opt-evolution-strategy", "--agent", "baseline:de", "--protocol", "x"],
    )
    assert r.exit_code != 0 and "unknown protocol 'x'" in r.output and "mlsbench-v3" in r.output
    args = ["eval", "--agents", "baseline:de", "--tasks", "opt-evolution-strategy"]
    r = CliRunner().invoke(app, [*args, "--protocol", "x", "--dry-run"])
    assert r.exit_code != 0 and "unknown protocol 'x'" in r.output


def test_an_agent_yaml_names_its_protocol(tiny):
    from mlsbench_env.agent import load_config, make_agent
    from mlsbench_env.episode import env_defaults

    base = {"name": "s", "model": {"provider": "scripted", "script": []}, "tools": ["view"]}
    agent = make_agent(load_config({**base, "protocol": "mlsbench-lite"}), tiny)
    opts = with_agent_defaults({}, env_defaults(agent))
    assert opts["protocol"] == "mlsbench-lite" and "tools" not in opts
    with pytest.raises(UnknownNameError, match="unknown protocol"):
        make_agent(load_config({**base, "protocol": "lite"}), tiny)


def test_the_baseline_agent_iterates_under_the_paper_preset(play, tiny):
    from mlsbench_env.episode import BaselineAgent, run_episode

    env, *_ = play("mlsbench-paper")
    out = run_episode(env, BaselineAgent(tiny, "good"), seed=0)
    assert out.status == "submitted" and out.score == pytest.approx(50.0, abs=0.5)
    assert out.final_info["selected_test"] == 1 and out.final_info["seeds"] == list(SEEDS)
    tools = [r["tool"] for r in log_of(env) if r["type"] == "step"]
    assert tools == ["edit", "test", "edit", "test", "submit"]
