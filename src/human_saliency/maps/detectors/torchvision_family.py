"""torchvision's detectors (Faster/Mask R-CNN, RetinaNet, SSD, SSDlite): built offline; COCO weights from its zoo."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import detection as tvd
from torchvision.ops import FrozenBatchNorm2d

from human_saliency.io.weights import WeightFile, load_state, load_tensors
from human_saliency.maps.detectors.base import MODEL_DETECTIONS_CAP, Detector, DetectorSpec, Frame, RawDetections

LICENCE = "BSD-3-Clause (torchvision code and model-zoo weights)"
# Every torchvision COCO detection checkpoint shares this 91-entry index → name list ("N/A" = unused id).
COCO_CATEGORIES: tuple[str, ...] = tuple(tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])
# Whenever torchvision loads pretrained weights into these, it builds the backbone with
# FrozenBatchNorm2d instead of BatchNorm2d (its constructors: `FrozenBatchNorm2d if is_trained`).
# Same outputs in eval mode, but fine-tuning the COCO model (batch 4) must keep those statistics frozen.
_FROZEN_BN_WHEN_PRETRAINED = frozenset({"fasterrcnn_r50", "maskrcnn_r50", "retinanet_r50", "fasterrcnn_mobilenet"})
# torchvision names each weight file "<name>-<first hex digits of its SHA-256>.pth" and checks that prefix.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")


def coco_weight_file(url: str) -> WeightFile:
    """The weight file at a torchvision-style ``url``, pinned by the SHA-256 prefix in its name."""
    filename = url.rsplit("/", 1)[-1]
    match = _HASH_IN_NAME.search(filename)
    if match is None:
        raise ValueError(f"{url}: file name carries no SHA-256 prefix ('-<hex>.pth')")
    return WeightFile(url=url, filename=filename, sha256=match.group(1))


class TorchvisionDetector(Detector):
    """torchvision detection models in eval mode: they resize, pad and post-process internally."""

    background = True

    def __init__(self, spec: DetectorSpec, model: nn.Module, **kwargs: Any) -> None:
        super().__init__(spec, model, **kwargs)
        transform = model.transform
        # SSD and SSDlite resize to a fixed 300/320 square by design; min_size applies to the others.
        if self.min_size is not None and transform.fixed_size is None:
            transform.min_size = (self.min_size,)
            transform.max_size = max(transform.max_size, self.min_size)
        # The model's own score cut and cap must not drop boxes that ours would keep (R-CNNs: 100, RetinaNet:
        # 300, SSD: 200 by default): one cap for every family.
        heads = model.roi_heads if hasattr(model, "roi_heads") else model
        heads.score_thresh = self.score_threshold
        heads.detections_per_img = MODEL_DETECTIONS_CAP
        if hasattr(model, "roi_heads") and model.roi_heads.has_mask():
            # The study uses Mask R-CNN's boxes and backbone activations, never its masks. Predicting and
            # pasting up to 100 masks per image dominated its run time; the boxes and activations do not
            # depend on the mask branch, so it is switched off for inference (weights are loaded already).
            model.roi_heads.mask_roi_pool = model.roi_heads.mask_head = model.roi_heads.mask_predictor = None
        # Channels-last (NHWC) convolutions, measured on this project's 2-core CPU at 160 px: SSD300 VGG16 23 %,
        # the R50-FPNs 10 % faster; the same maps up to float round-off.
        model.to(memory_format=torch.channels_last)
        self._sizes: Frame | None = None
        self._hooks.append(transform.register_forward_hook(self._capture_sizes))

    @classmethod
    def load_coco(cls, spec: DetectorSpec, paths: Sequence[Path]) -> tuple[nn.Module, Sequence[str]]:
        """Build the architecture offline and load the zoo's state dict (a plain tensor dict: weights_only)."""
        (path,) = paths
        state = load_tensors(path)
        model = spec.builder(len(COCO_CATEGORIES))
        if spec.name in _FROZEN_BN_WHEN_PRETRAINED:
            _freeze_batchnorm(model)
        load_state(model, state, path)
        return model, COCO_CATEGORIES

    def _capture_sizes(self, module: nn.Module, inputs: Any, output: Any) -> None:
        image_list = output[0]
        self._sizes = (tuple(image_list.image_sizes[0]), tuple(image_list.tensors.shape[-2:]))

    def _forward(self, images: torch.Tensor) -> tuple[list[RawDetections], Frame]:
        outputs = self.model(list(images))
        raw = [(out["boxes"], out["scores"], out["labels"]) for out in outputs]
        return raw, self._sizes  # the transform resized, then padded to a multiple of 32


