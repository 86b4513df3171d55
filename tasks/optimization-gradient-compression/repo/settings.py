"""The visible settings (fixed). A setting may also be given as a JSON file (run.py --spec)."""

SETTINGS = {
    "digits-mlp-k4-r32": dict(dataset="digits", model="mlp", hidden=[128], workers=4, ratio=32,
                              steps=100, batch=16, lr=0.05, momentum=0.9),
    "fashion14-mlp-k4-r48": dict(dataset="fashion14", model="mlp", hidden=[64], workers=4,
                                 ratio=48, steps=300, batch=32, lr=0.05, momentum=0.9),
}
