"""The task spec's schema: frozen pydantic models of ``task.yaml`` (``TaskSpec`` and its parts).

Every model forbids unknown fields, so a misspelt key is an error that names it; the checks that
span several fields live in ``TaskSpec``'s validator. Loading a file into these is ``load.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EditableRange(_Frozen):
    file: str = Field(description="Path of a scaffold file, relative to repo/.")
    lines: tuple[int, int] = Field(description="1-based inclusive [start, end] of the region.")

    @model_validator(mode="after")
    def _ordered(self):
        start, end = self.lines
        if start < 1 or end < start:
            raise ValueError(f"lines must be [start, end] with 1 <= start <= end, got {self.lines}")
        return self


class ForbiddenNames(_Frozen):
    names: tuple[str, ...] = Field(
        min_length=1,
        description="Names editable code may not use: as an attribute, a variable or a part "
        "of an imported name (e.g. register_hook, optim).",
    )
    reason: str = Field(min_length=1, description="Why, as the agent reads it in the refusal.")


class Policy(_Frozen):
    imports: tuple[str, ...] = Field(
        default=("math", "numpy"), description="Top-level modules editable code may import."
    )
    allow_io: bool = Field(default=False, description="Allow file I/O in editable code.")
    forbidden_names: tuple[ForbiddenNames, ...] = Field(
        default=(),
        description="The task's own forbidden names, each group with its reason (training "
        "outside the fixed optimizer, a task's extra file readers...).",
    )


class Setting(_Frozen):
    label: str = Field(description="Short unique name, e.g. rastrigin-30d.")
    command: str = Field(
        default="",
        description="Shell command run in the workspace (research tasks; a competition's "
        "settings are test splits of its submission and have none).",
    )
    hidden: bool = Field(default=False, description="Run only at the final evaluation.")


class Seeds(_Frozen):
    dev: int = Field(default=0, description="Seed of `test` runs.")
    final: tuple[int, ...] = Field(min_length=1, description="Seeds of the final evaluation.")


class Metric(_Frozen):
    name: str
    direction: Literal["higher", "lower"]
    log: bool = Field(default=False, description="Score on a log10 scale.")
    log_eps: float = Field(default=1e-12, gt=0, description="Values below are clipped (log).")
    bound: float | None = Field(default=None, description="The metric's known best value.")
    weight: float = Field(default=1.0, gt=0)


class Baseline(_Frozen):
    name: str
    title: str
    reference: str = Field(default="", description="Citation of the published method.")


class BudgetCheck(_Frozen):
    """A trusted check of the agent's code run before every setting run (each setting of a
    `test`, each setting x seed of the final evaluation): the harness measures (a parameter
    count, ...) and writes its verdict; a refused run does not start."""

    rule: str = Field(
        min_length=1,
        description="The budget in words (e.g. 'the whole model holds at most 100,000 numbers'), "
        "shown in the prompt and in every refusal.",
    )
    command: str = Field(
        default="",
        description="The check's command in the workspace; empty: each setting's own command. "
        "It runs with MLSBENCH_BUDGET_CHECK=1 and MLSBENCH_SETTING=<label>: the fixed harness "
        "measures instead of running and writes budget_check.json ({ok, message}) to "
        "MLSBENCH_OUT after every child has exited.",
    )
    timeout_s: float = Field(default=120.0, gt=0, description="One check.")


class Budgets(_Frozen):
    tests: int = Field(default=10, ge=0, description="Number of `test` calls.")
    compute_s: float = Field(default=1800.0, gt=0, description="Compute seconds for the episode.")
    max_steps: int = Field(default=60, ge=1, description="Tool calls per episode.")
    command_timeout_s: float = Field(default=60.0, gt=0, description="One `shell` command.")
    setting_timeout_s: float = Field(default=300.0, gt=0, description="One setting run.")
    wall_s: float | None = Field(
        default=None, gt=0, description="Wall-clock seconds for the whole episode (None: no limit)."
    )


class Limits(_Frozen):
    memory_mb: int = Field(default=4096, ge=64)
    processes: int = Field(default=256, ge=8)
    file_size_mb: int = Field(default=512, ge=1)


class Competition(_Frozen):
    """What a competition (``kind: competition``) grades and how its baseline pipelines run."""

    submission: str = Field(
        default="submission.csv", description="The file, relative to the workspace, that is graded."
    )
    sample_submission: str = Field(
        default="sample_submission.csv",
        description="The trivial submission shipped in repo/: the `default` baseline.",
    )
    run: str = Field(
        default="python solution.py",
        description="How a baseline pipeline (the files of baselines/<name>/) runs.",
    )
    max_submission_mb: float = Field(default=20.0, gt=0, description="Cap on the submission file.")
    hide: tuple[str, ...] = Field(
        default=(),
        description="Where the source data lives on a machine (absolute paths, or 'module:subdir' "
        "of an installed package): hidden in the sandbox so test labels cannot be looked up.",
    )


class TaskSpec(_Frozen):
    id: str
    version: int = Field(default=0, ge=0)
    title: str
    domain: str
    kind: Literal["research", "competition"] = "research"
    question: str
    background: str = ""
    interface: str = ""
    editable: tuple[EditableRange, ...] = ()
    creatable: tuple[str, ...] = ()
    secrets: tuple[str, ...] = Field(
        default=(),
        description="Files of hidden/ (instance keys, salts) that reach only the harness "
        "process of a final-evaluation run, over the secrets channel (docs/writing-tasks.md); "
        "they are never copied into a run's folder.",
    )
    policy: Policy = Policy()
    settings: tuple[Setting, ...] = Field(min_length=1)
    seeds: Seeds
    metrics: tuple[Metric, ...] = Field(min_length=1)
    baselines: tuple[Baseline, ...] = ()
    reference_baseline: str
    anchor: Literal["reference", "best"] = Field(
        default="reference",
        description="What scores 50 on each metric of each setting: the reference baseline's "
        "mean (reference), or the mean of whichever baseline is best on that metric, as "
        "MLS-Bench anchors (best). The default scaffold is never the best.",
    )
    show_baseline_results: bool = True
    show_baseline_code: bool = Field(
        default=False,
        description="Show each baseline's editable-region code in the prompt as read-only "
        "reference, as MLS-Bench does (research tasks; the env option of the same name "
        "overrides it).",
    )
    budgets: Budgets = Budgets()
    budget_check: BudgetCheck | None = None
    limits: Limits = Limits()
    competition: Competition | None = None

    @model_validator(mode="after")
    def _consistent(self):
        labels = [s.label for s in self.settings]
        if len(set(labels)) != len(labels):
            raise ValueError(f"settings: labels must be unique, got {labels}")
        if self.kind == "competition":
            if self.competition is None:
                raise ValueError("competition: a competition needs this block (submission, run...)")
            if self.editable:
                raise ValueError("editable: a competition has no edit surface; remove it")
            if self.budget_check is not None:
                raise ValueError(
                    "budget_check: a competition runs no code of the agent's in its harness; "
                    "only research tasks have one"
                )
            if self.show_baseline_code:
                raise ValueError(
                    "show_baseline_code: a competition's baselines are whole pipelines, not "
                    "edits of an editable region; only research tasks can show them"
                )
        else:
            if self.competition is not None:
                raise ValueError("competition: only for kind: competition")
            if not self.editable:
                raise ValueError("editable: a research task needs 1+ editable ranges")
            missing = [s.label for s in self.settings if not s.command.strip()]
            if missing:
                raise ValueError(f"settings: {missing} need a command")
            if not any(s.hidden for s in self.settings) or all(s.hidden for s in self.settings):
                raise ValueError("settings: need at least one visible and one hidden setting")
        names = [b.name for b in self.baselines]
        if "default" in names:
            raise ValueError("baselines: 'default' is the unchanged scaffold; do not list it")
        if self.reference_baseline not in names:
            raise ValueError(
                f"reference_baseline: {self.reference_baseline!r} is not a listed baseline {names}"
            )
        return self
