"""Detection accuracy: PASCAL VOC all-point AP@0.5 (primary) and COCO AP via pycocotools (secondary).

Ground truth is a prepared COCO-style JSON (with a ``difficult`` flag per annotation); detections are
COCO result dicts (``image_id``, ``category_id``, ``bbox`` [x, y, w, h] in 0-based pixels, ``score``).
Images flagged ``partial_annotations`` (VOC images outside its detection task, whose XML may annotate only some
objects) are left out of every AP here, with their detections: a correct detection there would count as false.
"""

from __future__ import annotations

import contextlib
import io
import logging
from os import PathLike
from typing import Any

import numpy as np
from pycocotools.cocoeval import COCOeval

from human_saliency.errors import DataError
from human_saliency.io.files import read_json
from human_saliency.prepared.splits import coco_index
from human_saliency.scoring.statistics import resample_weights

logger = logging.getLogger(__name__)

VOC_IOU_THRESHOLD = 0.5
_DETECTION_KEYS = ("image_id", "category_id", "bbox", "score")
# What pycocotools needs; "difficult" may be absent (then the object is not difficult).
_ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")


def evaluate_detections(
    gt: dict | str | PathLike, detections: list[dict], *, n_boot: int = 0, seed: int = 0
) -> dict[str, Any]:
    """Score ``detections`` against the prepared ground truth ``gt`` (a COCO dict or its JSON path).

    Returns numeric leaves for a DVC metrics file: ``ap50_voc`` (mean over classes of the VOC
    all-point AP@0.5, difficult objects ignored; with ``n_boot`` > 0 a dict of its ``value`` and the 95 %
    image-level bootstrap interval, :func:`ap50_voc_replicates`), ``ap_coco`` (AP@[.5:.95]) and ``ap50_coco``
    (pycocotools, bbox), ``n_images`` (scored), ``n_images_partial_annotations`` (left out), ``n_detections``
    (on the scored images), ``n_classes_without_gt`` and ``per_class_ap50_voc`` {class name: AP}. A class with
    no non-difficult object is left out of the VOC mean and of ``per_class_ap50_voc`` (counted in
    ``n_classes_without_gt``), not scored 0.

    The COCO numbers count difficult objects as ordinary ground truth: COCO has no "ignore this
    object" flag other than ``iscrowd``, whose matching rules differ, so the secondary number
    follows plain COCO practice. With no detections at all both COCO numbers are 0.0 (pycocotools
    itself cannot load an empty result list). Raises DataError on malformed input or when no
    class has a non-difficult object.
    """
    source = str(gt) if isinstance(gt, (str, PathLike)) else "the ground-truth dict"
    dataset = _load_gt(gt, source)
    names = {int(c["id"]): str(c["name"]) for c in dataset["categories"]}
    _detection_arrays(detections, {int(im["id"]) for im in dataset["images"]}, names)  # every detection checked
    partial = partial_annotation_ids(dataset)
    dataset = {
        **dataset,
        "images": [im for im in dataset["images"] if int(im["id"]) not in partial],
        "annotations": [a for a in dataset["annotations"] if int(a["image_id"]) not in partial],
    }
    detections = [d for d in detections if int(d["image_id"]) not in partial]
    arrays = _detection_arrays(detections, {int(im["id"]) for im in dataset["images"]}, names)

    per_class = _voc_ap_per_class(dataset, arrays, names)
    scored = {names[c]: ap for c, ap in per_class.items() if ap is not None}
    if not scored:
        raise DataError(f"{source}: no class has a non-difficult object; VOC AP is undefined")
    ap_coco, ap50_coco = _coco_ap(dataset, detections)
    ap50_voc = float(np.mean(list(scored.values())))
    if n_boot > 0:
        replicates = ap50_voc_replicates(dataset, detections, resample_weights(len(dataset["images"]), n_boot, seed))
        low, high = np.nanquantile(replicates, [0.025, 0.975])
        ap50_voc = {"value": ap50_voc, "ci_low": float(low), "ci_high": float(high)}
    metrics = {
        "ap50_voc": ap50_voc,
        "ap_coco": ap_coco,
        "ap50_coco": ap50_coco,
        "n_images": len(dataset["images"]),
        "n_images_partial_annotations": len(partial),
        "n_detections": len(detections),
        "n_classes_without_gt": len(per_class) - len(scored),
        "per_class_ap50_voc": scored,
    }
    logger.info(
        "AP50 (VOC) %s, AP (COCO) %.4f, AP50 (COCO) %.4f on %d images, %d detections",
        metrics["ap50_voc"],
        ap_coco,
        ap50_coco,
        metrics["n_images"],
        metrics["n_detections"],
    )
    return metrics


