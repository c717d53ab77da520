"""The mixture's building blocks, with the real package's attribute names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GaussianFilterNd


class FeatureExtractor(nn.Module):
    """Runs ``features`` and returns the outputs of the ``targets`` modules (forward hooks)."""

    def __init__(self, features: nn.Module, targets: list[str]) -> None:
        super().__init__()
        self.features = features
        self.targets = targets
        self.outputs: dict[str, torch.Tensor] = {}
        modules = dict(features.named_modules())
        for target in targets:
            modules[target].register_forward_hook(self._saver(target))

    def _saver(self, target: str):
        def save(module, inputs, output) -> None:
            self.outputs[target] = output.clone()

        return save

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.outputs.clear()
        self.features(x)
        return [self.outputs[target] for target in self.targets]


class Finalizer(nn.Module):
    """Holds the learned blur and centre-bias weight of one readout."""

    def __init__(self, sigma: float, saliency_map_factor: int = 2) -> None:
        super().__init__()
        self.saliency_map_factor = saliency_map_factor
        self.gauss = GaussianFilterNd([2, 3], sigma, truncate=3, trainable=True)
        self.center_bias_weight = nn.Parameter(torch.Tensor([1.0]))


class DeepGazeIIIMixture(nn.Module):
    """One backbone's readouts. Simplified forward: the channel mean of its used features plus the centre bias."""

    def __init__(self, features, saliency_networks, scanpath_networks, fixation_selection_networks, finalizers):
        super().__init__()
        self.downsample = 2
        self.features = features
        for param in self.features.parameters():
            param.requires_grad = False
        self.saliency_networks = nn.ModuleList(saliency_networks)
        self.scanpath_networks = nn.ModuleList(scanpath_networks)
        self.fixation_selection_networks = nn.ModuleList(fixation_selection_networks)
        self.finalizers = nn.ModuleList(finalizers)

    def forward(self, x: torch.Tensor, centerbias: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = F.interpolate(x, scale_factor=1 / self.downsample, recompute_scale_factor=False)
        maps = [F.interpolate(f.mean(dim=1, keepdim=True), (height, width), mode="bilinear") for f in self.features(x)]
        logits = torch.stack(maps).mean(dim=0)[:, 0] * self.finalizers[0].center_bias_weight + centerbias
        return (logits - logits.logsumexp(dim=(1, 2), keepdim=True))[:, None]


class MixtureModel(nn.Module):
    """The mean density of its models, as a log density."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        predictions = torch.cat([model(*args, **kwargs) for model in self.models], dim=1)
        return predictions.logsumexp(dim=1, keepdim=True) - torch.log(torch.tensor(float(len(self.models))))
