"""A SkyRL ``BaseTextEnv`` for mlsbench episodes, registered with skyrl_gym as ``mlsbench``.

    import mlsbench_env.integrations.skyrl_env  # registers "mlsbench"
    env = skyrl_gym.make("mlsbench", env_config={}, extras={"task": "opt-evolution-strategy",
                                                            "seed": 0, "max_turns": 40})

In a SkyRL dataset: ``env_class: mlsbench`` and ``env_extras: {task, seed, options}`` per row
(``options`` as ``gym.make``'s; ``env_config`` may carry ``url``/``token`` for an ``mlsbench
serve`` server and default ``options``). SkyRL's generator runs ``init`` and ``step`` in worker
threads, so a blocking step is fine here.

Actions are the model's raw text, parsed as our text-mode agent parses them (one fenced JSON
``{"tool", "args"}`` block, or a reply that is only that object); a reply without one costs no
step and is answered with the reason, as in ``mlsbench run``. The episode ends at ``submit``, a
budget running out, or SkyRL's ``max_turns`` (then closed unscored). The terminal step's
metadata carries the score, per-setting scores, tamper report and the sandbox's isolation.
"""

from __future__ import annotations

from typing import Any

from mlsbench_env.agent.config import TEXT_FORMAT, PromptConfig, fill
from mlsbench_env.agent.loop import parse_text_action
from mlsbench_env.integrations import isolation_of, mark_harness, require, slim_info
from mlsbench_env.tools import usage

require("skyrl_gym", "skyrl")

from skyrl_gym.envs import register  # noqa: E402
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput  # noqa: E402

ENV_ID = "mlsbench"
DEFAULT_TASK = "opt-evolution-strategy"


def _plain(x) -> dict:
    """An omegaconf DictConfig (what SkyRL passes) or a dict, as a plain dict."""
    if x is None:
        return {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(x):
            return dict(OmegaConf.to_container(x, resolve=True))  # type: ignore[arg-type]
    except ImportError:
        pass
    return dict(x)


class MlsSkyRLEnv(BaseTextEnv):
    """One mlsbench episode per instance (SkyRL makes one per trajectory)."""

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None):
        super().__init__()
        cfg, extras = _plain(env_config), _plain(extras)
        self.task = extras.get("task") or cfg.get("task") or DEFAULT_TASK
        self.seed = extras.get("seed")
        self.max_turns = int(extras.get("max_turns") or 10**9)
        options = {"agent_name": "skyrl", **cfg.get("options", {}), **extras.get("options", {})}
        if cfg.get("url"):
            from mlsbench_env.scale.client import RemoteEnv

            self.env: Any = RemoteEnv(self.task, cfg["url"], token=cfg.get("token"), **options)
        else:
            from mlsbench_env.env import ResearchEnv

            self.env = ResearchEnv(self.task, **options)
        self.done = False
        self.final: dict[str, Any] = {}

    def init(self, prompt: list[dict]) -> tuple[list[dict], dict[str, Any]]:
        """The row's prompt, then the task prompt and how to act (one fenced JSON action)."""
        obs, info = self.env.reset(seed=self.seed)
        mark_harness(self.env, "skyrl", "skyrl-gym")
        names = [t["name"] for t in info["tools"]]
        how = fill(TEXT_FORMAT, tools=usage(names))
        messages = [*(prompt or []), {"role": "user", "content": f"{obs}\n\n{how}"}]
        return messages, {"tools": info["tools"], "budget": info["budget"]}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self.turns += 1
        if self.done:
            return self._out("The episode is over.", 0.0, True, {"ok": False})
        parsed, problem = parse_text_action(action if isinstance(action, str) else str(action))
        if parsed is None:
            text, reward, done, meta = (
                fill(PromptConfig().format_error, error=problem or "no action found"),
                0.0,
                False,
                {},
            )
        else:
            text, reward, term, trunc, info = self.env.step(parsed)
            done = term or trunc
            isolation = isolation_of(self.env) if done else None  # before the sandbox closes
            meta = {**slim_info(info, isolation), "terminated": term, "truncated": trunc}
        if not done and self.turns >= self.max_turns:
            done, meta["cut"] = True, f"SkyRL's max_turns ({self.max_turns})"
        if done:
            self.done, self.final = True, meta
            self.env.close()  # the sandbox goes now, not when SkyRL drops the object
        return self._out(text, float(reward), done, meta)

    def _out(self, text: str, reward: float, done: bool, meta: dict) -> BaseTextEnvStepOutput:
        return BaseTextEnvStepOutput(
            observations=[{"role": "user", "content": text}],
            reward=reward,
            done=done,
            metadata=meta,
        )

    def get_metrics(self) -> dict[str, Any]:
        score = self.final.get("score")
        return {
            "score": float(score) if score is not None else 0.0,
            "submitted": self.final.get("terminated", False),
        }

    def close(self) -> None:
        self.env.close()


register(id=ENV_ID, entry_point="mlsbench_env.integrations.skyrl_env:MlsSkyRLEnv")
