"""Tests for human_saliency.scoring.metrics: hand-computed values on tiny maps, properties and the study's bugs."""

import math

import numpy as np
import pytest

from human_saliency.scoring import metrics as M


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- hand-computed values -------------------------------------------------------------------


def test_mae_hand_computed():
    # |0-1| + |1-1| + |0.5-0| + |0.25-0.25| = 1 + 0 + 0.5 + 0 = 1.5; / 4 pixels = 0.375
    assert M.mae([[0, 1], [0.5, 0.25]], [[1, 1], [0, 0.25]]) == pytest.approx(0.375)


def test_iou_top_hand_computed():
    # 50th percentile of {1,2,3,4} is 2.5 -> a selects (1,0),(1,1); b selects (0,1),(1,1).
    # intersection {(1,1)} = 1, union {(1,0),(0,1),(1,1)} = 3 -> 1/3
    a = [[1, 2], [3, 4]]
    assert M.iou_top(a, [[1, 4], [2, 3]], percentile=50) == pytest.approx(1 / 3)
    # b = [[4,3],[2,1]] selects the top row: disjoint from a's bottom row -> 0
    assert M.iou_top(a, [[4, 3], [2, 1]], percentile=50) == 0.0


def test_iou_top_selects_exactly_top_ten_percent():
    # 100 distinct values 0..99: the 90th percentile (linear) is 89.1, so exactly 90..99 pass ">=".
    a = np.arange(100, dtype=float).reshape(10, 10)
    # b marks a's ten largest pixels (90 zeros, 10 ones: its own threshold is 0.1): IoU 1 only if
    # a's selection is exactly those 10 pixels
    b = (a >= 90).astype(float)
    assert M.iou_top(a, b) == 1.0
    # IoU(a, a[::-1]) : a's top = indices 90..99, reversed map's top = indices 0..9 -> disjoint
    assert M.iou_top(a, a[::-1, ::-1]) == 0.0
    # a vs itself shifted by 5 ranks: top sets {90..99} and {85..94}: inter 5, union 15 -> 1/3
    shifted = ((np.arange(100) + 5) % 100).reshape(10, 10).astype(float)
    assert M.iou_top(a, shifted) == pytest.approx(5 / 15)


def test_iou_top_study_selects_every_pixel_when_the_minimum_fills_the_top_percentile():
    # b has 91 zeros and 9 ones; its 90th percentile (sorted position 89.1) lies between two
    # zeros, so the threshold is 0 and all 100 pixels are >= it: IoU with a's 10-pixel top set = 10/100.
    a = np.arange(100, dtype=float).reshape(10, 10)
    b = np.zeros((10, 10))
    b.flat[91:] = 1.0
    assert np.percentile(b, 90) == 0.0
    assert M.iou_top_study(a, b) == pytest.approx(0.1)
    # The corrected IoU uses b's 9 positive pixels: 91..99, all inside a's top 10 (90..99) -> 9/10.
    assert M.top_region_is_tied(b) and not M.top_region_is_tied(a)
    assert M.iou_top(a, b) == pytest.approx(9 / 10)


def test_sparse_map_on_the_object_beats_the_same_map_moved_off_it():
    """Regression (issue 10.1): with a mostly-zero map and a mask under 10 % of the image, the study's rule
    scored every placement alike (about 0.1); the corrected IoU must follow where the map points."""
    mask = np.zeros((40, 40))
    mask[5:15, 5:15] = 1.0  # 6.25 % of the image: its top 10 % is tied at 0
    on_object = np.zeros((40, 40))
    on_object[6:14, 6:14] = 1.0  # 4 % of the pixels positive (a ReLU'd CAM)
    off_object = np.roll(on_object, 20, axis=(0, 1))
    assert M.iou_top_study(on_object, mask) == M.iou_top_study(off_object, mask) == 1.0  # the defect
    assert M.iou_top(on_object, mask) == pytest.approx(64 / 100)
    assert M.iou_top(off_object, mask) == 0.0


def test_top_region_of_a_constant_map_is_undefined():
    with pytest.raises(ValueError, match="constant map has no top region"):
        M.iou_top(np.ones((4, 4)), np.eye(4))
    assert not M.top_region_is_tied(np.ones((4, 4)))


