"""A matrix cell's store row: ``run_cell`` plays the cell's episode in this process and builds
its row from the result and the trajectory (``episode_row``); ``failed_row`` records a cell out
of tries. ``write_json`` is how a worker hands files to the driver (state, result).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlsbench_env.scale.matrix import Cell


def run_cell(
    cell: Cell,
    runs_dir: str,
    work_dir: str,
    state: Path | None = None,
    score_unsubmitted: bool = True,
) -> dict:
    """Play the cell's episode in this process; the store row of its result."""
    from mlsbench_env.agent import make_agent
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.env.protocol import with_agent_defaults
    from mlsbench_env.episode import env_defaults, run_episode
    from mlsbench_env.scale.matrix import baseline_name
    from mlsbench_env.spec import load_task

    started = time.time()
    task = load_task(cell.task)
    opts = {**cell.options_dict, "runs_dir": runs_dir, "work_dir": work_dir}
    opts["agent_name"] = "".join(c if c.isalnum() or c in "-_." else "-" for c in cell.agent.label)
    if score_unsubmitted:  # a harness policy, like retries: not part of the cell's key
        opts.setdefault("submit_on_truncation", True)
    noted: list = []

    def note(*_):  # the run folder is known after reset: tell the driver (progress, kills)
        if state is not None and not noted and env.run_dir:
            noted.append(1)
            write_json(
                state,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "trajectory": str(env.run_dir),
                    "started": started,
                },
            )

    if cell.agent.kind == "baseline":
        agent = make_agent(f"baseline:{baseline_name(task, cell.agent.baseline)}", task)
    else:
        agent = make_agent(cell.agent.config, task)
    opts = with_agent_defaults(opts, env_defaults(agent))
    env = ResearchEnv(task, **opts)
    try:
        result = run_episode(
            env, agent, seed=cell.seed, on_step=note, score_unsubmitted=score_unsubmitted
        )
    finally:
        env.close()
    model = getattr(getattr(agent, "model", None), "name", None)
    image = image_digest(cell.options_dict.get("sandbox", "local"))
    return episode_row(cell, task, result, result.status, result.totals, model, image, started)


def image_digest(sandbox: str) -> str | None:
    """``tag@image id`` of the docker backend's sandbox image (None for local sandboxes)."""
    if sandbox != "docker":
        return None
    try:
        from mlsbench_env.sandbox import docker

        tag = docker.resolve_image(docker.DockerOptions.from_env())
        return f"{tag}@{docker.client().api.inspect_image(tag)['Id']}"
    except Exception:  # no engine, or an image built elsewhere: the row says unknown
        return None


def episode_row(cell, task, result, exit_status, totals, model, image, started) -> dict:
    """The store row of a finished episode (read back from its trajectory where needed)."""
    from mlsbench_env.env.log import protocol_of, read_log

    info = result.final_info
    records = read_log(Path(result.run_dir) / "trajectory.jsonl") if result.run_dir else []
    header = next((r for r in records if r.get("type") == "header"), {})
    end = next((r for r in records if r.get("type") == "end"), {})
    reset = next((r for r in records if r.get("type") == "reset"), {})
    steps = [r for r in records if r.get("type") == "step"]
    curve = [
        [s["step"], s["info"]["score"]]
        for s in steps
        if s.get("tool") == "test" and (s.get("info") or {}).get("score") is not None
    ]
    # compute seconds: what the episode's commands used of the budget + the final evaluation
    budget0 = cell.options_dict.get("compute_budget_s") or task.spec.budgets.compute_s
    left = (info.get("budget") or {}).get("compute_s_left", budget0)
    final_s = sum(r.get("wall_s", 0.0) for r in info.get("final_runs") or [])
    protocol = protocol_of(header) if header else cell.options_dict.get("protocol", "default")
    if left is None:  # a protocol without a compute budget, whose submit re-runs nothing
        left, final_s = budget0, _test_seconds(steps)
    tamper = info.get("tamper_report") or end.get("tamper_report") or []
    reason = info.get("reason")
    if result.score is None and reason is None:
        reason = f"no final evaluation (exit status {exit_status})"
    t = totals
    return {
        **cell_fields(cell, "ok"),
        "model": model,
        "exit_status": exit_status,
        "score": result.score,
        "score_reason": reason,
        "score_spread": result.score_spread,
        "vanilla_score": result.vanilla_score,
        "medal": info.get("medal"),
        "task_kind": task.spec.kind,
        "setting_scores": info.get("setting_scores"),
        "seed_scores": info.get("seed_scores"),
        "score_curve": curve,
        "reward": result.reward,
        "steps": result.steps,
        "tests_used": end.get("tests_used", len(curve)),
        "model_calls": t["model_calls"] if t else 0,
        "input_tokens": (t["input_tokens"] + t["cached_input_tokens"]) if t else 0,
        "cached_input_tokens": t["cached_input_tokens"] if t else 0,
        "output_tokens": t["output_tokens"] if t else 0,
        "tokens_estimated": bool(t and t["estimated"]),
        "cost_usd": t["cost_usd"] if t else 0.0,
        "wall_s": time.time() - started,
        "compute_s": max(budget0 - left, 0.0) + final_s,
        "tamper_events": len(tamper),
        "tamper_report": tamper,
        "task_hash": header.get("task_hash") or task.content_hash(),
        "anchors_hash": header.get("anchors_hash"),
        "sandbox": cell.options_dict.get("sandbox", "local"),
        "protocol": protocol,
        "isolation": reset.get("isolation"),
        "agent_isolation": reset.get("agent_isolation"),
        "image_digest": image,
        "versions": header.get("versions"),
        "git_revision": header.get("git_revision"),
        "host": socket.gethostname(),
        "trajectory": result.run_dir,
        "started": started,
        "finished": time.time(),
    }


def _test_seconds(steps: list[dict]) -> float:
    """Wall seconds of an episode's tests (under a protocol whose submit selects a test, they
    are all the compute it used)."""
    return sum(s.get("duration_s", 0.0) for s in steps if s.get("tool") == "test")


def cell_fields(cell: Cell, status: str) -> dict:
    """What every row of a cell says: the cell (task, agent, seed, options) and its status."""
    return {
        "cell_key": cell.key,
        "status": status,
        "task": cell.task_id,
        "task_version": cell.task_version,
        "domain": cell.domain,
        "agent": cell.agent.label,
        "agent_hash": cell.agent.hash,
        "agent_kind": cell.agent.kind,
        "agent_source": cell.agent.source,
        "agent_config": cell.agent.config,
        "seed": cell.seed,
        "options": cell.options_dict,
        "options_hash": cell.options_hash,
    }


def failed_row(cell: Cell, error: str, attempts: int) -> dict:
    return {
        **cell_fields(cell, "failed"),
        "error": error,
        "attempts": attempts,
        "host": socket.gethostname(),
        "finished": time.time(),
    }


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, default=str))
    tmp.replace(path)
