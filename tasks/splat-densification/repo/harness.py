"""Fixed harness: the target images, the renderer, the optimizer and the step loop live in this
(parent) process; the densification policy runs in a spawn child and sees only per-Gaussian
statistics.

The scene is a set of anisotropic 2-D Gaussians, one row of X (N, 9) each:
    [mu_x, mu_y, log s_1, log s_2, theta, opacity logit, r, g, b]
rendered additively (as 2-D Gaussian image fitting does, GaussianImage, Zhang et al. 2024):
    I(p) = sum_i sigmoid(o_i) c_i exp(-0.5 u^T diag(s1'^-2, s2'^-2) u),  u = R(theta_i)^T (p - mu_i),
    s' = sqrt(s^2 + 0.3)  (a fixed 0.3 px^2 anti-aliasing dilation, as 3DGS adds to its 2-D covariances)
with p the pixel centres (x + 0.5, y + 0.5). Loss: mean squared error against the target.
Optimizer: Adam (beta 0.9 / 0.999, eps 1e-8; fresh Gaussians start with zero moments, as in 3DGS),
fixed learning rates per column, position rate decayed exponentially to 1/10.

Every INTERVAL steps (not after the last step) the parent sends the child the statistics
accumulated since the previous call and applies the actions the child returns, after checking them:
    prune   indices to remove
    split   indices to replace by two Gaussians drawn from N(mu_i, Sigma_i), scales / 1.6
            (3DGS's split of large Gaussians)
    clone   indices (repeats allowed) to copy: a Gaussian cloned k times becomes k + 1 Gaussians that
            share its opacity (alpha / (k + 1) each, so the image is unchanged up to the copies'
            displacement) with the copies displaced by 0.5 * a draw from N(0, Sigma_i)
A relocation (3DGS-MCMC) is a prune plus a clone in the same call. The resulting number of Gaussians
must never exceed the cap: an action set that would exceed it, or any invalid action, stops the run
and fails the setting. Protocol: parent -> child pickled statistics (the child trusts the parent);
child -> parent raw bytes only (the parent unpickles nothing the child sends):
    b"A" + 3 x int64 lengths (prune, split, clone) + int64 indices     the actions
    b"X" + utf-8 text                                                   the policy raised
    b"V" + utf-8 text                                                   the child's guard caught a breach
Artifacts (params.npz with each image's final X, run.json) are written after the child has exited.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import sys
import time
import traceback
from pathlib import Path

import numpy as np

NCOL = 9
AA = 0.3  # px^2 added to each axis variance (anti-aliasing)
LR = (0.1, 0.1, 0.04, 0.04, 0.04, 0.1, 0.02, 0.02, 0.02)
POS_LR_FINAL = 0.1  # position learning rate decays exponentially to this fraction
SPLIT_SHRINK = 1.6
STAT_KEYS = ("grad", "abs_grad", "err", "cover")
DTYPE = None  # torch.float32, set in run_setting

# ------------------------------------------------------------------------------- child side


def _install_guard(conn):
    """Audit hook of the child: the policy may read Python source and extension modules (imports,
    tracebacks) and nothing else - not the images, /proc or the parent; it may not start processes
    or load native libraries. A breach reports itself to the parent and ends the child at once."""
    blocked = (
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.cdata",
        "socket.connect",
        "socket.bind",
        "os.remove",
        "os.rename",
        "os.symlink",
        "os.link",
        "os.chdir",
        "os.truncate",
        "os.putenv",
        "os.unsetenv",
    )
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    state = {"busy": False}

    def breach(what):
        state["busy"] = True
        try:
            conn.send_bytes(b"V" + what.encode("utf-8", "replace")[:2000])
        finally:
            os._exit(3)

    def hook(event, args):
        if state["busy"]:
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int) or path is None:
                return
            p = os.path.abspath(os.fsdecode(path))
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & write_flags
            )
            if writes or not p.endswith((".py", ".pyc", ".so")):
                breach(
                    f"the policy opened {p!r} ({'write' if writes else 'read'}): the target images "
                    "and every other file are off limits to the densification policy"
                )
        elif event.startswith(blocked):
            breach(
                f"the policy raised the forbidden event {event!r} (processes, native code, sockets, "
                "files and the environment are off limits)"
            )

    sys.addaudithook(hook)


def _as_index(v, n, name):
    if v is None:
        return np.zeros(0, dtype=np.int64)
    a = np.asarray(v)
    if a.dtype == bool:
        if a.shape != (n,):
            raise ValueError(f"{name}: a boolean mask must have shape ({n},), got {a.shape}")
        return np.flatnonzero(a).astype(np.int64)
    a = a.reshape(-1)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: indices must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def child_main(conn, seed):
    try:
        sys.dont_write_bytecode = True
        _install_guard(conn)
        import policy  # the editable module, imported only in the child, after the guard

        rng = np.random.default_rng([int(seed), 7])
        while True:
            stats = conn.recv()
            if stats is None:
                break
            n = int(stats["n"])
            out = policy.densify(stats, rng)
            if out is None:
                out = {}
            if not isinstance(out, dict):
                raise TypeError(f"densify() must return a dict, got {type(out).__name__}")
            bad = set(out) - {"prune", "split", "clone"}
            if bad:
                raise ValueError(
                    f"densify() returned unknown keys {sorted(bad)}; allowed: prune, split, clone"
                )
            parts = [_as_index(out.get(k), n, k) for k in ("prune", "split", "clone")]
            conn.send_bytes(
                b"A"
                + struct.pack("<3q", *[p.size for p in parts])
                + b"".join(np.ascontiguousarray(p).tobytes() for p in parts)
            )
    except BaseException:
        msg = traceback.format_exc()[-4000:]
        try:
            conn.send_bytes(b"X" + msg.encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()


# ------------------------------------------------------------------------------ parent side


class PolicyError(Exception):
    """The policy broke a rule: the run stops and the setting fails."""


def pixel_grid(h, w):
    import torch

    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=DTYPE) + 0.5, torch.arange(w, dtype=DTYPE) + 0.5, indexing="ij"
    )
    return xs.reshape(-1), ys.reshape(-1)


def step_stats(X, px, py, T):
    """Forward and analytic backward of the MSE loss (no autograd; checked against autograd in the
    task's tests). -> (loss, dL/dX (N, 9), abs_grad (N,), err (N,), cover (N,))."""
    import torch

    e2 = torch.exp(2 * X[:, 2:4])
    s2 = e2 + AA  # squared dilated scales
    ct, st = torch.cos(X[:, 4]), torch.sin(X[:, 4])
    a = torch.sigmoid(X[:, 5])
    c = X[:, 6:9]
    dx = px[:, None] - X[:, 0]
    dy = py[:, None] - X[:, 1]
    u1 = dx * ct + dy * st  # offsets in the Gaussian's frame
    u2 = dy * ct - dx * st
    del dx, dy
    a1 = u1 / s2[:, 0]
    a2 = u2 / s2[:, 1]
    W = torch.exp(-0.5 * (u1 * a1 + u2 * a2)) * a  # blending weights (P, N)
    img = W @ c
    diff = img - T
    loss = (diff * diff).mean()
    r = diff * (2.0 / diff.numel())  # dL/dI
    E = (r @ c.T) * W  # dL/dW * W
    g = torch.empty_like(X)
    g[:, 6:9] = W.T @ r
    g[:, 5] = (1 - a) * E.sum(0)
    Ev1 = E * a1
    Ev2 = E * a2
    g[:, 2] = (Ev1 * u1).sum(0) * e2[:, 0] / s2[:, 0]
    g[:, 3] = (Ev2 * u2).sum(0) * e2[:, 1] / s2[:, 1]
    g[:, 4] = (Ev2 * u1 - Ev1 * u2).sum(0)
    gx = Ev1 * ct - Ev2 * st  # per-pixel dL_p/dmu (P, N) x 2
    gy = Ev1 * st + Ev2 * ct
    g[:, 0] = gx.sum(0)
    g[:, 1] = gy.sum(0)
    absg = torch.hypot(gx.abs_().sum(0), gy.abs_().sum(0))
    err = diff.abs().mean(1) @ W
    cover = W.sum(0)
    return loss, g, absg, err, cover


def render(X, px, py):
    """X (N, 9) -> image (P, 3), P = len(px) (autograd-friendly reference renderer)."""
    import torch

    s1 = torch.sqrt(torch.exp(2 * X[:, 2]) + AA)
    s2 = torch.sqrt(torch.exp(2 * X[:, 3]) + AA)
    ct, st = torch.cos(X[:, 4]), torch.sin(X[:, 4])
    dx = px[:, None] - X[:, 0]
    dy = py[:, None] - X[:, 1]
    u1 = ct * dx + st * dy
    u2 = -st * dx + ct * dy
    G = torch.exp(-0.5 * ((u1 / s1) ** 2 + (u2 / s2) ** 2))
    return (G * torch.sigmoid(X[:, 5])) @ X[:, 6:9]


def init_gaussians(n, h, w, rng):
    """n Gaussians on a jittered grid, isotropic, covering the image about once, grey."""
    gy = max(1, int(round(math.sqrt(n * h / w))))
    gx = int(math.ceil(n / gy))
    cells = [((i + 0.5) * w / gx, (j + 0.5) * h / gy) for j in range(gy) for i in range(gx)][:n]
    cell = math.sqrt(h * w / n)
    X = np.zeros((n, NCOL))
    X[:, :2] = np.array(cells) + rng.uniform(-0.25, 0.25, (n, 2)) * cell
    X[:, 2:4] = math.log(0.5 * cell)
    X[:, 4] = rng.uniform(0, math.pi, n)
    X[:, 5] = 0.0
    X[:, 6:9] = 0.5
    return X


def check_actions(prune, split, clone, n, cap, step):
    """Validate one action set; return the resulting number of Gaussians."""
    for name, a in (("prune", prune), ("split", split), ("clone", clone)):
        if a.size and (a.min() < 0 or a.max() >= n):
            raise PolicyError(
                f"step {step}: {name} index out of range [0, {n}) "
                f"(got {int(a.min())} .. {int(a.max())})"
            )
    for name, a in (("prune", prune), ("split", split)):
        if np.unique(a).size != a.size:
            raise PolicyError(f"step {step}: {name} indices must be unique")
    if (
        np.intersect1d(prune, split).size
        or np.intersect1d(prune, clone).size
        or np.intersect1d(split, clone).size
    ):
        raise PolicyError(
            f"step {step}: a Gaussian may be pruned, split or cloned, only one of them"
        )
    new_n = n - prune.size + split.size + clone.size
    if new_n > cap:
        raise PolicyError(
            f"Gaussian cap exceeded: at step {step} the policy's actions (prune "
            f"{prune.size}, split {split.size}, clone {clone.size}) would give {new_n} "
            f"Gaussians, the cap is {cap}"
        )
    return new_n


def apply_actions(X, m, v, ids, next_id, prune, split, clone, rng):
    """-> new (X, m, v, ids, next_id); all numpy float64 / int64."""
    n = X.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[prune] = False
    keep[split] = False
    Xk = X.copy()
    new = []
    # clone: a Gaussian cloned k times -> k + 1 Gaussians sharing its opacity
    if clone.size:
        src, mult = np.unique(clone, return_counts=True)
        for i, k in zip(src, mult):
            a = 1.0 / (1.0 + math.exp(-X[i, 5]))
            a_new = min(max(a / (k + 1), 1e-6), 1 - 1e-6)
            Xk[i, 5] = math.log(a_new / (1 - a_new))
            L = _chol(X[i])
            for _ in range(int(k)):
                c = Xk[i].copy()
                c[:2] += 0.5 * (L @ rng.standard_normal(2))
                new.append(c)
    for i in split:
        L = _chol(X[i])
        for _ in range(2):
            c = X[i].copy()
            c[:2] += L @ rng.standard_normal(2)
            c[2:4] -= math.log(SPLIT_SHRINK)
            new.append(c)
    Xn = np.concatenate([Xk[keep]] + ([np.array(new)] if new else []), axis=0)
    k_new = len(new)
    z = np.zeros((k_new, NCOL))
    mn = np.concatenate([m[keep], z], axis=0)
    vn = np.concatenate([v[keep], z], axis=0)
    idn = np.concatenate([ids[keep], np.arange(next_id, next_id + k_new, dtype=np.int64)])
    return Xn, mn, vn, idn, next_id + k_new


def _chol(row):
    s = np.exp(row[2:4])
    c, s_ = math.cos(row[4]), math.sin(row[4])
    return np.array([[c, -s_], [s_, c]]) @ np.diag(s)


class _Child:
    def __init__(self, seed, timeout_s):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=child_main, args=(child_conn, seed), daemon=True)
        self.proc.start()
        child_conn.close()
        self.deadline = time.time() + timeout_s
        self.timeout_s = timeout_s

    def ask(self, stats, max_items):
        self.conn.send(stats)
        if not self.conn.poll(max(0.0, self.deadline - time.time())):
            raise PolicyError(f"the policy did not answer within the run's {self.timeout_s:.0f} s")
        try:
            msg = self.conn.recv_bytes(maxlength=25 + 8 * max_items)
        except EOFError:
            raise PolicyError("the policy process exited without answering") from None
        except OSError:
            raise PolicyError(
                f"the policy returned more than {max_items} indices in one call "
                "(far more than the cap allows)"
            ) from None
        kind = msg[:1]
        if kind == b"V":
            raise PolicyError("policy sandbox violation: " + msg[1:].decode("utf-8", "replace"))
        if kind == b"X":
            raise PolicyError("the policy raised:\n" + msg[1:].decode("utf-8", "replace"))
        if kind != b"A" or len(msg) < 25:
            raise PolicyError(f"protocol error: unexpected message kind {kind!r}")
        sizes = struct.unpack("<3q", msg[1:25])
        if min(sizes) < 0 or len(msg) != 25 + 8 * sum(sizes):
            raise PolicyError("protocol error: malformed action message")
        arr = np.frombuffer(msg, dtype="<i8", offset=25)
        a, b = sizes[0], sizes[0] + sizes[1]
        return arr[:a].copy(), arr[a:b].copy(), arr[b:].copy()

    def close(self):
        try:
            self.conn.send(None)
        except Exception:
            pass
        self.conn.close()
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def fit_image(target, cap, n_init, steps, interval, child, rng, image_index, log):
    """Fit one image; -> (X final, record). Raises PolicyError on a rule broken by the policy."""
    import torch

    h, w = target.shape[:2]
    px, py = pixel_grid(h, w)
    T = torch.tensor(target.reshape(-1, 3), dtype=DTYPE)
    X = init_gaussians(n_init, h, w, rng)
    m, v = np.zeros_like(X), np.zeros_like(X)
    ids = np.arange(n_init, dtype=np.int64)
    next_id = n_init
    lr = torch.tensor(LR, dtype=DTYPE)
    counts, max_n, events = [n_init], n_init, 0
    acc = {k: np.zeros(n_init) for k in STAT_KEYS + ("count",)}
    Xt, mt, vt = (torch.tensor(a, dtype=DTYPE) for a in (X, m, v))
    loss_val = float("nan")
    for step in range(1, steps + 1):
        loss, g, absg, err, cover = step_stats(Xt, px, py, T)
        acc["grad"] += torch.hypot(g[:, 0], g[:, 1]).double().numpy()
        acc["abs_grad"] += absg.double().numpy()
        acc["err"] += err.double().numpy()
        acc["cover"] += cover.double().numpy()
        acc["count"] += 1
        # Adam (global step count, per-Gaussian moments)
        lr_t = lr.clone()
        lr_t[:2] *= POS_LR_FINAL ** ((step - 1) / max(1, steps - 1))
        mt.mul_(0.9).add_(0.1 * g)
        vt.mul_(0.999).add_(0.001 * g * g)
        mh = mt / (1 - 0.9**step)
        vh = vt / (1 - 0.999**step)
        Xt -= lr_t * mh / (torch.sqrt(vh) + 1e-8)
        loss_val = float(loss)
        if step % interval == 0 and step < steps:
            X, m, v = (a.double().numpy() for a in (Xt, mt, vt))
            n = X.shape[0]
            stats = dict(
                n=n,
                step=step,
                total_steps=steps,
                cap=cap,
                height=h,
                width=w,
                n_init=n_init,
                image_index=image_index,
                loss=loss_val,
                ids=ids.copy(),
                xy=X[:, :2].copy(),
                scale=np.exp(X[:, 2:4]),
                rotation=X[:, 4].copy(),
                opacity=1.0 / (1.0 + np.exp(-X[:, 5])),
                color=X[:, 6:9].copy(),
                **{k: acc[k].copy() for k in STAT_KEYS + ("count",)},
            )
            prune, split, clone = child.ask(stats, max_items=8 * cap + 64)
            new_n = check_actions(prune, split, clone, n, cap, step)
            events += 1
            if prune.size or split.size or clone.size:
                X, m, v, ids, next_id = apply_actions(
                    X, m, v, ids, next_id, prune, split, clone, rng
                )
                Xt, mt, vt = (torch.tensor(a, dtype=DTYPE) for a in (X, m, v))
            assert X.shape[0] == new_n
            if X.shape[0] > cap:  # unreachable after check_actions; a second line of defence
                raise PolicyError(f"Gaussian cap exceeded: {X.shape[0]} > {cap}")
            acc = {k: np.zeros(X.shape[0]) for k in acc}  # statistics restart after every call
            counts.append(int(X.shape[0]))
            max_n = max(max_n, int(X.shape[0]))
    Xf = Xt.double().numpy()
    if not np.all(np.isfinite(Xf)):
        raise PolicyError("the fit diverged (non-finite parameters)")
    mse = float(((render(Xt, px, py).clamp(0, 1) - T) ** 2).mean())
    psnr = -10 * math.log10(max(mse, 1e-12))
    log(
        f"  image {image_index}: {h}x{w} final N={Xf.shape[0]} (max {max_n}, cap {cap}) "
        f"train loss {loss_val:.5f} PSNR {psnr:.2f} dB"
    )
    return Xf, dict(
        final_n=int(Xf.shape[0]),
        max_n=int(max_n),
        counts=counts,
        policy_calls=events,
        psnr_harness=round(psnr, 4),
    )


