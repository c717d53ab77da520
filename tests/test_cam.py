"""EigenCAM from activations: grad-cam's maps on both solver paths, the sign correction, the crop, degenerate maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection, get_2d_projection_with_sign_correction

from gradcam_reference import reference_maps
from human_saliency.maps import cam
from human_saliency.maps.cam import eigencam

pytestmark = pytest.mark.usefixtures("one_thread")


def _blob_activations(channels: int = 8, size: int = 8, side: int = 3) -> tuple[torch.Tensor, np.ndarray]:
    """1×C×size×size activations: a strong side×side blob at the top-right corner over weak noise."""
    rng = np.random.default_rng(0)
    acts = rng.uniform(0.0, 0.1, (1, channels, size, size))
    blob = np.zeros((size, size), bool)
    blob[:side, -side:] = True
    acts[0][:, blob] += rng.uniform(2.0, 3.0, (channels, 1))
    return torch.from_numpy(acts).float(), blob


def _layer_like(batch: int, channels: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Activations shaped like a trained layer's: a few smooth spatial patterns read by many channels, ReLU'd
    noise on top (a leading component well ahead of the rest, as the block Krylov iteration expects)."""
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.nn.functional.interpolate(torch.rand(batch, 6, 4, 4, generator=gen), size=(height, width))
    weights = torch.randn(batch, channels, 6, generator=gen) * torch.tensor([3.0, 2.0, 1.5, 1.0, 0.7, 0.5])
    noise = torch.randn(batch, channels, height, width, generator=gen)
    acts = torch.einsum("bck,bkhw->bchw", weights, patterns) + 0.3 * noise
    return acts.relu()


def test_the_grids_these_tests_give_each_solver_path_take_it():
    assert 5 * 5 <= cam.EXACT_CELLS < 12 * 12  # "exact" tests use grids up to 5 × 5, "block-krylov" ones 12 × 12 and up


def _count_exact_calls(monkeypatch) -> list[int]:
    """Record how many images go through the exact eigendecomposition."""
    calls: list[int] = []
    exact = cam._exact
    monkeypatch.setattr(cam, "_exact", lambda matrix: (calls.append(matrix.shape[0]), exact(matrix))[1])
    return calls


def test_hand_computed_single_channel_map():
    # One channel [[0, 0], [0, 4]]: centred [-1, -1, -1, 3]; the first component is ±1, so the
    # projection is ±[-1, -1, -1, 3]; sign fix → +, ReLU → [0, 0, 0, 3], min-max → [0, 0, 0, 1].
    acts = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]])
    np.testing.assert_allclose(eigencam(acts, (2, 2)).numpy(), [[[0.0, 0.0], [0.0, 1.0]]], atol=1e-6)


@pytest.mark.parametrize(("size", "side"), [(5, 2), (12, 4)], ids=["exact", "block-krylov"])
def test_svd_sign_flip_regression(monkeypatch, size, side):
    """The study's maps came out empty/inverted when the SVD returned the component negated."""
    acts, blob = _blob_activations(size=size, side=side)
    projection = get_2d_projection(acts.numpy())
    negated = -projection if projection[0][blob].mean() > 0 else projection
    assert np.maximum(negated[0], 0)[blob].max() == 0  # grad-cam's EigenCAM (ReLU alone) would blank the object

    # Whatever orientation the eigensolver returns, the corrected projection puts the object on the positive side.
    eigh = torch.linalg.eigh
    monkeypatch.setattr(cam.torch.linalg, "eigh", lambda m: (lambda w, v: (w, -v))(*eigh(m)))
    (saliency,) = eigencam(acts, (size, size)).numpy()
    assert saliency[blob].min() > 0.5
    assert saliency[~blob].max() < 0.2
    assert np.unravel_index(saliency.argmax(), saliency.shape) in set(zip(*np.nonzero(blob), strict=True))


