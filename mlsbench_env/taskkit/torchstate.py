"""Torch helpers a harness's children share: setup, the model's state as bytes, checks, and
training in a child with the parent's optimizer (``send_layout``, ``serve_steps``,
``ParentState``)."""

from __future__ import annotations

import builtins
import json
import math
import random
import struct

import numpy as np

from .child import RunFailure


def setup(seed: int, threads: int = 1):
    """Import torch, one thread, every generator seeded; returns the torch module."""
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
    import torch

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


# ------------------------------------------------------- training with the parent's optimizer
# A training child holds the model and computes losses and gradients; the parent owns the state's
# values and the optimizer. Frames: the child sends M (the layout, JSON) and S (initial values);
# per step the parent sends S (its state) and B (a batch), the child answers G (the losses as
# float32, one has-gradient byte per entry, the gradients as float32) and S (its state after the
# step, buffers as the forward left them). The parent fails the run when a parameter came back
# changed: only its optimizer moves them.
BUFFER, FROZEN, TRAINED = 0, 1, 2  # the kinds of state entries in a layout


def send_layout(conn, module, **extra) -> None:
    """From a training child: ``module``'s floating-point state entries (``state_tensors``) as
    an ``M`` frame (each entry's shape and kind, plus ``extra``), then their values (``S``)."""
    import torch

    entries = [v for _, v in state_tensors(module)]
    kinds = [isinstance(v, torch.nn.Parameter) * (FROZEN + v.requires_grad) for v in entries]
    layout = dict(extra, shape=[list(v.shape) for v in entries], kind=kinds)
    conn.send_bytes(b"M" + json.dumps(layout).encode())
    conn.send_bytes(b"S" + state_bytes(module))


def step_reply(module, losses) -> bytes:
    """The ``G`` payload of a step after ``backward()``: ``losses`` (a tuple of scalars, the
    minimised one first) as float32, a has-gradient byte per state entry, the gradients."""
    import torch

    entries = [v for _, v in state_tensors(module)]
    mask = bytes(v.grad is not None for v in entries)
    grads = [torch.zeros_like(v) if v.grad is None else v.grad.detach() for v in entries]
    flat = torch.cat([g.reshape(-1).float() for g in grads]) if grads else torch.zeros(0)
    values = struct.pack(f"<{len(losses)}f", *(float(torch.as_tensor(x).detach()) for x in losses))
    return values + mask + flat.numpy().astype("<f4").tobytes()


def serve_steps(conn, module, loss_fn) -> bytes:
    """From a training child, after ``send_layout``: serve the parent's steps while it sends its
    state. Each step loads that state into ``module``, calls ``loss_fn(batch)`` with the next
    frame's payload, which returns the loss (a scalar tensor) or a tuple (loss, more scalars to
    report), takes the gradients of the loss and answers ``G`` (``step_reply``) and ``S`` (the
    state after the step). Returns the frame that ended the steps (kind byte included)."""
    while (msg := conn.recv_bytes())[:1] == b"S":
        load_state_bytes(module, msg[1:])
        out = loss_fn(conn.recv_bytes()[1:])
        losses = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        module.zero_grad(set_to_none=True)
        losses[0].backward()
        conn.send_bytes(b"G" + step_reply(module, losses))
        conn.send_bytes(b"S" + state_bytes(module))
    return msg


