"""Non-trivial transformations: a box-aware torchvision ``transforms.v2`` policy built from data (params).

A policy is a list of ``{"name": <v2 class>, "p": <probability>, **kwargs}`` steps drawn from a
whitelist; boxes travel as ``tv_tensors.BoundingBoxes`` so geometric steps move them with the
pixels, and ``SanitizeBoundingBoxes`` drops the boxes a crop or rotation made degenerate.
Random erasing is deliberately absent: erasing is its own arm of the study.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

# The transforms a policy may use, by v2 class name: geometric first, then photometric.
ALLOWED: dict[str, type[v2.Transform]] = {
    cls.__name__: cls
    for cls in (
        v2.RandomHorizontalFlip,
        v2.RandomAffine,
        v2.RandomRotation,
        v2.RandomResizedCrop,
        v2.RandomIoUCrop,
        v2.RandomZoomOut,
        v2.ColorJitter,
        v2.RandomPhotometricDistort,
        v2.RandomGrayscale,
        v2.RandomPosterize,
        v2.RandomSolarize,
        v2.RandomEqualize,
        v2.RandomAutocontrast,
        v2.RandomAdjustSharpness,
        v2.GaussianBlur,
    )
}


def _build_step(index: int, step: Mapping[str, Any]) -> v2.Transform:
    """One policy step: the whitelisted transform, applied with probability ``p`` (default 1)."""
    if not isinstance(step, Mapping) or "name" not in step:
        raise ValueError(f"policy step {index} must be a mapping with a 'name' key, got {step!r}")
    kwargs = dict(step)
    name = kwargs.pop("name")
    p = kwargs.pop("p", 1.0)
    if name not in ALLOWED:
        raise ValueError(f"policy step {index}: unknown transform {name!r}; allowed: {', '.join(ALLOWED)}")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"policy step {index} ({name}): p must be a number in [0, 1], got {p!r}")
    if name == "RandomIoUCrop" and max(kwargs.get("sampler_options") or [1.0]) < 1.0:
        # Without a "leave as is" option (>= 1) RandomIoUCrop loops forever on an image with no box.
        raise ValueError(f"policy step {index} (RandomIoUCrop): sampler_options must include a value >= 1.0")
    cls = ALLOWED[name]
    own_p = "p" in inspect.signature(cls).parameters
    try:
        transform = cls(**kwargs, p=p) if own_p else cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"policy step {index} ({name}): bad arguments {kwargs}: {exc}") from None
    # Transforms with their own ``p`` get it directly, so that p is never applied twice.
    return transform if own_p or p == 1.0 else v2.RandomApply([transform], p=p)


def build_policy(spec: Sequence[Mapping[str, Any]], *, min_box_size: float = 1.0) -> v2.Compose:
    """A v2.Compose of the spec's steps in order, ending with SanitizeBoundingBoxes(min_size=min_box_size)."""
    if isinstance(spec, Mapping | str) or not isinstance(spec, Sequence):
        raise ValueError(f"policy must be a list of steps, got {type(spec).__name__}")
    steps = [_build_step(index, step) for index, step in enumerate(spec)]
    return v2.Compose([*steps, v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=min_box_size)])


def apply_policy(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray | Sequence[int],
    policy: v2.Transform,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transform an H×W×3 uint8 image with its N×4 xyxy boxes and N labels; the same seed gives the same result.

    Returns (image uint8 H'×W'×3, boxes float32 M×4 xyxy, labels int64 M) with M <= N after sanitising.
    The global torch RNG is left as it was.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H×W×3 uint8, got shape {image.shape} dtype {image.dtype}")
    box_array = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(box_array) != len(label_array):
        raise ValueError(f"got {len(box_array)} boxes but {len(label_array)} labels")
    pixels = tv_tensors.Image(torch.from_numpy(np.array(image, order="C")).permute(2, 0, 1))  # a writable copy
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            torch.from_numpy(box_array), format=tv_tensors.BoundingBoxFormat.XYXY, canvas_size=image.shape[:2]
        ),
        "labels": torch.from_numpy(label_array),
    }
    # v2 transforms draw from torch's global RNG: seed a private fork so callers' streams are untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out_image, out_target = policy(pixels, target)
    return (
        out_image.permute(1, 2, 0).numpy().astype(np.uint8, copy=True),
        out_target["boxes"].numpy().astype(np.float32, copy=True),
        out_target["labels"].numpy().astype(np.int64, copy=True),
    )
