"""Selective inpainting: fill the erased pixels back in, with OpenCV (Telea, Navier-Stokes) or Deep Image Prior.

The original study saved its inpainted images as plot renders (axes, padding, another size); here
every method returns the image itself: uint8, the input's size, pixels outside the mask untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from human_saliency.experiment.dip import dip_inpaint_batch


def _opencv(flag: int) -> Callable[..., np.ndarray]:
    def run(image: np.ndarray, mask: np.ndarray, *, radius: float = 3.0) -> np.ndarray:
        if radius <= 0:
            raise ValueError(f"inpainting radius must be > 0, got {radius}")
        # Both OpenCV methods treat channels alike, so RGB needs no conversion to BGR.
        return cv2.inpaint(image, mask.astype(np.uint8), float(radius), flag)

    return run


def _dip(image: np.ndarray, mask: np.ndarray, **options: Any) -> np.ndarray:
    return dip_inpaint_batch([image], [mask], batch_size=1, **options)[0]


# method -> (function, the options it accepts)
METHODS: dict[str, tuple[Callable[..., np.ndarray], frozenset[str]]] = {
    "telea": (_opencv(cv2.INPAINT_TELEA), frozenset({"radius"})),
    "ns": (_opencv(cv2.INPAINT_NS), frozenset({"radius"})),
    "dip": (_dip, frozenset({"iterations", "lr", "seed", "device", "reg_noise_std"})),
}


def inpaint(image: np.ndarray, mask: np.ndarray, *, method: str, **options: Any) -> np.ndarray:
    """Fill the True pixels of ``mask`` (H×W bool) in ``image`` (H×W×3 uint8); returns a new H×W×3 uint8 image.

    ``method``: ``telea`` / ``ns`` (OpenCV; option ``radius``) or ``dip`` (options of
    :func:`~human_saliency.experiment.dip.dip_inpaint_batch`; use that function directly to batch images).
    """
    if method not in METHODS:
        raise ValueError(f"unknown inpainting method {method!r}; known: {', '.join(METHODS)}")
    run, allowed = METHODS[method]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"inpainting method {method!r} got unknown options {unknown}; allowed: {', '.join(sorted(allowed))}"
        )
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H×W×3 uint8, got shape {image.shape} dtype {image.dtype}")
    if mask.shape != image.shape[:2] or mask.dtype != bool:
        raise ValueError(f"mask must be bool {image.shape[:2]}, got shape {mask.shape} dtype {mask.dtype}")
    filled = np.asarray(run(image, mask, **options))
    # Keep every known pixel bit-exact whatever the method does outside the hole.
    return np.where(mask[..., None], filled, image).astype(np.uint8)
