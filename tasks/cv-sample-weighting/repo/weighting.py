"""The loss of long-tailed training (the editable part is below the marker line).

The fixed training loop (run.py, worker.py) calls loss(logits, targets, counts, progress) on
every minibatch, drawn uniformly from the long-tailed training set, and the fixed AdamW optimizer
steps on its gradients. The trained model is scored by its balanced accuracy on a balanced test
set that training never sees.
"""

import math  # noqa: F401  (for the editable region)

import torch
import torch.nn.functional as F

# ---- EDITABLE REGION: from here to the end of the file ----


def class_weights(counts):
    """Per-class weights of the cross entropy: (C,) float tensor from the training set's class
    counts (C,). Plain cross entropy: every class weighs the same."""
    return torch.ones_like(counts)


def loss(logits, targets, counts, progress):
    """The training loss of one minibatch: a scalar tensor.

    logits   (B, C) float32, the model's outputs (differentiable)
    targets  (B,) int64 class labels
    counts   (C,) float32, training images per class (the whole long-tailed training set)
    progress float in [0, 1): the step's index divided by the number of steps
    """
    return F.cross_entropy(logits, targets, weight=class_weights(counts))
