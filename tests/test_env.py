"""The environment on the real first task, real local sandbox (no mocks)."""

import json
import shutil

import gymnasium as gym
import pytest
import yaml
from gymnasium.utils.env_checker import check_env

import mlsbench_env  # noqa: F401  (registers the ids)
from mlsbench_env.env.log import read_log
from mlsbench_env.spec import builtin_task_ids, load_task

REGISTERED = [f"mlsbench/{t}-v{load_task(t).spec.version}" for t in builtin_task_ids()]


def act(tool, **args):
    return json.dumps({"tool": tool, "args": args})


def region_of(env):
    file = next(iter(env.workspace.ranges))
    return file, env.workspace.ranges[file][0]


def indent_of(env):
    file, r = region_of(env)
    lines = env.workspace.read(file).splitlines()[r.start - 1 : r.end]
    first = next(line for line in lines if line.strip())
    return first[: len(first) - len(first.lstrip())]


def hidden_strings(task):
    out = []
    for s in task.spec.settings:
        if s.hidden:
            out += [s.label, s.command]
    return out


@pytest.mark.parametrize("gym_id", REGISTERED)
def test_check_env_passes(gym_id, make_gym):
    check_env(make_gym(gym_id).unwrapped, skip_render_check=True)


def test_gym_make_reset_and_view(make_gym):
    env = make_gym(sandbox="local")
    obs, info = env.reset(seed=0)
    assert "Research task" in obs and info["tools"] and info["budget"]["steps_left"] > 0
    file, _ = region_of(env.unwrapped)
    obs, reward, terminated, truncated, info = env.step(act("view", path=file))
    assert "*|" in obs and reward == 0 and not terminated and info["ok"]


@pytest.mark.parametrize(
    "action,words",
    [
        ("{not json", "not valid JSON"),
        ('{"tool": "frobnicate", "args": {}}', "unknown tool 'frobnicate'"),
        ('{"tool": "view", "args": {"path": 3}}', "bad arguments for view"),
        ('{"tool": "edit", "args": {"path": "x.py"}}', "bad arguments for edit"),
        ('{"tool": "undo", "args": {"n": "many"}}', "bad arguments for undo"),
        ('{"tool": "shell", "args": {"cmd": "ls"}}', "unknown argument"),
        ('["view"]', "must be a JSON object"),
        ('{"args": {}}', 'missing "tool"'),
        ("", "empty action"),
    ],
)
def test_malformed_actions_get_a_helpful_observation(make_env, action, words):
    env = make_env()
    env.reset(seed=0)
    steps = env.budget.steps
    obs, reward, terminated, truncated, info = env.step(action)
    assert words in obs and reward == 0 and not terminated and not info["ok"]
    assert env.budget.steps == steps - 1
    assert '"tool"' in obs or "available tools" in obs or "Tools:" in obs or "args" in obs


def test_edit_outside_is_refused_byte_identical_and_undo_restores(make_env):
    env = make_env()
    env.reset(seed=0)
    file, r = region_of(env)
    path = env.workspace.root / file
    before = path.read_bytes()
    obs, *_, info = env.step(
        act("edit", path=file, action="replace", start=1, end=1, text="import os\n")
    )
    assert "refused" in obs and not info["ok"] and path.read_bytes() == before
    obs, *_ = env.step(
        act("edit", path=file, action="insert", after=r.start - 1, text=indent_of(env) + "pass\n")
    )
    assert "Edit applied" in obs and path.read_bytes() != before
    obs, *_ = env.step(act("undo"))
    assert path.read_bytes() == before


def test_shell_change_to_a_fixed_file_is_reverted_and_reported(make_env):
    env = make_env(max_steps=2)
    env.reset(seed=0)
    fixed = next(p for p in env.workspace.pristine if p not in env.workspace.ranges)
    obs, *_ = env.step(act("shell", command=f"echo tampered >> {fixed}; cat {fixed} | tail -1"))
    assert "[integrity]" in obs and "restored" in obs
    assert (env.workspace.root / fixed).read_bytes() == env.workspace.pristine[fixed]
    obs, reward, terminated, truncated, info = env.step(act("view"))
    assert truncated and not terminated and reward == 0
    kinds = [e["kind"] for e in info["tamper_report"]]
    assert "fixed_file_restored" in kinds


def test_budgets_truncate_and_say_so(make_env):
    env = make_env(max_steps=3, test_budget=0)
    env.reset(seed=0)
    obs, *_, info = env.step(act("test"))
    assert "No tests left" in obs and not info["ok"]
    env.step(act("view"))
    obs, reward, terminated, truncated, info = env.step(act("view"))
    assert truncated and not terminated and reward == 0
    assert "Budget exhausted (max_steps)" in obs and "No final evaluation" in obs
    obs, *_ = env.step(act("view"))
    assert "episode is over" in obs


def test_shell_timeout_is_killed_and_reported(make_env):
    env = make_env(command_timeout_s=1)
    env.reset(seed=0)
    obs, *_, info = env.step(act("shell", command="sleep 30"))
    assert "timeout" in obs and info["killed"] and not info["ok"]


