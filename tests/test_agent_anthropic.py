"""The Anthropic provider: the real `anthropic` SDK against a local server speaking the Messages
API, playing whole episodes of a real (tiny) task."""

import pytest
from test_agent_fakes import (
    PERFECT,
    FakeServer,
    an_reply,
    as_anthropic,
    error_reply,
    tiny_task_once,
)

from mlsbench_env.agent import LLMAgent, load_config, make_model
from mlsbench_env.agent.prompts import SCI
from mlsbench_env.env import ResearchEnv
from mlsbench_env.env.log import read_log

pytest.importorskip("anthropic")

PRICES = {"input": 3.0, "cached_input": 0.3, "output": 15.0}
SUBMIT = {"tool": "submit", "args": {}}


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


def config(url, **model):
    return load_config(
        {
            "name": "fake-anthropic",
            "model": {"provider": "anthropic", "name": "fake-claude", "base_url": url, **model},
            "prices": PRICES,
        }
    )


def play(task, tmp_path, cfg):
    env = ResearchEnv(
        task, runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps"), final_seeds=(0,)
    )
    try:
        result = LLMAgent(cfg, make_model(cfg.model, cfg.retry)).run(env, seed=0)
    finally:
        env.close()
    return result, read_log(f"{result.run_dir}/trajectory.jsonl")


def test_episode_to_submitted_score_with_usage_and_cost(tiny, tmp_path):
    usages = [(500 + 10 * i, 40 + i, 1000 * i) for i in range(len(PERFECT))]
    replies = [as_anthropic(a, u) for a, u in zip(PERFECT, usages, strict=True)]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.anthropic_url))
    assert result.status == "submitted" and result.score == pytest.approx(100.0)
    t = result.totals
    assert t["input_tokens"] == sum(i for i, _, _ in usages)
    assert t["cached_input_tokens"] == sum(c for _, _, c in usages)
    assert t["output_tokens"] == sum(o for _, o, _ in usages)
    expected = sum((i * 3.0 + c * 0.3 + o * 15.0) / 1e6 for i, o, c in usages)
    assert t["cost_usd"] == pytest.approx(expected)
    assert records[-1]["type"] == "agent_end"
    assert records[-1]["totals"]["cost_usd"] == pytest.approx(expected)
    # the wire format the SDK sent
    first, second = srv.requests[0], srv.requests[1]
    assert srv.paths[0] == "/v1/messages"
    assert first["model"] == "fake-claude" and first["max_tokens"] == 4096
    assert first["system"].startswith(SCI)  # the default style: the built-in sci prompt
    assert [m["role"] for m in first["messages"]] == ["user"]
    assert [t["name"] for t in first["tools"]][:2] == ["view", "edit"]
    assert "input_schema" in first["tools"][0]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][1]["content"][0]["type"] == "tool_use"
    (result_block,) = second["messages"][2]["content"]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == "toolu_0_view"
    assert "def guess(x):" in result_block["content"]


def test_parallel_tool_use_results_share_one_user_turn(tiny, tmp_path):
    view, edit, test, submit = PERFECT
    replies = [
        an_reply("Two at once.", calls=[("view", view["args"]), ("edit", edit["args"])]),
        an_reply(calls=[("test", {}), ("submit", {})]),
    ]
    with FakeServer(replies) as srv:
        result, _ = play(tiny, tmp_path, config(srv.anthropic_url))
    assert result.status == "submitted" and result.score == pytest.approx(100.0)
    msgs = srv.requests[1]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert [b["type"] for b in msgs[1]["content"]] == ["text", "tool_use", "tool_use"]
    assert [b["tool_use_id"] for b in msgs[2]["content"]] == ["toolu_0_view", "toolu_1_edit"]


def test_bad_tool_input_and_no_tool_call_become_observations(tiny, tmp_path):
    replies = [
        an_reply(calls=[("edit", {"path": "guess.py", "action": "replace"})]),  # no text/lines
        an_reply("I am thinking about it."),  # no tool call and no action
        as_anthropic(SUBMIT),
    ]
    with FakeServer(replies) as srv:
        result, _ = play(tiny, tmp_path, config(srv.anthropic_url))
    assert result.status == "submitted"
    msgs = srv.requests[2]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert "text: Field required" in msgs[2]["content"][0]["content"]
    assert "no action found" in msgs[4]["content"][0]["text"]


def test_overloaded_and_rate_limited_are_retried(tiny, tmp_path):
    replies = [
        error_reply(529, "overloaded", kind="overloaded_error"),
        error_reply(429, "rate", {"retry-after": "1.5"}, kind="rate_limit_error"),
        as_anthropic(SUBMIT),
    ]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.anthropic_url))
    assert result.status == "submitted" and len(srv.requests) == 3
    first, second = srv.gaps()
    # the SDK's backoff (0.5 s less up to 25%), then the server's retry-after (its backoff: <= 1 s)
    assert 0.375 <= first < 1.5 and 1.5 <= second < 3.5
    assert [r["attempts"] for r in records if r["type"] == "model_call"] == [3]


def test_timeout_is_retried(tiny, tmp_path):
    slow = as_anthropic({"tool": "view", "args": {}})
    slow.delay = 2.0
    with FakeServer([slow, as_anthropic(SUBMIT)]) as srv:
        result, records = play(tiny, tmp_path, config(srv.anthropic_url, timeout_s=0.5))
    assert result.status == "submitted"
    assert [r["attempts"] for r in records if r["type"] == "model_call"] == [2]


def test_thinking_blocks_go_back_verbatim(tiny, tmp_path):
    thinking = {"type": "thinking", "thinking": "Look first.", "signature": "sig-123"}
    first = an_reply(calls=[("view", {"path": "guess.py"})])
    first.body["content"].insert(0, thinking)
    with FakeServer([first, as_anthropic(SUBMIT)]) as srv:
        result, _ = play(tiny, tmp_path, config(srv.anthropic_url))
    assert result.status == "submitted"
    assistant = srv.requests[1]["messages"][1]
    assert assistant["content"][0] == thinking
    assert assistant["content"][1]["type"] == "tool_use"


def test_text_mode_through_anthropic(tiny, tmp_path):
    replies = [an_reply('```json\n{"tool": "submit", "args": {}}\n```')]
    with FakeServer(replies) as srv:
        result, _ = play(tiny, tmp_path, config(srv.anthropic_url, action_format="text"))
    assert result.status == "submitted" and "tools" not in srv.requests[0]


@pytest.mark.slow
def test_opt_evolution_strategy_episode_through_anthropic(tmp_path):
    from test_agent_fakes import first_task_plan

    task, actions = first_task_plan()
    with FakeServer([as_anthropic(a, (2000, 100, 500)) for a in actions]) as srv:
        result, records = play(task, tmp_path, config(srv.anthropic_url))
    assert result.status == "submitted", records[-3:]
    assert result.score is not None and result.score > 20
    assert result.totals["model_calls"] == len(actions) == len(srv.requests)
    expected = len(actions) * (2000 * 3.0 + 500 * 0.3 + 100 * 15.0) / 1e6
    assert result.totals["cost_usd"] == pytest.approx(expected)
