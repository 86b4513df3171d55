"""The SkyRL text env, made and played through skyrl_gym itself."""

import json

import pytest
from test_agent_fakes import PERFECT, tiny_task_once

skyrl_gym = pytest.importorskip("skyrl_gym", reason="needs the [skyrl] extra")

import mlsbench_env.integrations.skyrl_env  # noqa: E402, F401  (registers "mlsbench")
from mlsbench_env.env import ResearchEnv  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


def reply(action: dict, thought: str = "Next step.") -> str:
    """A model's text-mode reply: some reasoning, then one fenced JSON action."""
    return f"{thought}\n\n```json\n{json.dumps(action)}\n```"


def make(tiny, tmp_path, **extras):
    options = {
        "final_seeds": [0],
        "runs_dir": str(tmp_path / "runs"),
        "work_dir": str(tmp_path / "eps"),
    }
    return skyrl_gym.make(
        "mlsbench",
        env_config={"options": options},
        extras={"task": str(tiny.root), "seed": 0, **extras},
    )


def test_skyrl_make_plays_a_scripted_episode_to_the_in_process_score(tiny, tmp_path):
    env = make(tiny, tmp_path, max_turns=20)
    messages, meta = env.init([{"role": "system", "content": "You are a researcher."}])
    assert messages[0]["role"] == "system" and "Research task" in messages[1]["content"]
    assert "```json" in messages[1]["content"] and {t["name"] for t in meta["tools"]} >= {
        "view",
        "submit",
    }
    out = env.step("I will just think about it.")  # no action: no step taken, the reason given
    assert (
        "No action was run: no action found" in out["observations"][0]["content"]
        and not out["done"]
    )
    for action in PERFECT:
        out = env.step(reply(action))
    local = ResearchEnv(tiny, runs_dir=None, work_dir=str(tmp_path / "local"), final_seeds=(0,))
    try:
        local.reset(seed=0)
        for action in PERFECT:
            *_, info = local.step(json.dumps(action))
    finally:
        local.close()
    assert out["done"] and out["reward"] == pytest.approx(info["score"])
    assert out["metadata"]["setting_scores"] == info["setting_scores"]
    assert out["metadata"]["tamper_report"] == [] and "isolation" in out["metadata"]
    assert env.get_metrics() == {"score": pytest.approx(info["score"]), "submitted": True}
    assert not any((tmp_path / "eps").glob("ep-*"))  # closed at the end, not at garbage collection


def test_max_turns_cuts_the_episode_and_removes_its_sandbox(tiny, tmp_path):
    env = make(tiny, tmp_path, max_turns=2)
    env.init([])
    assert not env.step(reply(PERFECT[0]))["done"]
    out = env.step(reply(PERFECT[0]))
    assert out["done"] and out["reward"] == 0.0 and "max_turns" in out["metadata"]["cut"]
    assert not any((tmp_path / "eps").glob("ep-*"))
    assert env.get_metrics() == {"score": 0.0, "submitted": False}
