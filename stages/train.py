"""Stage `train@<arm>`: train the Faster R-CNN on one training set, same schedule for every arm.

An interrupted run resumes from its last epoch: the checkpoint lives under `.cache/checkpoints/<arm>/`
(outside DVC, which clears a stage's outputs before running it) and is used only if its fingerprint — the
train params, the working size, the number of processes and the training set's contents — matches this run.

With `runtime.nproc` > 1 it runs under torchrun with DistributedDataParallel: each process takes
`train.batch_size` images a step (the learning rate is used as given), and only rank 0 writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from dvclive import Live

from human_saliency.cli import run_stage
from human_saliency.experiment.train import build_model, fit, save_model
from human_saliency.experiment.training_data import DetectionDataset
from human_saliency.params import load_params
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed
from human_saliency.runtime.device import resolve_device

CHECKPOINTS = Path(".cache/checkpoints")


def fingerprint(train_set: Path, settings: dict) -> str:
    """A hash of everything that shapes a training run: its settings and its training set file."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(train_set.read_bytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--arm", required=True, help="the training set's arm (original, erasing, ...)")
    parser.add_argument("--train-set", type=Path, required=True, help="the training set's COCO JSON")
    parser.add_argument("--out", type=Path, required=True, help="model folder (a DVC output)")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder (training curves)")
    args = parser.parse_args()

    params = load_params(args.params)
    train, size, runtime = params.train, params.study.size, params.runtime
    device = distributed.launch(runtime.nproc, resolve_device(runtime.device))
    split = PreparedSplit.load(args.train_set)
    torch.manual_seed(train.seed)
    with distributed.main_first():  # one process downloads the weights
        model = build_model(
            train.detector,
            init=train.init,
            num_classes=len(split.category_names),
            size=size,
            cache_dir=Path(runtime.weights_cache),
            rois_per_image=train.rois_per_image,
        )
    settings = {**train.model_dump(), "size": size, "world_size": distributed.world_size()}
    checkpoint = CHECKPOINTS / args.arm / "last.pt"
    result = fit(
        model,
        DetectionDataset(split, size, hflip=train.hflip),
        epochs=train.epochs,
        batch_size=train.batch_size,
        lr=train.lr,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        warmup_iters=train.warmup_iters,
        optimizer=train.optimizer,
        seed=train.seed,
        device=device,
        num_workers=runtime.num_workers,
        amp=runtime.amp,
        checkpoint_path=checkpoint,
        fingerprint=fingerprint(args.train_set, settings),
    )
    if not distributed.is_main():
        return
    # The curves are written from the full history once training ends, so that a resumed run's
    # plots hold every epoch (DVC clears the dvclive folder before the stage runs).
    with Live(dir=str(args.live), dvcyaml=False, save_dvc_exp=False) as live:
        for entry in result["history"]:
            for name, value in entry.items():
                if name != "epoch":
                    live.log_metric(f"train/{name}", value)
            live.next_step()
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(
        model,
        args.out / "model.pt",
        meta={"arm": args.arm, "detector": train.detector, "categories": split.category_names, **settings},
    )
    checkpoint.unlink(missing_ok=True)


if __name__ == "__main__":
    run_stage(main)
