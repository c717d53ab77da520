"""Intervals and comparisons: the bootstrap mean, paired differences and the best-row rule."""

import math

import numpy as np
import pytest

from human_saliency.scoring.statistics import (
    best_rows,
    excludes_zero,
    paired_difference,
    pooled_mean,
    pooled_replicates,
    replicate_summary,
    resample_weights,
    summarize,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- summarize: the bootstrap mean --------------------------------------------------------------------------------


def test_summarize_ci_contains_mean_and_is_deterministic(rng):
    values = rng.normal(0.3, 0.1, size=200)
    out = summarize(values)
    assert out["n"] == 200 and out["n_excluded"] == 0
    assert out["mean"] == pytest.approx(values.mean())
    assert out["ci_low"] < out["mean"] < out["ci_high"]
    # a 95 % CI of a mean of 200 draws with sd 0.1 is about ±1.96·0.1/√200 ≈ ±0.014
    assert out["ci_high"] - out["ci_low"] == pytest.approx(2 * 1.96 * 0.1 / math.sqrt(200), rel=0.25)
    assert summarize(values) == out
    assert summarize(values, seed=1) != out


def test_summarize_counts_and_excludes_nan():
    out = summarize([0.2, np.nan, 0.4, np.nan, 0.6], n_boot=200)
    assert out["n"] == 3 and out["n_excluded"] == 2
    assert out["mean"] == pytest.approx(0.4)
    assert 0.2 <= out["ci_low"] <= out["mean"] <= out["ci_high"] <= 0.6


def test_summarize_all_nan_and_single_value():
    out = summarize([np.nan, np.nan])
    assert out["n"] == 0 and out["n_excluded"] == 2 and math.isnan(out["mean"])
    one = summarize([0.25])
    assert one["mean"] == one["ci_low"] == one["ci_high"] == 0.25


def test_summarize_rejects_inf_and_bad_settings():
    with pytest.raises(ValueError, match="inf"):
        summarize([0.1, np.inf])
    with pytest.raises(ValueError, match="ci"):
        summarize([0.1], ci=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        summarize([0.1], n_boot=0)


def test_summarize_large_n_blocks_memory_and_stays_deterministic(rng):
    values = rng.random(50_000)  # 50 000 × 1000 draws would be 400 MB in one block
    out = summarize(values, n_boot=200)
    assert out == summarize(values, n_boot=200)
    assert out["ci_low"] < out["mean"] < out["ci_high"]


# --- paired differences and the best row --------------------------------------------------------


def test_pairing_detects_a_small_shift_that_overlapping_intervals_hide(rng):
    """Two rows whose own intervals overlap, one consistently better on every image: only pairing sees it."""
    base = rng.uniform(0.0, 1.0, 60)  # a wide image-to-image spread
    better = base + 0.02
    own = summarize(better), summarize(base)
    assert own[0]["ci_low"] < own[1]["ci_high"]  # the unpaired intervals overlap
    difference = paired_difference(better, base)
    assert difference["mean"] == pytest.approx(0.02) and excludes_zero(difference)


def test_paired_difference_uses_the_images_scored_in_both():
    a = np.array([0.5, np.nan, 0.7, 0.2])
    b = np.array([0.4, 0.3, np.nan, 0.1])
    out = paired_difference(a, b, n_boot=50)
    assert out["n"] == 2 and out["n_excluded"] == 2 and out["mean"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="one length"):
        paired_difference([1.0], [1.0, 2.0])


def _marks(scores, higher_is_better):
    means = {
        row: float(np.nanmean(values)) if np.isfinite(values).any() else float("nan") for row, values in scores.items()
    }
    return best_rows(means, lambda a, b: paired_difference(scores[a], scores[b]), higher_is_better=higher_is_better)


def test_best_row_needs_to_beat_every_other_row(rng):
    base = rng.uniform(0.0, 1.0, 80)
    noise = rng.normal(0, 0.05, 80)
    scores = {"a": base + 0.1, "b": base + noise, "c": base - 0.1}
    assert _marks(scores, higher_is_better=True) == {"a": "best", "b": "", "c": ""}
    # Lower is better: c wins.
    assert _marks(scores, higher_is_better=False) == {"a": "", "b": "", "c": "best"}


def test_rows_without_a_detectable_difference_are_tied(rng):
    base = rng.uniform(0.0, 1.0, 40)
    scores = {"a": base + rng.normal(0, 0.05, 40), "b": base + rng.normal(0, 0.05, 40), "c": base - 0.3}
    marks = _marks(scores, higher_is_better=True)
    assert marks["c"] == "" and {marks["a"], marks["b"]} == {"tied"}


def test_a_single_scored_row_is_not_marked():
    scores = {"a": np.array([0.1, 0.2]), "b": np.array([np.nan, np.nan])}
    assert _marks(scores, higher_is_better=True) == {"a": "", "b": ""}


# --- seeds × images ---------------------------------------------------------------------------------


def test_pooled_replicates_with_every_weight_one_give_the_pooled_mean():
    values = np.array([[0.2, 0.4, np.nan], [0.6, np.nan, 0.8]])  # 2 seeds × 3 images
    ones = pooled_replicates(values, np.ones((1, 3)), np.ones((1, 2)))
    assert ones[0] == pytest.approx(pooled_mean(values)) == pytest.approx(0.5)


def test_pooled_replicates_equal_the_mean_of_the_drawn_cells():
    values = np.array([[0.2, 0.4, 0.9], [0.6, 0.1, 0.8]])
    images, seeds = np.array([[2.0, 0.0, 1.0]]), np.array([[0.0, 2.0]])
    # seed 1 drawn twice, image 0 twice and image 2 once: (2·0.6 + 0.8) · 2 / (3 · 2)
    assert pooled_replicates(values, images, seeds)[0] == pytest.approx((2 * 0.6 + 0.8) / 3)


def test_interval_over_seeds_widens_with_the_spread_between_seeds(rng):
    images = resample_weights(50, 500, 0)
    seeds = resample_weights(3, 500, 1)
    base = rng.uniform(0, 1, 50)
    alike = np.stack([base, base + 0.001, base - 0.001])
    apart = np.stack([base, base + 0.2, base - 0.2])
    width = {
        name: np.subtract(*np.nanquantile(pooled_replicates(v, images, seeds), [0.975, 0.025]))
        for name, v in (("alike", alike), ("apart", apart))
    }
    assert width["apart"] > 2 * width["alike"]


def test_resample_weights_draw_every_item_set_once_per_row_and_repeat_for_a_seed():
    w = resample_weights(7, 20, 3)
    assert w.shape == (20, 7) and (w.sum(axis=1) == 7).all()
    assert np.array_equal(w, resample_weights(7, 20, 3)) and not np.array_equal(w, resample_weights(7, 20, 4))


def test_replicate_summary_is_a_percentile_interval_around_the_point():
    out = replicate_summary(0.5, np.linspace(0.0, 1.0, 1001))
    assert out == pytest.approx({"mean": 0.5, "ci_low": 0.025, "ci_high": 0.975})
    assert replicate_summary(float("nan"), [0.1]) == {"mean": pytest.approx(float("nan"), nan_ok=True)}
