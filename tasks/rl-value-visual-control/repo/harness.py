"""Fixed harness (trusted): a DQN-family agent on a MinAtar game, with the value-learning
component (value_head.py) in a spawned child process that never sees the network, the
environment, the replay buffer or the frame counter.

  parent  owns the MinAtar environment, the frame counter, the Q-network torso and head
          (fixed architecture; the head has num_actions * atoms outputs), the target network,
          the replay buffer, the epsilon-greedy schedule, the Adam optimizer, the update and
          target-sync periods and the evaluation episodes (run with a salted seed).
  child   imports value_head.py, builds ValueHead(num_actions, gamma) and answers two requests:
            act:    the network outputs for some states (n, A, atoms) -> Q-values (n, A); every
                    row is sent twice (the copies shuffled) and the two answers must agree
            learn:  a replay batch as network outputs (online on s, target on s', online on s'),
                    actions, rewards, terminals -> the loss and its gradient w.r.t. the online
                    outputs on s (computed in the child with torch.autograd)
          The parent back-propagates that gradient through its own network and takes the fixed
          Adam step; the child has no parameter to change and no access to anything else.

Protocol: raw bytes over a multiprocessing Pipe; the parent never unpickles what the child sent.
  parent -> child  b"S" + uint32 n + uint32 B + float32 acting outputs (n*A*K), then if B > 0
                        the learn batch: float32 out (B*A*K) + int64 actions (B) + float32 rewards
                        (B) + float32 dones (B) + float32 target_next (B*A*K) + float32 online_next
                        (B*A*K);   b"E"  end
  child -> parent  b"I" + uint32 atoms (after construction)
                   b"s" + float32 Q-values (n*A), then if B > 0 float32 loss + float32 grad (B*A*K)
                   b"X" + utf-8 text (the head raised),  b"V" + utf-8 text (the child's audit
                   hook fired; the child exits)
The parent checks every answer (shape, finite), fails the run on any violation, and writes the
artifacts only after the child has exited.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import sys
import time
import traceback
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------- fixed settings
GAMMA = 0.99
BATCH = 64
LR = 1e-3  # Adam
ADAM_EPS = 3.125e-4  # 0.01 / 32, as in Dopamine / Rainbow
MAX_ATOMS = 128  # head-size cap: outputs per action
HIDDEN = 64  # fc width of the torso (Young & Tian 2019 use 16 conv + 128 fc; halved for CPU)
CONV = 16
N_ENVS = 16  # environments stepped together; one gradient step per N_ENVS frames
TARGET_SYNC = 200  # gradient steps between target-network syncs
LEARN_START = 1000  # frames of random play before learning starts
EPS_START, EPS_END, EPS_FRAC = 1.0, 0.05, 0.4  # linear decay over EPS_FRAC of the budget
EVAL_EPS = 0.01
EVAL_MAX_FRAMES = 2000  # evaluation episodes are truncated there
CURVE_POINTS = 10
CHILD_TIMEOUT_S = 30.0  # one request


class RunFailure(Exception):
    pass


# ------------------------------------------------------------------------------- child side


def _install_guard(conn):
    """Audit hook of the child: the head may import Python source and extension modules and
    nothing else; no other file reads or writes, processes, native libraries or sockets.
    A breach reports itself to the parent and ends the child at once."""
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
            if (
                writes
                or not p.endswith((".py", ".pyc", ".so"))
                and not p.startswith("/proc/self/")
                and not p.startswith("/sys/")
            ):
                breach(
                    f"the value head opened {p!r} ({'write' if writes else 'read'}): the "
                    "settings and any other file are off limits"
                )
        elif event.startswith(blocked):
            breach(
                f"the value head raised the forbidden event {event!r} (processes, native "
                "code, sockets, files and the environment are off limits)"
            )

    sys.addaudithook(hook)


def _warm_up():
    """Throw-away calls of the ops heads use, so that torch's lazy imports happen before the
    guard."""
    import torch
    import torch.nn.functional as F

    x = torch.randn(4, 3, 5, requires_grad=True)
    y = (
        torch.log_softmax(x, 2).sum()
        + F.smooth_l1_loss(x, x.detach() + 1)
        + F.mse_loss(x, x.detach())
    )
    y = (
        y
        + torch.sort(x, 2).values.sum()
        + F.cross_entropy(x[:, :, 0], torch.zeros(4, dtype=torch.long))
    )
    torch.autograd.grad(y, x)
    torch.zeros(4, 5).scatter_add_(1, torch.zeros(4, 5, dtype=torch.long), torch.ones(4, 5))


def child_main(conn, num_actions, gamma, seed):
    try:
        sys.dont_write_bytecode = True
        import torch

        torch.set_num_threads(1)
        _warm_up()
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        random.seed(seed)
        _install_guard(conn)
        import value_head  # the editable module, imported only after the guard

        head = value_head.ValueHead(int(num_actions), float(gamma))
        atoms = int(head.atoms)
        conn.send_bytes(b"I" + struct.pack("<I", atoms))
        A, K = int(num_actions), atoms
        while True:
            msg = conn.recv_bytes()
            kind = msg[:1]
            if kind == b"E":
                break
            if kind != b"S":
                raise RuntimeError(f"unknown request {kind!r}")
            n, B = struct.unpack("<II", msg[1:9])
            off = 9
            if n:
                out = torch.from_numpy(
                    np.frombuffer(msg, np.float32, n * A * K, off).reshape(n, A, K).copy()
                )
                off += 4 * n * A * K
                with torch.no_grad():
                    q = head.q_values(out)
                q = torch.as_tensor(q).detach().to(torch.float32).contiguous()
                if tuple(q.shape) != (n, A):
                    raise ValueError(f"q_values must return shape {(n, A)}, got {tuple(q.shape)}")
                # answered at once: the parent steps the games with these while the loss is computed
                conn.send_bytes(b"q" + q.numpy().tobytes())
            if B:
                m = B * A * K
                out = np.frombuffer(msg, np.float32, m, off).reshape(B, A, K)
                off += 4 * m
                act = np.frombuffer(msg, np.int64, B, off)
                off += 8 * B
                rew = np.frombuffer(msg, np.float32, B, off)
                off += 4 * B
                done = np.frombuffer(msg, np.float32, B, off)
                off += 4 * B
                tnext = np.frombuffer(msg, np.float32, m, off).reshape(B, A, K)
                off += 4 * m
                onext = np.frombuffer(msg, np.float32, m, off).reshape(B, A, K)
                out_t = torch.from_numpy(out.copy()).requires_grad_(True)
                loss = head.loss(
                    out_t,
                    torch.from_numpy(act.copy()),
                    torch.from_numpy(rew.copy()),
                    torch.from_numpy(done.copy()),
                    torch.from_numpy(tnext.copy()),
                    torch.from_numpy(onext.copy()),
                )
                if not (torch.is_tensor(loss) and loss.numel() == 1):
                    raise ValueError("loss must return a scalar tensor")
                if loss.requires_grad:
                    (grad,) = torch.autograd.grad(loss.reshape(()), out_t, allow_unused=True)
                else:
                    grad = None
                if grad is None:
                    grad = torch.zeros_like(out_t)
                conn.send_bytes(
                    b"g"
                    + struct.pack("<f", float(loss.detach()))
                    + grad.detach().to(torch.float32).contiguous().numpy().tobytes()
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


class Child:
    """The parent's handle on the value-head process; every answer is checked here."""

    def __init__(self, num_actions, gamma, seed):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=child_main, args=(child_conn, num_actions, gamma, seed), daemon=True
        )
        self.proc.start()
        child_conn.close()
        self.A = int(num_actions)
        # shuffles the repeated rows of every Q request (its own stream: the agent's is untouched)
        self.probe_rng = np.random.default_rng([seed, 0x9B0BE])
        self.perm = None
        msg = self._recv(120.0, 1 << 16)  # room for a traceback
        if msg[:1] != b"I" or len(msg) != 5:
            raise RunFailure("protocol error: expected the head's info")
        (self.K,) = struct.unpack("<I", msg[1:5])
        if not 1 <= self.K <= MAX_ATOMS:
            raise RunFailure(
                f"head size violated: ValueHead.atoms = {self.K}, allowed 1..{MAX_ATOMS} "
                "outputs per action"
            )

    def _recv(self, timeout, maxlen):
        if not self.conn.poll(timeout):
            raise RunFailure(f"the value-head process did not answer within {timeout:.0f} s")
        try:
            msg = self.conn.recv_bytes(maxlength=maxlen)
        except EOFError:
            raise RunFailure("the value-head process exited unexpectedly") from None
        except OSError as e:
            raise RunFailure(f"protocol error: answer too long ({e})") from None
        if msg[:1] == b"X":
            raise RunFailure("value_head.py raised:\n" + msg[1:].decode("utf-8", "replace"))
        if msg[:1] == b"V":
            raise RunFailure("sandbox violation: " + msg[1:].decode("utf-8", "replace"))
        return msg

    def send(self, act_out=None, batch=None):
        """One request: Q-values for act_out (n, A, K) and/or (loss, grad) for a learn batch
        (out, actions, rewards, dones, target_next, online_next); the child answers the
        Q-values first (recv_q), then the loss and gradient (recv_grad)."""
        n = 0 if act_out is None else act_out.shape[0]
        B = 0 if batch is None else batch[0].shape[0]
        if n:
            # every row is asked twice, the copies shuffled in: exploration is the harness's, so
            # Q-values must be a function of the outputs alone (no noise, no row-order tricks)
            self.perm = self.probe_rng.permutation(n)
            act_out = np.concatenate([act_out, act_out[self.perm]])
            n *= 2
        parts = [b"S", struct.pack("<II", n, B)]
        if n:
            parts.append(np.ascontiguousarray(act_out, np.float32).tobytes())
        if B:
            out, act, rew, done, tnext, onext = batch
            parts += [
                np.ascontiguousarray(out, np.float32).tobytes(),
                np.ascontiguousarray(act, np.int64).tobytes(),
                np.ascontiguousarray(rew, np.float32).tobytes(),
                np.ascontiguousarray(done, np.float32).tobytes(),
                np.ascontiguousarray(tnext, np.float32).tobytes(),
                np.ascontiguousarray(onext, np.float32).tobytes(),
            ]
        self.conn.send_bytes(b"".join(parts))

    def recv_q(self):
        """The Q-values of the last request's acting rows, once both copies agree."""
        n = len(self.perm)
        size = 1 + 8 * n * self.A
        msg = self._recv(CHILD_TIMEOUT_S, max(size, 1 << 16))
        if msg[:1] != b"q" or len(msg) != size:
            raise RunFailure("protocol error: expected the Q-values from the value-head process")
        q = np.frombuffer(msg, np.float32, 2 * n * self.A, 1).reshape(2 * n, self.A)
        if not np.all(np.isfinite(q)):
            raise RunFailure("q_values returned NaN or inf")
        if not np.allclose(q[n:], q[:n][self.perm], rtol=1e-5, atol=1e-6):
            raise RunFailure(
                "q_values is not a function of the network outputs: the same outputs, "
                "asked twice in one request, got different Q-values. Exploration is "
                "fixed by the harness; q_values must not add noise of its own or "
                "depend on a row's position in the batch"
            )
        return q[:n]

    def recv_grad(self, B):
        m = B * self.A * self.K
        msg = self._recv(CHILD_TIMEOUT_S, max(5 + 4 * m, 1 << 16))
        if msg[:1] != b"g" or len(msg) != 5 + 4 * m:
            raise RunFailure(
                "protocol error: expected the loss and its gradient from the value-head process"
            )
        (loss,) = struct.unpack("<f", msg[1:5])
        grad = np.frombuffer(msg, np.float32, m, 5).reshape(B, self.A, self.K)
        if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
            raise RunFailure("the loss or its gradient is NaN or inf")
        return loss, grad

    def close(self):
        try:
            self.conn.send_bytes(b"E")
        except Exception:
            pass
        self.conn.close()
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def build_net(in_ch, num_actions, atoms):
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(in_ch, CONV, 3, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(CONV * 8 * 8, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, num_actions * atoms),
    )


