"""DenseNet-201, fetched by its constructor through torch.hub."""

from __future__ import annotations

import torch
from torch import nn

from .normalizer import Normalizer


class RGBDenseNet201(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(Normalizer(), torch.hub.load("pytorch/vision:v0.6.0", "densenet201", pretrained=True))
