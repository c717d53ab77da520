"""Detection accuracy: VOC all-point AP@0.5 against hand-computed values, and against pycocotools."""

import numpy as np
import pytest

from human_saliency.errors import DataError
from human_saliency.io.files import write_json
from human_saliency.scoring.detection_ap import ap50_voc_replicates, evaluate_detections, voc_ap
from human_saliency.scoring.statistics import resample_weights

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]


def make_gt(objects, n_images=1, categories=CATEGORIES):
    """COCO ground truth from (image_id, category_id, [x, y, w, h], difficult) tuples."""
    annotations = [
        {
            "id": i + 1,
            "image_id": img,
            "category_id": cat,
            "bbox": list(box),
            "area": box[2] * box[3],
            "iscrowd": 0,
            "difficult": int(difficult),
        }
        for i, (img, cat, box, difficult) in enumerate(objects)
    ]
    images = [{"id": i + 1, "width": 100, "height": 100} for i in range(n_images)]
    return {"images": images, "annotations": annotations, "categories": categories}


def det(img, cat, box, score):
    return {"image_id": img, "category_id": cat, "bbox": list(box), "score": score}


BOX_A = (10, 10, 20, 20)
BOX_B = (50, 50, 30, 20)
FAR = (70, 0, 10, 10)  # overlaps neither BOX_A nor BOX_B


def test_voc_ap_hand_computed_curve():
    # Detections TP, FP, TP over 2 objects: recall .5 .5 1, precision 1 .5 2/3.
    # Closed curve: mrec 0 .5 .5 1 1, mpre 0 1 .5 2/3 0 -> envelope 1 1 2/3 2/3 0.
    # Area = (.5 - 0) * 1 + (1 - .5) * 2/3 = 0.5 + 1/3 = 5/6.
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    # Recall never reaches 1: area stops at recall .5 -> .5 * 1.
    assert voc_ap(np.array([0.5]), np.array([1.0])) == pytest.approx(0.5)
    assert voc_ap(np.array([]), np.array([])) == 0.0
    with pytest.raises(ValueError):
        voc_ap(np.array([0.5, 1.0]), np.array([1.0]))


def test_perfect_detections_score_one(tmp_path):
    gt = make_gt([(1, 1, BOX_A, 0), (1, 2, BOX_B, 0), (2, 1, BOX_B, 0)], n_images=2)
    dets = [det(a["image_id"], a["category_id"], a["bbox"], 0.9) for a in gt["annotations"]]
    write_json(tmp_path / "gt.json", gt)
    metrics = evaluate_detections(tmp_path / "gt.json", dets)
    assert metrics["ap50_voc"] == pytest.approx(1.0)
    assert metrics["ap_coco"] == pytest.approx(1.0)
    assert metrics["ap50_coco"] == pytest.approx(1.0)
    assert metrics["per_class_ap50_voc"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0)}
    assert (metrics["n_images"], metrics["n_detections"], metrics["n_classes_without_gt"]) == (2, 3, 0)


def test_fp_ranked_above_tp_is_hand_computed():
    # cat: TP (.9), FP (.8), TP (.7) over 2 cats -> 5/6 (see the voc_ap test); dog: 1 GT, no det -> 0.
    gt = make_gt([(1, 1, BOX_A, 0), (1, 1, BOX_B, 0), (1, 2, FAR, 0)])
    dets = [det(1, 1, BOX_A, 0.9), det(1, 1, (0, 60, 10, 10), 0.8), det(1, 1, BOX_B, 0.7)]
    metrics = evaluate_detections(gt, dets)
    assert metrics["per_class_ap50_voc"]["cat"] == pytest.approx(5 / 6)
    assert metrics["per_class_ap50_voc"]["dog"] == 0.0
    assert metrics["ap50_voc"] == pytest.approx(5 / 12)


def test_detection_on_difficult_object_is_neither_tp_nor_fp():
    # With the difficult box and its detection (ranked first) vs without both: same AP.
    # Counted as an FP it would give 0.5; as a TP it would not change recall's denominator.
    with_difficult = make_gt([(1, 1, BOX_A, 0), (1, 1, BOX_B, 1)])
    dets = [det(1, 1, BOX_B, 0.95), det(1, 1, BOX_A, 0.9), det(1, 1, FAR, 0.5)]
    without = make_gt([(1, 1, BOX_A, 0)])
    expected = evaluate_detections(without, dets[1:])["ap50_voc"]
    assert expected == pytest.approx(1.0)
    assert evaluate_detections(with_difficult, dets)["ap50_voc"] == pytest.approx(expected)


