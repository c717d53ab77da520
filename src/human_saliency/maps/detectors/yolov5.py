"""Ultralytics YOLOv5s from the maintained ``ultralytics`` package: the anchor-free "YOLOv5u" head, not 2020's anchors.

ultralytics is imported on use: it writes a settings file on import, which a registry lookup should not do.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from human_saliency.errors import DataError
from human_saliency.io.weights import WeightFile, load_state
from human_saliency.maps.detectors.base import (
    MODEL_DETECTIONS_CAP,
    Detector,
    DetectorSpec,
    Frame,
    RawDetections,
    rescale,
    size_limits,
)

LICENCE = "AGPL-3.0 (ultralytics code and yolov5su.pt weights)"
COCO_WEIGHTS = WeightFile(
    url="https://github.com/ultralytics/assets/releases/download/v8.4.0/yolov5su.pt",
    filename="yolov5su.pt",
    # No SHA-256 is published for it: its first download records one in downloads.lock, which later runs verify.
    sha256=None,
    # A pickle of whole objects: fetch_weights refuses a copy that nothing verifies unless the user opts in
    # (study.trust_unverified_pickles).
    pickle=True,
)
# ultralytics' predict defaults: long side 640 (imgsz), NMS IoU 0.7, grey padding; its box cap is the one every
# family shares (MODEL_DETECTIONS_CAP, also ultralytics' default).
DEFAULT_SIZE = (640, 640)
NMS_IOU = 0.7
PAD_VALUE = 114 / 255


class YoloDetector(Detector):
    """Letterbox (resize, pad right/bottom to the stride), one forward pass, ultralytics' own NMS."""

    background = False

    def __init__(self, spec: DetectorSpec, model: nn.Module, **kwargs: Any) -> None:
        super().__init__(spec, model, **kwargs)
        self._limits = size_limits(self.min_size, DEFAULT_SIZE)
        self._stride = int(model.stride.max())

    @classmethod
    def load_coco(cls, spec: DetectorSpec, paths: Sequence[Path]) -> tuple[nn.Module, Sequence[str]]:
        """YOLOv5s built by this ultralytics version, loaded with the tensors of the model pickled in
        yolov5su.pt (no stale module objects from the release's ultralytics), and its 80 class names."""
        (path,) = paths
        # The file pickles whole Python objects, so it can only be read with weights_only=False, which runs code
        # from the file: acceptable only because fetch_weights has matched it to its downloads.lock entry, or the
        # user opted in to trusting its first download (study.trust_unverified_pickles).
        _import_ultralytics()  # unpickling imports ultralytics: do it without its side effects
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        except (pickle.UnpicklingError, ModuleNotFoundError, AttributeError, RuntimeError, EOFError) as exc:
            raise DataError(f"{path}: not a readable ultralytics checkpoint: {exc}") from None
        trained = checkpoint.get("ema") if checkpoint.get("ema") is not None else checkpoint["model"]
        model = build(len(trained.names))
        load_state(model, trained.float().state_dict(), path)
        return model, [trained.names[i] for i in range(len(trained.names))]

    def _forward(self, images: torch.Tensor) -> tuple[list[RawDetections], Frame]:
        _import_ultralytics()
        from ultralytics.utils.nms import non_max_suppression

        resized, (scale_y, scale_x) = rescale(images, self._limits)
        height, width = resized.shape[-2:]
        padded_h, padded_w = (math.ceil(side / self._stride) * self._stride for side in (height, width))
        batch = F.pad(resized, (0, padded_w - width, 0, padded_h - height), value=PAD_VALUE)
        predictions = self.model(batch)
        kept = non_max_suppression(
            predictions, conf_thres=self.score_threshold, iou_thres=NMS_IOU, max_det=MODEL_DETECTIONS_CAP
        )
        to_input = torch.tensor([scale_x, scale_y, scale_x, scale_y], device=batch.device)
        raw = [(rows[:, :4] / to_input, rows[:, 4], rows[:, 5]) for rows in kept]
        return raw, ((height, width), (padded_h, padded_w))


def _import_ultralytics() -> None:
    """Import ultralytics without its side effects on the rest of the process.

    On import it replaces ``PIL.Image.open`` with a wrapper that, on an unreadable image, pip-installs a
    HEIF plugin at run time; that would change how every stage reads (and rejects) image files. We turn
    its auto-install and network checks off and put PIL's own ``open`` back.
    """
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    pil_open = Image.open
    import ultralytics.nn.tasks
    import ultralytics.utils.nms  # noqa: F401

    Image.open = pil_open


def build(num_outputs: int) -> nn.Module:
    """YOLOv5s (ultralytics' yolov5.yaml at scale s) with random init and ``num_outputs`` classes."""
    _import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    config = dict(yaml_model_load("yolov5s.yaml"), nc=num_outputs)
    return DetectionModel(config, nc=num_outputs, verbose=False)


SPECS = (
    DetectorSpec(
        name="yolov5",
        label="YOLOv5s (ultralytics YOLOv5u, anchor-free head)",
        family="ultralytics",
        builder=build,
        # The second-to-last module, as in the study: the P5 C3 block (index 23 of 25) feeding Detect.
        cam_layer="model.23",
        licence=LICENCE,
        coco_weights=(COCO_WEIGHTS,),
    ),
)