def test_cc_hand_computed():
    # a - mean = [-1.5,-.5,.5,1.5]; b = [1,3,2,5], mean 2.75, b - mean = [-1.75,.25,-.75,2.25]
    # Σ = 2.625 - .125 - .375 + 3.375 = 5.5; Σa0² = 5; Σb0² = 8.75 -> 5.5 / sqrt(43.75)
    assert M.cc([[1, 2], [3, 4]], [[1, 3], [2, 5]]) == pytest.approx(5.5 / math.sqrt(43.75))
    assert M.cc([[1, 2], [3, 4]], [[-1, -2], [-3, -4]]) == pytest.approx(-1.0)


def test_sim_hand_computed():
    # ones -> 0.25 each; [[2,0],[1,1]] / 4 -> [.5, 0, .25, .25]; Σ min = .25 + 0 + .25 + .25 = 0.75
    assert M.sim(np.ones((2, 2)), [[2, 0], [1, 1]]) == pytest.approx(0.75)


def test_kld_hand_computed_and_asymmetric():
    p = [[1, 1], [0, 0]]  # -> P = [.5, .5, 0, 0]
    q = np.ones((2, 2))  # -> Q = [.25] * 4
    # kld(P, Q) = 2·.25·log(ε + .25/(.5+ε)) + 2·.25·log(ε + .25/ε) ≈ .5·log .5 + .5·log(.25/ε)
    expected = 0.5 * math.log(0.5) + 0.5 * math.log(0.25 / M.EPS)
    assert M.kld(p, q) == pytest.approx(expected, rel=1e-9)
    # reversed: Q-terms only where P > 0: 2·.5·log(.5/.25) = log 2
    assert M.kld(q, p) == pytest.approx(math.log(2), rel=1e-9)
    assert M.kld(p, q) != pytest.approx(M.kld(q, p))


def test_nss_hand_computed():
    # s = [0,1,2,3]: mean 1.5, population std sqrt((2.25+.25+.25+2.25)/4) = sqrt(1.25)
    s = [[0, 1], [2, 3]]
    assert M.nss(s, [[False, False], [False, True]]) == pytest.approx(1.5 / math.sqrt(1.25))
    # fixations at 0 and 3: z = -1.5/√1.25 and +1.5/√1.25 -> mean 0
    assert M.nss(s, [[True, False], [False, True]]) == pytest.approx(0.0)


def test_auc_judd_hand_computed():
    # fixated values {0.9, 0.3}, non-fixated {0.1, 0.5}.
    # threshold 0.9: tp 1/2, fp 0/2; threshold 0.3: tp 2/2, fp 1/2 (0.5 >= 0.3).
    # curve (0,0) (0,.5) (.5,1) (1,1): area = 0 + .5·(.5+1)/2 + .5·1 = .375 + .5 = 0.875
    s = [[0.9, 0.1], [0.5, 0.3]]
    fix = [[True, False], [False, True]]
    assert M.auc_judd(s, fix) == pytest.approx(0.875)
    # 0/1 integer maps are accepted as fixations
    assert M.auc_judd(s, np.array(fix, dtype=np.uint8)) == pytest.approx(0.875)


def test_auc_judd_perfect_and_inverse():
    s = np.arange(9, dtype=float).reshape(3, 3)
    fix = s >= 7
    assert M.auc_judd(s, fix) == pytest.approx(1.0)
    # fixations on the lowest values: curve (0,0) -> (1, .5) -> (1, 1): area .25
    assert M.auc_judd(s, s <= 1) == pytest.approx(0.25)


def test_pointing_game_hand_computed():
    s = [[0.1, 0.9], [0.2, 0.3]]
    assert M.pointing_game(s, [[0, 1], [0, 0]]) == 1.0
    assert M.pointing_game(s, [[1, 0], [0, 0]]) == 0.0
    # two tied maxima, one inside the mask -> hit rate of a random tie-break = 1/2
    assert M.pointing_game([[1, 1], [0, 0]], [[1, 0], [0, 0]]) == 0.5


def test_relevance_mass_hand_computed():
    # mask = right column: (2 + 4) / (1 + 2 + 3 + 4) = 0.6
    assert M.relevance_mass([[1, 2], [3, 4]], [[0, 1], [0, 1]]) == pytest.approx(0.6)


