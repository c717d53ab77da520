"""Score detector maps against references, per image, and summarise with bootstrap intervals.

References: human attention masks (VOC test), predicted fixation maps (VOC test, MIT1003) and MIT1003's
recorded human fixations; where the embedded generator planted a cue, the cue's pixels (the share of the map's
mass on them, against their share of the image); and, for trained weights, the same architecture's maps at random
init (the randomisation check). A degenerate detector map (constant or not finite) or a degenerate reference (a
constant map, a human mask empty once binarised, an image without a cue) gives NaN in every metric of that image:
counted, never averaged in, and every metric of one table averages the same images.

Each VOC test condition is a dataset of the metrics: ``voc`` (the test split) and ``voc_shifted`` (its twins
with the cues shifted, embedded data only).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from human_saliency.io.files import read_json
from human_saliency.io.mapstore import MapReader
from human_saliency.maps.layout import MIT1003, detections_path, maps_path, random_maps_path
from human_saliency.prepared.loaders import resize_map, resize_points
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.scoring import metrics as M
from human_saliency.scoring.detection_ap import evaluate_detections
from human_saliency.scoring.statistics import summarize, without_nan
from human_saliency.sources.mit1003 import load_fixmap, load_fixpts

log = logging.getLogger(__name__)

Metric = Callable[[np.ndarray, np.ndarray], float]


# The metrics dataset of each VOC test condition (prepared split name → dataset).
CONDITION_DATASETS = {"test": "voc", "test_shifted": "voc_shifted"}
# The share of the map's mass on the cue, the cue's share of the image (what a map that ignores the cue puts
# there: a constant map scores it exactly), and the difference (positive: the map points at the cue).
CUE_METRICS: dict[str, Metric] = {
    "mass": M.region_mass,
    "area": lambda saliency, region: float(np.mean(region)),
    "excess": lambda saliency, region: M.region_mass(saliency, region) - float(np.mean(region)),
}


# Every metrics file a study row gets, (dataset, reference): dvc.yaml declares each one for score@<detector> and
# score_trained, so a test condition the profile lacks gets a file too (:func:`absent`).
STUDY_METRICS = (
    *(
        (dataset, reference)
        for dataset in ("voc", "voc_shifted")
        for reference in ("detection", "human_masks", "fixations", "cue")
    ),
    ("mit1003", "fixations"),
    ("mit1003", "human_fixmaps"),
    ("mit1003", "human_fixpts"),
)


def absent() -> dict[str, int]:
    """The metrics of a test condition this profile does not have: no image (the tables leave it out)."""
    return {"n_images": 0}


def cue_problem(region: np.ndarray) -> str | None:
    """Why an image's cue region cannot serve as a reference: it has no cue (real data; ``shifted_cue: none``)."""
    return None if np.any(region) else "no_cue"


def scores_path(folder: Path, dataset: str, reference: str) -> Path:
    """Where the score stage writes one detector's per-image scores against one reference (the tables read them)."""
    return Path(folder) / f"{dataset}_{reference}.csv"


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
        summary[name] = without_nan(stats)
    return summary


def score_voc(
    maps: MapReader,
    fixations: MapReader,
    masks: Mapping[str, np.ndarray],
    *,
    cues: Mapping[str, np.ndarray],
    dataset: str,
    iou_percentile: float,
    mask_threshold: float,
    metrics: Collection[str] | None = None,
) -> dict[tuple[str, str], pd.DataFrame]:
    """One VOC test condition's per-image score tables, keyed by (``dataset``, reference): human masks, predicted
    fixations and the cue (``cues``: each image's cue region at the working size).

    ``masks`` are the condition's human masks at size×size, by VOC id (every image has one). ``metrics``: the
    names of the metrics to compute against masks and fixations (default: every one)."""
    pairs = pair_metrics(iou_percentile)
    vs_masks = {**pairs, **mask_metrics(mask_threshold)}
    if metrics is not None:
        pairs = {name: fn for name, fn in pairs.items() if name in metrics}
        vs_masks = {name: fn for name, fn in vs_masks.items() if name in metrics}
    return {
        (dataset, "human_masks"): score_maps(
            maps,
            masks.items(),
            vs_masks,
            reference_problem=mask_problem(mask_threshold),
            iou_percentile=iou_percentile,
            desc=f"{dataset} vs human masks",
        ),
        (dataset, "fixations"): score_maps(
            maps,
            ((key, fixations[key]) for key in masks),
            min_max_for_mae(pairs),
            iou_percentile=iou_percentile,
            desc=f"{dataset} vs predicted fixations",
        ),
        (dataset, "cue"): score_cue(maps, ((key, cues[key]) for key in masks), desc=f"{dataset} cue mass"),
    }


def score_cue(maps: MapReader, regions: Iterable[tuple[str, np.ndarray]], *, desc: str = "cue mass") -> pd.DataFrame:
    """Per image: the map's mass on the planted cue, the cue's area share and their difference (:data:`CUE_METRICS`);
    NaN (``reference``: no_cue) for an image without a cue."""
    return score_maps(maps, regions, CUE_METRICS, reference_problem=cue_problem, desc=desc)


