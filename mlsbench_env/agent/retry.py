"""Retries with exponential backoff and jitter; what counts as retryable; the SDK import."""

from __future__ import annotations

import importlib
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mlsbench_env.agent.config import RetryConfig
from mlsbench_env.agent.models import ModelError
from mlsbench_env.errors import MLSBenchError

T = TypeVar("T")
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}  # 529: Anthropic "overloaded"


def import_sdk(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MLSBenchError(
            f"the {name} provider needs the {name!r} package; install the LLM extra: "
            "pip install 'mlsbench-env[llm]'"
        ) from None


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The server's requested wait in seconds (retry-after-ms or retry-after), if any."""
    if not headers:
        return None
    for key, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(key)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


# How servers word a refusal for length (OpenAI, vLLM, llama-cpp-python, llama.cpp's
# llama-server, Anthropic, Ollama), and where they state the numbers.
_OVERFLOW = re.compile(
    r"context.length|maximum context|context (?:window|size)|exceed_context_size|"
    r"prompt is too long|input is too long|too many tokens|exceeds? (?:the )?token limit",
    re.I,
)
_WINDOW = (
    r"maximum context length is (\d+)",  # OpenAI, vLLM, llama-cpp-python
    r"available context size \((\d+)",  # llama-server
    r"'n_ctx': (\d+)",
    r"tokens > (\d+) maximum",  # Anthropic
    r"context window of (\d+)",
)
_PROMPT = (
    r"(\d+) in the messages",  # OpenAI, vLLM, llama-cpp-python
    r"your (?:messages resulted in|request has) (\d+)",  # OpenAI, newer vLLM
    r"request \((\d+) tokens\) exceeds",  # llama-server
    r"'n_prompt_tokens': (\d+)",
    r"prompt is too long: (\d+)",  # Anthropic
    r"Requested tokens \((\d+)\)",
)


def context_overflow(status: int, message: str) -> dict | None:
    """``{"window", "prompt_tokens"}`` (the numbers the server stated, or None) when an HTTP 400
    or 413 says the request does not fit the model's context; None for any other error."""
    if status not in (400, 413) or not _OVERFLOW.search(message):
        return None

    def first(patterns):
        for p in patterns:
            m = re.search(p, message, re.I)
            if m:
                return int(m.group(1))
        return None

    return {"window": first(_WINDOW), "prompt_tokens": first(_PROMPT)}


def status_error(provider: str, status: int, message: str, headers=None) -> ModelError:
    retryable = status in RETRYABLE_STATUS or status >= 500
    return ModelError(
        f"{provider} API returned HTTP {status}: {message}",
        retryable=retryable,
        retry_after=retry_after(headers) if retryable else None,
        overflow=context_overflow(status, message),
    )


def backoff_delay(attempt: int, policy: RetryConfig, rng: Callable[[], float]) -> float:
    """Delay before retry ``attempt`` (1-based): initial * 2^(attempt-1), capped, +- jitter."""
    base = min(policy.max_s, policy.initial_s * 2 ** (attempt - 1))
    return max(0.0, base * (1 + policy.jitter * (2 * rng() - 1)))


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryConfig,
    *,
    sleep: Callable[[float], Any] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[int, ModelError, float], Any] | None = None,
) -> tuple[T, int]:
    """``fn()`` and the number of attempts it took. A retryable ModelError is retried up to
    ``policy.max_attempts`` tries, waiting the server's retry-after when it sent one (at most
    ``max_s``), else an exponential backoff with jitter; the last error (or a non-retryable
    one) is raised."""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return fn(), attempt
        except ModelError as e:
            if not e.retryable or attempt == policy.max_attempts:
                raise
            if e.retry_after is not None:
                delay = min(e.retry_after, policy.max_s)
            else:
                delay = backoff_delay(attempt, policy, rng)
            if on_retry:
                on_retry(attempt, e, delay)
            sleep(delay)
    raise AssertionError("unreachable")