class ParentState:
    """The parent's copy of a training child's state (``send_layout``): its values in one float32
    buffer (``flat``, state_dict order), a torch view per entry (``tensors``, shaped), and the
    fixed optimizer over the trained entries (``adamw``), which ``step`` runs."""

    def __init__(self, layout: dict, initial: bytes, threads: int = 1):
        import torch

        torch.set_num_threads(threads)
        self.layout = layout
        self.n = layout_size(layout)
        self.shapes = [tuple(int(k) for k in s) for s in layout["shape"]]
        self.kinds = [int(k) for k in layout["kind"]]
        sizes = [math.prod(s) for s in self.shapes]
        if len(initial) != 4 * self.n:
            raise RunFailure(f"the initial state holds {len(initial)} bytes, expected {4 * self.n}")
        self.flat = np.frombuffer(initial, "<f4").copy()
        edges = np.cumsum([0, *sizes])
        self.tensors = [
            torch.from_numpy(self.flat[a:b]).view(s)
            for a, b, s in zip(edges[:-1], edges[1:], self.shapes, strict=True)
        ]
        self.trained = [t for t, k in zip(self.tensors, self.kinds, strict=True) if k == TRAINED]
        self.n_trained = int(sum(t.numel() for t in self.trained))
        self.params = np.repeat(np.array([k != BUFFER for k in self.kinds], bool), sizes)
        self.optimizer: AdamW | None = None  # once adamw() ran
        self.clip: float | None = None

    @classmethod
    def receive(cls, child, cap: int | None = None) -> ParentState:
        """Read a child's layout and initial values; more than ``cap`` values is a RunFailure
        before the values are read."""
        try:
            layout = json.loads(child.expect(b"M", 1 << 20))
            n, held = layout_size(layout), held_numbers(layout)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise RunFailure(
                f"protocol error: the {child.name} process sent a bad layout ({e})"
            ) from None
        if cap is not None and held > cap:
            raise RunFailure(f"parameter cap exceeded: the state holds {held} numbers, cap {cap}")
        return cls(layout, child.expect(b"S", size=4 * n))

    def bytes(self) -> builtins.bytes:
        return self.flat.tobytes()

    def budget_verdict(self, cap: int) -> dict:
        """The budget check's verdict (``write_budget_verdict``) on this state against a cap on
        the numbers it holds, parameters and buffers."""
        n = held_numbers(self.layout)
        ok = n <= cap
        message = (
            f"{'parameter cap exceeded: ' if not ok else ''}the model's state holds {n} numbers "
            f"(parameters and buffers), the cap is {cap}"
        )
        return {"ok": ok, "message": message, "n_params": n, "param_cap": cap}

    def check_returned(self, step: int, data: builtins.bytes) -> None:
        """The state a child returned after ``step``: every parameter must be bitwise what the
        parent sent; buffers (running statistics) are taken as the forward left them."""
        returned = np.frombuffer(data, "<f4")
        if returned.size != self.n:
            raise RunFailure(
                f"the state after step {step} has {returned.size} values, not {self.n}"
            )
        mine, theirs = self.flat.view("<u4"), returned.view("<u4")
        if not np.array_equal(mine[self.params], theirs[self.params]):
            raise RunFailure(
                f"a parameter changed outside the fixed optimizer during step {step} "
                "(training must go through the harness's AdamW only)"
            )
        self.flat[~self.params] = returned[~self.params]

    def load_grads(self, data: builtins.bytes) -> None:
        """A has-gradient byte per entry, then float32 gradients of the whole state."""
        import torch

        k = len(self.tensors)
        if len(data) != k + 4 * self.n:
            raise RunFailure(f"the gradients hold {len(data)} bytes, expected {k + 4 * self.n}")
        values = np.frombuffer(data, "<f4", offset=k)
        a = 0
        for t, has in zip(self.tensors, data[:k], strict=True):
            b = a + t.numel()
            t.grad = torch.from_numpy(values[a:b].copy()).view(t.shape) if has else None
            a = b

    def adamw(
        self,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        *,
        clip: float | None = None,
        matrices_only: bool = False,
    ) -> None:
        """The fixed optimizer: AdamW (eps 1e-8, torch's own arithmetic) over the trained
        entries, which ``step`` runs. ``clip``: the gradients' total norm is clipped to it before
        each step; ``matrices_only``: weight decay on the entries of two or more dimensions only
        (a group of their own, then the rest)."""
        if matrices_only:
            groups = [
                {"params": [t for t in self.trained if t.dim() >= 2], "weight_decay": weight_decay},
                {"params": [t for t in self.trained if t.dim() < 2], "weight_decay": 0.0},
            ]
        else:
            groups = [{"params": self.trained, "weight_decay": weight_decay}]
        self.optimizer = AdamW(groups, lr=lr, betas=betas, eps=1e-8)
        self.clip = clip

    def step(self, child, step: int, batch: builtins.bytes, lr: float, n_losses: int = 1) -> tuple:
        """One training step through ``child`` (``serve_steps``): send the state and ``batch``,
        check the state it returns, take its gradients and step the optimizer at ``lr``; returns
        the losses it reported (the first must be finite)."""
        import torch

        child.send(b"S", self.bytes())
        child.send(b"B", batch)
        reply = child.expect(b"G", size=4 * n_losses + len(self.tensors) + 4 * self.n)
        self.check_returned(step, child.expect(b"S", size=4 * self.n))
        losses = struct.unpack(f"<{n_losses}f", reply[: 4 * n_losses])
        if not math.isfinite(losses[0]):
            raise RunFailure(f"training loss is not finite at step {step}")
        self.load_grads(reply[4 * n_losses :])
        assert self.optimizer is not None, "adamw() sets the optimizer before the first step"
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.trained, self.clip)
        self.optimizer.step()
        return losses


