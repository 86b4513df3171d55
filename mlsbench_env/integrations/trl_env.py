"""A TRL ``environment_factory`` class for mlsbench episodes.

    from trl import GRPOConfig, GRPOTrainer
    from mlsbench_env.integrations.trl_env import trl_environment

    Env = trl_environment("opt-evolution-strategy", url="http://gpu-box:8000", final_seeds=[0])
    trainer = GRPOTrainer(model=..., train_dataset=ds, environment_factory=Env, args=GRPOConfig())

TRL's contract (trl 1.x, ``GRPOTrainer(environment_factory=...)``): the class takes no
arguments; ``reset(**row)`` gets every dataset column and returns the text appended to the last
user message (here the task prompt); every public method is a tool, its JSON schema read from
type hints and a Google-style docstring; ``get_reward()`` scores the finished rollout.

- The tool methods are generated from the env's own argument models (the source of our JSON
  schemas), as ``async def`` so TRL runs a batch's calls concurrently (its sync tools run one at
  a time); each call is one ``env.step`` in a worker thread. A bad argument is the episode's
  answer, as in-process; a call after the episode ended raises, and TRL shows the model why.
- Episodes run in-process (``ResearchEnv``) or on an ``mlsbench serve`` server (``url=``,
  ``RemoteEnv``); dataset columns ``task`` and ``seed`` pick the task and seed per row.
- ``get_reward()`` is the final score / 100 (0 when the rollout ended without a submit), and
  closes the episode: a rollout TRL cut at its turn limit leaves no sandbox behind. The terminal
  step's metadata (per-setting scores, tamper report, isolation) is kept in ``self.metadata``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from mlsbench_env.integrations import isolation_of, mark_harness, slim_info
from mlsbench_env.tools import TOOLS, arg_model


class MlsTRLEnv:
    """Base of the classes ``trl_environment`` makes (one per task and option set)."""

    task: str | None = None
    url: str | None = None
    token: str | None = None
    options: dict = {}
    reward_divisor: float = 100.0

    def __init__(self):
        self._env = None
        self._lock = threading.Lock()  # one step at a time per episode, whatever event loop
        self.done = True
        self.reward = 0.0
        self.metadata: dict[str, Any] = {}

    def reset(self, **row) -> str:
        """Start the row's episode (columns ``task``, ``seed``); returns the task prompt."""
        self._close()
        task = row.get("task") or self.task
        if task is None:
            raise ValueError("no task: give trl_environment(task) or a dataset column `task`")
        self._env = self._make(task)
        obs, _ = self._env.reset(seed=row.get("seed"))
        mark_harness(self._env, "trl")
        self.done, self.reward, self.metadata = False, 0.0, {}
        return obs

    def get_reward(self) -> float:
        """The rollout's reward (final score / 100; 0 without a submit); ends the episode."""
        self._close()
        return self.reward / self.reward_divisor

    # ------------------------------------------------------------------ internals
    def _make(self, task: str):
        opts = {"agent_name": "trl", **self.options}
        if self.url:
            from mlsbench_env.scale.client import RemoteEnv

            return RemoteEnv(task, self.url, token=self.token, **opts)
        from mlsbench_env.env import ResearchEnv

        return ResearchEnv(task, **opts)

    def _step_sync(self, tool: str, args: dict) -> str:
        with self._lock:
            if self.done or self._env is None:
                raise ValueError("The episode is over (its final score is in); stop calling tools.")
            obs, reward, term, trunc, info = self._env.step({"tool": tool, "args": args})
            if term or trunc:
                self.done, self.reward = True, float(reward)
                # asked now, not at reset: it waits for the sandbox to be ready (None remotely)
                self.metadata = slim_info(info, isolation_of(self._env))
            return obs

    async def _step(self, tool: str, args: dict) -> str:
        return await asyncio.to_thread(self._step_sync, tool, args)

    def _close(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            env.close()

    def __del__(self):
        try:
            self._close()
        except Exception:
            pass


def _tool_method(name: str, names: list[str]):
    """``async def name(self, **args) -> str`` with the tool's typed signature and a Google
    docstring (what ``transformers.utils.get_json_schema`` and so TRL read)."""
    model = arg_model(name, names)
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    lines = [" ".join((model.__doc__ or name).split())]
    annotations: dict[str, Any] = {}
    for field, spec in model.model_fields.items():
        default = inspect.Parameter.empty if spec.is_required() else spec.default
        kind = inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(field, kind, default=default, annotation=spec.annotation))
        annotations[field] = spec.annotation
    if model.model_fields:
        lines += ["", "Args:"]
        lines += [f"    {f}: {s.description or f}" for f, s in model.model_fields.items()]
    annotations["return"] = str

    async def tool(self, **args) -> str:
        return await self._step(name, args)

    tool.__name__ = tool.__qualname__ = name
    tool.__doc__ = "\n".join(lines)
    tool.__annotations__ = annotations
    tool.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    return tool


def trl_environment(
    task: str | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    tools: list[str] | None = None,
    reward_divisor: float = 100.0,
    **options,
) -> type[MlsTRLEnv]:
    """A class for ``GRPOTrainer(environment_factory=...)``: episodes of ``task`` (or each row's
    ``task`` column), in-process or on the server at ``url``; ``options`` as ``gym.make``'s."""
    names = list(tools or TOOLS)
    if "submit" not in names:
        names.append("submit")
    if options.get("max_jobs") and "test" in names and "jobs" not in names:
        names.append("jobs")
    attrs = {n: _tool_method(n, names) for n in names}
    attrs.update(
        task=task,
        url=url,
        token=token,
        reward_divisor=reward_divisor,
        options={**options, **({"tools": tools} if tools else {})},
        __doc__=f"mlsbench episodes of {task or 'each row`s task'} for TRL (tools: {names}).",
    )
    return type("MlsbenchEnv", (MlsTRLEnv,), attrs)
