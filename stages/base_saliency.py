"""Stage `base_saliency`: the base detector's EigenCAM maps on the training split, which drive the selective arms.

The base detector is train@original's model of the first seed in `train.seeds` (`aug.base: original`), or the
COCO-pretrained `train.detector` (`aug.base: coco`, the study's).

With `runtime.nproc` > 1 it runs under torchrun, each process taking a share of the images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from human_saliency.cli import run_stage
from human_saliency.experiment.arms import seed_dir
from human_saliency.io.files import write_json
from human_saliency.io.mapstore import MapWriter
from human_saliency.maps.detectors import build_detector
from human_saliency.maps.saliency import compute_saliency
from human_saliency.params import load_params
from human_saliency.prepared.loaders import split_images
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed
from human_saliency.runtime.device import resolve_device
from human_saliency.runtime.pool import set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder")
    parser.add_argument(
        "--models", type=Path, required=True, help="train@original's models folder (used when aug.base is original)"
    )
    parser.add_argument("--out", type=Path, required=True, help="base maps folder (a DVC output)")
    args = parser.parse_args()

    params = load_params(args.params)
    study, runtime = params.study, params.runtime
    device = distributed.launch(runtime.nproc, resolve_device(runtime.device))
    set_threads(runtime.model_threads)
    train = PreparedSplit.load(args.prepared / "train.json")
    torch.manual_seed(study.seed)
    with distributed.main_first():  # one process downloads the weights
        detector = build_detector(
            params.train.detector,
            weights=str(seed_dir(args.models, params.train.seeds[0]) / "model.pt")
            if params.aug.base == "original"
            else "coco",
            num_classes=len(train.category_names),
            cache_dir=Path(runtime.weights_cache),
            min_size=study.detector_min_size,
            score_threshold=study.score_threshold,
        ).to(device)
    with (
        distributed.shared_output_dir(args.out) as tmp,
        detector,
        distributed.on_main(MapWriter, tmp / "train.zip") as writer,
    ):
        _, counts = compute_saliency(
            detector,
            split_images(train),
            writer,
            size=study.size,
            batch_size=study.batch_size,
            num_workers=runtime.num_workers,
            with_detections=False,
        )
        if distributed.is_main():
            write_json(tmp / "info.json", {"detector": detector.name, "weights": detector.weights_label, **counts})


if __name__ == "__main__":
    run_stage(main)
