"""LLM agents: a small loop over a ``Model`` protocol and the env, configured by YAML.

Providers (``openai_chat``, ``anthropic_messages``) import their SDK lazily (the ``llm``
extra); ``ScriptedModel`` and ``ReplayModel`` need no API. See docs/agents.md.
"""

from mlsbench_env.agent.config import AgentConfig, AgentConfigError, load_config
from mlsbench_env.agent.loop import AgentResult, LLMAgent, parse_text_action, saved_run, summarize
from mlsbench_env.agent.models import (
    Model,
    ModelError,
    ModelResponse,
    ReplayModel,
    ScriptedModel,
    ToolCall,
    Usage,
    make_model,
)

__all__ = [
    "AgentConfig",
    "AgentConfigError",
    "AgentResult",
    "LLMAgent",
    "Model",
    "ModelError",
    "ModelResponse",
    "ReplayModel",
    "ScriptedModel",
    "ToolCall",
    "Usage",
    "load_config",
    "make_model",
    "parse_text_action",
    "saved_run",
    "summarize",
]
