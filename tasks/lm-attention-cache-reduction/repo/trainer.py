"""The trainer's side of the harness (fixed file): trains the GPT with the editable attention
module, sends the weights, then computes full-sequence forwards. Started by harness.py through
the task kit's Child (see worker.py, whose helpers it shares).
"""

from __future__ import annotations

import math
import time

import torch

# torch.optim imports torch._dynamo on first use, which sets an environment variable: the guard
# refuses that after the privilege drop, so it is imported here, before
import torch._dynamo  # noqa: F401
import torch.nn.functional as F
from taskkit import torchstate
from worker import build, frame, pack


def measure(conn, cfg: dict, seed: int) -> None:
    """The budget check: the freshly built model's weights (nothing trained); the parent counts
    them against the cap."""
    model, _ = build(cfg, seed)
    sd = model.state_dict()
    header, raw = pack([tuple(sd.values())], limit=10**6)
    conn.send_bytes(frame(b"W", {"names": list(sd), "header": header}, raw))


def train(conn, cfg: dict, seed: int, train_raw: bytes) -> None:
    """The trainer: parameter count, training, the trained weights (before any validation
    token), then full-sequence forwards of what the parent sends ("F" + int64 tokens) until
    "D"."""
    model, _ = build(cfg, seed)
    conn.send_bytes(frame(b"N", {"n_params": torchstate.count(model)}))
    data = torch.frombuffer(bytearray(train_raw), dtype=torch.uint8).long()
    gen = torch.Generator().manual_seed(seed)
    T, B, steps, lr = cfg["block_size"], cfg["batch_size"], cfg["steps"], cfg["lr"]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    warm = max(1, steps // 10)
    model.train()
    t0 = time.time()
    offsets = torch.arange(T + 1)
    for step in range(steps):
        cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))
        frac = min(1.0, (step + 1) / warm) * cosine
        for g in opt.param_groups:
            g["lr"] = lr * frac
        ix = torch.randint(len(data) - T - 1, (B,), generator=gen)
        seq = data[ix[:, None] + offsets]
        logits, _ = model(seq[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    sd = model.state_dict()
    header, raw = pack([tuple(sd.values())], limit=10**6)
    meta = {
        "names": list(sd),
        "header": header,
        "train_loss": float(loss.item()),
        "train_s": round(time.time() - t0, 2),
    }
    conn.send_bytes(frame(b"W", meta, raw))
    model.eval()
    with torch.no_grad():
        while (msg := conn.recv_bytes())[:1] == b"F":
            idx = torch.frombuffer(bytearray(msg[1:]), dtype=torch.int64).reshape(1, -1)
            logits, _ = model(idx)
            conn.send_bytes(b"L" + logits[0].float().contiguous().numpy().tobytes())
    conn.send_bytes(b"K")
