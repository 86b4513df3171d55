"""show_baseline_code: the prompt shows each baseline's editable region as read-only reference
(task.yaml field, env option), and nothing of the hidden settings or private files with it."""

import dataclasses

import pytest
from pydantic import ValidationError

from mlsbench_env.spec import TaskSpec, load_task

SHOWN = "rl-value-visual-control"
NOT_SHOWN = "opt-evolution-strategy"
HEADING = "## Baseline code (read-only reference)"


def prompt(make_env, task, **options) -> str:
    obs, _ = make_env(task, **options).reset(seed=0)
    return obs


def shown_by_the_task():
    """SHOWN as a task whose task.yaml turns the field on (the shipped tasks leave it off)."""
    task = load_task(SHOWN)
    spec = task.spec.model_copy(update={"show_baseline_code": True})
    return dataclasses.replace(task, spec=spec)


def test_the_task_choice_shows_every_baseline_region_with_its_title(make_env):
    task = shown_by_the_task()
    obs = prompt(make_env, task)
    section = obs.split(HEADING, 1)[1].split("## Tools", 1)[0]
    for b in task.spec.baselines:
        assert f"### {b.title}" in section
        (text,) = task.baseline_regions(b.name).values()
        assert text.rstrip("\n") in section
    # in the listed order, after the results table, before the tools
    starts = [section.index(f"### {b.title}") for b in task.spec.baselines]
    assert starts == sorted(starts)
    for s in task.spec.settings:
        if s.hidden:
            assert s.label not in obs and s.command not in obs
    for folder in ("hidden", "private"):
        for path in (task.root / folder).rglob("*.py"):
            assert path.read_text().strip() not in obs


def test_the_env_option_overrides_the_task_both_ways(make_env):
    assert HEADING not in prompt(make_env, shown_by_the_task(), show_baseline_code=False)
    # the shipped tasks keep the baselines' code out of reach under the default protocol
    assert not any(load_task(t).spec.show_baseline_code for t in (SHOWN, NOT_SHOWN))
    assert HEADING not in prompt(make_env, NOT_SHOWN)
    shown = prompt(make_env, NOT_SHOWN, show_baseline_code=True)
    task = load_task(NOT_SHOWN)
    for b in task.spec.baselines:
        (text,) = task.baseline_regions(b.name).values()
        assert text.rstrip("\n") in shown


def test_competitions_refuse_it_in_task_yaml_and_say_so_under_the_option(make_env):
    spec = load_task("comp-diamond-prices").spec.model_dump()
    with pytest.raises(ValidationError, match="whole pipelines"):
        TaskSpec.model_validate({**spec, "show_baseline_code": True})
    obs = prompt(make_env, "comp-diamond-prices", show_baseline_code=True)
    assert "Baseline code is not shown" in obs and HEADING not in obs
