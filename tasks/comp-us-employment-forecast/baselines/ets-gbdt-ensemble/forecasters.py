"""Shared by the ETS baselines: one damped-trend additive Holt-Winters model per series."""

import warnings

import numpy as np
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing

WINDOW = 120  # fit on the last 10 years of each series


def ets_forecast(train: pd.DataFrame, horizon: int) -> dict[str, np.ndarray]:
    """{series_id: forecast of the next `horizon` months} from ETS(A,Ad,A) on log values,
    parameters by maximum likelihood (statsmodels)."""
    out = {}
    for sid, g in train.groupby("series_id"):
        y = np.log(g["employed"].to_numpy()[-WINDOW:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(
                y, trend="add", damped_trend=True, seasonal="add", seasonal_periods=12
            ).fit()
        out[sid] = np.exp(fit.forecast(horizon))
    return out
