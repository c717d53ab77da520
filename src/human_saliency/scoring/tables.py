"""The write-up's tables, filled from the metrics JSON files and rendered as Markdown with tabulate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from human_saliency.io.files import read_json
from human_saliency.scoring.metrics import HIGHER_IS_BETTER
from human_saliency.scoring.score import study_metrics_path

# The model-randomisation check: a map that stays the same when the weights are randomised is suspect.
DIRECTIONS = {**HIGHER_IS_BETTER, "randomisation_cc": False}

LABELS = {
    "mae": "MAE ↓",
    "iou": "IoU top-10% ↑",
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
}


@dataclass(frozen=True)
class TableSpec:
    """One table of the write-up: which metrics folder it reads and which columns it shows."""

    title: str
    dataset: str
    reference: str
    columns: Sequence[str]


STUDY_TABLES = (
    TableSpec(
        "Table 1: detection accuracy on the VOC test split", "voc", "detection", ("ap50_voc", "ap_coco", "ap50_coco")
    ),
    TableSpec(
        "Table 2: detectors vs predicted eye fixations, MIT1003",
        "mit1003",
        "fixations",
        ("mae", "iou", "cc", "sim", "kld"),
    ),
    TableSpec(
        "Table 3: detectors vs predicted eye fixations, VOC test split",
        "voc",
        "fixations",
        ("mae", "iou", "cc", "sim", "kld"),
    ),
    TableSpec(
        "Table 4: detectors vs human attention masks, VOC test split",
        "voc",
        "human_masks",
        ("mae", "iou", "cc", "sim", "kld", "pointing_game", "relevance_mass", "relevance_rank", "randomisation_cc"),
    ),
    TableSpec(
        "Table 5 (extension): detectors vs recorded human fixations, MIT1003",
        "mit1003",
        "human_fixpts",
        ("nss", "auc_judd"),
    ),
)


def cell(value: Any) -> tuple[str, float]:
    """A metric leaf as (text, value): a summary dict shows its mean and 95 % interval."""
    if isinstance(value, dict):
        if "mean" not in value:
            return f"n/a (0 of {value.get('n_excluded', 0)} usable)", math.nan
        text = f"{value['mean']:.4f} [{value['ci_low']:.4f}, {value['ci_high']:.4f}]"
        if value.get("n_excluded"):
            text += f" ({value['n_excluded']} excl.)"
        return text, value["mean"]
    if value is None:
        return "n/a (random init)", math.nan
    return f"{value:.4f}", float(value)


def render_table(
    spec: TableSpec, rows: dict[str, dict[str, Any]], row_labels: dict[str, str], *, caption: str = ""
) -> str:
    """One Markdown table; the best value of each column is bold (direction from DIRECTIONS)."""
    texts = {row: {col: cell(rows[row].get(col)) for col in spec.columns} for row in rows}
    best = {}
    for col in spec.columns:
        values = [texts[row][col][1] for row in rows if not math.isnan(texts[row][col][1])]
        if len(values) > 1:
            best[col] = max(values) if DIRECTIONS.get(col, True) else min(values)
    body = [
        [row_labels.get(row, row)]
        + [f"**{text}**" if best.get(col) == value else text for col, (text, value) in texts[row].items()]
        for row in rows
    ]
    table = tabulate(body, headers=["Model"] + [LABELS.get(c, c) for c in spec.columns], tablefmt="github")
    return f"### {spec.title}\n\n{caption}\n\n{table}\n" if caption else f"### {spec.title}\n\n{table}\n"


def load_rows(metrics_dir: Path, spec: TableSpec, models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each model's metrics JSON for one table, in the given model order."""
    return {model: read_json(study_metrics_path(metrics_dir, spec.dataset, spec.reference, model)) for model in models}


def _mean(value: Any) -> float:
    """A leaf's mean (a summary's, or the number itself); NaN when it is missing or no image was usable."""
    if isinstance(value, dict):
        return value.get("mean", math.nan)
    return math.nan if value is None else float(value)


def _text(value: Any) -> str:
    """A leaf's cell text; ``n/a`` when the arm's metrics lack it."""
    return "n/a" if value is None else cell(value)[0]


def _delta(value: Any, base: Any) -> str:
    """``value`` − ``base`` with its sign; ``n/a`` when either has no mean."""
    difference = _mean(value) - _mean(base)
    return "n/a" if math.isnan(difference) else f"{difference:+.4f}"


def render_experiment_table(
    title: str,
    results: dict[str, dict[str, Any]],
    changed: dict[str, int],
    *,
    reference: str,
    labels: dict[str, str],
    control: str,
    caption: str = "",
) -> str:
    """The main experiment: per training set, mAP and saliency alignment, each with its change vs ``control``."""
    base = results[control]
    columns = ("mae", "iou", "cc")
    headers = ["Training set", "Images changed", "AP50 VOC ↑", "Δ", "AP COCO ↑"]
    for col in columns:
        headers += [LABELS[col], "Δ"]
    headers.append("Randomisation CC ↓")
    body = []
    for arm, result in results.items():
        row = [labels.get(arm, arm), changed.get(arm, 0)]
        row += [
            _text(result.get("ap50_voc")),
            _delta(result.get("ap50_voc"), base.get("ap50_voc")),
            _text(result.get("ap_coco")),
        ]
        for col in columns:
            value = result.get(reference, {}).get(col)
            row += [_text(value), _delta(value, base.get(reference, {}).get(col))]
        row.append(_text(result.get("randomisation_cc")))
        body.append(row)
    table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    return f"### {title}\n\n{caption}\n\n{table}\n" if caption else f"### {title}\n\n{table}\n"
