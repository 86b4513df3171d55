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

from mlsbench_env.agent.config import AgentConfig, Prices, dump_config, fill
from mlsbench_env.agent.models import Model, ModelError, ModelExhausted, ModelResponse, Usage
from mlsbench_env.agent.retry import call_with_retries
from mlsbench_env.env import tokens
from mlsbench_env.episode import EpisodeResult
from mlsbench_env.tools import usage as tools_usage

ExitStatus = Literal[
    "submitted",  # the agent called submit: the env ran the final evaluation
    "truncated",  # an env budget (steps, compute) ran out
    "max_model_calls",  # limits.max_model_calls reached
    "cost_limit",  # limits.cost_limit_usd reached
    "format_errors",  # limits.max_format_errors replies in a row with no action in them
    "model_error",  # retry.max_consecutive_errors failed calls in a row
    "model_exhausted",  # a scripted / replay model ran out of replies
    "interrupted",  # Ctrl-C (re-raised after recording)
    "crashed",  # an exception in the loop (re-raised after recording, unless score_unsubmitted)
]
ELIDED = "[observation elided to fit the context window; it was {n} tokens]"
ELIDED_REPLY = "[reply elided to fit the context window; it was {n} tokens]"
PER_MESSAGE = 4  # tokens a chat template adds around each message (role, delimiters)
MIN_OUTPUT_TOKENS = 256  # the least room a reply keeps when the prompt crowds the window
CONTEXT_RETRIES = 3  # length refusals per model call, each trimmed harder, before a model error
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
    after every env step, ``on_note(text)`` on retries and model errors (console output).

    With ``score_unsubmitted``, an episode the agent leaves without submitting (a limit, model
    errors, format errors, a crash of the loop) still gets the env's final evaluation
    (``ResearchEnv.end_unsubmitted``), so it ends with a score; a crash is then recorded and
    not re-raised. Ctrl-C is never scored."""

    def __init__(
        self,
        config: AgentConfig,
        model: Model,
        *,
        on_step: Callable | None = None,
        on_note: Callable[[str], None] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        score_unsubmitted: bool = False,
    ):
        self.config, self.model, self.name = config, model, config.name
        self.on_step, self.on_note, self.sleep = on_step, on_note, sleep
        self.score_unsubmitted = score_unsubmitted

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
        self.totals, self.steps, self.info, self.reward = Totals(), 0, info, 0.0
        self.ended = False  # the env ended the episode (submitted or truncated)
        # the context budget: what the server says beats the config (see _fit_context)
        self.window, self.ratio = cfg.context.context_window, 1.0
        status: ExitStatus | None = None
        try:
            status = self._play(env, wrapped, schemas)
        except KeyboardInterrupt:
            status = "interrupted"
            env.record({"type": "agent_end", "status": status, "totals": asdict(self.totals)})
            raise
        except Exception:
            status = "crashed"
            env.record({"type": "agent_crash", "traceback": traceback.format_exc()})
            if not self.score_unsubmitted:
                env.record({"type": "agent_end", "status": status, "totals": asdict(self.totals)})
                raise
            self._note("the agent loop crashed (traceback in the trajectory); scoring its code")
        try:
            if self.score_unsubmitted and not self.ended:
                self.reward, final = env.end_unsubmitted(status)
                self.info = {**self.info, **final}
        finally:
            env.record({"type": "agent_end", "status": status, "totals": asdict(self.totals)})
        info = self.info
        episode = EpisodeResult(
            task=env.task.id,
            agent=self.name,
            seed=seed,
            reward=self.reward,
            score=info.get("score"),
            score_spread=info.get("score_spread"),
            vanilla_score=info.get("vanilla_score"),
            steps=self.steps,
            terminated=status == "submitted",
            truncated=status == "truncated",
            final_info=info,
            run_dir=str(env.run_dir) if env.run_dir else None,
        )
        return AgentResult(status=status, episode=episode, totals=self.totals)

    def _play(self, env, wrapped, schemas: list[dict]) -> ExitStatus:
        """Query and act until the episode or a limit ends; the exit status."""
        cfg = self.config
        errors = format_errors = 0
        max_calls = cfg.limits.max_model_calls or 2 * self.info["budget"]["steps_left"]
        while True:
            if self.totals.model_calls >= max_calls:
                return "max_model_calls"
            if cfg.limits.cost_limit_usd and self.totals.cost_usd >= cfg.limits.cost_limit_usd:
                return "cost_limit"
            try:
                resp = self._query(env, schemas)
            except ModelExhausted:
                return "model_exhausted"
            except ModelError as e:
                errors += 1
                env.record({"type": "model_error", "error": str(e), "in_a_row": errors})
                self._note(f"model error ({errors} in a row): {e}")
                if errors >= cfg.retry.max_consecutive_errors:
                    return "model_error"
                continue
            errors = 0
            # only the latest reply without an action and its reminder stay in context: a weak
            # model's failures must not fill the window
            self.messages = [m for m in self.messages if not m.get("_reminder")]
            reply = resp.message()
            actions = [(c.id, {"tool": c.name, "args": c.arguments}) for c in resp.tool_calls]
            if not actions:
                action, problem = parse_text_action(resp.text)
                if action is None:
                    format_errors += 1
                    env.record(
                        {"type": "format_error", "error": problem, "in_a_row": format_errors}
                    )
                    self._note(f"no action in the reply ({format_errors} in a row): {problem}")
                    if format_errors >= cfg.limits.max_format_errors:
                        return "format_errors"
                    note = fill(cfg.prompts.format_error, error=problem)
                    reply["_reminder"] = True
                    self.messages += [reply, {"role": "user", "content": note, "_reminder": True}]
                    continue
                actions = [(None, action)]
            # an action reached the env (which answers a malformed one itself, for a step)
            format_errors = 0
            self.messages.append(reply)
            for call_id, action in actions:
                obs, self.reward, terminated, truncated, self.info = wrapped.step(
                    action if isinstance(action, str) else json.dumps(action)
                )
                self.steps += 1
                self.ended = terminated or truncated
                if call_id is None:
                    self.messages.append({"role": "user", "content": obs})
                else:
                    name = action["tool"]
                    self.messages.append(
                        {"role": "tool", "tool_call_id": call_id, "name": name, "content": obs}
                    )
                if self.on_step:
                    self.on_step(self.steps, action, obs, self.info, self.totals)
                if terminated or truncated:
                    return "submitted" if terminated else "truncated"

    # ----------------------------------------------------------------------------- helpers
    def _query(self, env, schemas: list[dict]) -> ModelResponse:
        cfg = self.config
        started = time.perf_counter()
        for refusals in range(CONTEXT_RETRIES + 1):
            size = self._fit_context(schemas)
            cap = size["max_output_tokens"]
            try:
                resp, attempts = call_with_retries(
                    lambda cap=cap: self.model.query(self.messages, schemas, max_output_tokens=cap),
                    cfg.retry,
                    sleep=self.sleep,
                    on_retry=lambda n, e, d: self._note(f"retry {n} in {d:.1f} s: {e}"),
                )
                break
            except ModelError as e:
                if e.overflow is None or refusals == CONTEXT_RETRIES:
                    raise
                self._learn_refusal(env, e, size)
        cost = cost_usd(resp.usage, cfg.prices)
        self.totals.add(resp.usage, cost)
        prompt = resp.usage.input_tokens + resp.usage.cached_input_tokens
        if prompt and not resp.usage.estimated and size["est_tokens"]:
            self.ratio = prompt / size["est_tokens"]  # the server's count of what we sent
        env.record(
            {
                "type": "model_call",
                "n": self.totals.model_calls,
                "model": self.model.name,
                "request": {"messages": len(self.messages), **size},
                "response": resp.record(),
                "latency_s": round(time.perf_counter() - started, 4),
                "attempts": attempts,
                "context_refusals": refusals,
                "cost_usd": cost,
                "replayed": resp.replayed,
                "totals": asdict(self.totals),
            }
        )
        return resp

    def _learn_refusal(self, env, e: ModelError, size: dict) -> None:
        """The server refused the request for its length: believe its numbers (its window, its
        count of our prompt), or without numbers count 25% more, so the next try is cut more."""
        window, prompt = e.overflow.get("window"), e.overflow.get("prompt_tokens")
        if window:
            self.window = min(self.window, window)
        if prompt and size["est_tokens"]:
            self.ratio = max(self.ratio, prompt / size["est_tokens"]) * 1.02
        elif not window:
            self.ratio *= 1.25
        env.record(
            {
                "type": "context_refused",
                "error": str(e),
                "server": e.overflow,
                "sent": size,
                "window": self.window,
                "ratio": round(self.ratio, 4),
            }
        )
        self._note(f"context: the server refused the request for its length; trimming: {e}")

    def _tokens(self, m: dict) -> int:
        if m.get("_tokens") is None:
            calls = "".join(c["name"] + c["arguments"] for c in m.get("tool_calls") or ())
            text = str(m.get("content") or "") + calls
            m["_tokens"] = PER_MESSAGE + tokens.count(text, self.config.model.name)
        return m["_tokens"]

    def _elide(self, m: dict) -> int:
        """Replace a message's text by a one-line note (tool calls stay); tokens saved."""
        if m.get("_elided") or m.get("provider_content") or m["role"] == "system":
            return 0
        before = self._tokens(m)
        note = ELIDED_REPLY if m["role"] == "assistant" else ELIDED
        text = note.format(n=before - PER_MESSAGE)
        if tokens.count(text) >= before - PER_MESSAGE:
            return 0  # shorter than the note
        m["content"], m["_elided"], m["_tokens"] = text, True, None
        return before - self._tokens(m)

    def _cut(self, m: dict, over: int) -> int:
        """Cut ``over`` tokens (and a little more) out of the middle of a message; tokens saved."""
        before = self._tokens(m)
        keep = max(before - PER_MESSAGE - over - 50, 100)
        m["content"] = tokens.truncate_middle(str(m["content"]), keep, self.config.model.name)
        m["_tokens"] = None
        return before - self._tokens(m)

    def _fit_context(self, schemas: list[dict]) -> dict:
        """Fit the request into the window, in our tokens scaled by ``ratio`` (the server's
        count over ours, learned from every reply), keeping ``margin`` of it free:

        1. the oldest messages outside the last ``keep_last`` are elided (a one-line note),
           until the prompt fits with a full ``max_output_tokens`` reply;
        2. else the reply's cap shrinks to the room left (at least MIN_OUTPUT_TOKENS);
        3. else the last ``keep_last`` messages are elided too (never the newest), then the
           newest and then the task prompt are cut in the middle.

        The system prompt is never touched. Returns the request size (our count)."""
        c = self.config
        usable = self.window * (1 - c.context.margin) / self.ratio  # in our tokens
        full = usable - c.model.max_output_tokens / self.ratio
        least = usable - min(c.model.max_output_tokens, MIN_OUTPUT_TOKENS) / self.ratio
        total = sum(self._tokens(m) for m in self.messages)
        total += tokens.count(json.dumps(schemas), c.model.name) if schemas else 0
        n, elided = len(self.messages), 0
        older = range(2, max(2, n - c.context.keep_last))
        recent = range(max(2, n - c.context.keep_last), n - 1)
        for indices, limit in ((older, full), (recent, least)):
            for i in indices:
                if total <= limit:
                    break
                saved = self._elide(self.messages[i])
                total -= saved
                elided += saved > 0
        for i in (n - 1, 1):  # the newest message, then the task prompt
            if total > least and i >= 1 and self.messages[i]["role"] != "system":
                total -= self._cut(self.messages[i], int(total - least))
        if elided:
            self._note(f"context: elided {elided} old message(s) to fit the window")
        room = int(self.window * (1 - c.context.margin) - total * self.ratio)
        most = c.model.max_output_tokens
        cap = max(min(most, room), min(most, MIN_OUTPUT_TOKENS))
        chars = sum(len(str(m.get("content") or "")) for m in self.messages)
        return {
            "chars": chars,
            "est_tokens": total,
            "elided": elided,
            "window": self.window,
            "ratio": round(self.ratio, 4),
            "max_output_tokens": cap,
        }

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

    from mlsbench_env.env.log import read_log
    from mlsbench_env.errors import MLSBenchError

    path = Path(run_dir) / "trajectory.jsonl"
    if not path.is_file():
        raise MLSBenchError(f"{run_dir}: not a run folder (no trajectory.jsonl in it)")
    records = read_log(path)
    if not records or records[0].get("type") != "header":
        raise MLSBenchError(f"{path}: no header record; cannot resume from it")
    agent = next((r["config"] for r in records if r.get("type") == "agent"), None)
    return records[0], agent
