"""Architecture of the hidden setting: a LeNet-5-style network (tanh, average pooling)."""
import torch.nn as nn


class LeNet(nn.Module):
    def __init__(self, side: int, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        )
        s = (side // 2 - 4) // 2
        self.head = nn.Sequential(nn.Linear(16 * s * s, 64), nn.Tanh(), nn.Linear(64, n_classes))

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def build(side: int) -> nn.Module:
    return LeNet(side)
