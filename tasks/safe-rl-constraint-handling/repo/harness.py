"""Fixed harness: the environment, the step counter and the evaluation live in this (parent)
process; the learner (PPO + the editable ConstraintHandler) runs in the task kit's
least-privileged child (it reads constraint.py, ppo.py and net.py and nothing else of this
folder: not env.py, settings.py or a hidden layout) that only sends actions and receives
observations, rewards and costs over a pipe.

Protocol (raw bytes; the parent never unpickles anything from the child):
  child -> parent  b"R"                          reset: start the next training episode batch
                   b"A" + float32 act[n, 2]      one step of the n training envs
                   b"P" + float32 params[p]      the final policy's parameters (then exit)
                   (b"X" / b"V": the kit's; the learner raised / its guard fired)
  parent -> child  b"O" + float32 obs[n, d]      answer to a reset
                   b"S" + float32 obs[n, d] + float64 rew[n] + float64 cost[n]   answer to a step
                   b"E" + utf-8 text             refused (the run then fails)
The parent allows exactly `updates` resets and `horizon` steps after each (the budget of
updates x horizon x n env steps), refuses anything else and records it, evaluates the returned
policy itself (deterministic actions, fresh episodes) and writes the artifacts after the child
has exited.
"""
from __future__ import annotations

import time

import numpy as np
import torch  # imported before the child drops its privileges (the kit's rule for children)
# the learner's first optimizer step imports torch._dynamo, whose import sets an environment
# variable and creates a cache folder: done here, before the child's privileges drop
import torch._dynamo  # noqa: F401

from taskkit import Child, RunFailure

# ------------------------------------------------------------------------------- child side


def _warm_up(net, obs_dim, act_dim):
    """One throw-away optimizer step, so that torch's lazy imports happen before the agent's
    module is imported."""
    m = net.Actor(obs_dim, act_dim)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.zeros(4, obs_dim)
    loss = m.dist(x).log_prob(torch.zeros(4, act_dim)).sum()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    opt.step()
    torch.randperm(4, generator=torch.Generator().manual_seed(0))


def child_main(conn, obs_dim, act_dim, n_envs, horizon, updates, cost_limit, seed):
    torch.set_num_threads(1)
    # the learner's fixed modules (readable: the child's may_read), then the editable one
    import net
    import ppo

    _warm_up(net, obs_dim, act_dim)
    import constraint  # the editable module: imported here, in this process only

    def reset():
        conn.send_bytes(b"R")
        msg = conn.recv_bytes()
        if msg[:1] != b"O":
            raise RuntimeError("reset refused by the harness: " + msg[1:].decode("utf-8", "replace"))
        return np.frombuffer(msg, dtype=np.float32, offset=1).reshape(n_envs, obs_dim).copy()

    def step(act):
        a = np.ascontiguousarray(np.asarray(act, dtype=np.float32).reshape(n_envs, act_dim))
        conn.send_bytes(b"A" + a.tobytes())
        msg = conn.recv_bytes()
        if msg[:1] != b"S":
            raise RuntimeError("step refused by the harness: " + msg[1:].decode("utf-8", "replace"))
        k = 1 + 4 * n_envs * obs_dim
        obs = np.frombuffer(msg, dtype=np.float32, count=n_envs * obs_dim, offset=1).reshape(n_envs, obs_dim).copy()
        r = np.frombuffer(msg, dtype=np.float64, count=n_envs, offset=k).copy()
        c = np.frombuffer(msg, dtype=np.float64, count=n_envs, offset=k + 8 * n_envs).copy()
        return obs, r, c

    np.random.seed(seed)
    handler = constraint.ConstraintHandler(float(cost_limit), int(updates))
    actor = ppo.train(step, reset, handler, obs_dim, act_dim, n_envs, horizon, updates, seed)
    conn.send_bytes(b"P" + net.flat_params(actor).tobytes())  # the last frame: done

# ------------------------------------------------------------------------------ parent side


