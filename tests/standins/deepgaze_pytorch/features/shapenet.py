"""ShapeNet-C (Geirhos et al.): a ResNet-50 whose checkpoint the constructor downloads from Bitbucket."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision
from torch import nn
from torch.utils import model_zoo

from .normalizer import Normalizer

MODEL_URLS = {
    "resnet50_trained_on_SIN_and_IN_then_finetuned_on_IN": "https://bitbucket.org/robert_geirhos/"
    "texture-vs-shape-pretrained-models/raw/60b770e128fffcbd8562a3ab3546c1a735432d03/resnet50_finetune_60_epochs_"
    "lr_decay_after_30_start_resnet50_train_45_epochs_combined_IN_SF-ca06340c.pth.tar",
}


def load_model(model_name: str) -> nn.Module:
    model = nn.Sequential(OrderedDict([("module", torchvision.models.resnet50(weights=None))]))
    checkpoint = model_zoo.load_url(MODEL_URLS[model_name], map_location=torch.device("cpu"))
    model.load_state_dict(checkpoint["state_dict"])
    return model


class RGBShapeNetC(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(Normalizer(), load_model("resnet50_trained_on_SIN_and_IN_then_finetuned_on_IN"))
