"""Build the image files the task ships (run once by hand; its outputs are committed).

Sources (all installed packages, nothing downloads):
  repo/data/china.npy, repo/data/flower.npy   scikit-learn's bundled sample images
      (sklearn/datasets/images/{china,flower}.jpg, CC BY 2.0, see that folder's README.txt)
  hidden/hopper.npy                            matplotlib's sample image of Grace Hopper
      (matplotlib/mpl-data/sample_data/grace_hopper.jpg)
Each is decoded with Pillow and reduced 2x by 2x2 box averaging (uint8 RGB, H x W x 3).
Deterministic: the same package files give the same arrays.

    python prepare_images.py
"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def half(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    a = a[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def main() -> None:
    import matplotlib
    import sklearn

    sk = Path(sklearn.__file__).parent / "datasets" / "images"
    mpl = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
    for name in ("china", "flower"):
        np.save(
            HERE / "repo" / "data" / f"{name}.npy", half(sk / f"{name}.jpg"), allow_pickle=False
        )
    np.save(HERE / "hidden" / "hopper.npy", half(mpl / "grace_hopper.jpg"), allow_pickle=False)


if __name__ == "__main__":
    main()
