"""The write-up's tables, filled from the metrics and the per-image scores, rendered as Markdown (tabulate).

Every cell is a number with its 95 % interval. Rows are compared by paired intervals (every detector and
arm is scored on the same images): a row is marked best only when it beats every other row detectably;
otherwise the rows tied for best are marked as a tie. Each table's caption states the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from human_saliency.io.files import read_json
from human_saliency.scoring.metrics import HIGHER_IS_BETTER
from human_saliency.scoring.score import study_metrics_path
from human_saliency.scoring.statistics import best_rows, excludes_zero

# The model-randomisation check: a map that stays the same when the weights are randomised is suspect.
DIRECTIONS = {**HIGHER_IS_BETTER, "randomisation_cc": False}

LABELS = {
    "mae": "MAE ↓",
    "iou": "IoU top-10% ↑",
    "iou_study": "IoU, study's ≥ rule ↑",
    "cc": "CC ↑",
    "sim": "SIM ↑",
    "kld": "KL ↓",
    "nss": "NSS ↑",
    "auc_judd": "AUC-Judd ↑",
    "pointing_game": "Pointing game ↑",
    "relevance_mass": "Relevance mass ↑",
    "relevance_rank": "Relevance rank ↑",
    "ap50_voc": "AP50 VOC ↑",
    "ap_coco": "AP COCO ↑",
    "ap50_coco": "AP50 COCO ↑",
    "randomisation_cc": "CC with random-init map ↓",
    "mass": "Cue mass",
    "area": "Cue area share",
    "excess": "Cue mass − area share",
}


@dataclass(frozen=True)
class TableSpec:
    """One table of the write-up: which metrics folder it reads and which columns it shows.

    ``ranked``: whether the best row of each column is marked (not for the cue, where neither more nor less
    mass is better); ``starred``: columns whose cell is starred when its interval excludes 0."""

    title: str
    dataset: str
    reference: str
    columns: Sequence[str]
    ranked: bool = True
    starred: Sequence[str] = ()
    caption: str = ""


_FIXATION_COLUMNS = ("mae", "iou", "iou_study", "cc", "sim", "kld")
_MASK_COLUMNS = (
    *_FIXATION_COLUMNS,
    "pointing_game",
    "relevance_mass",
    "relevance_rank",
    "randomisation_cc",
)
_SHIFTED = "shifted cues (embedded data: the test images' twins, cues decorrelated from the class)"
CUE_CAPTION = (
    "Cue mass: the share of the map's mass on the planted cue's pixels; cue area share: their share of the image, "
    "what a map that ignores the cue puts there. Cue mass − area share: the paired difference per image, "
    "*: its interval excludes 0 (the map points at the cue more, or less, than its area). Mass on the cue says "
    "the cue is visible in the CAM layer, not that the detector's decision relies on it: compare the shifted "
    "test's AP50."
)
STUDY_TABLES = (
    TableSpec(
        "Table 1: detection accuracy on the VOC test split", "voc", "detection", ("ap50_voc", "ap_coco", "ap50_coco")
    ),
    TableSpec(
        f"Table 1, {_SHIFTED}: detection accuracy",
        "voc_shifted",
        "detection",
        ("ap50_voc", "ap_coco", "ap50_coco"),
    ),
    TableSpec("Table 2: detectors vs predicted eye fixations, MIT1003", "mit1003", "fixations", _FIXATION_COLUMNS),
    TableSpec("Table 3: detectors vs predicted eye fixations, VOC test split", "voc", "fixations", _FIXATION_COLUMNS),
    TableSpec(
        f"Table 3, {_SHIFTED}: detectors vs predicted eye fixations", "voc_shifted", "fixations", _FIXATION_COLUMNS
    ),
    TableSpec("Table 4: detectors vs human attention masks, VOC test split", "voc", "human_masks", _MASK_COLUMNS),
    TableSpec(f"Table 4, {_SHIFTED}: detectors vs human attention masks", "voc_shifted", "human_masks", _MASK_COLUMNS),
    TableSpec(
        "Table 5 (extension): detectors vs recorded human fixations, MIT1003",
        "mit1003",
        "human_fixpts",
        ("nss", "auc_judd"),
    ),
    TableSpec(
        "Table 6 (embedded): EigenCAM mass on the planted cue, VOC test split",
        "voc",
        "cue",
        ("mass", "area", "excess"),
        ranked=False,
        starred=("excess",),
        caption=CUE_CAPTION,
    ),
    TableSpec(
        f"Table 6, {_SHIFTED}: EigenCAM mass on the planted cue",
        "voc_shifted",
        "cue",
        ("mass", "area", "excess"),
        ranked=False,
        starred=("excess",),
        caption=CUE_CAPTION,
    ),
)


def has_values(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str]) -> bool:
    """Whether any row has a value in any column: a table of a condition (or a cue) the profile lacks has none."""
    return any(not math.isnan(point(values.get(column))) for values in rows.values() for column in columns)


MARK_RULE = (
    "Bold: the best row, its paired 95 % interval against every other row excluding 0; italic: the rows tied "
    "for best (no detectable difference from the best mean). n: the images scored, when fewer than all "
    "(degenerate maps or references are excluded, never averaged in). ties: images whose top-10 % region "
    "fell back to the pixels above the map's minimum (that minimum fills more than 10 % of the map)."
)


def cell(value: Any, *, n_images: int | None = None, ties: int | None = None, missing: str = "n/a") -> str:
    """A metric leaf as text: a summary shows its mean (or AP value) and 95 % interval, and the counts that
    qualify it: ``n`` when fewer than ``n_images`` were scored, ``ties`` for the IoU's fallback; ``missing``
    when there is no value."""
    if isinstance(value, Mapping):
        point = value.get("mean", value.get("value"))
        if point is None or (isinstance(point, float) and math.isnan(point)):
            return f"n/a (0 of {value.get('n_excluded', 0) + value.get('n', 0)} usable)"
        text = f"{point:.4f}"
        if "ci_low" in value:
            text += f" [{value['ci_low']:.4f}, {value['ci_high']:.4f}]"
        notes = []
        if n_images is not None and value.get("n", n_images) < n_images:
            notes.append(f"n={value['n']}")
        if ties:
            notes.append(f"{ties} ties")
        return f"{text} ({', '.join(notes)})" if notes else text
    if value is None:
        return missing
    return f"{value:.4f}"


def point(value: Any) -> float:
    """The point estimate of a leaf (a summary's mean or value, or the number itself); NaN if none."""
    if isinstance(value, Mapping):
        found = value.get("mean", value.get("value"))
        return math.nan if found is None else float(found)
    return math.nan if value is None else float(value)


def emphasise(text: str, mark: str) -> str:
    """Bold for the best row, italic for a row tied for best."""
    return {"best": f"**{text}**", "tied": f"_{text}_"}.get(mark, text)


def column_marks(
    rows: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
    difference: Callable[[str, str, str], Mapping[str, Any]],
) -> dict[str, dict[str, str]]:
    """Per column, each row's mark (:func:`statistics.best_rows`); ``difference(column, a, b)`` pairs two rows."""
    return {
        column: best_rows(
            {row: point(values.get(column)) for row, values in rows.items()},
            lambda a, b, column=column: difference(column, a, b),
            higher_is_better=DIRECTIONS.get(column, True),
        )
        for column in columns
    }


def render_table(
    spec: TableSpec,
    rows: Mapping[str, Mapping[str, Any]],
    row_labels: Mapping[str, str],
    marks: Mapping[str, Mapping[str, str]],
    *,
    caption: str = "",
) -> str:
    """One study table: a row per detector, each cell with its interval and counts, the best row marked (and the
    ``spec.starred`` columns starred when their interval excludes 0)."""
    body = []
    for row, values in rows.items():
        n_images = values.get("n_images")
        texts = [
            emphasise(
                cell(
                    values.get(col),
                    n_images=n_images,
                    ties=values.get("n_top_ties") if col == "iou" else None,
                    # Only trained weights have a randomisation check.
                    missing="n/a (random init)" if col == "randomisation_cc" else "n/a",
                )
                + (
                    "*"
                    if col in spec.starred and isinstance(values.get(col), Mapping) and excludes_zero(values[col])
                    else ""
                ),
                marks.get(col, {}).get(row, ""),
            )
            for col in spec.columns
        ]
        body.append([row_labels.get(row, row), *texts])
    headers = ["Model"] + [LABELS.get(c, c) for c in spec.columns]
    captions = " ".join(text for text in (caption, spec.caption) if text)
    return _section(spec.title, tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), captions)


