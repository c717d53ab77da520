"""The write-up: the study's tables and the main experiment's, filled from metrics/ and the per-image scores.

Rows are compared here, where they meet: paired by image for the study's detectors and the model trained here
(per-image scores, AP replicates on shared resamples), over seeds and images for the experiment's arms on each
test condition (the Δ against Original, and the in-distribution − shifted AP50 gap). It lives in the experiment
layer because the tables are laid out by the arms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from human_saliency.experiment.arms import ALIGNMENT, ARMS, AUGMENTED, COLUMNS, CONTROL, TRAINED_ROW, seed_dir
from human_saliency.io.files import read_json
from human_saliency.maps.layout import detections_path, info_path
from human_saliency.prepared.splits import SHIFTED, TEST, PreparedSplit
from human_saliency.scoring.comparison import GAP, compare_arms, load_run
from human_saliency.scoring.detection_ap import ap50_voc_replicates
from human_saliency.scoring.score import CONDITION_DATASETS, scores_path
from human_saliency.scoring.statistics import paired_difference, replicate_summary, resample_weights, without_nan
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

if TYPE_CHECKING:  # the schema lives above every layer; only its type is needed here
    from human_saliency.params import Params, StudyParams

# What the shifted test condition's twins carry (data.embedded.shifted_cue).
SHIFTED_CUE = {
    "other": "each test image's twin with every cue naming another class than its object's",
    "random": "each test image's twin with every cue naming a random class",
    "none": "each test image's twin without cues",
}
# How the experiment's tables name each test condition when there are two.
CONDITION_NAMES = {TEST: "in-distribution test", SHIFTED: "shifted-cue test"}


def build_report(
    params: Params,
    conditions: Mapping[str, PreparedSplit],
    *,
    metrics: Path,
    saliency: Path,
    scores: Path,
    fixations: Path,
    evaluate: Path,
    augment: Path,
) -> tuple[str, dict[str, Any]]:
    """The tables as Markdown, and the arms' comparison against Original (NaN left out, for JSON).

    ``metrics``: metrics/study; ``saliency`` and ``scores``: the detectors' folders; ``evaluate``: the arms'
    evaluations; ``augment``: metrics/augment (images changed per arm)."""
    study, train = params.study, params.train
    n_boot = max(study.bootstrap, 1)
    folders = study_folders(saliency, evaluate, study.detectors, train.seeds[0])
    predictor = read_json(fixations / "info.json")["label"]
    sections = ["# Results", "", study_caption(params, predictor, shifted=SHIFTED in conditions), ""]
    replicates = ap_replicates(conditions, folders, n_boot=n_boot, seed=study.seed)
    sections += study_tables(study, folders, replicates, metrics=metrics, scores=scores)
    comparison = compare_arms(
        {
            arm: {name: [load_run(seed_dir(evaluate / arm, seed), name) for seed in train.seeds] for name in conditions}
            for arm in ARMS
        },
        {name: split.data for name, split in conditions.items()},
        control=CONTROL,
        columns=COLUMNS,
        n_boot=n_boot,
        seed=study.seed,
    )
    changed = {arm: read_json(augment / f"{arm}.json")["changed"] for arm in AUGMENTED}
    sections += experiment_tables(
        comparison, list(conditions), changed=changed, caption=experiment_caption(params), predictor=predictor
    )
    return "\n".join(sections), without_nan(comparison)


def study_folders(saliency: Path, evaluate: Path, detectors: Sequence[str], first_seed: int) -> dict[str, Path]:
    """The study's rows, in table order: each detector's saliency folder, then the original arm's first-seed model
    ("trained here")."""
    folders = {name: saliency / name for name in detectors}
    folders[TRAINED_ROW] = seed_dir(evaluate / CONTROL, first_seed)
    return folders


def study_caption(params: Params, predictor: str, *, shifted: bool) -> str:
    """The study tables' caption: profile, weights, the trained row, fixation predictor, working size, the marks;
    with a shifted condition, what its twins carry."""
    study, train = params.study, params.train
    profile = "embedded (generated offline)" if params.data.source == "embedded" else "paper (PASCAL VOC 2012, MIT1003)"
    caption = (
        f"Profile: {profile}. Weights: {study.weights}; the last row is the main experiment's {train.detector} "
        f"trained here on the original training set (seed {train.seeds[0]}). Fixation predictor: {predictor}. "
        f"Working size {study.size}×{study.size}. Cells: mean [95 % bootstrap interval over images]. {MARK_RULE}"
    )
    if shifted:
        caption += f" Shifted cues: {SHIFTED_CUE[params.data.embedded.shifted_cue]}."
    return caption


def ap_replicates(
    conditions: Mapping[str, PreparedSplit], folders: Mapping[str, Path], *, n_boot: int, seed: int
) -> dict[str, dict[str, np.ndarray]]:
    """Per condition's dataset and row: AP50 VOC on the same ``n_boot`` image resamples for every row."""
    replicates = {}
    for name, split in conditions.items():
        weights = resample_weights(len(split.images), n_boot, seed)
        replicates[CONDITION_DATASETS[name]] = {
            row: ap50_voc_replicates(split.data, read_json(detections_path(folder, name)), weights)
            for row, folder in folders.items()
        }
    return replicates


