"""Human attention masks: index the benchmark's class folders by VOC id, merge, write and read them."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from human_saliency.io.images import decode

MASK_SUFFIXES = (".jpg", ".jpeg", ".png")
# PIL's modes for 16-bit grayscale PNGs (older versions open them as 32-bit "I")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")


@dataclass(frozen=True)
class MaskIndex:
    """Mask files by VOC id, and those found directly under the anchor, outside every class folder."""

    by_id: dict[str, list[Path]]
    outside_class_folders: list[Path]


def index_masks(anchor: str | os.PathLike) -> MaskIndex:
    """Map each VOC id to its mask files under ``anchor/<class>/<id>.jpg`` (one per class folder).

    Keys and path lists are sorted, so nothing downstream depends on directory listing order.
    """
    index: dict[str, list[Path]] = defaultdict(list)
    outside = []
    for entry in Path(anchor).iterdir():
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            if _is_mask(entry):
                outside.append(entry)
            continue
        for path in entry.iterdir():
            if _is_mask(path):
                index[path.stem].append(path)
    return MaskIndex({voc_id: sorted(index[voc_id]) for voc_id in sorted(index)}, sorted(outside))


def _is_mask(path: Path) -> bool:
    return path.suffix.lower() in MASK_SUFFIXES and not path.name.startswith(".")


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """One mask file as an H×W uint8 array (grayscale, 0–255); DataError if unreadable.

    A 16-bit PNG is scaled to 8 bits (65535 → 255); PIL's own conversion would clip it at 255.
    """
    image = decode(path)
    if image.mode in _SIXTEEN_BIT:
        return np.round(np.asarray(image, dtype=np.float64) * (255 / 65535)).astype(np.uint8)
    return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.uint8)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """An H×W uint8 mask resized to ``width``×``height``: area-averaged when shrinking, bilinear when enlarging (the
    masks are smooth weights aggregated over annotators, so interpolating them keeps their meaning)."""
    shrink = width * height < mask.shape[0] * mask.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(mask, (width, height), interpolation=interpolation)


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