def load_rows(metrics_dir: Path, spec: TableSpec, models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each model's metrics JSON for one table, in the given model order."""
    return {model: read_json(study_metrics_path(metrics_dir, spec.dataset, spec.reference, model)) for model in models}


@dataclass(frozen=True)
class Column:
    """One column of a main-experiment table: the path of its value in an arm's comparison (its Δ: the last key +
    ``_delta``), its header, whether the value itself is starred when its interval excludes 0 (a gap, a
    difference from the cue's area share), and whether it has a Δ column (not for what every arm shares)."""

    path: tuple[str, ...]
    header: str
    star: bool = False
    delta: bool = True


def render_experiment_table(
    title: str,
    comparison: Mapping[str, Mapping[str, Any]],
    *,
    columns: Sequence[Column],
    labels: Mapping[str, str],
    changed: Mapping[str, int],
    caption: str = "",
) -> str:
    """The main experiment: per arm, the ``columns`` with their intervals over seeds and images, and each one's Δ
    against the control with its paired interval (``*``: it excludes 0)."""
    headers = ["Training set", "Images changed", "Seeds"]
    for column in columns:
        headers += [column.header, "Δ"] if column.delta else [column.header]
    body = []
    for arm, result in comparison.items():
        row = [labels.get(arm, arm), changed.get(arm, 0), result["seeds"]]
        for column in columns:
            node: Any = result
            for key in column.path[:-1]:
                node = node.get(key, {}) if isinstance(node, Mapping) else {}
            value = node.get(column.path[-1]) if isinstance(node, Mapping) else None
            text = cell(value)
            if column.star and isinstance(value, Mapping) and excludes_zero(value):
                text += "*"
            row.append(text)
            if column.delta:
                row.append(_delta(node.get(f"{column.path[-1]}_delta") if isinstance(node, Mapping) else None))
        body.append(row)
    return _section(title, tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), caption)


def _delta(value: Mapping[str, Any] | None) -> str:
    """A Δ cell: signed mean and interval, starred when the interval excludes 0; empty for the control."""
    if value is None:
        return ""
    if math.isnan(point(value)):
        return "n/a"
    if "ci_low" not in value:
        return f"{value['mean']:+.4f}"
    star = "*" if excludes_zero(value) else ""
    return f"{value['mean']:+.4f} [{value['ci_low']:+.4f}, {value['ci_high']:+.4f}]{star}"


def _section(title: str, table: str, caption: str) -> str:
    return f"### {title}\n\n{caption}\n\n{table}\n" if caption else f"### {title}\n\n{table}\n"
