"""Detections made at the working size, as COCO results in the original image's pixels."""

from __future__ import annotations

from pathlib import Path

import torch

from human_saliency.maps.saliency import to_coco_results
from human_saliency.prepared.loaders import ImageRef

# Wider than high, so that a width and height swapped in the rescale moves every box.
REF = ImageRef("2008_000123", Path("unused.jpg"), width=300, height=150)


def test_boxes_at_the_working_size_map_back_to_the_original_width_and_height():
    detections = {
        "boxes": torch.tensor([[10.0, 20.0, 50.0, 80.0], [0.0, 0.0, 100.0, 100.0]]),
        "scores": torch.tensor([0.9, 0.123456789]),
        "labels": torch.tensor([2, 1]),
    }
    # x scales by 300 / 100, y by 150 / 100; xyxy becomes xywh; the id is the VOC id's digits.
    assert to_coco_results(detections, REF, size=100) == [
        {"image_id": 2008000123, "category_id": 2, "bbox": [30.0, 30.0, 120.0, 90.0], "score": 0.9},
        {"image_id": 2008000123, "category_id": 1, "bbox": [0.0, 0.0, 300.0, 150.0], "score": 0.12346},
    ]


def test_no_detections_give_no_results():
    empty = {"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    assert to_coco_results(empty, REF, size=64) == []