def partial_annotation_ids(gt: dict) -> set[int]:
    """The ids of the images flagged ``partial_annotations``: no detection AP is computed on them."""
    return {int(image["id"]) for image in gt["images"] if image.get("partial_annotations", False)}


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (VOC2010+): area under the monotone precision envelope.

    ``recall`` and ``precision`` are the cumulative values after each detection in score order.
    The curve is closed with (0, 0) and (1, 0); the envelope takes, at each recall, the best
    precision at that recall or beyond; AP sums envelope × recall step wherever recall changes.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.ndim != 1 or recall.shape != precision.shape:
        raise ValueError(f"recall and precision must be 1-D of one length, got {recall.shape} and {precision.shape}")
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    envelope = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * envelope[steps + 1]))


def _load_gt(gt: dict | str | PathLike, source: str) -> dict:
    if not isinstance(gt, dict):
        try:
            gt = read_json(gt)
        except (OSError, ValueError) as exc:
            raise DataError(f"{source}: cannot read ground truth ({exc})") from exc
    missing = [key for key in ("images", "annotations", "categories") if key not in gt]
    if missing:
        raise DataError(f"{source}: ground truth lacks {missing}")
    for ann in gt["annotations"]:
        lacking = [key for key in _ANNOTATION_KEYS if key not in ann]
        if lacking:
            raise DataError(f"{source}: annotation {ann.get('id', ann)} lacks {lacking}")
    return gt


