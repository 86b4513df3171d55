"""Fixed harness (trusted): fine-tunes the pretrained model with the agent's quantizer in a spawned
child, then builds and scores the quantized model in the parent with its own code.

  parent   reads the texts, removes MLSBENCH_OUT from the environment, statically checks
           quantizer.py for what the policy cannot see (file readers, gradient hooks, optimizers)
  child    gets the TRAINING bytes only.  Loads the pretrained checkpoint into the fixed model
           (gpt.py), builds one Quantizer per matrix, checks the quantizers' parameter cap, and
           runs `steps` AdamW steps (fixed schedule) with the matrices replaced in the forward by
           quantizer(weight, progress) and the penalties added to the loss; before every optimizer
           step it verifies that no parameter changed outside the optimizer.  Then it calls
           export() on every matrix and sends, as raw bytes: the float parameters (byte table,
           LayerNorms) as float32, the codes as uint8, the scales and zero points as float16.
  parent   never imports the agent's code and never unpickles anything the child sent.  It checks
           the byte counts, that every code is < 2^bits and every scale / zero point finite,
           rebuilds every matrix itself as scale * (code - zero) per group, evaluates the validation
           loss with the fixed model code, and, after the child has exited, writes quantized.npz
           (exactly what the evaluated model is made of) and result.json.  The grader re-checks
           quantized.npz and recomputes the loss from it.

Protocol (child -> parent): b"I" + utf-8 JSON (info), b"F" + float32 float parameters,
b"C" + uint8 codes, b"S" + float16 scales then zero points, b"X" + utf-8 text (failure).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import traceback
from pathlib import Path

import numpy as np

import settings as S

QUANTIZER_PARAM_FACTOR = (
    2  # a matrix's quantizer may hold at most 2x the matrix's size in parameters
)
BETAS = (0.9, 0.95)
CLIP = 1.0


class RunFailure(Exception):
    pass


def model_config(spec: dict) -> dict:
    m = S.MODELS[spec["model"]]
    return dict(
        vocab_size=S.VOCAB,
        d_model=m["d_model"],
        n_layer=m["n_layer"],
        n_head=m["n_head"],
        block_size=m["block_size"],
    )


def load_checkpoint(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k].astype(np.float32) for k in z.files}


def lr_at(step: int, steps: int, lr: float) -> float:
    warmup = max(1, steps // 10)
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
    )


# ------------------------------------------------------------------------------- child side


def _torch_setup(seed: int):
    import random

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)
    return torch


def _load_into(torch, model, ckpt: dict) -> None:
    with torch.no_grad():
        for name, p in {**model.float_params(), **model.matrix_params()}.items():
            if name not in ckpt or tuple(ckpt[name].shape) != tuple(p.shape):
                raise RunFailure(f"checkpoint: missing or misshaped {name}")
            p.copy_(torch.from_numpy(ckpt[name]))


def _export_all(torch, quant, mats, params, bits, group_size, when):
    """Call export() on every matrix and check the format; returns uint8 codes, float16 scales and
    zero points (flattened, in the fixed order).  No parameter may change."""
    import gpt

    snapshot = [p.detach().clone() for p in params]
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
    for p, s in zip(params, snapshot):
        if not torch.equal(p.detach(), s):
            raise RunFailure(f"a parameter changed during export{when}")
    return codes_out, scales_out, zeros_out


def train_child(
    conn, cfg_dict, ckpt_path, bits, group_size, steps, batch_size, lr, seed, train_bytes
):
    try:
        torch = _torch_setup(seed)
        import torch.nn.functional as F

        import gpt
        import quantizer as Qmod

        cfg = gpt.Config(**cfg_dict)
        model = gpt.GPT(cfg)
        _load_into(torch, model, load_checkpoint(ckpt_path))
        mats = model.matrix_params()
        quant = torch.nn.ModuleDict()
        for name, W in mats.items():
            q = Qmod.Quantizer(W.detach().clone(), bits, group_size)
            if not isinstance(q, torch.nn.Module):
                raise RunFailure("Quantizer must be a torch.nn.Module")
            n_q = sum(p.numel() for p in q.parameters())
            if n_q > QUANTIZER_PARAM_FACTOR * W.numel():
                raise RunFailure(
                    f"quantizer parameter cap exceeded: the quantizer of {name} has {n_q} parameters, "
                    f"at most {QUANTIZER_PARAM_FACTOR} x {W.numel()} (the matrix's size) are allowed"
                )
            quant[gpt.key(name)] = q
        # the master weights are the model's own parameters: a quantizer may not hold or alias them
        model_ids = {id(p) for p in model.parameters()}
        if any(id(p) in model_ids for p in quant.parameters()):
            raise RunFailure("a Quantizer registered a parameter of the model as its own")

        data = np.frombuffer(train_bytes, dtype=np.uint8)
        rng = np.random.default_rng(seed)
        T = cfg.block_size

        def batch():
            ix = rng.integers(0, len(data) - T - 1, size=batch_size)
            w = np.stack([data[i : i + T + 1] for i in ix]).astype(np.int64)
            return torch.from_numpy(w[:, :-1]), torch.from_numpy(w[:, 1:])

        params = list(model.parameters()) + list(quant.parameters())
        all_params = [p for p in params if p.requires_grad]
        # the export format is checked once before training too (a malformed export fails fast)
        _export_all(torch, quant, mats, params, bits, group_size, " before training")
        opt = torch.optim.AdamW(all_params, lr=lr, betas=BETAS, eps=1e-8, weight_decay=0.0)
        losses = []
        t0 = time.time()
        model.train()
        quant.train()
        for step in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr)
            progress = step / steps
            snapshot = [p.detach().clone() for p in params]
            x, y = batch()
            weights = {}
            for name, W in mats.items():
                wq = quant[gpt.key(name)](W, progress)
                if not isinstance(wq, torch.Tensor) or tuple(wq.shape) != tuple(W.shape):
                    raise RunFailure(
                        f"Quantizer.forward must return a tensor of shape {tuple(W.shape)} "
                        f"for {name}"
                    )
                weights[name] = wq.float()
            logits = model(x, weights)
            ce = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1))
            loss = ce
            for name, W in mats.items():
                pen = quant[gpt.key(name)].penalty(W, progress)
                if pen is not None:
                    pen = torch.as_tensor(pen)
                    if pen.numel() != 1:
                        raise RunFailure("Quantizer.penalty must return None or a scalar")
                    loss = loss + pen.reshape(())
            if not torch.isfinite(loss):
                raise RunFailure(f"training loss is not finite at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for p, s in zip(params, snapshot):
                if not torch.equal(p.detach(), s):
                    raise RunFailure(
                        "a parameter changed outside the fixed optimizer during step "
                        f"{step} (training must go through the harness's AdamW only)"
                    )
            torch.nn.utils.clip_grad_norm_(all_params, CLIP)
            opt.step()
            losses.append(float(ce.detach()))
        train_s = time.time() - t0

        # ---- export (the master weights and the float parameters must not change)
        model.eval()
        quant.eval()
        codes_out, scales_out, zeros_out = _export_all(
            torch, quant, mats, params, bits, group_size, ""
        )
        info = dict(
            train_ce_first20=float(np.mean(losses[:20])),
            train_ce_last50=float(np.mean(losses[-50:])),
            train_s=round(train_s, 2),
            quantizer_params=int(sum(p.numel() for p in quant.parameters())),
        )
        conn.send_bytes(b"I" + json.dumps(info).encode())
        flat = torch.cat([p.detach().reshape(-1).float() for p in model.float_params().values()])
        conn.send_bytes(b"F" + flat.numpy().astype("<f4").tobytes())
        conn.send_bytes(b"C" + np.concatenate(codes_out).tobytes())
        conn.send_bytes(b"S" + np.concatenate(scales_out + zeros_out).astype("<f2").tobytes())
    except BaseException as e:
        msg = str(e) if isinstance(e, RunFailure) else traceback.format_exc()[-3000:]
        try:
            conn.send_bytes(b"X" + msg.encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()


# ------------------------------------------------------------------------------ parent side


def _recv(conn, proc, timeout_s, maxlength):
    deadline = time.time() + timeout_s
    while not conn.poll(1.0):
        if not proc.is_alive() and not conn.poll(0.1):
            raise RunFailure(f"the child process exited unexpectedly (exit code {proc.exitcode})")
        if time.time() > deadline:
            raise RunFailure("the child process timed out")
    try:
        msg = conn.recv_bytes(maxlength=maxlength)
    except EOFError:
        raise RunFailure(f"the child process exited unexpectedly (exit code {proc.exitcode})")
    except OSError as e:
        raise RunFailure(f"protocol error: message too long ({e})")
    if msg[:1] == b"X":
        raise RunFailure(msg[1:].decode("utf-8", "replace"))
    return msg


def _stop(proc, conn):
    try:
        conn.close()
    except Exception:
        pass
    proc.join(timeout=20)
    if proc.is_alive():
        proc.kill()
        proc.join()


def eval_windows(text: bytes, T: int, n: int) -> np.ndarray:
    """n windows of T+1 bytes at evenly spaced, non-overlapping starts over the whole text."""
    data = np.frombuffer(text, dtype=np.uint8)
    starts = np.linspace(0, len(data) - T - 1, n).round().astype(np.int64)
    if n > 1 and np.diff(starts).min() < T + 1:
        raise ValueError("evaluation text too short for the requested windows")
    return np.stack([data[s : s + T + 1] for s in starts])


def unpack(cfg_dict: dict, group_size: int, flat: np.ndarray, codes: np.ndarray, sz: np.ndarray):
    """Split the raw arrays into named float parameters and per-matrix (codes, scale, zero)."""
    import gpt

    cfg = gpt.Config(**cfg_dict)
    fl, mats = {}, {}
    i = 0
    for name, shape in gpt.float_shapes(cfg).items():
        n = int(np.prod(shape))
        fl[name] = flat[i : i + n].reshape(shape)
        i += n
    if i != flat.size:
        raise RunFailure(f"expected {i} float parameters, got {flat.size}")
    shapes = gpt.matrix_shapes(cfg)
    n_groups = sum(o * (k // group_size) for o, k in shapes.values())
    n_codes = sum(o * k for o, k in shapes.values())
    if codes.size != n_codes or sz.size != 2 * n_groups:
        raise RunFailure(
            f"expected {n_codes} codes and {2 * n_groups} scales/zero points, "
            f"got {codes.size} and {sz.size}"
        )
    ic = ig = 0
    for name, (o, k) in shapes.items():
        ng = o * (k // group_size)
        mats[name] = (
            codes[ic : ic + o * k].reshape(o, k),
            sz[ig : ig + ng].reshape(o, k // group_size),
            sz[n_groups + ig : n_groups + ig + ng].reshape(o, k // group_size),
        )
        ic += o * k
        ig += ng
    return fl, mats


def check_quantized(mats: dict, bits: int, group_size: int) -> int:
    """Every code < 2^bits, every scale / zero point finite float16; returns the largest number of
    distinct values found in any group (at most 2^bits by construction)."""
    levels = 0
    for name, (codes, scale, zero) in mats.items():
        if codes.dtype != np.uint8 or scale.dtype != np.float16 or zero.dtype != np.float16:
            raise RunFailure(f"{name}: codes must be uint8 and scales / zero points float16")
        if codes.size and int(codes.max()) > 2**bits - 1:
            raise RunFailure(
                f"{name}: a code is {int(codes.max())}, above {2**bits - 1} "
                f"({bits}-bit weights allow {2**bits} levels per group)"
            )
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(zero))):
            raise RunFailure(f"{name}: scales and zero points must be finite float16 values")
        o, k = codes.shape
        g = np.sort(codes.reshape(o, k // group_size, group_size), axis=-1)
        distinct = 1 + (np.diff(g.astype(np.int16), axis=-1) != 0).sum(axis=-1)
        levels = max(levels, int(distinct.max()))
    if levels > 2**bits:
        raise RunFailure(f"a group holds {levels} distinct weights, more than 2^{bits}")
    return levels


def dequantize(
    codes: np.ndarray, scale: np.ndarray, zero: np.ndarray, group_size: int
) -> np.ndarray:
    o, k = codes.shape
    q = codes.astype(np.float32).reshape(o, k // group_size, group_size)
    w = scale.astype(np.float32)[..., None] * (q - zero.astype(np.float32)[..., None])
    return w.reshape(o, k)


def evaluate(
    cfg_dict: dict, float_params: dict, matrices: dict, windows: np.ndarray, batch: int = 32
) -> np.ndarray:
    """Per-byte cross-entropy (nats, float64) of the given float parameters and matrices on the
    windows (inputs = window[:, :-1], targets = window[:, 1:]), with the fixed model code."""
    import torch

    import gpt

    torch.set_num_threads(1)
    cfg = gpt.Config(**cfg_dict)
    model = gpt.GPT(cfg)
    with torch.no_grad():
        for name, p in model.float_params().items():
            p.copy_(torch.from_numpy(np.ascontiguousarray(float_params[name], dtype=np.float32)))
        W = {
            name: torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))
            for name, m in matrices.items()
        }
        model.eval()
        out = []
        for b0 in range(0, len(windows), batch):
            w = torch.from_numpy(windows[b0 : b0 + batch].astype(np.int64))
            logits = model(w[:, :-1], W).double()
            nll = -torch.log_softmax(logits, dim=-1).gather(-1, w[:, 1:, None])[..., 0]
            out.append(nll.numpy())
    return np.concatenate(out).astype(np.float64)


def run(
    label: str, spec: dict, train_text: bytes, eval_text: bytes, seed: int, out_dir: Path
) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    cfg = model_config(spec)
    bits, group_size = spec["bits"], spec["group_size"]
    steps, batch_size = spec["steps"], spec["batch_size"]
    ckpt_path = S.MODELS[spec["model"]]["checkpoint"]
    rec = dict(
        setting=label,
        seed=seed,
        status="error",
        error=None,
        model=spec["model"],
        bits=bits,
        group_size=group_size,
        steps=steps,
        batch_size=batch_size,
    )
    arrays = None
    t0 = time.time()
    try:
        import gpt

        gcfg = gpt.Config(**cfg)
        n_float = sum(int(np.prod(s)) for s in gpt.float_shapes(gcfg).values())
        n_codes = sum(o * k for o, k in gpt.matrix_shapes(gcfg).values())
        for o, k in gpt.matrix_shapes(gcfg).values():
            if k % group_size:
                raise RunFailure(f"group size {group_size} does not divide {k}")
        pc, cc = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=train_child,
            daemon=True,
            args=(cc, cfg, ckpt_path, bits, group_size, steps, batch_size, S.LR, seed, train_text),
        )
        proc.start()
        cc.close()
        try:
            info = json.loads(_recv(pc, proc, 3600, 1 << 20)[1:].decode("utf-8"))
            fmsg = _recv(pc, proc, 600, 4 * n_float + 8)
            cmsg = _recv(pc, proc, 600, n_codes + 8)
            smsg = _recv(pc, proc, 600, 4 * n_codes + 8)
        finally:
            _stop(proc, pc)
        if (
            fmsg[:1] != b"F"
            or cmsg[:1] != b"C"
            or smsg[:1] != b"S"
            or (len(fmsg) - 1) % 4
            or (len(smsg) - 1) % 2
        ):
            raise RunFailure("protocol: expected the float parameters, the codes and the scales")
        flat = np.frombuffer(fmsg, dtype="<f4", offset=1).astype(np.float32)
        codes = np.frombuffer(cmsg, dtype=np.uint8, offset=1).copy()
        sz = np.frombuffer(smsg, dtype="<f2", offset=1).astype(np.float16)
        if not np.all(np.isfinite(flat)):
            raise RunFailure("the float parameters are not finite")
        fl, mats = unpack(cfg, group_size, flat, codes, sz)
        levels = check_quantized(mats, bits, group_size)
        rec.update(
            train_ce_first20=info.get("train_ce_first20"),
            train_ce_last50=info.get("train_ce_last50"),
            train_s=info.get("train_s"),
            quantizer_params=info.get("quantizer_params"),
            max_levels_per_group=levels,
        )
        arrays = {f"float/{k}": v for k, v in fl.items()}
        for name, (c, s, z) in mats.items():
            arrays[f"codes/{name}"], arrays[f"scale/{name}"], arrays[f"zero/{name}"] = c, s, z
        # ---- evaluation: the parent's own code on the dequantized weights
        win = eval_windows(eval_text, cfg["block_size"], spec["eval_windows"])
        deq = {name: dequantize(c, s, z, group_size) for name, (c, s, z) in mats.items()}
        nll = evaluate(cfg, fl, deq, win)
        rec.update(status="ok", bpc=float(nll.mean() / math.log(2)), n_chars=int(nll.size))
    except RunFailure as e:
        rec["error"] = str(e)
        arrays = None
    except Exception:
        rec["error"] = "harness error:\n" + traceback.format_exc()[-3000:]
        arrays = None
    rec["wall_s"] = round(time.time() - t0, 2)
    write_artifacts(out_dir, arrays, rec)
    return rec


def write_artifacts(out_dir: Path, arrays, record: dict) -> None:
    """Called after the child has exited: wipe whatever is in out_dir, then write ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if arrays is not None:
        np.savez(out_dir / "quantized.npz", **arrays)
    (out_dir / "result.json").write_text(json.dumps(record, indent=1))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")


def main_for(label: str, spec: dict) -> int:
    out_dir = out_dir_from_env()
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    train_text = Path(S.TRAIN_TEXT).read_bytes()
    eval_text = Path(S.EVAL_TEXT).read_bytes()
    rec = run(label, spec, train_text, eval_text, seed, out_dir)
    if rec["status"] == "ok":
        print(
            f"[{label}] seed={seed} bpc={rec['bpc']:.4f} ({rec['bits']}-bit, groups of {rec['group_size']}; "
            f"max levels per group {rec['max_levels_per_group']}) train_ce_last50={rec['train_ce_last50']:.4f} "
            f"wall={rec['wall_s']}s"
        )
        return 0
    print(f"[{label}] seed={seed} FAILED: {rec['error']}")
    return 0  # the grader fails the setting with this message (exit 0 so that it is called)