def test_missed_difficult_object_counts_only_in_the_coco_number():
    # VOC ignores the difficult box: 1/1 found -> 1.0. COCO counts it as ordinary ground truth:
    # recall reaches .5 at precision 1, so 51 of COCO's 101 recall points (0, .01, ..., .5) score 1.
    gt = make_gt([(1, 1, BOX_A, 0), (1, 1, BOX_B, 1)])
    metrics = evaluate_detections(gt, [det(1, 1, BOX_A, 0.9)])
    assert metrics["ap50_voc"] == pytest.approx(1.0)
    assert metrics["ap50_coco"] == pytest.approx(51 / 101)


def test_duplicate_detection_is_fp():
    # TP on A (.9), duplicate on A (.8), TP on B (.7): the duplicate is an FP -> 5/6, not 1.
    gt = make_gt([(1, 1, BOX_A, 0), (1, 1, BOX_B, 0)])
    dets = [det(1, 1, BOX_A, 0.9), det(1, 1, (11, 10, 20, 20), 0.8), det(1, 1, BOX_B, 0.7)]
    assert evaluate_detections(gt, dets)["ap50_voc"] == pytest.approx(5 / 6)


def test_duplicate_goes_to_best_overlap_box_even_if_matched_devkit_rule():
    # VOCevalDet sends a detection to its highest-IoU box whether or not that box is taken.
    # A = [0,0,10,10], B = A shifted 2 px. The second detection has IoU 9.5/10.5 with A (taken)
    # and 8.5/11.5 = .74 with B: VOC calls it a duplicate (FP) -> recall .5, precision 1 -> 0.5;
    # COCO's matcher takes the best *unmatched* box instead, so its AP50 is 1.
    gt = make_gt([(1, 1, (0, 0, 10, 10), 0), (1, 1, (2, 0, 10, 10), 0)])
    dets = [det(1, 1, (0, 0, 10, 10), 0.9), det(1, 1, (0.5, 0, 10, 10), 0.8)]
    metrics = evaluate_detections(gt, dets)
    assert metrics["ap50_voc"] == pytest.approx(0.5)
    assert metrics["ap50_coco"] == pytest.approx(1.0)


def test_class_without_ground_truth_is_excluded_not_zero():
    gt = make_gt([(1, 1, BOX_A, 0), (1, 2, BOX_B, 1)])  # the only dog is difficult
    dets = [det(1, 1, BOX_A, 0.9), det(1, 2, FAR, 0.8)]
    metrics = evaluate_detections(gt, dets)
    assert metrics["ap50_voc"] == pytest.approx(1.0)
    assert metrics["per_class_ap50_voc"] == {"cat": pytest.approx(1.0)}
    assert metrics["n_classes_without_gt"] == 1


def test_empty_detections_give_zeros():
    metrics = evaluate_detections(make_gt([(1, 1, BOX_A, 0), (1, 2, BOX_B, 0)]), [])
    assert metrics["ap50_voc"] == metrics["ap_coco"] == metrics["ap50_coco"] == 0.0
    assert metrics["per_class_ap50_voc"] == {"cat": 0.0, "dog": 0.0}
    assert metrics["n_detections"] == 0


def test_wrong_class_is_fp():
    # A "cat" on the dog's box, ranked first: cat curve FP then TP -> recall 0, 1, precision 0, .5
    # -> envelope .5 over recall 0..1 -> 0.5. The dog gets no detection -> 0. Mean 0.25.
    gt = make_gt([(1, 1, BOX_A, 0), (1, 2, BOX_B, 0)])
    metrics = evaluate_detections(gt, [det(1, 1, BOX_B, 0.9), det(1, 1, BOX_A, 0.8)])
    assert metrics["per_class_ap50_voc"] == {"cat": pytest.approx(0.5), "dog": 0.0}
    assert metrics["ap50_voc"] == pytest.approx(0.25)


