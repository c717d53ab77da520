"""0-255 pixels → ImageNet-normalised input; its constants are not in the checkpoint (non-persistent)."""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1), persistent=False)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor / 255.0 - self.mean) / self.std
