"""Graders of comp-portal-rodents, comp-physician-visits, comp-flc-survival,
comp-chemistry-grades and comp-hotel-rates: the sample submission validates and scores the
calibrated floor, malformed files get a clear message, and each metric equals an independent
computation (scikit-learn's, or a brute-force loop)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, log_loss, mean_poisson_deviance

from mlsbench_env.spec import load_task

TASKS = Path(__file__).resolve().parents[1] / "tasks"
COMPS = {  # task id -> (target column of the labels, splits)
    "comp-portal-rodents": ("species_id", ("1997-1999", "2000-2002")),
    "comp-physician-visits": ("visits", ("seen-regions", "unseen-region")),
    "comp-flc-survival": ("risk", ("age-under-70", "age-70-plus")),
    "comp-chemistry-grades": ("score", ("unseen-schools", "unseen-authorities")),
    "comp-hotel-rates": ("avg_price_per_room", ("may-june-2017", "july-august-2017")),
}


def _grader(task_id: str):
    spec = importlib.util.spec_from_file_location(
        f"grader_{task_id.replace('-', '_')}", TASKS / task_id / "grader.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample(task_id: str) -> pd.DataFrame:
    return pd.read_csv(TASKS / task_id / "repo" / "sample_submission.csv")


def _labels(task_id: str) -> pd.DataFrame:
    return pd.read_csv(TASKS / task_id / "private" / "test_labels.csv")


def _write(df: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "submission.csv", index=False)
    return out_dir / "submission.csv"


@pytest.mark.parametrize("task_id", COMPS)
def test_sample_submission_scores_the_calibrated_floor(task_id, tmp_path):
    grader, task_dir = _grader(task_id), TASKS / task_id
    assert grader.validate(task_dir / "repo" / "sample_submission.csv", task_dir).startswith("OK")
    assert tuple(grader.SPLITS) == COMPS[task_id][1]
    assert {s.label for s in load_task(task_id).spec.settings} == set(grader.SPLITS)
    _write(_sample(task_id), tmp_path)
    anchors = load_task(task_id).anchors()
    for split in grader.SPLITS:
        ((name, value),) = grader.grade(split, 0, tmp_path, task_dir).items()
        a = anchors["anchors"][split][name]
        assert value == pytest.approx(a["floor"], rel=1e-9)
        assert a["reference"] != a["floor"]
    with pytest.raises(ValueError, match="unknown split"):
        grader.grade("no-such-split", 0, tmp_path, task_dir)


@pytest.mark.parametrize("task_id", COMPS)
def test_malformed_submissions_get_clear_messages(task_id, tmp_path):
    grader, task_dir = _grader(task_id), TASKS / task_id
    s = _sample(task_id)
    col = s.columns[1]
    cases = [
        ("columns are", s.rename(columns={col: "prediction"})),
        ("missing", s.iloc[:-3]),
        ("duplicated", pd.concat([s, s.iloc[:1]])),
        ("non-numeric|not a grade", s.assign(**{col: ["x"] + [s[col].iloc[1]] * (len(s) - 1)})),
    ]
    if task_id == "comp-physician-visits":
        cases.append(("<= 0", s.assign(visits=0.0)))
    if task_id == "comp-chemistry-grades":
        cases.append(("not a grade", s.assign(score=5)))
    if task_id == "comp-portal-rodents":
        cases.append((r"\[0, 1\]", s.assign(DM=1.5)))
        cases.append(("sum to 0", s.assign(**{c: 0.0 for c in s.columns[1:]})))
    for i, (message, df) in enumerate(cases):
        path = _write(df, tmp_path / f"case{i}")
        with pytest.raises(ValueError, match=message):
            grader.validate(path, task_dir)
    with pytest.raises(ValueError, match="not found"):
        grader.validate(tmp_path / "none.csv", task_dir)


def _graded(task_id, sub: pd.DataFrame, tmp_path) -> dict[str, float]:
    grader = _grader(task_id)
    _write(sub, tmp_path)
    return {
        s: next(iter(grader.grade(s, 0, tmp_path, TASKS / task_id).values())) for s in grader.SPLITS
    }


def test_log_loss_equals_sklearn(tmp_path):
    task = "comp-portal-rodents"
    labels, sub = _labels(task), _sample(task)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(14), size=len(sub))
    sub.iloc[:, 1:] = p * rng.uniform(0.5, 2.0, size=(len(sub), 1))  # rows need not sum to 1
    got = _graded(task, sub, tmp_path)
    m = labels.merge(sub, on="id")
    for split, value in got.items():
        part = m[m["split"] == split]
        want = log_loss(
            part["species_id"],
            part[sub.columns[1:]].to_numpy()
            / part[sub.columns[1:]].sum(axis=1).to_numpy()[:, None],
            labels=list(sub.columns[1:]),
        )
        assert value == pytest.approx(want, rel=1e-9)


def test_poisson_deviance_equals_sklearn(tmp_path):
    task = "comp-physician-visits"
    labels, sub = _labels(task), _sample(task)
    sub["visits"] = np.random.default_rng(1).gamma(2.0, 3.0, size=len(sub)) + 0.01
    got = _graded(task, sub, tmp_path)
    m = labels.merge(sub, on="id", suffixes=("_true", ""))
    for split, value in got.items():
        part = m[m["split"] == split]
        assert value == pytest.approx(mean_poisson_deviance(part["visits_true"], part["visits"]))


def _brute_c_index(time, event, risk) -> float:
    num = den = 0.0
    for i in range(len(time)):
        if not event[i]:
            continue
        for j in range(len(time)):
            if time[j] > time[i] or (time[j] == time[i] and not event[j]):
                den += 1
                num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return num / den


def test_concordance_index_equals_a_brute_force_count():
    grader = _grader("comp-flc-survival")
    rng = np.random.default_rng(2)
    time = rng.integers(1, 40, size=300).astype(float)  # many tied times
    event = rng.random(300) < 0.4
    risk = rng.integers(0, 10, size=300).astype(float)  # many tied risks
    got = grader.concordance_index(time, event, risk)
    assert got == pytest.approx(_brute_c_index(time, event, risk), rel=1e-12)
    # earlier death, higher risk: concordant but for tied times (a death and a censoring at one
    # time are comparable, and tie in risk here)
    assert grader.concordance_index(time, event, -time) > 0.95
    assert grader.concordance_index(time, event, np.zeros(300)) == 0.5


def test_c_index_of_the_test_outcomes_is_concordant_with_time(tmp_path):
    task = "comp-flc-survival"
    labels, sub = _labels(task), _sample(task)
    sub["risk"] = -sub[["id"]].merge(labels, on="id")["futime"].to_numpy()
    assert all(v > 0.99 for v in _graded(task, sub, tmp_path).values())


def test_quadratic_weighted_kappa_equals_sklearn(tmp_path):
    task = "comp-chemistry-grades"
    labels, sub = _labels(task), _sample(task)
    m = sub[["id"]].merge(labels, on="id")
    noise = np.random.default_rng(3).integers(-1, 2, size=len(sub)) * 2
    sub["score"] = np.clip(m["score"].to_numpy() + noise, 0, 10)
    got = _graded(task, sub, tmp_path)
    m = labels.merge(sub, on="id", suffixes=("_true", ""))
    for split, value in got.items():
        part = m[m["split"] == split]
        want = cohen_kappa_score(part["score_true"], part["score"], weights="quadratic")
        assert value == pytest.approx(want, rel=1e-9) and 0.5 < value < 1


def test_mean_absolute_error_of_the_hotel_prices(tmp_path):
    task = "comp-hotel-rates"
    labels, sub = _labels(task), _sample(task)
    m = sub[["id"]].merge(labels, on="id")
    sub["avg_price_per_room"] = m["avg_price_per_room"].to_numpy() + 7.0
    assert all(v == pytest.approx(7.0) for v in _graded(task, sub, tmp_path).values())