def test_region_mass_hand_computed_against_the_area_share():
    # cue region = the top-left pixel: 1 / (1 + 2 + 3 + 4) = 0.1 of the mass on 0.25 of the area
    s = [[1, 2], [3, 4]]
    region = np.array([[True, False], [False, False]])
    assert M.region_mass(s, region) == pytest.approx(0.1)
    assert M.region_mass(s, [[0, 1], [0, 1]]) == pytest.approx(0.6)  # 0/1 works, = relevance_mass
    assert M.region_mass(np.full((2, 2), 0.3), region) == 0.25  # constant map: the area share
    assert M.region_mass(np.zeros((2, 2)), region) == 0.25
    with pytest.raises(ValueError, match="region is empty"):
        M.region_mass(s, np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="shape mismatch"):
        M.region_mass(s, np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="boolean"):
        M.region_mass(s, [[0.5, 0], [0, 0]])
    with pytest.raises(ValueError, match="saliency must be in"):
        M.region_mass([[-1, 2], [3, 4]], region)


def test_relevance_rank_hand_computed():
    # mask = diagonal {9, 5, 1}, K = 3; top-3 pixels {9, 8, 7}; only 9 inside -> 1/3
    s = [[9, 8, 7], [6, 5, 4], [3, 2, 1]]
    assert M.relevance_rank(s, np.eye(3)) == pytest.approx(1 / 3)
    # mask = top row {9, 8, 7}: all K top pixels inside -> 1
    assert M.relevance_rank(s, [[1, 1, 1], [0, 0, 0], [0, 0, 0]]) == 1.0
    # K = 1, two pixels tie for the top, one inside -> 1 slot shared 1/2 -> 0.5
    assert M.relevance_rank([[1, 1], [0, 0]], [[1, 0], [0, 0]]) == 0.5


def test_mask_binarised_at_documented_threshold():
    # 0.5 is inside (>=), 0.49 is not: with threshold 0.5 the mask is just the bottom-right pixel.
    s = [[0.0, 0.0], [1.0, 0.0]]
    mask = [[0.49, 0.0], [0.49, 0.5]]
    assert M.binarize_mask(mask).tolist() == [[False, False], [False, True]]
    assert M.pointing_game(s, mask) == 0.0
    assert M.pointing_game(s, mask, mask_threshold=0.4) == 1.0


def test_empty_mask_is_an_error():
    with pytest.raises(ValueError, match="empty after binarising"):
        M.relevance_mass([[1, 2], [3, 4]], [[0.1, 0], [0, 0.2]])


def test_minmax_hand_computed():
    assert M.minmax([[2, 4], [6, 10]]).tolist() == [[0.0, 0.25], [0.5, 1.0]]


# --- properties -------------------------------------------------------------------------------


def test_identical_maps(rng):
    x = rng.random((16, 16))
    assert M.mae(x, x) == 0.0
    assert M.iou_top(x, x) == 1.0
    assert M.cc(x, x) == pytest.approx(1.0)
    assert M.sim(x, x) == pytest.approx(1.0)
    assert M.kld(x, x) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", ["mae", "iou", "cc", "sim"])
def test_symmetric_pair_metrics(name, rng):
    a, b = rng.random((8, 8)), rng.random((8, 8))
    f = M.PAIR_METRICS[name]
    assert f(a, b) == pytest.approx(f(b, a))


def test_registries_cover_directions():
    names = set(M.PAIR_METRICS) | set(M.FIXATION_METRICS) | set(M.MASK_METRICS)
    assert names == set(M.HIGHER_IS_BETTER)
    assert M.HIGHER_IS_BETTER["mae"] is False and M.HIGHER_IS_BETTER["kld"] is False
    assert M.HIGHER_IS_BETTER["iou"] is True


@pytest.mark.parametrize("name", sorted(M.PAIR_METRICS))
def test_pair_shape_mismatch_names_both_shapes(name):
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(3, 3\)"):
        M.PAIR_METRICS[name](np.zeros((2, 2)), np.zeros((3, 3)))


@pytest.mark.parametrize("name", sorted(M.FIXATION_METRICS) + sorted(M.MASK_METRICS))
def test_single_map_shape_mismatch(name):
    registry = M.FIXATION_METRICS if name in M.FIXATION_METRICS else M.MASK_METRICS
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(3, 3\)"):
        registry[name](np.eye(2), np.eye(3, dtype=bool))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", sorted(M.PAIR_METRICS))
