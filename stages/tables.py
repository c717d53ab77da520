"""Stage `tables`: the write-up's tables, filled from metrics/ and the per-image scores, into metrics/tables.md.

Rows are compared where they meet (``experiment.report``): paired by image for the study's detectors and the model
trained here, over seeds and images for the experiment's arms on each test condition (the Δ against Original, and
the in-distribution − shifted AP50 gap, also written as metrics/comparison.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.experiment.report import build_report
from human_saliency.io.files import write_json, write_text
from human_saliency.params import load_params
from human_saliency.prepared.splits import load_conditions


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

    text, comparison = build_report(
        load_params(args.params),
        load_conditions(args.prepared),
        metrics=args.metrics,
        saliency=args.saliency,
        scores=args.scores,
        fixations=args.fixations,
        evaluate=args.evaluate,
        augment=args.augment,
    )
    write_json(args.comparison, comparison)
    write_text(args.out, text)


if __name__ == "__main__":
    run_stage(main)
