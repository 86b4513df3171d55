"""The surrogate's processes (fixed): run.py starts them through the task kit's Child, which
drops their privileges before `import model`; they read model.py and nothing else of this folder.

  train    gets the TRAINING windows (inputs and next snapshots) as arguments, builds
           build_model(cfg), reports the state's layout, its count and initial values (the
           parent checks the parameter cap on them), then serves steps:
           the parent's state and the rows of one batch in; the loss (mean squared error of the
           next snapshot), the gradients and the state after the step out. The optimizer, its
           schedule and the step count are the parent's.
  predict  a fresh process with the trained state: answers the next snapshot of the windows
           the parent sends (the parent runs the rollout and feeds back the predictions).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from taskkit import RunFailure, torchstate


def _surrogate(cfg_dict: dict, seed: int):
    torchstate.setup(seed)
    import model  # the agent's code, after the privilege drop

    cfg = SimpleNamespace(**cfg_dict)
    net = model.build_model(cfg)
    if not isinstance(net, torch.nn.Module):
        raise RunFailure("build_model(cfg) must return a torch.nn.Module")
    return cfg, net


def _next(cfg, net, u):
    out = net(u)
    want = (u.shape[0], cfg.n_x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise RunFailure(f"the model must return a tensor of shape {want}, got {got}")
    return out.float()


def _windows(data: bytes, cfg, t: int):
    return torch.from_numpy(np.frombuffer(data, "<f4").reshape(-1, t, cfg.n_x).copy())


def train(conn, cfg_dict: dict, seed: int, x_bytes: bytes, y_bytes: bytes) -> None:
    cfg, net = _surrogate(cfg_dict, seed)
    X, Y = _windows(x_bytes, cfg, cfg.t_in), _windows(y_bytes, cfg, 1)[:, 0]
    torchstate.send_layout(conn, net, count=torchstate.count(net))
    net.train()

    def mse(batch: bytes):
        rows = torch.from_numpy(np.frombuffer(batch, "<u4").astype(np.int64))
        return torch.mean((_next(cfg, net, X[rows]) - Y[rows]) ** 2)

    torchstate.serve_steps(conn, net, mse)


def predict(conn, cfg_dict: dict, seed: int, state: bytes) -> None:
    cfg, net = _surrogate(cfg_dict, seed)
    torchstate.load_state_bytes(net, state)
    net.eval()
    while (msg := conn.recv_bytes())[:1] == b"Q":
        with torch.no_grad():
            y = _next(cfg, net, _windows(msg[1:], cfg, cfg.t_in))
        conn.send_bytes(b"O" + y.contiguous().numpy().astype("<f4").tobytes())
