"""What every detector family shares: the registry entry, and one forward pass giving detections + CAM activations."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from human_saliency.io.weights import WeightFile

# Boxes, scores and class indices (the model's own numbering) of one image, boxes xyxy in input pixels.
RawDetections = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DetectorSpec:
    """One registry entry.

    ``builder(num_outputs)`` returns the randomly initialised model with a head of that many classes,
    offline. ``cam_layer`` is the dotted path of EigenCAM's target module; ``cam_output`` the key
    to take when that module returns a dict (an FPN). ``trainable_frozen``: None if the main experiment
    cannot train this detector; else the backbone-body parameter prefixes kept frozen when it is fine-tuned
    from COCO weights (as torchvision's builders freeze them whenever they load pretrained weights).
    """

    name: str
    label: str
    family: str
    builder: Callable[[int], nn.Module]
    cam_layer: str
    licence: str
    coco_weights: tuple[WeightFile, ...]
    cam_output: str | None = None
    trainable_frozen: tuple[str, ...] | None = None


class Detector(abc.ABC):
    """A built detector whose :meth:`run` gives detections and the CAM layer's activations from ONE forward pass.

    The study's code ran every image twice (once to predict, once inside the CAM object); here a
    forward hook on the target layer captures its activations during the prediction pass itself.
    Use it as a context manager (or call :meth:`close`) to remove the hooks.
    """

    background: ClassVar[bool]  # whether the family's class index 0 is a background class

    def __init__(
        self,
        spec: DetectorSpec,
        model: nn.Module,
        *,
        weights_label: str,
        label_map: torch.Tensor,
        min_size: int | None,
        score_threshold: float,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.label = spec.label
        self.weights_label = weights_label
        self.model = model.eval()
        self.score_threshold = score_threshold
        self.min_size = min_size
        self._label_map = label_map
        self._captured: Any = None
        self._hooks = [model.get_submodule(spec.cam_layer).register_forward_hook(self._capture)]

    @classmethod
    @abc.abstractmethod
    def load_coco(cls, spec: DetectorSpec, paths: Sequence[Path]) -> tuple[nn.Module, Sequence[str]]:
        """The COCO-pretrained model from its fetched weight files, and its class index → COCO name list."""

    @abc.abstractmethod
    def _forward(self, images: torch.Tensor) -> tuple[list[RawDetections], tuple[float, float]]:
        """Call the model once; return raw detections per image and the (rows, cols) fraction of the
        target layer's grid that covers the image rather than padding."""

    @property
    def device(self) -> torch.device:
        """The device the model's parameters live on."""
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> Detector:
        """Move the model to ``device``; returns self."""
        self.model.to(device)
        return self

    def run(self, images: torch.Tensor) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
        """Detect objects in ``images`` (B×3×H×W float in [0, 1] on the model's device) in one forward pass.

        Returns per image a dict of ``boxes`` (N×4 float32, xyxy input pixels), ``scores`` (N
        float32, >= score_threshold) and ``labels`` (N int64 dataset category ids), and the target
        layer's activations (B×C×h×w float32) cropped to the region that covers the image. All on the CPU.
        """
        if not self._hooks:
            raise RuntimeError(f"{self.name}: detector is closed")
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            shape = tuple(images.shape)
            raise ValueError(f"{self.name}: expected a B×3×H×W float tensor, got {shape} {images.dtype}")
        self._captured = None
        with torch.inference_mode():
            raw, valid = self._forward(images)
            captured, self._captured = self._captured, None
        if captured is None:
            raise RuntimeError(f"{self.name}: target layer {self.spec.cam_layer} did not run")
        if self.spec.cam_output is not None:
            captured = captured[self.spec.cam_output]
        height, width = images.shape[-2:]
        detections = [self._finish(*r, height=height, width=width) for r in raw]
        # A copy made outside inference mode: callers may modify it or use it with autograd.
        return detections, crop_to_valid(captured, valid).to("cpu", torch.float32, copy=True)

    def close(self) -> None:
        """Remove the forward hooks; the detector cannot run afterwards."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _capture(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self._captured = output

    def _finish(
        self, boxes: torch.Tensor, scores: torch.Tensor, indices: torch.Tensor, *, height: int, width: int
    ) -> dict[str, torch.Tensor]:
        """Map class indices to dataset ids, drop unmapped classes and low scores, clip boxes to the image."""
        boxes, scores = boxes.float().cpu(), scores.float().cpu()
        labels = self._label_map[indices.long().cpu()]
        keep = (labels > 0) & (scores >= self.score_threshold)
        boxes = boxes[keep]
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return {"boxes": boxes, "scores": scores[keep], "labels": labels[keep]}


def crop_to_valid(activations: torch.Tensor, valid: tuple[float, float]) -> torch.Tensor:
    """Keep the top-left cells of a B×C×h×w grid that cover the image: ``valid`` fractions, rounded up
    so that a cell holding any image pixel is kept."""
    rows = math.ceil(round(valid[0] * activations.shape[-2], 6))
    cols = math.ceil(round(valid[1] * activations.shape[-1], 6))
    return activations[..., :rows, :cols]


def size_limits(min_size: int | None, default: tuple[int, int]) -> tuple[int, int]:
    """(short-side target, long-side cap): the library's ``default`` unless ``min_size`` replaces the
    target, the cap then raised to at least ``min_size``."""
    if min_size is None:
        return default
    return min_size, max(default[1], min_size)


def rescale(images: torch.Tensor, limits: tuple[int, int]) -> tuple[torch.Tensor, tuple[float, float]]:
    """Resize so the short side is ``limits[0]`` unless the long side would pass ``limits[1]`` (the rule
    torchvision's and Hugging Face's detection transforms use); returns the images and (y, x) scale."""
    height, width = images.shape[-2:]
    scale = min(limits[0] / min(height, width), limits[1] / max(height, width))
    size = (round(height * scale), round(width * scale))
    if size == (height, width):
        return images, (1.0, 1.0)
    resized = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    return resized, (size[0] / height, size[1] / width)
