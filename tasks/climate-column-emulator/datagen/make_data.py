"""Generate the task's data (run once; outputs committed).  python datagen/make_data.py

Present climate: 40 columns x 64 three-hourly times (seed 20231), split by time: the first 48
times train (1,920 columns), the last 16 test (640 columns).  Warm climate (hidden setting): the
same columns and weather at +3 K surface temperature (warming amplified aloft, fixed relative
humidity), test times only.  Everything is stored standardized with the present-climate training
statistics, in float16 (relative error < 1e-3 of a standard deviation).
  repo/data/train_x.npy, train_y.npy, test_x.npy, stats.json    (visible to the agent)
  hidden/data/warm_test_x.npy                                  (copied in at final evaluation)
  private/test_y.npy, warm_test_y.npy                          (read by the grader only)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from column_physics import physics  # noqa: E402
from states import L, make_states  # noqa: E402

SEED, G, NT, NTRAIN, WARMING = 20231, 40, 64, 48, 3.0
IN_PROF, IN_SCA = ["T", "q", "u", "v"], ["Ts", "S", "Cd"]
OUT_PROF, OUT_SCA = ["dT", "dq", "du", "dv"], ["prect", "flwds"]
UNITS = dict(
    T="K",
    q="g/kg",
    u="m/s",
    v="m/s",
    Ts="K",
    S="W/m2",
    Cd="1e-3",
    dT="K/day",
    dq="g/kg/day",
    du="m/s/day",
    dv="m/s/day",
    prect="mm/day",
    flwds="W/m2",
)


def build(warming: float):
    st = make_states(SEED, G=G, NT=NT, warming=warming)
    g, nt = st["T"].shape[:2]
    f = lambda a: a.reshape(g * nt, *a.shape[2:])  # noqa: E731  (column-major: g, then t)
    T, q, u, v = f(st["T"]), f(st["q"]), f(st["u"]), f(st["v"])
    Ts, S, Cd = f(st["Ts"]), f(st["S"]), f(st["Cd"])
    out, info = physics(T, q, u, v, Ts, S, Cd, st["p"], st["ph"])
    dT, dq, du, dv, prect, flwds = out
    x = np.concatenate([T, q * 1e3, u, v, Ts[:, None], S[:, None], Cd[:, None] * 1e3], axis=1)
    y = np.concatenate([dT, dq, du, dv, prect[:, None], flwds[:, None]], axis=1)
    time = np.tile(np.arange(nt), g)
    return x, y, time, st["p"], info


def main():
    root = HERE.parent
    x, y, time, p, info = build(0.0)
    tr, te = time < NTRAIN, time >= NTRAIN
    xm, xs = x[tr].mean(0), x[tr].std(0)
    ym, ys = y[tr].mean(0), y[tr].std(0)
    xs = np.where(xs > 1e-12, xs, 1.0)
    # outputs with little variance (< 10% of the largest level of the variable: moisture and wind
    # tendencies near the top, where convection is rare) are left out of R^2; the (almost) constant
    # ones are scaled by a floor
    mask = np.ones(y.shape[1], dtype=bool)
    for j in range(4):
        sl = slice(j * L, (j + 1) * L)
        mask[sl] = ys[sl] > 0.1 * ys[sl].max()
    # ... and outputs that are active (more than 0.05 std from their median) in under 5% of the
    # training columns (rare convection near the top): a handful of events cannot be scored
    zt = (y[tr] - ym) / np.maximum(ys, 1e-12)
    mask &= (np.abs(zt - np.median(zt, 0)) > 0.05).mean(0) >= 0.05
    yfloor = np.concatenate(
        [np.full(L, 0.01 * ys[j * L : (j + 1) * L].max()) for j in range(4)] + [ys[-2:]]
    )
    ys = np.maximum(ys, yfloor)

    def z(a, m, s):
        return ((a - m) / s).astype(np.float16)

    xw, yw, timew, _, infow = build(WARMING)
    files = {
        "repo/data/train_x.npy": z(x[tr], xm, xs),
        "repo/data/train_y.npy": z(y[tr], ym, ys),
        "repo/data/test_x.npy": z(x[te], xm, xs),
        "hidden/data/warm_test_x.npy": z(xw[te], xm, xs),
        "private/test_y.npy": z(y[te], ym, ys),
        "private/warm_test_y.npy": z(yw[te], ym, ys),
    }
    md5 = {}
    for rel, a in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / rel, a, allow_pickle=False)
        md5[rel] = hashlib.md5((root / rel).read_bytes()).hexdigest()
    stats = dict(
        n_levels=L,
        p_levels_hpa=[round(float(v) / 100.0, 3) for v in p],
        in_profiles=IN_PROF,
        in_scalars=IN_SCA,
        out_profiles=OUT_PROF,
        out_scalars=OUT_SCA,
        units=UNITS,
        x_mean=xm.tolist(),
        x_std=xs.tolist(),
        y_mean=ym.tolist(),
        y_std=ys.tolist(),
        r2_mask=mask.astype(int).tolist(),
        n_train=int(tr.sum()),
        n_test=int(te.sum()),
    )
    (root / "repo/data/stats.json").write_text(json.dumps(stats))
    deep = info["deep"]
    warm_deep = infow["deep"][timew >= NTRAIN].mean()
    print(
        f"deep convection: present {deep.mean():.3f} (train {deep[tr].mean():.3f} "
        f"test {deep[te].mean():.3f}), warm test {warm_deep:.3f}"
    )
    print("r2 outputs:", int(mask.sum()), "of", mask.size)
    for k, v in md5.items():
        print(k, v)


if __name__ == "__main__":
    main()
