"""The settings visible during the episode (fixed file)."""

SETTINGS = {
    # label: target model (arch, dataset), L-inf radius, query budget per sample, attacked samples
    "mlp-digits": dict(arch="mlp", dataset="digits", eps=0.15, budget=50, n=100),
    "cnn-fmnist": dict(arch="cnn", dataset="fmnist", eps=0.10, budget=300, n=100),
    "mlp-fmnist": dict(arch="mlp", dataset="fmnist", eps=0.08, budget=500, n=100),
}