def serve(layout, cfg, seed, child_timeout_s=280.0):
    """Train in the kit's child against the env of this process; return (params|None, record)."""
    import env as envmod

    n, horizon, updates = int(cfg["n_envs"]), int(cfg["horizon"]), int(cfg["updates"])
    layout = dict(layout, horizon=horizon)
    E = envmod.NavEnv(layout, n, seed=1_000_003 * (seed + 1))
    d, ad = envmod.OBS_DIM, envmod.ACT_DIM
    t0 = time.time()
    resets, steps, refused = 0, 0, 0
    curve_ret, curve_cost = [], []
    ep_r, ep_c = np.zeros(n), np.zeros(n)
    params, error, violation, isolation = None, None, None, None
    in_episode = False
    try:
        # the learner's process reads constraint.py and the fixed learner it runs, nothing else
        with Child("harness:child_main", d, ad, n, horizon, updates, float(cfg["cost_limit"]), seed,
                   may_read=["constraint.py", "ppo.py", "net.py"], name="learner",
                   timeout_s=child_timeout_s) as child:
            isolation = child.isolation
            while True:
                left = child_timeout_s - (time.time() - t0)
                if left <= 0:
                    raise RunFailure(f"training did not finish within {child_timeout_s:.0f} s")
                msg = child.recv(maxlength=1 << 22, timeout_s=left)
                kind = msg[:1]
                if kind == b"R":
                    if resets >= updates or in_episode:
                        refused += 1
                        child.send(b"E", (
                            f"environment step budget exhausted: {updates} rollouts of {horizon} steps "
                            f"x {n} envs allowed" if resets >= updates
                            else "reset before the episode ended").encode())
                        continue
                    obs = E.reset()
                    resets += 1
                    in_episode = True
                    ep_r[:], ep_c[:] = 0.0, 0.0
                    child.send(b"O", obs.tobytes())
                elif kind == b"A":
                    if not in_episode or len(msg) != 1 + 4 * n * ad:
                        refused += 1
                        child.send(b"E", b"step outside an episode or of the wrong size (environment step budget)")
                        continue
                    act = np.frombuffer(msg, dtype=np.float32, offset=1).reshape(n, ad)
                    if not np.all(np.isfinite(act)):
                        refused += 1
                        child.send(b"E", b"actions must be finite")
                        continue
                    obs, r, c, done = E.step(act)
                    steps += n
                    ep_r += r
                    ep_c += c
                    if done:
                        in_episode = False
                        curve_ret.append(float(ep_r.mean()))
                        curve_cost.append(float(ep_c.mean()))
                    child.send(b"S", obs.tobytes() + r.astype(np.float64).tobytes()
                               + c.astype(np.float64).tobytes())
                elif kind == b"P":
                    params = np.frombuffer(msg, dtype=np.float32, offset=1).copy()
                    break
                else:
                    raise RunFailure(f"protocol error: unknown message kind {kind!r}")
    except RunFailure as e:
        error = str(e)
        if error.startswith("policy violation: "):
            violation = error.removeprefix("policy violation: ")
        elif not error.startswith(("protocol error", "training did not")):
            error = "the learner failed:\n" + error
    record = {
        "n_envs": n, "horizon": horizon, "updates": updates, "cost_limit": float(cfg["cost_limit"]),
        "env_steps": steps, "resets": resets, "refused": refused,
        "budget_steps": updates * horizon * n,
        "train_curve_return": curve_ret, "train_curve_cost": curve_cost,
        "violation": violation, "isolation": isolation,
        "train_wall_s": round(time.time() - t0, 3),
    }
    if params is not None and (steps != updates * horizon * n or resets != updates):
        error = error or (f"the learner returned after {steps} of {updates * horizon * n} env steps")
    if refused and error is None:
        error = f"the learner asked the harness for more environment steps than the budget ({refused} refused requests)"
    if violation is not None:
        error = "policy violation: " + violation
    record["error"] = error
    return params, record


def evaluate(layout, cfg, params, seed):
    """Deterministic (mean-action) episodes of the returned policy on fresh layouts."""
    import env as envmod
    import net

    torch.set_num_threads(1)
    layout = dict(layout, horizon=int(cfg["horizon"]))
    actor = net.Actor(envmod.OBS_DIM, envmod.ACT_DIM)
    net.load_flat(actor, params)
    E = envmod.NavEnv(layout, int(cfg["eval_episodes"]), seed=7_777_777 + 31 * seed)
    obs = E.reset()
    R = np.zeros(E.n)
    C = np.zeros(E.n)
    with torch.no_grad():
        for _ in range(E.horizon):
            a = actor.mu(torch.from_numpy(obs)).numpy()
            if not np.all(np.isfinite(a)):
                raise ValueError("the policy produced non-finite actions")
            obs, r, c, _ = E.step(a)
            R += r
            C += c
    return R, C
