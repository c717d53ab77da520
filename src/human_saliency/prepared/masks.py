"""Human attention masks and planted-cue regions of a prepared split, at the working size for scoring."""

from __future__ import annotations

import os

import numpy as np

from human_saliency.prepared.loaders import resize_map
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.sources.masks import load_mask


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A prepared mask as H×W float32 in [0, 1] (the study scored the 0–255 mask by mistake)."""
    return load_mask(path).astype(np.float32) / 255.0


def working_size_masks(split: PreparedSplit, size: int) -> dict[str, np.ndarray]:
    """Every image's human mask in [0, 1] at size×size, by VOC id (the test split: every image has one)."""
    return {image["voc_id"]: resize_map(read_mask(split.mask_path(image)), size) for image in split.images}


def cue_regions(split: PreparedSplit, size: int) -> dict[str, np.ndarray]:
    """Every image's planted-cue pixels (embedded data: annotations' ``cue`` boxes) as a size×size boolean
    map, by VOC id; all False for an image without cues. A working-size pixel belongs to the region when at
    least half of it is covered, the rule the human masks' area resize gives a binary mask."""
    regions = {}
    for image in split.images:
        covered = np.zeros((image["height"], image["width"]), np.float32)
        for ann in split.annotations(image["id"]):
            if "cue" in ann:
                x, y, w, h = ann["cue"]["bbox"]
                covered[y : y + h, x : x + w] = 1.0
        regions[image["voc_id"]] = resize_map(covered, size) >= 0.5
    return regions
