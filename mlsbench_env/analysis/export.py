"""Episodes -> fine-tuning data: ``mlsbench export --format FORMAT RUN_DIR... -o OUT``.

Reads each run's ``trajectory.jsonl`` and writes ``OUT/episodes.jsonl`` (one episode a line) and
``OUT/README.md`` (a dataset card). Both load with ``datasets.load_dataset("json", ...)``.

Formats:

- ``chat-jsonl``: ``messages`` (system / user / assistant with ``tool_calls`` / tool), ``tools``
  (OpenAI function schemas), the episode's ``reward``, ``score``, ``status`` and metadata, and
  ``steps`` (per-step tool, ok, reward, flags and ``info`` as JSON text, so that rows of
  different tasks share one schema). Where the model server returned token ids and logprobs,
  assistant messages carry ``token_ids`` / ``logprobs`` and the episode a ``tokens`` record
  (``input_ids``, ``loss_mask`` = 1 on assistant tokens, ``logprobs``) for RL trainers.
- ``openai-tools``: exactly OpenAI's chat fine-tuning format with tools (``messages``,
  ``tools``, ``parallel_tool_calls``); nothing else on the line.
- ``sharegpt``: ``conversations`` of ``human`` / ``gpt`` / ``function_call`` / ``observation``
  turns with ``system`` and ``tools`` (JSON text), as LLaMA-Factory reads them, plus ``reward``
  and ``score``.

Conversations are rebuilt as the model saw them: an LLM agent's system and instance prompts
from its recorded config, its replies from the ``model_call`` records, every observation in
full. Episodes of other agents (baselines, RL policies, people) become tool calls per step. A
branch restored from a snapshot (``restore`` record) follows the snapshot's own history, so
each branch exports as a whole episode.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsbench_env.errors import MLSBenchError

FORMATS = ("chat-jsonl", "openai-tools", "sharegpt")
FINAL_INFO_KEYS = ("metrics", "setting_scores", "errors", "final_runs", "seed_scores")


@dataclass
class Filters:
    min_score: float | None = None
    tasks: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("submitted", "truncated")

    def keep(self, ep: Episode) -> str | None:
        """None to keep ``ep``, else why it is left out."""
        if self.statuses and ep.status not in self.statuses:
            return f"status {ep.status}"
        if self.tasks and ep.task not in self.tasks:
            return "task"
        if self.agents and ep.agent not in self.agents:
            return "agent"
        if self.min_score is not None and (ep.score is None or ep.score < self.min_score):
            return "score"
        return None


@dataclass
class Episode:
    run_dir: str
    header: dict
    records: list[dict]  # the linear history (branches resolved)
    task: str
    agent: str
    status: str
    reward: float
    score: float | None
    model: str | None = None
    messages: list[dict] = field(default_factory=list)  # neutral format (agent/models.py)
    tool_names: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    branch_of: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ reading
def _parse(data: bytes) -> list[dict]:
    out = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line of a killed run
    return out


def linear_history(path: Path, upto: int | None = None, depth: int = 0) -> list[dict]:
    """The records of a trajectory as one episode: a ``restore`` record replaces what came
    before it by the history of the snapshot it restored (a byte prefix of some trajectory)."""
    data = Path(path).read_bytes()
    out: list[dict] = []
    for rec in _parse(data if upto is None else data[:upto]):
        if rec.get("type") == "restore":
            src, off = rec.get("from_log"), rec.get("from_offset")
            if src and off is not None and Path(src).is_file() and depth < 100:
                out = linear_history(Path(src), off, depth + 1)
            else:  # the snapshot's history was not logged: keep only the episode's header
                out = [r for r in out if r.get("type") in ("header", "agent")]
            out.append({"type": "branch", "from_log": src})
            continue
        out.append(rec)
    return out


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders under each path (a run folder itself, or a folder of them)."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if (p / "trajectory.jsonl").is_file():
            runs.append(p)
        elif p.is_dir():
            runs += sorted(t.parent for t in p.rglob("trajectory.jsonl"))
        else:
            raise MLSBenchError(f"{p}: not a run folder nor a folder of runs")
    return list(dict.fromkeys(runs))


def load_episode(run_dir: Path) -> Episode:
    records = linear_history(run_dir / "trajectory.jsonl")
    if not records or records[0].get("type") != "header":
        raise MLSBenchError(f"{run_dir}: trajectory has no header record")
    header = records[0]
    end = next((r for r in reversed(records) if r.get("type") == "end"), None)
    agent_rec = next((r for r in records if r.get("type") == "agent"), None)
    model = next((r.get("model") for r in records if r.get("type") == "model_call"), None)
    ep = Episode(
        run_dir=str(run_dir),
        header=header,
        records=records,
        task=header.get("task", "?"),
        agent=(agent_rec or {}).get("config", {}).get("name") or header.get("agent", "?"),
        status=(end or {}).get("status") or "unfinished",
        reward=float((end or {}).get("reward") or 0.0),
        score=(end or {}).get("score"),
        model=model,
        tool_names=list(header.get("tools") or []),
        branch_of=[r["from_log"] for r in records if r.get("type") == "branch" and r["from_log"]],
    )
    ep.steps = [
        {
            "step": r.get("step"),
            "tool": r.get("tool"),
            "ok": bool(r.get("ok")),
            "reward": float(r.get("reward") or 0.0),
            "terminated": bool(r.get("terminated")),
            "truncated": bool(r.get("truncated")),
            "info": r.get("info") or {},
        }
        for r in records
        if r.get("type") == "step"
    ]
    ep.messages = _messages(ep, agent_rec)
    return ep


def _messages(ep: Episode, agent_rec: dict | None) -> list[dict]:
    """The conversation in the neutral message format of ``mlsbench_env.agent.models``."""
    reset = next((r for r in ep.records if r.get("type") == "reset"), None)
    prompt = (reset or {}).get("observation", "")
    calls = [r for r in ep.records if r.get("type") == "model_call"]
    if agent_rec is None or not calls:
        return _messages_from_steps(ep, prompt)
    from mlsbench_env.agent.config import AgentConfig, fill
    from mlsbench_env.tools import usage

    cfg = AgentConfig.model_validate(agent_rec["config"])
    text_mode = cfg.model.action_format == "text"
    fmt = fill(cfg.prompts.text_format, tools=usage(ep.tool_names)) if text_mode else ""
    msgs = [
        {"role": "system", "content": fill(cfg.prompts.system, action_format=fmt, task=ep.task)},
        {"role": "user", "content": fill(cfg.prompts.instance, observation=prompt, task=ep.task)},
    ]
    pending: list[dict] = []
    for r in ep.records:
        kind = r.get("type")
        if kind == "model_call":
            resp = r["response"]
            msg = {
                "role": "assistant",
                "content": resp.get("content") or "",
                "tool_calls": list(resp.get("tool_calls") or []),
            }
            if resp.get("trace"):
                msg["trace"] = resp["trace"]
            msgs.append(msg)
            pending = list(msg["tool_calls"])
        elif kind == "format_error":
            msgs.append(
                {"role": "user", "content": fill(cfg.prompts.format_error, error=r["error"])}
            )
        elif kind == "step":
            if pending:
                call = pending.pop(0)
                msgs.append(
                    {
                        "role": "tool",
                        "tool_call_id": call["id"],
                        "name": call["name"],
                        "content": r["observation"],
                    }
                )
            else:
                msgs.append({"role": "user", "content": r["observation"]})
    return _drop_unanswered_calls(msgs)


def _messages_from_steps(ep: Episode, prompt: str) -> list[dict]:
    """A non-LLM agent's episode: the prompt, then one tool call and its result per step."""
    msgs: list[dict] = [{"role": "user", "content": prompt}]
    for n, r in enumerate((r for r in ep.records if r.get("type") == "step"), 1):
        action = r.get("action")
        if isinstance(action, str):
            try:
                action = json.loads(action)
            except json.JSONDecodeError:
                pass
        if isinstance(action, dict) and isinstance(action.get("tool"), str):
            args = action.get("args", {})
            call = {
                "id": f"call_{n}",
                "name": action["tool"],
                "arguments": args if isinstance(args, str) else json.dumps(args),
            }
            msgs.append({"role": "assistant", "content": "", "tool_calls": [call]})
            msgs.append(
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "name": call["name"],
                    "content": r["observation"],
                }
            )
        else:  # a malformed action is kept as the text it was
            raw = action if isinstance(action, str) else json.dumps(action)
            msgs.append({"role": "assistant", "content": raw, "tool_calls": []})
            msgs.append({"role": "user", "content": r["observation"]})
    return msgs


