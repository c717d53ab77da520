"""The main experiment's comparison: each arm against the control, over seeds and images, paired by image, on each
test condition (in distribution, shifted), with the AP50 gap between the two.

Every arm is trained with the same seeds and scored on the same test images. One bootstrap replicate draws
the images (shared by every arm: paired by image) and the seeds (shared by index: seed k of every arm starts
from the same initial weights and data order); an arm's value in the replicate is its pooled mean over the
drawn seeds and images (AP: the mean over the drawn seeds of the AP on the drawn images). The interval of an
arm covers both sources of spread, and the interval of its difference to the control (Δ) says whether the
difference is detectable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from human_saliency.io.files import read_json
from human_saliency.maps.layout import detections_path
from human_saliency.scoring.detection_ap import ap50_voc_replicates, evaluate_detections
from human_saliency.scoring.statistics import pooled_mean, pooled_replicates, replicate_summary, resample_weights

# The references an evaluated model may be scored against, one per-image CSV each.
REFERENCES = ("human_masks", "fixations", "randomisation", "cue")
# The AP50 difference between the first two test conditions (in distribution minus shifted) is reported as this.
GAP = "shift_gap"


@dataclass(frozen=True)
class SeedRun:
    """One trained model's evaluation on one test condition: per-image scores by reference (index: VOC id) and
    its detections."""

    scores: Mapping[str, pd.DataFrame]
    detections: list[dict[str, Any]]


def write_run(folder: Path, scores: Mapping[str, pd.DataFrame]) -> None:
    """Write one evaluated model's per-image scores on one condition, ``<reference>.csv``, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for reference, frame in scores.items():
        frame.to_csv(folder / f"{reference}.csv", float_format="%.6g")


def load_run(seed_folder: Path, condition: str) -> SeedRun:
    """One seed's evaluation on one condition, from its saliency folder (``evaluate@<arm>``'s ``seed<k>``): the
    scores :func:`write_run` wrote into ``<condition>/`` and the condition's detections."""
    folder = seed_folder / condition
    scores = {
        reference: pd.read_csv(folder / f"{reference}.csv", index_col="id")
        for reference in REFERENCES
        if (folder / f"{reference}.csv").exists()
    }
    return SeedRun(scores=scores, detections=read_json(detections_path(seed_folder, condition)))


def compare_arms(
    runs: Mapping[str, Mapping[str, Sequence[SeedRun]]],
    tests: Mapping[str, dict[str, Any]],
    *,
    control: str,
    columns: Mapping[str, Sequence[str]],
    n_boot: int,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per arm and test condition: AP50 (VOC) and each reference's ``columns`` as summaries over seeds and images,
    and each one's ``delta`` against ``control`` (mean, ci_low, ci_high); the AP50 of the first condition minus
    the second (``shift_gap``, with its delta) when there are two; the number of seeds.

    ``runs[arm][condition]`` lists the arm's seeds in seed order (every arm and condition the same seeds);
    ``tests[condition]`` is that condition's test split. The first condition is the reference of the image
    draws: an image of another condition is drawn with the reference image it is a twin of (``twin_of``, or
    the same VOC id), so a condition's replicates pair with the reference's, and the gap is paired by image.
    """
    n_seeds = {len(seeds) for conditions in runs.values() for seeds in conditions.values()}
    if len(n_seeds) != 1:
        found = ", ".join(f"{a}/{c}: {len(r)}" for a, conditions in runs.items() for c, r in conditions.items())
        raise ValueError(f"every arm and condition needs the same seeds, got {found}")
    positions = _pairing(tests)
    reference_weights = resample_weights(len(next(iter(positions.values()))), n_boot, seed)
    seed_weights = resample_weights(n_seeds.pop(), n_boot, seed + 1)

    values: dict[str, dict[str, tuple[float, np.ndarray]]] = {}
    for arm, conditions in runs.items():
        cells = values[arm] = {}
        for condition, arm_runs in conditions.items():
            gt, image_weights = tests[condition], reference_weights[:, positions[condition]]
            ids = [image["voc_id"] for image in gt["images"]]
            per_seed_ap = [evaluate_detections(gt, run.detections)["ap50_voc"] for run in arm_runs]
            ap_replicates = np.stack([ap50_voc_replicates(gt, run.detections, image_weights) for run in arm_runs])
            cells[f"{condition}/ap50_voc"] = (float(np.mean(per_seed_ap)), _seed_mean(ap_replicates.T, seed_weights))
            for reference, metrics in columns.items():
                for metric in metrics:
                    table = np.stack([run.scores[reference][metric].reindex(ids).to_numpy(float) for run in arm_runs])
                    cells[f"{condition}/{reference}/{metric}"] = (
                        pooled_mean(table),
                        pooled_replicates(table, image_weights, seed_weights),
                    )
        if len(conditions) >= 2:
            first, second = (cells[f"{condition}/ap50_voc"] for condition in list(conditions)[:2])
            cells[f"{GAP}/ap50_voc"] = (first[0] - second[0], first[1] - second[1])

    result: dict[str, dict[str, Any]] = {}
    for arm, cells in values.items():
        result[arm] = {"seeds": len(next(iter(runs[arm].values())))}
        for key, (point, replicates) in cells.items():
            base_point, base_replicates = values[control][key]
            _put(result[arm], key, replicate_summary(point, replicates))
            if arm != control:
                _put(result[arm], f"{key}_delta", replicate_summary(point - base_point, replicates - base_replicates))
    return result


def _pairing(tests: Mapping[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per condition, the position in the first condition of the image each of its images is drawn with."""
    reference = next(iter(tests.values()))
    position = {image["voc_id"]: k for k, image in enumerate(reference["images"])}
    pairing = {}
    for condition, gt in tests.items():
        twins = [image.get("twin_of", image["voc_id"]) for image in gt["images"]]
        unknown = [twin for twin in twins if twin not in position]
        if unknown:
            raise ValueError(f"{condition}: images {unknown[:3]} have no twin in {next(iter(tests))}")
        pairing[condition] = np.array([position[twin] for twin in twins], dtype=np.int64)
    return pairing


def _seed_mean(per_seed: np.ndarray, seed_weights: np.ndarray) -> np.ndarray:
    """B replicates × seeds values → each replicate's mean over its drawn seeds (NaN replicates dropped)."""
    weights = np.where(np.isfinite(per_seed), seed_weights, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(weights * np.nan_to_num(per_seed), axis=1) / weights.sum(axis=1)


def _put(tree: dict[str, Any], key: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for the key "a/b"."""
    *parents, leaf = key.split("/")
    for parent in parents:
        tree = tree.setdefault(parent, {})
    tree[leaf] = value
