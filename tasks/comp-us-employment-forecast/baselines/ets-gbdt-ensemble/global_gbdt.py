"""A global gradient-boosting forecaster: one model for all series and horizons (direct
multi-horizon strategy), trained on windows cut from every series' history, as the M5
accuracy winners did with LightGBM (Makridakis et al., IJF 38 (2022))."""

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

LAGS = 36  # months of history a window sees
ORIGINS = 120  # forecast origins per series: the last 10 years of the training history...
STRIDE = 3  # ...every 3rd month


def _features(lv: np.ndarray, origins: np.ndarray, h: int, month0: np.ndarray):
    """Rows for target index origin + h. lv: log series. Values relative to the mean of the
    last 12 months; the target is relative to the 'anchor', the last observed value of the
    target's calendar month (so the model learns corrections to the seasonal naive)."""
    idx = origins[:, None] + np.arange(-LAGS + 1, 1)[None, :]
    hist = lv[idx]
    base = hist[:, -12:].mean(axis=1)
    anchor = lv[origins - 12 + (h - 1) % 12 + 1]
    yoy = np.column_stack([
        hist[:, -1] - hist[:, -13],
        hist[:, -12:].mean(axis=1) - hist[:, -24:-12].mean(axis=1),
        hist[:, -24:-12].mean(axis=1) - hist[:, -36:-24].mean(axis=1),
    ])
    cal = np.column_stack([np.full(len(origins), h), (month0 + h) % 12])
    return np.column_stack([hist - base[:, None], anchor - base, yoy, cal]), anchor


def gbdt_forecast(train: pd.DataFrame, horizon: int, seed: int) -> dict[str, np.ndarray]:
    X, y, series = [], [], {}
    for sid, g in train.groupby("series_id"):
        lv = np.log(g["employed"].to_numpy())
        month_last = int(g["month"].iloc[-1][5:]) - 1  # 0..11, calendar month of the last value
        n = len(lv)
        series[sid] = (lv, month_last)
        origins = np.arange(max(LAGS - 1, n - 1 - horizon - ORIGINS), n - horizon, STRIDE)
        if len(origins) == 0:
            continue
        month0 = (month_last - (n - 1 - origins)) % 12
        for h in range(1, horizon + 1):
            f, anchor = _features(lv, origins, h, month0)
            X.append(f)
            y.append(lv[origins + h] - anchor)
    model = HistGradientBoostingRegressor(
        learning_rate=0.08, max_iter=200, max_leaf_nodes=31, min_samples_leaf=50,
        early_stopping=False, random_state=seed,
    )
    model.fit(np.vstack(X), np.concatenate(y))
    out = {}
    for sid, (lv, month_last) in series.items():
        o = np.array([len(lv) - 1])
        rows = [_features(lv, o, h, np.array([month_last])) for h in range(1, horizon + 1)]
        f = np.vstack([r[0] for r in rows])
        anchor = np.concatenate([r[1] for r in rows])
        out[sid] = np.exp(model.predict(f) + anchor)
    return out
