"""The agent loop with models that need no API: exit statuses, records, context, resume, CLI."""

import json

import pytest
import yaml
from test_agent_fakes import PERFECT, tiny_task_once
from typer.testing import CliRunner

from mlsbench_env.agent import (
    LLMAgent,
    ModelResponse,
    ReplayModel,
    ScriptedModel,
    Usage,
    load_config,
)
from mlsbench_env.cli import app
from mlsbench_env.env import ResearchEnv
from mlsbench_env.env.log import read_log
from mlsbench_env.episode import BaselineAgent, run_episode
from mlsbench_env.errors import ModelError

VIEW = {"tool": "view", "args": {"path": "guess.py"}}


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.fixture
def make_env(tiny, tmp_path):
    envs = []

    def make(**options):
        env = ResearchEnv(
            tiny,
            runs_dir=str(tmp_path / "runs"),
            work_dir=str(tmp_path / "eps"),
            final_seeds=(0,),
            **options,
        )
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def cfg(**fields):
    data = {"name": "t", "model": {"provider": "scripted"}}
    for key, value in fields.items():
        data[key] = value
    return load_config(data)


def records_of(result):
    return read_log(f"{result.run_dir}/trajectory.jsonl")


class CountingModel:
    """A model outside the package (the protocol is all it takes), with usage, recording the
    messages it was sent."""

    name = "counting"

    def __init__(self, replies):
        self.replies, self.seen = list(replies), []
        self.usage = Usage(input_tokens=1000, output_tokens=100)

    def query(self, messages, tools, max_output_tokens=None):
        self.seen.append([dict(m) for m in messages])
        item = self.replies.pop(0)
        if isinstance(item, BaseException):
            raise item
        return ModelResponse(
            text="",
            tool_calls=ScriptedModel([item]).query([], []).tool_calls,
            usage=self.usage,
        )


def test_scripted_episode_scores_and_records_everything(make_env):
    steps = []
    agent = LLMAgent(cfg(), ScriptedModel(PERFECT), on_step=lambda *a: steps.append(a[0]))
    result = agent.run(make_env(), seed=0)
    assert result.status == "submitted" and result.score == pytest.approx(100.0)
    assert result.terminated and steps == [1, 2, 3, 4]
    recs = records_of(result)
    kinds = [r["type"] for r in recs]
    assert kinds[:3] == ["header", "reset", "agent"]
    assert kinds.count("model_call") == 4 and kinds[-2:] == ["end", "agent_end"]
    # each model call is recorded before the step it causes
    assert kinds.index("model_call") < kinds.index("step")
    assert recs[2]["config"]["model"]["provider"] == "scripted"
    run_dir = result.run_dir
    assert yaml.safe_load(open(f"{run_dir}/agent.yaml"))["name"] == "t"


def test_plays_through_gymnasium_wrappers(make_env):
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker

    env = OrderEnforcing(PassiveEnvChecker(make_env()))
    result = LLMAgent(cfg(), ScriptedModel(PERFECT)).run(env)
    assert result.status == "submitted" and result.score == pytest.approx(100.0)
    assert [r["type"] for r in records_of(result)].count("model_call") == 4


def test_text_mode_scripted_episode(make_env):
    c = cfg(model={"provider": "scripted", "action_format": "text"})
    result = LLMAgent(c, ScriptedModel(PERFECT, "text")).run(make_env())
    assert result.status == "submitted" and result.score == pytest.approx(100.0)


@pytest.mark.parametrize(
    "limits, script, status, steps",
    [
        ({}, [VIEW], "model_exhausted", 1),
        ({"max_model_calls": 2}, [VIEW] * 5, "max_model_calls", 2),
    ],
)
def test_exit_statuses(make_env, limits, script, status, steps):
    result = LLMAgent(cfg(limits=limits), ScriptedModel(script)).run(make_env())
    assert result.status == status and result.steps == steps
    assert records_of(result)[-1]["status"] == status


def test_env_budget_truncates(make_env):
    result = LLMAgent(cfg(), ScriptedModel([VIEW] * 5)).run(make_env(max_steps=3))
    assert result.status == "truncated" and result.truncated


def test_cost_limit(make_env):
    c = cfg(prices={"input": 1000.0, "output": 0.0}, limits={"cost_limit_usd": 1.5})
    model = CountingModel([VIEW] * 5)  # $1 per call
    result = LLMAgent(c, model).run(make_env())
    assert result.status == "cost_limit" and result.totals["model_calls"] == 2
    assert result.totals["cost_usd"] == pytest.approx(2.0)


