"""Fitting the conversation into the model's context window: our token count scaled by what the
server reports, old observations elided, the newest cut in the middle as a last resort."""

from __future__ import annotations

import json
from collections.abc import Callable

from mlsbench_env.agent.config import AgentConfig
from mlsbench_env.agent.models import Usage
from mlsbench_env.env import tokens
from mlsbench_env.errors import ModelError

ELIDED = "[observation elided to fit the context window; it was {n} tokens]"
ELIDED_REPLY = "[reply elided to fit the context window; it was {n} tokens]"
PER_MESSAGE = 4  # tokens a chat template adds around each message (role, delimiters)
MIN_OUTPUT_TOKENS = 256  # the least room a reply keeps when the prompt crowds the window


class ContextFitter:
    """The context budget of one episode: ``window`` (what the server says beats the config) and
    ``ratio`` (the server's token count over ours, learned from every reply and refusal)."""

    def __init__(self, config: AgentConfig, note: Callable[[str], None]):
        self.config, self.note = config, note
        self.window, self.ratio = config.context.context_window, 1.0

    def learn_usage(self, usage: Usage, size: dict) -> None:
        """A reply's prompt count: the server's count of what we sent."""
        prompt = usage.input_tokens + usage.cached_input_tokens
        if prompt and not usage.estimated and size["est_tokens"]:
            self.ratio = prompt / size["est_tokens"]

    def learn_refusal(self, e: ModelError, size: dict) -> dict:
        """The server refused the request for its length: believe its numbers (its window, its
        count of our prompt), or without numbers count 25% more, so the next try is cut more.
        Returns the ``context_refused`` record."""
        overflow = e.overflow or {}
        window, prompt = overflow.get("window"), overflow.get("prompt_tokens")
        if window:
            self.window = min(self.window, window)
        if prompt and size["est_tokens"]:
            self.ratio = max(self.ratio, prompt / size["est_tokens"]) * 1.02
        elif not window:
            self.ratio *= 1.25
        self.note(f"context: the server refused the request for its length; trimming: {e}")
        return {
            "type": "context_refused",
            "error": str(e),
            "server": e.overflow,
            "sent": size,
            "window": self.window,
            "ratio": round(self.ratio, 4),
        }

    def tokens(self, m: dict) -> int:
        if m.get("_tokens") is None:
            calls = "".join(c["name"] + c["arguments"] for c in m.get("tool_calls") or ())
            text = str(m.get("content") or "") + calls
            m["_tokens"] = PER_MESSAGE + tokens.count(text, self.config.model.name)
        return m["_tokens"]

    def elide(self, m: dict) -> int:
        """Replace a message's text by a one-line note (tool calls stay); tokens saved."""
        if m.get("_elided") or m.get("provider_content") or m["role"] == "system":
            return 0
        before = self.tokens(m)
        note = ELIDED_REPLY if m["role"] == "assistant" else ELIDED
        text = note.format(n=before - PER_MESSAGE)
        if tokens.count(text) >= before - PER_MESSAGE:
            return 0  # shorter than the note
        m["content"], m["_elided"], m["_tokens"] = text, True, None
        return before - self.tokens(m)

    def cut(self, m: dict, over: int) -> int:
        """Cut ``over`` tokens (and a little more) out of the middle of a message; tokens saved."""
        before = self.tokens(m)
        keep = max(before - PER_MESSAGE - over - 50, 100)
        m["content"] = tokens.truncate_middle(str(m["content"]), keep, self.config.model.name)
        m["_tokens"] = None
        return before - self.tokens(m)

    def fit(self, messages: list[dict], schemas: list[dict]) -> dict:
        """Fit the request into the window, in our tokens scaled by ``ratio``, keeping ``margin``
        of it free:

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
        total = sum(self.tokens(m) for m in messages)
        total += tokens.count(json.dumps(schemas), c.model.name) if schemas else 0
        n, elided = len(messages), 0
        older = range(2, max(2, n - c.context.keep_last))
        recent = range(max(2, n - c.context.keep_last), n - 1)
        for indices, limit in ((older, full), (recent, least)):
            for i in indices:
                if total <= limit:
                    break
                saved = self.elide(messages[i])
                total -= saved
                elided += saved > 0
        for i in (n - 1, 1):  # the newest message, then the task prompt
            if total > least and i >= 1 and messages[i]["role"] != "system":
                total -= self.cut(messages[i], int(total - least))
        if elided:
            self.note(f"context: elided {elided} old message(s) to fit the window")
        room = int(self.window * (1 - c.context.margin) - total * self.ratio)
        most = c.model.max_output_tokens
        cap = max(min(most, room), min(most, MIN_OUTPUT_TOKENS))
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        return {
            "chars": chars,
            "est_tokens": total,
            "elided": elided,
            "window": self.window,
            "ratio": round(self.ratio, 4),
            "max_output_tokens": cap,
        }
