"""Score detector maps against references, per image, and summarise with bootstrap intervals.

References: human attention masks (VOC test), predicted fixation maps (VOC test, MIT1003) and MIT1003's
recorded human fixations. A degenerate detector map (constant or not finite) or a degenerate reference (a
constant map, a human mask empty once binarised) gives NaN in every metric of that image: counted, never
averaged in, and every metric of one table averages the same images.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from human_saliency.io.mapstore import MapReader
from human_saliency.prepared.loaders import resize_map, resize_points
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.scoring import metrics as M
from human_saliency.scoring.statistics import summarize
from human_saliency.sources.mit1003 import load_fixmap, load_fixpts

log = logging.getLogger(__name__)

Metric = Callable[[np.ndarray, np.ndarray], float]


def study_metrics_path(root: Path, dataset: str, reference: str, detector: str) -> Path:
    """Where the score stage writes one detector's summary against one reference (dvc.yaml declares the same)."""
    return Path(root) / dataset / reference / f"{detector}.json"


def pair_metrics(iou_percentile: float = 90.0) -> dict[str, Metric]:
    """Map-vs-map metrics, both IoUs (corrected and the study's rule) at the top ``iou_percentile``."""
    return {
        **M.PAIR_METRICS,
        "iou": functools.partial(M.iou_top, percentile=iou_percentile),
        "iou_study": functools.partial(M.iou_top_study, percentile=iou_percentile),
    }


def mask_metrics(mask_threshold: float = 0.5) -> dict[str, Metric]:
    """Localisation metrics against a human mask binarised at ``mask_threshold``."""
    return {name: functools.partial(fn, mask_threshold=mask_threshold) for name, fn in M.MASK_METRICS.items()}


def mask_problem(mask_threshold: float) -> Callable[[np.ndarray], str | None]:
    """Why a human mask cannot serve as a reference: degenerate, or empty once binarised at ``mask_threshold``."""

    def problem(mask: np.ndarray) -> str | None:
        if reason := M.is_degenerate(mask):
            return reason
        return None if M.binarize_mask(mask, mask_threshold).any() else "empty_mask"

    return problem


def points_problem(points: np.ndarray) -> str | None:
    """Why a fixation-point map cannot serve as a reference: no fixated, or no unfixated, pixel."""
    return None if points.any() and not points.all() else "no_fixations" if not points.any() else "all_fixated"


def score_maps(
    detector_maps: MapReader,
    references: Iterable[tuple[str, np.ndarray]],
    metrics: dict[str, Metric],
    *,
    reference_problem: Callable[[np.ndarray], str | None] = M.is_degenerate,
    iou_percentile: float | None = None,
    desc: str = "score",
) -> pd.DataFrame:
    """One row per image id: every metric of the detector's map against that image's reference.

    An image whose detector map is degenerate (``degenerate``: constant, NaN, ...) or whose reference is
    (``reference``: ``reference_problem``'s reason) gets NaN in *every* metric, so that each metric of one
    table averages the same images. With ``iou_percentile``, ``iou_tied`` says whether either map's top
    region fell back to its pixels above the minimum (:func:`metrics.top_region_is_tied`).
    """
    rows = []
    for key, reference in tqdm(references, desc=desc, unit="img"):
        saliency = detector_maps[key]
        row = {
            "id": key,
            "degenerate": M.is_degenerate(saliency) or "",
            "reference": reference_problem(reference) or "",
        }
        scored = not row["degenerate"] and not row["reference"]
        for name, fn in metrics.items():
            row[name] = fn(saliency, reference) if scored else float("nan")
        if iou_percentile is not None:
            row["iou_tied"] = scored and (
                M.top_region_is_tied(saliency, iou_percentile) or M.top_region_is_tied(reference, iou_percentile)
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("id")


def min_max_for_mae(metrics: dict[str, Metric]) -> dict[str, Metric]:
    """MAE and both IoUs against a density use its min-max normalised form (the study's convention)."""
    wrap = {"mae", "iou", "iou_study"}
    return {name: (lambda a, b, fn=fn: fn(a, M.minmax(b))) if name in wrap else fn for name, fn in metrics.items()}


def summarize_scores(frame: pd.DataFrame, *, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Per metric: mean, 95 % bootstrap interval, n and n_excluded; plus the counts of images, degenerate
    detector maps, degenerate references and (for the IoU) top regions that fell back to the above-minimum pixels."""
    summary: dict[str, Any] = {
        "n_images": int(len(frame)),
        "n_degenerate_maps": int((frame["degenerate"] != "").sum()),
        "n_degenerate_references": int((frame["reference"] != "").sum()),
    }
    if "iou_tied" in frame:
        summary["n_top_ties"] = int(frame["iou_tied"].sum())
    for name in frame.columns.drop(["degenerate", "reference", "iou_tied"], errors="ignore"):
        stats = summarize(frame[name].to_numpy(dtype=float), n_boot=max(n_boot, 1), seed=seed)
        # No usable image: report the counts only (NaN is not valid JSON for DVC).
        summary[name] = {key: value for key, value in stats.items() if not _is_nan(value)}
    return summary


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def score_detector(
    *,
    voc_maps: MapReader,
    mit_maps: MapReader,
    voc_fixations: MapReader,
    mit_fixations: MapReader,
    masks: dict[str, np.ndarray],
    stimuli: PreparedStimuli,
    size: int,
    iou_percentile: float,
    mask_threshold: float,
) -> dict[tuple[str, str], pd.DataFrame]:
    """Every per-image score table of one detector, keyed by (dataset, reference).

    ``masks`` are the VOC test images' human masks at size×size, by VOC id.
    """
    pairs = pair_metrics(iou_percentile)
    vs_density = min_max_for_mae(pairs)
    mit = sorted(stimuli.stimuli, key=lambda s: s["id"])
    return {
        ("voc", "human_masks"): score_maps(
            voc_maps,
            masks.items(),
            {**pairs, **mask_metrics(mask_threshold)},
            reference_problem=mask_problem(mask_threshold),
            iou_percentile=iou_percentile,
            desc="VOC vs human masks",
        ),
        ("voc", "fixations"): score_maps(
            voc_maps,
            ((key, voc_fixations[key]) for key in masks),
            vs_density,
            iou_percentile=iou_percentile,
            desc="VOC vs predicted fixations",
        ),
        ("mit1003", "fixations"): score_maps(
            mit_maps,
            ((s["id"], mit_fixations[s["id"]]) for s in mit),
            vs_density,
            iou_percentile=iou_percentile,
            desc="MIT1003 vs predicted fixations",
        ),
        ("mit1003", "human_fixmaps"): score_maps(
            mit_maps,
            ((s["id"], resize_map(load_fixmap(stimuli.resolve(s["fixmap"])), size)) for s in mit),
            vs_density,
            iou_percentile=iou_percentile,
            desc="MIT1003 vs human fixation maps",
        ),
        ("mit1003", "human_fixpts"): score_maps(
            mit_maps,
            ((s["id"], resize_points(load_fixpts(stimuli.resolve(s["fixpts"])), size)) for s in mit),
            M.FIXATION_METRICS,
            reference_problem=points_problem,
            desc="MIT1003 vs human fixation points",
        ),
    }