def _drop_unanswered_calls(msgs: list[dict]) -> list[dict]:
    """Tool calls the episode never ran (it ended first) leave the assistant message."""
    answered = {m["tool_call_id"] for m in msgs if m["role"] == "tool"}
    for m in msgs:
        if m["role"] == "assistant" and m.get("tool_calls"):
            m["tool_calls"] = [c for c in m["tool_calls"] if c["id"] in answered]
    return msgs


def redact_final(ep: Episode) -> None:
    """Replace the final evaluation's observation (which names hidden settings) by its score,
    and drop the per-setting results from the last step's info."""
    if not ep.steps or not (ep.steps[-1]["terminated"] or ep.steps[-1]["truncated"]):
        return
    last = ep.steps[-1]
    for k in FINAL_INFO_KEYS:
        last["info"].pop(k, None)
    score = "n/a" if ep.score is None else f"{ep.score:.1f}"
    for m in reversed(ep.messages):
        if m["role"] in ("tool", "user"):
            m["content"] = f"Episode over ({ep.status}). Final score: {score}"
            break


# ------------------------------------------------------------------------------ formats
def _tools(ep: Episode) -> list[dict]:
    from mlsbench_env.tools import openai_tools, tool_schemas

    return openai_tools(tool_schemas(ep.tool_names)) if ep.tool_names else []


