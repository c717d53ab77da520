"""The main experiment's evaluation of one arm: every seed's model on every test condition — mAP, saliency
alignment, the randomisation check and the mass on the planted cue — summarised over seeds and images."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from human_saliency.experiment.arms import ALIGNMENT, COLUMNS, seed_dir
from human_saliency.io.files import read_json, write_json
from human_saliency.io.mapstore import MapReader, MapWriter
from human_saliency.maps.detectors import build_detector
from human_saliency.maps.layout import MIT1003, detections_path, info_path, maps_path, random_maps_path
from human_saliency.maps.saliency import compute_saliency, write_random_init_maps
from human_saliency.prepared.loaders import ImageRef, split_images
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed
from human_saliency.scoring import metrics as M
from human_saliency.scoring.comparison import SeedRun, compare_arms, write_run
from human_saliency.scoring.detection_ap import evaluate_detections
from human_saliency.scoring.score import score_maps, score_voc
from human_saliency.scoring.statistics import without_nan


def evaluate_arm(
    detector: str,
    models: Mapping[int, Path],
    conditions: Mapping[str, PreparedSplit],
    *,
    masks: Mapping[str, Mapping[str, np.ndarray]],
    cues: Mapping[str, Mapping[str, np.ndarray]],
    fixations: Mapping[str, MapReader],
    stimuli: Sequence[ImageRef],
    out_dir: Path,
    label: str,
    size: int,
    min_size: int | None,
    batch_size: int,
    score_threshold: float,
    max_detections: int,
    proposals: int | None,
    iou_percentile: float,
    mask_threshold: float,
    n_boot: int,
    seed: int,
    device: torch.device,
    num_workers: int = 0,
) -> dict[str, Any] | None:
    """Map and score each seed's model (``models``: seed → model file, in seed order) on each test condition.

    ``out_dir/seed<k>/`` gets what ``saliency@<detector>`` writes for a detector (``maps.layout``): maps of each
    condition and of MIT1003, each condition's detections and random-init maps (the same architecture seeded
    with ``seed``, computed once and copied: the randomisation check of Adebayo et al. 2018), info.json; and per
    condition a folder of per-image scores (:func:`comparison.write_run`: human masks, predicted fixations,
    randomisation, cue). ``masks``, ``cues`` and ``fixations`` are by condition, then by VOC id.

    Returns numeric leaves only (rank 0; the other processes of a torchrun group return None): per condition
    AP50 and each column of :data:`COLUMNS` as a mean with its 95 % interval over seeds and images
    (:func:`comparison.compare_arms`), the in-distribution minus shifted AP50 (``shift_gap``) when both
    conditions exist, and each seed's AP numbers (``per_seed``).
    """
    num_classes = len(next(iter(conditions.values())).category_names)
    refs = {name: split_images(split) for name, split in conditions.items()}
    options = dict(size=size, batch_size=batch_size, num_workers=num_workers)
    first = seed_dir(out_dir, next(iter(models)))
    for name in conditions:
        with distributed.on_main(MapWriter, random_maps_path(first, name)) as writer:
            write_random_init_maps(
                detector, refs[name], writer, num_classes=num_classes, seed=seed, min_size=min_size, device=device,
                **options,
            )  # fmt: skip
    for model_seed, model_path in models.items():
        folder = seed_dir(out_dir, model_seed)
        info: dict[str, Any] = {"size": size, "counts": {}}
        with build_detector(
            detector, weights=str(model_path), num_classes=num_classes, min_size=min_size,
            score_threshold=score_threshold, max_detections=max_detections, proposals=proposals,
        ) as model:  # fmt: skip
            model.to(device)
            info |= {"detector": model.name, "label": model.label, "weights": f"{label}, seed {model_seed}"}
            for name, images in {**refs, MIT1003: stimuli}.items():
                with distributed.on_main(MapWriter, maps_path(folder, name)) as writer:
                    detections, info["counts"][name] = compute_saliency(
                        model, images, writer, with_detections=name in conditions, **options
                    )
                if name in conditions and distributed.is_main():
                    write_json(detections_path(folder, name), detections)
        if distributed.is_main():
            write_json(info_path(folder), info)
            if folder != first:
                for name in conditions:
                    shutil.copyfile(random_maps_path(first, name), random_maps_path(folder, name))
    if not distributed.is_main():
        return None

    runs: dict[str, list[SeedRun]] = {name: [] for name in conditions}
    per_seed: dict[str, Any] = {}
    for model_seed in models:
        folder = seed_dir(out_dir, model_seed)
        for name, split in conditions.items():
            detections = read_json(detections_path(folder, name))
            scores = score_run(
                folder, name, masks=masks[name], cues=cues[name], fixations=fixations[name],
                iou_percentile=iou_percentile, mask_threshold=mask_threshold,
            )  # fmt: skip
            write_run(folder / name, scores)
            runs[name].append(SeedRun(scores=scores, detections=detections))
            accuracy = evaluate_detections(split.data, detections)
            per_seed.setdefault(f"seed{model_seed}", {})[name] = {
                key: accuracy[key] for key in ("ap50_voc", "ap_coco", "ap50_coco")
            }
    summary = compare_arms(
        {"arm": runs}, {name: split.data for name, split in conditions.items()}, control="arm", columns=COLUMNS,
        n_boot=max(n_boot, 1), seed=seed,
    )["arm"]  # fmt: skip
    return without_nan({**summary, "per_seed": per_seed})


def score_run(
    folder: Path,
    condition: str,
    *,
    masks: Mapping[str, np.ndarray],
    cues: Mapping[str, np.ndarray],
    fixations: MapReader,
    iou_percentile: float,
    mask_threshold: float,
) -> dict[str, Any]:
    """One seed's per-image scores on one condition, by reference (:data:`COLUMNS`), from its saliency folder: the
    study's scoring (:func:`score_voc`) restricted to :data:`ALIGNMENT`, and the CC with the random-init maps."""
    with (
        MapReader(maps_path(folder, condition)) as trained,
        MapReader(random_maps_path(folder, condition)) as random,
    ):
        frames = score_voc(
            trained, fixations, masks, cues=cues, dataset=condition, iou_percentile=iou_percentile,
            mask_threshold=mask_threshold, metrics=ALIGNMENT,
        )  # fmt: skip
        scores = {reference: frame for (_, reference), frame in frames.items()}
        scores["randomisation"] = score_maps(
            trained, ((k, random[k]) for k in masks), {"cc": M.cc}, desc=f"{condition} vs random init"
        )
        return scores
