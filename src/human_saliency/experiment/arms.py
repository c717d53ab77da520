"""The main experiment's arms, in table order (the control and the three augmentations of the study), what is
compared between them, and where each seed's run of an arm lives."""

from __future__ import annotations

from pathlib import Path

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
# What each seed's model is scored against on each test condition (besides AP50), and the columns summarised over
# seeds and images: alignment with human masks and predicted fixations, the randomisation check, and the share of
# the map's mass on the planted cue against the cue's area share.
COLUMNS = {
    "human_masks": ALIGNMENT,
    "fixations": ALIGNMENT,
    "randomisation": ("cc",),
    "cue": ("mass", "area", "excess"),
}
# The study tables' row for the original arm's model of the first seed ("trained here"), scored by score_trained.
TRAINED_ROW = "trained"


def seed_dir(root: Path, seed: int) -> Path:
    """One seed's folder under an arm's output (``models/<arm>``, ``data/evaluate/<arm>``): ``root/seed<k>``."""
    return Path(root) / f"seed{seed}"
