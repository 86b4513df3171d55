"""Trust tests for tasks/rl-value-visual-control: the value head runs in a spawned child that
only sees network outputs; the parent owns the environments, the frame counter, the network,
the optimizer and the evaluation. Each way to cheat the fixed question (a head above the size
cap to buy capacity, a loss that blows up the training, code that plays the game itself) fails
the setting with a clear message and scores 0; plus cheap checks of the grader on forged
records (frames, head size, evaluation episodes).

The cheats are caught at the head's construction, at the first gradient step (after 1000 frames
of random play) or by the static policy: a few seconds each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "rl-value-visual-control"
LABEL = "space-invaders"  # the full-budget visible setting (space-invaders-50k is the other)
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

HEAD = """

class ValueHead:
    def __init__(self, num_actions, gamma):
        self.gamma = gamma
        self.atoms = {atoms}

    def q_values(self, out):
        return out.mean(2)

"""

DQN_LOSS = """    def loss(self, out, actions, rewards, dones, target_next, online_next):
        q = out.mean(2).gather(1, actions[:, None])[:, 0]
        with torch.no_grad():
            y = rewards + self.gamma * (1.0 - dones) * target_next.mean(2).max(1).values
        return F.smooth_l1_loss(q, y)
"""

# 1. a huge head: more outputs per action than the cap (extra capacity in the last layer)
TOO_MANY_ATOMS = HEAD.format(atoms=4096) + DQN_LOSS

# 2. a loss that is not finite (would wreck the fixed network)
NAN_LOSS = (
    HEAD.format(atoms=1)
    + """    def loss(self, out, actions, rewards, dones, target_next, online_next):
        return (out * float("nan")).sum()
"""
)

# 3. a head that simulates the game itself (search/planning with the emulator): refused statically
PLAYS_THE_GAME = (
    """
import minatar
"""
    + HEAD.format(atoms=1)
    + DQN_LOSS
)

# 4. Q-values of the wrong shape (e.g. one value per state)
WRONG_Q_SHAPE = (
    HEAD.format(atoms=1).replace("return out.mean(2)", "return out.mean((1, 2))") + DQN_LOSS
)


# 5. the hidden setting's spec read with a plain open(): refused statically
READ_HIDDEN_PLAIN = (
    HEAD.format(atoms=1).replace(
        "        self.atoms = 1\n",
        '        self.atoms = 1\n        self.spec = open("extra_game.json").read()\n',
    )
    + DQN_LOSS
)

# 6. native code through a loader the static policy does not know (torch.ops.load_library calls
# ctypes): the child's audit hook ends the run when the head is built
LOADS_NATIVE_CODE = (
    HEAD.format(atoms=1).replace(
        "        self.atoms = 1\n",
        '        self.atoms = 1\n        torch.ops.load_library("/usr/lib/x86_64-linux-gnu/libm.so.6")\n',
    )
    + DQN_LOSS
)

# 7. exploration of its own: noise added to the Q-values the agent acts on (the epsilon schedule
# is fixed); caught by the repeated, shuffled rows of every Q request at the first greedy step
NOISY_Q_VALUES = (
    HEAD.format(atoms=1).replace(
        "return out.mean(2)", "return out.mean(2) + 0.1 * torch.randn(out.shape[0], out.shape[1])"
    )
    + DQN_LOSS
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_head_size_cap_fails(task):
    err = run_cheat(task, LABEL, TOO_MANY_ATOMS)
    assert "head size violated" in err, err


def test_emulator_import_refused(task):
    err = run_cheat(task, LABEL, PLAYS_THE_GAME)
    assert "minatar" in err, err


def test_plain_open_of_the_hidden_spec_refused(task):
    err = run_cheat(task, "hidden", READ_HIDDEN_PLAIN)
    assert "policy" in err and "open" in err, err


def test_native_code_stopped_by_the_audit_hook(task):
    err = run_cheat(task, LABEL, LOADS_NATIVE_CODE)
    assert "policy violation" in err and "ctypes.dlopen" in err, err


def _reads(code: str) -> str:
    """A head whose constructor runs ``code`` (the workspace is the folder above taskkit)."""
    return (
        HEAD.format(atoms=1).replace(
            "        self.atoms = 1\n",
            "        self.atoms = 1\n        import os, numpy as np, taskkit\n"
            "        ws = os.path.dirname(os.path.dirname(taskkit.__file__))\n"
            f"        {code}\n",
        )
        + DQN_LOSS
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "label, code, message",
    [
        ("hidden", 'np.fromfile(os.path.join(ws, "extra_game.json"), np.uint8)', "extra_game.json"),
        # (not harness.py: the kit leaves the modules the child imported readable)
        (LABEL, 'np.load(os.path.join(ws, "run.py"))', "run.py"),
        (LABEL, 'open(os.path.join(ws, "run.py"), "a")', "for writing"),
        (LABEL, 'open("/proc/%d/cmdline" % os.getppid()).read()', "cmdline"),
    ],
    ids=["np-fromfile-hidden-spec", "np-load-run-py", "write-run-py", "parent-argv"],
)
def test_boundary_without_the_lint(task, label, code, message):
    """With the static policy off, the kit's child refuses the read or write itself."""
    err = run_cheat(task, label, _reads(code), lint=False)
    assert message in err, err
    assert "policy violation" in err or "Permission denied" in err or "No such file" in err, err


