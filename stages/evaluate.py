"""Stage `evaluate@<arm>`: a fine-tuned model's mAP and saliency alignment on the test split.

With `runtime.nproc` > 1 the maps are computed under torchrun, each process taking a share of the images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.experiment.evaluate import evaluate_model
from human_saliency.io.files import write_json
from human_saliency.io.mapstore import MapReader
from human_saliency.params import load_params
from human_saliency.prepared.masks import working_size_masks
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed
from human_saliency.runtime.device import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder")
    parser.add_argument("--model", type=Path, required=True, help="the fine-tuned model (from train)")
    parser.add_argument("--fixations", type=Path, required=True, help="predicted fixation maps folder")
    parser.add_argument("--out", type=Path, required=True, help="this arm's maps (a DVC output)")
    parser.add_argument("--metrics", type=Path, required=True, help="this arm's metrics JSON")
    args = parser.parse_args()

    params = load_params(args.params)
    study, runtime = params.study, params.runtime
    device = distributed.launch(runtime.nproc, resolve_device(runtime.device))
    test = PreparedSplit.load(args.prepared / "test.json")
    # Only rank 0 scores: the other processes need no masks.
    masks = working_size_masks(test, study.size) if distributed.is_main() else {}
    with distributed.shared_output_dir(args.out) as tmp, MapReader(args.fixations / "test.zip") as fixations:
        result = evaluate_model(
            params.train.detector,
            args.model,
            test,
            masks=masks,
            fixations=fixations,
            out_dir=tmp,
            size=study.size,
            min_size=study.detector_min_size,
            batch_size=study.batch_size,
            score_threshold=study.score_threshold,
            max_detections=study.max_detections,
            iou_percentile=study.iou_percentile,
            mask_threshold=study.mask_threshold,
            n_boot=study.bootstrap,
            seed=study.seed,
            device=device,
            num_workers=runtime.num_workers,
        )
    if result is not None:
        write_json(args.metrics, result)


if __name__ == "__main__":
    run_stage(main)