def _detection_arrays(
    detections: list[dict], image_ids: set[int], names: dict[int, str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, category ids, N×4 xywh boxes, scores) of ``detections``, checked up front."""
    try:
        img = np.array([d["image_id"] for d in detections], dtype=np.int64)
        cat = np.array([d["category_id"] for d in detections], dtype=np.int64)
        box = np.array([d["bbox"] for d in detections], dtype=np.float64).reshape(-1, 4)
        score = np.array([d["score"] for d in detections], dtype=np.float64)
    except KeyError as exc:
        raise DataError(f"a detection lacks the key {exc}; need {list(_DETECTION_KEYS)}") from exc
    except ValueError as exc:
        raise DataError(f"detections need numeric ids, score and a 4-number bbox ({exc})") from exc
    if len(box) != len(detections):
        raise DataError("every detection bbox must be 4 numbers [x, y, w, h]")
    checks = (
        (~np.isin(img, list(image_ids)), "has an image_id not in the ground truth"),
        (~np.isin(cat, list(names)), "has an unknown category_id"),
        (~np.isfinite(score), "has a non-finite score"),
        (~np.isfinite(box).all(axis=1) | (box[:, 2:] < 0).any(axis=1), "needs w, h >= 0 (finite)"),
    )
    for bad, why in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"detection {i} {why}: {detections[i]}")
    return img, cat, box, score


def _inclusive_boxes(xywh: np.ndarray) -> np.ndarray:
    """COCO [x, y, w, h] (0-based) -> VOC [xmin, ymin, xmax, ymax] (1-based, inclusive).

    Inverse of the prepare step (x = xmin - 1, w = xmax - xmin + 1). With VOC's "+1" widths the
    IoU of converted boxes equals the continuous IoU of the COCO boxes, i.e. pycocotools' IoU.
    """
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.column_stack((xywh[:, 0] + 1, xywh[:, 1] + 1, xywh[:, 0] + xywh[:, 2], xywh[:, 1] + xywh[:, 3]))


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of inclusive boxes ``a[i]``, ``b[i]`` with the VOC devkit's +1 pixel widths."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1, 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1, 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area_a + area_b - inter)


def _voc_ap_per_class(
    dataset: dict,
    detections: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    names: dict[int, str],
) -> dict[int, float | None]:
    """VOC AP@0.5 per category id; None for a class without non-difficult objects."""
    anns = dataset["annotations"]
    gt_img = np.array([a["image_id"] for a in anns], dtype=np.int64)
    gt_cat = np.array([a["category_id"] for a in anns], dtype=np.int64)
    gt_box = _inclusive_boxes([a["bbox"] for a in anns])
    gt_difficult = np.array([bool(a.get("difficult", 0)) for a in anns], dtype=bool)

    dt_img, dt_cat, dt_xywh, dt_score = detections
    dt_box = _inclusive_boxes(dt_xywh)

    result: dict[int, float | None] = {}
    for cat in sorted(names):
        g = gt_cat == cat
        d = dt_cat == cat
        result[cat] = _class_ap(gt_img[g], gt_box[g], gt_difficult[g], dt_img[d], dt_box[d], dt_score[d])
    return result


def _class_ap(
    gt_img: np.ndarray,
    gt_box: np.ndarray,
    gt_difficult: np.ndarray,
    dt_img: np.ndarray,
    dt_box: np.ndarray,
    dt_score: np.ndarray,
) -> float | None:
    """One class's AP with the devkit's matching (:func:`_class_matches`); None without non-difficult objects."""
    n_pos = int(np.count_nonzero(~gt_difficult))
    if n_pos == 0:
        return None
    _, tp = _class_matches(gt_img, gt_box, gt_difficult, dt_img, dt_box, dt_score)
    cum_tp = np.cumsum(tp)
    return voc_ap(cum_tp / n_pos, cum_tp / np.arange(1, len(cum_tp) + 1))


def _class_matches(
    gt_img: np.ndarray,
    gt_box: np.ndarray,
    gt_difficult: np.ndarray,
    dt_img: np.ndarray,
    dt_box: np.ndarray,
    dt_score: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's matching (VOCevalDet) of one class, vectorised: (image of each counted detection, is it a TP),
    in descending score order.

    Each detection, in descending score order (stable, as MATLAB's sort), goes to the ground-truth
    box of its image with the largest IoU, matched or not; ties go to the first annotation. If that
    IoU >= 0.5 the detection is ignored when the box is difficult, a TP when it is the box's first
    detection, else an FP (duplicate); below 0.5 it is an FP. Because the target box does not
    depend on earlier matches, "first detection of each box" is one np.unique call. An ignored
    detection adds neither a TP nor an FP, so it is dropped: the curve's area stays as it is. Matching
    never looks across images, so resampling images keeps each detection's status (used by the bootstrap).
    """
    order = np.argsort(-dt_score, kind="stable")
    dt_img, dt_box = dt_img[order], dt_box[order]
    if len(gt_img) == 0:  # no object of this class anywhere: every detection is a false positive
        return dt_img, np.zeros(len(dt_img), dtype=bool)

    best_iou, best_gt = _best_overlap(gt_img, gt_box, dt_img, dt_box)
    hit = best_iou >= VOC_IOU_THRESHOLD
    ignored = np.zeros_like(hit)
    ignored[hit] = gt_difficult[best_gt[hit]]  # only a hit has a box: a class may have none at all
    candidates = np.flatnonzero(hit & ~ignored)
    _, first = np.unique(best_gt[candidates], return_index=True)
    tp = np.zeros(len(dt_img), dtype=bool)
    tp[candidates[first]] = True
    return dt_img[~ignored], tp[~ignored]


def ap50_voc_replicates(gt: dict, detections: list[dict], weights: np.ndarray) -> np.ndarray:
    """VOC AP50 (mean over classes) of each resample in ``weights`` (rows of image multiplicities, in the
    order of ``gt["images"]``); NaN where a resample holds no non-difficult object of any class. Images flagged
    ``partial_annotations`` keep their place in ``weights`` but add neither objects nor detections.

    A resampled image counts its objects and detections as often as it is drawn. Each detection keeps its
    TP/FP status (matching never looks across images), so a replicate is a weighted precision-recall curve;
    for a detection drawn k times, the k consecutive points of the duplicated list add the same area as one
    point carrying weight k (precision rises along consecutive TPs; FPs add no recall).
    """
    dataset = _load_gt(gt, "the ground-truth dict")
    names = {int(c["id"]): str(c["name"]) for c in dataset["categories"]}
    position = {int(image["id"]): i for i, image in enumerate(dataset["images"])}
    partial = partial_annotation_ids(dataset)
    if partial:
        _detection_arrays(detections, set(position), names)  # every detection checked, then those dropped
        detections = [d for d in detections if int(d["image_id"]) not in partial]
    dt_img, dt_cat, dt_xywh, dt_score = _detection_arrays(detections, set(position), names)
    dt_box = _inclusive_boxes(dt_xywh)
    anns = [a for a in dataset["annotations"] if int(a["image_id"]) not in partial]
    gt_img = np.array([a["image_id"] for a in anns], dtype=np.int64)
    gt_cat = np.array([a["category_id"] for a in anns], dtype=np.int64)
    gt_box = _inclusive_boxes([a["bbox"] for a in anns])
    gt_difficult = np.array([bool(a.get("difficult", 0)) for a in anns], dtype=bool)
    to_position = np.vectorize(position.__getitem__, otypes=[np.int64])

    per_class = []
    for cat in sorted(names):
        g, d = gt_cat == cat, dt_cat == cat
        positives = np.bincount(to_position(gt_img[g & ~gt_difficult]), minlength=len(position))
        n_pos = weights @ positives
        matched_img, tp = _class_matches(gt_img[g], gt_box[g], gt_difficult[g], dt_img[d], dt_box[d], dt_score[d])
        drawn = weights[:, to_position(matched_img)]
        cum_tp = np.cumsum(drawn * tp, axis=1)
        cum_all = np.cumsum(drawn, axis=1)
        precision = cum_tp / np.maximum(cum_all, 1.0)  # 0 before the first drawn detection (no recall there)
        recall = cum_tp / np.maximum(n_pos, 1.0)[:, None]
        per_class.append(np.where(n_pos > 0, _voc_ap_rows(recall, precision), np.nan))
    stacked = np.stack(per_class)  # classes × replicates; NaN: the class has no positive in that replicate
    scored = ~np.isnan(stacked)
    total = np.where(scored, stacked, 0.0).sum(axis=0)
    count = scored.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _voc_ap_rows(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """:func:`voc_ap` of each row (steps where recall does not change add no area, so no step is skipped)."""
    n = len(recall)
    mrec = np.concatenate((np.zeros((n, 1)), recall, np.ones((n, 1))), axis=1)
    mpre = np.concatenate((np.zeros((n, 1)), precision, np.zeros((n, 1))), axis=1)
    envelope = np.maximum.accumulate(mpre[:, ::-1], axis=1)[:, ::-1]
    return np.sum(np.diff(mrec, axis=1) * envelope[:, 1:], axis=1)


def _best_overlap(
    gt_img: np.ndarray, gt_box: np.ndarray, dt_img: np.ndarray, dt_box: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each detection: the largest IoU with a ground-truth box of its image and that box's index.

    Builds every (detection, same-image box) pair at once, so memory grows with the pairs, not with
    detections × the most boxes in any image. Detections on images without boxes get IoU 0, index -1.
    """
    n_dt = len(dt_img)
    best_iou = np.zeros(n_dt)
    best_gt = np.full(n_dt, -1, dtype=np.int64)
    if n_dt == 0 or len(gt_img) == 0:
        return best_iou, best_gt

    by_image = np.argsort(gt_img, kind="stable")  # keeps annotation order within an image
    sorted_img = gt_img[by_image]
    start = np.searchsorted(sorted_img, dt_img, side="left")
    count = np.searchsorted(sorted_img, dt_img, side="right") - start

    run_start = np.cumsum(count) - count  # where each detection's pairs begin
    pair_dt = np.repeat(np.arange(n_dt), count)
    offset = np.arange(len(pair_dt)) - np.repeat(run_start, count)
    pair_gt = by_image[np.repeat(start, count) + offset]
    iou = _pair_iou(dt_box[pair_dt], gt_box[pair_gt])

    has_gt = np.flatnonzero(count > 0)
    best_iou[has_gt] = np.maximum.reduceat(iou, run_start[has_gt])
    # The first pair in each detection's run that reaches its maximum is the first such annotation.
    at_max = np.flatnonzero(iou == best_iou[pair_dt])
    owners, first = np.unique(pair_dt[at_max], return_index=True)
    best_gt[owners] = pair_gt[at_max[first]]
    return best_iou, best_gt


def _coco_ap(dataset: dict, detections: list[dict]) -> tuple[float, float]:
    """(AP@[.5:.95], AP@.5) from pycocotools' COCOeval on boxes; (0.0, 0.0) without detections."""
    if not detections:
        return 0.0, 0.0
    # pycocotools writes into the dicts it is given ("ignore", "area", "id"): hand it copies.
    gt_copy = {**dataset, "annotations": [dict(a) for a in dataset["annotations"]]}
    printed = io.StringIO()
    coco_gt = coco_index(gt_copy)
    with contextlib.redirect_stdout(printed):
        coco_dt = coco_gt.loadRes([dict(d) for d in detections])
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    logger.debug("pycocotools output:\n%s", printed.getvalue())
    return float(evaluator.stats[0]), float(evaluator.stats[1])
