"""docs/recipes.md: the mlsbench side of an rLLM or ART rollout (examples/), played with the
real `openai` SDK against the fake OpenAI-compatible server on the tiny task."""

import json
import sys
from pathlib import Path

import pytest
from test_agent_fakes import PERFECT, FakeServer, as_openai, oa_reply, tiny_task_once

pytest.importorskip("openai")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from openai_endpoint_rollout import rollout  # noqa: E402


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.mark.parametrize("action_format", ["tools", "text"])
def test_rollout_hands_back_score_over_100(tiny, tmp_path, action_format):
    replies = [
        as_openai(a) if action_format == "tools" else oa_reply(f"```json\n{json.dumps(a)}\n```")
        for a in PERFECT
    ]
    with FakeServer(replies) as srv:
        r = rollout(srv.openai_url, "fake-model", str(tiny.root), 0, str(tmp_path), action_format)
    assert r["status"] == "submitted" and r["steps"] == 4
    assert r["score"] == pytest.approx(100.0) and r["reward"] == pytest.approx(1.0)
    assert r["tamper_report"] == [] and set(r["setting_scores"]) >= {"one", "two"}
    assert Path(r["trajectory"]).is_file()
    assert [b["model"] for b in srv.requests] == ["fake-model"] * 4
