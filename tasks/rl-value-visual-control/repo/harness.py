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

The child is the task kit's (taskkit.Child): it reads value_head.py and nothing else of this
folder. Frames: raw bytes, the first byte their kind; the parent never unpickles.
  parent -> child  b"S" + uint32 n + uint32 B + float32 acting outputs (n*A*K), then if B > 0
                        the learn batch: float32 out (B*A*K) + int64 actions (B) + float32 rewards
                        (B) + float32 dones (B) + float32 target_next (B*A*K) + float32 online_next
                        (B*A*K);   b"E"  end
  child -> parent  b"I" + uint32 atoms (after construction)
                   b"q" + float32 Q-values (n*A), then if B > 0
                   b"g" + float32 loss + float32 grad (B*A*K);   b"D" done (after b"E")
The parent checks every answer (shape, finite), fails the run on any violation, and writes the
artifacts only after the child has exited.
"""
from __future__ import annotations

import os
import struct
import time

import numpy as np
import torch  # imported before the child drops its privileges (the kit's rule for children)

from taskkit import Child, RunFailure, close_all, torchstate

# ----------------------------------------------------------------------------- fixed settings
GAMMA = 0.99
BATCH = 64
LR = 1e-3                 # Adam
ADAM_EPS = 3.125e-4       # 0.01 / 32, as in Dopamine / Rainbow
MAX_ATOMS = 128           # head-size cap: outputs per action
N_ENVS = 16               # environments stepped together; one gradient step per N_ENVS frames
TARGET_SYNC = 200         # gradient steps between target-network syncs
LEARN_START = 1000        # frames of random play before learning starts
EPS_START, EPS_END, EPS_FRAC = 1.0, 0.05, 0.4   # linear decay over EPS_FRAC of the budget
EVAL_EPS = 0.01
EVAL_MAX_FRAMES = 2000    # evaluation episodes are truncated there
CURVE_POINTS = 10
CHILD_TIMEOUT_S = 30.0    # one request


# ------------------------------------------------------------------------------- child side
# (the task kit's least-privileged child: it reads value_head.py and nothing else of this
# folder, writes only its scratch folder, and its guard reports what it tried)


def _warm_up():
    """Throw-away calls of the ops heads use, so that torch's lazy imports happen before the
    agent's module is imported."""
    import torch.nn.functional as F

    x = torch.randn(4, 3, 5, requires_grad=True)
    y = torch.log_softmax(x, 2).sum() + F.smooth_l1_loss(x, x.detach() + 1) + F.mse_loss(x, x.detach())
    y = y + torch.sort(x, 2).values.sum() + F.cross_entropy(x[:, :, 0], torch.zeros(4, dtype=torch.long))
    y = y + F.huber_loss(x, x.detach() + 1, reduction="none", delta=1.0).sum()
    torch.autograd.grad(y, x)
    torch.zeros(4, 5).scatter_add_(1, torch.zeros(4, 5, dtype=torch.long), torch.ones(4, 5))


def child_main(conn, num_actions, gamma, seed):
    torchstate.setup(seed, threads=1)
    _warm_up()
    import value_head  # the editable module: imported here, in this process only

    head = value_head.ValueHead(int(num_actions), float(gamma))
    atoms = int(head.atoms)
    conn.send_bytes(b"I" + struct.pack("<I", atoms))
    A, K = int(num_actions), atoms
    while True:
        msg = conn.recv_bytes()
        if msg[:1] == b"E":
            break
        n, B = struct.unpack("<II", msg[1:9])
        off = 9
        if n:
            out = torch.from_numpy(np.frombuffer(msg, np.float32, n * A * K, off).reshape(n, A, K).copy())
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
            out = np.frombuffer(msg, np.float32, m, off).reshape(B, A, K); off += 4 * m
            act = np.frombuffer(msg, np.int64, B, off); off += 8 * B
            rew = np.frombuffer(msg, np.float32, B, off); off += 4 * B
            done = np.frombuffer(msg, np.float32, B, off); off += 4 * B
            tnext = np.frombuffer(msg, np.float32, m, off).reshape(B, A, K); off += 4 * m
            onext = np.frombuffer(msg, np.float32, m, off).reshape(B, A, K)
            out_t = torch.from_numpy(out.copy()).requires_grad_(True)
            loss = head.loss(out_t, torch.from_numpy(act.copy()), torch.from_numpy(rew.copy()),
                             torch.from_numpy(done.copy()), torch.from_numpy(tnext.copy()),
                             torch.from_numpy(onext.copy()))
            if not (torch.is_tensor(loss) and loss.numel() == 1):
                raise ValueError("loss must return a scalar tensor")
            if loss.requires_grad:
                (grad,) = torch.autograd.grad(loss.reshape(()), out_t, allow_unused=True)
            else:
                grad = None
            if grad is None:
                grad = torch.zeros_like(out_t)
            conn.send_bytes(b"g" + struct.pack("<f", float(loss.detach()))
                            + grad.detach().to(torch.float32).contiguous().numpy().tobytes())
    conn.send_bytes(b"D")


# ------------------------------------------------------------------------------ parent side