def test_evaluation_leaves_its_inputs_unchanged():
    gt = make_gt([(1, 1, BOX_A, 0)])
    dets = [det(1, 1, BOX_A, 0.9)]
    before = (repr(gt), repr(dets))
    evaluate_detections(gt, dets)
    assert (repr(gt), repr(dets)) == before


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1.0}, "image_id"),
        ({"image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5], "score": 1.0}, "category_id"),
        ({"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}, "score"),
        ({"image_id": 1, "category_id": 1, "bbox": [0, 0, -5, 5], "score": 1.0}, "w, h >= 0"),
        ({"image_id": 1, "category_id": 1, "bbox": [0, 0, 5], "score": 1.0}, "bbox"),
    ],
)
def test_malformed_detection_is_a_data_error(bad, message):
    with pytest.raises(DataError, match=message):
        evaluate_detections(make_gt([(1, 1, BOX_A, 0)]), [det(1, 1, BOX_A, 0.9), bad])


def test_missing_ground_truth_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="missing.json"):
        evaluate_detections(tmp_path / "missing.json", [])


def test_malformed_or_unscorable_ground_truth_is_a_data_error():
    gt = make_gt([(1, 1, BOX_A, 1)])
    del gt["annotations"][0]["area"]
    with pytest.raises(DataError, match="area"):
        evaluate_detections(gt, [])
    gt["annotations"][0]["area"] = 400
    with pytest.raises(DataError, match="non-difficult"):
        evaluate_detections(gt, [])


def test_voc_ap50_agrees_with_pycocotools_on_random_case():
    # Objects sit in disjoint grid cells, so a detection reaches IoU >= .5 with at most one box and
    # both matchers build the same precision/recall curve (the VOC "+1" IoU of the converted boxes
    # equals pycocotools' continuous IoU). Only the interpolation differs: for a non-increasing
    # envelope p, COCO's mean of p at 0, .01, ..., 1 and the all-point area both lie between the
    # left and right Riemann sums on that grid, which differ by (p(0) - p(1)) / 100 <= 0.01.
    rng = np.random.default_rng(0)
    categories = [{"id": k, "name": f"class{k}"} for k in range(1, 6)]
    objects, dets = [], []
    for img in range(1, 41):
        for cell in rng.choice(16, size=rng.integers(1, 6), replace=False):
            x0, y0 = 25.0 * (cell % 4), 25.0 * (cell // 4)
            cat = int(rng.integers(1, 6))
            corner = np.array([x0, y0]) + rng.uniform(0, 5, size=2)
            box = (*corner, *rng.uniform(10, 19, size=2))
            objects.append((img, cat, box, 0))
            for _ in range(rng.integers(0, 3)):  # jittered hits, some below IoU .5, some duplicates
                jitter = rng.normal(0, 3, size=4) * [1, 1, 0.5, 0.5]
                dets.append(det(img, cat, np.maximum(np.add(box, jitter), 1), float(rng.random())))
        for _ in range(rng.integers(0, 4)):  # background false positives
            background = rng.uniform(0, 80, size=4)
            dets.append(det(img, int(rng.integers(1, 6)), background, float(rng.random())))
    gt = make_gt(objects, n_images=40, categories=categories)

    metrics = evaluate_detections(gt, dets)
    assert 0.2 < metrics["ap50_voc"] < 0.95  # a non-trivial curve, not a degenerate agreement
    assert metrics["ap50_voc"] == pytest.approx(metrics["ap50_coco"], abs=0.01)


def test_ap_replicates_equal_the_ap_of_the_explicitly_resampled_images():
    """A replicate's weights must score exactly what duplicating the drawn images would score."""
    rng = np.random.default_rng(0)
    images = [{"id": i + 1, "width": 100, "height": 100} for i in range(12)]
    annotations, detections = [], []
    for image in images:
        for _ in range(int(rng.integers(0, 4))):
            x, y = (int(v) for v in rng.integers(0, 60, 2))
            category = int(rng.integers(1, 3))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category,
                                "bbox": [x, y, 30, 30], "area": 900, "iscrowd": 0, "difficult": 0})  # fmt: skip
            jitter = [float(x + rng.normal(0, 4)), float(y + rng.normal(0, 4)), 30.0, 30.0]
            detections.append({"image_id": image["id"], "category_id": category, "bbox": jitter,
                               "score": float(rng.random())})  # fmt: skip
        detections.append({"image_id": image["id"], "category_id": 1, "bbox": [70.0, 70.0, 20.0, 20.0],
                           "score": float(rng.random())})  # fmt: skip
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    assert ap50_voc_replicates(gt, detections, np.ones((1, 12)))[0] == pytest.approx(
        evaluate_detections(gt, detections)["ap50_voc"]
    )
    weights = resample_weights(12, 3, seed=1)
    replicates = ap50_voc_replicates(gt, detections, weights)
    for row, replicate in zip(weights, replicates, strict=True):
        new_images, new_annotations, new_detections = [], [], []
        for image, count in zip(images, row, strict=True):
            for _ in range(int(count)):
                new_id = len(new_images) + 1
                new_images.append({**image, "id": new_id})
                new_annotations += [
                    {**a, "id": len(new_annotations) + k + 1, "image_id": new_id}
                    for k, a in enumerate(a for a in annotations if a["image_id"] == image["id"])
                ]
                new_detections += [{**d, "image_id": new_id} for d in detections if d["image_id"] == image["id"]]
        resampled = {"images": new_images, "annotations": new_annotations, "categories": gt["categories"]}
        assert replicate == pytest.approx(evaluate_detections(resampled, new_detections)["ap50_voc"])


