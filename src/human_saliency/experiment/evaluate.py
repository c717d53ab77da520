"""The main experiment's evaluation of one fine-tuned model: mAP, saliency alignment and a randomisation check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from human_saliency.experiment.arms import ALIGNMENT
from human_saliency.io.mapstore import MapReader, MapWriter
from human_saliency.maps.detectors import build_detector
from human_saliency.maps.saliency import compute_saliency, write_random_init_maps
from human_saliency.prepared.loaders import split_images
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed
from human_saliency.scoring import metrics as M
from human_saliency.scoring.comparison import write_run
from human_saliency.scoring.detection_ap import evaluate_detections
from human_saliency.scoring.score import mask_problem, min_max_for_mae, pair_metrics, score_maps, summarize_scores


def evaluate_model(
    detector: str,
    model_path: Path,
    test: PreparedSplit,
    *,
    masks: dict[str, Any],
    fixations: MapReader,
    out_dir: Path,
    size: int,
    min_size: int | None,
    batch_size: int,
    score_threshold: float,
    max_detections: int,
    iou_percentile: float,
    mask_threshold: float,
    n_boot: int,
    seed: int,
    device: torch.device,
    num_workers: int = 0,
) -> dict[str, Any] | None:
    """Score the model at ``model_path`` on the test split. ``out_dir`` gets its maps (test.zip, test_random.zip),
    its detections (detections.json) and its per-image scores (human_masks.csv, fixations.csv,
    randomisation.csv), which the tables compare across arms.

    Returns numeric leaves only: AP numbers (AP50 with its image-level interval), MAE/IoU/CC against human
    masks and against predicted fixations (mean and 95 % interval), and ``randomisation_cc``: the CC between
    each image's map from the trained weights and from a random init of the same architecture (Adebayo et
    al. 2018): a map that barely changes when the weights are randomised says little about what the model
    learned.

    Under torchrun the maps are computed in shares by every process (``out_dir`` must be the same shared
    folder for all); rank 0 writes and scores them and returns the metrics, the others return None.
    """
    num_classes = len(test.category_names)
    refs = split_images(test)
    maps = {"test": out_dir / "test.zip", "test_random": out_dir / "test_random.zip"}
    with (
        build_detector(
            detector,
            weights=str(model_path),
            num_classes=num_classes,
            min_size=min_size,
            score_threshold=score_threshold,
            max_detections=max_detections,
        ) as model,
        distributed.on_main(MapWriter, maps["test"]) as writer,
    ):
        detections, _ = compute_saliency(
            model.to(device), refs, writer, size=size, batch_size=batch_size, num_workers=num_workers
        )
    with distributed.on_main(MapWriter, maps["test_random"]) as writer:
        write_random_init_maps(
            detector,
            refs,
            writer,
            num_classes=num_classes,
            seed=seed,
            size=size,
            min_size=min_size,
            batch_size=batch_size,
            num_workers=num_workers,
            device=device,
        )
    if not distributed.is_main():
        return None

    accuracy = evaluate_detections(test.data, detections, n_boot=n_boot, seed=seed)
    pairs = {name: fn for name, fn in pair_metrics(iou_percentile).items() if name in ALIGNMENT}
    with MapReader(maps["test"]) as trained, MapReader(maps["test_random"]) as random:
        frames = {
            "human_masks": score_maps(
                trained,
                masks.items(),
                pairs,
                reference_problem=mask_problem(mask_threshold),
                iou_percentile=iou_percentile,
                desc="vs human masks",
            ),
            "fixations": score_maps(
                trained,
                ((k, fixations[k]) for k in masks),
                min_max_for_mae(pairs),
                iou_percentile=iou_percentile,
                desc="vs predicted fixations",
            ),
            "randomisation": score_maps(trained, ((k, random[k]) for k in masks), {"cc": M.cc}, desc="vs random init"),
        }
    write_run(out_dir, frames, detections)
    summaries = {reference: summarize_scores(frame, n_boot=n_boot, seed=seed) for reference, frame in frames.items()}
    return {
        "ap50_voc": accuracy["ap50_voc"],
        "ap_coco": accuracy["ap_coco"],
        "ap50_coco": accuracy["ap50_coco"],
        "human_masks": summaries["human_masks"],
        "fixations": summaries["fixations"],
        "randomisation_cc": summaries["randomisation"]["cc"],
    }
