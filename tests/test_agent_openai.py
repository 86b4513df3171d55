"""The OpenAI provider: the real `openai` SDK against a local server speaking Chat Completions,
playing whole episodes of a real (tiny) task."""

import json
from pathlib import Path

import pytest
from test_agent_fakes import (
    PERFECT,
    FakeServer,
    Reply,
    as_openai,
    error_reply,
    oa_reply,
    tiny_task_once,
)

from mlsbench_env.agent import LLMAgent, load_config, make_model
from mlsbench_env.agent.prompts import STYLES
from mlsbench_env.env import ResearchEnv
from mlsbench_env.env.log import read_log

pytest.importorskip("openai")

PRICES = {"input": 2.0, "cached_input": 0.5, "output": 8.0}


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


def config(url, retry=(), **model):
    return load_config(
        {
            "name": "fake-openai",
            "model": {"provider": "openai", "name": "fake-model", "base_url": url, **model},
            "retry": {"max_consecutive_errors": 2, **dict(retry)},
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


def tool_messages(request):
    return [m for m in request["messages"] if m["role"] == "tool"]


def test_episode_to_submitted_score_with_usage_and_cost(tiny, tmp_path):
    usages = [(1000 + 100 * i, 50 + i, 200) for i in range(len(PERFECT))]
    with FakeServer([as_openai(a, u) for a, u in zip(PERFECT, usages, strict=True)]) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "submitted"
    assert result.score == pytest.approx(100.0)
    assert result.vanilla_score == pytest.approx(100.0)
    # tokens and cost are the server's usage numbers
    t = result.totals
    assert t["model_calls"] == 4 and not t["estimated"]
    assert t["cached_input_tokens"] == 4 * 200
    assert t["input_tokens"] == sum(p - c for p, _, c in usages)
    assert t["output_tokens"] == sum(o for _, o, _ in usages)
    expected = sum(((p - c) * 2.0 + c * 0.5 + o * 8.0) / 1e6 for p, o, c in usages)
    assert t["cost_usd"] == pytest.approx(expected)
    calls = [r for r in records if r["type"] == "model_call"]
    assert [c["response"]["usage"]["output_tokens"] for c in calls] == [50, 51, 52, 53]
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(expected)
    assert all(c["latency_s"] >= 0 and c["attempts"] == 1 for c in calls)
    assert calls[0]["request"]["messages"] == 2 and calls[0]["request"]["est_tokens"] > 0
    assert records[-1]["type"] == "agent_end" and records[-1]["status"] == "submitted"
    assert records[-1]["totals"]["cost_usd"] == pytest.approx(expected)
    # the wire format the SDK sent
    first, second = srv.requests[0], srv.requests[1]
    assert srv.paths[0] == "/v1/chat/completions"
    assert first["model"] == "fake-model" and first["max_tokens"] == 4096
    assert [t["function"]["name"] for t in first["tools"]] == [
        "view",
        "edit",
        "undo",
        "shell",
        "test",
        "submit",
    ]
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert "Research task" in first["messages"][1]["content"]
    assert second["messages"][2]["tool_calls"][0]["id"] == "call_0_view"
    (obs,) = tool_messages(second)
    assert obs["tool_call_id"] == "call_0_view" and "def guess(x):" in obs["content"]


def test_parallel_tool_calls_run_in_order(tiny, tmp_path):
    view, edit, test, submit = PERFECT
    replies = [
        oa_reply(calls=[(view["tool"], view["args"]), (edit["tool"], edit["args"])]),
        oa_reply(calls=[(test["tool"], {}), (submit["tool"], {})]),
    ]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "submitted" and result.score == pytest.approx(100.0)
    assert [r["tool"] for r in records if r["type"] == "step"] == ["view", "edit", "test", "submit"]
    msgs = tool_messages(srv.requests[1])
    assert [m["tool_call_id"] for m in msgs] == ["call_0_view", "call_1_edit"]
    assert "Edit applied" in msgs[1]["content"]
    # the assistant turn is sent back with its tool calls and a string content: llama-cpp-python's
    # server answers HTTP 500 to a null one
    (turn,) = [m for m in srv.requests[1]["messages"] if m["role"] == "assistant"]
    assert turn["content"] == "" and len(turn["tool_calls"]) == 2
    assert srv.requests[0]["tool_choice"] == "auto"


def test_malformed_tool_calls_become_observations(tiny, tmp_path):
    replies = [
        oa_reply(calls=[("edit", '{"path": "guess.py", "action": ')]),  # cut-off JSON
        oa_reply(calls=[("frobnicate", {})]),  # no such tool
        oa_reply(calls=[("view", {"path": "guess.py", "colour": "red"})]),  # unknown argument
        oa_reply(calls=[("view", "[1, 2]")]),  # arguments not an object
        as_openai({"tool": "submit", "args": {}}),
    ]
    with FakeServer(replies) as srv:
        result, _ = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "submitted"
    last = [m["content"] for m in tool_messages(srv.requests[-1])]
    assert "not valid JSON" in last[0]
    assert "unknown tool 'frobnicate'" in last[1] and "view, edit" in last[1]
    assert "colour: unknown argument" in last[2]
    assert "must be an object" in last[3]


def test_text_mode_actions(tiny, tmp_path):
    fenced_view = 'Let me look first.\n```json\n{"tool": "view", "args": {"path": "guess.py"}}\n```'
    two = '```json\n{"tool": "test", "args": {}}\n```\nor\n```json\n{"tool": "submit"}\n```'
    replies = [
        oa_reply(fenced_view),
        oa_reply("I think I should test it."),
        oa_reply(two),
        oa_reply('{"tool": "submit", "args": {}}'),  # a bare JSON reply is accepted too
    ]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url, action_format="text"))
    assert result.status == "submitted"
    first = srv.requests[0]
    assert "tools" not in first
    assert "```json" in first["messages"][0]["content"]
    assert "- edit(path: string" in first["messages"][0]["content"]
    assert "def guess(x):" in srv.requests[1]["messages"][-1]["content"]
    assert "no action found" in srv.requests[2]["messages"][-1]["content"]
    assert "2 action blocks" in srv.requests[3]["messages"][-1]["content"]
    assert [r["type"] for r in records].count("format_error") == 2
    assert [r["tool"] for r in records if r["type"] == "step"] == ["view", "submit"]


