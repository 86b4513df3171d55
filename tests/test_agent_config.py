"""Agent YAML, --set overrides, text actions, retry settings and cost: the pieces, without an
env."""

from pathlib import Path

import pytest
import yaml

from mlsbench_env.agent import load_config, make_model, parse_text_action
from mlsbench_env.agent.config import dump_config
from mlsbench_env.agent.models import Usage
from mlsbench_env.agent.prompts import STYLES
from mlsbench_env.agent.totals import cost_usd
from mlsbench_env.errors import AgentConfigError

AGENTS = sorted((Path(__file__).parent.parent / "agents").glob("*.yaml"))


@pytest.mark.parametrize("path", AGENTS, ids=lambda p: p.name)
def test_shipped_agent_files_load(path):
    cfg = load_config(path)
    assert cfg.model.provider in ("openai", "anthropic") and cfg.model.name
    assert "{action_format}" in cfg.prompts.system
    # every shipped agent picks a built-in style in its own file (not by the default)
    assert yaml.safe_load(path.read_text())["prompts"]["style"] in STYLES
    assert STYLES[cfg.prompts.style] in cfg.prompts.system


def test_style_picks_the_system_prompt_and_survives_a_saved_config():
    base = {"name": "x", "model": {"provider": "openai", "name": "m"}}
    sci, eng = load_config(base), load_config(base, ["prompts.style=eng"])
    assert sci.prompts.style == "sci" and sci.prompts.system.startswith(STYLES["sci"])
    assert eng.prompts.system.startswith(STYLES["eng"]) and STYLES["sci"] not in eng.prompts.system
    assert "hyperparameters" in STYLES["sci"] and "baselines" in STYLES["sci"]
    # a saved agent.yaml (the filled text) loads back into the same config
    assert load_config(yaml.safe_load(dump_config(eng))) == eng
    custom = load_config(base, ["prompts.system=Be brief. {style}", "prompts.style=eng"])
    assert custom.prompts.system == "Be brief. " + STYLES["eng"]
    with pytest.raises(AgentConfigError, match="prompts.style"):
        load_config(base, ["prompts.style=poetry"])


def test_shipped_agents_cover_each_provider_and_text_mode():
    cfgs = [load_config(p) for p in AGENTS]
    assert {c.model.provider for c in cfgs} == {"openai", "anthropic"}
    assert any(c.model.action_format == "text" and c.model.base_url for c in cfgs)


def test_misspelt_key_is_an_error_that_names_it(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("name: x\nmodel: {provider: openai, name: m, temprature: 0.3}\n")
    with pytest.raises(AgentConfigError, match=r"model\.temprature: unknown field"):
        load_config(path)
    with pytest.raises(AgentConfigError, match="no such agent file"):
        load_config(tmp_path / "missing.yaml")


def test_set_overrides_any_field_with_yaml_values():
    base = {"name": "x", "model": {"provider": "openai", "name": "m"}}
    cfg = load_config(
        base,
        [
            "model.temperature=0.2",
            "model.params.reasoning_effort=high",
            "tools=[view, submit]",
            "limits.cost_limit_usd=null",
            "prompts.instance=Task {task}: {observation}",
            "prompts.format_error={error}",
        ],
    )
    assert cfg.model.temperature == 0.2
    assert cfg.model.params == {"reasoning_effort": "high"}
    assert cfg.tools == ("view", "submit")
    assert cfg.limits.cost_limit_usd is None
    assert cfg.prompts.instance == "Task {task}: {observation}"
    assert cfg.prompts.format_error == "{error}"
    with pytest.raises(AgentConfigError, match="KEY=VALUE"):
        load_config(base, ["model.temperature"])
    with pytest.raises(AgentConfigError, match="retry.max_attempts"):
        load_config(base, ["retry.max_attempts=0"])


def test_config_is_frozen():
    cfg = load_config({"name": "x", "model": {"provider": "scripted"}})
    with pytest.raises(Exception):  # noqa: B017 (pydantic's frozen error)
        cfg.model.name = "y"


@pytest.mark.parametrize(
    "text, action",
    [
        ('Thought.\n```json\n{"tool": "test", "args": {}}\n```', '{"tool": "test", "args": {}}'),
        ('```\n{"tool": "test"}\n```', '{"tool": "test"}'),
        ('  {"tool": "submit", "args": {}}  ', '{"tool": "submit", "args": {}}'),
        ('```python\nprint(1)\n```\n```json\n{"tool": "test"}\n```', '{"tool": "test"}'),
        (
            '```json\n{"tool": "view", "args": {"path": "a.py"\n```',
            '{"tool": "view", "args": {"path": "a.py"',
        ),
    ],
)
def test_text_actions_are_found(text, action):
    assert parse_text_action(text) == (action, None)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("I will now think.", "no action found"),
        ('```json\n{"tool": "a"}\n```\n```json\n{"tool": "b"}\n```', "2 action blocks"),
        ("", "no action found"),
    ],
)
def test_text_without_one_action_says_why(text, problem):
    action, why = parse_text_action(text)
    assert action is None and problem in why


def test_cost_from_usage_and_prices():
    prices = load_config(
        {"name": "x", "model": {"provider": "scripted"}, "prices": {"input": 2, "output": 8}}
    ).prices
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=500_000, output_tokens=250_000)
    assert cost_usd(usage, prices) == pytest.approx(2 + 1 + 2)  # cached defaults to input


@pytest.mark.parametrize(
    "provider, sdk", [("openai", "openai"), ("anthropic", "anthropic")], ids=["openai", "anthropic"]
)
def test_retry_max_attempts_is_the_sdk_clients_retries(monkeypatch, provider, sdk):
    pytest.importorskip(sdk)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    cfg = load_config({"name": "x", "model": {"provider": provider, "name": "m"}}, [])
    assert make_model(cfg.model, cfg.retry).client.max_retries == 5  # 6 attempts by default
    cfg = load_config(
        {"name": "x", "model": {"provider": provider, "name": "m"}}, ["retry.max_attempts=1"]
    )
    assert make_model(cfg.model, cfg.retry).client.max_retries == 0


def test_backoff_settings_are_the_sdks_not_the_configs():
    """Configs (and trajectories) from before set the backoff by hand: they still load, and
    the fields are dropped; a misspelt retry field is still refused."""
    retry = {"initial_s": 1, "max_s": 30, "jitter": 0.5, "max_attempts": 2}
    cfg = load_config({"name": "x", "model": {"provider": "scripted"}, "retry": retry})
    assert cfg.retry.model_dump() == {"max_attempts": 2, "max_consecutive_errors": 3}
    with pytest.raises(AgentConfigError, match="retry.max_attempt: unknown field"):
        load_config({"name": "x", "model": {"provider": "scripted"}, "retry": {"max_attempt": 1}})
