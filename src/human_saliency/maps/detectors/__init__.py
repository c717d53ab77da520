"""The one detector registry: the study's seven detectors plus two compact Faster R-CNNs for training, by name.

Usage::

    with build_detector("fasterrcnn_r50", weights="random", num_classes=5) as detector:
        detections, activations = detector.run(images)  # one forward pass; activations stay on the device
        maps = eigencam(  # human_saliency.maps.cam, on the same device
            activations.values, images.shape[-2:], image_size=activations.image_size, input_size=activations.input_size
        )
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch

from human_saliency.errors import DataError
from human_saliency.io.weights import fetch_weights, load_checkpoint, load_state
from human_saliency.maps.detectors import compact, detr, torchvision_family, yolov5
from human_saliency.maps.detectors.base import Activations, Detector, DetectorSpec
from human_saliency.maps.detectors.labels import coco_label_map, dataset_label_map
from human_saliency.sources.voc import VOC_CLASSES

__all__ = ["DETECTORS", "STUDY_DETECTORS", "Activations", "Detector", "DetectorSpec", "build_detector"]

# The study's seven detectors, in its tables' order; the registry adds two compact ones for training.
STUDY_DETECTORS = (
    "yolov5",
    "fasterrcnn_r50",
    "ssd_vgg16",
    "ssdlite_mobilenet",
    "maskrcnn_r50",
    "retinanet_r50",
    "detr_r50",
)
_ORDER = (*STUDY_DETECTORS, "fasterrcnn_mobilenet", "fasterrcnn_compact")
_SPECS = {spec.name: spec for spec in (*torchvision_family.SPECS, *compact.SPECS, *yolov5.SPECS, *detr.SPECS)}
DETECTORS: dict[str, DetectorSpec] = {name: _SPECS[name] for name in _ORDER}
_FAMILIES: dict[str, type[Detector]] = {
    "torchvision": torchvision_family.TorchvisionDetector,
    "ultralytics": yolov5.YoloDetector,
    "transformers": detr.DetrDetector,
}


def build_detector(
    name: str,
    *,
    weights: str,
    num_classes: int,
    seed: int = 0,
    cache_dir: Path = Path(".cache/weights"),
    min_size: int | None = None,
    score_threshold: float = 0.05,
    max_detections: int = 100,
    proposals: int | None = None,
    trust_unverified_pickles: bool = False,
) -> Detector:
    """Build the registry's detector ``name`` in eval mode, on the CPU.

    ``weights``: "coco" (official COCO weights, fetched once into ``cache_dir`` and checksummed;
    detections mapped to VOC's 20 classes, so ``num_classes`` must be 20), "random" (random init,
    offline, drawn from :func:`random_init_seed` so that the same ``seed`` gives the same model and
    detectors sharing an architecture do not share their random weights) or the path of a training
    checkpoint (a dict with a "model" state dict for ``num_classes`` classes; its internal resize is the one it
    was trained with, stored in its "meta" by ``experiment.train.save_model``). Labels are dataset
    category ids 1..num_classes. ``min_size``: the short side the model resizes images to (None: the
    library's default; SSD/SSDlite always use their fixed 300/320 input). Every detector's detections go
    through one post-processing: scores at least ``score_threshold``, at most ``max_detections`` per image.
    ``proposals``: how many RPN proposals per image an R-CNN's box head scores at inference (None: the model's
    own; torchvision's R50s: 1000); other families have no proposals. The CAM layers lie before the heads, so
    maps do not depend on it.
    ``trust_unverified_pickles``: load a pickled weight file (yolov5su.pt) on its first download, which only
    ``downloads.lock`` verifies afterwards.
    """
    if name not in DETECTORS:
        raise ValueError(f"detector {name!r}: unknown; known detectors: {', '.join(DETECTORS)}")
    if weights not in ("coco", "random") and not Path(weights).is_file():
        raise DataError(f"{weights}: model file not found (weights must be 'coco', 'random' or a checkpoint)")
    spec = DETECTORS[name]
    family = _FAMILIES[spec.family]
    if weights == "coco" and not spec.coco_weights:
        raise ValueError(f"detector {name!r} has no COCO-pretrained weights: use 'random' or a checkpoint")
    if weights == "coco":
        if num_classes != len(VOC_CLASSES):
            raise ValueError(
                f"weights='coco' gives VOC's {len(VOC_CLASSES)} classes (COCO classes mapped to VOC), "
                f"but num_classes is {num_classes}: use 'random' or a checkpoint for other datasets"
            )
        paths = [
            fetch_weights(
                f.url,
                f.filename,
                cache_dir,
                f.sha256,
                size=f.size,
                pickle=f.pickle,
                trust_unverified_pickles=trust_unverified_pickles,
            )
            for f in spec.coco_weights
        ]
        model, index_names = family.load_coco(spec, paths)
        label_map = coco_label_map(index_names, source=str(paths[-1]))
        weights_label = "COCO-pretrained"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_init_seed(seed, name))
            model = spec.builder(num_classes + int(family.background))
        label_map = dataset_label_map(num_classes, background=family.background)
        weights_label = "random init"
        if weights != "random":
            state, meta = load_checkpoint(weights)
            load_state(model, state, weights)
            weights_label = f"fine-tuned: {Path(weights).name}"
    detector = family(
        spec,
        model,
        weights_label=weights_label,
        label_map=label_map,
        min_size=min_size,
        score_threshold=score_threshold,
        max_detections=max_detections,
    )
    if proposals is not None and hasattr(model, "rpn"):
        model.rpn._post_nms_top_n["testing"] = proposals  # torchvision keeps it only there (rpn_post_nms_top_n_test)
    if weights not in ("coco", "random") and "resize" in meta:
        # Tested at the scale it was trained at, whatever min_size says: the library default (800 px for
        # the R50) would show it objects 1.56× larger than it learned at the paper's 512 px.
        model.transform.min_size = tuple(meta["resize"]["min_size"])
        model.transform.max_size = meta["resize"]["max_size"]
    return detector


def random_init_seed(seed: int, name: str) -> int:
    """The torch seed of detector ``name``'s random init: ``seed`` offset by the name, so that Faster and
    Mask R-CNN (one backbone architecture) do not share random weights."""
    return seed + zlib.crc32(name.encode())