def score_mit1003(
    maps: MapReader, fixations: MapReader, stimuli: PreparedStimuli, *, size: int, iou_percentile: float
) -> dict[tuple[str, str], pd.DataFrame]:
    """MIT1003's per-image score tables: predicted fixations, recorded fixation maps and fixation points."""
    vs_density = min_max_for_mae(pair_metrics(iou_percentile))
    mit = sorted(stimuli.stimuli, key=lambda s: s["id"])
    return {
        ("mit1003", "fixations"): score_maps(
            maps,
            ((s["id"], fixations[s["id"]]) for s in mit),
            vs_density,
            iou_percentile=iou_percentile,
            desc="MIT1003 vs predicted fixations",
        ),
        ("mit1003", "human_fixmaps"): score_maps(
            maps,
            ((s["id"], resize_map(load_fixmap(stimuli.resolve(s["fixmap"])), size)) for s in mit),
            vs_density,
            iou_percentile=iou_percentile,
            desc="MIT1003 vs human fixation maps",
        ),
        ("mit1003", "human_fixpts"): score_maps(
            maps,
            ((s["id"], resize_points(load_fixpts(stimuli.resolve(s["fixpts"])), size)) for s in mit),
            M.FIXATION_METRICS,
            reference_problem=points_problem,
            desc="MIT1003 vs human fixation points",
        ),
    }


def score_detector(
    saliency: Path,
    fixations: Path,
    stimuli: PreparedStimuli,
    *,
    masks: Mapping[str, Mapping[str, np.ndarray]],
    cues: Mapping[str, Mapping[str, np.ndarray]],
    size: int,
    iou_percentile: float,
    mask_threshold: float,
) -> dict[tuple[str, str], pd.DataFrame]:
    """Every per-image score table of one detector's saliency folder (``maps.layout``), keyed by (dataset, reference).

    Per test condition (``masks`` and ``cues``: by condition, then by VOC id) :func:`score_voc` and, where the
    folder has random-init maps (trained weights), ``randomisation``: the CC of the map with the random-init one;
    then :func:`score_mit1003`. ``fixations`` is the predicted fixation maps folder.
    """
    frames: dict[tuple[str, str], pd.DataFrame] = {}
    for name, condition_masks in masks.items():
        dataset = CONDITION_DATASETS[name]
        with MapReader(maps_path(saliency, name)) as maps, MapReader(maps_path(fixations, name)) as predicted:
            frames |= score_voc(
                maps,
                predicted,
                condition_masks,
                cues=cues[name],
                dataset=dataset,
                iou_percentile=iou_percentile,
                mask_threshold=mask_threshold,
            )
            randomisation = random_maps_path(saliency, name)
            if randomisation.exists():
                with MapReader(randomisation) as random_init:
                    frames[(dataset, "randomisation")] = score_maps(
                        maps,
                        ((key, random_init[key]) for key in condition_masks),
                        {"cc": M.cc},
                        desc="vs random init",
                    )
    with (
        MapReader(maps_path(saliency, MIT1003)) as mit_maps,
        MapReader(maps_path(fixations, MIT1003)) as mit_fixations,
    ):
        frames |= score_mit1003(mit_maps, mit_fixations, stimuli, size=size, iou_percentile=iou_percentile)
    return frames


def write_scores(folder: Path, frames: Mapping[tuple[str, str], pd.DataFrame]) -> None:
    """Write each per-image score table into ``folder`` (:func:`scores_path`)."""
    for (dataset, reference), frame in frames.items():
        frame.to_csv(scores_path(folder, dataset, reference), float_format="%.6g")


def study_summaries(
    frames: Mapping[tuple[str, str], pd.DataFrame],
    saliency: Path,
    conditions: Mapping[str, PreparedSplit],
    *,
    n_boot: int,
) -> dict[tuple[str, str], dict[str, Any]]:
    """The metrics records of one study row, keyed by (dataset, reference): every table of :func:`score_detector`
    summarised (the randomisation check as the human-mask record's ``randomisation_cc``), each condition's
    detections in the saliency folder scored, and :func:`absent` for every :data:`STUDY_METRICS` key left."""
    summaries = {key: summarize_scores(frame, n_boot=n_boot) for key, frame in frames.items()}
    for dataset in CONDITION_DATASETS.values():
        if (dataset, "randomisation") in summaries:
            summaries[(dataset, "human_masks")]["randomisation_cc"] = summaries.pop((dataset, "randomisation"))["cc"]
    for name, split in conditions.items():
        detections = read_json(detections_path(saliency, name))
        summaries[(CONDITION_DATASETS[name], "detection")] = evaluate_detections(split.data, detections, n_boot=n_boot)
    for key in STUDY_METRICS:  # dvc.yaml declares each: a condition this profile lacks gets an empty record
        summaries.setdefault(key, absent())
    return summaries
