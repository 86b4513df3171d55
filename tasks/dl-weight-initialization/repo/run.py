"""Fixed harness: trains a deep plain network from the initial weights that init.py gives it.

    python run.py --setting digits-mlp20

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (the folder for result.json and
predictions.npy; `out` in a run by hand).

The initializer runs in a child process (the task kit's Child: it reads init.py and nets.py and
nothing else of this folder, writes only its scratch folder, cannot see this process and never
sees any data); it returns the network's initial state as raw float32 bytes with the names and
shapes of its entries. This parent checks them against a network it built itself (same names,
shapes, every value finite), loads them, and trains and evaluates the network with fixed code on
data only it holds: SGD with momentum, a fixed number of steps, learning rate and batch size.
After the child has exited it writes the test predictions and result.json; the grader
recomputes the accuracy from the predictions.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import data
import nets
from taskkit import Child, RunFailure, out_dir_from_env, read_secret, run_seed, setting_spec
from taskkit import torchstate, write_artifacts

MOMENTUM = 0.9


def receive_init(child, model) -> None:
    """The child's M (names and shapes) and S (values) frames, checked and loaded into model."""
    want = nets.shapes(model)
    n = torchstate.count(model)
    try:
        got = json.loads(child.expect(b"M", size=None, maxlength=1 << 20))
    except ValueError as e:
        raise RunFailure(f"protocol error: the initializer sent a bad list of shapes ({e})")
    if got != want:
        raise RunFailure(
            "the initialized network's state entries (names, shapes) differ from the network "
            f"the harness built: got {str(got)[:300]}, expected {str(want)[:300]}"
        )
    values = np.frombuffer(child.expect(b"S", size=4 * n), "<f4")
    if not np.isfinite(values).all():
        raise RunFailure(f"{int((~np.isfinite(values)).sum())} initial values are not finite")
    torchstate.load_state_bytes(model, values.tobytes())


def train(model, spec: dict, arrays: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The fixed training and evaluation: returns the test predictions (-1 where the logits are
    not finite) and a log of the run."""
    import torch

    x, y = torch.from_numpy(arrays["x_train"]), torch.from_numpy(arrays["y_train"])
    opt = torch.optim.SGD(model.parameters(), lr=float(spec["lr"]), momentum=MOMENTUM)
    steps, batch = int(spec["steps"]), int(spec["batch"])
    losses, diverged = [], None
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(x), batch))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            diverged = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        logits = torch.cat([model(xb) for xb in torch.from_numpy(arrays["x_test"]).split(500)])
    pred = logits.argmax(dim=1).numpy().astype(np.int64)
    pred[~torch.isfinite(logits).all(dim=1).numpy()] = -1
    head = float(np.mean(losses[:20])) if losses else float("nan")
    tail = float(np.mean(losses[-20:])) if losses else float("nan")
    return pred, {"first_loss": head, "last_loss": tail, "diverged_at": diverged}


def main(argv=None):
    name, spec, _ = setting_spec(nets.SETTINGS, argv=argv)
    spec = nets.check_spec(spec)
    seed = run_seed()
    out = out_dir_from_env()
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    key, instance = (secret_key.strip(), "final") if secret_key else (data.PUBLIC_KEY, "public")
    arrays = data.instance(name, spec, seed, key)
    torch = torchstate.setup(seed)
    model = nets.build(spec)
    print(f"[harness] {name}: {spec['arch']} depth {spec['depth']} width {spec['width']} "
          f"{spec['activation']}, {spec['steps']} SGD steps, seed {seed}", flush=True)
    t0 = time.time()
    try:
        with Child("nets:child_main", spec, seed, may_read=["init.py", "nets.py"],
                   name="initializer") as child:
            receive_init(child, model)
            isolation = child.isolation
            code = child.close(grace_s=30)
        if code != 0:
            raise RunFailure(f"the initializer's process exited with code {code} after it was done")
    except RunFailure as e:
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        write_artifacts(out, {"error": str(e)})
        return
    torch.manual_seed(seed)
    pred, log = train(model, spec, arrays, data.rng_for(key, name, seed, "batches"))
    accuracy = float((pred == arrays["y_test"]).mean())
    record = {"setting": name, "spec": spec, "seed": seed, "instance": instance,
              "isolation": isolation, "accuracy": accuracy, **log}
    write_artifacts(out, record, arrays={"predictions": pred})
    print(f"[harness] done: test accuracy {accuracy:.4f}, training loss {log['first_loss']:.3f} "
          f"-> {log['last_loss']:.3f}" + (f", diverged at step {log['diverged_at']}"
          if log["diverged_at"] is not None else "") + f" ({time.time() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