def _freeze_batchnorm(module: nn.Module) -> None:
    """Swap every BatchNorm2d for torchvision's FrozenBatchNorm2d (its default eps, 1e-5), in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features))
        else:
            _freeze_batchnorm(child)


def _build(constructor: Any, num_outputs: int) -> nn.Module:
    """Random init, no download: neither detection nor ImageNet backbone weights."""
    return constructor(weights=None, weights_backbone=None, num_classes=num_outputs)


def _spec(
    name: str,
    label: str,
    constructor: Any,
    weights: Any,
    cam_layer: str,
    cam_output: str | None = None,
    trainable_frozen: tuple[str, ...] | None = None,
):
    return DetectorSpec(
        name=name,
        label=label,
        family="torchvision",
        builder=partial(_build, constructor),
        cam_layer=cam_layer,
        cam_output=cam_output,
        trainable_frozen=trainable_frozen,
        licence=LICENCE,
        coco_weights=(coco_weight_file(weights.url),),
    )


SPECS = (
    _spec(
        "fasterrcnn_r50",
        "Faster R-CNN R50-FPN",
        tvd.fasterrcnn_resnet50_fpn,
        tvd.FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
        "backbone.body.layer4",
        trainable_frozen=("conv1.", "layer1."),  # R50: conv1 and layer1 (trainable_backbone_layers=3)
    ),
    _spec(
        "ssd_vgg16",
        "SSD300 VGG16",
        tvd.ssd300_vgg16,
        tvd.SSD300_VGG16_Weights.COCO_V1,
        "backbone.extra.1",
    ),
    _spec(
        "ssdlite_mobilenet",
        "SSDlite320 MobileNetV3-L",
        tvd.ssdlite320_mobilenet_v3_large,
        tvd.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1,
        # The last block of the MobileNetV3 trunk (960 channels, stride 32); the SSD "extra" blocks
        # after it shrink to 1×1 at 320 px, too coarse for a map.
        "backbone.features.1",
    ),
    _spec(
        "maskrcnn_r50",
        "Mask R-CNN R50-FPN",
        tvd.maskrcnn_resnet50_fpn,
        tvd.MaskRCNN_ResNet50_FPN_Weights.COCO_V1,
        "backbone.body.layer4",
    ),
    _spec(
        "retinanet_r50",
        "RetinaNet R50-FPN",
        tvd.retinanet_resnet50_fpn,
        tvd.RetinaNet_ResNet50_FPN_Weights.COCO_V1,
        # FPN level '2' = P5 (stride 32): the same grid as the R-CNNs' layer4 and the other families'
        # C5-level layers, so all maps share one granularity. RetinaNet has no 'pool' level.
        "backbone.fpn",
        cam_output="2",
    ),
    _spec(
        "fasterrcnn_mobilenet",
        "Faster R-CNN MobileNetV3-L 320-FPN",
        tvd.fasterrcnn_mobilenet_v3_large_320_fpn,
        tvd.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1,
        # This backbone has no layer4: its last trunk block (960 channels, stride 32) plays that part.
        "backbone.body.16",
        # MobileNetV3's stages start at trunk blocks 0, 2, 4, 7, 13, 16: 3 trainable stages of 6 leave 0-6 frozen.
        trainable_frozen=tuple(f"{block}." for block in range(7)),
    ),
)
