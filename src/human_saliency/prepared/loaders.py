"""Images of a prepared split at the working resolution, as a torch Dataset (decoded in DataLoader workers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from human_saliency.io.images import load_rgb
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.prepared.stimuli import PreparedStimuli


@dataclass(frozen=True)
class ImageRef:
    """One image to process: its id (VOC id or MIT1003 stem), file, and original size."""

    key: str
    path: Path
    width: int
    height: int


def split_images(split: PreparedSplit) -> list[ImageRef]:
    """The images of a prepared VOC split, in id order."""
    return [ImageRef(img["voc_id"], split.image_path(img), img["width"], img["height"]) for img in split.images]


def stimuli_images(stimuli: PreparedStimuli) -> list[ImageRef]:
    """The MIT1003 stimuli, in id order."""
    return [
        ImageRef(s["id"], stimuli.resolve(s["file_name"]), s["width"], s["height"])
        for s in sorted(stimuli.stimuli, key=lambda s: s["id"])
    ]


def resize_rgb(image: Image.Image, size: int) -> np.ndarray:
    """An image squashed to size×size (the study resized to 512×512 regardless of aspect), uint8 HxWx3."""
    return np.array(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def resize_map(array: np.ndarray, size: int) -> np.ndarray:
    """A reference map (mask, fixation density) at the working size×size, float32."""
    return cv2.resize(array.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)


def resize_points(points: np.ndarray, size: int) -> np.ndarray:
    """A boolean fixation-point map moved to size×size (each point lands on its scaled pixel)."""
    rows, cols = np.nonzero(points)
    out = np.zeros((size, size), dtype=bool)
    out[rows * size // points.shape[0], cols * size // points.shape[1]] = True
    return out


class ResizedImages(torch.utils.data.Dataset):
    """Yields (index, uint8 tensor H×W×3 at size×size) for each ImageRef."""

    def __init__(self, refs: Sequence[ImageRef], size: int):
        self.refs = list(refs)
        self.size = size

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        image = resize_rgb(load_rgb(self.refs[index].path), self.size)
        return index, torch.from_numpy(image)


def batches(
    refs: Sequence[ImageRef], *, size: int, batch_size: int, num_workers: int = 0
) -> torch.utils.data.DataLoader:
    """Batches of (indices, uint8 B×H×W×3) in order; workers decode while the model runs."""
    return torch.utils.data.DataLoader(
        ResizedImages(refs, size), batch_size=batch_size, shuffle=False, num_workers=num_workers
    )
