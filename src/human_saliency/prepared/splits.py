"""Read a prepared COCO-format split back: image, mask and annotation look-ups by image id."""

from __future__ import annotations

import contextlib
import io
import os
from collections import defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO

from human_saliency.errors import DataError
from human_saliency.prepared.index import read_prepared_json

# The test conditions a prepared dataset may hold, named as prepare names their splits: the test split (in
# distribution) and, where the embedded generator planted a cue, its shifted twin (``test_shifted.json``: each
# image a copy of a test image, ``twin_of``, with its cues shifted).
TEST = "test"
SHIFTED = "test_shifted"
CONDITIONS = (TEST, SHIFTED)


class PreparedSplit:
    """One ``train.json`` / ``test.json`` written by ``prepare``; paths resolve from the JSON's folder."""

    def __init__(self, path: str | os.PathLike, data: dict[str, Any]) -> None:
        self.path = Path(path)
        self.data = data

    @classmethod
    def load(cls, path: str | os.PathLike) -> PreparedSplit:
        """Read a prepared split; DataError if it is missing or is not one."""
        path = Path(path)
        data = read_prepared_json(path, what="prepared COCO split", required=("images", "annotations", "categories"))
        return cls(path, data)

    @property
    def root(self) -> Path:
        """The raw data folder that images' ``file_name`` are relative to."""
        return self.path.parent / self.data["info"]["image_root"]

    @property
    def images(self) -> list[dict[str, Any]]:
        """Image entries sorted by id."""
        return self.data["images"]

    @property
    def category_names(self) -> list[str]:
        """Class names in category-id order (id = index + 1)."""
        return [cat["name"] for cat in sorted(self.data["categories"], key=lambda cat: cat["id"])]

    def image_path(self, image: dict[str, Any]) -> Path:
        """Where an image entry's JPEG lives."""
        return self.root / image["file_name"]

    def mask_path(self, image: dict[str, Any]) -> Path:
        """Where an image entry's merged human mask lives; DataError if it has none."""
        if "human_mask" not in image:
            raise DataError(f"{self.path}: image {image.get('voc_id', image['id'])} has no human mask")
        return self.path.parent / image["human_mask"]

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        """The annotations of one image, in id order (empty for a negative image)."""
        return self._by_image.get(image_id, [])

    @cached_property
    def _by_image(self) -> dict[int, list[dict[str, Any]]]:
        index: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for ann in self.data["annotations"]:
            index[ann["image_id"]].append(ann)
        return dict(index)


def load_conditions(prepared: str | os.PathLike) -> dict[str, PreparedSplit]:
    """The test conditions a prepared folder holds, in :data:`CONDITIONS` order (always ``test``)."""
    prepared = Path(prepared)
    return {
        name: PreparedSplit.load(prepared / f"{name}.json")
        for name in CONDITIONS
        if name == TEST or (prepared / f"{name}.json").is_file()
    }


def coco_index(dataset: dict[str, Any]) -> COCO:
    """A pycocotools COCO object over a COCO-format dict (used as is, not copied; its progress prints silenced)."""
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
