"""Baseline: rank-averaged ensemble of (1) a shallow, slow, regularized GBDT with feature
subsampling (depth 2 chosen over depth 3 by 5-fold CV AUC on train), (2) CV-tuned
class-weighted logistic regression and (3) a random forest. Rank averaging is the usual way
Kaggle competitions scored by AUC blend models whose scores live on different scales."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
X, y = train.drop(columns=["id", "Purchase"]), train["Purchase"]
Xt = test[X.columns]

gbdt = HistGradientBoostingClassifier(
    learning_rate=0.03,
    max_iter=200,
    max_depth=2,
    min_samples_leaf=50,
    l2_regularization=5.0,
    max_features=0.5,
    early_stopping=False,
    random_state=seed,
)
logreg = make_pipeline(
    StandardScaler(),
    LogisticRegressionCV(
        Cs=np.logspace(-4, 0, 9),
        cv=StratifiedKFold(5, shuffle=True, random_state=seed),
        scoring="roc_auc",
        class_weight="balanced",
        l1_ratios=(0.0,),
        max_iter=3000,
    ),
)
forest = RandomForestClassifier(
    n_estimators=300, min_samples_leaf=5, max_features=0.2,
    class_weight="balanced_subsample", n_jobs=1, random_state=seed,
)
weights = {"gbdt": 2.0, "logreg": 1.0, "forest": 1.0}
blend = np.zeros(len(test))
for name, model in (("gbdt", gbdt), ("logreg", logreg), ("forest", forest)):
    model.fit(X, y)
    blend += weights[name] * rankdata(model.predict_proba(Xt)[:, 1]) / len(Xt)
p = blend / sum(weights.values())  # in (0, 1]: a ranking score, which is all AUC uses
pd.DataFrame({"id": test["id"], "Purchase": p}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