def make_env(game, sticky, seed):
    from minatar import Environment

    env = Environment(game, sticky_action_prob=sticky)
    env.seed(int(seed))
    env.reset()
    return env


def obs(env) -> np.ndarray:
    return np.ascontiguousarray(env.state().transpose(2, 0, 1), dtype=np.uint8)


def train_and_evaluate(
    game: str, frames: int, eval_episodes: int, seed: int, sticky: float = 0.1
) -> dict:
    """The whole run; returns the record (raises RunFailure on a violation)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 1])
    probe = make_env(game, sticky, 0)
    A = probe.num_actions()
    C = probe.state_shape()[2]
    child = Child(A, GAMMA, seed)
    K = child.K
    t0 = time.time()
    try:
        net = build_net(C, A, K)
        target = build_net(C, A, K)
        target.load_state_dict(net.state_dict())
        opt = torch.optim.Adam(net.parameters(), lr=LR, eps=ADAM_EPS, fused=True)
        S = np.zeros((frames, C, 10, 10), np.uint8)
        S2 = np.zeros((frames, C, 10, 10), np.uint8)
        Ar = np.zeros(frames, np.int64)
        R = np.zeros(frames, np.float32)
        D = np.zeros(frames, np.float32)
        envs = [make_env(game, sticky, rng.integers(2**31)) for _ in range(N_ENVS)]
        states = [obs(e) for e in envs]
        ep_ret = np.zeros(N_ENVS)
        ep_returns, ep_ends = [], []
        updates, losses = 0, []
        eps_frames = max(1, int(EPS_FRAC * frames))
        t = 0  # frames used: the parent's counter
        while t < frames:
            n_env = min(N_ENVS, frames - t)
            eps = max(EPS_END, EPS_START - (EPS_START - EPS_END) * t / eps_frames)
            greedy = [i for i in range(n_env) if t >= LEARN_START and rng.random() >= eps]
            actions = rng.integers(0, A, n_env)
            act_out = batch = None
            if t >= LEARN_START:
                idx = rng.integers(0, t, BATCH)
                xs = torch.from_numpy(S[idx]).float()
                out = net(xs).reshape(BATCH, A, K)
                with torch.no_grad():
                    # online network on s' and on the acting states in one call
                    x2 = torch.from_numpy(
                        np.concatenate([S2[idx]] + [states[i][None] for i in greedy])
                    ).float()
                    o2 = net(x2).reshape(-1, A, K).numpy()
                    tn = target(x2[:BATCH]).reshape(BATCH, A, K).numpy()
                batch = (out.detach().numpy(), Ar[idx], R[idx], D[idx], tn, o2[:BATCH])
                if greedy:
                    act_out = o2[BATCH:]
            if greedy or batch is not None:
                child.send(act_out, batch)
            if greedy:
                q = child.recv_q()
                for j, i in enumerate(greedy):
                    actions[i] = int(np.argmax(q[j]))
            for i in range(n_env):
                r, done = envs[i].act(int(actions[i]))
                s2 = obs(envs[i])
                S[t], S2[t], Ar[t], R[t], D[t] = states[i], s2, actions[i], r, float(done)
                t += 1
                ep_ret[i] += r
                if done:
                    ep_returns.append(float(ep_ret[i]))
                    ep_ends.append(t)
                    ep_ret[i] = 0.0
                    envs[i].reset()
                    states[i] = obs(envs[i])
                else:
                    states[i] = s2
            if batch is not None:  # the child computed the loss while the games stepped
                loss, grad = child.recv_grad(BATCH)
                opt.zero_grad(set_to_none=True)
                out.backward(torch.from_numpy(grad.copy()))
                opt.step()
                updates += 1
                losses.append(loss)
                if updates % TARGET_SYNC == 0:
                    target.load_state_dict(net.state_dict())
        train_s = time.time() - t0
        # ---- evaluation: fresh environments with a salted seed, epsilon = EVAL_EPS, all episodes
        # stepped together so each step is one batched request
        erng = np.random.default_rng([seed, 0x5EED, 7919])
        envs = [make_env(game, sticky, erng.integers(2**31)) for _ in range(eval_episodes)]
        rets = np.zeros(eval_episodes)
        lens = np.zeros(eval_episodes, np.int64)
        alive = np.ones(eval_episodes, bool)
        eval_frames = 0
        while alive.any():
            ids = np.flatnonzero(alive)
            x = torch.from_numpy(np.stack([obs(envs[i]) for i in ids])).float()
            with torch.no_grad():
                o = net(x).reshape(len(ids), A, K).numpy()
            child.send(o)
            q = child.recv_q()
            for j, i in enumerate(ids):
                a = int(erng.integers(A)) if erng.random() < EVAL_EPS else int(np.argmax(q[j]))
                r, done = envs[i].act(a)
                rets[i] += r
                lens[i] += 1
                eval_frames += 1
                if done or lens[i] >= EVAL_MAX_FRAMES:
                    alive[i] = False
    finally:
        child.close()
    # learning curve: mean training-episode return per tenth of the budget
    curve = []
    ends = np.asarray(ep_ends)
    rets_tr = np.asarray(ep_returns)
    for k in range(CURVE_POINTS):
        lo, hi = k * frames // CURVE_POINTS, (k + 1) * frames // CURVE_POINTS
        sel = (ends > lo) & (ends <= hi)
        curve.append(float(rets_tr[sel].mean()) if sel.any() else None)
    return dict(
        game=game,
        frames=int(frames),
        frames_used=int(t),
        atoms=int(K),
        updates=int(updates),
        eval_episodes=int(eval_episodes),
        eval_returns=[float(x) for x in rets],
        eval_lengths=[int(x) for x in lens],
        eval_frames=int(eval_frames),
        mean_return=float(rets.mean()),
        train_episodes=len(ep_returns),
        train_curve=curve,
        last_loss=float(np.mean(losses[-100:])) if losses else None,
        train_s=round(train_s, 2),
        wall_s=round(time.time() - t0, 2),
    )


def write_artifacts(out_dir: Path, record: dict) -> None:
    """Called after the child has exited: wipe whatever is in out_dir, then write ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    (out_dir / "run.json").write_text(json.dumps(record, indent=1))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
