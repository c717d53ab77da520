"""Stage `fixations`: predicted human eye fixations for the VOC splits (train, and each test condition: test, and
test_shifted where prepare wrote it) and MIT1003, at the working size."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.io.files import atomic_dir, write_json
from human_saliency.io.mapstore import MapWriter
from human_saliency.io.weights import fetch_weights
from human_saliency.maps.fixations import predict_maps
from human_saliency.maps.predictors import build_predictor
from human_saliency.params import load_params
from human_saliency.prepared.loaders import split_images, stimuli_images
from human_saliency.prepared.splits import PreparedSplit, load_conditions
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.runtime.device import resolve_device

log = logging.getLogger("fixations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder (from `prepare`)")
    parser.add_argument("--out", type=Path, required=True, help="fixation maps folder (a DVC output)")
    args = parser.parse_args()

    params = load_params(args.params)
    fix, study, runtime = params.fixations, params.study, params.runtime
    centerbias = checkpoint = None
    if fix.predictor == "deepgaze_iie":  # its two files, fetched and verified; building it downloads nothing
        cb, ckpt = fix.centerbias, fix.checkpoint
        centerbias = fetch_weights(cb.url, cb.filename, runtime.weights_cache, sha256=cb.sha256)
        checkpoint = fetch_weights(ckpt.url, ckpt.filename, runtime.weights_cache, sha256=ckpt.sha256)
    predictor = build_predictor(
        fix.predictor,
        centerbias_path=centerbias,
        weights_path=checkpoint,
        device=resolve_device(runtime.device),
    )

    sets = {
        "train": split_images(PreparedSplit.load(args.prepared / "train.json")),
        **{name: split_images(split) for name, split in load_conditions(args.prepared).items()},
        "mit1003": stimuli_images(PreparedStimuli.load(args.prepared / "mit1003.json")),
    }
    with atomic_dir(args.out) as tmp:
        counts = {}
        for name, refs in sets.items():
            with MapWriter(tmp / f"{name}.zip") as writer:
                counts[name] = predict_maps(
                    predictor,
                    refs,
                    writer,
                    size=study.size,
                    batch_size=fix.batch_size,
                    num_workers=runtime.num_workers,
                )
        write_json(
            tmp / "info.json",
            {"predictor": fix.predictor, "label": predictor.label, "size": study.size, "images": counts},
        )
    log.info("predicted fixations with %s: %s", predictor.label, counts)


if __name__ == "__main__":
    run_stage(main)
