"""The agent loop: query the model, run its actions in the env, until the episode ends.

Each model call is recorded in the episode's trajectory (``"type": "model_call"``: request
size, the reply, usage, latency, cost, attempts) before its actions run; the run ends with an
``"agent_end"`` record carrying the exit status and the totals.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from mlsbench_env import tokens
from mlsbench_env.agent.config import AgentConfig, Prices, dump_config, fill
from mlsbench_env.agent.models import Model, ModelError, ModelExhausted, ModelResponse, Usage
from mlsbench_env.agent.retry import call_with_retries
from mlsbench_env.runner import EpisodeResult
from mlsbench_env.tools import usage as tools_usage

ExitStatus = Literal[
    "submitted",  # the agent called submit: the env ran the final evaluation
    "truncated",  # an env budget (steps, compute) ran out
    "max_model_calls",  # limits.max_model_calls reached
    "cost_limit",  # limits.cost_limit_usd reached
    "model_error",  # retry.max_consecutive_errors failed calls in a row
    "model_exhausted",  # a scripted / replay model ran out of replies
    "interrupted",  # Ctrl-C (re-raised after recording)
    "crashed",  # an exception in the loop (re-raised after recording)
]
ELIDED = "[observation elided to fit the context window; it was {n} tokens]"
_FENCE = re.compile(r"```[ \t]*([\w-]*)[ \t]*\n(.*?)```", re.S)  # (language, body)


def parse_text_action(text: str) -> tuple[str | None, str | None]:
    """(action JSON text, None) or (None, what is wrong) for a text-mode reply: exactly one
    fenced block holding a JSON object, or a reply that is only a JSON object."""
    blocks = [
        b.strip()
        for lang, b in _FENCE.findall(text)
        if lang.lower() in ("", "json") and b.strip().startswith("{")
    ]
    if len(blocks) == 1:
        return blocks[0], None
    if len(blocks) > 1:
        return None, f"the reply has {len(blocks)} action blocks; end it with exactly one"
    bare = text.strip()
    if bare.startswith("{") and bare.endswith("}"):
        return bare, None
    return None, (
        'no action found; end the reply with one ```json fenced block holding {"tool": NAME, '
        '"args": {...}}'
    )


def cost_usd(usage: Usage, prices: Prices) -> float:
    cached = prices.input if prices.cached_input is None else prices.cached_input
    return (
        usage.input_tokens * prices.input
        + usage.cached_input_tokens * cached
        + usage.output_tokens * prices.output
    ) / 1e6


@dataclass
class Totals:
    model_calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False  # some counts are tiktoken estimates (the API reported none)

    def add(self, usage: Usage, cost: float) -> None:
        self.model_calls += 1
        self.input_tokens += usage.input_tokens
        self.cached_input_tokens += usage.cached_input_tokens
        self.output_tokens += usage.output_tokens
        self.cost_usd += cost
        self.estimated |= usage.estimated


@dataclass
class AgentResult:
    status: ExitStatus
    episode: EpisodeResult
    totals: Totals


class LLMAgent:
    """Plays episodes with a model. ``on_step(n, action, observation, info, totals)`` is called
    after every env step, ``on_note(text)`` on retries and model errors (console output)."""

    def __init__(
        self,
        config: AgentConfig,
        model: Model,
        *,
        on_step: Callable | None = None,
        on_note: Callable[[str], None] | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ):
        self.config, self.model, self.name = config, model, config.name
        self.on_step, self.on_note, self.sleep = on_step, on_note, sleep

    # ----------------------------------------------------------------------------- the loop
    def run(self, env, seed: int | None = 0, extra_records: tuple[dict, ...] = ()) -> AgentResult:
        cfg = self.config
        obs, info = env.reset(seed=seed)
        env, wrapped = env.unwrapped, env  # records go to the ResearchEnv under any wrappers
        env.record(
            {"type": "agent", "config": cfg.model_dump(mode="json"), "model": self.model.name}
        )
        for rec in extra_records:
            env.record(rec)
        if env.run_dir:
            (env.run_dir / "agent.yaml").write_text(dump_config(cfg))
        text_mode = cfg.model.action_format == "text"
        schemas = [] if text_mode else info["tools"]
        names = [s["name"] for s in info["tools"]]
        fmt = fill(cfg.prompts.text_format, tools=tools_usage(names)) if text_mode else ""
        self.messages = [
            {
                "role": "system",
                "content": fill(cfg.prompts.system, action_format=fmt, task=env.task.id),
            },
            {
                "role": "user",
                "content": fill(cfg.prompts.instance, observation=obs, task=env.task.id),
            },
        ]
        self.totals, errors, steps, reward = Totals(), 0, 0, 0.0
        max_calls = cfg.limits.max_model_calls or 2 * info["budget"]["steps_left"]
        status: ExitStatus | None = None
        try:
            while status is None:
                if self.totals.model_calls >= max_calls:
                    status = "max_model_calls"
                    break
                if cfg.limits.cost_limit_usd and self.totals.cost_usd >= cfg.limits.cost_limit_usd:
                    status = "cost_limit"
                    break
                try:
                    resp = self._query(env, schemas)
                except ModelExhausted:
                    status = "model_exhausted"
                    break
                except ModelError as e:
                    errors += 1
                    env.record({"type": "model_error", "error": str(e), "in_a_row": errors})
                    self._note(f"model error ({errors} in a row): {e}")
                    if errors >= cfg.retry.max_consecutive_errors:
                        status = "model_error"
                    continue
                errors = 0
                self.messages.append(resp.message())
                actions = [(c.id, {"tool": c.name, "args": c.arguments}) for c in resp.tool_calls]
                if not actions:
                    action, problem = parse_text_action(resp.text)
                    if action is None:
                        note = fill(cfg.prompts.format_error, error=problem)
                        self.messages.append({"role": "user", "content": note})
                        env.record({"type": "format_error", "error": problem})
                        continue
                    actions = [(None, action)]
                for call_id, action in actions:
                    obs, reward, terminated, truncated, info = wrapped.step(
                        action if isinstance(action, str) else json.dumps(action)
                    )
                    steps += 1
                    if call_id is None:
                        self.messages.append({"role": "user", "content": obs})
                    else:
                        name = action["tool"]
                        self.messages.append(
                            {"role": "tool", "tool_call_id": call_id, "name": name, "content": obs}
                        )
                    if self.on_step:
                        self.on_step(steps, action, obs, info, self.totals)
                    if terminated or truncated:
                        status = "submitted" if terminated else "truncated"
                        break
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception:
            status = "crashed"
            env.record({"type": "agent_crash", "traceback": traceback.format_exc()})
            raise
        finally:
            env.record({"type": "agent_end", "status": status, "totals": asdict(self.totals)})
        episode = EpisodeResult(
            task=env.task.id,
            agent=self.name,
            seed=seed,
            reward=reward,
            score=info.get("score"),
            score_spread=info.get("score_spread"),
            vanilla_score=info.get("vanilla_score"),
            steps=steps,
            terminated=status == "submitted",
            truncated=status == "truncated",
            final_info=info,
            run_dir=str(env.run_dir) if env.run_dir else None,
        )
        return AgentResult(status=status, episode=episode, totals=self.totals)

    # ----------------------------------------------------------------------------- helpers
    def _query(self, env, schemas: list[dict]) -> ModelResponse:
        cfg = self.config
        size = self._fit_context(schemas)
        started = time.perf_counter()
        resp, attempts = call_with_retries(
            lambda: self.model.query(self.messages, schemas),
            cfg.retry,
            sleep=self.sleep,
            on_retry=lambda n, e, d: self._note(f"retry {n} in {d:.1f} s: {e}"),
        )
        cost = cost_usd(resp.usage, cfg.prices)
        self.totals.add(resp.usage, cost)
        env.record(
            {
                "type": "model_call",
                "n": self.totals.model_calls,
                "model": self.model.name,
                "request": {"messages": len(self.messages), **size},
                "response": resp.record(),
                "latency_s": round(time.perf_counter() - started, 4),
                "attempts": attempts,
                "cost_usd": cost,
                "replayed": resp.replayed,
                "totals": asdict(self.totals),
            }
        )
        return resp

    def _tokens(self, m: dict) -> int:
        if m.get("_tokens") is None:
            calls = "".join(c["name"] + c["arguments"] for c in m.get("tool_calls") or ())
            m["_tokens"] = tokens.count(str(m.get("content") or "") + calls, self.config.model.name)
        return m["_tokens"]

    def _fit_context(self, schemas: list[dict]) -> dict:
        """Trim the history to the context window: the oldest observations (never the system
        prompt, the task prompt or the last ``keep_last`` messages) are replaced by a one-line
        note, oldest first, until the estimate fits. Returns the request size."""
        c = self.config
        budget = c.context.context_window - c.model.max_output_tokens
        budget -= tokens.count(json.dumps(schemas), c.model.name) if schemas else 0
        total = sum(self._tokens(m) for m in self.messages)
        elided = 0
        for m in self.messages[2 : max(2, len(self.messages) - c.context.keep_last)]:
            if total <= budget:
                break
            if m["role"] in ("tool", "user") and not m.get("_elided"):
                before = self._tokens(m)
                m["content"], m["_elided"], m["_tokens"] = ELIDED.format(n=before), True, None
                total += self._tokens(m) - before
                elided += 1
        if elided:
            self._note(f"context: elided {elided} old observation(s) to fit the window")
        chars = sum(len(str(m.get("content") or "")) for m in self.messages)
        return {"chars": chars, "est_tokens": total, "elided": elided}

    def _note(self, text: str) -> None:
        if self.on_note:
            self.on_note(text)


def summarize(action, obs: str, info: dict, totals: Totals) -> str:
    """One console line per step: tool, args, result, budget left, tokens and cost so far."""
    tool, args = "?", ""
    if isinstance(action, dict):
        tool = str(action.get("tool"))
        a = action.get("args")
        if isinstance(a, str):
            try:
                a = json.loads(a)
            except json.JSONDecodeError:
                pass
        if isinstance(a, dict):
            args = " ".join(f"{k}={_short(v)}" for k, v in a.items())
        elif a:
            args = _short(a)
    else:
        parsed = None
        try:
            parsed = json.loads(action)
        except (json.JSONDecodeError, TypeError):
            pass
        if isinstance(parsed, dict):
            return summarize(parsed, obs, info, totals)
        args = _short(action)
    first = next((line for line in obs.splitlines() if line.strip()), "")
    b = info.get("budget", {})
    sent = totals.input_tokens + totals.cached_input_tokens
    tok = f"{_k(sent)} in / {_k(totals.output_tokens)} out"
    return (
        f"{tool} {args}".strip()
        + f" -> {'ok' if info.get('ok') else 'failed'}: {_short(first, 70)}"
        + f" | steps {b.get('steps_left')} tests {b.get('tests_left')} "
        f"compute {b.get('compute_s_left')} s | {tok} tokens, ${totals.cost_usd:.4f}"
    )


def _short(v, n: int = 40) -> str:
    s = v if isinstance(v, str) else json.dumps(v)
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


def _k(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def saved_run(run_dir) -> tuple[dict, dict | None]:
    """(header, agent config dict or None) of a saved run, for ``--resume``."""
    from pathlib import Path

    from mlsbench_env.errors import MLSBenchError
    from mlsbench_env.trajectory import read_log

    path = Path(run_dir) / "trajectory.jsonl"
    if not path.is_file():
        raise MLSBenchError(f"{run_dir}: not a run folder (no trajectory.jsonl in it)")
    records = read_log(path)
    if not records or records[0].get("type") != "header":
        raise MLSBenchError(f"{path}: no header record; cannot resume from it")
    agent = next((r["config"] for r in records if r.get("type") == "agent"), None)
    return records[0], agent