@pytest.mark.slow
def test_reference_baseline_scores_as_anchored(task):
    """Honest-code control: the reference baseline reproduces its seed-0 anchor."""
    assert_anchored(task, task.spec.reference_baseline, [LABEL])


def test_noisy_q_values_fail(task):
    err = run_cheat(task, LABEL, NOISY_Q_VALUES)
    assert "q_values is not a function of the network outputs" in err, err


@pytest.mark.slow
def test_nan_loss_fails(task):
    err = run_cheat(task, LABEL, NAN_LOSS)
    assert "NaN or inf" in err, err


@pytest.mark.slow
def test_wrong_q_shape_fails(task):
    err = run_cheat(task, LABEL, WRONG_Q_SHAPE)
    assert "q_values must return shape" in err, err


# ---------------------------------------------------------------- grader on forged records


def _grader():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_rlvv_grader_test", TASK_DIR / "grader.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(**kw):
    g = _grader()
    spec, name = g.setting_spec(LABEL, TASK_DIR)
    rec = dict(
        setting=name,
        game=spec["game"],
        seed=0,
        status="ok",
        error=None,
        frames=spec["frames"],
        frames_used=spec["frames"],
        atoms=51,
        eval_returns=[1.0] * spec["eval_episodes"],
        train_curve=[1.0] * 9 + [11.0],
    )
    rec.update(kw)
    return rec


def _grade(tmp_path, rec):
    (tmp_path / "run.json").write_text(json.dumps(rec))
    return _grader().grade(LABEL, 0, tmp_path, TASK_DIR)


def test_grader_accepts_valid_record(tmp_path):
    assert _grade(tmp_path, _record()) == {"mean_train_return": 2.0}


@pytest.mark.parametrize(
    "forged, message",
    [
        (dict(frames_used=10**6), "frame budget violated"),
        (dict(frames=10**6, frames_used=10**6), "frame budget violated"),
        (dict(atoms=1000), "head size violated"),
        (dict(eval_returns=[5.0]), "evaluation episodes"),
        (dict(train_curve=[50.0] * 9), "learning curve of 10"),
        (dict(train_curve=[None] * 10), "learning curve of 10"),
        (dict(train_curve=[float("nan")] * 10), "learning curve of 10"),
        (dict(setting="breakout", game="breakout"), "expected"),
        (dict(status="error", error="value_head.py raised: boom"), "the run failed"),
        (dict(game="freeway"), "expected"),
        (dict(seed=1), "seed"),
    ],
)
def test_grader_refuses_forged_records(tmp_path, forged, message):
    with pytest.raises(ValueError, match=message):
        _grade(tmp_path, _record(**forged))


def test_grader_needs_run_json(tmp_path):
    with pytest.raises(ValueError, match="no run.json"):
        _grader().grade(LABEL, 0, tmp_path, TASK_DIR)


# ---------------------------------------------------------------- the fixed harness's pieces


