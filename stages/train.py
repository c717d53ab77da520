"""Stage `train@<arm>`: train the Faster R-CNN on one training set once per seed (`train.seeds`), same schedule for
every arm.

Each seed's run is its own process (a pool of `runtime.train_parallel` at once), pinned to `runtime.model_threads`
threads, so its result does not depend on how many run at once. It writes `<out>/seed<k>/model.pt`; the curves of
every seed go to one dvclive folder (`seed<k>/train/<loss>`).

An interrupted run resumes each seed from its last epoch: the checkpoints live under
`.cache/checkpoints/<arm>/seed<k>/` (outside DVC, which clears a stage's outputs before running it) and are
used only if their fingerprint — the train params, the seed, the working size, the threads, the number of
processes and the training set's contents — matches this run.

With `runtime.nproc` > 1 it runs under torchrun with DistributedDataParallel and the seeds run one after
another, all processes on each: each process takes `train.batch_size` images a step (the learning rate is used
as given), and only rank 0 writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

from dvclive import Live

from human_saliency.cli import run_stage
from human_saliency.experiment.arms import seed_dir
from human_saliency.experiment.train import TrainRun, train_run
from human_saliency.io.files import atomic_dir
from human_saliency.params import load_params
from human_saliency.runtime import distributed
from human_saliency.runtime.device import resolve_device
from human_saliency.runtime.pool import run_each, set_threads

CHECKPOINTS = Path(".cache/checkpoints")
log = logging.getLogger("train")


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
    parser.add_argument("--out", type=Path, required=True, help="model folder (a DVC output): seed<k>/model.pt")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder (training curves of every seed)")
    args = parser.parse_args()

    params = load_params(args.params)
    train, size, runtime = params.train, params.study.size, params.runtime
    device = distributed.launch(runtime.nproc, resolve_device(runtime.device))
    recipe = train.model_dump(exclude={"seeds"})
    world = distributed.world_size()
    runs = []
    with distributed.shared_output_dir(args.out) as tmp:
        for seed in train.seeds:
            settings = {**recipe, "seed": seed, "size": size, "world_size": world, "threads": runtime.model_threads}
            runs.append(
                TrainRun(
                    detector=train.detector,
                    init=train.init,
                    train_set=args.train_set,
                    size=size,
                    cache_dir=Path(runtime.weights_cache),
                    rois_per_image=train.rois_per_image,
                    hflip=train.hflip,
                    epochs=train.epochs,
                    batch_size=train.batch_size,
                    lr=train.lr,
                    momentum=train.momentum,
                    weight_decay=train.weight_decay,
                    warmup_iters=train.warmup_iters,
                    optimizer=train.optimizer,
                    seed=seed,
                    device=str(device),
                    num_workers=runtime.num_workers,
                    amp=runtime.amp,
                    checkpoint_path=seed_dir(CHECKPOINTS / args.arm, seed) / "last.pt",
                    fingerprint=fingerprint(args.train_set, settings),
                    model_path=seed_dir(tmp, seed) / "model.pt",
                    meta={"arm": args.arm, "detector": train.detector, **settings},
                )
            )
        names = [f"{args.arm} seed {run.seed}" for run in runs]
        if world > 1:  # one DDP group: every process takes part in each seed's run, one seed after another
            set_threads(runtime.model_threads)
            histories = [train_run(run) for run in runs]
        else:
            processes = min(runtime.train_parallel, len(runs))
            log.info("%d run(s), %d at once, %d thread(s) each", len(runs), processes, runtime.model_threads)
            histories = run_each(train_run, runs, processes=processes, threads=runtime.model_threads, names=names)
    if not distributed.is_main():
        return
    # The curves are written from each seed's full history once training ends, so that a resumed run's plots
    # hold every epoch (DVC clears the dvclive folder before the stage runs).
    with atomic_dir(args.live) as live_dir, Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
        for step in range(train.epochs):
            for seed, history in zip(train.seeds, histories, strict=True):
                for name, value in history[step].items():
                    if name != "epoch":
                        live.log_metric(f"seed{seed}/train/{name}", value)
            live.next_step()


if __name__ == "__main__":
    run_stage(main)
