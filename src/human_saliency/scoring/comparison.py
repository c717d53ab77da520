"""The main experiment's comparison: each arm against the control, over seeds and images, paired by image.

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

from human_saliency.io.files import read_json, write_json
from human_saliency.scoring.detection_ap import ap50_voc_replicates, evaluate_detections
from human_saliency.scoring.statistics import pooled_mean, pooled_replicates, replicate_summary, resample_weights

# The references an evaluated model is scored against, one per-image CSV each.
REFERENCES = ("human_masks", "fixations", "randomisation")


@dataclass(frozen=True)
class SeedRun:
    """One trained model's evaluation: per-image scores by reference (index: VOC id) and its detections."""

    scores: Mapping[str, pd.DataFrame]
    detections: list[dict[str, Any]]


def write_run(folder: Path, scores: Mapping[str, pd.DataFrame], detections: list[dict[str, Any]]) -> None:
    """Write one evaluated model's per-image scores (``<reference>.csv``) and detections into ``folder``."""
    for reference in REFERENCES:
        scores[reference].to_csv(folder / f"{reference}.csv", float_format="%.6g")
    write_json(folder / "detections.json", detections)


def load_run(folder: Path) -> SeedRun:
    """One evaluated model's per-image scores and detections, as :func:`write_run` wrote them."""
    scores = {reference: pd.read_csv(folder / f"{reference}.csv", index_col="id") for reference in REFERENCES}
    return SeedRun(scores=scores, detections=read_json(folder / "detections.json"))


def compare_arms(
    runs: Mapping[str, Sequence[SeedRun]],
    gt: dict[str, Any],
    *,
    control: str,
    columns: Mapping[str, Sequence[str]],
    n_boot: int,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per arm: AP50 (VOC) and each reference's ``columns`` as summaries over seeds and images, and each one's
    ``delta`` against ``control`` (mean, ci_low, ci_high), with the number of seeds.

    ``runs[arm]`` lists the arm's seeds in seed order (every arm the same seeds); ``gt`` is the test split.
    """
    n_seeds = {len(arm_runs) for arm_runs in runs.values()}
    if len(n_seeds) != 1:
        raise ValueError(f"every arm needs the same seeds, got {', '.join(f'{a}: {len(r)}' for a, r in runs.items())}")
    ids = [image["voc_id"] for image in gt["images"]]
    image_weights = resample_weights(len(ids), n_boot, seed)
    seed_weights = resample_weights(n_seeds.pop(), n_boot, seed + 1)

    values: dict[str, dict[str, tuple[float, np.ndarray]]] = {}
    for arm, arm_runs in runs.items():
        per_seed_ap = [evaluate_detections(gt, run.detections)["ap50_voc"] for run in arm_runs]
        ap_replicates = np.stack([ap50_voc_replicates(gt, run.detections, image_weights) for run in arm_runs])
        values[arm] = {"ap50_voc": (float(np.mean(per_seed_ap)), _seed_mean(ap_replicates.T, seed_weights))}
        for reference, metrics in columns.items():
            for metric in metrics:
                table = np.stack([run.scores[reference][metric].reindex(ids).to_numpy(float) for run in arm_runs])
                values[arm][f"{reference}/{metric}"] = (
                    pooled_mean(table),
                    pooled_replicates(table, image_weights, seed_weights),
                )

    result: dict[str, dict[str, Any]] = {}
    for arm, cells in values.items():
        result[arm] = {"seeds": len(runs[arm])}
        for key, (point, replicates) in cells.items():
            base_point, base_replicates = values[control][key]
            _put(result[arm], key, replicate_summary(point, replicates))
            if arm != control:
                _put(result[arm], f"{key}_delta", replicate_summary(point - base_point, replicates - base_replicates))
    return result


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
