"""The layout of a saliency folder (``saliency@<detector>``, and each seed of ``evaluate@<arm>``): one map archive
per split, the random-init maps of the randomisation check, the detections of each test condition, info.json."""

from __future__ import annotations

from pathlib import Path

from human_saliency.prepared.splits import TEST

MIT1003 = "mit1003"


def maps_path(folder: Path, split: str) -> Path:
    """The EigenCAM maps of one split (``test``, ``test_shifted``, ``mit1003``, ``train``)."""
    return Path(folder) / f"{split}.zip"


def random_maps_path(folder: Path, split: str) -> Path:
    """The same architecture's maps at random init, for the randomisation check (trained weights only)."""
    return Path(folder) / f"{split}_random.zip"


def detections_path(folder: Path, split: str) -> Path:
    """The detections of one test condition, COCO results format (``detections.json`` for the test split)."""
    return Path(folder) / ("detections.json" if split == TEST else f"detections_{split}.json")


def info_path(folder: Path) -> Path:
    """What made the maps: detector, label, weights, size, counts."""
    return Path(folder) / "info.json"
