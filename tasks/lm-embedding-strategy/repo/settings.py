"""Settings of this task (fixed).  Pure Python: the harness parent does not import torch.

Every setting trains the same kind of model on the same training text (data/train.txt, eight
Shakespeare plays, bytes) with the same optimizer; they differ in width, depth and context.
"""
from __future__ import annotations

VOCAB = 256            # bytes
PARAM_CAP_FACTOR = 1.5  # total trainable parameters <= 1.5 x those of the default model

SETTINGS = {
    "d64-l2-ctx64": dict(d_model=64, n_layer=2, n_head=4, block_size=64,
                         steps=250, batch_size=16, eval_text="data/valid.txt", eval_windows=128),
    "d48-l3-ctx128": dict(d_model=48, n_layer=3, n_head=4, block_size=128,
                          steps=250, batch_size=8, eval_text="data/valid.txt", eval_windows=64),
}

TRAIN_TEXT = "data/train.txt"


def body_params(d_model: int, n_layer: int) -> int:
    """Trainable parameters of the fixed body: per block 2 LayerNorms (4d), qkv + proj (4d^2),
    MLP (8d^2); plus the final LayerNorm (2d)."""
    return n_layer * (12 * d_model * d_model + 4 * d_model) + 2 * d_model


def default_params(d_model: int, n_layer: int, block_size: int) -> int:
    """The default model: body + byte table (tied read-out) + learned absolute positions."""
    return body_params(d_model, n_layer) + VOCAB * d_model + block_size * d_model


def param_cap(d_model: int, n_layer: int, block_size: int) -> int:
    return int(PARAM_CAP_FACTOR * default_params(d_model, n_layer, block_size))
