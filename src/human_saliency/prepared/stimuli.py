"""The prepared MIT1003 index read back, and the recorded fixation maps and points it points to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from human_saliency.prepared.index import read_prepared_json


@dataclass(frozen=True)
class PreparedStimuli:
    """``mit1003.json`` read back, with its relative paths resolved against ``info.image_root``."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: str | os.PathLike) -> PreparedStimuli:
        """Read a prepared ``mit1003.json``; DataError if it is missing or lacks its keys."""
        path = Path(path)
        return cls(path=path, data=read_prepared_json(path, what="prepared MIT1003 index", required=("stimuli",)))

    @property
    def root(self) -> Path:
        """The raw data folder the relative paths start from."""
        return self.path.parent / self.data["info"]["image_root"]

    @property
    def stimuli(self) -> list[dict[str, Any]]:
        """Per stimulus: id, file_name, fixmap, fixpts, width, height, n_fixations."""
        return self.data["stimuli"]

    def resolve(self, relative: str) -> Path:
        """An absolute-enough path for one of the entries' relative file fields."""
        return self.root / relative
