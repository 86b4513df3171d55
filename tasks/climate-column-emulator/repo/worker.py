"""The emulator's processes (fixed): harness.py starts them through the task kit's Child, which
drops their privileges before `import model`; they read model.py and nothing else of this folder.

  train    gets the TRAINING columns (inputs and targets) as arguments, builds build_model(cfg),
           reports the state's layout and
           initial values, then serves steps: the parent's state and the rows of one batch in;
           the loss (mean squared error of the standardized outputs), the gradients and the
           state after the step out. The optimizer, its schedule and the step count are the
           parent's.
  measure  the budget check: builds build_model(cfg) and sends its state's layout and values
           (the parent counts them against the cap before every run), then exits
  predict  a fresh process with the trained state and the test INPUTS: answers the standardized
           predictions of the rows the parent names.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from taskkit import RunFailure, torchstate


def _emulator(cfg_dict: dict, seed: int):
    """The seeded, freshly built emulator, and its cfg (plain attributes)."""
    torchstate.setup(seed)
    import model  # the agent's code, after the privilege drop

    cfg = SimpleNamespace(**cfg_dict)
    net = model.build_model(cfg)
    if not isinstance(net, torch.nn.Module):
        raise RunFailure("build_model(cfg) must return a torch.nn.Module")
    return cfg, net


def _columns(cfg, net, x):
    """(B, n_in) standardized inputs -> (B, n_out) standardized outputs, shapes checked."""
    B, P, L = x.shape[0], cfg.n_in_profiles, cfg.n_levels
    out = net(x[:, : P * L].reshape(B, P, L), x[:, P * L :])
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise RunFailure("the model must return a pair (y_prof, y_sca)")
    y_prof, y_sca = out
    want_prof, want_sca = (B, cfg.n_out_profiles, L), (B, cfg.n_out_scalars)
    if tuple(y_prof.shape) != want_prof or tuple(y_sca.shape) != want_sca:
        raise RunFailure(
            f"the model must return y_prof {want_prof} and y_sca {want_sca}, got "
            f"{tuple(y_prof.shape)} and {tuple(y_sca.shape)}"
        )
    return torch.cat([y_prof.reshape(B, -1), y_sca], dim=1).float()


def _table(data: bytes, profiles: int, scalars: int, cfg):
    """Rows of standardized features (profiles level by level, then scalars); 0, 0: outputs."""
    if not profiles:
        profiles, scalars = cfg.n_out_profiles, cfg.n_out_scalars
    width = profiles * cfg.n_levels + scalars
    return torch.from_numpy(np.frombuffer(data, "<f4").reshape(-1, width).copy())


def measure(conn, cfg_dict: dict, seed: int) -> None:
    """The budget check: build the model and send its state; the parent counts it."""
    _, net = _emulator(cfg_dict, seed)
    torchstate.send_layout(conn, net, count=torchstate.count(net))


def train(conn, cfg_dict: dict, seed: int, x_bytes: bytes, y_bytes: bytes) -> None:
    cfg, net = _emulator(cfg_dict, seed)
    X, Y = _table(x_bytes, cfg.n_in_profiles, cfg.n_in_scalars, cfg), _table(y_bytes, 0, 0, cfg)
    torchstate.send_layout(conn, net, count=torchstate.count(net))
    net.train()

    def mse(batch: bytes):
        rows = torch.from_numpy(np.frombuffer(batch, "<u4").astype(np.int64))
        return torch.mean((_columns(cfg, net, X[rows]) - Y[rows]) ** 2)

    torchstate.serve_steps(conn, net, mse)


def predict(conn, cfg_dict: dict, seed: int, state: bytes, x_bytes: bytes) -> None:
    cfg, net = _emulator(cfg_dict, seed)
    torchstate.load_state_bytes(net, state)
    net.eval()
    X = _table(x_bytes, cfg.n_in_profiles, cfg.n_in_scalars, cfg)
    while (msg := conn.recv_bytes())[:1] == b"Q":
        rows = torch.from_numpy(np.frombuffer(msg, "<u4", offset=1).astype(np.int64))
        with torch.no_grad():
            y = _columns(cfg, net, X[rows])
        conn.send_bytes(b"O" + y.contiguous().numpy().astype("<f4").tobytes())
