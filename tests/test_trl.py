"""The TRL environment_factory class: schemas through transformers' own reader, rollouts."""

import asyncio
import inspect
from pathlib import Path

import pytest
from test_agent_fakes import PERFECT, tiny_task_once

pytest.importorskip("trl", reason="needs the [trl] extra")
from transformers.utils import get_json_schema  # noqa: E402

from mlsbench_env.env import ResearchEnv  # noqa: E402
from mlsbench_env.integrations.trl_env import trl_environment  # noqa: E402
from mlsbench_env.tools import tool_schemas  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


def tool_methods(cls):
    """The methods GRPOTrainer exposes as tools: public functions but reset and get_reward."""
    return {
        n: f
        for n, f in inspect.getmembers(cls, predicate=inspect.isfunction)
        if n not in ("reset", "get_reward") and not n.startswith("_")
    }


@pytest.mark.parametrize("options", [{}, {"max_jobs": 2}, {"tools": ["view", "shell"]}])
def test_transformers_reads_every_tool_as_our_schema(options):
    tools = options.pop("tools", None)
    Env = trl_environment("opt-evolution-strategy", tools=tools, **options)
    ours = {
        s["name"]: s
        for s in tool_schemas(
            ResearchEnv("opt-evolution-strategy", tools=tools, **options).tool_names
        )
    }
    methods = tool_methods(Env)
    assert set(methods) == set(ours)
    for name, method in methods.items():
        assert inspect.iscoroutinefunction(method)  # TRL gathers async tools concurrently
        schema = get_json_schema(method)["function"]
        assert schema["name"] == name
        assert schema["description"] == ours[name]["description"]
        params = ours[name]["parameters"]
        assert set(schema["parameters"]["properties"]) == set(params["properties"])
        assert set(schema["parameters"].get("required", [])) == set(params.get("required", []))


def test_a_scripted_rollout_reaches_the_reward(tiny, tmp_path):
    Env = trl_environment(
        final_seeds=[0], runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps")
    )
    env = Env()  # TRL makes instances with no arguments
    prompt = env.reset(
        prompt=[{"role": "user", "content": "Solve it."}], task=str(tiny.root), seed=0
    )
    assert "Research task" in prompt

    async def rollout():
        out = [await env.view(path="guess.py")]
        out.append(await env.edit(path="guess.py", action="replace", start=5, end=5))  # no text
        out.append(await env.edit(**PERFECT[1]["args"]))
        out.append(await env.test())
        out.append(await env.submit())
        with pytest.raises(ValueError, match="episode is over"):
            await env.view(path=".")
        return out

    out = asyncio.run(rollout())
    assert "bad arguments for edit: text: Field required" in out[1]  # the episode's answer
    assert "Final score: 100" in out[-1]
    assert env.get_reward() == pytest.approx(1.0)
    assert env.metadata["setting_scores"] == {"one": 100.0, "two": 100.0, "three": 100.0}
    assert env.metadata["tamper_report"] == [] and "isolation" in env.metadata
    assert not any((tmp_path / "eps").glob("ep-*"))


def test_rollouts_cut_by_the_trainer_leave_no_sandbox_on_a_server(tiny, tmp_path, monkeypatch):
    """Backed by `mlsbench serve` (RemoteEnv); a reused instance closes its last episode."""
    pytest.importorskip("uvicorn")
    from test_server import Server, config

    monkeypatch.setenv("MLSBENCH_SLOTS_DIR", str(tmp_path / "slots"))
    with Server(config(tiny, tmp_path)) as server:
        env = trl_environment(tiny.id, url=server.url)()
        env.reset(seed=0)
        asyncio.run(env.view(path="guess.py"))
        env.reset(seed=1)  # the pooled instance starts its next rollout: the first one is closed
        assert len(server.state.sessions) == 1
        asyncio.run(env.view(path="guess.py"))
        assert env.get_reward() == 0.0  # cut before submit: no score, and the episode ends
        assert server.state.sessions == {} and server.state.pool.stats.live == 0
    assert not any(Path(tmp_path / "eps").glob("ep-*"))


def test_grpo_trainer_plays_episodes_through_the_class(tiny, tmp_path, monkeypatch):
    """TRL's own GRPOTrainer (one step on CPU) drives the class: it renders the tools, parses
    the model's tool calls, calls our async tools and takes get_reward() as a reward column.
    The model is a tiny random Qwen3 (no download) whose generate replies with the next
    scripted tool call, the way a fake LLM server would."""
    import json

    import torch
    from datasets import Dataset
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_chat_template

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    # a byte-level tokenizer built in memory, with Qwen3's chat template (TRL's copy)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bpe = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    specials = ["<|im_start|>", "<tool_call>", "</tool_call>", "<think>", "</think>"]
    tok.add_special_tokens({"additional_special_tokens": [*specials, "<tool_response>"]})
    tok.chat_template = qwen3_chat_template

    class Scripted(Qwen3ForCausalLM):
        def generate(self, input_ids, attention_mask=None, generation_config=None, **kwargs):
            rows = []
            for ids in input_ids:
                n = tok.decode(ids).count("<tool_response>")  # tool results so far
                if n < len(PERFECT):
                    call = {"name": PERFECT[n]["tool"], "arguments": PERFECT[n]["args"]}
                    text = f"<tool_call>\n{json.dumps(call)}\n</tool_call><|im_end|>"
                else:
                    text = "Done.<|im_end|>"
                new = torch.tensor(tok.encode(text, add_special_tokens=False))
                rows.append(torch.cat([ids, new]))
            width = max(len(r) for r in rows)
            pad = tok.pad_token_id
            return torch.stack([torch.cat([r, r.new_full((width - len(r),), pad)]) for r in rows])

    torch.manual_seed(0)
    model = Scripted(
        Qwen3Config(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16,
            max_position_embeddings=8192, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )  # fmt: skip
    Env = trl_environment(
        str(tiny.root),
        final_seeds=[0],
        runs_dir=str(tmp_path / "runs"),
        work_dir=str(tmp_path / "eps"),
    )
    rows = [{"prompt": [{"role": "user", "content": "Solve it."}], "seed": s} for s in range(2)]
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        num_generations=2,
        per_device_train_batch_size=2,
        max_completion_length=3000,
        max_tool_calling_iterations=6,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tok,
        train_dataset=Dataset.from_list(rows),
        environment_factory=Env,
        args=args,
    )
    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged["tools/call_frequency"] == 4 and logged["tools/failure_frequency"] == 0
    assert logged["rewards/MlsbenchEnv/mean"] == pytest.approx(1.0)  # score 100 / 100
    assert not any((tmp_path / "eps").glob("ep-*"))
    assert len(list((tmp_path / "runs").glob("*/trajectory.jsonl"))) == 2
