"""Agent configuration: YAML validated into frozen pydantic models, with dotted overrides.

A misspelt key is an error that names it; ``--set model.temperature=0.2`` overrides any field
(the value is read as YAML, so numbers, booleans, lists and null work); the resolved config
is saved with each run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlsbench_env.agent.prompts import STYLES
from mlsbench_env.errors import AgentConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Frozen):
    provider: Literal["openai", "anthropic", "scripted", "replay"] = Field(
        description="openai (Chat Completions, also any OpenAI-compatible server), anthropic "
        "(Messages API), scripted (actions listed in `script`), replay (a saved trajectory)."
    )
    name: str = Field("", description="Model name sent to the API, e.g. gpt-4.1.")
    base_url: str | None = Field(
        None, description="API base URL (OpenAI-compatible servers: http://host:8000/v1)."
    )
    api_key_env: str | None = Field(
        None,
        description="Environment variable holding the API key (default OPENAI_API_KEY / "
        "ANTHROPIC_API_KEY; a base_url server without a key gets a placeholder).",
    )
    action_format: Literal["tools", "text"] = Field(
        "tools",
        description="tools: native function calling; text: one fenced JSON action per reply "
        "(for models or servers without tool calling).",
    )
    temperature: float | None = Field(None, ge=0, description="Sampling temperature.")
    max_output_tokens: int = Field(4096, ge=1, description="Cap on tokens per reply.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra request fields passed as they are (top_p, reasoning_effort, ...).",
    )
    timeout_s: float = Field(300.0, gt=0, description="One API request.")
    script: tuple[str | dict, ...] = Field(
        (), description="scripted: the actions (JSON strings or dicts), one per reply."
    )
    trajectory: str | None = Field(None, description="replay: the trajectory.jsonl to replay.")


SYSTEM_PROMPT = "{style}\n{action_format}"

TEXT_FORMAT = """\
Act by ending each reply with exactly one action: a JSON object in a fenced code block, e.g.

```json
{"tool": "view", "args": {"path": "."}}
```

