"""The main experiment's comparison over seeds, images and test conditions: Δ against the control, the shift gap,
and each shifted image drawn with the test image it is a twin of."""

import numpy as np
import pandas as pd
import pytest

from human_saliency.scoring.comparison import GAP, SeedRun, compare_arms
from human_saliency.scoring.statistics import without_nan

N = 12  # test images; each a 10×10 object of class 1 at (10, 10)


def _split(prefix: str, order: list[int], twins: bool) -> dict:
    images, annotations = [], []
    for k in order:
        image_id = int(f"{prefix}{k:06d}")
        image = {"id": image_id, "voc_id": f"{prefix}_{k:06d}", "width": 40, "height": 40, "file_name": "x.jpg"}
        if twins:
            image["twin_of"] = f"2100_{k:06d}"
        images.append(image)
        annotations.append(
            {"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "bbox": [10, 10, 10, 10],
             "area": 100, "iscrowd": 0, "difficult": 0}
        )  # fmt: skip
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "square"}]}


def _detections(gt: dict, hits: dict[int, bool]) -> list[dict]:
    """One detection per image: on its object (a hit) or away from it, with scores falling with the index."""
    found = []
    for image in gt["images"]:
        k = int(image["voc_id"].split("_")[1])
        box = [10, 10, 10, 10] if hits[k] else [25, 25, 10, 10]
        found.append({"image_id": image["id"], "category_id": 1, "bbox": box, "score": 1.0 - k / 100})
    return found


def _run(gt: dict, hits: dict[int, bool], values: dict[int, float]) -> SeedRun:
    ids = [image["voc_id"] for image in gt["images"]]
    frame = pd.DataFrame({"id": ids, "mae": [values[int(i.split("_")[1])] for i in ids]}).set_index("id")
    return SeedRun(scores={"human_masks": frame}, detections=_detections(gt, hits))


@pytest.fixture(scope="module")
def tests_and_hits():
    rng = np.random.default_rng(0)
    test = _split("2100", list(range(N)), twins=False)
    shifted = _split("2101", list(reversed(range(N))), twins=True)  # listed in another order: paired by twin_of
    hits = {k: k == 0 or bool(rng.random() < 0.6) for k in range(N)}  # the top-scored detection a hit
    values = {k: float(rng.random()) for k in range(N)}
    return {"test": test, "test_shifted": shifted}, hits, values


def test_a_shifted_condition_that_equals_its_twins_gives_a_zero_gap_in_every_draw(tests_and_hits):
    tests, hits, values = tests_and_hits
    runs = {"a": {name: [_run(gt, hits, values)] * 2 for name, gt in tests.items()}}
    result = compare_arms(runs, tests, control="a", columns={"human_masks": ("mae",)}, n_boot=200, seed=0)["a"]
    assert result["seeds"] == 2
    assert result["test"]["ap50_voc"]["ci_low"] < result["test"]["ap50_voc"]["ci_high"]
    # Each shifted image is drawn with its twin (not with the image at its position): identical replicates.
    assert result[GAP]["ap50_voc"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert result["test"]["human_masks"]["mae"] == result["test_shifted"]["human_masks"]["mae"]


def test_an_arm_that_loses_its_hits_on_the_shifted_test_shows_a_gap_and_its_delta(tests_and_hits):
    tests, hits, values = tests_and_hits
    misses = dict.fromkeys(hits, False) | {0: True}
    runs = {
        "control": {name: [_run(gt, hits, values)] * 3 for name, gt in tests.items()},
        "cued": {
            "test": [_run(tests["test"], hits, values)] * 3,
            "test_shifted": [_run(tests["test_shifted"], misses, values)] * 3,
        },
    }
    result = compare_arms(runs, tests, control="control", columns={"human_masks": ("mae",)}, n_boot=300, seed=1)
    gap, delta = result["cued"][GAP]["ap50_voc"], result["cued"][GAP]["ap50_voc_delta"]
    assert gap["mean"] > 0.1 and gap["ci_low"] > 0
    assert delta["mean"] == pytest.approx(gap["mean"]) and delta["ci_low"] > 0
    assert result["cued"]["test"]["ap50_voc_delta"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert "ap50_voc_delta" not in result["control"]["test"]


def test_every_arm_and_condition_needs_the_same_number_of_seeds(tests_and_hits):
    tests, hits, values = tests_and_hits
    runs = {
        "a": {
            "test": [_run(tests["test"], hits, values)] * 2,
            "test_shifted": [_run(tests["test_shifted"], hits, values)],
        }
    }
    with pytest.raises(ValueError, match="same seeds"):
        compare_arms(runs, tests, control="a", columns={}, n_boot=10)


def test_an_image_without_a_twin_in_the_reference_condition_is_refused(tests_and_hits):
    tests, hits, values = tests_and_hits
    orphan = _split("2102", [0], twins=False)
    with pytest.raises(ValueError, match="no twin"):
        compare_arms({"a": {"test": [_run(tests["test"], hits, values)], "x": [_run(orphan, hits, values)]}},
                     {"test": tests["test"], "x": orphan}, control="a", columns={}, n_boot=10)  # fmt: skip


def test_without_nan_drops_only_nan_leaves():
    tree = {"a": {"mean": float("nan"), "n": 0}, "b": {"mean": 0.5, "ci_low": 0.4}, "c": float("nan"), "d": 3}
    assert without_nan(tree) == {"a": {"n": 0}, "b": {"mean": 0.5, "ci_low": 0.4}, "d": 3}
