"""The quantized model's training process (fixed): harness.py starts it through the task kit's
Child, which drops its privileges before `import quantizer`; it reads quantizer.py and nothing
else of this folder (the fixed model, gpt.py, is imported before the drop).

It gets the TRAINING windows only, one batch per step, and the pretrained model's parameters from
the parent. It builds one Quantizer per matrix, checks the quantizers' cap and the export format,
sends the shapes and initial values of every parameter (the model's, then the quantizers'), then
serves steps: the parent's parameters and a batch in; the loss, the gradients and the parameters
after the step out (the optimizer, its schedule, the clipping and the step count are the
parent's). Last it loads the trained parameters and sends export(): codes as uint8, scales and
zero points as float16. The parent rebuilds and evaluates the model with its own code.
"""

from __future__ import annotations

import struct

import gpt
import numpy as np
import torch
import torch.nn.functional as F
from taskkit import RunFailure, torchstate

QUANTIZER_PARAM_FACTOR = 2  # a matrix's quantizer may hold at most 2x the matrix's size


def _quantizers(model, bits: int, group_size: int):
    import quantizer  # the agent's code, after the privilege drop

    quant = torch.nn.ModuleDict()
    for name, W in model.matrix_params().items():
        q = quantizer.Quantizer(W.detach().clone(), bits, group_size)
        if not isinstance(q, torch.nn.Module):
            raise RunFailure("Quantizer must be a torch.nn.Module")
        n_q = sum(p.numel() for p in q.parameters())
        if n_q > QUANTIZER_PARAM_FACTOR * W.numel():
            raise RunFailure(
                f"quantizer parameter cap exceeded: the quantizer of {name} has {n_q} "
                f"parameters, at most {QUANTIZER_PARAM_FACTOR} x {W.numel()} (the matrix's "
                "size) are allowed"
            )
        quant[gpt.key(name)] = q
    # the master weights are the model's own parameters: a quantizer may not hold or alias them
    if {id(p) for p in model.parameters()} & {id(p) for p in quant.parameters()}:
        raise RunFailure("a Quantizer registered a parameter of the model as its own")
    return quant


def _export_all(quant, mats, bits, group_size, when):
    """Call export() on every matrix and check the format; returns uint8 codes, float16 scales and
    zero points (flattened, in the fixed order). What it changes of the parameters is lost: the
    parent keeps its own copy."""
    levels = 2**bits
    codes_out, scales_out, zeros_out = [], [], []
    with torch.no_grad():
        for name, W in mats.items():
            o, i = W.shape
            res = quant[gpt.key(name)].export(W)
            if not isinstance(res, (tuple, list)) or len(res) != 3:
                raise RunFailure(f"export{when}: Quantizer.export must return (codes, scale, zero)")
            codes, scale, zero = (torch.as_tensor(t).detach() for t in res)
            if tuple(codes.shape) != (o, i):
                raise RunFailure(
                    f"export{when} ({name}): codes must have shape {(o, i)}, "
                    f"got {tuple(codes.shape)}"
                )
            for nm, t in (("scale", scale), ("zero", zero)):
                if tuple(t.shape) != (o, i // group_size):
                    raise RunFailure(
                        f"export{when} ({name}): {nm} must have shape {(o, i // group_size)} "
                        f"(one per group of {group_size} weights), got {tuple(t.shape)}"
                    )
            c = codes.double()
            if not bool(torch.isfinite(c).all()) or not bool((c == torch.round(c)).all()):
                raise RunFailure(f"export{when} ({name}): codes must be integers")
            if float(c.min()) < 0 or float(c.max()) > levels - 1:
                raise RunFailure(
                    f"export{when} ({name}): codes must lie in 0..{levels - 1} for {bits}-bit "
                    f"weights, got {int(c.min())}..{int(c.max())}"
                )
            codes_out.append(c.to(torch.uint8).contiguous().numpy().reshape(-1))
            scales_out.append(scale.double().numpy().astype(np.float16).reshape(-1))
            zeros_out.append(zero.double().numpy().astype(np.float16).reshape(-1))
    return codes_out, scales_out, zeros_out


def train(conn, cfg_dict: dict, pretrained: bytes, bits: int, group_size: int, seed: int) -> None:
    torchstate.setup(seed)
    cfg = gpt.Config(**cfg_dict)
    model = gpt.GPT(cfg)
    torchstate.load_state_bytes(torch.nn.ParameterList(model.parameters()), pretrained)
    mats = model.matrix_params()
    quant = _quantizers(model, bits, group_size)
    held = torch.nn.ParameterList([*model.parameters(), *quant.parameters()])
    _export_all(quant, mats, bits, group_size, " before training")  # a bad format fails fast
    torchstate.send_layout(conn, held)
    model.train()
    quant.train()
    T = cfg.block_size

    def loss_fn(batch: bytes):
        (progress,) = struct.unpack("<d", batch[:8])
        w = np.frombuffer(batch, np.uint8, offset=8).reshape(-1, T + 1).astype(np.int64)
        x, y = torch.from_numpy(w[:, :-1]), torch.from_numpy(w[:, 1:])
        weights = {}
        for name, W in mats.items():
            wq = quant[gpt.key(name)](W, progress)
            if not isinstance(wq, torch.Tensor) or tuple(wq.shape) != tuple(W.shape):
                raise RunFailure(
                    f"Quantizer.forward must return a tensor of shape {tuple(W.shape)} for {name}"
                )
            weights[name] = wq.float()
        ce = F.cross_entropy(model(x, weights).reshape(-1, cfg.vocab_size), y.reshape(-1))
        loss = ce
        for name, W in mats.items():
            pen = quant[gpt.key(name)].penalty(W, progress)
            if pen is not None:
                pen = torch.as_tensor(pen)
                if pen.numel() != 1:
                    raise RunFailure("Quantizer.penalty must return None or a scalar")
                loss = loss + pen.reshape(())
        return loss, ce  # the loss minimised, and the cross-entropy the parent records

    done = torchstate.serve_steps(conn, held, loss_fn)
    torchstate.load_state_bytes(held, done[1:])  # b"D" and the trained parameters
    model.eval()
    quant.eval()
    codes, scales, zeros = _export_all(quant, mats, bits, group_size, "")
    conn.send_bytes(b"C" + np.concatenate(codes).tobytes())
    conn.send_bytes(b"Z" + np.concatenate(scales + zeros).astype("<f2").tobytes())