def _oa_message(m: dict, extras: bool) -> dict:
    if m["role"] == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": m["content"] or ""}
        if m.get("tool_calls"):
            out["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in m["tool_calls"]
            ]
        trace = m.get("trace") or {}
        if extras and trace.get("completion_token_ids"):
            out["token_ids"] = trace["completion_token_ids"]
            if trace.get("completion_logprobs"):
                out["logprobs"] = trace["completion_logprobs"]
        return out
    if m["role"] == "tool":
        return {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
    return {"role": m["role"], "content": m["content"]}


def token_record(ep: Episode) -> dict | None:
    """One token sequence for the whole episode: each model call's prompt ids must extend the
    sequence so far (then its new tail is context, loss 0) followed by its completion (loss 1).
    None when some call has no trace, or a prompt does not extend the sequence (a chat template
    that re-renders earlier turns differently: use the per-message token ids then)."""
    turns = [m.get("trace") for m in ep.messages if m["role"] == "assistant"]
    if not turns or not all(t and t.get("completion_token_ids") for t in turns):
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
    end = next((r for r in reversed(ep.records) if r.get("type") == "end"), {})
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


# ------------------------------------------------------------------------------ export
@dataclass
class ExportResult:
    out_dir: Path
    episodes: list[Episode]
    skipped: Counter
    data_file: Path
    card: Path


def export(
    paths: list[str | Path],
    out_dir: str | Path,
    fmt: str = "chat-jsonl",
    filters: Filters | None = None,
    redact: bool = False,
    command: str | None = None,
) -> ExportResult:
    if fmt not in WRITERS:
        from mlsbench_env.errors import UnknownNameError

        raise UnknownNameError("export format", fmt, list(WRITERS))
    filters = filters or Filters()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept, skipped = [], Counter()
    for run in find_runs(paths):
        try:
            ep = load_episode(run)
        except (MLSBenchError, OSError, KeyError, ValueError) as e:
            skipped[f"unreadable ({type(e).__name__})"] += 1
            continue
        why = filters.keep(ep)
        if why:
            skipped[why] += 1
            continue
        if redact:
            redact_final(ep)
        kept.append(ep)
    data = out / "episodes.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for ep in kept:
            f.write(json.dumps(WRITERS[fmt](ep), default=str) + "\n")
    card = out / "README.md"
    card.write_text(dataset_card(kept, skipped, fmt, filters, redact, command))
    return ExportResult(out, kept, skipped, data, card)


def dataset_card(
    eps: list[Episode],
    skipped: Counter,
    fmt: str,
    filters: Filters,
    redact: bool,
    command: str | None,
) -> str:
    from mlsbench_env import __version__

    scores = [e.score for e in eps if e.score is not None]
    by_task: dict[str, list[Episode]] = {}
    for e in eps:
        by_task.setdefault(e.task, []).append(e)
    stat = (
        f"mean {statistics.fmean(scores):.1f}, median {statistics.median(scores):.1f}, "
        f"min {min(scores):.1f}, max {max(scores):.1f}"
        if scores
        else "none scored"
    )
    rows = [
        f"| {t} | {len(es)} | "
        + ", ".join(sorted({e.agent for e in es}))
        + " | "
        + _mean([e.score for e in es])
        + " |"
        for t, es in sorted(by_task.items())
    ]
    traced = sum(1 for e in eps if token_record(e) is not None)
    command = command or f"mlsbench_env.analysis.export.export(..., fmt={fmt!r})"
    final_note = (
        "was replaced by its score (--redact-final)"
        if redact
        else "reports the final evaluation, which names the task's hidden settings; export "
        "with --redact-final before training an agent that will be evaluated on these tasks"
    )
    fields = {
        "chat-jsonl": "`messages` (OpenAI chat format with `tool_calls`; assistant messages carry "
        "`token_ids`/`logprobs` where recorded), `tools`, `reward` (the terminal reward), "
        "`return` (sum of step rewards), `score`, `vanilla_score`, `status`, `task`, "
        "`task_version`, `agent`, `model`, `seed`, `num_steps`, `tests_used`, `tamper_events`, "
        "`run_dir`, `branch_of`, `steps` (per step: `tool`, `ok`, `reward`, `terminated`, "
        "`truncated`, `info` as JSON text), `tokens` (`input_ids`, `loss_mask`, `logprobs`, "
        "or null).",
        "openai-tools": "`messages`, `tools`, `parallel_tool_calls`: OpenAI's chat fine-tuning "
        "format with function calling, nothing else (rewards are in the chat-jsonl export).",
        "sharegpt": "`conversations` (`human`, `gpt`, `function_call`, `observation`), `system`, "
        "`tools` (JSON text), `reward`, `score`, `task` (LLaMA-Factory's sharegpt layout; the "
        "text an assistant wrote next to a tool call is not kept).",
    }[fmt]
    return f"""---
configs:
- config_name: default
  data_files: episodes.jsonl
tags:
- mlsbench
- agent-trajectories
- tool-use
- reinforcement-learning
---

# mlsbench-env episodes ({fmt})

Episodes of AI research agents on mlsbench-env research tasks: each line is one episode, from
the task prompt through every tool call and observation to the final evaluation.

- Exported {time.strftime("%Y-%m-%d %H:%M")} by mlsbench-env {__version__}:
  `{command}`
- Episodes: {len(eps)} (skipped: {dict(skipped) or "none"})
- Filters: status in {list(filters.statuses) or "any"}, min score {filters.min_score},
  tasks {list(filters.tasks) or "any"}, agents {list(filters.agents) or "any"}
- Final scores (0..100; 50 = the strongest known baseline): {stat}
- Episodes with full token traces (token ids, logprobs, loss masks): {traced}

| task | episodes | agents | mean score |
|---|---|---|---|
{chr(10).join(rows) or "| (none) | 0 | | |"}

## Fields

{fields}

## Load

```python
from datasets import load_dataset

ds = load_dataset("json", data_files="episodes.jsonl", split="train")
```

## Notes

- The reward is the task's final score (x the env's reward_scale); a truncated episode without
  a final evaluation has reward 0. Dense shaping rewards, where an episode opted in, are in
  `return` and the per-step rewards.
- The final observation {final_note}.
- Observations are complete; an LLM agent may have seen older ones elided to fit its context.
"""


def _mean(xs: list[float | None]) -> str:
    vals = [x for x in xs if x is not None]
    return f"{statistics.fmean(vals):.1f}" if vals else "n/a"
