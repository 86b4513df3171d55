"""Export of real episodes to fine-tuning formats, round-tripped through `datasets`: an LLM agent
(the real `openai` SDK against a local fake server that returns token ids and logprobs, as
vLLM does) and scripted baseline agents, on a real (tiny) task."""

import json

import pytest
from test_agent_fakes import PERFECT, FakeServer, as_openai, tiny_task_once
from typer.testing import CliRunner

from mlsbench_env.agent import LLMAgent, load_config, make_model
from mlsbench_env.analysis.export import Filters, export
from mlsbench_env.analysis.trajectories import load_episode
from mlsbench_env.cli import app
from mlsbench_env.env import ResearchEnv
from mlsbench_env.env.log import read_log
from mlsbench_env.episode import BaselineAgent, run_episode

datasets = pytest.importorskip("datasets")
pytest.importorskip("openai")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


def traced_replies():
    """PERFECT as Chat Completions replies carrying vLLM-style traces; each call's prompt ids
    extend the previous call's prompt + completion, as a consistent chat template makes them."""
    replies, seq, turns = [], [], []
    for k, action in enumerate(PERFECT):
        prompt = seq + [1000 + k] * (k + 2)
        completion = [10 * k + 1, 10 * k + 2, 10 * k + 3]
        logprobs = [-0.5 * (k + 1), -0.25, -0.125]
        reply = as_openai(action)
        choice = reply.body["choices"][0]
        choice["token_ids"] = completion
        choice["logprobs"] = {
            "content": [
                {"token": f"token_id:{t}", "logprob": lp, "bytes": None, "top_logprobs": []}
                for t, lp in zip(completion, logprobs, strict=True)
            ]
        }
        reply.body["prompt_token_ids"] = prompt
        replies.append(reply)
        turns.append((prompt, completion, logprobs))
        seq = prompt + completion
    return replies, turns


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory):
    """A traced LLM episode and two baseline episodes (scores 50 and 0) in one runs folder."""
    root = tmp_path_factory.mktemp("export-runs")
    opts = {"runs_dir": str(root / "runs"), "work_dir": str(root / "eps"), "final_seeds": (0,)}
    replies, turns = traced_replies()
    with FakeServer(replies) as srv:
        cfg = load_config(
            {
                "name": "traced",
                "model": {
                    "provider": "openai",
                    "name": "fake-model",
                    "base_url": srv.openai_url,
                    "params": {"logprobs": True, "extra_body": {"return_token_ids": True}},
                },
            }
        )
        env = ResearchEnv(tiny, **opts)
        try:
            llm = LLMAgent(cfg, make_model(cfg.model, cfg.retry)).run(env, seed=0)
        finally:
            env.close()
        sent = srv.requests
    for name in ("good", "default"):
        env = ResearchEnv(tiny, **opts, agent_name=f"baseline-{name}")
        try:
            run_episode(env, BaselineAgent(tiny, name), seed=0)
        finally:
            env.close()
    return {"root": root / "runs", "llm": llm, "turns": turns, "sent": sent}


def test_token_traces_are_recorded_per_model_call(runs):
    assert runs["sent"][0]["logprobs"] is True and runs["sent"][0]["return_token_ids"] is True
    records = read_log(f"{runs['llm'].run_dir}/trajectory.jsonl")
    calls = [r for r in records if r["type"] == "model_call"]
    for call, (prompt, completion, logprobs) in zip(calls, runs["turns"], strict=True):
        trace = call["response"]["trace"]
        assert trace["prompt_token_ids"] == prompt
        assert trace["completion_token_ids"] == completion
        assert trace["completion_logprobs"] == logprobs