The tools and their arguments:
{tools}"""


class PromptConfig(_Frozen):
    """Templates; the placeholders named below are replaced, other braces are left as they are."""

    style: Literal["sci", "eng"] = Field(
        "sci",
        description="The built-in system prompt that fills {style} in `system`: sci (a new "
        "algorithmic contribution; tuning, capacity, copies of baselines and local tricks do not "
        "count) or eng (the best working solution within the task's rules).",
    )
    system: str = Field(
        SYSTEM_PROMPT,
        description="System prompt; {style} becomes the chosen style's prompt, {action_format} "
        "text_format in text mode (nothing in tools mode), {task} the task id.",
    )
    instance: str = Field(
        "{observation}",
        description="First user message; {observation} is the env's task prompt, {task} the id.",
    )
    text_format: str = Field(
        TEXT_FORMAT, description="text mode: how to write an action; {tools} lists the tools."
    )
    format_error: str = Field(
        "No action was run: {error}",
        description="Reply to a model message with no usable action; {error} says why.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_style(cls, data: Any) -> Any:
        # filled when the config is read, so every reader of `system` (the loop, trajectory
        # export) sees the final text and the saved agent.yaml holds it
        if isinstance(data, dict) and isinstance(data.get("system", SYSTEM_PROMPT), str):
            style = data.get("style", "sci")
            if style in STYLES:
                return {
                    **data,
                    "system": fill(data.get("system", SYSTEM_PROMPT), style=STYLES[style]),
                }
        return data


def fill(template: str, **values: str) -> str:
    """Replace ``{name}`` for the given names only (JSON braces in prompts stay intact)."""
    for k, v in values.items():
        template = template.replace("{" + k + "}", v)
    return template


class ContextConfig(_Frozen):
    obs_max_tokens: int = Field(4000, ge=100, description="Cap on one command's output.")
    context_window: int = Field(128_000, ge=1000, description="The model's context, in tokens.")
    keep_last: int = Field(
        6,
        ge=1,
        description="Trimming leaves the last this-many messages alone unless the window cannot "
        "hold them with the rest (then they go too, oldest first, and the newest is cut).",
    )
    margin: float = Field(
        0.05,
        ge=0,
        lt=0.5,
        description="Share of the window kept free for what our token count cannot see (the "
        "server's tokenizer and chat template); the count is also scaled by the ratio the "
        "server's reported prompt_tokens show.",
    )


class Prices(_Frozen):
    """US dollars per million tokens."""

    input: float = Field(0.0, ge=0, description="Uncached input tokens.")
    cached_input: float | None = Field(None, ge=0, description="Cached input (default input).")
    output: float = Field(0.0, ge=0, description="Output tokens (reasoning included).")


LEGACY_RETRY_FIELDS = ("initial_s", "max_s", "jitter")


class RetryConfig(_Frozen):
    max_attempts: int = Field(
        6,
        ge=1,
        description="Tries per model call: the provider SDK's retries (timeouts, 429, 5xx), "
        "with its backoff and the server's retry-after.",
    )
    max_consecutive_errors: int = Field(
        3, ge=1, description="Failed model calls (after retries) in a row that end the run."
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_backoff(cls, data: Any) -> Any:
        # configs and trajectories written before the SDKs took over the retries set the
        # backoff by hand; it is the SDK's now, so these still load and the fields go
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in LEGACY_RETRY_FIELDS}
        return data


class LimitsConfig(_Frozen):
    max_model_calls: int | None = Field(
        None, ge=1, description="Model calls per episode (default 2 x the env's max_steps)."
    )
    cost_limit_usd: float | None = Field(None, gt=0, description="Stop when cost passes this.")
    max_format_errors: int = Field(
        3,
        ge=1,
        description="Replies in a row with no action in them (no tool call, no fenced JSON) "
        "that end the run with exit status format_errors. An action the env rejects is not "
        "one: the env answers it and charges a step.",
    )


class AgentConfig(_Frozen):
    name: str = Field(description="Recorded in the run folder name and the trajectory.")
    model: ModelConfig
    prompts: PromptConfig = PromptConfig()
    tools: tuple[str, ...] | None = Field(None, description="Tool subset (default: all).")
    protocol: str | None = Field(
        None,
        description="Protocol preset of its episodes (docs/protocols.md; a caller's --protocol "
        "wins). A preset's tool list replaces `tools`.",
    )
    context: ContextConfig = ContextConfig()
    prices: Prices = Prices()
    retry: RetryConfig = RetryConfig()
    limits: LimitsConfig = LimitsConfig()


def _parse_override(item: str, as_text: bool = False) -> tuple[list[str], Any]:
    if "=" not in item:
        raise AgentConfigError(
            f"--set expects KEY=VALUE (e.g. model.temperature=0.2), got {item!r}"
        )
    key, raw = item.split("=", 1)
    value: Any = raw
    if not as_text and raw.strip():
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
    return key.strip().split("."), value


def apply_overrides(
    data: dict, overrides: list[str] | tuple[str, ...], as_text: frozenset[str] = frozenset()
) -> dict:
    """Dotted ``a.b=c`` assignments into a nested dict (a copy); values are read as YAML,
    except for the keys in ``as_text``."""
    data = yaml.safe_load(yaml.safe_dump(data)) or {}
    for item in overrides:
        path, value = _parse_override(item, item.split("=", 1)[0].strip() in as_text)
        node = data
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return data


def _describe(e: ValidationError, where: str) -> str:
    lines = []
    for err in e.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{field}: unknown field (see docs/agents.md for the fields)")
        elif err["type"] == "missing":
            lines.append(f"{field}: required field is missing")
        else:
            lines.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
    return f"{where}: " + "; ".join(lines)


def load_config(
    source: str | Path | dict, overrides: list[str] | tuple[str, ...] = ()
) -> AgentConfig:
    """An AgentConfig from a YAML file (or a dict), with ``--set`` overrides applied."""
    where = "agent config"
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise AgentConfigError(f"{path}: no such agent file (try agents/openai.yaml)")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise AgentConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise AgentConfigError(f"{path}: expected a mapping of fields")
    try:
        return AgentConfig.model_validate(apply_overrides(data, overrides))
    except ValidationError as e:
        # a value read as YAML may have been meant as text ("{observation}" is a YAML mapping):
        # retry the overrides of the fields that failed as plain strings
        failed = {".".join(str(p) for p in err["loc"]) for err in e.errors()}
        keys = {o.split("=", 1)[0].strip() for o in overrides if "=" in o}
        as_text = frozenset(k for k in keys if any(f == k or f.startswith(k + ".") for f in failed))
        if not as_text:
            raise AgentConfigError(_describe(e, where)) from None
        try:
            return AgentConfig.model_validate(apply_overrides(data, overrides, as_text))
        except ValidationError as e2:
            raise AgentConfigError(_describe(e2, where)) from None


def dump_config(config: AgentConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
