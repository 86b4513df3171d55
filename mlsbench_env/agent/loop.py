"""The LLM agent: queries its model for actions, one reply at a time, as ``run_episode`` asks.

Each model call is recorded in the episode's trajectory (``"type": "model_call"``: request
size, the reply, usage, latency, cost, attempts) before its actions run; ``run_episode`` ends
the run with an ``"agent_end"`` record carrying the exit status and the totals.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from mlsbench_env.agent.config import AgentConfig, dump_config, fill
from mlsbench_env.agent.context import ContextFitter
from mlsbench_env.agent.models import Model, ModelResponse
from mlsbench_env.agent.totals import Totals, cost_usd
from mlsbench_env.episode import EpisodeOutcome, ExitStatus, run_episode
from mlsbench_env.errors import ModelError, ModelExhausted
from mlsbench_env.tools import usage as tools_usage

__all__ = ["ExitStatus", "LLMAgent", "parse_text_action"]

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


class LLMAgent:
    """Plays episodes with a model, through ``run_episode`` (the ``Agent`` protocol: ``start``,
    ``act``, ``observe``, ``totals``). ``on_step(n, action, observation, info, totals)`` is
    called after every env step, ``on_note(text)`` on model errors and context trimming
    (console output). A reply with several tool calls is queued: ``act`` hands them out one at
    a time before the model is asked again.

    ``score_unsubmitted`` is what ``run`` passes to ``run_episode``: an episode the agent
    leaves without submitting (a limit, model errors, format errors, a crash) still gets the
    env's final evaluation, so it ends with a score; a crash is then recorded, not re-raised."""

    def __init__(
        self,
        config: AgentConfig,
        model: Model,
        *,
        on_step: Callable | None = None,
        on_note: Callable[[str], None] | None = None,
        score_unsubmitted: bool = False,
    ):
        self.config, self.model, self.name = config, model, config.name
        self.on_step, self.on_note = on_step, on_note
        self.score_unsubmitted = score_unsubmitted
        self.stop_reason: ExitStatus | None = None
        self._totals = Totals()  # before start: an episode that fails at reset spent nothing

    def run(
        self, env, seed: int | None = 0, extra_records: tuple[dict, ...] = ()
    ) -> EpisodeOutcome:
        """One episode (``run_episode`` with this agent)."""
        return run_episode(
            env,
            self,
            seed,
            score_unsubmitted=self.score_unsubmitted,
            extra_records=extra_records,
        )

    def env_defaults(self) -> dict[str, Any]:
        """The env options this config asks for (the caller's own options win)."""
        cfg = self.config
        return {"obs_max_tokens": cfg.context.obs_max_tokens} | (
            {"tools": cfg.tools} if cfg.tools else {}
        )

    # ------------------------------------------------------------------ the Agent protocol
    def start(self, env, observation: str, info: dict[str, Any]) -> None:
        """Record the config, build the first messages, reset the counters."""
        cfg = self.config
        env.record(
            {"type": "agent", "config": cfg.model_dump(mode="json"), "model": self.model.name}
        )
        if env.run_dir:
            (env.run_dir / "agent.yaml").write_text(dump_config(cfg))
        self.env = env
        text_mode = cfg.model.action_format == "text"
        self.schemas = [] if text_mode else info["tools"]
        names = [s["name"] for s in info["tools"]]
        fmt = fill(cfg.prompts.text_format, tools=tools_usage(names)) if text_mode else ""
        system = fill(cfg.prompts.system, action_format=fmt, task=env.task.id)
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {
                "role": "user",
                "content": fill(cfg.prompts.instance, observation=observation, task=env.task.id),
            },
        ]
        self._totals, self.steps, self.stop_reason = Totals(), 0, None
        self.context = ContextFitter(cfg, self._note)
        self.max_calls = cfg.limits.max_model_calls or 2 * info["budget"]["steps_left"]
        self.errors = self.format_errors = 0
        self.queue: deque[tuple[str | None, dict | str]] = deque()
        self.pending: tuple[str | None, dict | str] | None = None

    def act(self, observation: str, info: dict[str, Any]) -> dict | str | None:
        """The next queued action; asks the model when none is queued. None: a limit ended the
        run (the reason in ``stop_reason``)."""
        while not self.queue:
            self.stop_reason = self._ask()
            if self.stop_reason:
                return None
        self.pending = self.queue.popleft()
        return self.pending[1]

    def observe(self, action, observation: str, reward, terminated, truncated, info) -> None:
        call_id = self.pending[0] if self.pending else None
        self.steps += 1
        if call_id is None:
            self.messages.append({"role": "user", "content": observation})
        else:
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "name": action["tool"],
                    "content": observation,
                }
            )
        if self.on_step:
            self.on_step(self.steps, action, observation, info, self._totals)

    def totals(self) -> dict:
        return asdict(self._totals)

    # ------------------------------------------------------------------ asking the model
    def _ask(self) -> ExitStatus | None:
        """One model call: its actions go on the queue; an exit status when a limit is hit."""
        cfg, env = self.config, self.env
        if self._totals.model_calls >= self.max_calls:
            return "max_model_calls"
        if cfg.limits.cost_limit_usd and self._totals.cost_usd >= cfg.limits.cost_limit_usd:
            return "cost_limit"
        try:
            resp = self._query()
        except ModelExhausted:
            return "model_exhausted"
        except ModelError as e:
            self.errors += 1
            env.record({"type": "model_error", "error": str(e), "in_a_row": self.errors})
            self._note(f"model error ({self.errors} in a row): {e}")
            return "model_error" if self.errors >= cfg.retry.max_consecutive_errors else None
        self.errors = 0
        # only the latest reply without an action and its reminder stay in context: a weak
        # model's failures must not fill the window
        self.messages = [m for m in self.messages if not m.get("_reminder")]
        reply: dict[str, Any] = resp.message()
        actions: list[tuple[str | None, dict | str]] = [
            (c.id, {"tool": c.name, "args": c.arguments}) for c in resp.tool_calls
        ]
        if not actions:
            action, problem = parse_text_action(resp.text)
            if action is None:
                problem = problem or ""
                self.format_errors += 1
                n = self.format_errors
                env.record({"type": "format_error", "error": problem, "in_a_row": n})
                self._note(f"no action in the reply ({n} in a row): {problem}")
                if n >= cfg.limits.max_format_errors:
                    return "format_errors"
                note = fill(cfg.prompts.format_error, error=problem)
                reply["_reminder"] = True
                reminder = {"role": "user", "content": note, "_reminder": True}
                self.messages += [reply, reminder]
                return None
            actions = [(None, action)]
        # an action reaches the env (which answers a malformed one itself, for a step)
        self.format_errors = 0
        self.messages.append(reply)
        self.queue.extend(actions)
        return None

    def _query(self) -> ModelResponse:
        """Ask the model, trimming harder after each refusal for length; record the call."""
        started = time.perf_counter()
        for refusals in range(CONTEXT_RETRIES + 1):
            size = self.context.fit(self.messages, self.schemas)
            try:
                resp = self.model.query(
                    self.messages, self.schemas, max_output_tokens=size["max_output_tokens"]
                )
                break
            except ModelError as e:
                if e.overflow is None or refusals == CONTEXT_RETRIES:
                    raise
                self.env.record(self.context.learn_refusal(e, size))
        cost = cost_usd(resp.usage, self.config.prices)
        self._totals.add(resp.usage, cost)
        self.context.learn_usage(resp.usage, size)
        self.env.record(
            {
                "type": "model_call",
                "n": self._totals.model_calls,
                "model": self.model.name,
                "request": {"messages": len(self.messages), **size},
                "response": resp.record(),
                "latency_s": round(time.perf_counter() - started, 4),
                "attempts": resp.attempts,
                "context_refusals": refusals,
                "cost_usd": cost,
                "replayed": resp.replayed,
                "totals": self.totals(),
            }
        )
        return resp

    def _note(self, text: str) -> None:
        if self.on_note:
            self.on_note(text)