def test_rate_limit_waits_retry_after_then_succeeds(tiny, tmp_path):
    # the SDK's own backoff would wait at most 0.5 s, then 1 s: longer gaps are retry-after's
    replies = [
        error_reply(429, "slow down", {"retry-after": "1"}, kind="rate_limit_error"),
        error_reply(429, "slow down", {"retry-after-ms": "1200"}, kind="rate_limit_error"),
        as_openai({"tool": "submit", "args": {}}),
    ]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "submitted" and len(srv.requests) == 3
    assert srv.retry_counts == ["0", "1", "2"]
    first, second = srv.gaps()
    assert 1.0 <= first < 3 and 1.2 <= second < 3
    (call,) = [r for r in records if r["type"] == "model_call"]
    assert call["attempts"] == 3


def test_server_errors_are_retried_with_backoff(tiny, tmp_path):
    replies = [error_reply(500), error_reply(503), as_openai({"tool": "submit", "args": {}})]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "submitted" and srv.retry_counts == ["0", "1", "2"]
    first, second = srv.gaps()
    assert 0.375 <= first and 0.75 <= second  # the SDK's 0.5 s * 2^k, less up to 25% jitter
    assert [r["attempts"] for r in records if r["type"] == "model_call"] == [3]


def test_max_attempts_caps_the_retries(tiny, tmp_path):
    replies = [error_reply(500), error_reply(500), as_openai({"tool": "submit", "args": {}})]
    with FakeServer(replies) as srv:
        cfg = config(srv.openai_url, retry={"max_attempts": 2})
        result, records = play(tiny, tmp_path, cfg)
    # two tries, a model error; the loop asks again and the third request succeeds
    assert result.status == "submitted" and srv.retry_counts == ["0", "1", "0"]
    (error,) = [r for r in records if r["type"] == "model_error"]
    assert "HTTP 500" in error["error"]