def warmup_cosine(step: int, total: int, peak: float, warmup: int, floor: float = 0.0) -> float:
    """The learning rate of ``step`` (from 0) of ``total``: linear warmup to ``peak`` over
    ``warmup`` steps, then cosine decay to ``floor`` x ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    cos = 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return peak * (floor + (1 - floor) * cos)


def held_numbers(layout: dict) -> int:
    """The numbers a state holds, for a cap: what the parent would hold and train
    (``layout_size``), or the child's own count of its whole state_dict (integer buffers too)
    where larger; the child's count can only add to the parent's."""
    return max(layout_size(layout), int(layout.get("count", 0)))


def layout_size(layout: dict) -> int:
    """The number of state values a layout (``send_layout``) describes, after checking its form."""
    shapes, kinds = layout["shape"], layout["kind"]
    if not isinstance(shapes, list) or not isinstance(kinds, list) or len(shapes) != len(kinds):
        raise ValueError("shape and kind must be lists of the same length")
    for s, k in zip(shapes, kinds, strict=True):
        if not isinstance(s, list) or not all(type(d) is int and d >= 0 for d in s):
            raise ValueError(f"a shape must be a list of sizes, got {s!r}")
        if k not in (BUFFER, FROZEN, TRAINED) or type(k) is not int:
            raise ValueError(f"a kind must be 0, 1 or 2, got {k!r}")
    return int(sum(math.prod(s) for s in shapes))


class AdamW:
    """torch's single-tensor AdamW (what ``torch.optim.AdamW`` runs on CPU), op for op, so the
    results are bitwise the same (``tests/test_taskkit.py`` checks it against torch.optim).
    Written out because building and stepping a ``torch.optim`` optimizer imports
    ``torch._dynamo``: about 2 s of CPU in every harness parent, a sixth of a short run."""

    def __init__(self, groups: list[dict], lr: float, betas: tuple[float, float], eps: float):
        self.param_groups = [dict(g, lr=lr) for g in groups]
        self.betas, self.eps = betas, eps
        self.state: dict[int, list] = {}  # id(param) -> [step, first moment, second moment]

    def step(self) -> None:
        import torch

        b1, b2 = self.betas
        with torch.no_grad():
            for group in self.param_groups:
                lr, wd = group["lr"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state.get(id(p))
                    if st is None:
                        st = self.state[id(p)] = [0.0, torch.zeros_like(p), torch.zeros_like(p)]
                    st[0] += 1.0
                    g, m, v = p.grad, st[1], st[2]
                    p.mul_(1 - lr * wd)
                    m.lerp_(g, 1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    bc1, bc2 = 1 - b1 ** st[0], 1 - b2 ** st[0]
                    denom = (v.sqrt() / bc2**0.5).add_(self.eps)
                    p.addcdiv_(m, denom, value=-(lr / bc1))
