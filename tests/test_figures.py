"""Overlay figures: the strongest values look strongest, zero leaves the image as it is, and a key is drawn."""

import numpy as np

from human_saliency.scoring.figures import colour_bar, detector_panels, heat, overlay_figure


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(float) @ [0.299, 0.587, 0.114]


def test_a_filled_mask_looks_filled_not_like_a_ring():
    """Regression (issue 10.9): JET ended in dark red at a fixed 50 % blend, so a mask's 0.95 interior was
    darker than its soft edge and a filled mask read as an outline ring."""
    image = np.full((40, 40, 3), 128, np.uint8)
    mask = np.zeros((40, 40))
    mask[10:30, 10:30] = 0.95
    mask[9, 10:30] = mask[30, 10:30] = 0.4  # a soft edge
    shown = _luminance(heat(image, mask))
    assert shown[20, 20] > shown[9, 20] and shown[20, 20] > shown[0, 0]  # the interior is the brightest


def test_zero_leaves_the_image_and_opacity_grows_with_the_value():
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(heat(image, np.zeros((8, 8))), image)
    change = [np.abs(heat(image, np.full((8, 8), v)).astype(int) - image).mean() for v in (0.25, 0.5, 1.0)]
    assert change[0] < change[1] < change[2]


def test_figure_ends_with_a_colour_key_from_bright_to_dark():
    image = np.zeros((30, 30, 3), np.uint8)
    figure = overlay_figure(image, {"a": np.ones((30, 30))})
    key = colour_bar(30)
    assert figure.shape[1] == 30 + 4 + 30 + 4 + key.shape[1]
    assert _luminance(key[0, :4]).mean() > _luminance(key[-1, :4]).mean()  # 1 at the top is the brightest


def test_detector_panels_show_the_planted_cue_only_when_an_image_has_one():
    maps, masks, fixations = ({"a": np.full((4, 4), v), "b": np.full((4, 4), v)} for v in (0.1, 0.2, 0.3))
    none = {"a": np.zeros((4, 4), bool), "b": np.zeros((4, 4), bool)}
    assert list(detector_panels("ssd", maps, masks, fixations, none)) == ["ssd", "human mask", "predicted fixations"]
    one = {**none, "b": np.eye(4, dtype=bool)}
    panels = detector_panels("ssd", maps, masks, fixations, one)
    assert list(panels) == ["ssd", "human mask", "predicted fixations", "planted cue"]
    assert panels["planted cue"]["b"].dtype == np.float32 and panels["planted cue"]["b"].sum() == 4
    assert panels["ssd"] is maps
