"""Stage `score@<detector>`: one detector's maps against human masks, predicted and recorded fixations and the
planted cue, and its mAP, on each test condition (test; test_shifted where prepare wrote it) and MIT1003.

Also `score_trained`: the same for the main experiment's original model of the first seed (its maps come from
evaluate@original), the study tables' "trained here" row."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from human_saliency.cli import run_stage
from human_saliency.io.files import atomic_dir, read_json, write_json
from human_saliency.io.mapstore import MapReader
from human_saliency.maps.layout import MIT1003, detections_path, maps_path, random_maps_path
from human_saliency.params import load_params
from human_saliency.prepared.masks import cue_regions, working_size_masks
from human_saliency.prepared.splits import TEST, load_conditions
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.scoring import metrics as M
from human_saliency.scoring.detection_ap import evaluate_detections
from human_saliency.scoring.figures import write_overlays
from human_saliency.scoring.score import (
    CONDITION_DATASETS,
    STUDY_METRICS,
    absent,
    score_maps,
    score_mit1003,
    score_voc,
    study_metrics_path,
    summarize_scores,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--detector", required=True)
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder")
    parser.add_argument("--saliency", type=Path, required=True, help="this detector's saliency folder")
    parser.add_argument("--fixations", type=Path, required=True, help="predicted fixation maps folder")
    parser.add_argument("--scores", type=Path, required=True, help="per-image score CSVs (a DVC output)")
    parser.add_argument("--overlays", type=Path, required=True, help="overlay figures (a DVC image plot)")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/study folder")
    args = parser.parse_args()

    study = load_params(args.params).study
    conditions = load_conditions(args.prepared)
    test = conditions[TEST]
    masks = {name: working_size_masks(split, study.size) for name, split in conditions.items()}
    cues = {name: cue_regions(split, study.size) for name, split in conditions.items()}
    frames: dict[tuple[str, str], pd.DataFrame] = {}
    with contextlib.ExitStack() as stack:
        maps = {name: stack.enter_context(MapReader(maps_path(args.saliency, name))) for name in conditions}
        fixations = {name: stack.enter_context(MapReader(maps_path(args.fixations, name))) for name in conditions}
        for name in conditions:
            frames |= score_voc(
                maps[name],
                fixations[name],
                masks[name],
                cues=cues[name],
                dataset=CONDITION_DATASETS[name],
                iou_percentile=study.iou_percentile,
                mask_threshold=study.mask_threshold,
            )
            randomisation = random_maps_path(args.saliency, name)
            if randomisation.exists():  # trained weights: how much the map changes when they are randomised
                with MapReader(randomisation) as random_init:
                    frames[(CONDITION_DATASETS[name], "randomisation")] = score_maps(
                        maps[name],
                        ((key, random_init[key]) for key in masks[name]),
                        {"cc": M.cc},
                        desc="vs random init",
                    )
        with (
            MapReader(maps_path(args.saliency, MIT1003)) as mit_maps,
            MapReader(maps_path(args.fixations, MIT1003)) as mit_fixations,
        ):
            frames |= score_mit1003(
                mit_maps,
                mit_fixations,
                PreparedStimuli.load(args.prepared / "mit1003.json"),
                size=study.size,
                iou_percentile=study.iou_percentile,
            )
        panels = {args.detector: maps[TEST], "human mask": masks[TEST], "predicted fixations": fixations[TEST]}
        if any(region.any() for region in cues[TEST].values()):
            panels["planted cue"] = {key: region.astype(np.float32) for key, region in cues[TEST].items()}
        with atomic_dir(args.overlays) as tmp:
            write_overlays(tmp, test, test.images[: study.overlays], size=study.size, panels=panels)

    with atomic_dir(args.scores) as tmp:
        for (dataset, reference), frame in frames.items():
            frame.to_csv(tmp / f"{dataset}_{reference}.csv", float_format="%.6g")
    summaries = {key: summarize_scores(frame, n_boot=study.bootstrap) for key, frame in frames.items()}
    for dataset in CONDITION_DATASETS.values():
        if (dataset, "randomisation") in summaries:
            summaries[(dataset, "human_masks")]["randomisation_cc"] = summaries.pop((dataset, "randomisation"))["cc"]
    for name, split in conditions.items():
        detections = read_json(detections_path(args.saliency, name))
        summaries[(CONDITION_DATASETS[name], "detection")] = evaluate_detections(
            split.data, detections, n_boot=study.bootstrap
        )
    for key in STUDY_METRICS:  # dvc.yaml declares each: a condition this profile lacks gets an empty record
        summaries.setdefault(key, absent())
    for (dataset, reference), summary in summaries.items():
        write_json(study_metrics_path(args.metrics, dataset, reference, args.detector), summary)


if __name__ == "__main__":
    run_stage(main)
