"""How tokens and positions enter the language model: the EDITABLE file of this task (every line
below the marker).  Lines above the marker are fixed.

Contract (kept by every submission) - a torch.nn.Module class `Embedding`:

    Embedding(cfg)   cfg: gpt.Config with vocab_size (256, bytes), d_model, n_layer, n_head,
                     head_dim, block_size (the training context), embedding_budget (how many
                     trainable parameters this module may have; the harness counts every
                     nn.Parameter of the whole model and fails the run above cfg.max_params).
    forward(idx)     idx: int64 (B, T) byte ids, T <= block_size.  Returns (x0, value_embeds):
                     x0 (B, T, d_model) float32, the input of the first block; value_embeds is
                     None or a list of n_layer entries, each None or (B, T, d_model), added to the
                     attention values of that layer.  Position t may depend on idx[:, :t+1] only
                     (causal) and on nothing but the current call's input (no state kept between
                     calls): the harness checks both and fails the run otherwise.
    attention_positions(T)
                     -> (angles, bias): angles None or float (T, head_dim // 2), rotary angles
                     applied to queries and keys (pairs (i, i + head_dim/2)); bias None or float
                     (n_head, T, T), added to the attention logits before the causal mask.
                     Depends on T and the module's parameters only.
    output_weight()  -> (vocab_size, d_model) read-out matrix: logits = LayerNorm(h) @ W.T.
                     Return the token table for tied embeddings, or a separate parameter.

The body (gpt.py), the optimizer (AdamW, fixed schedule), the step count, the batch size and the
data are fixed (harness.py).  Allowed imports: torch, math.  No file I/O, no gradient hooks,
no optimizers of your own.
"""
# ---- editable region starts here ----------------------------------------------------------
import math

import torch
import torch.nn as nn


class Embedding(nn.Module):
    """GPT-2 style: learned token table + learned absolute position table, tied read-out."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)
        nn.init.normal_(self.tok.weight, mean=0.0, std=0.02)
        nn.init.normal_(self.pos.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        return self.tok(idx) + self.pos(pos), None

    def attention_positions(self, T):
        return None, None

    def output_weight(self):
        return self.tok.weight
