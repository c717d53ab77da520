"""Detector saliency over a set of images: one forward pass per batch yields detections and EigenCAM maps."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from human_saliency.io.mapstore import MapWriter, merge_archives
from human_saliency.maps.cam import eigencam
from human_saliency.maps.detectors import build_detector
from human_saliency.maps.normalization import is_degenerate
from human_saliency.prepared.loaders import ImageRef, batches
from human_saliency.runtime import distributed
from human_saliency.sources.voc import numeric_id

log = logging.getLogger(__name__)


def to_coco_results(detections: dict[str, torch.Tensor], ref: ImageRef, size: int) -> list[dict[str, Any]]:
    """Detections made at size×size, rescaled to the original image, in the COCO results format."""
    scale = torch.tensor([ref.width / size, ref.height / size] * 2)
    boxes = detections["boxes"].detach().cpu().float() * scale
    image_id = numeric_id(ref.key)
    return [
        {
            "image_id": image_id,
            "category_id": int(label),
            "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
            "score": round(float(score), 5),
        }
        for (x0, y0, x1, y1), score, label in zip(
            boxes.tolist(), detections["scores"].tolist(), detections["labels"].tolist(), strict=True
        )
    ]


def compute_saliency(
    detector,
    refs: Sequence[ImageRef],
    writer: MapWriter | None,
    *,
    size: int,
    batch_size: int,
    num_workers: int = 0,
    with_detections: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Write each image's EigenCAM map (size×size, [0, 1]) to ``writer``; return COCO results and counts.

    Counts: ``images``, ``no_detections`` (the map is still made: EigenCAM needs no boxes) and
    ``degenerate_<reason>`` for maps that are constant or not finite (stored, but never averaged in).

    Under torchrun (more than one process) each process takes a strided shard of ``refs`` and writes its
    maps to a shard archive beside rank 0's ``writer`` (so the processes must share a filesystem); rank 0
    then copies them into ``writer`` in ``refs`` order, which gives the bytes a single process writes. Only
    rank 0 passes a writer, the others None. Every process returns the results and counts of all images.
    """
    world = distributed.world_size()
    if world == 1:
        if writer is None:
            raise ValueError("compute_saliency: a single process needs a writer")
        per_image, counts = _saliency_of(detector, refs, writer, size, batch_size, num_workers, with_detections)
        return [result for results in per_image for result in results], counts
    rank = distributed.rank()
    if (writer is None) == (rank == 0):
        raise ValueError(f"compute_saliency: rank {rank} must pass {'a writer' if rank == 0 else 'writer=None'}")
    final = distributed.broadcast_object(writer.path if writer is not None else None)
    parts = [final.with_name(f".{final.name}.shard-{r}-of-{world}.zip") for r in range(world)]
    with MapWriter(parts[rank]) as part:
        mine = _saliency_of(
            detector, distributed.shard(refs, rank, world), part, size, batch_size, num_workers, with_detections
        )
    gathered = distributed.gather_objects(mine)  # also waits until every shard archive is complete
    if writer is not None:
        merge_archives(parts, writer, [ref.key for ref in refs])
        for path in parts:
            path.unlink()
    per_image: list[list[dict[str, Any]]] = [[] for _ in refs]
    counts: Counter[str] = Counter()
    for r, (results, shard_counts) in enumerate(gathered):
        per_image[r::world] = results  # undo the strided shard: back to refs order
        counts.update(shard_counts)
    return [result for results in per_image for result in results], dict(counts)


def _saliency_of(
    detector,
    refs: Sequence[ImageRef],
    writer: MapWriter,
    size: int,
    batch_size: int,
    num_workers: int,
    with_detections: bool,
) -> tuple[list[list[dict[str, Any]]], dict[str, int]]:
    """compute_saliency in one process: the COCO results of each ref (in order) and the counts."""
    device = next(detector.model.parameters()).device
    per_image: list[list[dict[str, Any]]] = []
    counts: Counter[str] = Counter()
    loader = batches(refs, size=size, batch_size=batch_size, num_workers=num_workers)
    for indices, images in tqdm(
        loader, desc=f"saliency {detector.name}", unit="batch", disable=not distributed.is_main()
    ):
        inputs = images.permute(0, 3, 1, 2).to(device=device, dtype=torch.float32).div_(255)
        detections, activations = detector.run(inputs)
        maps = eigencam(
            activations.values, (size, size), image_size=activations.image_size, input_size=activations.input_size
        )
        maps = maps.cpu().numpy()  # only the finished maps leave the device
        for index, dets, saliency in zip(indices.tolist(), detections, maps, strict=True):
            ref = refs[index]
            counts["images"] += 1
            counts["no_detections"] += int(len(dets["scores"]) == 0)
            reason = is_degenerate(saliency)
            if reason:
                counts[f"degenerate_{reason}"] += 1
                saliency = np.nan_to_num(saliency, nan=0.0, posinf=0.0, neginf=0.0).clip(0, 1)
            writer.add(ref.key, saliency)
            per_image.append(to_coco_results(dets, ref, size) if with_detections else [])
    log.info("%s: %s", detector.name, dict(counts))
    return per_image, dict(counts)


def write_random_init_maps(
    name: str,
    refs: Sequence[ImageRef],
    writer: MapWriter | None,
    *,
    num_classes: int,
    seed: int,
    size: int,
    min_size: int | None,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> None:
    """The model-randomisation check (Adebayo et al. 2018): detector ``name``'s maps at random init, seeded as
    every random init is, for comparison with the trained model's maps (a map that hardly changes when the
    weights are randomised says little about what the model learned)."""
    with build_detector(name, weights="random", num_classes=num_classes, seed=seed, min_size=min_size) as detector:
        compute_saliency(
            detector.to(device),
            refs,
            writer,
            size=size,
            batch_size=batch_size,
            num_workers=num_workers,
            with_detections=False,
        )
