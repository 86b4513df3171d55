"""Settings of this task (fixed).  Pure Python: the harness parent does not import torch.

Every setting trains on its own training backbones (C-alpha coordinates) and native sequences
with the same loss (per-residue cross-entropy), optimizer and batch size; the test backbones are
held-out backbones of the same fold classes and length (their sequences are not in this
directory).
"""
from __future__ import annotations

ALPHABET = "ACDEFGHIKLMNPQRSTVWY"
PARAM_CAP = 100_000       # trainable parameters + buffers of the whole model
BATCH_SIZE = 8            # backbones per step
LR = 2e-3                 # AdamW peak learning rate (5% linear warmup, cosine decay to 0)
WEIGHT_DECAY = 1e-4

SETTINGS = {
    # 40-residue chains, 600 training backbones (alpha, beta, alpha+beta folds), 37 steps/epoch
    "short": dict(epochs=3, train_x="data/short_train_x.npy", train_seq="data/short_train_seq.npy",
                  test_x="data/short_test_x.npy"),
    # 72-residue chains, 240 training backbones (same fold classes), 15 steps/epoch
    "long": dict(epochs=4, train_x="data/long_train_x.npy", train_seq="data/long_train_seq.npy",
                 test_x="data/long_test_x.npy"),
}
