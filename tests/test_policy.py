"""Tests for human_saliency.experiment.policy: boxes move with the pixels, the whitelist, determinism per seed."""

from pathlib import Path

import numpy as np
import pytest
import torch

from human_saliency.experiment.policy import ALLOWED, apply_policy, build_policy
from human_saliency.params import load_params

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = load_params(ROOT / "params.yaml").aug.policy  # the embedded profile's policy


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)


def test_horizontal_flip_moves_boxes_with_the_pixels(image):
    policy = build_policy([{"name": "RandomHorizontalFlip", "p": 1.0}])
    out, boxes, labels = apply_policy(image, [[1, 2, 4, 5]], [3], policy, seed=0)
    # width 10: x1' = 10 - x2 = 6, x2' = 10 - x1 = 9; y unchanged
    np.testing.assert_array_equal(boxes, [[6, 2, 9, 5]])
    assert labels.tolist() == [3]
    np.testing.assert_array_equal(out, image[:, ::-1])


def test_p_is_applied_once(image):
    # p=0 must mean never, both for a transform with its own p and for one wrapped in RandomApply
    policy = build_policy([{"name": "RandomHorizontalFlip", "p": 0.0}, {"name": "ColorJitter", "p": 0.0, "hue": 0.5}])
    assert "RandomHorizontalFlip(p=0.0)" in repr(policy)
    for seed in range(5):
        out, boxes, _ = apply_policy(image, [[1, 2, 4, 5]], [3], policy, seed=seed)
        np.testing.assert_array_equal(out, image)
        np.testing.assert_array_equal(boxes, [[1, 2, 4, 5]])


def test_degenerate_boxes_are_dropped_with_their_labels(image):
    policy = build_policy([])
    _, boxes, labels = apply_policy(image, [[1, 2, 4, 5], [3, 3, 3, 6]], [1, 2], policy, seed=0)
    np.testing.assert_array_equal(boxes, [[1, 2, 4, 5]])
    assert labels.tolist() == [1]


def test_unknown_transform_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown transform 'RandomErasing'; allowed: RandomHorizontalFlip"):
        build_policy([{"name": "RandomErasing", "p": 0.5}])


def test_bad_arguments_name_the_transform():
    with pytest.raises(ValueError, match=r"policy step 1 \(ColorJitter\): bad arguments"):
        build_policy([{"name": "RandomEqualize"}, {"name": "ColorJitter", "p": 0.5, "brightnes": 0.2}])
    with pytest.raises(ValueError, match=r"policy step 0 \(GaussianBlur\): bad arguments"):
        build_policy([{"name": "GaussianBlur", "kernel_size": 4}])  # kernel size must be odd
    with pytest.raises(ValueError, match=r"\(RandomEqualize\): p must be"):
        build_policy([{"name": "RandomEqualize", "p": 1.5}])


def test_iou_crop_must_keep_a_leave_as_is_option():
    with pytest.raises(ValueError, match="sampler_options must include a value >= 1.0"):
        build_policy([{"name": "RandomIoUCrop", "sampler_options": [0.3, 0.5]}])


def test_default_policy_is_deterministic_per_seed_and_leaves_the_global_rng_alone():
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    boxes, labels = [[4, 4, 30, 40], [35, 10, 60, 44]], [1, 2]
    policy = build_policy(DEFAULT_POLICY)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    results = [apply_policy(image, boxes, labels, policy, seed=s) for s in (0, 1, 2, 0)]
    assert torch.equal(torch.rand(1), expected_next)
    for a, b in zip(results[0], results[3], strict=False):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(results[0][0], r[0]) for r in results[1:3])


def test_default_policy_uses_only_allowed_transforms_and_no_erasing():
    assert {step["name"] for step in DEFAULT_POLICY} <= set(ALLOWED)
    assert not any("Erasing" in name for name in ALLOWED)