def test_timeout_is_retried(tiny, tmp_path):
    slow = as_openai({"tool": "view", "args": {}})
    slow.delay = 2.0
    replies = [slow, as_openai({"tool": "submit", "args": {}})]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url, timeout_s=0.5))
    assert result.status == "submitted"
    (call,) = [r for r in records if r["type"] == "model_call"]
    assert call["attempts"] == 2 and call["response"]["tool_calls"][0]["name"] == "submit"


def test_persistent_errors_end_the_run_with_a_valid_trajectory(tiny, tmp_path):
    replies = [error_reply(400, "bad request"), error_reply(401, "no key", kind="auth")]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "model_error" and len(srv.requests) == 2  # 4xx: not retried
    errors = [r for r in records if r["type"] == "model_error"]
    assert "HTTP 400" in errors[0]["error"] and "HTTP 401" in errors[1]["error"]
    assert records[-1]["type"] == "end" and records[-1]["status"] == "abandoned"
    assert records[-2] == {
        "type": "agent_end",
        "status": "model_error",
        "totals": records[-2]["totals"],
    }


def test_missing_usage_is_estimated_with_tiktoken(tiny, tmp_path):
    reply = as_openai({"tool": "submit", "args": {}})
    del reply.body["usage"]
    with FakeServer([reply]) as srv:
        result, _ = play(tiny, tmp_path, config(srv.openai_url))
    assert result.totals["estimated"] and result.totals["input_tokens"] > 100


def test_api_openai_sends_max_completion_tokens_and_needs_a_key(monkeypatch):
    from mlsbench_env.agent.config import ModelConfig
    from mlsbench_env.agent.openai_chat import OpenAIChat
    from mlsbench_env.errors import MLSBenchError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MLSBenchError, match="set OPENAI_API_KEY"):
        OpenAIChat(ModelConfig(provider="openai", name="gpt-5"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    m = OpenAIChat(ModelConfig(provider="openai", name="gpt-5", params={"reasoning_effort": "low"}))
    req = m.request([{"role": "user", "content": "hi"}], [])
    assert req["max_completion_tokens"] == 4096 and "max_tokens" not in req
    assert req["reasoning_effort"] == "low" and "tools" not in req


def test_reply_body_that_is_not_json_is_a_model_error(tiny, tmp_path):
    replies = [Reply("<html>bad gateway</html>", 502), as_openai({"tool": "submit", "args": {}})]
    with FakeServer(replies) as srv:
        result, _ = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "submitted" and json.dumps(srv.requests[1]).count("submit") >= 1


@pytest.mark.slow
def test_opt_evolution_strategy_episode_through_openai(tmp_path):
    from test_agent_fakes import first_task_plan

    task, actions = first_task_plan()
    with FakeServer([as_openai(a, (2000, 100, 0)) for a in actions]) as srv:
        result, records = play(task, tmp_path, config(srv.openai_url))
    assert result.status == "submitted", records[-3:]
    assert result.score is not None and result.score > 20
    assert result.totals["model_calls"] == len(actions) == len(srv.requests)
    assert result.totals["cost_usd"] == pytest.approx(len(actions) * (2000 * 2.0 + 100 * 8.0) / 1e6)


# --------------------------------------------------------------------------- real servers' ways
LLAMA_CPP_PYTHON = (
    "This model's maximum context length is 6000 tokens. However, you requested {p} tokens "
    "({p} in the messages, 0 in the completion). Please reduce the length of the messages or "
    "completion."
)
LLAMA_SERVER = "request ({p} tokens) exceeds the available context size (6000 tokens)"
BIG = {"tool": "shell", "args": {"command": "python -c \"print('x ' * 1500)\""}}  # ~1500 tokens


def windowed(url, **context):
    cfg = config(url)
    return cfg.model_copy(update={"context": cfg.context.model_copy(update=context)})


@pytest.mark.parametrize("message", [LLAMA_CPP_PYTHON, LLAMA_SERVER])
def test_a_length_refusal_trims_harder_and_resends(tiny, tmp_path, message):
    # the config believes in a 128k window; the server has 6000 and counts 1.5x our tokens
    plan = [BIG, BIG, *PERFECT[1:3]]
    refusal = error_reply(400, message.format(p=7200), kind="invalid_request_error")
    replies = [as_openai(a) for a in plan] + [refusal, as_openai(PERFECT[3])]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url))
    assert result.status == "submitted" and result.score == pytest.approx(100.0)
    assert not [r for r in records if r["type"] == "model_error"]
    (refused,) = [r for r in records if r["type"] == "context_refused"]
    assert refused["server"] == {"window": 6000, "prompt_tokens": 7200}
    calls = [r for r in records if r["type"] == "model_call"]
    assert [c["context_refusals"] for c in calls] == [0, 0, 0, 0, 1]
    sent = calls[-1]["request"]
    assert sent["window"] == 6000 and sent["elided"] == 1
    assert sent["ratio"] == pytest.approx(7200 / refused["sent"]["est_tokens"] * 1.02, rel=1e-3)
    # the resent request, counted the server's way, fits the server's window with its reply
    assert sent["est_tokens"] * sent["ratio"] + sent["max_output_tokens"] <= 6000
    request = json.dumps(srv.requests[-1])
    assert request.count("observation elided") == 1 and "Return a number" in request
    assert srv.requests[-1]["max_tokens"] == sent["max_output_tokens"] < 4096


