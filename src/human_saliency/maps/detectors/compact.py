"""A compact Faster R-CNN that learns the embedded data from scratch on one CPU thread in about half a minute.

torchvision's ``FasterRCNN`` with a 4-stage backbone (one 3×3 stride-2 conv + BN + ReLU per stage), one
anchor set matched to the embedded objects, a small RPN budget and box head, and a separable aligned RoI
pool (:func:`separable_roi_align`): the same numbers as ``torchvision.ops.roi_align`` at a fraction of its
CPU cost, whose backward pass is a scalar loop there. What mattered for learning, measured before this
was written: optimiser steps per second (small backbone, box head and batches), Adam over SGD at equal
time, and anchors that match the objects (about 16–72 px at 160 px; torchvision's default is 32–512).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from human_saliency.maps.detectors.base import DetectorSpec

CHANNELS = (8, 16, 32, 48)  # per stage; each halves the resolution: stride 16 after the fourth
ANCHOR_SIZES = (20, 40, 80)  # pixels at the 160-px working size
ASPECT_RATIOS = (0.5, 1.0, 2.0)
POOL = 5  # RoI pool output side
HIDDEN = 128  # box head width (torchvision's MobileNet model: 1024, most of its 18 M parameters)
SAMPLING_RATIO = 2  # bilinear samples per RoI bin side, as torchvision's MultiScaleRoIAlign
PROPOSALS = {"pre_nms": 300, "post_nms": 100}  # per image, training and inference alike
WORKING_SIZE = 160
# EigenCAM's layer: stage 3 (stride 8, 20×20 at 160 px), fine enough to tell a cue in a box's corner
# from the object; stage 4 (stride 16, the detector's feature map) gives 10×10.
CAM_LAYER = "backbone.body.2"


class CompactBackbone(nn.Module):
    """Four conv stages; ``body`` is an nn.Sequential, so stage k's output is ``body.<k-1>``."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        stages, previous = [], 3
        for width in channels:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                )
            )
            previous = width
        self.body = nn.Sequential(*stages)
        self.out_channels = channels[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


def _bin_weights(start: torch.Tensor, length: torch.Tensor, bins: int, size: int, grid: int) -> torch.Tensor:
    """K×bins×size: the average, over ``grid`` samples per bin, of each sample's 1-D bilinear weights.

    Follows ``roi_align``'s ``bilinear_interpolate`` exactly: a sample outside [-1, size] weighs nothing;
    one in [-1, 0] is read at 0; one at or past size - 1 is read at size - 1.
    """
    step = (length / bins)[:, None, None]
    offsets = torch.arange(bins, dtype=start.dtype, device=start.device)[None, :, None]
    within = (torch.arange(grid, dtype=start.dtype, device=start.device) + 0.5)[None, None, :] / grid
    samples = start[:, None, None] + (offsets + within) * step  # K×bins×grid
    valid = ((samples >= -1) & (samples <= size)).to(start.dtype)
    clamped = samples.clamp(min=0)
    low = clamped.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(clamped), clamped - low.to(start.dtype))
    weights = torch.zeros(*samples.shape[:2], size, dtype=start.dtype, device=start.device)
    weights.scatter_add_(2, low, (1 - frac) * valid)
    weights.scatter_add_(2, high, frac * valid)
    return weights / grid


