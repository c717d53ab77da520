"""Overlay figures for a person to look at: image, detector map, human mask and fixation map side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from human_saliency.io.images import load_rgb
from human_saliency.prepared.loaders import resize_rgb
from human_saliency.prepared.splits import PreparedSplit


def heat(image: np.ndarray, saliency: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A [0, 1] map as a JET heat map blended over an RGB uint8 image."""
    colours = cv2.applyColorMap(np.uint8(np.clip(saliency, 0, 1) * 255), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
    return np.uint8((1 - alpha) * image + alpha * colours)


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((18, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])


def overlay_figure(image: np.ndarray, panels: dict[str, np.ndarray]) -> np.ndarray:
    """The image, then one heat-map panel per named [0, 1] map, left to right (uint8 RGB)."""
    tiles = [_titled(image, "image")] + [_titled(heat(image, value), name) for name, value in panels.items()]
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    return np.hstack(row)


def write_overlays(
    out_dir: Path, split: PreparedSplit, images: list[dict], *, size: int, panels: dict[str, Mapping[str, np.ndarray]]
) -> None:
    """One PNG per image in ``out_dir``: the image at size×size and each named map source's map for it."""
    for img in images:
        key = img["voc_id"]
        figure = overlay_figure(
            resize_rgb(load_rgb(split.image_path(img)), size), {name: source[key] for name, source in panels.items()}
        )
        cv2.imwrite(str(out_dir / f"{key}.png"), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