def test_ap_with_bootstrap_reports_its_interval():
    gt = make_gt([(1, 1, [0, 0, 10, 10], 0), (2, 1, [0, 0, 10, 10], 0)], n_images=2)
    detections = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    out = evaluate_detections(gt, detections, n_boot=200)["ap50_voc"]
    assert out["value"] == pytest.approx(0.5) and 0.0 <= out["ci_low"] <= 0.5 <= out["ci_high"] <= 1.0


def test_ap_replicates_with_detections_of_a_class_without_objects():
    """A class detected but never annotated is left out of the mean, in every replicate as on the whole."""
    gt = make_gt([(1, 1, [0, 0, 10, 10], 0), (2, 1, [0, 0, 10, 10], 0)], n_images=2)
    detections = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.8},  # "dog": none annotated
    ]
    replicates = ap50_voc_replicates(gt, detections, np.ones((1, 2)))
    assert replicates[0] == pytest.approx(evaluate_detections(gt, detections)["ap50_voc"]) == pytest.approx(0.5)


def test_images_with_partial_annotations_are_left_out_of_every_ap():
    """An action-task image annotates only the acting people: a correct detection of its unannotated dog would
    count as false, so it and its detections leave the AP (its saliency is still scored elsewhere)."""
    gt = make_gt([(1, 1, BOX_A, 0), (2, 1, BOX_A, 0), (3, 1, BOX_A, 0)], n_images=3)
    gt["images"][1]["partial_annotations"] = True
    gt["images"][0]["partial_annotations"] = False
    dets = [det(1, 1, BOX_A, 0.9), det(2, 2, BOX_B, 0.95), det(2, 1, FAR, 0.99), det(3, 1, BOX_A, 0.8)]
    metrics = evaluate_detections(gt, dets)
    assert metrics["ap50_voc"] == pytest.approx(1.0) and metrics["ap50_coco"] == pytest.approx(1.0)
    assert metrics["n_images"] == 2 and metrics["n_images_partial_annotations"] == 1
    assert metrics["n_detections"] == 2 and metrics["n_classes_without_gt"] == 1  # the dog was only on image 2

    # The bootstrap keeps the image's place among the resampled ones, with nothing to count on it.
    weights = np.ones((1, 3))
    assert ap50_voc_replicates(gt, dets, weights)[0] == pytest.approx(1.0)
    with pytest.raises(DataError, match="image_id not in the ground truth"):
        evaluate_detections(gt, [det(9, 1, BOX_A, 0.5)])


def test_regression_bootstrap_with_detections_of_a_class_that_has_no_object():
    """The paper rehearsal's score stage crashed here: a detection of a class with no ground-truth box in the
    scored images (an IndexError on the empty 'difficult' array)."""
    gt = make_gt([(1, 1, BOX_A, 0)], n_images=1)
    dets = [det(1, 1, BOX_A, 0.9), det(1, 2, BOX_B, 0.8)]
    metrics = evaluate_detections(gt, dets, n_boot=20)
    assert metrics["ap50_voc"]["value"] == pytest.approx(1.0) and metrics["n_classes_without_gt"] == 1
    np.testing.assert_allclose(ap50_voc_replicates(gt, dets, np.ones((3, 1))), 1.0)
