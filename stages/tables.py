"""Stage `tables`: the write-up's tables, filled from metrics/, rendered into metrics/tables.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.experiment.arms import ARMS, AUGMENTED, CONTROL
from human_saliency.io.files import read_json, write_text
from human_saliency.params import load_params
from human_saliency.scoring.tables import STUDY_TABLES, load_rows, render_experiment_table, render_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/study folder")
    parser.add_argument("--saliency", type=Path, required=True, help="folder of the detectors' saliency outputs")
    parser.add_argument("--fixations", type=Path, required=True, help="predicted fixation maps folder")
    parser.add_argument("--experiment", type=Path, required=True, help="metrics/experiment folder")
    parser.add_argument("--augment", type=Path, required=True, help="metrics/augment folder (images changed)")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    args = parser.parse_args()

    params = load_params(args.params)
    detectors = params.study.detectors
    infos = {name: read_json(args.saliency / name / "info.json") for name in detectors}
    labels = {name: f"{info['label']} ({info['weights']})" for name, info in infos.items()}
    predictor = read_json(args.fixations / "info.json")["label"]
    profile = "embedded (generated offline)" if params.data.source == "embedded" else "paper (PASCAL VOC 2012, MIT1003)"
    caption = (
        f"Profile: {profile}. Weights: {params.study.weights}. Fixation predictor: {predictor}. "
        f"Working size {params.study.size}×{params.study.size}. Cells: mean [95 % bootstrap interval]."
    )

    sections = ["# Results", "", caption, ""]
    for spec in STUDY_TABLES:
        sections.append(render_table(spec, load_rows(args.metrics, spec, detectors), labels))

    train = params.train
    results = {arm: read_json(args.experiment / f"{arm}.json") for arm in ARMS}
    changed = {arm: read_json(args.augment / f"{arm}.json")["changed"] for arm in AUGMENTED}
    setup = (
        f"{train.detector} ({'COCO-pretrained, fine-tuned' if train.init == 'coco' else 'trained from scratch'}), "
        f"{train.epochs} epochs, SGD lr {train.lr}, batch {train.batch_size}, seed {train.seed}; selection: "
        f"{params.aug.criterion} with threshold {params.aug.threshold}, erase {params.aug.erase_fraction:.1%}, "
        f"inpainting: {params.inpaint.method}; base maps: {params.aug.base}. Δ: change against Original."
    )
    for reference, what in (
        ("human_masks", "human attention masks"),
        ("fixations", f"predicted fixations ({predictor})"),
    ):
        sections.append(
            render_experiment_table(
                f"Main experiment: augmentation vs mAP and saliency alignment with {what}",
                results,
                changed,
                reference=reference,
                labels=ARMS,
                control=CONTROL,
                caption=setup,
            )
        )
    write_text(args.out, "\n".join(sections))


if __name__ == "__main__":
    run_stage(main)
