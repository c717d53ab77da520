"""Stage `tables`: the write-up's tables, filled from metrics/, rendered into metrics/tables.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.fsio import read_json, write_text
from human_saliency.params import load_params
from human_saliency.report import STUDY_TABLES, load_rows, render_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics", type=Path, required=True, help="metrics/study folder")
    parser.add_argument("--saliency", type=Path, required=True, help="folder of the detectors' saliency outputs")
    parser.add_argument("--fixations", type=Path, required=True, help="predicted fixation maps folder")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    args = parser.parse_args()

    params = load_params(args.params)
    detectors = params.study.detectors
    infos = {name: read_json(args.saliency / name / "info.json") for name in detectors}
    labels = {name: f"{info['label']} ({info['weights']})" for name, info in infos.items()}
    predictor = read_json(args.fixations / "info.json")["label"]
    profile = "embedded (generated offline)" if params.data.source == "embedded" else "paper (PASCAL VOC 2012, MIT1003)"
    caption = (f"Profile: {profile}. Weights: {params.study.weights}. Fixation predictor: {predictor}. "
               f"Working size {params.study.size}×{params.study.size}. Cells: mean [95 % bootstrap interval].")

    sections = ["# Results", "", caption, ""]
    for spec in STUDY_TABLES:
        sections.append(render_table(spec, load_rows(args.metrics, spec, detectors), labels))
    write_text(args.out, "\n".join(sections))


if __name__ == "__main__":
    run_stage(main)
