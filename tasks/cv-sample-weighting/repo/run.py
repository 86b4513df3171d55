"""Fixed harness (trusted): trains the fixed classifier on one long-tailed setting with the loss
of weighting.py, and predicts its balanced test set.

    MLSBENCH_SEED=0 MLSBENCH_OUT=/tmp/o python run.py --setting fmnist-ir100

This parent process reads the data, draws the instance (head and tail classes, the long-tailed
training set, the balanced test set) from the seed and the instance key, and owns the training:
the model's state, the AdamW optimizer and its schedule, the minibatches and the step count. The
loss runs in a child process (the task kit's Child: it reads weighting.py and nets.py and nothing
else of this folder, and gets the training arrays only); each step it returns gradients, and the
parent fails the run when a parameter comes back changed or the initial state is not the fixed
initialization. After training, the parent loads the state into its own copy of the classifier
and predicts the test images, which never entered the child; it writes pred.npy and result.json
after the child has exited, and the grader recomputes the balanced accuracy from pred.npy.
"""

from __future__ import annotations

import sys
import time
import traceback

import ltdata
import nets
import numpy as np
from taskkit import Child, RunFailure, out_dir_from_env, read_secret, run_seed, setting_spec
from taskkit import torchstate, write_artifacts
from taskkit.torchstate import ParentState, warmup_cosine

WEIGHT_DECAY = 5e-4
MAY_READ = ["weighting.py", "nets.py"]


def _batches(n: int, batch: int, steps: int, rng: np.random.Generator):
    """Row indices of each step: epochs of a fresh permutation (uniform over training images)."""
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        if len(order) < batch:
            order = np.concatenate([order, rng.permutation(n)])
        rows, order = order[:batch], order[batch:]
        yield rows.astype("<u4")


def train(spec: dict, seed: int, Xtr, Ytr, counts, own_net, rec: dict) -> bytes:
    args = (spec, seed, Xtr.tobytes(), Ytr.astype("<i8").tobytes(), counts)
    with Child("worker:train", *args, may_read=MAY_READ, name="training") as child:
        state = ParentState.receive(child, cap=torchstate.count(own_net))
        if state.bytes() != torchstate.state_bytes(own_net):
            raise RunFailure("the model's initial state is not the fixed initialization")
        state.adamw(spec["lr"], weight_decay=WEIGHT_DECAY)
        rng = np.random.default_rng(seed)
        losses, t0 = [], time.time()
        for step, rows in enumerate(_batches(len(Xtr), spec["batch"], spec["steps"], rng)):
            lr = warmup_cosine(step, spec["steps"], spec["lr"], max(1, spec["steps"] // 20))
            head = np.array([step / spec["steps"]], "<f8").tobytes()
            losses.append(state.step(child, step, head + rows.tobytes(), lr)[0])
        child.send(b"D")
        rec.update(steps=spec["steps"], train_s=round(time.time() - t0, 2),
                   loss_last=float(np.mean(losses[-20:])), isolation=child.isolation)
        code = child.close(grace_s=30)
    if code != 0:
        raise RunFailure(f"the training process exited with code {code} after it was done")
    return state.bytes()


def main(argv=None) -> int:
    name, spec, _ = setting_spec(ltdata.SETTINGS, argv=argv)
    spec = ltdata.check_spec(spec)
    seed = run_seed()
    out = out_dir_from_env()
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    key, instance = (secret_key.strip(), "final") if secret_key else (ltdata.PUBLIC_KEY, "public")
    rec = {"setting": name, "spec": spec, "seed": seed, "instance": instance, "error": None}
    pred, t0 = None, time.time()
    try:
        y_pool, y_test_pool = ltdata.labels(spec["data"])
        tr, te = ltdata.split(name, spec, seed, key, y_pool, y_test_pool)
        Xtr, Xte = ltdata.images(spec["data"], tr, te)
        Ytr, Yte = y_pool[tr], y_test_pool[te]
        counts = np.bincount(Ytr, minlength=ltdata.N_CLASSES).tolist()
        spec_child = dict(spec, in_shape=list(Xtr.shape[1:]))
        torch = torchstate.setup(seed)
        own_net = nets.build(spec["arch"], spec_child["in_shape"], ltdata.N_CLASSES)
        print(f"[{name}] seed={seed} {spec['arch']} on {len(Xtr)} training images, class "
              f"counts {sorted(counts, reverse=True)}; {spec['steps']} steps", flush=True)
        trained = train(spec_child, seed, Xtr, Ytr, counts, own_net, rec)
        torchstate.load_state_bytes(own_net, trained)
        if not all(bool(torch.isfinite(v).all()) for _, v in torchstate.state_tensors(own_net)):
            raise RunFailure("the trained model holds non-finite values")
        pred = nets.logits(own_net, torch.from_numpy(Xte)).argmax(dim=1).numpy().astype("<i2")
        bacc, recall = ltdata.balanced_accuracy(Yte, pred)
        rec.update(balanced_accuracy=bacc, n_train=len(Xtr), n_test=len(Xte), counts=counts,
                   recall_by_rank=[recall[c] for c in np.argsort(counts)[::-1]])
    except RunFailure as e:
        rec["error"], pred = str(e), None
    except Exception:  # a malformed frame from the child, or a harness bug
        rec["error"], pred = "harness error:\n" + traceback.format_exc()[-3000:], None
    rec["wall_s"] = round(time.time() - t0, 2)
    write_artifacts(out, rec, arrays={"pred": pred})
    if rec["error"]:
        print(f"[{name}] seed={seed} FAILED: {rec['error']}", file=sys.stderr)
    else:
        print(f"[{name}] seed={seed} balanced accuracy {rec['balanced_accuracy']:.4f}; recall "
              f"head to tail {np.round(rec['recall_by_rank'], 2).tolist()}; "
              f"{rec['wall_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    main()
