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

# Each model's own cap on the boxes it keeps per image, over all its classes, before ours (max_detections, after
# mapping to the dataset's classes): the same for every family that has one, and above ours, so that ours binds.
# DETR has no such cap: it makes one box per query, 100 of them.
MODEL_DETECTIONS_CAP = 300

# Boxes, scores and class indices (the model's own numbering) of one image, boxes xyxy in input pixels.
RawDetections = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
# (rows, cols) in pixels of the model's own input: the image's (its top-left part), and the whole padded input's.
Frame = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Activations:
    """The CAM layer's output for a batch, where the forward pass left it, and where the image lies under its grid.

    ``values``: B×C×h×w on the model's device, an inference tensor (read-only outside
    ``torch.inference_mode()``). Cell (i, j) of the grid covers the model's input pixels i·s to (i+1)·s - 1
    and j·s to (j+1)·s - 1 (s the layer's stride), so the grid spans ``input_size`` = (h·s, w·s) pixels: the
    padded input, plus whatever the last cells' strided convolutions reached past it. Its top-left
    ``image_size`` (rows, cols) hold the image. Pass all three to ``human_saliency.maps.cam.eigencam``,
    which crops the map to the image's pixels.
    """

    values: torch.Tensor
    image_size: tuple[int, int]
    input_size: tuple[int, int]


@dataclass(frozen=True)
class DetectorSpec:
    """One registry entry.

    ``builder(num_outputs)`` returns the randomly initialised model with a head of that many classes,
    offline. ``cam_layer`` is the dotted path of EigenCAM's target module; ``cam_output`` the key
    to take when that module returns a dict (an FPN). ``trainable_frozen``: None if the main experiment
    cannot train this detector; else the backbone-body parameter prefixes kept frozen when it is fine-tuned
    from COCO weights (as torchvision's builders freeze them whenever they load pretrained weights).
    ``cam_stride``: the CAM layer's stride in input pixels (32 for every layer of the study, so that all its
    maps share one granularity; 8 for the compact detector's finer layer).
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
    cam_stride: int = 32


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
        max_detections: int,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.label = spec.label
        self.weights_label = weights_label
        self.model = model.eval()
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.min_size = min_size
        self._label_map = label_map
        self._captured: Any = None
        self._hooks = [model.get_submodule(spec.cam_layer).register_forward_hook(self._capture)]

    @classmethod
    @abc.abstractmethod
    def load_coco(cls, spec: DetectorSpec, paths: Sequence[Path]) -> tuple[nn.Module, Sequence[str]]:
        """The COCO-pretrained model from its fetched weight files, and its class index → COCO name list."""

    @abc.abstractmethod
    def _forward(self, images: torch.Tensor) -> tuple[list[RawDetections], Frame]:
        """Call the model once; return raw detections per image and the frame of its input: the (rows, cols)
        of the resized image and of the padded tensor the model saw, both in that input's pixels."""

    @property
    def device(self) -> torch.device:
        """The device the model's parameters live on."""
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> Detector:
        """Move the model to ``device``; returns self."""
        self.model.to(device)
        return self

    def run(self, images: torch.Tensor) -> tuple[list[dict[str, torch.Tensor]], Activations]:
        """Detect objects in ``images`` (B×3×H×W float in [0, 1] on the model's device) in one forward pass.

        Returns per image a dict of ``boxes`` (N×4 float32, xyxy input pixels), ``scores`` (N
        float32, >= score_threshold) and ``labels`` (N int64 dataset category ids), on the CPU, and the
        target layer's :class:`Activations`, left on the model's device for the CAM to be computed there.
        """
        if not self._hooks:
            raise RuntimeError(f"{self.name}: detector is closed")
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            shape = tuple(images.shape)
            raise ValueError(f"{self.name}: expected a B×3×H×W float tensor, got {shape} {images.dtype}")
        self._captured = None
        with torch.inference_mode():
            raw, (image_size, padded_size) = self._forward(images)
            captured, self._captured = self._captured, None
        if captured is None:
            raise RuntimeError(f"{self.name}: target layer {self.spec.cam_layer} did not run")
        if self.spec.cam_output is not None:
            captured = captured[self.spec.cam_output]
        stride, grid = self.spec.cam_stride, tuple(captured.shape[-2:])
        if grid != tuple(math.ceil(side / stride) for side in padded_size):
            raise RuntimeError(
                f"{self.name}: target layer {self.spec.cam_layer} gave a {grid} grid for a {tuple(padded_size)} "
                f"input, not the one a stride of {stride} gives"
            )
        height, width = images.shape[-2:]
        detections = [self._finish(*r, height=height, width=width) for r in raw]
        return detections, Activations(captured, tuple(image_size), (grid[0] * stride, grid[1] * stride))

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
        """The same post-processing for every detector: map class indices to dataset ids, drop unmapped classes
        and scores under ``score_threshold``, keep the ``max_detections`` best, clip boxes to the image."""
        boxes, scores = boxes.float().cpu(), scores.float().cpu()
        labels = self._label_map[indices.long().cpu()]
        keep = torch.nonzero((labels > 0) & (scores >= self.score_threshold)).flatten()
        keep = keep[torch.argsort(scores[keep], descending=True, stable=True)[: self.max_detections]]
        boxes = boxes[keep]
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return {"boxes": boxes, "scores": scores[keep], "labels": labels[keep]}


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
