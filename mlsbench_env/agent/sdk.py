"""The provider SDKs (``openai``, ``anthropic``): their lazy import, their client with its
retries, and their errors as ``ModelError``.

Retries are the SDKs' own (``max_retries``): they retry timeouts, connection errors, 408, 409,
429 and 5xx (529: Anthropic "overloaded") with exponential backoff and jitter, and wait what a
``retry-after`` / ``retry-after-ms`` header asks (up to a minute). ``attempts`` of a call is read
from the SDK's raw response (``retries_taken + 1``) for the ``model_call`` record. What the SDKs
cannot see stays with the loop: a call that still fails counts towards
``retry.max_consecutive_errors`` (a model outside the SDKs, a scripted or replay model, has no
SDK retries, only that).
"""

from __future__ import annotations

import importlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable

from mlsbench_env.agent.config import ModelConfig, RetryConfig
from mlsbench_env.agent.models import ModelResponse
from mlsbench_env.errors import AgentConfigError, MLSBenchError, ModelError


class SDKModel(ABC):
    """What the SDK providers share: their SDK, imported when one is made, its client with the
    API key, and ``query``. A provider names its SDK and writes the three steps of a query:
    ``request``, ``create`` and ``response``."""

    sdk_name: str
    """The SDK's package (``openai``)."""
    provider: str
    """The SDK's client class, and the provider's name in messages (``OpenAI``)."""
    key_env: str
    """Where the API key is when the config names no variable."""
    no_key_hint = ""
    """What the no-key error adds after "set VAR"."""

    def __init__(self, cfg: ModelConfig, retry: RetryConfig | None = None):
        self.sdk = import_sdk(self.sdk_name)
        self.cfg = cfg
        self.name = cfg.name
        self.client = client(self.sdk, self.provider, cfg, self._api_key(), retry)

    def _api_key(self) -> str:
        env_var = self.cfg.api_key_env or self.key_env
        key = os.environ.get(env_var)
        if key:
            return key
        if not self.cfg.base_url:
            raise AgentConfigError(f"model: no API key: set {env_var}{self.no_key_hint}")
        return "EMPTY"  # local servers usually accept any key

    def query(
        self, messages: list[dict], tools: list[dict], max_output_tokens: int | None = None
    ) -> ModelResponse:
        """``Model.query``: the provider's request, sent with its SDK, read into a response."""
        request = self.request(messages, tools, max_output_tokens)
        reply, attempts = call(self.sdk, self.provider, self.cfg.timeout_s, self.create(), request)
        return self.response(reply, request, attempts)

    @abstractmethod
    def request(
        self, messages: list[dict], tools: list[dict], max_output_tokens: int | None = None
    ) -> dict:
        """The keyword arguments of the SDK's call for this conversation."""

    @abstractmethod
    def create(self) -> Callable:
        """The SDK's ``with_raw_response.create`` of the provider's API."""

    @abstractmethod
    def response(self, reply, request: dict, attempts: int) -> ModelResponse:
        """The SDK's parsed ``reply`` to ``request`` as a ModelResponse."""


def import_sdk(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MLSBenchError(
            f"the {name} provider needs the {name!r} package; install the LLM extra: "
            "pip install 'mlsbench-env[llm]'"
        ) from None


def client(sdk, cls: str, cfg: ModelConfig, key: str, retry: RetryConfig | None):
    """The SDK's client class ``cls`` for ``cfg``, trying each request ``retry.max_attempts``
    times in all (default: RetryConfig's)."""
    retry = retry or RetryConfig()
    return getattr(sdk, cls)(
        api_key=key,
        base_url=cfg.base_url,
        timeout=cfg.timeout_s,
        max_retries=retry.max_attempts - 1,
    )


def call(sdk, provider: str, timeout_s: float, create, request: dict):
    """``create(**request)``, where ``create`` is the SDK's ``with_raw_response.create``: (the
    parsed reply, attempts). The SDK's errors, after its retries, become ``ModelError``."""
    try:
        raw = create(**request)
    except sdk.APIStatusError as e:
        raise status_error(provider, e.status_code, e.message) from None
    except sdk.APITimeoutError:  # before APIConnectionError, its base class
        raise ModelError(f"{provider} API request timed out after {timeout_s} s") from None
    except sdk.APIConnectionError as e:
        raise ModelError(f"cannot reach the {provider} API: {e}") from None
    return raw.parse(), raw.retries_taken + 1


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


def status_error(provider: str, status: int, message: str) -> ModelError:
    return ModelError(
        f"{provider} API returned HTTP {status}: {message}",
        overflow=context_overflow(status, message),
    )
