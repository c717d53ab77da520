"""Tests for human_saliency.experiment.erasing: exact pixel counts, the most salient pixels, deterministic ties."""

import numpy as np
import pytest

from human_saliency.experiment.erasing import erase, erase_count, fit_map, top_mask


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(1, 256, (20, 20, 3), dtype=np.uint8)


def test_erases_exactly_round_fraction_pixels(image):
    saliency = np.random.default_rng(1).random((20, 20))
    _, mask = erase(image, saliency, fraction=0.025)  # 0.025 · 400 = 10
    assert mask.sum() == 10
    _, mask = erase(image[:7, :9], saliency[:7, :9], fraction=0.1)  # 0.1 · 63 = 6.3 -> 6
    assert mask.sum() == 6


def test_erases_the_most_salient_pixels_and_nothing_else(image):
    saliency = np.zeros((20, 20))
    hot = [(3, 4), (10, 10), (19, 0), (0, 19), (7, 7), (12, 3), (15, 15), (1, 1), (8, 18), (18, 8)]
    for rank, (r, c) in enumerate(hot):
        saliency[r, c] = 1.0 - rank * 0.01
    saliency[5, 5] = 0.5  # 11th most salient: must survive
    erased, mask = erase(image, saliency, fraction=0.025, fill=0)
    assert set(zip(*np.nonzero(mask), strict=False)) == set(hot)
    assert (erased[mask] == 0).all()
    np.testing.assert_array_equal(erased[~mask], image[~mask])
    assert erased[5, 5].tolist() == image[5, 5].tolist()


def test_ties_are_broken_in_raster_order():
    mask = top_mask(np.ones((3, 4)), 5)
    assert mask.ravel().tolist() == [True] * 5 + [False] * 7


def test_fill_may_be_a_colour(image):
    erased, mask = erase(image, np.random.default_rng(2).random((20, 20)), fill=(10, 20, 30))
    assert (erased[mask] == [10, 20, 30]).all()


def test_working_size_map_is_resized_to_the_image(image):
    saliency = np.zeros((8, 8))
    saliency[:4, 4:] = 1.0  # top-right quadrant of the working-size map
    _, mask = erase(image, saliency, fraction=0.1)  # 40 pixels, all within the 10×10 top-right quadrant
    rows, cols = np.nonzero(mask)
    assert mask.sum() == 40 and rows.max() < 10 and cols.min() >= 10
    assert fit_map(saliency, (20, 20)).shape == (20, 20)


def test_input_is_not_modified(image):
    before = image.copy()
    erase(image, np.random.default_rng(3).random((20, 20)))
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(("kwargs", "message"), [({"fraction": 1.5}, "fraction"), ({"fill": 300}, "fill")])
def test_bad_arguments_are_errors(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        erase(image, np.zeros((20, 20)), **kwargs)


def test_a_sparse_map_erases_only_the_pixels_it_points_at(image):
    """Regression (issue 10.3): with fewer positive pixels than the erase fraction, the raster-order
    tie-break erased a band of rows at the top of the image; now only the salient pixels go."""
    saliency = np.zeros((20, 20))
    saliency[15, 12] = saliency[16, 12] = saliency[16, 13] = 1.0  # 3 salient pixels, 10 wanted
    erased, mask = erase(image, saliency, fraction=0.025)
    assert mask.sum() == 3 and mask[15, 12] and mask[16, 12] and mask[16, 13]
    assert not mask[:15].any()  # nothing at the top of the image
    np.testing.assert_array_equal(erased[~mask], image[~mask])


def test_erase_count_rounds_the_fraction_of_pixels():
    assert erase_count((20, 20, 3), 0.025) == 10 and erase_count((7, 9, 3), 0.1) == 6
