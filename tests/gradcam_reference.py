"""The maps EigenCAM should give, made the slow, plain way: grad-cam's float64 projection, cv2's resize, numpy."""

from __future__ import annotations

import cv2
import numpy as np
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction


def reference_maps(
    activations: np.ndarray,
    size: tuple[int, int],
    image_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """B×C×h×w activations of a ``input_size`` input whose top-left ``image_size`` is the image → B×H×W maps.

    Cells holding any image pixel are projected (grad-cam, float64), ReLU'd, resized to the input pixels they
    span and cropped to the image (when those differ), resized to ``size`` and min-max normalised (constant →
    zeros).
    """
    image_h, image_w = image_size or size
    input_h, input_w = input_size or size
    grid_h, grid_w = activations.shape[-2:]
    rows, cols = int(np.ceil(image_h * grid_h / input_h)), int(np.ceil(image_w * grid_w / input_w))
    projections = get_2d_projection_with_sign_correction(activations[..., :rows, :cols].astype(np.float64))
    maps = []
    spanned = (round(cols * input_w / grid_w), round(rows * input_h / grid_h))  # cv2 sizes are (width, height)
    for projection in projections.astype(np.float64):
        pixels = np.maximum(projection, 0)
        if spanned != (image_w, image_h):
            pixels = cv2.resize(pixels, spanned, interpolation=cv2.INTER_LINEAR)[:image_h, :image_w]
        pixels = cv2.resize(pixels, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        span = pixels.max() - pixels.min()
        maps.append((pixels - pixels.min()) / span if span > 0 else np.zeros_like(pixels))
    return np.stack(maps)