def test_consecutive_model_errors_end_the_run(make_env):
    bad = ModelError("HTTP 400: bad")
    model = CountingModel([VIEW, bad, VIEW, bad, bad, bad])
    result = LLMAgent(cfg(retry={"max_consecutive_errors": 3}), model).run(make_env())
    assert result.status == "model_error" and result.steps == 2


@pytest.mark.parametrize(
    "exc, status", [(RuntimeError("boom"), "crashed"), (KeyboardInterrupt(), "interrupted")]
)
def test_crash_and_ctrl_c_leave_a_valid_trajectory(make_env, exc, status):
    env = make_env()
    agent = LLMAgent(cfg(), CountingModel([VIEW, exc]))
    with pytest.raises(type(exc)):
        agent.run(env)
    env.close()
    recs = read_log(env.run_dir / "trajectory.jsonl")
    assert [r["type"] for r in recs][-2:] == ["agent_end", "end"]
    assert recs[-2]["status"] == status and recs[-1]["status"] == "abandoned"
    assert ("agent_crash" in [r["type"] for r in recs]) == (status == "crashed")


def test_history_is_trimmed_to_the_context_window(make_env):
    c = cfg(
        context={"context_window": 1800, "keep_last": 2},
        model={"provider": "scripted", "max_output_tokens": 100},
    )
    model = CountingModel([VIEW] * 8 + [{"tool": "submit", "args": {}}])
    model.usage = Usage()  # no server counts: the budget stays in our own tokens
    notes = []
    result = LLMAgent(c, model, on_note=notes.append).run(make_env())
    assert result.status == "submitted"
    last = model.seen[-1]
    assert last[0]["role"] == "system" and "Research task" in last[1]["content"]
    elided = [m for m in last if "observation elided" in str(m.get("content"))]
    assert elided and all(m["role"] == "tool" for m in elided)
    assert "def guess" in last[-1]["content"]  # the newest observation is intact
    assert any(r.get("request", {}).get("elided") for r in records_of(result))
    assert any("elided" in n for n in notes)


def test_resume_replays_then_continues(make_env):
    first = LLMAgent(cfg(), ScriptedModel(PERFECT[:2])).run(make_env())
    assert first.status == "model_exhausted"
    model = ReplayModel.from_trajectory(first.run_dir, then=ScriptedModel(PERFECT[2:]))
    result = LLMAgent(cfg(), model).run(make_env())
    assert result.status == "submitted" and result.score == pytest.approx(100.0)
    recs = records_of(result)
    assert [r["replayed"] for r in recs if r["type"] == "model_call"] == [True, True, False, False]
    assert [r["tool"] for r in recs if r["type"] == "step"] == ["view", "edit", "test", "submit"]


def test_replay_of_a_baseline_agents_trajectory(make_env, tiny):
    base = run_episode(make_env(), BaselineAgent(tiny, "good"), seed=0)
    result = LLMAgent(cfg(), ReplayModel.from_trajectory(base.run_dir)).run(make_env())
    assert result.status == "submitted"
    assert result.score == pytest.approx(base.score) == pytest.approx(50.0)


