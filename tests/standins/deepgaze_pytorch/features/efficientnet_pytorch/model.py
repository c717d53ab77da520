"""EfficientNet-B5 with the parameter names of efficientnet_pytorch (lukemelas), which DeepGaze vendors.

Same blocks and channel counts (width 1.6, depth 2.2), hence the same state-dict keys and shapes; TensorFlow's
"same" padding is approximated by symmetric padding, which changes no parameter.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from .utils import load_pretrained_weights

# (repeats, kernel, stride, expand ratio, in, out) of EfficientNet-B0; SE ratio 0.25 throughout.
_B0_BLOCKS = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
              (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]  # fmt: skip
_SCALING = {"efficientnet-b5": (1.6, 2.2)}
_BN = {"momentum": 0.01, "eps": 1e-3}


def _filters(filters: int, width: float, divisor: int = 8) -> int:
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=bias)


class MBConvBlock(nn.Module):
    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand, self.skip = expand, stride == 1 and c_in == c_out
        if expand != 1:
            self._expand_conv = _conv(c_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        squeezed = max(1, int(c_in * 0.25))
        self._se_reduce = _conv(mid, squeezed, 1, bias=True)
        self._se_expand = _conv(squeezed, mid, 1, bias=True)
        self._project_conv = _conv(mid, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)

    def forward(self, inputs):
        x = F.silu(self._bn0(self._expand_conv(inputs))) if self.expand != 1 else inputs
        x = F.silu(self._bn1(self._depthwise_conv(x)))
        x = x * self._se_expand(F.silu(self._se_reduce(F.adaptive_avg_pool2d(x, 1)))).sigmoid()
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.skip else x


class EfficientNet(nn.Module):
    def __init__(self, width: float, depth: float, num_classes: int = 1000) -> None:
        super().__init__()
        stem = _filters(32, width)
        self._conv_stem = _conv(3, stem, 3, 2)
        self._bn0 = nn.BatchNorm2d(stem, **_BN)
        self._blocks = nn.ModuleList()
        for repeats, kernel, stride, expand, c_in, c_out in _B0_BLOCKS:
            c_in, c_out = _filters(c_in, width), _filters(c_out, width)
            for k in range(int(math.ceil(depth * repeats))):
                block = MBConvBlock(kernel, stride if k == 0 else 1, expand, c_in if k == 0 else c_out, c_out)
                self._blocks.append(block)
        head = _filters(1280, width)
        self._conv_head = _conv(c_out, head, 1)
        self._bn1 = nn.BatchNorm2d(head, **_BN)
        self._fc = nn.Linear(head, num_classes)

    def forward(self, x):
        x = F.silu(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.silu(self._bn1(self._conv_head(x)))
        return self._fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    @classmethod
    def from_name(cls, model_name: str, override_params: dict | None = None) -> EfficientNet:
        return cls(*_SCALING[model_name], **(override_params or {}))

    @classmethod
    def from_pretrained(cls, model_name: str, advprop: bool = False, num_classes: int = 1000) -> EfficientNet:
        model = cls.from_name(model_name, override_params={"num_classes": num_classes})
        load_pretrained_weights(model, model_name, load_fc=num_classes == 1000, advprop=advprop)
        return model
