"""Overlay figures for a person to look at: image, detector map, human mask and fixation map side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from human_saliency.io.images import load_rgb
from human_saliency.prepared.loaders import resize_rgb
from human_saliency.prepared.splits import PreparedSplit

# Inferno is perceptually uniform and its lightness rises with the value, so the strongest values are the
# brightest (JET ends in dark red: a filled mask read as an outline ring). Opacity rises with the value too,
# so where a map is near zero the image shows through.
COLOURMAP = cv2.COLORMAP_INFERNO
MAX_OPACITY = 0.8
_BAR_WIDTH = 12


def colours(values: np.ndarray) -> np.ndarray:
    """[0, 1] values as RGB uint8 colours of :data:`COLOURMAP`."""
    coded = cv2.applyColorMap(np.uint8(np.round(np.clip(values, 0, 1) * 255)), COLOURMAP)
    return cv2.cvtColor(coded, cv2.COLOR_BGR2RGB)


def heat(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """A [0, 1] map over an RGB uint8 image: colour from :data:`COLOURMAP`, opacity value × MAX_OPACITY."""
    alpha = (np.clip(saliency, 0, 1) * MAX_OPACITY)[..., None]
    return np.uint8(np.round((1 - alpha) * image + alpha * colours(saliency)))


def colour_bar(height: int) -> np.ndarray:
    """A vertical key of :data:`COLOURMAP` from 1 (top) to 0 (bottom), labelled at both ends."""
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(_BAR_WIDTH, axis=1)
    bar = np.full((height, _BAR_WIDTH + 14, 3), 255, np.uint8)
    bar[:, :_BAR_WIDTH] = colours(ramp)
    for text, y in (("1", 10), ("0", height - 3)):
        cv2.putText(bar, text, (_BAR_WIDTH + 3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((18, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])


def overlay_figure(image: np.ndarray, panels: dict[str, np.ndarray]) -> np.ndarray:
    """The image, then one heat-map panel per named [0, 1] map, left to right, then the colour key (uint8 RGB)."""
    tiles = [_titled(image, "image")] + [_titled(heat(image, value), name) for name, value in panels.items()]
    tiles.append(_titled(colour_bar(image.shape[0]), ""))
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [gap, tile]
    return np.hstack(row)


def detector_panels(
    label: str,
    maps: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    fixations: Mapping[str, np.ndarray],
    cues: Mapping[str, np.ndarray],
) -> dict[str, Mapping[str, np.ndarray]]:
    """A detector's overlay panels, by VOC id: its maps, the human masks, the predicted fixations and, when any
    image has one, the planted cue."""
    panels = {label: maps, "human mask": masks, "predicted fixations": fixations}
    if any(region.any() for region in cues.values()):
        panels["planted cue"] = {key: region.astype(np.float32) for key, region in cues.items()}
    return panels


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