class Head:
    """The parent's handle on the value-head process; every answer is checked here."""

    def __init__(self, num_actions, gamma, seed):
        # the head's process reads value_head.py and nothing else of this folder
        self.child = Child("harness:child_main", int(num_actions), float(gamma), int(seed),
                           may_read=["value_head.py"], name="value-head", timeout_s=120.0)
        self.A = int(num_actions)
        # shuffles the repeated rows of every Q request (its own stream: the agent's is untouched)
        self.probe_rng = np.random.default_rng([seed, 0x9B0BE])
        self.perm = None
        (self.K,) = struct.unpack("<I", self._expect(b"I", 4))
        if not 1 <= self.K <= MAX_ATOMS:
            raise RunFailure(f"head size violated: ValueHead.atoms = {self.K}, allowed 1..{MAX_ATOMS} "
                             "outputs per action")
        self.child.timeout_s = CHILD_TIMEOUT_S

    def _expect(self, kind: bytes, size: int) -> bytes:
        """The payload of the next frame, of ``kind`` and ``size`` bytes; room for the kit's
        X and V frames (a traceback, a guard's message) whatever ``size`` is."""
        msg = self.child.recv(maxlength=max(size + 1, 1 << 16))
        if msg[:1] != kind or len(msg) != size + 1:
            raise RunFailure(f"protocol error: the value-head process sent {msg[:1]!r} with "
                             f"{len(msg) - 1} bytes, expected {kind!r} with {size} bytes")
        return msg[1:]

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
        parts = [struct.pack("<II", n, B)]
        if n:
            parts.append(np.ascontiguousarray(act_out, np.float32).tobytes())
        if B:
            out, act, rew, done, tnext, onext = batch
            parts += [np.ascontiguousarray(out, np.float32).tobytes(),
                      np.ascontiguousarray(act, np.int64).tobytes(),
                      np.ascontiguousarray(rew, np.float32).tobytes(),
                      np.ascontiguousarray(done, np.float32).tobytes(),
                      np.ascontiguousarray(tnext, np.float32).tobytes(),
                      np.ascontiguousarray(onext, np.float32).tobytes()]
        self.child.send(b"S", b"".join(parts))

    def recv_q(self):
        """The Q-values of the last request's acting rows, once both copies agree."""
        n = len(self.perm)
        q = self._expect(b"q", 8 * n * self.A)
        q = np.frombuffer(q, np.float32).reshape(2 * n, self.A)
        if not np.all(np.isfinite(q)):
            raise RunFailure("q_values returned NaN or inf")
        ref = q[:n][self.perm]
        if not (np.abs(q[n:] - ref) <= 1e-6 + 1e-5 * np.abs(ref)).all():  # np.allclose's test
            raise RunFailure("q_values is not a function of the network outputs: the same outputs, "
                             "asked twice in one request, got different Q-values. Exploration is "
                             "fixed by the harness; q_values must not add noise of its own or "
                             "depend on a row's position in the batch")
        return q[:n]

    def recv_grad(self, B):
        m = B * self.A * self.K
        msg = self._expect(b"g", 4 + 4 * m)
        (loss,) = struct.unpack("<f", msg[:4])
        grad = np.frombuffer(msg, np.float32, m, 4).reshape(B, self.A, self.K)
        if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
            raise RunFailure("the loss or its gradient is NaN or inf")
        return loss, grad

    def close(self):
        """The explicit end of the protocol; the child must say it is done."""
        self.child.send(b"E")
        self._expect(b"D", 0)
        self.child.close()


def share_one_cpu() -> None:
    """Keep this process (and the head's, started after) on the CPU it runs on now. The two
    hand over every gradient step; on one CPU that is a context switch, across two a wake-up of
    the other CPU (measured on space-invaders: a tenth to a quarter less CPU time, less wall
    time, the same results)."""
    try:
        with open("/proc/self/stat") as f:
            cpu = int(f.read().rsplit(")", 1)[1].split()[36])  # field 39, "processor"
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError, IndexError):  # not Linux, or no such CPU: as scheduled
        pass


