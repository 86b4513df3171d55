"""The mlsbench side of an rLLM or ART rollout: play one episode against an OpenAI-compatible
endpoint (the model the trainer serves) and hand back reward = score / 100.

    PYTHONPATH=. python examples/openai_endpoint_rollout.py --group 2

runs a group of episodes of `opt-evolution-strategy` at once, each against the repository's
fake OpenAI-compatible server (tests/test_agent_fakes.py) scripted with the task's reference
baseline (view, edit, test, submit), so it needs no network, weights or API key. In a trainer,
`rollout(base_url, model, ...)` gets the trainer's endpoint instead; see docs/recipes.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from mlsbench_env.agent import LLMAgent, load_config, make_model
from mlsbench_env.env import ResearchEnv
from mlsbench_env.spec import load_task

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "agents" / "openai-compatible-text.yaml"


def rollout(
    base_url: str,
    model: str,
    task: str,
    seed: int,
    runs_dir: str,
    action_format: str = "tools",
    **env_options,
):
    """One episode with the model at ``base_url``; what a trainer needs back from it.

    ``action_format``: ``tools`` (the server parses tool calls, e.g. vLLM with
    ``--enable-auto-tool-choice``) or ``text`` (a fenced JSON action per reply). Blocking (the
    env waits on sandbox processes): call it with ``asyncio.to_thread`` from async code."""
    cfg = load_config(
        AGENT,
        [
            f"model.base_url={base_url}",
            f"model.name={model}",
            f"model.action_format={action_format}",
        ],
    )
    env = ResearchEnv(
        load_task(task),
        runs_dir=runs_dir,
        agent_name=cfg.name,
        obs_max_tokens=cfg.context.obs_max_tokens,
        submit_on_truncation=True,  # a cut episode is scored on its last tested code
        **env_options,
    )
    try:
        result = LLMAgent(cfg, make_model(cfg.model, cfg.retry)).run(env, seed=seed)
    finally:
        env.close()  # the sandbox goes; the trajectory stays in runs_dir
    ep, info = result, result.final_info
    return {
        "reward": (ep.score or 0.0) / 100,  # an invalid or missing score counts as 0
        "score": ep.score,
        "status": result.status,  # submitted, truncated, model_error, ...
        "steps": ep.steps,
        "setting_scores": info.get("setting_scores"),
        "tamper_report": info.get("tamper_report"),
        "trajectory": f"{ep.run_dir}/trajectory.jsonl",
    }


def reference_plan(task: str) -> list[dict]:
    """The task's reference baseline as actions: view the editable file, edit, test, submit."""
    from mlsbench_env.episode import BaselineAgent

    t = load_task(task)
    agent = BaselineAgent(t, t.spec.reference_baseline)
    plan = [{"tool": "view", "args": {"path": t.regions[0].file}}]
    while plan[-1]["tool"] != "submit":
        plan.append(agent.act("", {}))
    return plan


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="opt-evolution-strategy")
    p.add_argument("--group", type=int, default=2, help="episodes of one seed played at once")
    args = p.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))  # the fake server lives with the tests
    from test_agent_fakes import FakeServer, as_openai

    plan = reference_plan(args.task)
    runs = tempfile.mkdtemp(prefix="mlsbench-recipe-")
    # the fake answers from a queue (one conversation), so each episode gets its own
    servers = [FakeServer([as_openai(a) for a in plan]) for _ in range(args.group)]
    for s in servers:
        s.__enter__()
    try:
        results = await asyncio.gather(
            *(
                asyncio.to_thread(
                    rollout, s.openai_url, "fake-model", args.task, 0, runs, final_seeds=[0]
                )
                for s in servers
            )
        )
    finally:
        for s in servers:
            s.__exit__(None, None, None)
    for s, r in zip(servers, results, strict=True):
        print(
            f"{s.openai_url}: status={r['status']} steps={r['steps']} score={r['score']:.1f} "
            f"reward={r['reward']:.3f} requests={len(s.requests)} "
            f"tamper_events={len(r['tamper_report'] or [])} {r['trajectory']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
