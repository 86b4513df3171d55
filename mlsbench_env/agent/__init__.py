"""LLM agents: ``LLMAgent`` plays the ``Agent`` protocol of ``mlsbench_env.episode`` with a
``Model``, configured by YAML.

Providers (``openai_chat``, ``anthropic_messages``) import their SDK lazily (the ``llm``
extra) and retry through it; ``ScriptedModel`` and ``ReplayModel`` need no API. See
docs/agents.md.
"""

from mlsbench_env.agent.config import AgentConfig, load_config
from mlsbench_env.agent.loop import LLMAgent, parse_text_action
from mlsbench_env.agent.make import make_agent
from mlsbench_env.agent.models import (
    Model,
    ModelResponse,
    ReplayModel,
    ScriptedModel,
    ToolCall,
    Usage,
    make_model,
)
from mlsbench_env.agent.resume import saved_run
from mlsbench_env.agent.summary import summarize
from mlsbench_env.agent.totals import Totals
from mlsbench_env.errors import AgentConfigError, ModelError

__all__ = [
    "AgentConfig",
    "AgentConfigError",
    "LLMAgent",
    "Model",
    "ModelError",
    "ModelResponse",
    "ReplayModel",
    "ScriptedModel",
    "ToolCall",
    "Usage",
    "Totals",
    "load_config",
    "make_agent",
    "make_model",
    "parse_text_action",
    "saved_run",
    "summarize",
]
