"""Train the frozen target models once (not part of the run; the weights are committed).

    python train_models.py            # from tasks/security-blackbox-linf-attack/

Writes repo/weights/<arch>_<data>.npz (visible models, training seed 0) and
hidden/weights/<arch>_<data>.npz (the models of the final evaluation: the same architectures
retrained with seed 1, plus the hidden setting's architecture). Deterministic on CPU with one
thread. Weights are stored in float16 (the harness runs them in float32 after loading).
"""

import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "repo"), os.path.join(HERE, "hidden")]
import data  # noqa: E402
import models  # noqa: E402

# (arch, dataset, epochs, lr)
MODELS = [("mlp", "digits", 60, 2e-3), ("cnn", "fmnist", 3, 2e-3), ("mlp", "fmnist", 6, 1e-3)]
HIDDEN_ONLY = [("lenet", "fmnist", 4, 2e-3)]


def train(arch, dataset, epochs, lr, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = data.load(dataset, "train")
    xt, yt = data.load(dataset, "test")
    side = x.shape[-1]
    model = models.build(arch, side)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    bs = 64 if dataset == "digits" else 128
    for _ep in range(epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(Y)))
        for i in range(0, len(Y), bs):
            b = perm[i : i + bs]
            loss = F.cross_entropy(model(X[b]), Y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    arrays = models.state_to_arrays(model)
    # accuracy of the float16-rounded weights, as the harness will run them
    m2 = models.build(arch, side)
    m2.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items()})
    with torch.no_grad():
        acc = (m2(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean()
    return arrays, acc


def main():
    torch.set_num_threads(1)
    jobs = [(m, 0, "repo") for m in MODELS] + [(m, 1, "hidden") for m in MODELS + HIDDEN_ONLY]
    for (arch, dataset, epochs, lr), seed, where in jobs:
        t0 = time.time()
        arrays, acc = train(arch, dataset, epochs, lr, seed)
        path = os.path.join(HERE, where, "weights", f"{arch}_{dataset}.npz")
        np.savez_compressed(path, **arrays)
        print(
            f"{where}/weights/{arch}_{dataset}.npz seed={seed} test_acc={acc:.4f} "
            f"params={sum(v.size for v in arrays.values())} {time.time() - t0:.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
