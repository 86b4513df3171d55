"""Fixed harness (trusted): trains the model in one spawn child, predicts in another, and writes
the predictions from the parent, which never imports the agent's code.

  parent       loads the data (standardized training columns and targets, test inputs; the test
               targets are not in this directory: only the grader has them), removes MLSBENCH_OUT
               from the environment, statically checks model.py for what the policy cannot see
               (file readers, gradient hooks, optimizers)
  train child  gets the TRAINING columns only; builds build_model(cfg), checks the parameter cap
               (every element of the state_dict: parameters and buffers), trains `epochs` epochs
               of AdamW on the mean squared error of the standardized outputs, batch 32, fixed
               schedule (the harness verifies before every step that no parameter changed outside
               the optimizer) and sends the state back as raw float32 bytes
  eval child   a fresh process: builds a fresh model, loads that state (nothing else survives
               training), switches to eval mode and answers prediction requests for batches of
               test inputs
  parent       sends the test inputs in batches, then re-asks a re-mixed subset: the answers must
               be identical (a column emulator predicts each column from that column alone).
               Artifacts (predictions, record) are written after both children have exited.

Protocol: raw bytes over multiprocessing Pipes; the parent never unpickles anything a child sent.
  child -> parent  b"I" + utf-8 JSON (info), b"P" + float32 state, b"R" (ready),
                   b"O" + float32 predictions (B * n_out), b"X" + utf-8 text (failure)
  parent -> eval child  b"P" + float32 state, b"Q" + uint32 B + float32 inputs (B * n_in), b"E"
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import time
import traceback
from pathlib import Path

import numpy as np

import settings as S

STATE_RTOL = 1e-5


class RunFailure(Exception):
    pass


class Config:
    """What build_model(cfg) receives (plain attributes)."""

    def __init__(self, d: dict):
        self.__dict__.update(d)


def make_cfg(stats: dict) -> dict:
    L = int(stats["n_levels"])
    return dict(
        n_levels=L,
        n_in_profiles=len(stats["in_profiles"]),
        n_in_scalars=len(stats["in_scalars"]),
        n_out_profiles=len(stats["out_profiles"]),
        n_out_scalars=len(stats["out_scalars"]),
        in_profiles=list(stats["in_profiles"]),
        in_scalars=list(stats["in_scalars"]),
        out_profiles=list(stats["out_profiles"]),
        out_scalars=list(stats["out_scalars"]),
        p_levels_hpa=list(stats["p_levels_hpa"]),
        x_mean=list(stats["x_mean"]),
        x_std=list(stats["x_std"]),
        y_mean=list(stats["y_mean"]),
        y_std=list(stats["y_std"]),
        max_params=S.PARAM_CAP,
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


def _state_tensors(model):
    """Every floating-point entry of the state_dict (parameters and buffers), in order."""
    return [(k, v) for k, v in model.state_dict(keep_vars=True).items() if v.is_floating_point()]


def _count(model) -> int:
    return int(sum(v.numel() for v in model.state_dict(keep_vars=True).values()))


def _build(cfg_dict: dict, seed: int):
    torch = _torch_setup(seed)
    import model as M

    cfg = Config(cfg_dict)
    net = M.build_model(cfg)
    if not isinstance(net, torch.nn.Module):
        raise RunFailure("build_model(cfg) must return a torch.nn.Module")
    n = _count(net)
    if n > cfg.max_params:
        raise RunFailure(
            f"parameter cap exceeded: the model has {n} parameters and buffers "
            f"({sum(p.numel() for p in net.parameters())} trainable), the cap is {cfg.max_params}"
        )
    return torch, cfg, net


def _predict(torch, cfg, net, x):
    B = x.shape[0]
    L, P = cfg.n_levels, cfg.n_in_profiles
    x_prof = x[:, : P * L].reshape(B, P, L)
    x_sca = x[:, P * L :]
    out = net(x_prof, x_sca)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise RunFailure("the model must return a pair (y_prof, y_sca)")
    y_prof, y_sca = out
    if tuple(y_prof.shape) != (B, cfg.n_out_profiles, L) or tuple(y_sca.shape) != (
        B,
        cfg.n_out_scalars,
    ):
        raise RunFailure(
            f"the model must return y_prof ({B}, {cfg.n_out_profiles}, {L}) and y_sca "
            f"({B}, {cfg.n_out_scalars}), got {tuple(y_prof.shape)} and {tuple(y_sca.shape)}"
        )
    return torch.cat([y_prof.reshape(B, -1), y_sca], dim=1).float()


def lr_at(step: int, total: int) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return S.LR * (step + 1) / warm
    return S.LR * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train_child(conn, cfg_dict, seed, epochs, n_in, n_out, x_bytes, y_bytes):
    try:
        torch, cfg, net = _build(cfg_dict, seed)
        X = torch.from_numpy(np.frombuffer(x_bytes, dtype="<f4").reshape(-1, n_in).copy())
        Y = torch.from_numpy(np.frombuffer(y_bytes, dtype="<f4").reshape(-1, n_out).copy())
        n = X.shape[0]
        rng = np.random.default_rng(seed)
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            params, lr=S.LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=S.WEIGHT_DECAY
        )
        bs = S.BATCH_SIZE
        per_epoch = n // bs
        total = epochs * per_epoch
        all_params = list(net.parameters())
        net.train()
        losses = []
        step = 0
        t0 = time.time()
        for epoch in range(epochs):
            perm = torch.from_numpy(rng.permutation(n))
            for i in range(per_epoch):
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, total)
                snapshot = [p.detach().clone() for p in all_params]
                idx = perm[i * bs : (i + 1) * bs]
                pred = _predict(torch, cfg, net, X[idx])
                loss = torch.mean((pred - Y[idx]) ** 2)
                if not torch.isfinite(loss):
                    raise RunFailure(f"training loss is not finite at step {step}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                for p, s in zip(all_params, snapshot):
                    if not torch.equal(p.detach(), s):
                        raise RunFailure(
                            "a parameter changed outside the fixed optimizer during step "
                            f"{step} (training must go through the harness's AdamW only)"
                        )
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
        info = dict(
            train_loss_last_epoch=float(np.mean(losses[-per_epoch:])),
            steps=step,
            train_s=round(time.time() - t0, 2),
            n_params=_count(net),
            n_trainable=int(sum(p.numel() for p in all_params)),
        )
        conn.send_bytes(b"I" + json.dumps(info).encode())
        state = _state_tensors(net)
        flat = (
            torch.cat([v.detach().reshape(-1).float() for _, v in state])
            if state
            else torch.zeros(0)
        )
        conn.send_bytes(b"P" + flat.numpy().astype("<f4").tobytes())
    except BaseException as e:
        msg = str(e) if isinstance(e, RunFailure) else traceback.format_exc()[-3000:]
        try:
            conn.send_bytes(b"X" + msg.encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()


def eval_child(conn, cfg_dict, seed, n_in):
    try:
        torch, cfg, net = _build(cfg_dict, seed)
        msg = conn.recv_bytes()
        if msg[:1] != b"P":
            raise RunFailure("protocol: expected the trained state")
        flat = np.frombuffer(msg, dtype="<f4", offset=1)
        state = _state_tensors(net)
        n = sum(v.numel() for _, v in state)
        if flat.size != n:
            raise RunFailure(f"the trained model had {flat.size} state values, a fresh one has {n}")
        with torch.no_grad():
            i = 0
            for _, v in state:
                v.copy_(torch.from_numpy(flat[i : i + v.numel()].copy()).view_as(v))
                i += v.numel()
        net.eval()
        frozen = [v.detach().clone() for _, v in state]
        conn.send_bytes(b"R")
        while True:
            msg = conn.recv_bytes()
            if msg[:1] == b"E":
                break
            if msg[:1] != b"Q":
                raise RunFailure("protocol: unknown request")
            (B,) = struct.unpack("<I", msg[1:5])
            x = torch.from_numpy(np.frombuffer(msg, dtype="<f4", offset=5).reshape(B, n_in).copy())
            with torch.no_grad():
                y = _predict(torch, cfg, net, x)
            for (_, v), s in zip(state, frozen):
                if not torch.equal(v.detach(), s):
                    raise RunFailure("the model's parameters or buffers changed during evaluation")
            conn.send_bytes(b"O" + y.contiguous().numpy().astype("<f4").tobytes())
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


def load_x(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False).astype(np.float32)


def run(
    label: str, epochs: int, test_x_path: str, seed: int, out_dir: Path, eval_batch: int = 256
) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    stats = json.loads(Path(S.STATS).read_text())
    cfg = make_cfg(stats)
    cap = S.PARAM_CAP
    rec = dict(
        setting=label,
        seed=seed,
        status="error",
        error=None,
        epochs=epochs,
        batch_size=S.BATCH_SIZE,
        lr=S.LR,
        param_cap=cap,
    )
    pred = None
    t0 = time.time()
    try:
        Xtr, Ytr = load_x(S.TRAIN_X), load_x(S.TRAIN_Y)
        Xte = load_x(test_x_path)
        n_in, n_out = Xtr.shape[1], Ytr.shape[1]
        # ---- training (training columns only)
        pc, cc = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=train_child,
            daemon=True,
            args=(
                cc,
                cfg,
                seed,
                epochs,
                n_in,
                n_out,
                Xtr.astype("<f4").tobytes(),
                Ytr.astype("<f4").tobytes(),
            ),
        )
        proc.start()
        cc.close()
        try:
            info = json.loads(_recv(pc, proc, 3600, 1 << 20)[1:].decode("utf-8"))
            pmsg = _recv(pc, proc, 600, 4 * cap + 8)
        finally:
            _stop(proc, pc)
        if pmsg[:1] != b"P" or (len(pmsg) - 1) % 4:
            raise RunFailure("protocol: expected the trained state")
        n_state = (len(pmsg) - 1) // 4
        if n_state > cap:
            raise RunFailure(f"parameter cap exceeded: {n_state} > {cap}")
        expected_steps = epochs * (len(Xtr) // S.BATCH_SIZE)
        if int(info.get("steps", -1)) != expected_steps:
            raise RunFailure(
                f"the training ran {info.get('steps')} steps, expected {expected_steps}"
            )
        rec.update(
            n_params=int(info.get("n_params", n_state)),
            n_state=n_state,
            steps=expected_steps,
            train_loss_last_epoch=float(info.get("train_loss_last_epoch", float("nan"))),
            train_s=info.get("train_s"),
            n_train=int(len(Xtr)),
        )
        # ---- prediction (fresh process; test inputs only)
        pc, cc = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=eval_child, args=(cc, cfg, seed, n_in), daemon=True)
        proc.start()
        cc.close()
        try:
            pc.send_bytes(pmsg)
            if _recv(pc, proc, 600, 16) != b"R":
                raise RunFailure("protocol: expected ready")

            def ask(x):
                B = x.shape[0]
                pc.send_bytes(
                    b"Q" + struct.pack("<I", B) + np.ascontiguousarray(x, dtype="<f4").tobytes()
                )
                msg = _recv(pc, proc, 600, B * n_out * 4 + 16)
                if msg[:1] != b"O" or len(msg) != 1 + B * n_out * 4:
                    raise RunFailure("protocol: malformed predictions")
                out = np.frombuffer(msg, dtype="<f4", offset=1).reshape(B, n_out)
                if not np.all(np.isfinite(out)):
                    raise RunFailure("the model returned non-finite predictions")
                return out

            pred = np.concatenate(
                [ask(Xte[b0 : b0 + eval_batch]) for b0 in range(0, len(Xte), eval_batch)]
            )
            # re-ask a re-mixed subset: every column must get the same answer in another batch
            rng = np.random.default_rng(10_000 + seed)
            rows = rng.permutation(len(Xte))[: min(eval_batch, len(Xte)) - 1]
            again = ask(Xte[rows])
            d = float(np.abs(again.astype(np.float64) - pred[rows]).max())
            if d > STATE_RTOL * (1.0 + float(np.abs(pred[rows]).max())) + 1e-4:
                raise RunFailure(
                    "the model answered the same columns differently when asked again in "
                    f"another batch (max diff {d:.3g}): it keeps state between calls or "
                    "mixes the columns of a batch"
                )
            pc.send_bytes(b"E")
        finally:
            _stop(proc, pc)
        rec.update(status="ok", n_test=int(len(Xte)))
    except RunFailure as e:
        rec["error"] = str(e)
        pred = None
    except Exception:
        rec["error"] = "harness error:\n" + traceback.format_exc()[-3000:]
        pred = None
    rec["wall_s"] = round(time.time() - t0, 2)
    write_artifacts(out_dir, pred, rec)
    return rec


def write_artifacts(out_dir: Path, pred, record: dict) -> None:
    """Called after the children have exited: wipe whatever is in out_dir, then write ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if pred is not None:
        np.save(out_dir / "pred.npy", np.asarray(pred, dtype=np.float32), allow_pickle=False)
    (out_dir / "result.json").write_text(json.dumps(record, indent=1))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")


def main_for(label: str, epochs: int, test_x_path: str) -> int:
    out_dir = out_dir_from_env()
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    rec = run(label, epochs, test_x_path, seed, out_dir)
    if rec["status"] == "ok":
        print(
            f"[{label}] seed={seed} epochs={epochs} params={rec['n_params']}/{rec['param_cap']} "
            f"train_mse={rec['train_loss_last_epoch']:.4f} train_s={rec['train_s']} wall={rec['wall_s']}s "
            "(test R^2 is computed by the grader; the test targets are not in this directory)"
        )
        return 0
    print(f"[{label}] seed={seed} FAILED: {rec['error']}")
    return 0  # the grader fails the setting with this message (exit 0 so that it is called)
