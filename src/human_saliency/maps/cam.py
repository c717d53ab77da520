"""EigenCAM (Muhammad & Yeasin 2020, arXiv:2008.00299) from captured activations, with the SVD sign fixed.

EigenCAM needs no gradients and no target: the map is the activations' first principal component.
The study passed a detection box "target" to grad-cam's EigenCAM; it had no effect, so none is taken here.

The projection is grad-cam's ``get_2d_projection_with_sign_correction`` (centre the h·w × C activation
matrix, project on the first right singular vector, flip when |min| > |max| — Seg-Eigen-CAM, Chung & Ying
2025, eq. 13 — so that ReLU keeps the object and not the background). grad-cam computes the *full* SVD,
a C×C matrix per image (2048×2048 for a ResNet C5) of which it uses one row; we take the same first
component from the thin SVD instead. ``tests/test_cam.py`` checks the two agree; ``benchmarks/saliency_throughput.py``
measures the difference.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from human_saliency.maps.normalization import minmax


def first_component_projection(activations: np.ndarray) -> np.ndarray:
    """B×C×h×w activations → B×h×w projections on each image's first principal component, sign-corrected."""
    activations = np.nan_to_num(activations.astype(np.float64), nan=0.0)
    projections = []
    for image in activations:
        matrix = image.reshape(image.shape[0], -1).T
        matrix = matrix - matrix.mean(axis=0)
        _, _, vt = np.linalg.svd(matrix, full_matrices=False)
        projection = matrix @ vt[0]
        if abs(projection.min()) > abs(projection.max()):
            projection = -projection
        projections.append(projection.reshape(image.shape[1:]))
    return np.asarray(projections, dtype=np.float32).reshape(activations.shape[0], *activations.shape[2:])


def eigencam(activations: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """B×C×h×w activations → B×H×W float32 saliency maps in [0, 1] at ``size`` = (H, W).

    Steps: projection on the first principal component, sign correction, ReLU, bilinear resize to
    ``size``, min-max (a constant map becomes all zeros).
    """
    height, width = size
    projections = first_component_projection(activations.detach().float().cpu().numpy())
    maps = [
        minmax(cv2.resize(np.maximum(projection, 0), (width, height), interpolation=cv2.INTER_LINEAR))
        for projection in projections
    ]
    return np.stack(maps).astype(np.float32) if maps else np.zeros((0, height, width), np.float32)
