"""The model's processes (fixed): harness.py starts them through the task kit's Child, which
drops their privileges before `import model`; they read model.py and nothing else of this folder.

  train    builds build_model(cfg) (the cap is checked before the run by the budget check and
           counted again by the parent on what this sends), sends the
           state's layout and initial values, then serves training steps: the parent's state in
           (parameters exactly as the parent's AdamW left them), one batch of training backbones
           and sequences in, the loss, the gradients and the state after the step out. The
           optimizer, the schedule and the step count live in the parent.
  measure  the budget check: builds build_model(cfg) and sends its state's layout and values
           (the parent counts them against the cap), then exits
  design   a fresh process: builds a fresh model, loads the trained state (nothing else survives
           training), switches to eval mode and answers logits for batches of test backbones.
Frames are raw bytes (kind byte first); nothing here is pickled back to the parent.
"""

from __future__ import annotations

import numpy as np
import torch
from taskkit import RunFailure, torchstate

N_AA = 20


class Config:
    """What build_model(cfg) receives (plain attributes)."""

    def __init__(self, d: dict):
        self.__dict__.update(d)


def _build(cfg_dict: dict, seed: int):
    torchstate.setup(seed)
    import model  # the agent's code, after the privilege drop

    cfg = Config(cfg_dict)
    net = model.build_model(cfg)
    if not isinstance(net, torch.nn.Module):
        raise RunFailure("build_model(cfg) must return a torch.nn.Module")
    return cfg, net


def _logits(net, x, seq=None):
    B, L = x.shape[0], x.shape[1]
    out = net(x, seq)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (B, L, N_AA):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise RunFailure(f"the model must return logits of shape ({B}, {L}, {N_AA}), got {got}")
    return out.float()


def train(conn, cfg_dict: dict, seed: int) -> None:
    cfg, net = _build(cfg_dict, seed)
    torchstate.send_layout(conn, net, count=torchstate.count(net))
    net.train()
    L = cfg.length

    def cross_entropy(batch: bytes):
        B = len(batch) // (13 * L)  # float32 coordinates (L x 3), then int8 residues (L)
        x = torch.from_numpy(np.frombuffer(batch, "<f4", B * L * 3).reshape(B, L, 3).copy())
        seq = np.frombuffer(batch, np.int8, B * L, 12 * B * L).reshape(B, L)
        y = torch.from_numpy(seq.astype(np.int64))
        logp = torch.log_softmax(_logits(net, x, y), dim=-1)
        return -logp.gather(-1, y.unsqueeze(-1)).mean()

    torchstate.serve_steps(conn, net, cross_entropy)


def measure(conn, cfg_dict: dict, seed: int) -> None:
    """The budget check: build the model and send its state; the parent counts it."""
    cfg, net = _build(cfg_dict, seed)
    torchstate.send_layout(conn, net, count=torchstate.count(net))


def design(conn, cfg_dict: dict, seed: int, state: bytes) -> None:
    cfg, net = _build(cfg_dict, seed)
    torchstate.load_state_bytes(net, state)
    net.eval()
    L = cfg.length
    while (msg := conn.recv_bytes())[:1] == b"Q":
        x = np.frombuffer(msg, "<f4", offset=1).reshape(-1, L, 3)
        with torch.no_grad():
            out = _logits(net, torch.from_numpy(x.copy()))
        conn.send_bytes(b"O" + out.contiguous().numpy().astype("<f4").tobytes())
