"""ResNeXt-50 32×4d, fetched by its constructor through torch.hub."""

from __future__ import annotations

import torch
from torch import nn

from .normalizer import Normalizer


class RGBResNext50(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(Normalizer(), torch.hub.load("pytorch/vision:v0.6.0", "resnext50_32x4d", pretrained=True))
