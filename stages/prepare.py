"""Stage `prepare`: raw layouts → COCO-format train/test splits, merged human masks, the MIT1003 index."""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.io.files import atomic_dir, write_json
from human_saliency.params import load_params
from human_saliency.sources.prepare import prepare_dataset
from human_saliency.sources.voc import VOC_CLASSES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True, help="raw data folder (from `download`)")
    parser.add_argument("--out", type=Path, required=True, help="prepared data folder (a DVC output)")
    parser.add_argument("--summary", type=Path, required=True, help="counts JSON (a DVC metric)")
    args = parser.parse_args()

    params = load_params(args.params)
    classes = params.data.embedded.classes if params.data.source == "embedded" else VOC_CLASSES
    with atomic_dir(args.out) as tmp:
        summary = prepare_dataset(
            args.raw,
            tmp,
            classes=classes,
            max_dropped_fraction=params.prepare.max_dropped_fraction,
            on_bad_input=params.prepare.on_bad_input,
            min_box_size=params.prepare.min_box_size,
            mask_size_mismatch=params.prepare.mask_size_mismatch,
        )
    write_json(args.summary, summary)


if __name__ == "__main__":
    run_stage(main)