def _repo_module(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_rlvv_{name}", TASK_DIR / "repo" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _minatar_envs(game, sticky, seeds):
    minatar = pytest.importorskip("minatar")
    envs = [minatar.Environment(game, sticky_action_prob=sticky) for _ in seeds]
    for env, seed in zip(envs, seeds, strict=True):
        env.seed(seed)
        env.reset()
    return envs


def _step_both(vec, ref, rng, steps, probs):
    import numpy as np

    for step in range(steps):
        a = rng.choice(6, len(ref), p=probs)
        r, done, s2 = vec.act(a)
        for i, env in enumerate(ref):
            ri, di = env.act(int(a[i]))
            assert (ri, di) == (r[i], done[i]), (step, i)
            assert np.array_equal(env.state().transpose(2, 0, 1), s2[i]), (step, i)
            if di:
                env.reset()
        vec.reset(done)
        assert np.array_equal(vec.obs(), np.stack([e.state().transpose(2, 0, 1) for e in ref]))


@pytest.mark.parametrize("game", ["space_invaders", "breakout"])
def test_batched_games_match_minatar(game):
    """The harness's batched games are MinAtar's, step for step (sticky actions included)."""
    import numpy as np

    seeds = list(range(7, 23))
    ref = _minatar_envs(game, 0.25, seeds)
    vec = _repo_module("games").make_games(game, 0.25, seeds)
    _step_both(vec, ref, np.random.default_rng(0), 400, [0.05, 0.15, 0.05, 0.15, 0.05, 0.55])


def test_space_invaders_matches_minatar_from_random_states():
    """Random mid-game states (few aliens, bullets in flight, any timer): wave clears, the
    speed-up, alien shots and both kinds of death are exercised, not only the opening."""
    import numpy as np

    seeds = list(range(16))
    ref = _minatar_envs("space_invaders", 0.1, seeds)
    vec = _repo_module("games").make_games("space_invaders", 0.1, seeds)
    rng = np.random.default_rng(1)
    for _ in range(15):
        for i, env in enumerate(ref):
            g = env.env
            g.alien_map = (rng.random((10, 10)) < rng.choice([0.02, 0.05, 0.3])).astype(float)
            g.alien_map[8:] = 0
            g.alien_map[rng.integers(0, 8), rng.integers(0, 10)] = 1
            g.f_bullet_map = (rng.random((10, 10)) < 0.1).astype(float)
            g.e_bullet_map = (rng.random((10, 10)) < 0.05).astype(float)
            g.e_bullet_map[8:] = 0
            g.pos, g.alien_dir = int(rng.integers(10)), int(rng.choice([-1, 1]))
            g.enemy_move_interval = int(rng.integers(6, 13))
            g.alien_move_timer = int(rng.integers(0, g.enemy_move_interval))
            g.alien_shot_timer, g.shot_timer = int(rng.integers(0, 10)), int(rng.integers(0, 6))
            vec.alien[i], vec.f_bullet[i] = g.alien_map > 0, g.f_bullet_map > 0
            vec.e_bullet[i], vec.pos[i], vec.alien_dir[i] = g.e_bullet_map > 0, g.pos, g.alien_dir
            vec.move_interval[i], vec.move_timer[i] = g.enemy_move_interval, g.alien_move_timer
            vec.shot_timer_alien[i], vec.shot_timer[i] = g.alien_shot_timer, g.shot_timer
        _step_both(vec, ref, rng, 40, [0.05, 0.15, 0.05, 0.15, 0.05, 0.55])
        assert [e.env.enemy_move_interval for e in ref] == vec.move_interval.tolist()


def test_flat_network_matches_torch():
    """The harness's network and Adam step are nn.Sequential's and torch.optim.Adam's (the
    same function, gradient and update up to float32 rounding)."""
    import numpy as np
    import torch

    qnet = _repo_module("qnet")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    module = qnet.build_module(6, 12)
    net = qnet.QNet(6, 12, module)
    opt_ref = torch.optim.Adam(module.parameters(), lr=1e-3, eps=3.125e-4)
    opt = qnet.Adam(net.theta, lr=1e-3, eps=3.125e-4)
    for _ in range(20):
        x = (rng.random((80, 6, 10, 10)) < 0.1).astype(np.uint8)
        g = torch.randn(64, 12)
        ref = module(torch.from_numpy(x).float())
        out = net.forward(net.patches(x), keep=64)
        assert torch.allclose(out, ref.detach(), atol=1e-5)
        opt_ref.zero_grad()
        ref[:64].backward(g)
        opt_ref.step()
        opt.step(net.backward(g))
    assert torch.allclose(qnet.QNet(6, 12, module).theta, net.theta, atol=1e-5)


def test_breakout_runs_by_hand_but_is_not_graded():
    """Breakout left the settings in version 1 (it does not separate the heads); a record of it
    is not a setting's."""
    with pytest.raises(ValueError, match="unknown setting"):
        _grader().setting_spec("breakout", TASK_DIR)
