"""Trajectories read back as episodes: a run's ``trajectory.jsonl`` as one linear history
(branches restored from snapshots resolved), its steps, and the conversation as the model saw
it, rebuilt in the neutral message format of ``mlsbench_env.agent.models``.

An LLM agent's system and instance prompts come from its recorded config, its replies from the
``model_call`` records, every observation in full. Episodes of other agents (baselines, RL
policies, people) become tool calls per step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlsbench_env.errors import MLSBenchError

FINAL_INFO_KEYS = ("metrics", "setting_scores", "errors", "final_runs", "seed_scores")


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


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
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
            msg: dict = {
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
    from mlsbench_env.tools import decoded

    msgs: list[dict] = [{"role": "user", "content": prompt}]
    for n, r in enumerate((r for r in ep.records if r.get("type") == "step"), 1):
        action = decoded(r.get("action"))
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


__all__ = ["Episode", "find_runs", "linear_history", "load_episode", "redact_final"]
