"""Stage `tables`: the write-up's tables, filled from metrics/ and the per-image scores, into metrics/tables.md.

Rows are compared here, where they meet: paired by image for the study's detectors (per-image scores, AP
replicates on shared resamples), over seeds and images for the experiment's arms (the Δ against Original,
also written as metrics/experiment/comparison.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from human_saliency.cli import run_stage
from human_saliency.experiment.arms import ALIGNMENT, ARMS, AUGMENTED, CONTROL
from human_saliency.io.files import read_json, write_json, write_text
from human_saliency.params import load_params
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.scoring.comparison import compare_arms, load_run
from human_saliency.scoring.detection_ap import ap50_voc_replicates
from human_saliency.scoring.statistics import paired_difference, replicate_summary, resample_weights
from human_saliency.scoring.tables import (
    MARK_RULE,
    STUDY_TABLES,
    column_marks,
    load_rows,
    point,
    render_experiment_table,
    render_table,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder (the test split)")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/study folder")
    parser.add_argument("--saliency", type=Path, required=True, help="folder of the detectors' saliency outputs")
    parser.add_argument("--scores", type=Path, required=True, help="folder of the detectors' per-image scores")
    parser.add_argument("--fixations", type=Path, required=True, help="predicted fixation maps folder")
    parser.add_argument("--evaluate", type=Path, required=True, help="folder of the arms' evaluations")
    parser.add_argument("--augment", type=Path, required=True, help="metrics/augment folder (images changed)")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    parser.add_argument("--comparison", type=Path, required=True, help="the arms' Δ against Original (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    study = params.study
    test = PreparedSplit.load(args.prepared / "test.json")
    detectors = study.detectors
    infos = {name: read_json(args.saliency / name / "info.json") for name in detectors}
    labels = {name: f"{info['label']} ({info['weights']})" for name, info in infos.items()}
    predictor = read_json(args.fixations / "info.json")["label"]
    profile = "embedded (generated offline)" if params.data.source == "embedded" else "paper (PASCAL VOC 2012, MIT1003)"
    caption = (
        f"Profile: {profile}. Weights: {study.weights}. Fixation predictor: {predictor}. "
        f"Working size {study.size}×{study.size}. Cells: mean [95 % bootstrap interval over images]. {MARK_RULE}"
    )

    sections = ["# Results", "", caption, ""]
    image_weights = resample_weights(len(test.images), max(study.bootstrap, 1), study.seed)
    ap_replicates = {
        name: ap50_voc_replicates(test.data, read_json(args.saliency / name / "detections.json"), image_weights)
        for name in detectors
    }
    for spec in STUDY_TABLES:
        rows = load_rows(args.metrics, spec, detectors)
        if spec.reference == "detection":
            marks = column_marks(
                rows,
                ["ap50_voc"],
                lambda _, a, b, rows=rows: replicate_summary(
                    point(rows[a]["ap50_voc"]) - point(rows[b]["ap50_voc"]), ap_replicates[a] - ap_replicates[b]
                ),
            )
            detection_caption = (
                f"AP50 VOC: [95 % interval over images]. Every detector's detections alike: score ≥ "
                f"{study.score_threshold}, at most {study.max_detections} per image (each model's own cap, 300, "
                "before; DETR has 100 queries). COCO AP by pycocotools."
            )
            sections.append(render_table(spec, rows, labels, marks, caption=detection_caption))
            continue
        frames = {name: _frames(args.scores / name, spec.dataset, spec.reference) for name in detectors}
        marks = column_marks(
            rows,
            spec.columns,
            lambda column, a, b, frames=frames: paired_difference(
                *(_aligned(frames[a], frames[b], column)), n_boot=max(study.bootstrap, 1), seed=study.seed
            ),
        )
        sections.append(render_table(spec, rows, labels, marks))

    train, aug = params.train, params.aug
    comparison = compare_arms(
        {arm: [load_run(args.evaluate / arm)] for arm in ARMS},
        test.data,
        control=CONTROL,
        columns={"human_masks": ALIGNMENT, "fixations": ALIGNMENT, "randomisation": ("cc",)},
        n_boot=max(study.bootstrap, 1),
        seed=study.seed,
    )
    write_json(args.comparison, comparison)
    changed = {arm: read_json(args.augment / f"{arm}.json")["changed"] for arm in AUGMENTED}
    setup = (
        f"{train.detector} ({'COCO-pretrained, fine-tuned' if train.init == 'coco' else 'trained from scratch'}), "
        f"{train.epochs} epochs, lr {train.lr}, batch {train.batch_size}, seed {train.seed}; selection: "
        f"{aug.criterion} with threshold {aug.threshold}, erase {aug.erase_fraction:.1%}, "
        f"inpainting: {params.inpaint.method}; base maps: {aug.base}. Cells: mean [95 % interval over seeds and "
        "images]; Δ: change against Original [paired 95 % interval]; *: the interval excludes 0 (a detectable "
        "difference), otherwise no detectable difference."
    )
    for reference, what, extra in (
        ("human_masks", "human attention masks", [("randomisation", "cc")]),
        ("fixations", f"predicted fixations ({predictor})", []),
    ):
        sections.append(
            render_experiment_table(
                f"Main experiment: augmentation vs mAP and saliency alignment with {what}",
                comparison,
                columns=[(reference, metric) for metric in ALIGNMENT] + extra,
                labels=ARMS,
                changed=changed,
                caption=setup,
            )
        )
    write_text(args.out, "\n".join(sections))


def _frames(folder: Path, dataset: str, reference: str) -> dict[str, pd.DataFrame]:
    """A detector's per-image score tables that one study table's columns come from."""
    frames = {"": pd.read_csv(folder / f"{dataset}_{reference}.csv", index_col="id")}
    randomisation = folder / f"{dataset}_randomisation.csv"
    if reference == "human_masks" and randomisation.exists():
        frames["randomisation"] = pd.read_csv(randomisation, index_col="id")
    return frames


def _aligned(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Two detectors' per-image scores of one column, over the same images in one order."""
    source, name = ("randomisation", "cc") if column == "randomisation_cc" else ("", column)
    if source not in a or source not in b:
        return np.array([np.nan]), np.array([np.nan])
    left, right = a[source][name], b[source][name]
    return left.to_numpy(float), right.reindex(left.index).to_numpy(float)


if __name__ == "__main__":
    run_stage(main)
