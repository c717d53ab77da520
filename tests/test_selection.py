"""Tests for human_saliency.experiment.selection: the direction of each criterion and its threshold edges."""

import numpy as np
import pytest

from human_saliency.experiment.selection import CRITERIA, score, select
from human_saliency.prepared.splits import PreparedSplit

from conftest import tiny_prepared


def _top10(indices: range) -> np.ndarray:
    """A 10×10 map with ones at the given flat indices: its top-10% region is exactly those pixels."""
    flat = np.zeros(100)
    flat[list(indices)] = 1.0
    return flat.reshape(10, 10)


def test_criteria_table_states_the_direction_of_disagreement():
    assert CRITERIA["iou"].op == "<="
    assert CRITERIA["mae"].op == ">="


@pytest.mark.parametrize("criterion", ["iou", "mae"])
def test_identical_maps_are_not_selected(criterion):
    # iou: IoU 1 > 0.1; mae: MAE 0 < 0.1 -> the detector agrees with the fixations, nothing to augment
    m = _top10(range(10))
    assert not select(m, m.copy(), criterion=criterion, threshold=0.1)


@pytest.mark.parametrize("criterion", ["iou", "mae"])
def test_disjoint_maps_are_selected(criterion):
    # iou: top regions 0..9 and 90..99 do not overlap -> 0 <= 0.1; mae: 20 of 100 pixels differ by 1 -> 0.2 >= 0.1
    assert select(_top10(range(10)), _top10(range(90, 100)), criterion=criterion, threshold=0.1)


def test_iou_threshold_is_inclusive():
    # top regions 0..9 and 5..14: intersection 5, union 15 -> IoU exactly 1/3
    a, b = _top10(range(10)), _top10(range(5, 15))
    assert score(a, b, criterion="iou") == 1 / 3
    assert select(a, b, criterion="iou", threshold=1 / 3)  # <= : equal is selected
    assert not select(a, b, criterion="iou", threshold=0.33)


def test_mae_threshold_is_inclusive():
    a, b = np.zeros((4, 4)), np.full((4, 4), 0.25)  # MAE exactly 0.25
    assert select(a, b, criterion="mae", threshold=0.25)  # >= : equal is selected
    assert not select(a, b, criterion="mae", threshold=0.2500001)


def test_mae_rule_selects_dissimilar_maps_not_similar_ones():
    # Regression: the write-up's literal "erase if MAE < 0.1" would pick the maps that already agree.
    base = _top10(range(10))
    similar = base * 0.95  # MAE 0.005
    different = 1.0 - base  # MAE 1.0
    assert not select(base, similar, criterion="mae", threshold=0.1)
    assert select(base, different, criterion="mae", threshold=0.1)


def test_selection_table_applies_the_same_rule_as_select(tmp_path):
    """The stage's per-image table and ``select`` decide alike (one comparison, used by both)."""
    from human_saliency.experiment.augment import selection_table

    split = PreparedSplit.load(tiny_prepared(tmp_path, train=3) / "train.json")
    a, b, c = (image["voc_id"] for image in split.images)
    dets = {a: _top10(range(10)), b: _top10(range(10)), c: _top10(range(10))}
    fixs = {a: _top10(range(10)), b: _top10(range(5, 15)), c: _top10(range(90, 100))}
    table = selection_table(split, dets, fixs, criterion="iou", threshold=1 / 3)
    assert list(table.index) == [a, b, c]
    np.testing.assert_allclose(table["score"], [1.0, 1 / 3, 0.0])
    assert table["selected"].tolist() == [False, True, True]
    assert table["selected"].tolist() == [select(dets[k], fixs[k], criterion="iou", threshold=1 / 3) for k in dets]


def test_unknown_criterion_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: iou, mae"):
        select(np.zeros((2, 2)), np.zeros((2, 2)), criterion="cc", threshold=0.1)


def test_degenerate_maps_are_never_selected_and_are_counted():
    from human_saliency.experiment.augment import selection_counts, selection_table

    dets = {"a": _top10(range(10)), "b": np.zeros((10, 10)), "c": _top10(range(10))}
    fixs = {"a": _top10(range(90, 100)), "b": _top10(range(90, 100)), "c": np.full((10, 10), 0.5)}
    split = type("Split", (), {"images": [{"voc_id": key} for key in dets]})()
    table = selection_table(split, dets, fixs, criterion="iou", threshold=0.1)
    assert table["selected"].tolist() == [True, False, False]
    assert table["skipped"].tolist() == ["", "base_map", "fixation_map"]
    assert selection_counts(table) == {
        "selected": 1,
        "skipped_degenerate_base_maps": 1,
        "skipped_degenerate_fixation_maps": 1,
    }