def test_nonfinite_input_rejected(name, bad):
    x = np.full((2, 2), 0.5)
    y = x.copy()
    y[0, 0] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        M.PAIR_METRICS[name](x, y)
    with pytest.raises(ValueError, match="NaN or inf"):
        M.PAIR_METRICS[name](y, x)


def test_nonfinite_rejected_by_fixation_mask_and_minmax():
    y = np.array([[np.nan, 1.0], [0.0, 0.5]])
    fix = np.array([[True, False], [False, False]])
    for f in (M.nss, M.auc_judd):
        with pytest.raises(ValueError, match="NaN or inf"):
            f(y, fix)
    for f in M.MASK_METRICS.values():
        with pytest.raises(ValueError, match="NaN or inf"):
            f(y, fix.astype(float))
    with pytest.raises(ValueError, match="NaN or inf"):
        M.minmax(y)


def test_jpeg_like_fixation_map_rejected():
    with pytest.raises(ValueError, match="boolean"):
        M.nss(np.eye(2), [[255, 3], [0, 250]])


def test_negative_maps_rejected_by_distribution_metrics():
    with pytest.raises(ValueError, match="must be in"):
        M.sim([[-1, 1], [0, 0]], np.ones((2, 2)))
    with pytest.raises(ValueError, match="must be in"):
        M.relevance_mass([[-1, 1], [0, 0]], np.eye(2))


def test_tiny_round_off_outside_range_is_tolerated():
    assert M.mae([[1 + 1e-9, 0]], [[1, -1e-9]]) == pytest.approx(0.0, abs=1e-12)


# --- regression tests for the original study's bugs ---------------------------------------------


def test_mae_against_0_255_mask_bug_is_rejected():
    # The original code computed MAE against the 0-255 human mask instead of the 0-1 one.
    saliency = np.full((2, 2), 0.5)
    mask_255 = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    with pytest.raises(ValueError, match=r"b must be in \[0, 1\]"):
        M.mae(saliency, mask_255)
    with pytest.raises(ValueError, match=r"mask must be in \[0, 1\]"):
        M.binarize_mask(mask_255)


def test_minmax_constant_map_divide_by_zero_bug():
    # The original min-max divided by (max - min) = 0 on a constant map, yielding NaNs.
    for value in (0.0, 0.7, 3.0):
        out = M.minmax(np.full((3, 3), value))
        assert out.dtype == np.float64
        assert np.array_equal(out, np.zeros((3, 3)))


def test_constant_map_values_are_documented_not_nan():
    const = np.full((2, 2), 0.3)
    zero = np.zeros((2, 2))
    x = np.array([[0.1, 0.2], [0.3, 0.9]])
    fix = np.array([[True, False], [False, False]])
    mask = np.array([[1.0, 0.0], [0.0, 0.0]])  # area fraction 1/4
    assert M.cc(const, x) == 0.0 and M.cc(x, const) == 0.0 and M.cc(const, const) == 0.0
    assert M.nss(const, fix) == 0.0
    assert M.auc_judd(const, fix) == 0.5
    # constant and all-zero maps are the uniform distribution
    assert M.sim(const, zero) == pytest.approx(1.0)
    assert M.kld(zero, const) == pytest.approx(0.0, abs=1e-12)
    # uniform vs x/1.5 = [1/15, 2/15, 3/15, 9/15]: Σ min(.25, ·) = 1/15 + 2/15 + 3/15 + .25
    assert M.sim(const, x) == pytest.approx(6 / 15 + 0.25)
    # the study's rule: a constant map selects every pixel; x's top set (90th pct of 4 values) is 1 pixel -> 1/4
    assert M.iou_top_study(const, x) == pytest.approx(0.25)
    assert M.iou_top_study(const, zero) == 1.0
    for f in M.MASK_METRICS.values():
        assert f(const, mask) == pytest.approx(0.25)
        assert f(zero, mask) == pytest.approx(0.25)


def test_is_degenerate_reasons():
    assert M.is_degenerate(np.eye(2)) is None
    assert M.is_degenerate(np.full((2, 2), 0.4)) == "constant"
    assert M.is_degenerate([[np.nan, 1.0], [0.0, 0.0]]) == "nan"
    assert M.is_degenerate([[np.inf, 1.0], [0.0, 0.0]]) == "inf"
    assert M.is_degenerate(np.zeros((0, 3))) == "empty"
