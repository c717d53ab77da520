"""Layers whose parameters the checkpoint names: LayerNorm, Bias, the multi-input variants, the Gaussian blur."""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm(nn.Module):
    def __init__(self, features: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.features, self.eps = features, eps
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))


class LayerNormMultiInput(nn.Module):
    def __init__(self, features: list[int]) -> None:
        super().__init__()
        self.features = features
        for k, count in enumerate(features):
            if count:
                setattr(self, f"layernorm_part{k}", LayerNorm(count))


class Conv2dMultiInput(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int, kernel_size, bias: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        for k, count in enumerate(in_channels):
            if count:
                setattr(self, f"conv_part{k}", nn.Conv2d(count, out_channels, kernel_size, bias=bias))


class Bias(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.bias = nn.Parameter(torch.zeros(channels))


class GaussianFilterNd(nn.Module):
    def __init__(self, dims: list[int], sigma: float, truncate: float = 4, trainable: bool = False) -> None:
        super().__init__()
        self.dims, self.truncate = dims, truncate
        self.sigma = nn.Parameter(torch.tensor(sigma, dtype=torch.float32), requires_grad=trainable)
