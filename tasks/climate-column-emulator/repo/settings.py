"""Settings of this task (fixed).  Pure Python: the harness parent does not import torch.

Every setting trains on the same data (data/train_*.npy: the first 48 three-hourly times of 40
columns) with the same loss, optimizer and batch size; they differ in training length.  The test
inputs are the last 16 times of the same columns (a split by time).
"""
from __future__ import annotations

PARAM_CAP = 60_000        # trainable parameters + buffers of the whole model
BATCH_SIZE = 32
LR = 3e-3                 # AdamW peak learning rate (5% linear warmup, cosine decay to 0)
WEIGHT_DECAY = 1e-4

SETTINGS = {
    "short": dict(epochs=6, test_x="data/test_x.npy"),
    "long": dict(epochs=16, test_x="data/test_x.npy"),
}

TRAIN_X, TRAIN_Y, STATS = "data/train_x.npy", "data/train_y.npy", "data/stats.json"