def test_chat_jsonl_round_trips_through_datasets_with_tokens(runs, tmp_path):
    result = export([runs["root"]], tmp_path / "out", "chat-jsonl")
    assert len(result.episodes) == 3 and not result.skipped
    ds = datasets.load_dataset("json", data_files=str(result.data_file), split="train")
    assert ds.num_rows == 3
    row = next(r for r in ds if r["agent"] == "traced")
    assert row["reward"] == pytest.approx(100.0) and row["status"] == "submitted"
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user"] + ["assistant", "tool"] * len(PERFECT)
    for call_msg, result_msg in zip(row["messages"][2::2], row["messages"][3::2], strict=True):
        assert call_msg["tool_calls"][0]["id"] == result_msg["tool_call_id"]
    assert [m["function"]["name"] for m in row["tools"]] == [
        "view",
        "edit",
        "undo",
        "shell",
        "test",
        "submit",
    ]
    assert row["messages"][2]["token_ids"] == runs["turns"][0][1]
    steps = row["steps"]
    assert [s["tool"] for s in steps] == [a["tool"] for a in PERFECT]
    assert json.loads(steps[-1]["info"])["score"] == pytest.approx(100.0)
    # one token sequence for the episode: context tokens masked out, completions trained on
    tokens, (last_prompt, last_completion, _) = row["tokens"], runs["turns"][-1]
    assert tokens["input_ids"] == last_prompt + last_completion
    expected_mask = []
    for k, (_, completion, _) in enumerate(runs["turns"]):
        expected_mask += [0] * (k + 2) + [1] * len(completion)
    assert tokens["loss_mask"] == expected_mask
    trained = [lp for lp, m in zip(tokens["logprobs"], tokens["loss_mask"], strict=True) if m]
    assert trained == [lp for _, _, lps in runs["turns"] for lp in lps]
    # baseline episodes have no traces: no token record
    assert all(r["tokens"] is None for r in ds if r["agent"] != "traced")


def test_openai_tools_format_is_exactly_openais(runs, tmp_path):
    result = export([runs["root"]], tmp_path / "out", "openai-tools")
    lines = [json.loads(x) for x in result.data_file.read_text().splitlines()]
    assert all(set(x) == {"messages", "tools", "parallel_tool_calls"} for x in lines)
    for x in lines:
        for m in x["messages"]:
            assert set(m) <= {"role", "content", "tool_calls", "tool_call_id"}
    ds = datasets.load_dataset("json", data_files=str(result.data_file), split="train")
    assert ds.num_rows == 3


def test_sharegpt_alternates_as_llama_factory_expects(runs, tmp_path):
    result = export([runs["root"]], tmp_path / "out", "sharegpt")
    ds = datasets.load_dataset("json", data_files=str(result.data_file), split="train")
    for row in ds:
        turns = [t["from"] for t in row["conversations"]]
        assert all(t in ("human", "observation") for t in turns[0::2]), turns
        assert all(t in ("gpt", "function_call") for t in turns[1::2]), turns
        assert json.loads(row["tools"])[0]["name"] == "view"
    traced = next(r for r in ds if r["system"])
    call = json.loads(traced["conversations"][1]["value"])
    assert call == {"name": "view", "arguments": {"path": "guess.py"}}


def test_filters_card_and_cli(runs, tmp_path):
    out = tmp_path / "cli-out"
    res = CliRunner().invoke(
        app,
        ["export", str(runs["root"]), "--format", "chat-jsonl", "-o", str(out)]
        + ["--min-score", "40", "--redact-final"],
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["agent"] for r in rows) == ["baseline-good", "traced"]
    for r in rows:  # the final evaluation (it names the hidden setting) is redacted
        assert r["messages"][-1]["content"].startswith("Episode over (submitted). Final score")
        assert "three" not in json.dumps(r["messages"]) and "three" not in r["steps"][-1]["info"]
    card = (out / "README.md").read_text()
    assert "data_files: episodes.jsonl" in card and "Episodes: 2" in card
    assert "--min-score 40" in card and "| tiny-guess | 2 |" in card
    only = export([runs["root"]], tmp_path / "o2", filters=Filters(agents=("baseline-default",)))
    assert [e.score for e in only.episodes] == [pytest.approx(0.0)]
    res = CliRunner().invoke(app, ["export", str(runs["root"]), "--format", "csv"])
    assert res.exit_code == 2 and "unknown export format 'csv'" in res.output


def test_unfinished_episodes_are_left_out_unless_asked(tiny, tmp_path):
    env = ResearchEnv(tiny, runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps"))
    env.reset(seed=0)
    env.step(json.dumps(PERFECT[0]))
    env.close()  # abandoned mid-episode
    res = export([tmp_path / "runs"], tmp_path / "out")
    assert not res.episodes and res.skipped["status abandoned"] == 1
    res = export([tmp_path / "runs"], tmp_path / "out", filters=Filters(statuses=()))
    assert len(res.episodes) == 1 and load_episode(env.run_dir).status == "abandoned"
