"""Stage `saliency@<detector>`: EigenCAM maps (and detections) of one detector on each VOC test condition (test, and
test_shifted where prepare wrote it) and MIT1003, in the layout of `maps.layout`.

With `runtime.nproc` > 1 it runs under torchrun and each process takes a share of the images; the outputs
are the bytes one process writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from human_saliency.cli import run_stage
from human_saliency.io.files import write_json
from human_saliency.io.mapstore import MapWriter
from human_saliency.maps.detectors import build_detector
from human_saliency.maps.layout import MIT1003, detections_path, info_path, maps_path, random_maps_path
from human_saliency.maps.saliency import compute_saliency, write_random_init_maps
from human_saliency.params import load_params
from human_saliency.prepared.loaders import split_images, stimuli_images
from human_saliency.prepared.splits import TEST, load_conditions
from human_saliency.prepared.stimuli import PreparedStimuli
from human_saliency.runtime import distributed
from human_saliency.runtime.device import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--detector", required=True, help="a name from the detector registry")
    parser.add_argument("--prepared", type=Path, required=True, help="prepared data folder (from `prepare`)")
    parser.add_argument("--out", type=Path, required=True, help="this detector's saliency folder (a DVC output)")
    args = parser.parse_args()

    params = load_params(args.params)
    study, runtime = params.study, params.runtime
    device = distributed.launch(runtime.nproc, resolve_device(runtime.device))
    conditions = load_conditions(args.prepared)
    test = conditions[TEST]
    with distributed.main_first():  # one process downloads the weights
        detector = build_detector(
            args.detector,
            weights=study.weights,
            num_classes=len(test.category_names),
            seed=study.seed,
            cache_dir=Path(runtime.weights_cache),
            min_size=study.detector_min_size,
            score_threshold=study.score_threshold,
            max_detections=study.max_detections,
            proposals=study.proposals,
            trust_unverified_pickles=study.trust_unverified_pickles,
        ).to(device)
    sets = {name: split_images(split) for name, split in conditions.items()}
    sets[MIT1003] = stimuli_images(PreparedStimuli.load(args.prepared / "mit1003.json"))
    with distributed.shared_output_dir(args.out) as tmp, detector:
        info = {
            "detector": detector.name,
            "label": detector.label,
            "weights": detector.weights_label,
            "size": study.size,
            "counts": {},
        }
        for name, refs in sets.items():
            with distributed.on_main(MapWriter, maps_path(tmp, name)) as writer:
                detections, info["counts"][name] = compute_saliency(
                    detector,
                    refs,
                    writer,
                    size=study.size,
                    batch_size=study.batch_size,
                    num_workers=runtime.num_workers,
                    with_detections=name in conditions,
                )
            if name in conditions and distributed.is_main():
                write_json(detections_path(tmp, name), detections)
        if study.weights != "random":
            for name in conditions:
                with distributed.on_main(MapWriter, random_maps_path(tmp, name)) as writer:
                    write_random_init_maps(
                        args.detector,
                        sets[name],
                        writer,
                        num_classes=len(test.category_names),
                        seed=study.seed,
                        size=study.size,
                        min_size=study.detector_min_size,
                        batch_size=study.batch_size,
                        num_workers=runtime.num_workers,
                        device=device,
                    )
        if distributed.is_main():
            write_json(info_path(tmp), info)


if __name__ == "__main__":
    run_stage(main)
