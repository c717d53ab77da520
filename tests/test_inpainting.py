"""Tests for human_saliency.experiment.inpainting: real images out (never plot renders), holes filled, rest kept."""

import numpy as np
import pytest

from human_saliency.experiment.inpainting import inpaint


@pytest.fixture
def scene():
    """A smooth colour gradient with a 6×6 hole blanked to black."""
    y, x = np.mgrid[0:24, 0:32]
    image = np.stack([100 + 2 * x, 80 + 3 * y, np.full_like(x, 150)], axis=-1).astype(np.uint8)
    mask = np.zeros((24, 32), dtype=bool)
    mask[9:15, 12:18] = True
    holed = image.copy()
    holed[mask] = 0
    return image, holed, mask


@pytest.mark.parametrize(
    ("method", "options"),
    [("telea", {}), ("ns", {"radius": 5}), ("dip", {"iterations": 2, "seed": 0})],
)
def test_inpainted_image_is_an_image_not_a_plot_render(scene, method, options):
    # Regression: the study saved inpainted results as matplotlib renders (axes, padding, other size).
    _, holed, mask = scene
    out = inpaint(holed, mask, method=method, **options)
    assert out.shape == holed.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], holed[~mask])


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_opencv_fills_the_hole_from_its_surroundings(scene, method):
    image, holed, mask = scene
    out = inpaint(holed, mask, method=method, radius=3)
    error = np.abs(out[mask].astype(int) - image[mask].astype(int))
    assert error.mean() < 10  # the black hole (error ~100 per channel) now follows the gradient
    assert (out[mask] > 0).all()


def test_unknown_method_lists_the_known_ones(scene):
    _, holed, mask = scene
    with pytest.raises(ValueError, match="known: telea, ns, dip"):
        inpaint(holed, mask, method="patchmatch")


def test_unknown_option_names_the_method(scene):
    _, holed, mask = scene
    with pytest.raises(ValueError, match="'telea' got unknown options \\['iterations'\\]"):
        inpaint(holed, mask, method="telea", iterations=10)


def test_mask_must_match_the_image(scene):
    _, holed, mask = scene
    with pytest.raises(ValueError, match="mask must be bool"):
        inpaint(holed, mask[:10], method="telea")
