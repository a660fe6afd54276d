"""The modern networks that are not in the paper, as config options of :func:`model.build_model`.

- ``slides``: the Keras LeNet-5 of the talk slides the project started from (PAPER.md): tanh, average
  pooling, C5 as a dense-like 5x5 convolution, a dense layer of 84, softmax over 10, cross-entropy.
- ``modern``: a LeNet-5-sized network built with what came after 1998 (3x3 convolutions, batch norm,
  ReLU, max-pooling, global average pooling, dropout), kept under LeNet-5's 60,000 trainable parameters.
- ``modern2``: a second design of the same parts, for ensembles whose members should not all make the same
  mistakes: a 5x5 first layer without padding (LeNet-5's C1 window), pooling after it, four convolutions
  instead of five, widths 24-32-48-72; 53,522 trainable parameters, 6.1 million multiply-accumulates (the
  first design's 10.8 million).

All three return penalties like the paper's networks: -log p(class), lower is better, so evaluate(),
predict() and the robustness study read every network the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import MODERN_ARCHS, ModelConfig

MODERN_WIDTHS = (20, 40, 60)  # channels of the three stages: 47,950 trainable parameters (< 60,000)
MODERN2_WIDTHS = (24, 32, 48, 72)  # modern2's four convolutions: 53,522 trainable parameters
MODERN_DROPOUT = 0.1  # before the last layer (both designs)


def _conv_bn(cin: int, cout: int, kernel: int = 3, padding: int = 1) -> nn.Sequential:
    """Convolution (no bias: batch norm has one), batch norm, ReLU; 3x3 with padding 1 keeps the spatial size."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ModernNet(nn.Module):
    """A softmax network whose ``forward`` returns penalties -log p, (N, 1, 32, 32) -> (N, 10)."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig(arch="modern")
        if self.config.arch == "slides":
            self.features = nn.Sequential(
                nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),  # (N,1,32,32) -> (N,6,28,28) -> (N,6,14,14)
                nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),  # -> (N,16,10,10) -> (N,16,5,5)
                nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),  # -> (N,120)
                nn.Linear(120, 84), nn.Tanh(),  # -> (N,84)
            )  # fmt: skip
            self.classifier = nn.Linear(84, 10)
        elif self.config.arch == "modern":
            a, b, c = MODERN_WIDTHS
            self.features = nn.Sequential(
                _conv_bn(1, a), _conv_bn(a, a), nn.MaxPool2d(2),  # (N,1,32,32) -> (N,a,16,16)
                _conv_bn(a, b), _conv_bn(b, b), nn.MaxPool2d(2),  # -> (N,b,8,8)
                _conv_bn(b, c), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # -> (N,c)
                nn.Dropout(MODERN_DROPOUT),
            )  # fmt: skip
            self.classifier = nn.Linear(c, 10)
        elif self.config.arch == "modern2":
            a, b, c, d = MODERN2_WIDTHS
            self.features = nn.Sequential(
                _conv_bn(1, a, 5, 0), nn.MaxPool2d(2),  # (N,1,32,32) -> (N,a,28,28) -> (N,a,14,14)
                _conv_bn(a, b), _conv_bn(b, c), nn.MaxPool2d(2),  # -> (N,c,7,7)
                _conv_bn(c, d), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # -> (N,d)
                nn.Dropout(MODERN_DROPOUT),
            )  # fmt: skip
            self.classifier = nn.Linear(d, 10)
        else:
            raise ValueError(f"arch {self.config.arch!r} is not a modern network {MODERN_ARCHS}")
        self.classes = 10

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (N, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -F.log_softmax(self.logits(x), dim=1)  # (N, 10) penalties = -log p

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmin(1)
