"""The hidden setting: a degree-corrected three-class cSBM (dcsbm.py)."""

from dcsbm import dcsbm

SETTINGS = {
    # heterophilous (edge homophily ~0.10), power-law degrees, three classes
    "dcsbm-3class-heterophilous": (dcsbm, dict(n=4000, p=64, d=10, phi=-0.5, eps=1.5,
                                               num_classes=3, degree_exponent=2.5,
                                               train_frac=0.3, val_frac=0.2)),
}
