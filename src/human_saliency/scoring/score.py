"""Score detector maps against references, per image, and summarise with bootstrap intervals.

References: human attention masks (VOC test), predicted fixation maps (VOC test, MIT1003) and MIT1003's
recorded human fixations. A degenerate detector map (constant or not finite) or an empty human mask gives
NaN for that image: it is counted in ``n_excluded``, never averaged in.
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
from human_saliency.sources.mit1003 import load_fixmap, load_fixpts

log = logging.getLogger(__name__)

Metric = Callable[[np.ndarray, np.ndarray], float]


def study_metrics_path(root: Path, dataset: str, reference: str, detector: str) -> Path:
    """Where the score stage writes one detector's summary against one reference (dvc.yaml declares the same)."""
    return Path(root) / dataset / reference / f"{detector}.json"


def pair_metrics(iou_percentile: float = 90.0) -> dict[str, Metric]:
    """Map-vs-map metrics with the study's top-percentile IoU."""
    return {**M.PAIR_METRICS, "iou": functools.partial(M.iou_top, percentile=iou_percentile)}


def mask_metrics(mask_threshold: float = 0.5) -> dict[str, Metric]:
    """Localisation metrics against a human mask binarised at ``mask_threshold``."""
    return {name: functools.partial(fn, mask_threshold=mask_threshold) for name, fn in M.MASK_METRICS.items()}


def _score_one(saliency: np.ndarray, reference: np.ndarray, metrics: dict[str, Metric]) -> dict[str, float]:
    if M.is_degenerate(saliency):
        return dict.fromkeys(metrics, float("nan"))
    row = {}
    for name, fn in metrics.items():
        try:
            row[name] = fn(saliency, reference)
        except ValueError:  # e.g. a human mask that is empty once binarised: nothing to localise
            row[name] = float("nan")
    return row


def score_maps(
    detector_maps: MapReader,
    references: Iterable[tuple[str, np.ndarray]],
    metrics: dict[str, Metric],
    *,
    desc: str = "score",
) -> pd.DataFrame:
    """One row per image id: every metric of the detector's map against that image's reference."""
    rows = []
    for key, reference in tqdm(references, desc=desc, unit="img"):
        saliency = detector_maps[key]
        rows.append(
            {"id": key, "degenerate": M.is_degenerate(saliency) or "", **_score_one(saliency, reference, metrics)}
        )
    return pd.DataFrame(rows).set_index("id")


def min_max_for_mae(metrics: dict[str, Metric]) -> dict[str, Metric]:
    """MAE and IoU against a density use its min-max normalised form (the study's convention)."""
    wrap = {"mae", "iou"}
    return {name: (lambda a, b, fn=fn: fn(a, M.minmax(b))) if name in wrap else fn for name, fn in metrics.items()}


def summarize_scores(frame: pd.DataFrame, *, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Per metric: mean, 95 % bootstrap interval, n and n_excluded; plus image and degenerate-map counts."""
    summary: dict[str, Any] = {
        "n_images": int(len(frame)),
        "n_degenerate_maps": int((frame["degenerate"] != "").sum()),
    }
    for name in frame.columns.drop("degenerate"):
        stats = M.summarize(frame[name].to_numpy(), n_boot=max(n_boot, 1), seed=seed)
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
            voc_maps, masks.items(), {**pairs, **mask_metrics(mask_threshold)}, desc="VOC vs human masks"
        ),
        ("voc", "fixations"): score_maps(
            voc_maps, ((key, voc_fixations[key]) for key in masks), vs_density, desc="VOC vs predicted fixations"
        ),
        ("mit1003", "fixations"): score_maps(
            mit_maps,
            ((s["id"], mit_fixations[s["id"]]) for s in mit),
            vs_density,
            desc="MIT1003 vs predicted fixations",
        ),
        ("mit1003", "human_fixmaps"): score_maps(
            mit_maps,
            ((s["id"], resize_map(load_fixmap(stimuli.resolve(s["fixmap"])), size)) for s in mit),
            vs_density,
            desc="MIT1003 vs human fixation maps",
        ),
        ("mit1003", "human_fixpts"): score_maps(
            mit_maps,
            ((s["id"], resize_points(load_fixpts(stimuli.resolve(s["fixpts"])), size)) for s in mit),
            M.FIXATION_METRICS,
            desc="MIT1003 vs human fixation points",
        ),
    }
