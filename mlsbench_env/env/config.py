"""The env's options (``gym.make(id, **options)``): the rules of an episode, which change what
an agent may do and therefore its score, and the deployment, which says where and how the
episode runs and never changes a score."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlsbench_env.env.protocol import apply_protocol


class EpisodeRules(BaseModel):
    """What an agent may do; unset budgets come from the task. Two runs compare only under
    the same rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: str = Field(
        "default",
        description="Protocol preset (env/protocol.py, docs/protocols.md): default | "
        "mlsbench-paper | mlsbench-lite | mlsbench-v3. A preset fixes budgets and tools; "
        "setting one of those to another value is refused.",
    )
    tools: tuple[str, ...] | None = Field(None, description="Tool subset (default: all).")
    max_steps: int | None = Field(None, ge=1, description="Tool calls per episode.")
    test_budget: int | None = Field(None, ge=0, description="Number of `test` calls.")
    compute_budget_s: float | None = Field(None, gt=0, description="Compute seconds.")
    command_timeout_s: float | None = Field(None, gt=0, description="One shell command.")
    obs_max_tokens: int = Field(4000, ge=100, description="Cap on command output shown.")
    reward_scale: float = Field(1.0, gt=0, description="Terminal reward = score x this.")
    submit_on_truncation: bool = Field(
        False,
        description="When a budget runs out, run the final evaluation of the "
        "code of the last test (or the current code if none) anyway (explicit opt-in; never "
        "done silently).",
    )
    final_seeds: tuple[int, ...] | None = Field(
        None, description="Override the task's final seeds (quick checks; not comparable)."
    )
    max_jobs: int = Field(
        0,
        ge=0,
        description="Background tests at once (`test` with wait=false, polled with the `jobs` "
        "tool). 0: off (the default), `test` always blocks.",
    )
    show_baseline_code: bool | None = Field(
        None,
        description="Show the baselines' editable-region code in the prompt as read-only "
        "reference (MLS-Bench's rigorous-codebase prompt). None: the task's choice "
        "(task.yaml show_baseline_code).",
    )
    dense_reward: float = Field(
        0.0,
        ge=0,
        description="Opt-in shaping: a test whose visible score beats the best earlier one by d "
        "points pays dense_reward x d x reward_scale on the step that shows it. The terminal "
        "reward stays the final score. 0: off.",
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        # the preset's values are filled in, so the recorded config says what ran
        return apply_protocol(data) if isinstance(data, dict) else data


class Deployment(BaseModel):
    """Where the episode runs and where its records go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sandbox: str = Field("local", description="Sandbox backend: local | docker.")
    require_isolation: bool = Field(
        False,
        description="Refuse to reset where agent code cannot run under Landlock (the kernel "
        "lacks it, or a seccomp filter hides it) instead of running with the sandbox alone.",
    )
    gpus: int = Field(
        0, ge=0, description="GPUs per episode (docker backend); compute is charged wall x GPUs."
    )
    runs_dir: str | None = Field("runs", description="Trajectory logs go here (None: no log).")
    work_dir: str | None = Field(None, description="Where episode workspaces live.")
    agent_name: str = Field("agent", description="Recorded in the log and run folder name.")
    max_experiments: int | None = Field(
        None,
        ge=1,
        description="At most this many sandbox commands (test settings, shell commands, final "
        "evaluations) at once on this machine, counted across processes; the others wait, "
        "unbilled (mlsbench_env.tools.jobs.Slots). None: no limit.",
    )


class EnvConfig(Deployment, EpisodeRules):
    """Every option of an episode, flat, as ``gym.make`` takes them."""

    def rules(self) -> EpisodeRules:
        return EpisodeRules(**self.model_dump(include=set(EpisodeRules.model_fields)))

    def deployment(self) -> Deployment:
        return Deployment(**self.model_dump(include=set(Deployment.model_fields)))
