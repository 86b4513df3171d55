"""The one episode driver: run_episode (and the pool's arun_episode) with agents that implement
only part of the protocol, make_agent, and an LLM agent's queue of several tool calls."""

import asyncio
import json

import pytest
import yaml
from test_agent_fakes import PERFECT, tiny_task_once

from mlsbench_env.agent import (
    LLMAgent,
    ModelResponse,
    ScriptedModel,
    ToolCall,
    load_config,
    make_agent,
)
from mlsbench_env.env.log import read_log
from mlsbench_env.episode import BaselineAgent, run_episode
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.scale.pool import EnvPool, arun_episode

GOOD_EDIT, TEST, SUBMIT = PERFECT[1], PERFECT[2], PERFECT[3]


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.fixture
def tiny_env(make_env, tiny):
    """Envs of the tiny task (conftest's make_env closes them), final evaluation on seed 0."""
    return lambda **options: make_env(tiny, final_seeds=(0,), **options)


class ActOnly:
    """The least an agent needs: a name and act (None: it stops)."""

    name = "act-only"

    def __init__(self, actions):
        self.actions = list(actions)

    def act(self, observation, info):
        return self.actions.pop(0) if self.actions else None


def kinds(outcome):
    return [r["type"] for r in read_log(f"{outcome.run_dir}/trajectory.jsonl")]


def test_an_act_only_agent_that_stops(tiny_env):
    out = run_episode(tiny_env(), ActOnly([GOOD_EDIT]), seed=0)
    assert out.status == "stopped" and out.steps == 1 and out.score is None
    assert out.totals is None and not (out.terminated or out.truncated)
    assert kinds(out) == ["header", "reset", "step"]  # no agent records: it has no totals


def test_an_unsubmitted_episode_is_scored_on_request(tiny_env):
    out = run_episode(tiny_env(), ActOnly([GOOD_EDIT]), seed=0, score_unsubmitted=True)
    assert out.status == "stopped" and out.score == pytest.approx(100.0)
    assert out.final_info["not_submitted"] == "stopped"
    assert kinds(out)[-2:] == ["not_submitted", "end"]


def test_a_baseline_episode_writes_only_the_envs_records(tiny_env, tiny):
    out = run_episode(tiny_env(), BaselineAgent(tiny, "good"), seed=0)
    assert out.status == "submitted" and out.terminated and out.totals is None
    assert kinds(out) == ["header", "reset", "step", "step", "step", "end"]


def test_several_tool_calls_in_one_reply_are_queued(tiny_env):
    class TwoAtOnce:
        name = "two-at-once"

        def __init__(self):
            self.calls = 0

        def query(self, messages, tools, max_output_tokens=None):
            self.calls += 1
            plan = [[GOOD_EDIT, TEST], [SUBMIT]][self.calls - 1]
            calls = tuple(
                ToolCall(id=f"c{self.calls}{i}", name=a["tool"], arguments=json.dumps(a["args"]))
                for i, a in enumerate(plan)
            )
            return ModelResponse(text="", tool_calls=calls)

    model = TwoAtOnce()
    cfg = load_config({"name": "t", "model": {"provider": "scripted"}})
    out = LLMAgent(cfg, model).run(tiny_env())
    assert out.status == "submitted" and out.score == pytest.approx(100.0)
    assert model.calls == 2 and out.steps == 3 and out.totals["model_calls"] == 2
    k = kinds(out)
    assert k[k.index("model_call") :].count("step") == 3
    assert k[2:7] == ["agent", "model_call", "step", "step", "model_call"]


def test_make_agent(tiny, tmp_path):
    agent = make_agent("baseline:strongest", tiny)
    assert isinstance(agent, BaselineAgent) and agent.name == "baseline-good"
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump({"name": "y", "model": {"provider": "scripted"}}))
    agent = make_agent(str(path), tiny, overrides=["name=z"], score_unsubmitted=True)
    assert isinstance(agent, LLMAgent) and agent.name == "z" and agent.score_unsubmitted
    assert isinstance(agent.model, ScriptedModel)
    model = ScriptedModel([SUBMIT])
    assert make_agent(agent.config, tiny, model=model).model is model
    with pytest.raises(MLSBenchError, match="unknown agent 'nope'.*baseline:<name>"):
        make_agent("nope", tiny)
    with pytest.raises(MLSBenchError, match="takes no options"):
        make_agent("baseline:good", tiny, score_unsubmitted=True)


def test_the_pool_driver_writes_what_run_episode_writes(tiny_env, tiny, tmp_path):
    cfg = load_config({"name": "t", "model": {"provider": "scripted"}})
    sync = LLMAgent(cfg, ScriptedModel(PERFECT)).run(tiny_env())

    async def main():
        async with EnvPool(ramp_per_s=None) as pool:
            env = pool.make(
                tiny,
                runs_dir=str(tmp_path / "pool-runs"),
                work_dir=str(tmp_path / "pool-eps"),
                final_seeds=(0,),
            )
            return await arun_episode(env, LLMAgent(cfg, ScriptedModel(PERFECT)))

    pooled = asyncio.run(main())
    assert pooled.status == sync.status == "submitted"
    assert pooled.score == pytest.approx(sync.score) and pooled.totals == sync.totals
    assert kinds(pooled) == kinds(sync)
    assert kinds(sync)[-1] == "agent_end"
