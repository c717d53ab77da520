"""Stage `augment@<arm>`: one training set of the main experiment (original, erasing, inpainting, non-trivial).

Deep Image Prior inpainting (`inpaint.method: dip`) is the one costly arm: with `runtime.nproc` > 1 it runs
under torchrun, each process (GPU) inpainting a share of the selected images.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.experiment.arms import ARMS
from human_saliency.experiment.augment import original_set, policy_set, selection_table, selective_set
from human_saliency.experiment.selection import CRITERIA
from human_saliency.io.files import write_json
from human_saliency.io.mapstore import MapReader
from human_saliency.params import load_params
from human_saliency.prepared.splits import PreparedSplit
from human_saliency.runtime import distributed
from human_saliency.runtime.device import resolve_device

log = logging.getLogger("augment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--arm", choices=list(ARMS), required=True)
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder")
    parser.add_argument("--base-saliency", type=Path, help="base detector's maps on the train split (selective arms)")
    parser.add_argument("--fixations", type=Path, help="predicted fixation maps folder (selective arms)")
    parser.add_argument("--out", type=Path, required=True, help="augmented training set folder (a DVC output)")
    parser.add_argument("--summary", type=Path, required=True, help="counts JSON (a DVC metric)")
    args = parser.parse_args()
    if args.arm in ("erasing", "inpainting") and not (args.base_saliency and args.fixations):
        parser.error(f"--arm {args.arm} needs --base-saliency and --fixations")

    params = load_params(args.params)
    aug = params.aug
    device = resolve_device(params.runtime.device)
    if args.arm == "inpainting" and params.inpaint.method == "dip":
        device = distributed.launch(params.runtime.nproc, device)
    train = PreparedSplit.load(args.prepared / "train.json")
    with distributed.shared_output_dir(args.out) as tmp:
        if args.arm == "original":
            counts = original_set(train, tmp)
        elif args.arm == "nontrivial":
            counts = policy_set(train, tmp, policy=aug.policy, seed=aug.seed, min_box_size=params.prepare.min_box_size)
        else:
            with MapReader(args.base_saliency / "train.zip") as base, MapReader(args.fixations / "train.zip") as fix:
                selection = selection_table(train, base, fix, criterion=aug.criterion, threshold=aug.threshold)
                inpainting = None
                if args.arm == "inpainting":
                    inpainting = params.inpaint.options(seed=aug.seed, device=str(device))
                counts = selective_set(
                    train,
                    tmp,
                    selection=selection,
                    base_maps=base,
                    fraction=aug.erase_fraction,
                    fill=aug.fill,
                    inpainting=inpainting,
                )
            if counts["changed"] == 0 and distributed.is_main():
                log.warning(
                    "%s: the rule %r selected no image; the set equals the original (0 changed)",
                    args.arm,
                    CRITERIA[aug.criterion].rule.replace("threshold", str(aug.threshold)),
                )
    if distributed.is_main():
        write_json(args.summary, {**counts, "fraction_changed": counts["changed"] / max(counts["images"], 1)})


if __name__ == "__main__":
    run_stage(main)