def study_tables(
    study: StudyParams,
    folders: Mapping[str, Path],
    replicates: Mapping[str, Mapping[str, np.ndarray]],
    *,
    metrics: Path,
    scores: Path,
) -> list[str]:
    """Each study table with values (not a condition or cue this profile lacks), its best rows marked: AP50 by the
    ``replicates`` (:func:`ap_replicates`), a ranked table's columns by paired per-image differences."""
    labels = {}
    for name, folder in folders.items():
        info = read_json(info_path(folder))
        labels[name] = f"{info['label']} ({info['weights']})"
    n_boot = max(study.bootstrap, 1)
    sections = []
    for spec in STUDY_TABLES:
        rows = load_rows(metrics, spec, list(folders))
        if not has_values(rows, spec.columns):
            continue
        if spec.reference == "detection":
            shared = replicates[spec.dataset]
            marks = column_marks(
                rows,
                ["ap50_voc"],
                lambda _, a, b, rows=rows, shared=shared: replicate_summary(
                    point(rows[a]["ap50_voc"]) - point(rows[b]["ap50_voc"]), shared[a] - shared[b]
                ),
            )
            proposals = f"{study.proposals} RPN proposals" if study.proposals else "their model's number of proposals"
            caption = (
                f"AP50 VOC: [95 % interval over images]. Every detector's detections alike: score ≥ "
                f"{study.score_threshold}, at most {study.max_detections} per image (each model's own cap, 300, "
                f"before; DETR has 100 queries; R-CNN box heads score {proposals} an image). COCO AP by pycocotools."
            )
            sections.append(render_table(spec, rows, labels, marks, caption=caption))
            continue
        marks = {}
        if spec.ranked:
            frames = {name: per_image_scores(scores / name, spec.dataset, spec.reference) for name in folders}
            marks = column_marks(
                rows,
                spec.columns,
                lambda column, a, b, frames=frames: paired_difference(
                    *aligned(frames[a], frames[b], column), n_boot=n_boot, seed=study.seed
                ),
            )
        sections.append(render_table(spec, rows, labels, marks))
    return sections


def per_image_scores(folder: Path, dataset: str, reference: str) -> dict[str, pd.DataFrame]:
    """A detector's per-image score tables that one study table's columns come from: ``""`` the reference's, and
    for the human masks ``randomisation`` where the detector has the randomisation check."""
    frames = {"": pd.read_csv(scores_path(folder, dataset, reference), index_col="id")}
    randomisation = scores_path(folder, dataset, "randomisation")
    if reference == "human_masks" and randomisation.exists():
        frames["randomisation"] = pd.read_csv(randomisation, index_col="id")
    return frames


def aligned(a: Mapping[str, pd.DataFrame], b: Mapping[str, pd.DataFrame], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Two detectors' per-image scores of one column, over the same images in one order (NaN when either lacks
    the column's table)."""
    source, name = ("randomisation", "cc") if column == "randomisation_cc" else ("", column)
    if source not in a or source not in b:
        return np.array([np.nan]), np.array([np.nan])
    left, right = a[source][name], b[source][name]
    return left.to_numpy(float), right.reindex(left.index).to_numpy(float)


def experiment_caption(params: Params) -> str:
    """The experiment tables' caption: the training recipe, the augmentation's settings and how to read a cell."""
    train, aug = params.train, params.aug
    return (
        f"{train.detector} ({'COCO-pretrained, fine-tuned' if train.init == 'coco' else 'trained from scratch'}), "
        f"{train.epochs} epochs, lr {train.lr}, batch {train.batch_size}, seeds {', '.join(map(str, train.seeds))}; "
        f"selection: {aug.criterion} with threshold {aug.threshold}, erase {aug.erase_fraction:.1%}, "
        f"inpainting: {params.inpaint.method}; base maps: {aug.base}"
        + (f" (seed {train.seeds[0]})" if aug.base == "original" else "")
        + ". Cells: mean over seeds [95 % interval over seeds and images]; Δ: change against Original [paired 95 % "
        "interval: the same images and seed indices drawn for every arm]; *: the interval excludes 0 (a detectable "
        "difference), otherwise no detectable difference."
    )


def experiment_tables(
    comparison: Mapping[str, Mapping[str, Any]],
    conditions: Sequence[str],
    *,
    changed: Mapping[str, int],
    caption: str,
    predictor: str,
) -> list[str]:
    """The main experiment's tables: detection accuracy (with the shifted AP50 and the gap when there is a shifted
    condition), per condition the alignment with human masks and with predicted fixations, and the cue mass when
    any arm has some."""
    shifted = SHIFTED in conditions
    if shifted:
        columns = [
            Column((TEST, "ap50_voc"), f"AP50, {CONDITION_NAMES[TEST]} ↑"),
            Column((SHIFTED, "ap50_voc"), f"AP50, {CONDITION_NAMES[SHIFTED]} ↑"),
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
    sections = [
        render_experiment_table(
            title, comparison, columns=columns, labels=ARMS, changed=changed, caption=caption + gap_rule
        )
    ]
    for name in conditions:
        where = CONDITION_NAMES[name] if shifted else "test split"
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
                    caption=caption,
                )
            )
    # The cue's area share is the images', the same for every arm: one column, no Δ.
    cue_columns = [Column((TEST, "cue", "area"), "Cue area share", delta=False)]
    for name in conditions:
        where = CONDITION_NAMES[name] if shifted else "test"
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
                caption=f"{caption} {CUE_CAPTION}",
            )
        )
    return sections
