"""MIT1003 eye-fixation set: pair stimuli with their fixation maps and points, and read them back."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from human_saliency.io.images import load_gray

STIMULUS_SUFFIXES = (".jpeg", ".jpg")
# _fixPts marks each fixation with one white pixel; JPEG smears it, so a pixel counts above this.
FIXPTS_THRESHOLD = 127


@dataclass(frozen=True)
class Stimulus:
    """One stimulus and its fixation files (None where the file is absent)."""

    stem: str
    image: Path
    fixmap: Path | None
    fixpts: Path | None


def index_stimuli(stimuli_dir: str | os.PathLike, fixmaps_dir: str | os.PathLike) -> list[Stimulus]:
    """Every stimulus in ``ALLSTIMULI`` with its ``<stem>_fixMap.jpg`` / ``<stem>_fixPts.jpg``, by stem."""
    fixmaps_dir = Path(fixmaps_dir)
    stimuli = sorted(
        path
        for path in Path(stimuli_dir).iterdir()
        if path.suffix.lower() in STIMULUS_SUFFIXES and not path.name.startswith(".")
    )
    return [
        Stimulus(
            stem=path.stem,
            image=path,
            fixmap=_existing(fixmaps_dir / f"{path.stem}_fixMap.jpg"),
            fixpts=_existing(fixmaps_dir / f"{path.stem}_fixPts.jpg"),
        )
        for path in stimuli
    ]


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def load_fixmap(path: str | os.PathLike) -> np.ndarray:
    """A fixation density map as H×W float32 in [0, 1]."""
    return np.asarray(load_gray(path), dtype=np.float32) / 255.0


def load_fixpts(path: str | os.PathLike, threshold: int = FIXPTS_THRESHOLD) -> np.ndarray:
    """Fixation locations as an H×W bool array (pixels brighter than ``threshold``)."""
    return np.asarray(load_gray(path)) > threshold
