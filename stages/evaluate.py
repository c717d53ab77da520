"""Stage `evaluate@<arm>`: every seed's model of one arm on every test condition (test; test_shifted where prepare
wrote it): mAP, saliency alignment, the randomisation check and the mass on the planted cue, summarised over seeds
and images.

With `runtime.nproc` > 1 the maps are computed under torchrun, each process taking a share of the images.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.experiment.arms import ARMS, seed_dir
from human_saliency.experiment.evaluate import evaluate_arm
from human_saliency.io.files import write_json
from human_saliency.io.mapstore import MapReader
from human_saliency.maps.layout import maps_path
from human_saliency.params import load_params
from human_saliency.prepared.loaders import stimuli_images
from human_saliency.prepared.masks import cue_regions, working_size_masks
from human_saliency.prepared.splits import load_conditions
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.runtime import distributed
from human_saliency.runtime.device import resolve_device
from human_saliency.runtime.pool import set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--arm", choices=list(ARMS), required=True)
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder")
    parser.add_argument("--models", type=Path, required=True, help="the arm's models folder (from train)")
    parser.add_argument("--fixations", type=Path, required=True, help="predicted fixation maps folder")
    parser.add_argument("--out", type=Path, required=True, help="this arm's maps and scores (a DVC output)")
    parser.add_argument("--metrics", type=Path, required=True, help="this arm's metrics JSON")
    args = parser.parse_args()

    params = load_params(args.params)
    study, runtime = params.study, params.runtime
    device = distributed.launch(runtime.nproc, resolve_device(runtime.device))
    set_threads(runtime.model_threads)
    conditions = load_conditions(args.prepared)
    # Only rank 0 scores: the other processes need no masks.
    main_process = distributed.is_main()
    masks = {name: working_size_masks(split, study.size) if main_process else {} for name, split in conditions.items()}
    cues = {name: cue_regions(split, study.size) if main_process else {} for name, split in conditions.items()}
    with distributed.shared_output_dir(args.out) as tmp, contextlib.ExitStack() as stack:
        fixations = {name: stack.enter_context(MapReader(maps_path(args.fixations, name))) for name in conditions}
        result = evaluate_arm(
            params.train.detector,
            {seed: seed_dir(args.models, seed) / "model.pt" for seed in params.train.seeds},
            conditions,
            masks=masks,
            cues=cues,
            fixations=fixations,
            stimuli=stimuli_images(PreparedStimuli.load(args.prepared / "mit1003.json")),
            out_dir=tmp,
            label=f"trained here: {ARMS[args.arm]}",
            size=study.size,
            min_size=study.detector_min_size,
            batch_size=study.batch_size,
            score_threshold=study.score_threshold,
            max_detections=study.max_detections,
            proposals=study.proposals,
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
