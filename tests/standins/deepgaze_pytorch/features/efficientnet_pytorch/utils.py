"""The weight download that ``EfficientNet.from_pretrained`` makes."""

from __future__ import annotations

from torch import nn
from torch.utils import model_zoo

URL_MAP = {
    "efficientnet-b5": "https://github.com/lukemelas/EfficientNet-PyTorch/releases/download/1.0/efficientnet-b5-b6417697.pth",
}


def load_pretrained_weights(model: nn.Module, model_name: str, load_fc: bool = True, advprop: bool = False) -> None:
    model.load_state_dict(model_zoo.load_url(URL_MAP[model_name]), strict=False)
