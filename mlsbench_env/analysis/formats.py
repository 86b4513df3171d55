"""The dataset formats of ``mlsbench export``, one function per format from an ``Episode`` to
one JSON line: ``chat-jsonl`` (OpenAI chat messages with the episode's rewards, steps and token
traces), ``openai-tools`` (exactly OpenAI's fine-tuning format) and ``sharegpt`` (LLaMA-Factory).
"""

from __future__ import annotations

import json

from mlsbench_env.agent.openai_chat import openai_message
from mlsbench_env.analysis.trajectories import Episode


def _tools(ep: Episode) -> list[dict]:
    from mlsbench_env.tools import openai_tools, tool_schemas

    return openai_tools(tool_schemas(ep.tool_names)) if ep.tool_names else []


def _oa_message(m: dict, extras: bool) -> dict:
    out = openai_message(m)
    trace = m.get("trace") or {}
    if m["role"] == "assistant" and extras and trace.get("completion_token_ids"):
        out["token_ids"] = trace["completion_token_ids"]
        if trace.get("completion_logprobs"):
            out["logprobs"] = trace["completion_logprobs"]
    return out


def token_record(ep: Episode) -> dict | None:
    """One token sequence for the whole episode: each model call's prompt ids must extend the
    sequence so far (then its new tail is context, loss 0) followed by its completion (loss 1).
    None when some call has no trace, or a prompt does not extend the sequence (a chat template
    that re-renders earlier turns differently: use the per-message token ids then)."""
    turns = [m.get("trace") or {} for m in ep.messages if m["role"] == "assistant"]
    if not turns or not all(t.get("completion_token_ids") for t in turns):
        return None
    if not all(t.get("prompt_token_ids") for t in turns):
        return None
    ids: list[int] = []
    mask: list[int] = []
    lps: list[float] = []
    for t in turns:
        prompt, out = t["prompt_token_ids"], t["completion_token_ids"]
        if prompt[: len(ids)] != ids:
            return None
        new = prompt[len(ids) :]
        ids += new + out
        mask += [0] * len(new) + [1] * len(out)
        lp = t.get("completion_logprobs") or [0.0] * len(out)
        lps += [0.0] * len(new) + [float(x) for x in lp]
    return {"input_ids": ids, "loss_mask": mask, "logprobs": lps}


def _meta(ep: Episode) -> dict:
    h = ep.header
    end: dict = next((r for r in reversed(ep.records) if r.get("type") == "end"), {})
    return {
        "task": ep.task,
        "task_version": h.get("task_version"),
        "agent": ep.agent,
        "model": ep.model,
        "seed": h.get("seed"),
        "status": ep.status,
        "reward": ep.reward,
        "return": sum(s["reward"] for s in ep.steps),
        "score": ep.score,
        "vanilla_score": end.get("vanilla_score"),
        "num_steps": len(ep.steps),
        "tests_used": end.get("tests_used"),
        "tamper_events": len(end.get("tamper_report") or []),
        "run_dir": ep.run_dir,
        "branch_of": ep.branch_of,
    }


def to_chat(ep: Episode) -> dict:
    return {
        "messages": [_oa_message(m, extras=True) for m in ep.messages],
        "tools": _tools(ep),
        **_meta(ep),
        "steps": [{**s, "info": json.dumps(s["info"], default=str)} for s in ep.steps],
        "tokens": token_record(ep),
    }


def to_openai(ep: Episode) -> dict:
    return {
        "messages": [_oa_message(m, extras=False) for m in ep.messages],
        "tools": _tools(ep),
        "parallel_tool_calls": False,
    }


def to_sharegpt(ep: Episode) -> dict:
    conv: list[dict] = []
    system = ""
    for m in ep.messages:
        role = m["role"]
        if role == "system":
            system = m["content"]
        elif role == "user":
            conv.append({"from": "human", "value": m["content"]})
        elif role == "tool":
            if conv and conv[-1]["from"] == "observation":  # several calls in one reply
                conv[-1]["value"] += "\n\n" + m["content"]
            else:
                conv.append({"from": "observation", "value": m["content"]})
        elif m.get("tool_calls"):
            calls = [
                {"name": c["name"], "arguments": _loads(c["arguments"])} for c in m["tool_calls"]
            ]
            value = json.dumps(calls[0] if len(calls) == 1 else calls)
            conv.append({"from": "function_call", "value": value})
        else:
            conv.append({"from": "gpt", "value": m["content"]})
    return {
        "conversations": conv,
        "system": system,
        "tools": json.dumps([t["function"] for t in _tools(ep)]),
        "reward": ep.reward,
        "score": ep.score,
        "task": ep.task,
    }


def _loads(s: str):
    try:
        return json.loads(s) if s else {}
    except json.JSONDecodeError:
        return s


WRITERS = {"chat-jsonl": to_chat, "openai-tools": to_openai, "sharegpt": to_sharegpt}


__all__ = ["WRITERS", "to_chat", "to_openai", "to_sharegpt", "token_record"]
