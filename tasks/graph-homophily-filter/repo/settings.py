"""The visible settings: cSBM graphs (csbm.py) spanning homophily and size.

phi sets homophily (-1 heterophilous ... +1 homophilous), eps the total signal above the
detectability threshold; 30% / 20% / 50% train / validation / test nodes.
"""

from csbm import csbm

SPLIT = {"train_frac": 0.3, "val_frac": 0.2}

SETTINGS = {
    # strongly heterophilous (edge homophily ~0.18): the graph carries most of the signal
    "csbm-heterophilous": (csbm, dict(n=3000, p=64, d=5, phi=-0.75, eps=1.5, **SPLIT)),
    # weakly heterophilous (edge homophily ~0.37): features and graph both informative
    "csbm-mixed": (csbm, dict(n=3000, p=64, d=5, phi=-0.25, eps=3.25, **SPLIT)),
    # strongly homophilous (edge homophily ~0.83), larger graph
    "csbm-homophilous-large": (csbm, dict(n=8000, p=64, d=5, phi=0.75, eps=1.5, **SPLIT)),
}