def test_prompt_and_sandbox_hold_no_trace_of_hidden_settings(make_env, es_task, tmp_path):
    env = make_env()
    obs, info = env.reset(seed=0)
    secrets = hidden_strings(es_task)
    for s in secrets:
        assert s not in obs and s not in json.dumps(info)
    # search from inside: the workspace, the episode dir, /tmp, the task folders
    # and the run logs, for every hidden label and command
    places = " ".join(
        [
            ".",
            "..",
            "/tmp",
            str(es_task.root.parent),
            str(es_task.root),
            str(tmp_path / "runs"),
        ]
    )
    for s in secrets:
        obs, *_ = env.step(
            act(
                "shell",
                command=f"grep -rlF -- {json.dumps(s)} {places} 2>/dev/null; echo search-done",
                timeout=60,
            )
        )
        assert "search-done" in obs
        assert obs.split("search-done")[0].strip().splitlines()[1:] == [], obs
    obs, *_ = env.step(act("shell", command="ls hidden* 2>&1; ls ../ ; cat anchors.json 2>&1"))
    assert all(s not in obs for s in secrets)


@pytest.mark.parametrize("task_id", builtin_task_ids("research"))
def test_no_observation_info_or_log_names_a_hidden_setting(make_env, task_id, tmp_path):
    """Before `submit`, no observation, no `info` and no line of the trajectory names a hidden
    setting (its label, its command) or holds a secret of the final evaluation: a played episode
    that views every file, edits, and searches the sandbox from the shell."""
    env = make_env(task=task_id)
    task = env.task
    secrets = hidden_strings(task) + [v.strip() for v in task.secrets().values()]
    seen = list(env.reset(seed=0))
    for rel in sorted(env.workspace.pristine):
        seen += env.step(act("view", path=rel))
    file, r = region_of(env)
    line = env.workspace.read(file).splitlines()[r.start - 1]
    seen += env.step(
        act("edit", path=file, action="replace", start=r.start, end=r.start, text=line)
    )
    seen += env.step(act("undo"))
    seen += env.step(
        act("shell", command="ls -laR . /tmp; env; cat *.py *.json *.yaml 2>&1 | tail")
    )
    text = json.dumps(seen, default=str) + (env.run_dir / "trajectory.jsonl").read_text()
    for s in secrets:
        assert s not in text, (task_id, s)


# tasks whose every setting spawns a learner process that imports torch or trains before the
# agent's code runs (15-35 s per test run for a crash): in the slow suite; the other research
# tasks keep the check in the default one
SLOW_TO_CRASH = {
    "dl-weight-initialization",
    "ml-calibration",
    "cv-sample-weighting",
    "kernel-fused-causal-attention",
    "splat-densification",
    "pde-autoregressive-solver",
    "lm-attention-cache-reduction",
    "optimization-gradient-compression",
    "safe-rl-constraint-handling",
    "security-blackbox-linf-attack",
    "lm-quantization-aware-training",
    "rl-value-visual-control",
}


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param(t, marks=pytest.mark.slow) if t in SLOW_TO_CRASH else t
        for t in builtin_task_ids("research")
    ],
)
def test_crashing_setting_scores_zero_and_shows_its_log_tail(make_env, task_id):
    env = make_env(task=task_id)
    env.reset(seed=0)
    file, r = region_of(env)
    crash = f'{indent_of(env)}raise RuntimeError("boom-from-agent-code")\n'
    env.step(act("edit", path=file, action="replace", start=r.start, end=r.end, text=crash))
    obs, reward, terminated, truncated, info = env.step(act("test"))
    assert "FAILED" in obs and "boom-from-agent-code" in obs
    assert not info["ok"] and all(v == 0 for v in info["setting_scores"].values())
    assert info["errors"]


def test_policy_violation_fails_the_setting_and_enters_the_tamper_report(make_env):
    env = make_env(max_steps=3)
    env.reset(seed=0)
    file, r = region_of(env)
    env.step(
        act(
            "edit",
            path=file,
            action="insert",
            after=r.start - 1,
            text=f"{indent_of(env)}import os\n",
        )
    )
    obs, *_, info = env.step(act("test"))
    assert "breaks the task policy" in obs and "import of 'os'" in obs
    obs, *_, info = env.step(act("view"))
    assert any(e["kind"] == "policy_violation" for e in info["tamper_report"])


def _default_test_metrics(env):
    obs, *_, info = env.step(act("test"))
    assert info["ok"], obs
    return info["metrics"]


def test_fake_metric_lines_do_not_change_the_metrics(make_env, es_task):
    """Agent code printing metric-looking lines: the grader reads artifacts, not stdout."""
    env = make_env()
    env.reset(seed=0)
    clean = _default_test_metrics(env)
    file, r = region_of(env)
    fake = "".join(
        f'{indent_of(env)}print("{m.name}: 0.0\\n{m.name}=0 METRIC {m.name} 0")\n'
        for m in es_task.spec.metrics
    )
    env.step(act("edit", path=file, action="insert", after=r.start - 1, text=fake))
    obs, *_, info = env.step(act("test"))
    assert "METRIC" not in json.dumps(info["metrics"])
    assert info["metrics"] == clean, obs


