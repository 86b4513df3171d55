"""Generate the data of bio-inverse-folding (run once; fixed seed).  python datagen/make_data.py

Writes repo/data/{short,long}_{train_x,train_seq,test_x}.npy (C-alpha coordinates in A, float32;
sequences as int8 indices into 'ACDEFGHIKLMNPQRSTVWY'), hidden/data/fold_test_x.npy,
private/{short,long,fold}_test_seq.npy and private/bayes.json (the Bayes-optimal recovery and
perplexity of each test set, estimated from the Potts marginals by independent Gibbs chains).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import backbones as B  # noqa: E402
import potts as P  # noqa: E402

SEED = 20220915
TASK = Path(__file__).resolve().parents[1]
SETS = {  # name: (length, classes, n_train, n_test)
    "short": (40, ("alpha", "beta", "alpha+beta"), 600, 150),
    "long": (72, ("alpha", "beta", "alpha+beta"), 240, 60),
    "fold": (40, ("alpha/beta",), 0, 150),  # hidden: the held-out fold class, trained on 'short'
}
BAYES_CHAINS, BAYES_SWEEPS, BAYES_BURN = 24, 60, 20


def main():
    rng = np.random.default_rng(SEED)
    cache = Path("/tmp/bif_backbones.npz")
    t0 = time.time()
    if cache.exists():
        bb = dict(np.load(cache))
    else:
        bb = {}
        for name, (L, classes, ntr, nte) in SETS.items():
            xs, sss = [], []
            for k in range(ntr + nte):
                x, ss = B.sample_backbone(classes[k % len(classes)], L, rng)
                xs.append(x)
                sss.append(ss)
            order = rng.permutation(ntr + nte) if ntr else np.arange(nte)
            bb[name + "_x"] = np.stack(xs)[order]
            bb[name + "_ss"] = np.stack(sss)[order]
            print(name, "backbones", time.time() - t0, flush=True)
        np.savez(cache, **bb)
    bur = np.concatenate([P.burial(bb["short_x"]).ravel(), P.burial(bb["long_x"]).ravel()])
    bm, bs = float(bur.mean()), float(bur.std())
    prng = np.random.default_rng(SEED + 1)
    out, bayes = {}, {}
    for name, (L, _classes, ntr, nte) in SETS.items():
        x, ss = bb[name + "_x"], bb[name + "_ss"]
        h, w, M = P.fields_couplings(x, ss, bm, bs)
        seq, _ = P.gibbs(h, w, M, prng, sweeps=120)
        out[name] = (x.astype(np.float32), seq.astype(np.int8), ss)
        # Bayes-optimal predictor of a residue from the backbone alone: the Potts marginal
        xt = slice(ntr, ntr + nte)
        R = BAYES_CHAINS
        hr = np.repeat(h[xt], R, 0)
        wr = np.repeat(w[xt], R, 0)
        _, counts = P.gibbs(hr, wr, M, prng, sweeps=BAYES_SWEEPS, keep_from=BAYES_BURN)
        counts = counts.reshape(nte, R, L, 20).sum(1) + 0.5
        marg = counts / counts.sum(-1, keepdims=True)
        nat = seq[xt]
        pn = np.take_along_axis(marg, nat[..., None].astype(int), -1)[..., 0]
        bayes[name] = dict(
            expected_recovery=float(marg.max(-1).mean()),
            expected_perplexity=float(np.exp(-(marg * np.log(marg)).sum(-1).mean())),
            native_recovery=float((marg.argmax(-1) == nat).mean()),
            native_perplexity=float(np.exp(-np.log(pn).mean())),
            composition_perplexity=float(
                np.exp(
                    -np.log(
                        np.bincount(seq[: max(ntr, 1)].ravel(), minlength=20)[nat]
                        / seq[: max(ntr, 1)].size
                        + 1e-9
                    ).mean()
                )
            )
            if ntr
            else None,
        )
        print(name, bayes[name], time.time() - t0, flush=True)
    (TASK / "repo" / "data").mkdir(parents=True, exist_ok=True)
    (TASK / "hidden" / "data").mkdir(parents=True, exist_ok=True)
    (TASK / "private").mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ("short", "long"):
        x, seq, ss = out[name]
        L, _, ntr, nte = SETS[name]
        files[f"repo/data/{name}_train_x.npy"] = x[:ntr]
        files[f"repo/data/{name}_train_seq.npy"] = seq[:ntr]
        files[f"repo/data/{name}_test_x.npy"] = x[ntr:]
        files[f"private/{name}_test_seq.npy"] = seq[ntr:]
    files["hidden/data/fold_test_x.npy"] = out["fold"][0]
    files["private/fold_test_seq.npy"] = out["fold"][1]
    for rel, arr in files.items():
        np.save(TASK / rel, arr, allow_pickle=False)
        print(rel, arr.shape, arr.dtype, hashlib.md5(arr.tobytes()).hexdigest())
    (TASK / "private" / "bayes.json").write_text(json.dumps(bayes, indent=1))


if __name__ == "__main__":
    main()
