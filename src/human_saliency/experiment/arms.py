"""The main experiment's arms, in table order (the control and the three augmentations of the study), and what
is compared between them."""

from __future__ import annotations

ARMS: dict[str, str] = {
    "original": "Original",
    "erasing": "Selective erasing",
    "inpainting": "Selective inpainting",
    "nontrivial": "Non-trivial transformations",
}
CONTROL = "original"
AUGMENTED = tuple(arm for arm in ARMS if arm != CONTROL)
# The saliency alignment each arm's model is scored by, per reference (besides AP50).
ALIGNMENT = ("mae", "iou", "cc")
