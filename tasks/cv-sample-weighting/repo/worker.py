"""The training process (fixed): run.py starts it through the task kit's Child, which drops its
privileges before `import weighting`; it reads weighting.py and nets.py and nothing else of this
folder.

It gets the long-tailed TRAINING images and labels and the class counts (never a test image or
label), builds the fixed classifier (nets.py), reports its state's layout and initial values,
then serves the parent's steps: the parent's state, the step's progress and the rows of one
minibatch in; the loss of weighting.loss(...), the gradients and the state after the step out.
The optimizer, its schedule, the minibatches and the step count are the parent's.
"""

from __future__ import annotations

import numpy as np
import torch
from taskkit import RunFailure, torchstate

import nets


def train(conn, spec: dict, seed: int, x_bytes: bytes, y_bytes: bytes, counts: list) -> None:
    torchstate.setup(seed)
    net = nets.build(spec["arch"], spec["in_shape"], len(counts))
    import weighting  # the agent's code, after the privilege drop

    X = torch.from_numpy(np.frombuffer(x_bytes, "<f4").reshape(-1, *spec["in_shape"]).copy())
    Y = torch.from_numpy(np.frombuffer(y_bytes, "<i8").copy())
    n = torch.tensor(counts, dtype=torch.float32)
    torchstate.send_layout(conn, net, count=torchstate.count(net))
    net.train()

    def step_loss(batch: bytes):
        progress = float(np.frombuffer(batch, "<f8", count=1)[0])
        rows = torch.from_numpy(np.frombuffer(batch, "<u4", offset=8).astype(np.int64))
        out = weighting.loss(net(X[rows]), Y[rows].clone(), n.clone(), progress)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            raise RunFailure("weighting.loss(...) must return a scalar tensor")
        if not out.requires_grad:
            raise RunFailure("weighting.loss(...) returned a loss without a gradient")
        return out.reshape(())

    torchstate.serve_steps(conn, net, step_loss)
