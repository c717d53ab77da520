"""The one detector registry: the study's seven detectors (plus the compact Faster R-CNN), built by name.

Usage::

    with build_detector("fasterrcnn_r50", weights="random", num_classes=5) as detector:
        detections, activations = detector.run(images)  # one forward pass; activations stay on the device
        maps = eigencam(  # human_saliency.maps.cam, on the same device
            activations.values, images.shape[-2:], image_size=activations.image_size, input_size=activations.input_size
        )
"""

from __future__ import annotations

from pathlib import Path

from human_saliency.errors import ParamsError
from human_saliency.io.weights import fetch_weights, load_checkpoint, load_state
from human_saliency.maps.detectors import detr, torchvision_family, yolov5
from human_saliency.maps.detectors.base import Activations, Detector, DetectorSpec
from human_saliency.maps.detectors.labels import VOC_CLASSES, coco_label_map, dataset_label_map

__all__ = ["DETECTORS", "Activations", "Detector", "DetectorSpec", "build_detector"]

_ORDER = (
    "yolov5",
    "fasterrcnn_r50",
    "ssd_vgg16",
    "ssdlite_mobilenet",
    "maskrcnn_r50",
    "retinanet_r50",
    "detr_r50",
    "fasterrcnn_mobilenet",
)
_SPECS = {spec.name: spec for spec in (*torchvision_family.SPECS, *yolov5.SPECS, *detr.SPECS)}
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
    cache_dir: Path = Path(".cache/weights"),
    min_size: int | None = None,
    score_threshold: float = 0.05,
) -> Detector:
    """Build the registry's detector ``name`` in eval mode, on the CPU.

    ``weights``: "coco" (official COCO weights, fetched once into ``cache_dir`` and checksummed;
    detections mapped to VOC's 20 classes, so ``num_classes`` must be 20), "random" (random init,
    offline; seed torch's RNG first for a reproducible model) or the path of a training checkpoint
    (a dict with a "model" state dict for ``num_classes`` classes). Labels are dataset category ids
    1..num_classes. ``min_size``: the short side the model resizes images to (None: the library's
    default; SSD/SSDlite always use their fixed 300/320 input).
    """
    if name not in DETECTORS:
        raise ParamsError(f"detector {name!r}: unknown; known detectors: {', '.join(DETECTORS)}")
    if num_classes < 1:
        raise ParamsError(f"num_classes: must be >= 1, got {num_classes}")
    if min_size is not None and min_size < 32:
        raise ParamsError(f"min_size: must be >= 32 or None, got {min_size}")
    if not 0.0 <= score_threshold <= 1.0:
        raise ParamsError(f"score_threshold: must lie in [0, 1], got {score_threshold}")
    if weights not in ("coco", "random") and not Path(weights).is_file():
        raise ParamsError(f"weights={weights!r}: not 'coco', 'random' or an existing checkpoint file")
    spec = DETECTORS[name]
    family = _FAMILIES[spec.family]
    if weights == "coco":
        if num_classes != len(VOC_CLASSES):
            raise ParamsError(
                f"weights='coco' gives VOC's {len(VOC_CLASSES)} classes (COCO classes mapped to VOC), "
                f"but num_classes is {num_classes}: use 'random' or a checkpoint for other datasets"
            )
        paths = [fetch_weights(f.url, f.filename, cache_dir, f.sha256) for f in spec.coco_weights]
        model, index_names = family.load_coco(spec, paths)
        label_map = coco_label_map(index_names, source=str(paths[-1]))
        weights_label = "COCO-pretrained"
    else:
        model = spec.builder(num_classes + int(family.background))
        label_map = dataset_label_map(num_classes, background=family.background)
        weights_label = "random init"
        if weights != "random":
            load_state(model, load_checkpoint(weights), weights)
            weights_label = f"fine-tuned: {Path(weights).name}"
    return family(
        spec,
        model,
        weights_label=weights_label,
        label_map=label_map,
        min_size=min_size,
        score_threshold=score_threshold,
    )