def test_forged_artifacts_are_overwritten_by_the_harness(make_env, es_task, tmp_path):
    """Even with file I/O allowed, what agent code writes into the artifact folders does not
    survive: the harness writes its own artifacts after the agent's process has exited."""
    task_dir = tmp_path / "task-copy" / es_task.id
    shutil.copytree(es_task.root, task_dir)
    raw = yaml.safe_load((task_dir / "task.yaml").read_text())
    raw["policy"] = {"imports": [*raw["policy"]["imports"], "os", "json", "glob"], "allow_io": True}
    (task_dir / "task.yaml").write_text(yaml.safe_dump(raw))
    env = make_env(task=str(task_dir))
    env.reset(seed=0)
    clean = _default_test_metrics(env)
    file, r = region_of(env)
    ind = indent_of(env)
    forge = (
        f"{ind}import glob, json, os\n"
        f"{ind}for _d in glob.glob('../out/*'):\n"
        f"{ind}    try:\n"
        f"{ind}        json.dump({{'best_f': 0.0, 'best_fitness': 0.0, 'n_evals': 1}},"
        f" open(os.path.join(_d, 'result.json'), 'w'))\n"
        f"{ind}    except OSError:\n"
        f"{ind}        pass\n"
    )
    env.step(act("edit", path=file, action="insert", after=r.start - 1, text=forge))
    obs, *_, info = env.step(act("test"))
    assert info["metrics"] == clean, obs


def test_trajectory_log_is_valid_after_every_step(make_env):
    env = make_env(max_steps=3)
    env.reset(seed=0)
    env.step(act("view"))
    log = env.run_dir / "trajectory.jsonl"
    records = read_log(log)  # mid-episode: header, reset, one step
    assert [r["type"] for r in records] == ["header", "reset", "step"]
    header = records[0]
    assert header["task"] == "opt-evolution-strategy" and header["task_hash"]
    assert header["config"]["max_steps"] == 3 and "versions" in header
    env.step("{bad")
    env.step(act("view"))
    records = read_log(log)
    assert records[-1]["type"] == "end" and records[-1]["status"] == "truncated"


def test_vector_env_default_keeps_text(tmp_path):
    envs = gym.make_vec(
        "mlsbench/opt-evolution-strategy-v0", 2, runs_dir=None, work_dir=str(tmp_path / "eps")
    )
    obs, info = envs.reset(seed=0)
    assert all(isinstance(o, str) and "Research task" in o for o in obs)
    obs, *_ = envs.step([act("view"), "{bad"])
    assert "(directory)" in obs[0] and "not valid JSON" in obs[1]
    envs.close()


def test_explicit_shared_memory_fails_loudly_not_silently(tmp_path):
    with pytest.raises(TypeError, match="shared memory"):
        gym.make_vec(
            "mlsbench/opt-evolution-strategy-v0",
            2,
            vectorization_mode="async",
            runs_dir=None,
            work_dir=str(tmp_path / "eps"),
        )


def test_gpu_episodes_report_gpu_seconds_in_the_footer(make_env):
    env = make_env(gpus=1)
    obs, info = env.reset(seed=0)
    assert "GPU-s (1 GPUs)" in obs
    assert env.episode.sandbox.config.gpus == 1
    obs, *_ = env.step(act("view"))
    assert "GPU-s (1 GPUs)" in obs


def test_a_test_runs_the_agents_code_not_files_left_in_the_workspace(make_env):
    """A module a command plants beside the harness (numpy.py next to run.py) would run in the
    harness's place and forge the test's score (a dense reward with it): a test runs the code
    as the final evaluation takes it, the pristine scaffold with the regions carried."""
    env = make_env()
    env.reset(seed=0)
    plant = "print('PLANTED-RAN', flush=True)\\nraise SystemExit(0)\\n"
    env.step(act("shell", command=f'printf "{plant}" > numpy.py && ls numpy.py'))
    obs, _, _, _, info = env.step(act("test"))
    assert "PLANTED-RAN" not in obs
    assert info["ok"] and all(v is not None for v in info["setting_scores"].values()), obs
    obs, *_ = env.step(act("shell", command="cat numpy.py"))
    assert "PLANTED-RAN" in obs  # the agent's own files stay where it put them


def test_progress_set_after_reset_reports_every_setting_run(make_env, es_task):
    env = make_env()
    env.reset(seed=0)
    seen = []
    env.progress = lambda label, seed, run: seen.append((label, seed))
    env.step('{"tool": "test", "args": {}}')
    dev = es_task.spec.seeds.dev
    assert seen == [(s.label, dev) for s in es_task.visible_settings]
