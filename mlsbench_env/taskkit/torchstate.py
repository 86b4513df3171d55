"""Torch helpers a harness's children share: setup, the model's state as bytes, checks."""

from __future__ import annotations

import random


def setup(seed: int, threads: int = 1):
    """Import torch, one thread, every generator seeded; returns the torch module."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return torch


def state_tensors(model) -> list:
    """Every floating-point entry of the state_dict (parameters and buffers), in order."""
    return [(k, v) for k, v in model.state_dict(keep_vars=True).items() if v.is_floating_point()]


def count(model) -> int:
    """Elements of the whole state_dict: parameters and buffers."""
    return int(sum(v.numel() for v in model.state_dict(keep_vars=True).values()))


def state_bytes(model) -> bytes:
    """The floating-point state as little-endian float32 bytes, in state_dict order."""
    import torch

    state = state_tensors(model)
    if not state:
        return b""
    flat = torch.cat([v.detach().reshape(-1).float() for _, v in state])
    return flat.numpy().astype("<f4").tobytes()


def load_state_bytes(model, data: bytes) -> None:
    """Load ``state_bytes`` of a model built the same way; a size mismatch is a RunFailure."""
    import numpy as np
    import torch

    from .child import RunFailure

    flat = np.frombuffer(data, dtype="<f4")
    state = state_tensors(model)
    n = sum(v.numel() for _, v in state)
    if flat.size != n:
        raise RunFailure(f"the trained model had {flat.size} state values, a fresh one has {n}")
    with torch.no_grad():
        i = 0
        for _, v in state:
            v.copy_(torch.from_numpy(flat[i : i + v.numel()].copy()).view_as(v))
            i += v.numel()


def snapshot(model) -> list:
    return [v.detach().clone() for _, v in state_tensors(model)]


def unchanged(model, before: list) -> bool:
    """Whether the floating-point state equals ``before`` (a ``snapshot``)."""
    import torch

    pairs = zip(state_tensors(model), before, strict=True)
    return all(torch.equal(v.detach(), s) for (_, v), s in pairs)
