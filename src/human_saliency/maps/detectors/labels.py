"""COCO → PASCAL VOC classes: COCO-pretrained detectors report VOC category ids 1..20, other classes dropped."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from human_saliency.errors import DataError

# (VOC name, COCO name, COCO category id). VOC order = VOC category ids 1..20. COCO ids are the
# 91-index ids that torchvision's and DETR's heads use; ultralytics numbers the 80 classes
# contiguously, so each family maps by *name* through its own index → name list.
VOC_COCO = (
    ("aeroplane", "airplane", 5),
    ("bicycle", "bicycle", 2),
    ("bird", "bird", 16),
    ("boat", "boat", 9),
    ("bottle", "bottle", 44),
    ("bus", "bus", 6),
    ("car", "car", 3),
    ("cat", "cat", 17),
    ("chair", "chair", 62),
    ("cow", "cow", 21),
    ("diningtable", "dining table", 67),
    ("dog", "dog", 18),
    ("horse", "horse", 19),
    ("motorbike", "motorcycle", 4),
    ("person", "person", 1),
    ("pottedplant", "potted plant", 64),
    ("sheep", "sheep", 20),
    ("sofa", "couch", 63),
    ("train", "train", 7),
    ("tvmonitor", "tv", 72),
)
VOC_CLASSES = tuple(voc for voc, _, _ in VOC_COCO)
COCO_NAME_TO_VOC_ID = {coco: i for i, (_, coco, _) in enumerate(VOC_COCO, start=1)}


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
