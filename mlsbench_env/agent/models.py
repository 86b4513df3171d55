"""The ``Model`` protocol, its message and response types, and the models that need no API:
a scripted model (tests, docs) and a replay model (re-plays a saved trajectory).

Messages are plain dicts in one neutral format, converted to each provider's wire format by
its module:

- ``{"role": "system" | "user", "content": str}``
- ``{"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments"}]}``
  (``arguments``: the JSON text exactly as the model wrote it)
- ``{"role": "tool", "tool_call_id": str, "name": str, "content": str}``
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlsbench_env.agent.config import ModelConfig, RetryConfig
from mlsbench_env.env.log import read_log
from mlsbench_env.errors import MLSBenchError, ModelExhausted
from mlsbench_env.tools import decoded


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0  # uncached input tokens
    cached_input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False  # True: counted with tiktoken because the API reported none


@dataclass(frozen=True)
class ModelResponse:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    stop_reason: str | None = None
    # content blocks to send back verbatim (Anthropic thinking blocks must be returned as-is)
    provider_content: list[dict] | None = None
    replayed: bool = field(default=False, compare=False)
    attempts: int = field(default=1, compare=False)  # requests it took (the SDK's retries)

    def message(self) -> dict:
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": self.text,
            "tool_calls": [asdict(c) for c in self.tool_calls],
        }
        if self.provider_content:
            msg["provider_content"] = self.provider_content
        return msg

    def record(self) -> dict:
        """What the trajectory keeps of this response (enough to replay it)."""
        return {
            **self.message(),
            "usage": asdict(self.usage),
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_record(cls, rec: dict) -> ModelResponse:
        return cls(
            text=rec.get("content") or "",
            tool_calls=tuple(ToolCall(**c) for c in rec.get("tool_calls") or ()),
            usage=Usage(**rec.get("usage") or {}),
            stop_reason=rec.get("stop_reason"),
            provider_content=rec.get("provider_content"),
            replayed=True,
        )


class Model(Protocol):
    name: str

    def query(
        self, messages: list[dict], tools: list[dict], max_output_tokens: int | None = None
    ) -> ModelResponse:
        """One reply to the conversation. ``tools`` are the env's neutral tool schemas (empty in
        text mode); ``max_output_tokens`` caps this reply below the config's cap when the context
        window leaves less room. Raises ModelError on failure, after any retries of its own."""
        ...


def fenced(action: dict | str) -> str:
    body = action if isinstance(action, str) else json.dumps(action)
    return f"```json\n{body}\n```"


def _as_response(action: dict, n: int, action_format: str) -> ModelResponse:
    if action_format == "text":
        return ModelResponse(text=fenced(action))
    args = action.get("args", {})
    return ModelResponse(
        text="",
        tool_calls=(
            ToolCall(
                id=f"call_{n}",
                name=str(action.get("tool")),
                arguments=args if isinstance(args, str) else json.dumps(args),
            ),
        ),
    )


class ScriptedModel:
    """Replies with the scripted items in order: a dict action becomes a tool call (tools mode)
    or a fenced JSON action (text mode); a string is sent as the reply text, verbatim."""

    def __init__(self, script: Iterable[dict | str], action_format: str = "tools"):
        self.name = "scripted"
        self._script = list(script)
        self._format = action_format
        self.calls = 0

    def query(
        self, messages: list[dict], tools: list[dict], max_output_tokens: int | None = None
    ) -> ModelResponse:
        if self.calls >= len(self._script):
            raise ModelExhausted(f"the script's {len(self._script)} replies are used up")
        item = self._script[self.calls]
        self.calls += 1
        if isinstance(item, str):
            return ModelResponse(text=item)
        return _as_response(item, self.calls, self._format)


class ReplayModel:
    """Re-plays a saved trajectory: its recorded model replies, or, for a trajectory of a
    non-LLM agent, one tool call per recorded action. With ``then``, hands over to that model
    when the recording runs out (``mlsbench run --resume``)."""

    def __init__(self, responses: list[ModelResponse], then: Model | None = None):
        self._responses = list(responses)
        self._then = then
        self.name = f"replay+{then.name}" if then else "replay"
        self.replayed = 0

    @classmethod
    def from_trajectory(
        cls, path: str | Path, then: Model | None = None, action_format: str = "tools"
    ) -> ReplayModel:
        path = Path(path)
        if path.is_dir():
            path = path / "trajectory.jsonl"
        if not path.is_file():
            raise MLSBenchError(f"{path}: no trajectory to replay (expected a trajectory.jsonl)")
        records = read_log(path)
        calls = [r for r in records if r.get("type") == "model_call" and r.get("response")]
        if calls:
            responses = [ModelResponse.from_record(r["response"]) for r in calls]
        else:
            responses = []
            for r in records:
                if r.get("type") != "step":
                    continue
                action = decoded(r.get("action"))
                if isinstance(action, dict):
                    resp = _as_response(action, len(responses) + 1, action_format)
                else:  # a malformed recorded action: replay it as text, as it was
                    resp = ModelResponse(text=str(action))
                responses.append(
                    ModelResponse(text=resp.text, tool_calls=resp.tool_calls, replayed=True)
                )
        return cls(responses, then)

    def query(
        self, messages: list[dict], tools: list[dict], max_output_tokens: int | None = None
    ) -> ModelResponse:
        if self.replayed < len(self._responses):
            self.replayed += 1
            return self._responses[self.replayed - 1]
        if self._then is None:
            raise ModelExhausted(f"the trajectory's {len(self._responses)} replies are used up")
        return self._then.query(messages, tools, max_output_tokens)


PROVIDERS = {
    "openai": "mlsbench_env.agent.openai_chat:OpenAIChat",
    "anthropic": "mlsbench_env.agent.anthropic_messages:AnthropicMessages",
}


def make_model(cfg: ModelConfig, retry: RetryConfig | None = None) -> Model:
    """The model a config names (providers import their SDK only here; ``retry``: their SDK's
    retries)."""
    if cfg.provider == "scripted":
        return ScriptedModel(cfg.script, cfg.action_format)
    if cfg.provider == "replay":
        if not cfg.trajectory:
            raise MLSBenchError("model.trajectory: the replay provider needs a trajectory path")
        return ReplayModel.from_trajectory(cfg.trajectory, action_format=cfg.action_format)
    import importlib

    module, cls = PROVIDERS[cfg.provider].split(":")
    return getattr(importlib.import_module(module), cls)(cfg, retry)
