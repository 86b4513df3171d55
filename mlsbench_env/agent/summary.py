"""One console line per step of an LLM agent: tool, arguments, result, budget, tokens, cost."""

from __future__ import annotations

import json

from mlsbench_env.agent.totals import Totals
from mlsbench_env.tools import decoded


def summarize(action, obs: str, info: dict, totals: Totals) -> str:
    """One console line per step: tool, args, result, budget left, tokens and cost so far."""
    tool, args = "?", ""
    if isinstance(action, dict):
        tool = str(action.get("tool"))
        a = decoded(action.get("args"))
        if isinstance(a, dict):
            args = " ".join(f"{k}={_short(v)}" for k, v in a.items())
        elif a:
            args = _short(a)
    else:
        parsed = decoded(action)
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