def run_setting(targets, spec, steps, interval, seed, timeout_s=300.0, log=print):
    """Fit every target image; -> (list of X | None, record)."""
    import torch

    global DTYPE
    DTYPE = torch.float32
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng([int(seed), 11])
    cap, n_init = int(spec["cap"]), int(spec["n_init"])
    t0 = time.time()
    child = _Child(seed, timeout_s)
    params, images, error = [], [], None
    try:
        for i, tgt in enumerate(targets):
            Xf, rec = fit_image(tgt, cap, n_init, steps, interval, child, rng, i, log)
            params.append(Xf)
            images.append(rec)
    except PolicyError as e:
        error = str(e)
    finally:
        child.close()
    record = dict(
        cap=cap,
        steps=steps,
        interval=interval,
        n_images=len(targets),
        images=images,
        max_n=max([r["max_n"] for r in images], default=0),
        wall_s=round(time.time() - t0, 3),
        status="ok" if error is None else "error",
        error=error,
    )
    return (params if error is None else None), record


def write_artifacts(out_dir: Path, params, record: dict) -> None:
    """Called after the child has exited: wipe whatever is in out_dir, then write ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if params is not None:
        np.savez(out_dir / "params.npz", **{f"image{i}": X for i, X in enumerate(params)})
    (out_dir / "run.json").write_text(json.dumps(record, indent=1))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
