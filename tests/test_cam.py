"""EigenCAM from activations: hand-computed values, the SVD sign correction, shapes, range, degenerate maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection, get_2d_projection_with_sign_correction

from human_saliency.maps import cam
from human_saliency.maps.cam import eigencam


def _blob_activations(channels: int = 8, size: int = 8) -> tuple[torch.Tensor, np.ndarray]:
    """1×C×size×size activations: a strong 3×3 blob at the top-right corner over weak noise."""
    rng = np.random.default_rng(0)
    acts = rng.uniform(0.0, 0.1, (1, channels, size, size))
    blob = np.zeros((size, size), bool)
    blob[:3, -3:] = True
    acts[0][:, blob] += rng.uniform(2.0, 3.0, (channels, 1))
    return torch.from_numpy(acts).float(), blob


def test_hand_computed_single_channel_map():
    # One channel [[0, 0], [0, 4]]: centred [-1, -1, -1, 3]; the first component is ±1, so the
    # projection is ±[-1, -1, -1, 3]; sign fix → +, ReLU → [0, 0, 0, 3], min-max → [0, 0, 0, 1].
    acts = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]])
    np.testing.assert_allclose(eigencam(acts, (2, 2)), [[[0.0, 0.0], [0.0, 1.0]]], atol=1e-6)


def test_svd_sign_flip_regression(monkeypatch):
    """The study's maps came out empty/inverted when the SVD returned the component negated."""
    acts, blob = _blob_activations()
    projection = get_2d_projection(acts.numpy())
    negated = -projection if projection[0][blob].mean() > 0 else projection
    assert np.maximum(negated[0], 0)[blob].max() == 0  # grad-cam's EigenCAM (ReLU alone) would blank the object

    # Whatever orientation LAPACK returns, the corrected projection puts the object on the positive side.
    real_svd = np.linalg.svd
    monkeypatch.setattr(
        cam.np.linalg, "svd", lambda m, **kw: tuple(-x if i == 2 else x for i, x in enumerate(real_svd(m, **kw)))
    )
    (saliency,) = eigencam(acts, (8, 8))
    assert saliency[blob].min() > 0.5
    assert saliency[~blob].max() < 0.2
    assert np.unravel_index(saliency.argmax(), saliency.shape) in set(zip(*np.nonzero(blob), strict=True))


@pytest.mark.parametrize("shape", [(2, 64, 5, 5), (1, 16, 12, 9), (3, 8, 4, 4)])
def test_projection_equals_grad_cams_sign_corrected_projection(shape):
    acts = np.maximum(np.random.default_rng(1).normal(size=shape), 0).astype(np.float32)
    np.testing.assert_allclose(
        cam.first_component_projection(acts), get_2d_projection_with_sign_correction(acts), rtol=1e-4, atol=1e-4
    )


def test_resize_keeps_height_width_order():
    acts, _ = _blob_activations()  # blob at the top-right corner
    (saliency,) = eigencam(acts, (20, 40))
    assert saliency.shape == (20, 40)
    assert saliency[:5, -10:].mean() > 0.8
    assert saliency[-5:, :10].max() < 0.2


def test_batch_shape_dtype_and_range():
    acts = torch.randn(3, 16, 5, 7)
    maps = eigencam(acts, (32, 48))
    assert maps.shape == (3, 32, 48)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert all(m.max() == pytest.approx(1.0) for m in maps)


def test_constant_activations_give_zeros_not_nan():
    maps = eigencam(torch.full((2, 4, 3, 3), 0.7), (6, 6))
    assert maps.shape == (2, 6, 6)
    assert not maps.any()
