"""Scoring detector maps: per-image rows, degenerate maps counted not averaged, references at working size."""

import numpy as np
import pytest

from human_saliency.prepared.loaders import resize_points
from human_saliency.scoring.score import (
    min_max_for_mae,
    pair_metrics,
    score_maps,
    summarize_scores,
)


def test_rows_per_image_and_degenerate_maps_excluded():
    rng = np.random.default_rng(0)
    maps = {"a": rng.random((8, 8)), "b": np.zeros((8, 8)), "c": rng.random((8, 8))}
    refs = {"a": maps["a"], "b": rng.random((8, 8)), "c": 1 - maps["c"]}
    frame = score_maps(maps, refs.items(), pair_metrics())
    assert list(frame.index) == ["a", "b", "c"]
    assert frame.loc["a", "mae"] == 0 and frame.loc["a", "cc"] == pytest.approx(1)
    assert frame.loc["c", "cc"] == pytest.approx(-1)
    assert frame.loc["b", "degenerate"] == "constant" and np.isnan(frame.loc["b", "cc"])

    summary = summarize_scores(frame, n_boot=50)
    assert summary["n_images"] == 3 and summary["n_degenerate_maps"] == 1
    assert summary["cc"]["n"] == 2 and summary["cc"]["n_excluded"] == 1
    assert summary["cc"]["mean"] == pytest.approx(0)


def test_summary_without_usable_images_has_no_nan():
    frame = score_maps({"a": np.zeros((4, 4))}, [("a", np.ones((4, 4)))], pair_metrics())
    summary = summarize_scores(frame, n_boot=10)
    assert summary["mae"] == {"n": 0, "n_excluded": 1}


def test_mae_against_a_density_uses_its_min_max_form():
    # density / max in [0.5, 1] -> min-max [0, 1]: identical to the detector's map, so MAE 0 and IoU 1
    detector = np.array([[0.0, 1.0], [0.5, 0.25]])
    density = 0.5 + detector / 2
    metrics = min_max_for_mae(pair_metrics())
    assert metrics["mae"](detector, density) == 0
    assert metrics["iou"](detector, density) == 1
    assert metrics["cc"](detector, density) == pytest.approx(1)


def test_resize_points_keeps_each_fixation():
    points = np.zeros((100, 50), dtype=bool)
    points[0, 0] = points[99, 49] = points[50, 25] = True
    small = resize_points(points, 10)
    assert small.shape == (10, 10)
    assert sorted(zip(*np.nonzero(small), strict=True)) == [(0, 0), (5, 5), (9, 9)]


def test_empty_human_mask_is_nan_not_an_error():
    from human_saliency.scoring.score import mask_metrics

    frame = score_maps({"a": np.eye(4)}, [("a", np.zeros((4, 4)))], mask_metrics())
    assert frame.loc["a", ["pointing_game", "relevance_mass", "relevance_rank"]].isna().all()
