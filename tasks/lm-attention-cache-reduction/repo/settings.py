"""The visible settings: model size, context and training budget. Fixed file.

Every setting trains the GPT of gpt.py from scratch on data/train.txt (seeded by MLSBENCH_SEED)
and then decodes `val_chunks` validation sequences of `block_size` tokens through the cache.
The cache budget of a setting is 1/8 of the default (float32 multi-head) cache:
d_model * n_layer bytes per token (see kv_budget).
"""

SETTINGS = {
    "gpt-d64-l2-ctx64": dict(d_model=64, n_head=4, n_layer=2, block_size=64, batch_size=8,
                             steps=600, lr=1e-2, val_chunks=64, train_timeout_s=1200),
    "gpt-d48-l3-ctx32": dict(d_model=48, n_head=4, n_layer=3, block_size=32, batch_size=16,
                             steps=600, lr=1e-2, val_chunks=128, train_timeout_s=1200),
    # not scored: a few seconds' check that an attention module passes every harness check
    "smoke": dict(d_model=32, n_head=4, n_layer=2, block_size=32, batch_size=8,
                  steps=30, lr=1e-2, val_chunks=16, train_timeout_s=120),
}


def kv_budget(cfg: dict) -> float:
    """Bytes per token: 1/8 of the default cache, which holds 2 * d_model float32 values
    (a key and a value per head) per layer: 8 * d_model * n_layer bytes."""
    return float(cfg["d_model"] * cfg["n_layer"])
