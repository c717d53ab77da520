"""DETR ResNet-50 (Hugging Face ``transformers``), COCO weights from ``facebook/detr-resnet-50`` at a pinned revision.

transformers is imported on use: it adds seconds to every import of the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.ops import box_convert

from human_saliency.io.weights import WeightFile
from human_saliency.maps.detectors.base import Detector, DetectorSpec, Frame, RawDetections, rescale, size_limits

LICENCE = "Apache-2.0 (transformers code; facebook/detr-resnet-50 weights)"
REVISION = "1d5f47bd3bdd2c4bbfa585418ffe6da5028b4c0b"
_URL = "https://huggingface.co/facebook/detr-resnet-50/resolve/{revision}/{file}"
# Size and SHA-256 of each file at REVISION, as the Hugging Face hub publishes them for that revision (the Git LFS
# pointer of model.safetensors holds both; config.json's were computed from the blob), quoted in issue 12.
_PINS = {
    "config.json": (4_592, "e7bcf3992363f27717a863f14b193140ad2e41d4338ee012730e58a92cae17e6"),
    "model.safetensors": (166_587_896, "830f5e2eeaada8c8c8281779dcc8ab12833972eb8514ed0a35be6c1d4420ad81"),
}
# from_pretrained reads a folder, so both files go to one folder named after the revision.
COCO_WEIGHTS = tuple(
    WeightFile(
        url=_URL.format(revision=REVISION, file=file),
        filename=f"detr-resnet-50-{REVISION[:12]}/{file}",
        sha256=sha256,
        size=size,
    )
    for file, (size, sha256) in _PINS.items()
)
# DetrImageProcessor's defaults: shortest edge 800, longest 1333, ImageNet mean/std.
DEFAULT_SIZE = (800, 1333)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class DetrDetector(Detector):
    """Resize + normalise as DetrImageProcessor does, one forward pass, DETR's set-prediction post-processing."""

    background = False

    def __init__(self, spec: DetectorSpec, model: nn.Module, **kwargs: Any) -> None:
        super().__init__(spec, model, **kwargs)
        self._limits = size_limits(self.min_size, DEFAULT_SIZE)

    @classmethod
    def load_coco(cls, spec: DetectorSpec, paths: Sequence[Path]) -> tuple[nn.Module, Sequence[str]]:
        """``from_pretrained`` on the fetched folder; its 91 COCO ids → names come from config.json."""
        from transformers import DetrConfig, DetrForObjectDetection

        folder = paths[0].parent
        # The checkpoint holds the backbone too: never fetch timm's ImageNet ResNet-50 on top of it.
        config = DetrConfig.from_pretrained(folder, use_pretrained_backbone=False, local_files_only=True)
        model = DetrForObjectDetection.from_pretrained(folder, config=config, local_files_only=True)
        return model, [config.id2label[i] for i in range(config.num_labels)]

    def _forward(self, images: torch.Tensor) -> tuple[list[RawDetections], Frame]:
        height, width = images.shape[-2:]
        resized, _ = rescale(images, self._limits)
        mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
        outputs = self.model(pixel_values=(resized - mean) / std)
        # Softmax over the classes plus "no object" (the last logit), which is then dropped: a
        # query's score is its best real class. Boxes are cxcywh relative to the image.
        scores, indices = outputs.logits.softmax(-1)[..., :-1].max(-1)
        to_pixels = torch.tensor([width, height, width, height], device=images.device)
        boxes = box_convert(outputs.pred_boxes, "cxcywh", "xyxy") * to_pixels
        resized_size = tuple(resized.shape[-2:])
        return list(zip(boxes, scores, indices, strict=True)), (resized_size, resized_size)  # not padded


def build(num_outputs: int) -> nn.Module:
    """DETR R50 with random init and ``num_outputs`` classes (+ "no object"); timm's backbone is not downloaded."""
    from transformers import DetrConfig, DetrForObjectDetection

    return DetrForObjectDetection(DetrConfig(num_labels=num_outputs, use_pretrained_backbone=False))


SPECS = (
    DetectorSpec(
        name="detr_r50",
        label="DETR R50",
        family="transformers",
        builder=build,
        # C5 of the ResNet-50 (timm) backbone.
        cam_layer="model.backbone.model.layer4",
        licence=LICENCE,
        coco_weights=COCO_WEIGHTS,
    ),
)
