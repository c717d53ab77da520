"""Human attention masks: index the benchmark's class folders by VOC id, merge, write and read them."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from human_saliency.io.images import load_gray

MASK_SUFFIXES = (".jpg", ".jpeg", ".png")


def index_masks(anchor: str | os.PathLike) -> dict[str, list[Path]]:
    """Map each VOC id to its mask files under ``anchor/<class>/<id>.jpg`` (one per class folder).

    Keys and path lists are sorted, so nothing downstream depends on directory listing order.
    """
    index: dict[str, list[Path]] = defaultdict(list)
    for class_dir in Path(anchor).iterdir():
        if not class_dir.is_dir() or class_dir.name.startswith("."):
            continue
        for path in class_dir.iterdir():
            if path.suffix.lower() in MASK_SUFFIXES and not path.name.startswith("."):
                index[path.stem].append(path)
    return {voc_id: sorted(index[voc_id]) for voc_id in sorted(index)}


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """One mask file as an H×W uint8 array (grayscale, 0–255); DataError if unreadable."""
    return np.asarray(load_gray(path), dtype=np.uint8)


def merge_masks(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Pixel-wise maximum of masks of one shape: a pixel attended for any class stays attended."""
    if not masks:
        raise ValueError("merge_masks needs at least one mask")
    shapes = {mask.shape for mask in masks}
    if len(shapes) != 1:
        raise ValueError(f"masks to merge must share one shape, got {sorted(shapes)}")
    return np.maximum.reduce(list(masks))


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Save an H×W uint8 mask as an 8-bit grayscale PNG (lossless, unlike the source JPEGs)."""
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D uint8 array, got {mask.dtype} with shape {mask.shape}")
    Image.fromarray(mask).save(path, format="PNG")
