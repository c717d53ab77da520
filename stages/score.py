"""Stage `score@<detector>`: one detector's maps against human masks, predicted and recorded fixations; its mAP."""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.io.files import atomic_dir, read_json, write_json
from human_saliency.io.mapstore import MapReader
from human_saliency.params import load_params
from human_saliency.prepared.masks import working_size_masks
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.scoring import metrics as M
from human_saliency.scoring.detection_ap import evaluate_detections
from human_saliency.scoring.figures import write_overlays
from human_saliency.scoring.score import score_detector, score_maps, study_metrics_path, summarize_scores


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
    test = PreparedSplit.load(args.prepared / "test.json")
    masks = working_size_masks(test, study.size)
    with (
        MapReader(args.saliency / "test.zip") as voc_maps,
        MapReader(args.saliency / "mit1003.zip") as mit_maps,
        MapReader(args.fixations / "test.zip") as voc_fixations,
        MapReader(args.fixations / "mit1003.zip") as mit_fixations,
    ):
        frames = score_detector(
            voc_maps=voc_maps,
            mit_maps=mit_maps,
            voc_fixations=voc_fixations,
            mit_fixations=mit_fixations,
            masks=masks,
            stimuli=PreparedStimuli.load(args.prepared / "mit1003.json"),
            size=study.size,
            iou_percentile=study.iou_percentile,
            mask_threshold=study.mask_threshold,
        )
        with atomic_dir(args.overlays) as tmp:
            write_overlays(
                tmp,
                test,
                test.images[: study.overlays],
                size=study.size,
                panels={
                    args.detector: voc_maps,
                    "human mask": masks,
                    "predicted fixations": voc_fixations,
                },
            )

    randomisation = args.saliency / "test_random.zip"
    if randomisation.exists():  # trained weights: how much the map changes when they are randomised
        with MapReader(args.saliency / "test.zip") as trained, MapReader(randomisation) as random_init:
            frames[("voc", "randomisation")] = score_maps(
                trained, ((key, random_init[key]) for key in masks), {"cc": M.cc}, desc="vs random init"
            )
    with atomic_dir(args.scores) as tmp:
        for (dataset, reference), frame in frames.items():
            frame.to_csv(tmp / f"{dataset}_{reference}.csv", float_format="%.6g")
    summaries = {key: summarize_scores(frame, n_boot=study.bootstrap) for key, frame in frames.items()}
    if ("voc", "randomisation") in summaries:
        summaries[("voc", "human_masks")]["randomisation_cc"] = summaries.pop(("voc", "randomisation"))["cc"]
    for (dataset, reference), summary in summaries.items():
        write_json(study_metrics_path(args.metrics, dataset, reference, args.detector), summary)
    detections = read_json(args.saliency / "detections.json")
    detection = evaluate_detections(test.data, detections, n_boot=study.bootstrap)
    write_json(study_metrics_path(args.metrics, "voc", "detection", args.detector), detection)


if __name__ == "__main__":
    run_stage(main)
