"""OpenAI Chat Completions (api.openai.com and any OpenAI-compatible server: vLLM, llama.cpp
server, Ollama, ...) through the official ``openai`` SDK, imported only here.

Training-grade traces: when the server returns token ids and log-probabilities (vLLM does with
``params: {logprobs: true, extra_body: {return_token_ids: true}}`` in the model config), each
model call's trajectory record carries them under ``response.trace`` (``mlsbench export``
turns them into token ids, logprobs and loss masks per episode).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlsbench_env.agent.models import ModelResponse, ToolCall, Usage
from mlsbench_env.agent.sdk import SDKModel
from mlsbench_env.env import tokens
from mlsbench_env.errors import ModelError
from mlsbench_env.tools import openai_tools


@dataclass(frozen=True)
class TracedResponse(ModelResponse):
    """A response with the server's token-level trace (``None`` when it sent none)."""

    trace: dict | None = None

    def record(self) -> dict:
        rec = super().record()
        if self.trace:
            rec["trace"] = self.trace
        return rec


def token_trace(r) -> dict | None:
    """Token ids and logprobs of a Chat Completions response, where the server sent them:
    ``prompt_token_ids`` (vLLM, top level or per choice), the choice's ``token_ids`` (vLLM's
    ``return_token_ids``), ``logprobs.content[i].logprob`` (OpenAI and vLLM ``logprobs``),
    with token ids parsed from ``token_id:N`` tokens (vLLM ``return_tokens_as_token_ids``)."""
    choice = r.choices[0]
    trace: dict = {}
    prompt_ids = getattr(choice, "prompt_token_ids", None) or getattr(r, "prompt_token_ids", None)
    if prompt_ids:
        trace["prompt_token_ids"] = [int(t) for t in prompt_ids]
    ids = getattr(choice, "token_ids", None)
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    if content:
        trace["completion_logprobs"] = [float(c.logprob) for c in content]
        if not ids and all(str(c.token).startswith("token_id:") for c in content):
            ids = [int(str(c.token).split(":", 1)[1]) for c in content]
        if not ids:
            trace["completion_tokens"] = [str(c.token) for c in content]
    if ids:
        trace["completion_token_ids"] = [int(t) for t in ids]
    return trace or None


def to_openai(messages: list[dict]) -> list[dict]:
    """Neutral messages -> Chat Completions messages."""
    return [openai_message(m) for m in messages]


def openai_message(m: dict) -> dict:
    """One neutral message -> a Chat Completions message."""
    if m["role"] == "assistant":
        # "" rather than null beside tool calls: llama-cpp-python's server refuses null
        msg = {"role": "assistant", "content": m["content"] or ""}
        if m.get("tool_calls"):
            msg["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in m["tool_calls"]
            ]
        return msg
    if m["role"] == "tool":
        return {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
    return {"role": m["role"], "content": m["content"]}


class OpenAIChat(SDKModel):
    sdk_name, provider, key_env = "openai", "OpenAI", "OPENAI_API_KEY"
    no_key_hint = ", or give --base-url for a local OpenAI-compatible server"

    def request(
        self, messages: list[dict], tools: list[dict], max_output_tokens: int | None = None
    ) -> dict:
        cfg = self.cfg
        req: dict = {"model": cfg.name, "messages": to_openai(messages)}
        if tools:
            # "auto" is what the API assumes when tools are sent; llama-cpp-python's
            # chatml-function-calling ignores the tools unless it is said
            req["tools"], req["tool_choice"] = openai_tools(tools), "auto"
        if cfg.temperature is not None:
            req["temperature"] = cfg.temperature
        # api.openai.com wants max_completion_tokens (reasoning models refuse max_tokens);
        # compatible servers have long known max_tokens
        cap = max_output_tokens or cfg.max_output_tokens
        req["max_tokens" if cfg.base_url else "max_completion_tokens"] = cap
        req.update(cfg.params)
        return req

    def create(self):
        return self.client.chat.completions.with_raw_response.create

    def response(self, r, req: dict, attempts: int) -> ModelResponse:
        if not r.choices:
            raise ModelError("OpenAI API returned no choices")
        msg = r.choices[0].message
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
            for c in msg.tool_calls or ()
            if getattr(c, "function", None) is not None
        )
        text = msg.content or ""
        if r.usage is not None:
            details = getattr(r.usage, "prompt_tokens_details", None) or {}
            if not isinstance(details, dict):  # a typed object in SDKs >= 1.50, a dict before
                details = details.model_dump()
            cached = details.get("cached_tokens") or 0
            usage = Usage(
                input_tokens=(r.usage.prompt_tokens or 0) - cached,
                cached_input_tokens=cached,
                output_tokens=r.usage.completion_tokens or 0,
            )
        else:  # some compatible servers report nothing: estimate
            sent = "".join(str(m.get("content") or "") for m in req["messages"])
            out = text + "".join(c.arguments for c in calls)
            usage = Usage(
                input_tokens=tokens.count(sent, self.name),
                output_tokens=tokens.count(out, self.name),
                estimated=True,
            )
        return TracedResponse(
            text=text,
            tool_calls=calls,
            usage=usage,
            stop_reason=r.choices[0].finish_reason,
            trace=token_trace(r),
            attempts=attempts,
        )
