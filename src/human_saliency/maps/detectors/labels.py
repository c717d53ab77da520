"""COCO → PASCAL VOC classes: COCO-pretrained detectors report VOC category ids 1..20, other classes dropped."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from human_saliency.errors import DataError
from human_saliency.sources.voc import VOC_CLASSES

# COCO's name of each VOC class (most are the same word). COCO-pretrained families map their own class
# index → COCO name list through this, by *name*: torchvision's and DETR's heads use COCO's 91-index ids,
# ultralytics numbers the 80 classes contiguously.
VOC_TO_COCO = {
    "aeroplane": "airplane",
    "diningtable": "dining table",
    "motorbike": "motorcycle",
    "pottedplant": "potted plant",
    "sofa": "couch",
    "tvmonitor": "tv",
}
COCO_NAME_TO_VOC_ID = {VOC_TO_COCO.get(name, name): i for i, name in enumerate(VOC_CLASSES, start=1)}


def coco_label_map(index_names: Sequence[str], *, source: str) -> torch.Tensor:
    """Model class index → VOC category id (1..20), 0 for a COCO class VOC lacks (dropped).

    ``index_names`` is the model's own index → COCO name list; ``source`` names it in errors.
    """
    missing = sorted(set(COCO_NAME_TO_VOC_ID) - set(index_names))
    if missing:
        raise DataError(f"{source}: class names lack the COCO classes {missing}; is it a COCO model?")
    return torch.tensor([COCO_NAME_TO_VOC_ID.get(name, 0) for name in index_names], dtype=torch.int64)


def dataset_label_map(num_classes: int, *, background: bool) -> torch.Tensor:
    """Model class index → dataset category id 1..K; with ``background`` index 0 is background (dropped)."""
    ids = torch.arange(1, num_classes + 1, dtype=torch.int64)
    return torch.cat([torch.zeros(1, dtype=torch.int64), ids]) if background else ids
