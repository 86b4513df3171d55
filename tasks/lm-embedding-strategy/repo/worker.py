"""The language model's processes (fixed): harness.py starts them through the task kit's Child,
which drops their privileges before `import embedding`; they read embedding.py and nothing else
of this folder (the fixed body, gpt.py, is imported before the drop).

  measure  the budget check: builds Embedding(cfg) + the fixed body and sends the parameters'
           shapes and values (the parent counts them against the cap before every run)
  train    builds Embedding(cfg) + the fixed body, checks causality, sends
           the parameters' shapes and initial values, then serves steps: the parent's parameters
           and one batch of TRAINING windows in; the loss, the gradients and the parameters after
           the step out. The optimizer, its schedule, the clipping and the step count are the
           parent's.
  evaluate a fresh process: builds a fresh model, loads the trained parameters (nothing else
           survives training: no buffers, no Python state), computes the position tables and
           the read-out matrix before it sees any validation text, then answers logit requests.
           Embeddings are computed prefix by prefix (position t from embedding(idx[:, :t+1])), so
           the logits are causal by construction; a forward on the whole window must agree.
"""

from __future__ import annotations

import gpt
import numpy as np
import torch
import torch.nn.functional as F
from taskkit import RunFailure, torchstate

CAUSAL_RTOL = 1e-4


def _build(cfg_dict: dict, seed: int):
    torchstate.setup(seed)
    import embedding as E  # the agent's code, after the privilege drop

    cfg = gpt.Config(**cfg_dict)
    model = gpt.GPT(cfg, E.Embedding(cfg))
    # the parameters are what travels: a list of them is the state the parent trains
    return cfg, model, torch.nn.ParameterList(model.parameters())


def _positions(cfg, model, T):
    angles, bias = model.embedding.attention_positions(T)
    if angles is not None:
        angles = torch.as_tensor(angles, dtype=torch.float32)
        if tuple(angles.shape) != (T, cfg.head_dim // 2):
            raise RunFailure(
                f"attention_positions: angles must be ({T}, {cfg.head_dim // 2}), "
                f"got {tuple(angles.shape)}"
            )
    if bias is not None:
        bias = torch.as_tensor(bias, dtype=torch.float32)
        if tuple(bias.shape) != (cfg.n_head, T, T):
            raise RunFailure(
                f"attention_positions: bias must be ({cfg.n_head}, {T}, {T}), "
                f"got {tuple(bias.shape)}"
            )
    W = model.embedding.output_weight()
    if tuple(W.shape) != (cfg.vocab_size, cfg.d_model):
        raise RunFailure(
            f"output_weight() must be ({cfg.vocab_size}, {cfg.d_model}), got {tuple(W.shape)}"
        )
    return angles, bias, W


def _embed(cfg, model, idx):
    out = model.embedding(idx)
    if isinstance(out, torch.Tensor):
        x0, ve = out, None
    else:
        x0, ve = out
    B, T = idx.shape
    if not isinstance(x0, torch.Tensor) or tuple(x0.shape) != (B, T, cfg.d_model):
        raise RunFailure(f"Embedding.forward must return x0 of shape ({B}, {T}, {cfg.d_model})")
    if ve is not None:
        ve = list(ve)
        if len(ve) != cfg.n_layer:
            raise RunFailure(f"value_embeds must have one entry per layer ({cfg.n_layer})")
        for v in ve:
            if v is not None and tuple(v.shape) != (B, T, cfg.d_model):
                raise RunFailure(f"each value embedding must be None or ({B}, {T}, {cfg.d_model})")
    return x0.float(), ([None if v is None else v.float() for v in ve] if ve is not None else None)


def _embed_causal(cfg, model, idx):
    """Position t's features from embedding(idx[:, :t+1]) only: causal by construction."""
    B, T = idx.shape
    x0 = torch.empty(B, T, cfg.d_model)
    ve = None
    for t in range(T):
        xt, vt = _embed(cfg, model, idx[:, : t + 1])
        x0[:, t] = xt[:, t]
        if vt is not None:
            if ve is None:
                ve = [None if v is None else torch.empty(B, T, cfg.d_model) for v in vt]
            for i, v in enumerate(vt):
                if (v is None) != (ve[i] is None):
                    raise RunFailure("value_embeds must have the same None pattern at every length")
                if v is not None:
                    ve[i][:, t] = v[:, t]
    return x0, ve


def _close(a, b) -> bool:
    scale = 1.0 + float(max(a.abs().max(), b.abs().max()))
    return float((a - b).abs().max()) <= CAUSAL_RTOL * scale


def _check_causal(cfg, model, idx, where: str):
    """The whole-window forward must equal the prefix-by-prefix one."""
    with torch.no_grad():
        x_full, ve_full = _embed(cfg, model, idx)
        x_pref, ve_pref = _embed_causal(cfg, model, idx)
    bad = not torch.isfinite(x_full).all() or not _close(x_full, x_pref)
    if not bad and (ve_full is None) != (ve_pref is None):
        bad = True
    if not bad and ve_full is not None:
        for a, b in zip(ve_full, ve_pref, strict=False):
            if (a is None) != (b is None) or (a is not None and not _close(a, b)):
                bad = True
    if bad:
        diff = (x_full - x_pref).abs().amax(dim=(0, 2))
        t = int(torch.nonzero(diff > CAUSAL_RTOL).min()) if bool((diff > CAUSAL_RTOL).any()) else -1
        raise RunFailure(
            f"non-causal embedding ({where}): the features at position {t} computed from the "
            "whole window differ from those computed from the prefix up to that position, i.e. "
            "they depend on later tokens (or on state kept between calls)"
        )


def measure(conn, cfg_dict: dict, seed: int) -> None:
    """The budget check: build the model and send its parameters; the parent counts them."""
    _, _, params = _build(cfg_dict, seed)
    torchstate.send_layout(conn, params)


def train(conn, cfg_dict: dict, seed: int, probe: bytes) -> None:
    cfg, model, params = _build(cfg_dict, seed)
    T = cfg.block_size
    windows = torch.from_numpy(np.frombuffer(probe, np.uint8).reshape(-1, T).astype(np.int64))
    _check_causal(cfg, model, windows, "before training")
    torchstate.send_layout(conn, params)

    def cross_entropy(batch: bytes):
        w = np.frombuffer(batch, np.uint8).reshape(-1, T + 1)
        x, y = (torch.from_numpy(a.astype(np.int64)) for a in (w[:, :-1], w[:, 1:]))
        angles, bias, W = _positions(cfg, model, T)
        x0, ve = _embed(cfg, model, x)
        logits = model.body(x0, ve, angles, bias, W)
        return F.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1))

    torchstate.serve_steps(conn, params, cross_entropy)


def evaluate(conn, cfg_dict: dict, seed: int, trained: bytes) -> None:
    cfg, model, params = _build(cfg_dict, seed)
    torchstate.load_state_bytes(params, trained)
    model.eval()
    T = cfg.block_size
    with torch.no_grad():
        angles, bias, W = _positions(cfg, model, T)
    while (msg := conn.recv_bytes())[:1] == b"Q":
        idx = np.frombuffer(msg, dtype=np.uint8, offset=1).reshape(-1, T)
        idx = torch.from_numpy(idx.astype(np.int64))
        _check_causal(cfg, model, idx, "validation")
        with torch.no_grad():
            x0, ve = _embed_causal(cfg, model, idx)
            logits = model.body(x0, ve, angles, bias, W)
        conn.send_bytes(b"O" + logits.float().contiguous().numpy().astype("<f4").tobytes())
