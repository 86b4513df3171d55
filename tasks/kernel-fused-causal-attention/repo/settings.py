"""The settings visible during the episode (fixed file): input shape (B, H, T, D)."""

SETTINGS = {
    "t512-h8-d64": dict(B=1, H=8, T=512, D=64),
    "t1024-h4-d128": dict(B=1, H=4, T=1024, D=128),
    "t2048-h2-d64": dict(B=1, H=2, T=2048, D=64),
}