def separable_roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = True,
) -> torch.Tensor:
    """``torchvision.ops.roi_align`` (fixed ``sampling_ratio`` > 0) as two small matrix products per RoI.

    roi_align averages bilinear samples on a grid in each bin; a bilinear weight is a product of a row
    and a column weight, so the average is Wy · F · Wxᵀ with Wy (bins × H) and Wx (bins × W) built from
    the RoI alone. ``rois``: K×5 (batch index, x1, y1, x2, y2) in input pixels. Returns K×C×out×out.
    """
    if sampling_ratio < 1:
        raise ValueError(
            f"sampling_ratio must be >= 1 (the adaptive grid is not separable per RoI), got {sampling_ratio}"
        )
    rois = rois.detach().to(features.dtype)
    _, _, height, width = features.shape
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # the legacy mode forces malformed RoIs to be 1×1
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    wy = _bin_weights(y1, roi_h, output_size, height, sampling_ratio)  # K×P×H
    wx = _bin_weights(x1, roi_w, output_size, width, sampling_ratio)  # K×Q×W
    batch = rois[:, 0].long()
    channels = features.shape[1]
    parts, order = [], []
    for b in batch.unique().tolist():
        k = (batch == b).nonzero().squeeze(1)
        n = len(k)
        # Rows of all this image's RoIs in one GEMM: (n·P × H) @ (H × C·W), then columns in one batched
        # product: (n × P·C × W) @ (n × W × Q). Both are views of each other's outputs, no copies between.
        rows = wy[k].reshape(n * output_size, height) @ features[b].transpose(0, 1).reshape(height, channels * width)
        pooled = rows.reshape(n, output_size * channels, width) @ wx[k].transpose(1, 2)
        parts.append(pooled.reshape(n, output_size, channels, output_size).transpose(1, 2))
        order.append(k)
    out = torch.cat(parts)
    order = torch.cat(order)
    if not bool((order[1:] > order[:-1]).all()):  # RoIs not grouped by image: put them back in input order
        out = out[torch.argsort(order)]
    return out.contiguous()


class SeparableRoIAlign(MultiScaleRoIAlign):
    """``MultiScaleRoIAlign`` over one feature map with :func:`separable_roi_align` inside, aligned (half-pixel
    corrected, ``aligned=True``) where torchvision's uses the legacy ``aligned=False``."""

    def __init__(self, featmap: str = "0", output_size: int = POOL, sampling_ratio: int = SAMPLING_RATIO) -> None:
        super().__init__([featmap], output_size, sampling_ratio)

    def forward(
        self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor], image_shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        feature = x[self.featmap_names[0]]
        # MultiScaleRoIAlign's rule: the scale is feature size / largest image size, rounded to a power of 2.
        largest = max(shape[0] for shape in image_shapes)
        scale = 2.0 ** round(math.log2(feature.shape[-2] / largest))
        index = torch.cat([torch.full((len(b), 1), i, dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)])
        rois = torch.cat([index, torch.cat(boxes)], dim=1)
        return separable_roi_align(feature, rois, self.output_size[0], scale, self.sampling_ratio, aligned=True)


def build_compact(num_outputs: int) -> nn.Module:
    """The compact Faster R-CNN, random init, for ``num_outputs`` classes (background included)."""
    backbone = CompactBackbone()
    model = FasterRCNN(
        backbone,
        num_classes=None,
        min_size=WORKING_SIZE,
        max_size=WORKING_SIZE,
        rpn_anchor_generator=AnchorGenerator((ANCHOR_SIZES,), (ASPECT_RATIOS,)),
        rpn_pre_nms_top_n_train=PROPOSALS["pre_nms"],
        rpn_pre_nms_top_n_test=PROPOSALS["pre_nms"],
        rpn_post_nms_top_n_train=PROPOSALS["post_nms"],
        rpn_post_nms_top_n_test=PROPOSALS["post_nms"],
        box_roi_pool=SeparableRoIAlign(),
        box_head=TwoMLPHead(backbone.out_channels * POOL * POOL, HIDDEN),
        box_predictor=FastRCNNPredictor(HIDDEN, num_outputs),
    )
    return model


SPECS = (
    DetectorSpec(
        name="fasterrcnn_compact",
        label="Faster R-CNN compact (4-stage, from scratch)",
        family="torchvision",
        builder=build_compact,
        cam_layer=CAM_LAYER,
        licence="BSD-3-Clause (torchvision code); no pretrained weights exist",
        coco_weights=(),
        trainable_frozen=(),  # trained from scratch only: nothing to freeze
        cam_stride=8,
    ),
)
