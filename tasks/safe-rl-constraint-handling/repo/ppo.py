"""Fixed file. PPO with a reward critic and a cost critic (the learner; it runs in the harness's
parent process, with the environment; `handler` is the editable ConstraintHandler, whose calls
the harness answers from the task kit's child that runs constraint.py).

One update = one rollout of N_ENVS envs x HORIZON steps (one episode per env), then
handler.update(ep_costs, ep_returns) and adv = handler.combine(adv_r, adv_c), then EPOCHS epochs
of the clipped surrogate on `adv` (minibatches), and value regression of both critics.
"""
from __future__ import annotations

import numpy as np
import torch

import net

torch.distributions.Distribution.set_default_validate_args(False)

GAMMA, LAM = 0.99, 0.95
CLIP = 0.2
EPOCHS = 8
MINIBATCHES = 2
LR_PI, LR_V = 3e-4, 1e-3
MAX_GRAD_NORM = 0.5


def _gae(rew, val, gamma=GAMMA, lam=LAM):
    """rew, val: (T, n); episodes end at T (terminal). Returns advantages and returns."""
    T = rew.shape[0]
    adv = np.zeros_like(rew)
    last = np.zeros(rew.shape[1])
    for t in reversed(range(T)):
        nv = val[t + 1] if t + 1 < T else 0.0
        delta = rew[t] + gamma * nv - val[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv, adv + val


def _std(x):
    return (x - x.mean()) / (x.std() + 1e-8)


def train(step, reset, handler, obs_dim, act_dim, n_envs, horizon, updates, seed, log=None):
    """Run `updates` PPO updates; return the trained actor."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    actor = net.Actor(obs_dim, act_dim)
    vr, vc = net.mlp(obs_dim, 1), net.mlp(obs_dim, 1)
    opt_pi = torch.optim.Adam(actor.parameters(), lr=LR_PI)
    opt_v = torch.optim.Adam(list(vr.parameters()) + list(vc.parameters()), lr=LR_V)
    for it in range(updates):
        obs_buf = np.zeros((horizon, n_envs, obs_dim), np.float32)
        act_buf = np.zeros((horizon, n_envs, act_dim), np.float32)
        logp_buf = np.zeros((horizon, n_envs), np.float32)
        rew = np.zeros((horizon, n_envs))
        cost = np.zeros((horizon, n_envs))
        obs = reset()
        with torch.no_grad():
            for t in range(horizon):
                o = torch.from_numpy(obs)
                d = actor.dist(o)
                a = d.mean + d.stddev * torch.randn(d.mean.shape, generator=gen)
                obs_buf[t], act_buf[t] = obs, a.numpy()
                logp_buf[t] = d.log_prob(a).sum(-1).numpy()
                obs, r, c = step(a.numpy())
                rew[t], cost[t] = r, c
            O = torch.from_numpy(obs_buf.reshape(-1, obs_dim))
            val_r = vr(O).numpy().reshape(horizon, n_envs).astype(np.float64)
            val_c = vc(O).numpy().reshape(horizon, n_envs).astype(np.float64)
        ep_ret, ep_cost = rew.sum(0), cost.sum(0)
        handler.update(ep_cost.copy(), ep_ret.copy())
        adv_r, ret_r = _gae(rew, val_r)
        adv_c, ret_c = _gae(cost, val_c)
        ar, ac = _std(adv_r.reshape(-1)), _std(adv_c.reshape(-1))
        adv = np.asarray(handler.combine(ar.copy(), ac.copy()), dtype=np.float64).reshape(-1)
        if adv.shape != ar.shape or not np.all(np.isfinite(adv)):
            raise ValueError(f"combine() must return {ar.shape[0]} finite advantages, got shape {adv.shape}")
        if log is not None:
            log(it, float(ep_ret.mean()), float(ep_cost.mean()))
        A = torch.from_numpy(act_buf.reshape(-1, act_dim))
        LP = torch.from_numpy(logp_buf.reshape(-1))
        ADV = torch.from_numpy(adv.astype(np.float32))
        RR = torch.from_numpy(ret_r.reshape(-1).astype(np.float32))
        RC = torch.from_numpy(ret_c.reshape(-1).astype(np.float32))
        N = O.shape[0]
        mb = N // MINIBATCHES
        for _ in range(EPOCHS):
            perm = torch.randperm(N, generator=gen)
            for k in range(MINIBATCHES):
                i = perm[k * mb:(k + 1) * mb]
                d = actor.dist(O[i])
                ratio = (d.log_prob(A[i]).sum(-1) - LP[i]).exp()
                s1 = ratio * ADV[i]
                s2 = ratio.clamp(1 - CLIP, 1 + CLIP) * ADV[i]
                loss_pi = -torch.min(s1, s2).mean()
                opt_pi.zero_grad()
                loss_pi.backward()
                torch.nn.utils.clip_grad_norm_(actor.parameters(), MAX_GRAD_NORM)
                opt_pi.step()
                loss_v = ((vr(O[i]).squeeze(-1) - RR[i]) ** 2).mean() + ((vc(O[i]).squeeze(-1) - RC[i]) ** 2).mean()
                opt_v.zero_grad()
                loss_v.backward()
                opt_v.step()
    return actor
