"""Baseline: a patch MLP denoiser (Burger, Schuler & Harmeling, CVPR 2012, at small scale): a
one-hidden-layer perceptron (64 ReLU units, Adam, 15 epochs) maps each noisy 7x7 neighbourhood
to the clean centre pixel; 150,000 random training pixels."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from patches import patches, write_submission
from sklearn.neural_network import MLPRegressor

seed = int(os.environ.get("MLSBENCH_SEED", 0))
rng = np.random.default_rng(seed)
train, test = np.load("train.npz"), np.load("test.npz")
noisy, clean = train["noisy"] / 255.0, train["clean"] / 255.0
test_noisy = test["noisy"] / 255.0
X, y = patches(noisy), clean.reshape(-1)
idx = rng.choice(len(X), 150_000, replace=False)
model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=15, random_state=seed)
model.fit(X[idx], y[idx])
write_submission(test["ids"], model.predict(patches(test_noisy)).reshape(test_noisy.shape))
