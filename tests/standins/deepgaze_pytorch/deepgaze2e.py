"""DeepGaze IIE: ten cross-validation readouts × three instances over each of four backbones, mixed."""

from __future__ import annotations

import importlib
from collections import OrderedDict

import torch
from torch import nn
from torch.utils import model_zoo

from .layers import Bias, Conv2dMultiInput, LayerNorm, LayerNormMultiInput
from .modules import DeepGazeIIIMixture, FeatureExtractor, Finalizer, MixtureModel

WEIGHTS_URL = "https://github.com/matthias-k/DeepGaze/releases/download/v1.0.0/deepgaze2e.pth"

BACKBONES = [
    {
        "type": "deepgaze_pytorch.features.shapenet.RGBShapeNetC",
        "used_features": [
            "1.module.layer3.0.conv2",
            "1.module.layer3.3.conv2",
            "1.module.layer3.5.conv1",
            "1.module.layer3.5.conv2",
            "1.module.layer4.1.conv2",
            "1.module.layer4.2.conv2",
        ],
        "channels": 2048,
    },
    {
        "type": "deepgaze_pytorch.features.efficientnet.RGBEfficientNetB5",
        "used_features": ["1._blocks.24._depthwise_conv", "1._blocks.26._depthwise_conv", "1._blocks.35._project_conv"],
        "channels": 2416,
    },
    {
        "type": "deepgaze_pytorch.features.densenet.RGBDenseNet201",
        "used_features": [
            "1.features.denseblock4.denselayer32.norm1",
            "1.features.denseblock4.denselayer32.conv1",
            "1.features.denseblock4.denselayer31.conv2",
        ],
        "channels": 2048,
    },
    {
        "type": "deepgaze_pytorch.features.resnext.RGBResNext50",
        "used_features": ["1.layer3.5.conv1", "1.layer3.5.conv2", "1.layer3.4.conv2", "1.layer4.2.conv2"],
        "channels": 2560,
    },
]


def _readout(channels: int) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    for k, (c_in, c_out) in enumerate([(channels, 8), (8, 16), (16, 1)]):
        layers += [(f"layernorm{k}", LayerNorm(c_in)), (f"conv{k}", nn.Conv2d(c_in, c_out, 1, bias=False))]
        layers += [(f"bias{k}", Bias(c_out)), (f"softplus{k if k < 2 else 3}", nn.Softplus())]
    return nn.Sequential(OrderedDict(layers))


def _fixation_selection() -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                ("layernorm0", LayerNormMultiInput([1, 0])),
                ("conv0", Conv2dMultiInput([1, 0], 128, (1, 1), bias=False)),
                ("bias0", Bias(128)),
                ("softplus0", nn.Softplus()),
                ("layernorm1", LayerNorm(128)),
                ("conv1", nn.Conv2d(128, 16, (1, 1), bias=False)),
                ("bias1", Bias(16)),
                ("softplus1", nn.Softplus()),
                ("conv2", nn.Conv2d(16, 1, (1, 1), bias=False)),
            ]
        )
    )


def _mixture(config: dict, components: int) -> DeepGazeIIIMixture:
    module_name, class_name = config["type"].rsplit(".", 1)
    features = getattr(importlib.import_module(module_name), class_name)()
    return DeepGazeIIIMixture(
        features=FeatureExtractor(features, config["used_features"]),
        saliency_networks=[_readout(config["channels"]) for _ in range(components)],
        scanpath_networks=[None] * components,
        fixation_selection_networks=[_fixation_selection() for _ in range(components)],
        finalizers=[Finalizer(sigma=8.0) for _ in range(components)],
    )


class DeepGazeIIE(MixtureModel):
    """Four backbone mixtures of 3 × 10 readouts each; ``pretrained`` loads deepgaze2e.pth over every weight."""

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__([_mixture(config, components=3 * 10) for config in BACKBONES])
        if pretrained:
            self.load_state_dict(model_zoo.load_url(WEIGHTS_URL, map_location=torch.device("cpu")))
