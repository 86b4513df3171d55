"""What an LLM agent spent in an episode: model calls, tokens and their cost."""

from __future__ import annotations

from dataclasses import dataclass

from mlsbench_env.agent.config import Prices
from mlsbench_env.agent.models import Usage


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
