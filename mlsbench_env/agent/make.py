"""``make_agent``: the agent a spec names (a baseline, or an LLM agent from its config), the one
factory `mlsbench run`, `mlsbench eval` and the matrix's workers use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlsbench_env.agent.config import AgentConfig, load_config
from mlsbench_env.agent.loop import LLMAgent
from mlsbench_env.agent.models import make_model
from mlsbench_env.env.protocol import get_protocol
from mlsbench_env.episode import Agent, BaselineAgent
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.spec import Task


def make_agent(spec: Any, task: Task, *, overrides=(), **options) -> Agent:
    """The agent ``spec`` names, for ``task``:

    - ``"baseline:NAME"`` plays that baseline's edit (``strongest`` / ``reference``: the task's
      reference baseline; ``default``: the scaffold unchanged);
    - a YAML path, a config dict or an ``AgentConfig``: an LLM agent with its config's model
      (``overrides``: ``--set`` items; ``options``: ``LLMAgent``'s, e.g. ``on_step``,
      ``score_unsubmitted``, or ``model=`` to use another model than the config's). Its
      ``protocol:`` key, where set, reaches the env through ``episode.env_defaults``."""
    if isinstance(spec, str) and spec.startswith("baseline:"):
        if overrides or options:
            raise MLSBenchError(
                f"{spec}: a baseline agent takes no options; got {sorted(options) or 'overrides'}"
            )
        name = spec.split(":", 1)[1]
        if name in ("strongest", "reference"):
            name = task.spec.reference_baseline
        return BaselineAgent(task, name)

    if isinstance(spec, str | Path) and not str(spec).endswith((".yaml", ".yml")):
        raise MLSBenchError(
            f"unknown agent {str(spec)!r}; expected baseline:<name> (one of: "
            f"{', '.join(task.baseline_names)}, strongest) or an agent YAML file "
            "(e.g. agents/openai.yaml)"
        )
    cfg = spec if isinstance(spec, AgentConfig) and not overrides else None
    if cfg is None:
        source = spec.model_dump(mode="json") if isinstance(spec, AgentConfig) else spec
        cfg = load_config(source, overrides)
    get_protocol(cfg.protocol)  # an unknown preset is refused here, naming the presets
    model = options.pop("model", None) or make_model(cfg.model, cfg.retry)
    return LLMAgent(cfg, model, **options)
