"""Stage `tables`: the write-up's tables, filled from metrics/ and the per-image scores, into metrics/tables.md.

Rows are compared here, where they meet: paired by image for the study's detectors and the model trained here
(per-image scores, AP replicates on shared resamples), over seeds and images for the experiment's arms on each
test condition (the Δ against Original, and the in-distribution − shifted AP50 gap, also written as
metrics/comparison.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from human_saliency.cli import run_stage
from human_saliency.experiment.arms import ALIGNMENT, ARMS, AUGMENTED, COLUMNS, CONTROL, TRAINED_ROW, seed_dir
from human_saliency.io.files import read_json, write_json, write_text
from human_saliency.maps.layout import detections_path, info_path
from human_saliency.params import load_params
from human_saliency.prepared.splits import SHIFTED, TEST, load_conditions
from human_saliency.scoring.comparison import GAP, compare_arms, load_run, without_nan
from human_saliency.scoring.detection_ap import ap50_voc_replicates
from human_saliency.scoring.score import CONDITION_DATASETS
from human_saliency.scoring.statistics import paired_difference, replicate_summary, resample_weights
from human_saliency.scoring.tables import (
    CUE_CAPTION,
    LABELS,
    MARK_RULE,
    STUDY_TABLES,
    Column,
    column_marks,
    has_values,
    load_rows,
    point,
    render_experiment_table,
    render_table,
)

# What the shifted test condition's twins carry (data.embedded.shifted_cue).
SHIFTED_CUE = {
    "other": "each test image's twin with every cue naming another class than its object's",
    "random": "each test image's twin with every cue naming a random class",
    "none": "each test image's twin without cues",
}


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
    study, train, aug = params.study, params.train, params.aug
    conditions = load_conditions(args.prepared)
    first_seed = train.seeds[0]
    # The study's rows: each detector, and the original arm's first-seed model ("trained here").
    folders = {name: args.saliency / name for name in study.detectors}
    folders[TRAINED_ROW] = seed_dir(args.evaluate / CONTROL, first_seed)
    infos = {name: read_json(info_path(folder)) for name, folder in folders.items()}
    labels = {name: f"{info['label']} ({info['weights']})" for name, info in infos.items()}
    predictor = read_json(args.fixations / "info.json")["label"]
    profile = "embedded (generated offline)" if params.data.source == "embedded" else "paper (PASCAL VOC 2012, MIT1003)"
    caption = (
        f"Profile: {profile}. Weights: {study.weights}; the last row is the main experiment's {train.detector} "
        f"trained here on the original training set (seed {first_seed}). Fixation predictor: {predictor}. "
        f"Working size {study.size}×{study.size}. Cells: mean [95 % bootstrap interval over images]. {MARK_RULE}"
    )
    if SHIFTED in conditions:
        caption += f" Shifted cues: {SHIFTED_CUE[params.data.embedded.shifted_cue]}."

    sections = ["# Results", "", caption, ""]
    ap_replicates = {}
    for name, split in conditions.items():
        weights = resample_weights(len(split.images), max(study.bootstrap, 1), study.seed)
        ap_replicates[CONDITION_DATASETS[name]] = {
            row: ap50_voc_replicates(split.data, read_json(detections_path(folder, name)), weights)
            for row, folder in folders.items()
        }
    for spec in STUDY_TABLES:
        rows = load_rows(args.metrics, spec, list(folders))
        if not has_values(rows, spec.columns):
            continue  # a test condition, or a cue, this profile does not have
        if spec.reference == "detection":
            replicates = ap_replicates[spec.dataset]
            marks = column_marks(
                rows,
                ["ap50_voc"],
                lambda _, a, b, rows=rows, replicates=replicates: replicate_summary(
                    point(rows[a]["ap50_voc"]) - point(rows[b]["ap50_voc"]), replicates[a] - replicates[b]
                ),
            )
            detection_caption = (
                f"AP50 VOC: [95 % interval over images]. Every detector's detections alike: score ≥ "
                f"{study.score_threshold}, at most {study.max_detections} per image (each model's own cap, 300, "
                "before; DETR has 100 queries). COCO AP by pycocotools."
            )
            sections.append(render_table(spec, rows, labels, marks, caption=detection_caption))
            continue
        marks = {}
        if spec.ranked:
            frames = {name: _frames(args.scores / name, spec.dataset, spec.reference) for name in folders}
            marks = column_marks(
                rows,
                spec.columns,
                lambda column, a, b, frames=frames: paired_difference(
                    *(_aligned(frames[a], frames[b], column)), n_boot=max(study.bootstrap, 1), seed=study.seed
                ),
            )
        sections.append(render_table(spec, rows, labels, marks))

    comparison = compare_arms(
        {
            arm: {
                name: [load_run(seed_dir(args.evaluate / arm, seed), name) for seed in train.seeds]
                for name in conditions
            }
            for arm in ARMS
        },
        {name: split.data for name, split in conditions.items()},
        control=CONTROL,
        columns=COLUMNS,
        n_boot=max(study.bootstrap, 1),
        seed=study.seed,
    )
    write_json(args.comparison, without_nan(comparison))
    changed = {arm: read_json(args.augment / f"{arm}.json")["changed"] for arm in AUGMENTED}
    setup = (
        f"{train.detector} ({'COCO-pretrained, fine-tuned' if train.init == 'coco' else 'trained from scratch'}), "
        f"{train.epochs} epochs, lr {train.lr}, batch {train.batch_size}, seeds {', '.join(map(str, train.seeds))}; "
        f"selection: {aug.criterion} with threshold {aug.threshold}, erase {aug.erase_fraction:.1%}, "
        f"inpainting: {params.inpaint.method}; base maps: {aug.base}"
        + (f" (seed {first_seed})" if aug.base == "original" else "")
        + ". Cells: mean over seeds [95 % interval over seeds and images]; Δ: change against Original [paired 95 % "
        "interval: the same images and seed indices drawn for every arm]; *: the interval excludes 0 (a detectable "
        "difference), otherwise no detectable difference."
    )
    condition_names = {TEST: "in-distribution test", SHIFTED: "shifted-cue test"}
    if SHIFTED in conditions:
        columns = [
            Column((TEST, "ap50_voc"), f"AP50, {condition_names[TEST]} ↑"),
            Column((SHIFTED, "ap50_voc"), f"AP50, {condition_names[SHIFTED]} ↑"),
            Column((GAP, "ap50_voc"), "AP50 gap (in-distribution − shifted)", star=True),
        ]
        title = "Main experiment: detection accuracy in distribution and with shifted cues"
        gap_rule = (
            " AP50 gap: in-distribution minus shifted AP50, paired by image (each shifted image is drawn with its "
            "twin); *: its interval excludes 0, the model relies on the cue."
        )
    else:
        columns, title, gap_rule = (
            [Column((TEST, "ap50_voc"), LABELS["ap50_voc"])],
            "Main experiment: detection accuracy",
            "",
        )
    sections.append(
        render_experiment_table(
            title, comparison, columns=columns, labels=ARMS, changed=changed, caption=setup + gap_rule
        )
    )
    for name in conditions:
        where = condition_names[name] if SHIFTED in conditions else "test split"
        for reference, what, extra in (
            (
                "human_masks",
                "human attention masks",
                [Column((name, "randomisation", "cc"), LABELS["randomisation_cc"])],
            ),
            ("fixations", f"predicted fixations ({predictor})", []),
        ):
            sections.append(
                render_experiment_table(
                    f"Main experiment, {where}: saliency alignment with {what}",
                    comparison,
                    columns=[Column((name, reference, metric), LABELS[metric]) for metric in ALIGNMENT] + extra,
                    labels=ARMS,
                    changed=changed,
                    caption=setup,
                )
            )
    # The cue's area share is the images', the same for every arm: one column, no Δ.
    cue_columns = [Column((TEST, "cue", "area"), "Cue area share", delta=False)]
    for name in conditions:
        where = condition_names[name] if SHIFTED in conditions else "test"
        cue_columns += [
            Column((name, "cue", "mass"), f"Cue mass, {where}"),
            Column((name, "cue", "excess"), f"Cue mass − area share, {where}", star=True),
        ]
    if any(not np.isnan(point(result[TEST]["cue"].get("mass"))) for result in comparison.values()):
        sections.append(
            render_experiment_table(
                "Main experiment: EigenCAM mass on the planted cue",
                comparison,
                columns=cue_columns,
                labels=ARMS,
                changed=changed,
                caption=f"{setup} {CUE_CAPTION}",
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