def train_and_evaluate(game: str, frames: int, eval_episodes: int, seed: int,
                       sticky: float = 0.1) -> dict:
    """The whole run; returns the record (raises RunFailure on a violation)."""
    from games import make_games
    from qnet import POS, Adam, QNet

    if frames % N_ENVS:
        raise RunFailure(f"the frame budget must be a multiple of {N_ENVS} (the games stepped "
                         f"together), got {frames}")
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 1])
    envs = make_games(game, sticky, [rng.integers(2 ** 31) for _ in range(N_ENVS)])
    A, C = envs.num_actions, envs.channels
    share_one_cpu()  # before the head's process starts: it inherits the CPU
    child = Head(A, GAMMA, seed)
    K = child.K
    t0 = time.time()
    try:
        net = QNet(C, A * K)
        target = QNet(C, A * K)
        target.load(net)
        opt = Adam(net.theta, lr=LR, eps=ADAM_EPS)
        S = np.zeros((frames, C, 10, 10), np.uint8)
        S2 = np.zeros((frames, C, 10, 10), np.uint8)
        Ar = np.zeros(frames, np.int64)
        R = np.zeros(frames, np.float32)
        D = np.zeros(frames, np.float32)
        states = envs.obs()
        ep_ret = np.zeros(N_ENVS)
        ep_returns, ep_ends = [], []
        running = []  # mean return so far of the running episodes at each tenth's end
        updates, losses = 0, []
        eps_frames = max(1, int(EPS_FRAC * frames))
        rows = BATCH * POS
        t = 0  # frames used: the parent's counter
        while t < frames:
            eps = max(EPS_END, EPS_START - (EPS_START - EPS_END) * t / eps_frames)
            learning = t >= LEARN_START
            greedy = np.flatnonzero(rng.random(N_ENVS) >= eps) if learning else np.zeros(0, int)
            actions = rng.integers(0, A, N_ENVS)
            act_out = batch = None
            if learning:
                idx = rng.integers(0, t, BATCH)
                # one online pass over s (trained on), s' and the acting states; target on s'
                P = net.patches(np.concatenate([S[idx], S2[idx], states[greedy]]))
                o = net.forward(P, keep=BATCH).reshape(-1, A, K).numpy()
                tn = target.forward(P[rows:2 * rows]).reshape(BATCH, A, K).numpy()
                batch = (o[:BATCH], Ar[idx], R[idx], D[idx], tn, o[BATCH:2 * BATCH])
                if len(greedy):
                    act_out = o[2 * BATCH:]
            if batch is not None:
                child.send(act_out, batch)
            if len(greedy):
                actions[greedy] = child.recv_q().argmax(1)
            r, done, s2 = envs.act(actions)
            S[t:t + N_ENVS], S2[t:t + N_ENVS] = states, s2
            Ar[t:t + N_ENVS], R[t:t + N_ENVS], D[t:t + N_ENVS] = actions, r, done
            ep_ret += r
            states = s2
            if done.any():
                ends = np.flatnonzero(done)
                ep_returns += ep_ret[ends].tolist()
                ep_ends += (t + 1 + ends).tolist()
                ep_ret[ends] = 0.0
                envs.reset(done)
                states = np.where(done[:, None, None, None], envs.obs(), s2)
            t += N_ENVS
            while t * CURVE_POINTS >= (len(running) + 1) * frames:
                running.append(float(ep_ret.mean()))
            if batch is not None:  # the child computed the loss while the games stepped
                loss, grad = child.recv_grad(BATCH)
                opt.step(net.backward(torch.from_numpy(grad.reshape(BATCH, A * K).copy())))
                updates += 1
                losses.append(loss)
                if updates % TARGET_SYNC == 0:
                    target.load(net)
        train_s = time.time() - t0
        # ---- evaluation: fresh environments with a salted seed, epsilon = EVAL_EPS, all episodes
        # stepped together so each step is one batched request
        erng = np.random.default_rng([seed, 0x5EED, 7919])
        envs = make_games(game, sticky, [erng.integers(2 ** 31) for _ in range(eval_episodes)])
        rets = np.zeros(eval_episodes)
        lens = np.zeros(eval_episodes, np.int64)
        alive = np.ones(eval_episodes, bool)
        while alive.any():
            ids = np.flatnonzero(alive)
            x = envs.obs()[ids]
            o = net.forward(net.patches(x)).reshape(len(ids), A, K).numpy()
            child.send(o)
            q = child.recv_q()
            actions = np.zeros(eval_episodes, np.int64)
            explore = erng.random(len(ids)) < EVAL_EPS
            actions[ids] = np.where(explore, erng.integers(0, A, len(ids)), q.argmax(1))
            r, done, _ = envs.act(actions)  # ended episodes step on, unrecorded
            rets[ids] += r[ids]
            lens[ids] += 1
            alive[ids] = ~done[ids] & (lens[ids] < EVAL_MAX_FRAMES)
        eval_frames = int(lens.sum())
        isolation = child.child.isolation
        child.close()
    finally:
        close_all()
    # learning curve: mean return of the training episodes that ended in each tenth of the
    # budget; in a tenth where none ended, every game ran through it, and their returns so far
    # (a lower bound) stand in
    curve = []
    ends = np.asarray(ep_ends)
    rets_tr = np.asarray(ep_returns)
    for k in range(CURVE_POINTS):
        lo, hi = k * frames // CURVE_POINTS, (k + 1) * frames // CURVE_POINTS
        sel = (ends > lo) & (ends <= hi)
        curve.append(float(rets_tr[sel].mean()) if sel.any() else running[k])
    return dict(game=game, frames=int(frames), frames_used=int(t), atoms=int(K), updates=int(updates),
                eval_episodes=int(eval_episodes), eval_returns=[float(x) for x in rets],
                eval_lengths=[int(x) for x in lens], eval_frames=int(eval_frames),
                mean_return=float(rets.mean()), train_episodes=len(ep_returns),
                train_curve=curve, mean_train_return=float(np.mean(curve)),
                last_loss=float(np.mean(losses[-100:])) if losses else None,
                train_s=round(train_s, 2), wall_s=round(time.time() - t0, 2),
                isolation=isolation)
