"""The fixed, trained readout over the filter's basis matrices (numpy, full batch).

    logits = (sum_k gamma_k * B_k) @ W + b

B_k are the (n, f) basis matrices the filter returns, gamma the filter coefficients (learned
jointly with W and b when the filter asks for it, as GPR-GNN does; fixed otherwise), W (f, C)
and b (C,) a linear classifier. Softmax cross-entropy on the training nodes, Adam, L2 weight
decay on W, up to MAX_EPOCHS epochs with early stopping on the validation loss (GPR-GNN's
protocol); the parameters with the lowest validation loss are kept. Before training, all bases
are multiplied by one scalar so that sum_k coef_init_k B_k has unit RMS row norm.
"""

from __future__ import annotations

import numpy as np

LR = 0.05
WEIGHT_DECAY = 5e-4  # on W only; gamma and b are not decayed (as in GPR-GNN)
MAX_EPOCHS = 500
PATIENCE = 100
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient w.r.t. the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.log(prob[np.arange(y.size), y] + 1e-300)))
    grad = prob
    grad[np.arange(y.size), y] -= 1.0
    return loss, grad / y.size


class Readout:
    def __init__(self, num_features: int, num_classes: int, coef_init: np.ndarray,
                 learn_coef: bool, rng: np.random.Generator):
        bound = np.sqrt(6.0 / (num_features + num_classes))  # Glorot uniform
        self.params = {
            "W": rng.uniform(-bound, bound, size=(num_features, num_classes)),
            "b": np.zeros(num_classes),
            "gamma": np.array(coef_init, dtype=np.float64),
        }
        self.learn_coef = learn_coef

    # The passes over the (K, m, f) basis stacks run in float32 (they dominate the cost);
    # parameters, logits and the optimiser state stay float64.
    def _mix(self, bases: np.ndarray) -> np.ndarray:
        return np.tensordot(self.params["gamma"].astype(np.float32), bases, axes=(0, 0))

    def logits(self, bases: np.ndarray) -> np.ndarray:
        """bases: (K, m, f) float32 -> (m, C) float64."""
        mixed = self._mix(bases)
        return (mixed @ self.params["W"].astype(np.float32)).astype(np.float64) + self.params["b"]

    def grads(self, bases: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        p = self.params
        mixed = self._mix(bases)
        out = (mixed @ p["W"].astype(np.float32)).astype(np.float64) + p["b"]
        loss, g = _xent(out, y)
        g32 = g.astype(np.float32)
        grads = {"W": (mixed.T @ g32).astype(np.float64) + 2.0 * WEIGHT_DECAY * p["W"],
                 "b": g.sum(axis=0)}
        if self.learn_coef:
            gw = (g32 @ p["W"].T.astype(np.float32))
            grads["gamma"] = np.tensordot(bases, gw, axes=([1, 2], [0, 1])).astype(np.float64)
        return loss, grads


def train_readout(bases: list[np.ndarray], coef_init: np.ndarray, learn_coef: bool,
                  labels: np.ndarray, num_classes: int, train_idx: np.ndarray,
                  val_idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Train on train_idx, select on val_idx; return (predicted class of every node, info)."""
    # one global scale so that the initial filter output has unit RMS row norm: a scalar
    # commutes with any polynomial filter, so this only conditions the optimisation
    init_out = np.zeros_like(bases[0], dtype=np.float64)
    for g_k, b_k in zip(coef_init, bases, strict=True):
        init_out += g_k * b_k
    rms = float(np.sqrt(np.mean(np.sum(init_out * init_out, axis=1))))
    scale = 1.0 / rms if rms > 0 and np.isfinite(rms) else 1.0
    bases = [scale * b for b in bases]
    b_tr = np.stack([b[train_idx] for b in bases]).astype(np.float32)
    b_va = np.stack([b[val_idx] for b in bases]).astype(np.float32)
    y_tr, y_va = labels[train_idx], labels[val_idx]
    model = Readout(bases[0].shape[1], num_classes, coef_init, learn_coef, rng)
    m = {k: np.zeros_like(v) for k, v in model.params.items()}
    v = {k: np.zeros_like(val) for k, val in model.params.items()}
    best = (np.inf, 0, {k: val.copy() for k, val in model.params.items()})
    epoch = 0
    for epoch in range(1, MAX_EPOCHS + 1):
        _, grads = model.grads(b_tr, y_tr)
        for k, g in grads.items():
            m[k] = BETAS[0] * m[k] + (1 - BETAS[0]) * g
            v[k] = BETAS[1] * v[k] + (1 - BETAS[1]) * g * g
            m_hat = m[k] / (1 - BETAS[0] ** epoch)
            v_hat = v[k] / (1 - BETAS[1] ** epoch)
            model.params[k] = model.params[k] - LR * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
        val_loss, _ = _xent(model.logits(b_va), y_va)
        if not np.isfinite(val_loss):
            break
        if val_loss < best[0]:
            best = (val_loss, epoch, {k: val.copy() for k, val in model.params.items()})
        elif epoch - best[1] >= PATIENCE:
            break
    model.params = best[2]
    gamma = model.params["gamma"]
    mixed = np.zeros_like(bases[0], dtype=np.float64)
    for g_k, b_k in zip(gamma, bases, strict=True):
        mixed += g_k * b_k
    pred = np.argmax(mixed @ model.params["W"] + model.params["b"], axis=1)
    info = {"best_epoch": best[1], "epochs": epoch, "val_loss": float(best[0]),
            "gamma": [float(g) for g in gamma]}
    return pred.astype(np.int64), info
