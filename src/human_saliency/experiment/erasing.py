"""Selective erasing: blank out the pixels the detector finds most salient (the study's erasing arm)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def fit_map(saliency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a working-size [0, 1] map to an image's (H, W) with bilinear interpolation (cv2)."""
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.ndim != 2:
        raise ValueError(f"saliency must be a 2-D map, got shape {saliency.shape}")
    if saliency.shape == tuple(shape):
        return saliency
    resized = cv2.resize(saliency, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0)  # bilinear stays in range; clip only guards float round-off


def top_mask(saliency: np.ndarray, count: int) -> np.ndarray:
    """Boolean mask of the ``count`` most salient pixels among those the map points at (value > 0).

    A map with fewer than ``count`` positive pixels gets all of them and no more (the caller counts the
    shortfall): erasing pixels the map does not point at would only erase where ties put them (raster
    order put a band of rows at the top of the image). Ties among positive values go to the earlier pixel
    in raster order; with continuous map values they are rare.
    """
    flat = np.asarray(saliency).ravel()
    if not 0 <= count <= flat.size:
        raise ValueError(f"count must be in [0, {flat.size}], got {count}")
    positive = np.flatnonzero(flat > 0)
    # A stable sort of the negated values keeps equal values in raster order, so ties are deterministic.
    order = positive[np.argsort(-flat[positive], kind="stable")][:count]
    mask = np.zeros(flat.size, dtype=bool)
    mask[order] = True
    return mask.reshape(np.shape(saliency))


def erase_count(shape: tuple[int, ...], fraction: float) -> int:
    """How many pixels the erasing arm aims to erase in an image of ``shape``: round(fraction · H · W)."""
    return round(fraction * shape[0] * shape[1])


def erase(
    image: np.ndarray,
    saliency: np.ndarray,
    *,
    fraction: float = 0.025,
    fill: int | Sequence[int] = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Set the top ``fraction`` of salient pixels to ``fill``; returns (erased image, bool H×W mask of erased pixels).

    ``erase_count`` pixels are erased, or fewer when fewer pixels are salient (:func:`top_mask`).
    ``saliency`` may be at the working size: it is resized to the image first.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H×W×3 uint8, got shape {image.shape} dtype {image.dtype}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    fill_value = np.broadcast_to(np.asarray(fill), (3,))
    if not np.all((fill_value >= 0) & (fill_value <= 255)):
        raise ValueError(f"fill must be 0..255 (one value or three), got {fill}")
    mask = top_mask(fit_map(saliency, image.shape[:2]), erase_count(image.shape, fraction))
    erased = image.copy()
    erased[mask] = fill_value.astype(np.uint8)
    return erased, mask