def test_reported_prompt_tokens_scale_the_budget(tiny, tmp_path):
    # the server counts 3000 tokens for our first request (about 2x our count): with that ratio
    # the next request (task prompt + a 1500-token output) is over a 6000 window and is cut
    first = as_openai(BIG, usage=(3000, 10, 0))
    with FakeServer([first, as_openai(PERFECT[3])]) as srv:
        result, records = play(tiny, tmp_path, windowed(srv.openai_url, context_window=6000))
    assert result.status == "submitted"
    calls = [r for r in records if r["type"] == "model_call"]
    sent = calls[1]["request"]
    assert sent["ratio"] == pytest.approx(3000 / calls[0]["request"]["est_tokens"], rel=1e-3)
    assert sent["est_tokens"] * sent["ratio"] + sent["max_output_tokens"] <= 6000
    assert "output truncated" in srv.requests[1]["messages"][-1]["content"]


TEXT_FORMAT_NOTE = "No action was run"


def test_format_errors_are_capped_and_only_the_latest_reminder_stays(tiny, tmp_path):
    view = "Let me look.\n```json\n" + json.dumps(PERFECT[0]) + "\n```"
    replies = [oa_reply(f"thinking {i}") for i in (1, 2)] + [oa_reply(view)]
    replies += [oa_reply(f"rambling {i}") for i in (3, 4, 5)]
    with FakeServer(replies) as srv:
        result, records = play(tiny, tmp_path, config(srv.openai_url, action_format="text"))
    assert result.status == "format_errors" and len(srv.requests) == 6
    assert result.steps == 1 and result.totals["model_calls"] == 6

    def context(i):
        return json.dumps(srv.requests[i]["messages"])

    assert [context(i).count(TEXT_FORMAT_NOTE) for i in range(6)] == [0, 1, 1, 0, 1, 1]
    assert "thinking 2" in context(2) and "thinking 1" not in context(2)
    assert "rambling 4" in context(5) and "rambling 3" not in context(5)
    errors = [r["in_a_row"] for r in records if r["type"] == "format_error"]
    assert errors == [1, 2, 1, 2, 3]
    assert records[-2]["type"] == "agent_end" and records[-2]["status"] == "format_errors"


@pytest.mark.parametrize("style", ["sci", "eng"])
def test_the_shipped_config_sends_the_chosen_style_as_the_system_message(tiny, tmp_path, style):
    shipped = Path(__file__).parents[1] / "agents" / "openai.yaml"
    with FakeServer([as_openai(a) for a in PERFECT]) as srv:
        cfg = load_config(shipped, [f"prompts.style={style}", f"model.base_url={srv.openai_url}"])
        result, records = play(tiny, tmp_path, cfg)
    assert result.status == "submitted"
    system = srv.requests[0]["messages"][0]
    assert system["role"] == "system"
    assert system["content"].strip() == STYLES[style]
    other = STYLES["eng" if style == "sci" else "sci"]
    assert other not in system["content"]
    # the trajectory's config says which prompt the run had
    (agent,) = [r for r in records if r["type"] == "agent"]
    assert agent["config"]["prompts"]["style"] == style
