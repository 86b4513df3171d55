"""Random affine distortions of 8x8 digits (Simard, Steinkraus & Platt, ICDAR 2003): each image
is upsampled 4x, rotated by up to +-0.2 rad, sheared by up to +-0.5, moved by up to one pixel
and block-averaged back to 8x8."""

import numpy as np
from scipy.ndimage import affine_transform, zoom

UP = 4


def distort(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    big = zoom(img, UP, order=1)
    shear, theta = rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.2)
    dy, dx = rng.integers(-UP, UP + 1, size=2)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    m = np.array([[1.0, 0.0], [shear, 1.0]]) @ rot
    c = np.full(2, (big.shape[0] - 1) / 2.0)
    out = affine_transform(big, m, offset=c - m @ c - np.array([dy, dx]), order=1)
    return out.reshape(8, UP, 8, UP).mean(axis=(1, 3))


def augment(X: np.ndarray, y: np.ndarray, copies: int, rng: np.random.Generator):
    """X (n, 64) in [0, 1] plus `copies` distorted copies of every image, with their labels."""
    images = X.reshape(-1, 8, 8)
    extra = [np.array([distort(i, rng) for i in images]).reshape(len(X), 64) for _ in range(copies)]
    return np.vstack([X, *extra]), np.tile(y, copies + 1)
