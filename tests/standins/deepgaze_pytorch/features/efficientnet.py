"""EfficientNet-B5 (the package's own copy of efficientnet_pytorch), whose weights come from a GitHub release."""

from __future__ import annotations

from torch import nn

from .efficientnet_pytorch import EfficientNet
from .normalizer import Normalizer


class RGBEfficientNetB5(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(Normalizer(), EfficientNet.from_pretrained("efficientnet-b5"))
