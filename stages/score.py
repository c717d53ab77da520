"""Stage `score@<detector>`: one detector's maps against human masks, predicted and recorded fixations and the
planted cue, and its mAP, on each test condition (test; test_shifted where prepare wrote it) and MIT1003.

Also `score_trained`: the same for the main experiment's original model of the first seed (its maps come from
evaluate@original), the study tables' "trained here" row."""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.io.files import atomic_dir, write_json
from human_saliency.io.mapstore import MapReader
from human_saliency.maps.layout import maps_path
from human_saliency.params import load_params
from human_saliency.prepared.masks import cue_regions, working_size_masks
from human_saliency.prepared.splits import TEST, load_conditions
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.scoring.figures import detector_panels, write_overlays
from human_saliency.scoring.score import score_detector, study_metrics_path, study_summaries, write_scores


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
    masks = {name: working_size_masks(split, study.size) for name, split in conditions.items()}
    cues = {name: cue_regions(split, study.size) for name, split in conditions.items()}
    frames = score_detector(
        args.saliency,
        args.fixations,
        PreparedStimuli.load(args.prepared / "mit1003.json"),
        masks=masks,
        cues=cues,
        size=study.size,
        iou_percentile=study.iou_percentile,
        mask_threshold=study.mask_threshold,
    )
    test = conditions[TEST]
    with (
        MapReader(maps_path(args.saliency, TEST)) as maps,
        MapReader(maps_path(args.fixations, TEST)) as fixations,
        atomic_dir(args.overlays) as tmp,
    ):
        panels = detector_panels(args.detector, maps, masks[TEST], fixations, cues[TEST])
        write_overlays(tmp, test, test.images[: study.overlays], size=study.size, panels=panels)
    with atomic_dir(args.scores) as tmp:
        write_scores(tmp, frames)
    summaries = study_summaries(frames, args.saliency, conditions, n_boot=study.bootstrap)
    for (dataset, reference), summary in summaries.items():
        write_json(study_metrics_path(args.metrics, dataset, reference, args.detector), summary)


if __name__ == "__main__":
    run_stage(main)
