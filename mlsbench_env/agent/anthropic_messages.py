"""Anthropic Messages API tool use through the official ``anthropic`` SDK, imported only here."""

from __future__ import annotations

import json

from mlsbench_env.agent.models import ModelResponse, ToolCall, Usage
from mlsbench_env.agent.sdk import SDKModel
from mlsbench_env.tools import anthropic_tools


def _input(arguments: str) -> dict:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def to_anthropic(messages: list[dict]) -> tuple[str, list[dict]]:
    """Neutral messages -> (system, Messages API messages). Tool results and notes that follow
    one assistant turn merge into one user turn, as the API requires alternating roles."""
    system: list[str] = []
    out: list[dict] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            system.append(m["content"])
            continue
        if role == "assistant":
            blocks = list(m.get("provider_content") or [])
            if not blocks:
                if m["content"]:
                    blocks.append({"type": "text", "text": m["content"]})
                blocks += [
                    {
                        "type": "tool_use",
                        "id": c["id"],
                        "name": c["name"],
                        "input": _input(c["arguments"]),
                    }
                    for c in m.get("tool_calls") or ()
                ]
            out.append(
                {"role": "assistant", "content": blocks or [{"type": "text", "text": "..."}]}
            )
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m["tool_call_id"],
                "content": m["content"],
            }
        else:
            block = {"type": "text", "text": m["content"] or "..."}
        if out and out[-1]["role"] == "user":
            out[-1]["content"].append(block)
        else:
            out.append({"role": "user", "content": [block]})
    return "\n\n".join(system), out


class AnthropicMessages(SDKModel):
    sdk_name, provider, key_env = "anthropic", "Anthropic", "ANTHROPIC_API_KEY"

    def request(
        self, messages: list[dict], tools: list[dict], max_output_tokens: int | None = None
    ) -> dict:
        cfg = self.cfg
        system, msgs = to_anthropic(messages)
        cap = max_output_tokens or cfg.max_output_tokens
        req: dict = {"model": cfg.name, "max_tokens": cap, "messages": msgs}
        if system:
            req["system"] = system
        if tools:
            req["tools"] = anthropic_tools(tools)
        if cfg.temperature is not None:
            req["temperature"] = cfg.temperature
        req.update(cfg.params)
        return req

    def create(self):
        return self.client.messages.with_raw_response.create

    def response(self, r, req: dict, attempts: int) -> ModelResponse:
        text, calls, keep = [], [], False
        for b in r.content:
            if b.type == "text":
                text.append(b.text)
            elif b.type == "tool_use":
                calls.append(ToolCall(id=b.id, name=b.name, arguments=json.dumps(b.input)))
            elif b.type in ("thinking", "redacted_thinking"):
                keep = True  # the API wants thinking blocks back unchanged in later turns
        u = r.usage
        usage = Usage(
            # cache writes are billed as (more expensive) input; we count them as input
            input_tokens=(u.input_tokens or 0)
            + (getattr(u, "cache_creation_input_tokens", 0) or 0),
            cached_input_tokens=getattr(u, "cache_read_input_tokens", 0) or 0,
            output_tokens=u.output_tokens or 0,
        )
        return ModelResponse(
            text="\n".join(text),
            tool_calls=tuple(calls),
            usage=usage,
            stop_reason=r.stop_reason,
            provider_content=[b.model_dump(mode="json", exclude_none=True) for b in r.content]
            if keep
            else None,
            attempts=attempts,
        )
