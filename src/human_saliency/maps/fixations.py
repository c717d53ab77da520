"""Predicted fixation maps over a set of images, stored as density / max (a [0, 1] map per image).

Density / max loses nothing the scores need: CC, SIM and KL renormalise each map to sum 1, and MAE/IoU use
min-max normalisation, which is the same for the density and for density / max.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from human_saliency.io.mapstore import MapWriter
from human_saliency.maps.predictors import FixationPredictor
from human_saliency.prepared.loaders import ImageRef, batches

log = logging.getLogger(__name__)


def density_over_max(log_density: np.ndarray) -> np.ndarray:
    """A log-density map as a [0, 1] map proportional to the density."""
    shifted = log_density.astype(np.float64) - log_density.max()
    return np.exp(shifted).astype(np.float32)


def predict_maps(
    predictor: FixationPredictor,
    refs: Sequence[ImageRef],
    writer: MapWriter,
    *,
    size: int,
    batch_size: int,
    num_workers: int = 0,
) -> int:
    """Write each image's predicted fixation map (size×size) to ``writer``; return the image count."""
    count = 0
    loader = batches(refs, size=size, batch_size=batch_size, num_workers=num_workers)
    for indices, images in tqdm(loader, desc=f"fixations {predictor.name}", unit="batch"):
        for index, log_density in zip(indices.tolist(), predictor.predict(images.numpy()), strict=True):
            writer.add(refs[index].key, density_over_max(log_density))
            count += 1
    return count
