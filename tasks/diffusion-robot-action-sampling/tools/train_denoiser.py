"""Train the task's denoisers once (fixed seed) and write repo/weights/<env>.npz.

    python tools/train_denoiser.py [reach pendulum]

Data: closed-loop expert rollouts (with action noise 0.1 so that the demonstrations cover the
states a slightly imperfect policy visits), each visited state labelled with the *clean* expert's
next H actions on the episode's side (a fair coin per episode: the multimodality). Model: the MLP
of repo/denoiser.py (3 layers, width 192, SiLU) trained on the standard DDPM noise-prediction loss
||eps - eps_theta(alpha_t x0 + sigma_t eps, t | obs)||^2 with t ~ U(0, T_MAX) (Ho et al. 2020;
Chi et al. 2023 Diffusion Policy). Single thread, fixed seeds: a retrain reproduces the weights
(bit for bit on the same torch build and CPU).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1] / "repo"
sys.path.insert(0, str(REPO))
import denoiser as dn  # noqa: E402
import envs  # noqa: E402

SEED = 20240601
CFG = {
    "reach": dict(episodes=2500, keep=120000, steps=12000),
    "pendulum": dict(episodes=800, keep=120000, steps=12000),
}
WIDTH = 192
BATCH = 512
NOISE = 0.1


def dataset(env, episodes, keep, rng):
    inst = env.instances(rng, episodes)
    side = rng.choice([-1.0, 1.0], episodes)
    s = env.init_state(inst)
    obs, chunks = [], []
    for _ in range(env.max_steps):
        obs.append(env.obs(s, inst))
        chunks.append(envs.expert_chunks(env, s, inst, side).reshape(episodes, -1))
        a = env.expert(s, inst, side)
        a = np.clip(a + NOISE * rng.standard_normal(a.shape), -1.0, 1.0)
        s = env.step(s, a)
    obs = np.concatenate(obs)
    chunks = np.concatenate(chunks)
    idx = rng.choice(len(obs), size=min(keep, len(obs)), replace=False)
    return obs[idx], chunks[idx]


def train(name):
    env = envs.ENVS[name]
    cfg = CFG[name]
    rng = np.random.default_rng([SEED, len(name)])
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    obs, x0 = dataset(env, cfg["episodes"], cfg["keep"], rng)
    mean, std = obs.mean(0), obs.std(0) + 1e-6
    obs_n = torch.tensor((obs - mean) / std, dtype=torch.float32)
    x0 = torch.tensor(x0, dtype=torch.float32)
    D = x0.shape[1]
    sizes = [D + obs.shape[1] + 2 * dn.N_FREQ, WIDTH, WIDTH, WIDTH, D]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.SiLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1e-3, total_steps=cfg["steps"], pct_start=0.05
    )
    freqs = torch.tensor(np.pi * 2.0 ** np.arange(dn.N_FREQ), dtype=torch.float32)
    gen = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for step in range(cfg["steps"]):
        idx = torch.randint(0, len(x0), (BATCH,), generator=gen)
        t = torch.rand(BATCH, 1, generator=gen) * dn.T_MAX
        eps = torch.randn(BATCH, D, generator=gen)
        a, s = torch.cos(0.5 * np.pi * t), torch.sin(0.5 * np.pi * t)
        xt = a * x0[idx] + s * eps
        tf = torch.cat([torch.sin(freqs * t), torch.cos(freqs * t)], 1)
        loss = ((net(torch.cat([xt, obs_n[idx], tf], 1)) - eps) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 2000 == 0 or step == cfg["steps"] - 1:
            print(
                f"{name} step {step} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True
            )
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    arrays = {
        "n_layers": np.array(len(lin)),
        "obs_mean": mean.astype(np.float32),
        "obs_std": std.astype(np.float32),
    }
    for i, m in enumerate(lin):
        arrays[f"W{i}"] = m.weight.detach().numpy().T.astype(np.float32)
        arrays[f"b{i}"] = m.bias.detach().numpy().astype(np.float32)
    out = REPO / "weights" / f"{name}.npz"
    out.parent.mkdir(exist_ok=True)
    np.savez(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    for name in sys.argv[1:] or list(CFG):
        train(name)
