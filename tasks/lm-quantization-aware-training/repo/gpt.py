"""The fixed byte-level GPT (trusted, not editable).

A GPT-2-like decoder (Radford et al. 2019) over the 256 byte values: a byte table that is also the
read-out (tied), rotary position angles (RoPE, Su et al. 2021, base 10000) on queries and keys,
pre-LayerNorm blocks of causal multi-head self-attention and a 4x GELU MLP, a final LayerNorm.

The four matrices of every block are the QUANTIZED weights of this task:
    blocks.{l}.qkv   (3d, d)     blocks.{l}.proj (d, d)
    blocks.{l}.fc    (4d, d)     blocks.{l}.out  (d, 4d)
(torch.nn.Linear layout: (out_features, in_features), y = x @ W.T). Everything else stays in
float32: the byte table / read-out `tok` (256, d) and the LayerNorm weights and biases.

`GPT.forward(idx, weights)` takes the matrices from `weights` (name -> tensor): the harness passes
the fake-quantized weights during training and the dequantized integer weights at evaluation, so
the same fixed code runs both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

MATRICES = ("qkv", "proj", "fc", "out")


@dataclass(frozen=True)
class Config:
    vocab_size: int = 256
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    block_size: int = 64

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


def matrix_shapes(cfg: Config) -> dict[str, tuple[int, int]]:
    """Name -> (out_features, in_features) of every quantized matrix, in the fixed order."""
    d = cfg.d_model
    shapes = {}
    for l in range(cfg.n_layer):
        shapes[f"blocks.{l}.qkv"] = (3 * d, d)
        shapes[f"blocks.{l}.proj"] = (d, d)
        shapes[f"blocks.{l}.fc"] = (4 * d, d)
        shapes[f"blocks.{l}.out"] = (d, 4 * d)
    return shapes


def float_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter kept in float32, in the fixed order."""
    d = cfg.d_model
    shapes = {"tok": (cfg.vocab_size, d)}
    for l in range(cfg.n_layer):
        for ln in ("ln1", "ln2"):
            shapes[f"blocks.{l}.{ln}.weight"] = (d,)
            shapes[f"blocks.{l}.{ln}.bias"] = (d,)
    shapes["ln_f.weight"] = (d,)
    shapes["ln_f.bias"] = (d,)
    return shapes


def rope_angles(cfg: Config, T: int) -> torch.Tensor:
    half = cfg.head_dim // 2
    inv = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32) / half))
    return torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    cos, sin = torch.cos(angles), torch.sin(angles)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class GPT(nn.Module):
    """Holds the float parameters (`tok`, LayerNorms) and the full-precision master copies of the
    quantized matrices (`matrices`, an nn.ParameterDict keyed by name with '.' -> '_')."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok = nn.Parameter(torch.randn(cfg.vocab_size, d) * 0.02)
        self.ln = nn.ModuleDict()
        for l in range(cfg.n_layer):
            self.ln[f"{l}_1"] = nn.LayerNorm(d)
            self.ln[f"{l}_2"] = nn.LayerNorm(d)
        self.ln_f = nn.LayerNorm(d)
        self.matrices = nn.ParameterDict()
        for name, (o, i) in matrix_shapes(cfg).items():
            std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith(("proj", "out")) else 0.02
            self.matrices[key(name)] = nn.Parameter(torch.randn(o, i) * std)

    # ---- named access in the fixed order of float_shapes / matrix_shapes
    def float_params(self) -> dict[str, nn.Parameter]:
        out = {"tok": self.tok}
        for l in range(self.cfg.n_layer):
            for j, ln in ((1, "ln1"), (2, "ln2")):
                out[f"blocks.{l}.{ln}.weight"] = self.ln[f"{l}_{j}"].weight
                out[f"blocks.{l}.{ln}.bias"] = self.ln[f"{l}_{j}"].bias
        out["ln_f.weight"] = self.ln_f.weight
        out["ln_f.bias"] = self.ln_f.bias
        return out

    def matrix_params(self) -> dict[str, nn.Parameter]:
        return {name: self.matrices[key(name)] for name in matrix_shapes(self.cfg)}

    def forward(self, idx: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.cfg
        B, T = idx.shape
        d, H = cfg.d_model, cfg.n_head
        angles = rope_angles(cfg, T)
        x = F.embedding(idx, self.tok)
        for l in range(cfg.n_layer):
            h = self.ln[f"{l}_1"](x)
            q, k, v = F.linear(h, weights[f"blocks.{l}.qkv"]).split(d, dim=2)
            q, k, v = (t.view(B, T, H, d // H).transpose(1, 2) for t in (q, k, v))
            q, k = apply_rotary(q, angles), apply_rotary(k, angles)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + F.linear(y.transpose(1, 2).reshape(B, T, d), weights[f"blocks.{l}.proj"])
            h = F.gelu(F.linear(self.ln[f"{l}_2"](x), weights[f"blocks.{l}.fc"]))
            x = x + F.linear(h, weights[f"blocks.{l}.out"])
        return self.ln_f(x) @ self.tok.t()


def key(name: str) -> str:
    return name.replace(".", "_")
