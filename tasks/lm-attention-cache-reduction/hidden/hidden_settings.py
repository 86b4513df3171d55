"""Hidden setting: more, narrower heads (8 heads of dimension 8). Copied in at the final
evaluation only."""

SETTINGS = {
    "gpt-d64-h8-l2-ctx64": dict(d_model=64, n_head=8, n_layer=2, block_size=64, batch_size=8,
                                steps=600, lr=1e-2, val_chunks=64, train_timeout_s=1200),
}
