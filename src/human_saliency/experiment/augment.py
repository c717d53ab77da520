"""Augmented training sets in the prepared format: COCO JSON plus the images that changed.

Mode ``replace``: every training image stays, and the ones an arm changes are replaced by their augmented
version, so every arm trains on as many images, for as many steps, as ``original``. Unchanged images are
referenced where they already are (paths relative to the JSON), changed ones are written as PNG (lossless:
erased pixels must stay exactly the fill value) under ``images/``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from human_saliency.experiment.dip import dip_inpaint_batch, image_seeds
from human_saliency.experiment.erasing import erase, erase_count
from human_saliency.experiment.inpainting import inpaint
from human_saliency.experiment.policy import apply_policy, build_policy
from human_saliency.experiment.selection import CRITERIA, score, selects
from human_saliency.io.files import write_json
from human_saliency.io.images import load_rgb
from human_saliency.io.mapstore import MapReader
from human_saliency.maps.normalization import is_degenerate, minmax
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed

log = logging.getLogger(__name__)


def original_set(split: PreparedSplit, out_dir: Path) -> dict[str, int]:
    """The unaugmented training set, in the same form as the others (the experiment's control)."""
    _write_split(split, out_dir, {})
    return {"images": len(split.images), "changed": 0}


def selection_table(
    split: PreparedSplit, base_maps: MapReader, fixation_maps: MapReader, *, criterion: str, threshold: float
) -> pd.DataFrame:
    """Per training image: the criterion's score of base-detector map vs fixation map, whether it is selected,
    and why it was skipped: a degenerate (constant) base or fixation map carries no place to compare, so
    its image is never selected (``skipped``: ``base_map`` or ``fixation_map``) and the summary counts it."""
    rows = []
    for img in tqdm(split.images, desc=f"select ({criterion}, threshold {threshold})", unit="img"):
        key = img["voc_id"]
        base, fixation = base_maps[key], fixation_maps[key]
        skipped = "base_map" if is_degenerate(base) else "fixation_map" if is_degenerate(fixation) else ""
        value = float("nan") if skipped else score(base, minmax(fixation), criterion=criterion)
        selected = not skipped and selects(value, criterion=criterion, threshold=threshold)
        rows.append({"id": key, "score": value, "selected": selected, "skipped": skipped})
    table = pd.DataFrame(rows, columns=["id", "score", "selected", "skipped"]).set_index("id")
    log.info("%s: %s selects %d of %d images", criterion, CRITERIA[criterion].rule, table["selected"].sum(), len(table))
    return table


def selection_counts(selection: pd.DataFrame) -> dict[str, int]:
    """The selection's counts for metrics/augment: selected images and the images skipped, by reason."""
    return {
        "selected": int(selection["selected"].sum()),
        "skipped_degenerate_base_maps": int((selection["skipped"] == "base_map").sum()),
        "skipped_degenerate_fixation_maps": int((selection["skipped"] == "fixation_map").sum()),
    }


def selective_set(
    split: PreparedSplit,
    out_dir: Path,
    *,
    selection: pd.DataFrame,
    base_maps: MapReader,
    fraction: float,
    fill: int,
    inpainting: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Erase (and, with ``inpainting``, fill back) the top ``fraction`` salient pixels of the selected images.

    Each changed image is written as it is made. Under torchrun each process takes a strided share of the
    selected images and writes them into ``out_dir`` (the same folder for all); rank 0 writes the JSON.
    """
    chosen = sorted(img["voc_id"] for img in split.images if selection.loc[img["voc_id"], "selected"])
    positions = distributed.shard(range(len(chosen)), distributed.rank(), distributed.world_size())
    images = {img["voc_id"]: img for img in split.images}
    erased, masks, shortfall = {}, {}, {}
    for key in tqdm([chosen[i] for i in positions], desc="erase", unit="img", disable=not distributed.is_main()):
        pixels = np.asarray(load_rgb(split.image_path(images[key])))
        erased[key], masks[key] = erase(pixels, base_maps[key], fraction=fraction, fill=fill)
        shortfall[key] = erase_count(pixels.shape, fraction) - int(masks[key].sum())
    edited = erased if inpainting is None else _inpaint(erased, masks, positions, dict(inpainting))
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    for key, image in edited.items():
        Image.fromarray(image).save(out_dir / _changed_name(key))
    short = [value for shard in distributed.gather_objects(shortfall) for value in shard.values() if value > 0]
    if distributed.is_main():
        _write_split(split, out_dir, dict.fromkeys(chosen, (None, None)))
        selection.to_csv(out_dir / "selection.csv", float_format="%.6g")
    return {
        "images": len(split.images),
        "changed": len(chosen),
        **selection_counts(selection),
        # Selected images whose map points at fewer pixels than the erase fraction: only those were erased.
        "erase_shortfall_images": len(short),
        "erase_shortfall_pixels": int(sum(short)),
    }


def _inpaint(
    images: dict[str, np.ndarray], masks: dict[str, np.ndarray], positions: Sequence[int], options: dict
) -> dict[str, np.ndarray]:
    """Fill the masked pixels of ``images`` (in order; ``positions``: their places among all selected images)."""
    method = options.pop("method")
    keys = list(images)
    if method == "dip":  # DIP optimises several images at once (batched by size)
        # Per-image seeds follow from the image's place among all selected ones, whichever process takes it.
        seeds = image_seeds(options.pop("seed"), max(positions, default=-1) + 1)
        filled = dip_inpaint_batch([images[k] for k in keys], [masks[k] for k in keys],
                                   seed=[seeds[i] for i in positions], **options)  # fmt: skip
        return dict(zip(keys, filled, strict=True))
    return {k: inpaint(images[k], masks[k], method=method, **options) for k in tqdm(keys, desc=method, unit="img")}


def policy_set(
    split: PreparedSplit, out_dir: Path, *, policy: Sequence[Mapping[str, Any]], seed: int, min_box_size: int
) -> dict[str, int]:
    """Every training image through the box-aware transformation policy once (seeded per image).

    An image the policy leaves as it was (no step fired, or only steps that changed nothing) keeps its
    original file and annotations and is not counted as changed.
    """
    transform = build_policy(policy, min_box_size=min_box_size)
    edits = {}
    for index, img in enumerate(tqdm(split.images, desc="non-trivial transforms", unit="img")):
        anns = split.annotations(img["id"])
        original = np.asarray(load_rgb(split.image_path(img)))
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        # The "labels" carried through the policy are annotation indices, so that each surviving box keeps
        # its category and difficult flag.
        image, new_boxes, kept = apply_policy(
            original, boxes, np.arange(len(anns)), transform, seed=seed * 1_000_003 + index
        )
        if (
            np.array_equal(image, original)
            and np.array_equal(kept, np.arange(len(anns)))
            and np.array_equal(new_boxes, boxes.reshape(-1, 4))
        ):
            continue
        edits[img["voc_id"]] = (
            image,
            [
                {**anns[k], "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)}
                for (x0, y0, x1, y1), k in zip(new_boxes.tolist(), kept.tolist(), strict=True)
            ],
        )
    _write_split(split, out_dir, edits)
    return {"images": len(split.images), "changed": len(edits)}


def _write_split(
    split: PreparedSplit, out_dir: Path, edits: Mapping[str, tuple[np.ndarray | None, list | None]]
) -> None:
    """Write ``train.json`` (and changed images) into ``out_dir``.

    ``edits`` maps a VOC id to (new image, or None when it is already written at the same size; new
    annotations, or None to keep the old ones).
    """
    data = copy.deepcopy(split.data)
    data["info"] = {**data["info"], "image_root": "."}
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    voc_ids = {img["id"]: img["voc_id"] for img in data["images"]}
    replaced = {key for key, (_, anns) in edits.items() if anns is not None}
    annotations = [a for a in data["annotations"] if voc_ids[a["image_id"]] not in replaced]
    for img in data["images"]:
        if img["voc_id"] not in edits:
            img["file_name"] = os.path.relpath(split.image_path(img), out_dir)
            continue
        image, new_annotations = edits[img["voc_id"]]
        img["file_name"] = _changed_name(img["voc_id"])
        if image is not None:
            img["height"], img["width"] = image.shape[:2]
            Image.fromarray(image).save(out_dir / img["file_name"])
        annotations.extend(new_annotations or [])
    for new_id, annotation in enumerate(sorted(annotations, key=lambda a: (a["image_id"], a["id"])), start=1):
        annotation["id"] = new_id
    data["annotations"] = sorted(annotations, key=lambda a: a["id"])
    write_json(out_dir / "train.json", data)


def _changed_name(voc_id: str) -> str:
    """Where a changed image is written, relative to the set's folder (PNG: lossless)."""
    return f"images/{voc_id}.png"