@pytest.mark.parametrize("shape", [(2, 64, 5, 5), (3, 8, 4, 4), (1, 16, 12, 9)])
def test_projection_equals_grad_cams_sign_corrected_projection(shape):
    acts = np.maximum(np.random.default_rng(1).normal(size=shape), 0).astype(np.float32)
    np.testing.assert_allclose(
        cam.first_component_projection(torch.from_numpy(acts)).numpy(),
        get_2d_projection_with_sign_correction(acts),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("shape", [(2, 512, 20, 20), (2, 256, 25, 25), (1, 2048, 12, 12)])
def test_block_krylov_maps_equal_grad_cams_without_the_exact_fallback(monkeypatch, shape):
    calls = _count_exact_calls(monkeypatch)
    acts = _layer_like(*shape)
    maps = eigencam(acts, (64, 64)).numpy()
    assert calls == []  # certified: no image needed the exact eigendecomposition
    np.testing.assert_allclose(maps, reference_maps(acts.numpy(), (64, 64)), rtol=0, atol=1e-3)


def test_uncertified_images_are_redone_exactly(monkeypatch):
    """Noise has a flat spectrum, on which 4 Krylov blocks cannot pin the first component down: the certificate
    sends that image to the exact eigendecomposition, and its map still equals grad-cam's. The other image of
    the batch, with a leading component, does not go."""
    calls = _count_exact_calls(monkeypatch)
    noise = torch.randn(1, 512, 20, 20, generator=torch.Generator().manual_seed(2)).relu()
    acts = torch.cat([noise, _layer_like(1, 512, 20, 20)])
    maps = eigencam(acts, (40, 40)).numpy()
    assert calls == [1]
    np.testing.assert_allclose(maps, reference_maps(acts.numpy(), (40, 40)), rtol=0, atol=1e-3)


def test_padded_grid_cell_is_cropped_not_stretched_regression():
    """A 200 px image padded to 224 px (a multiple of the stride, 32) gives a 7×7 grid whose last row and column
    are partly padding. Keeping those cells whole and stretching the 7 cells over the image put a feature in cell
    5 at pixel 157 instead of 176 (12 % off); the map must be resized to the padded input, then cropped."""
    acts = torch.zeros(1, 4, 7, 7)
    acts[0, :, 5, 5] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # covers input pixels 160-191 of both axes: centre 176
    acts[0, :, 1, 1] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    for size, centre in ((200, 175.5), (400, 351.5)):  # cell 5's centre, in the image's and the working size's pixels
        (saliency,) = eigencam(acts, (size, size), image_size=(200, 200), input_size=(224, 224)).numpy()
        peak = np.argwhere(saliency == saliency.max()).mean(0)
        np.testing.assert_allclose(peak, (centre, centre), atol=0.5)
        np.testing.assert_allclose(
            saliency,
            reference_maps(acts.numpy(), (size, size), image_size=(200, 200), input_size=(224, 224))[0],
            atol=1e-3,
        )


def test_wholly_padded_cells_are_left_out():
    # 100 of 224 input rows hold the image: rows 0-3 of the 7-cell grid hold image pixels, rows 4-6 are padding.
    acts = torch.rand(2, 16, 7, 7, generator=torch.Generator().manual_seed(3))
    acts[..., 4:, :] = 50.0  # would dominate the first component if counted
    maps = eigencam(acts, (50, 112), image_size=(100, 224), input_size=(224, 224)).numpy()
    np.testing.assert_allclose(
        maps, reference_maps(acts.numpy(), (50, 112), image_size=(100, 224), input_size=(224, 224)), atol=1e-3
    )
    assert np.allclose(maps, eigencam(acts[..., :4, :], (50, 112), image_size=(100, 224), input_size=(128, 224)))


def test_frame_must_be_whole_and_fit():
    acts = torch.rand(1, 4, 7, 7)
    with pytest.raises(ValueError, match="both image_size and input_size"):
        eigencam(acts, (8, 8), image_size=(200, 200))
    with pytest.raises(ValueError, match=r"image size \(240, 200\) does not fit in input size \(224, 224\)"):
        eigencam(acts, (8, 8), image_size=(240, 200), input_size=(224, 224))


def test_resize_keeps_height_width_order():
    acts, _ = _blob_activations()  # blob at the top-right corner
    (saliency,) = eigencam(acts, (20, 40)).numpy()
    assert saliency.shape == (20, 40)
    assert saliency[:5, -10:].mean() > 0.8
    assert saliency[-5:, :10].max() < 0.2


def test_batch_shape_dtype_and_range():
    acts = torch.randn(3, 16, 5, 7)
    maps = eigencam(acts, (32, 48))
    assert maps.shape == (3, 32, 48)
    assert maps.dtype == torch.float32
    assert torch.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert all(m.max() == pytest.approx(1.0) for m in maps)


@pytest.mark.parametrize("grid", [3, 12], ids=["exact", "block-krylov"])
def test_degenerate_activations(grid):
    """Constant or all-zero activations give all-zero maps, NaN counts as 0 (as in grad-cam), inf gives NaN;
    none of them spoils the other images of the batch."""
    good = _layer_like(1, 8, grid, grid)
    acts = torch.cat([torch.full((1, 8, grid, grid), 0.7), torch.zeros(1, 8, grid, grid), good, good, good])
    acts[3, 0, 0, 0] = float("nan")
    acts[4, 1, 1, 1] = float("inf")
    maps = eigencam(acts, (6, 6)).numpy()
    assert maps.shape == (5, 6, 6)
    assert not maps[:2].any()
    expected = reference_maps(good.numpy(), (6, 6))[0]
    np.testing.assert_allclose(maps[2], expected, atol=1e-3)
    with_zero = good.clone()
    with_zero[0, 0, 0, 0] = 0.0
    np.testing.assert_allclose(maps[3], reference_maps(with_zero.numpy(), (6, 6))[0], atol=1e-3)
    assert np.isnan(maps[4]).all()


def test_maps_do_not_depend_on_the_batch():
    acts = _layer_like(4, 256, 12, 12, seed=5)
    together = eigencam(acts, (24, 24))
    alone = torch.cat([eigencam(a[None], (24, 24)) for a in acts])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_maps_are_made_on_the_activations_device():
    acts = _layer_like(2, 2048, 25, 25)
    maps = eigencam(acts.cuda(), (512, 512))
    assert maps.device.type == "cuda"
    np.testing.assert_allclose(maps.cpu().numpy(), reference_maps(acts.numpy(), (512, 512)), atol=1e-3)