def test_cli_runs_a_yaml_agent_and_resumes(tiny, tmp_path):
    runner = CliRunner()
    agent = tmp_path / "scripted.yaml"
    agent.write_text(
        yaml.safe_dump(
            {"name": "cli-scripted", "model": {"provider": "scripted", "script": PERFECT[:2]}}
        )
    )
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--final-seeds", "0"]
    r = runner.invoke(app, ["run", "--task", str(tiny.root), "--agent", str(agent), *common])
    assert r.exit_code == 0, r.output
    assert "step 2 edit " in r.output and "Agent exit status: model_exhausted" in r.output
    assert "mlsbench run --resume" in r.output
    (run_dir,) = runs.iterdir()
    rest = json.dumps(PERFECT[2:])
    r = runner.invoke(
        app,
        [
            "run",
            "--resume",
            str(run_dir),
            "--task",
            str(tiny.root),
            "--set",
            f"model.script={rest}",
            *common,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Agent exit status: submitted" in r.output
    assert "Final score: 100.0" in r.output and "vanilla" in r.output


def test_cli_bad_agent_file_is_a_clear_error(tiny, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {provider: openai, nme: gpt}\n")
    r = CliRunner().invoke(app, ["run", "--task", str(tiny.root), "--agent", str(bad)])
    assert r.exit_code == 2 and "model.nme: unknown field" in r.output


# --------------------------------------------------------------------------- not submitted
GOOD_EDIT, BAD_EDIT = PERFECT[1], {**PERFECT[1], "args": {**PERFECT[1]["args"], "text": "    1/0"}}


def test_an_agent_that_stops_is_scored_on_its_current_code(make_env):
    # tests `return x` (100 points), then breaks the code and runs out of replies: the final
    # evaluation is of the code as the agent left it (the broken one), not of its last test
    script = [GOOD_EDIT, {"tool": "test", "args": {}}, BAD_EDIT]
    agent = LLMAgent(cfg(), ScriptedModel(script), score_unsubmitted=True)
    result = agent.run(make_env())
    assert result.status == "model_exhausted" and not result.terminated
    assert result.score == pytest.approx(0.0) == result.reward
    recs = records_of(result)
    assert [r["type"] for r in recs][-3:] == ["not_submitted", "end", "agent_end"]
    assert recs[-3]["reason"] == "model_exhausted" and recs[-3]["type"] == "not_submitted"
    assert recs[-2]["status"] == "not_submitted" and recs[-2]["score"] == pytest.approx(0.0)
    assert result.final_info["not_submitted"] == "model_exhausted"
    # without the breaking edit the same agent is scored on the good code
    agent = LLMAgent(cfg(), ScriptedModel(script[:2]), score_unsubmitted=True)
    assert agent.run(make_env()).score == pytest.approx(100.0)


def test_a_crashed_loop_is_scored_on_its_current_code_and_not_raised(make_env):
    agent = LLMAgent(
        cfg(), CountingModel([GOOD_EDIT, RuntimeError("boom")]), score_unsubmitted=True
    )
    result = agent.run(make_env())
    assert result.status == "crashed" and result.score == pytest.approx(100.0)
    kinds = [r["type"] for r in records_of(result)]
    assert "agent_crash" in kinds and kinds[-2:] == ["end", "agent_end"]


def test_without_score_unsubmitted_a_stopped_episode_has_no_score(make_env):
    result = LLMAgent(cfg(), ScriptedModel([GOOD_EDIT])).run(make_env())
    assert result.status == "model_exhausted" and result.score is None


def test_opt_evolution_strategy_not_submitted_gets_the_final_evaluation(tmp_path):
    """The quickest shipped task, real sandbox and grader: an agent that only looks is scored
    on the scaffold's code, as status not_submitted."""
    from mlsbench_env.spec import load_task

    task = load_task("opt-evolution-strategy")
    env = ResearchEnv(task, runs_dir=str(tmp_path / "runs"), final_seeds=(0,))
    view = {"tool": "view", "args": {"path": task.regions[0].file}}
    try:
        result = LLMAgent(cfg(), ScriptedModel([view]), score_unsubmitted=True).run(env)
    finally:
        env.close()
    assert result.status == "model_exhausted" and result.score is not None
    info = result.final_info
    assert info["seeds"] == [0] and set(info["setting_scores"]) == {
        s.label for s in task.spec.settings
    }
    end = [r for r in records_of(result) if r["type"] == "end"]
    assert end[0]["status"] == "not_submitted" and end[0]["score"] == result.score


def test_cli_run_scores_an_unsubmitted_episode_unless_told_not_to(tiny, tmp_path):
    agent = tmp_path / "short.yaml"
    agent.write_text(
        yaml.safe_dump({"name": "short", "model": {"provider": "scripted", "script": [GOOD_EDIT]}})
    )
    common = ["run", "--task", str(tiny.root), "--agent", str(agent), "--final-seeds", "0"]
    r = CliRunner().invoke(app, [*common, "--runs-dir", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "Not submitted (agent exit status model_exhausted)" in r.output
    assert "Final score: 100.0" in r.output
    r = CliRunner().invoke(
        app, [*common, "--runs-dir", str(tmp_path / "b"), "--no-score-unsubmitted"]
    )
    assert r.exit_code == 0, r.output
    assert "Final score" not in r.output and "No final evaluation" in r.output


def test_a_budget_run_out_with_submit_on_truncation_scores_the_last_test(make_env):
    # the same rule as for an agent that stops: the last test's code, not the current code
    env = make_env(max_steps=3, submit_on_truncation=True)
    env.reset(seed=0)
    for action in (GOOD_EDIT, {"tool": "test", "args": {}}):
        assert not any(env.step(json.dumps(action))[2:4])
    obs, reward, terminated, truncated, info = env.step(json.dumps(BAD_EDIT))
    assert truncated and not terminated and "evaluating test 1." in obs
    assert info["score"] == pytest.approx(100.0) == reward
