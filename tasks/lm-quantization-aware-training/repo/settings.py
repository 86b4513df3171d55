"""Settings of this task (fixed).  Pure Python: no torch import.

Every setting starts from a pretrained full-precision byte-level GPT (checkpoints/, trained once
by ../pretrain.py on data/train.txt), fine-tunes it for `steps` AdamW steps on data/train.txt
with the quantizer of quantizer.py in the forward pass, exports the matrices at `bits` bits per
weight with one scale and zero point per group of `group_size` input columns, and evaluates the
dequantized model on `eval_windows` non-overlapping windows of the validation play.
"""
from __future__ import annotations

VOCAB = 256
LR = 1e-3          # peak learning rate of the fine-tuning (AdamW), 10% warmup, cosine to 10%
TRAIN_TEXT = "data/train.txt"
EVAL_TEXT = "data/valid.txt"

MODELS = {
    "d64-l2": dict(d_model=64, n_layer=2, n_head=4, block_size=64, checkpoint="checkpoints/d64-l2.npz"),
}

SETTINGS = {
    "d64-l2-int2-g32-s300": dict(model="d64-l2", bits=2, group_size=32, steps=300, batch_size=16,
                                 eval_windows=128),
    "d64-l2-int2-g64-s300": dict(model="d64-l2", bits=2, group_size=64, steps=300, batch_size=16,
                                 eval_windows=128),
}
