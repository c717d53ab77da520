"""Tests for the fixation predictors: log-density convention, DeepGaze IIE inputs, the registry."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from human_saliency.errors import DataError, HumanSaliencyError
from human_saliency.fixations import (
    PREDICTORS,
    PredictorUnavailable,
    build_predictor,
    deepgaze_inputs,
    zoom_centerbias,
)

OFFLINE = ["spectral_residual", "center_bias"]


def _noise_batch(n: int = 3, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def _two_valued_template() -> np.ndarray:
    """An 8×8 log density: left half 0, right half log 3 (un-normalised)."""
    template = np.zeros((8, 8))
    template[:, 4:] = math.log(3)
    return template


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_predictors_return_normalised_log_densities(name: str) -> None:
    maps = build_predictor(name).predict(_noise_batch())
    assert maps.shape == (3, 48, 64)
    assert maps.dtype == np.float32
    assert np.all(np.isfinite(maps))
    np.testing.assert_allclose(logsumexp(maps.astype(np.float64), axis=(1, 2)), 0.0, atol=1e-4)


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_predictors_accept_a_list_of_one_size(name: str) -> None:
    batch = _noise_batch(n=2)
    predictor = build_predictor(name)
    np.testing.assert_array_equal(predictor.predict(list(batch)), predictor.predict(batch))


@pytest.mark.parametrize("name", OFFLINE)
def test_predictors_reject_mixed_sizes_and_float_images(name: str) -> None:
    predictor = build_predictor(name)
    with pytest.raises(ValueError, match="one working size"):
        predictor.predict([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((1, 8, 8, 3), np.float32))


@pytest.mark.parametrize(
    ("background", "value", "box", "far_box"),
    [
        # On the 64-px grid this square is an exact box, whose spectrum has exact zeros: without the
        # amplitude floor their log dominated the residual and the peak landed on a periodic ripple.
        (100, 250, (30, 42, 84, 96), (60, 72, 20, 32)),
        (200, 20, (60, 80, 10, 30), (10, 30, 90, 110)),
    ],
)
def test_spectral_residual_peaks_on_a_single_object(
    background: int, value: int, box: tuple[int, int, int, int], far_box: tuple[int, int, int, int]
) -> None:
    top, bottom, left, right = box
    image = np.full((96, 128, 3), background, np.uint8)
    image[top:bottom, left:right] = value
    maps = build_predictor("spectral_residual").predict(image[None])
    row, col = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
    assert top - 4 <= row < bottom + 4 and left - 4 <= col < right + 4
    # The object outweighs an equal-sized patch of the background tenfold.
    density = np.exp(maps[0])
    far_top, far_bottom, far_left, far_right = far_box
    far = density[far_top:far_bottom, far_left:far_right].sum()
    assert density[top:bottom, left:right].sum() > 10 * far


def test_spectral_residual_is_uniform_on_a_constant_image() -> None:
    maps = build_predictor("spectral_residual").predict(np.full((1, 20, 30, 3), 7, np.uint8))
    np.testing.assert_allclose(maps, -math.log(20 * 30), rtol=1e-6)


def test_center_bias_peaks_at_the_centre_with_quarter_side_sigma() -> None:
    maps = build_predictor("center_bias").predict(np.zeros((2, 33, 41, 3), np.uint8))
    assert np.unravel_index(np.argmax(maps[0]), maps[0].shape) == (16, 20)
    np.testing.assert_array_equal(maps[0], maps[1])
    # 10 px right of centre, sigma_x = 41 / 4 = 10.25: log ratio = -10² / (2 · 10.25²).
    assert maps[0, 16, 30] - maps[0, 16, 20] == pytest.approx(-100 / 210.125, abs=1e-5)


def test_regression_deepgaze_fed_0_1_pixels() -> None:
    """The original study divided by 255 before DeepGaze IIE, whose normaliser divides again."""
    images = np.full((2, 8, 8, 3), 255, np.uint8)
    images[1, 0, 0] = (0, 128, 17)
    image_tensor, _ = deepgaze_inputs(images, np.zeros((8, 8)))
    assert image_tensor.dtype == torch.float32
    assert image_tensor.shape == (2, 3, 8, 8)
    assert image_tensor[0].max().item() == 255.0
    assert image_tensor[1, :, 0, 0].tolist() == [0.0, 128.0, 17.0]


def test_deepgaze_inputs_zoom_centre_bias_nearest_and_renormalise() -> None:
    _, bias = deepgaze_inputs(np.zeros((3, 4, 6, 3), np.uint8), _two_valued_template())
    assert bias.shape == (3, 4, 6)
    assert bias.dtype == torch.float32
    # Order 0 keeps the two values: 12 pixels of weight 1 and 12 of weight 3 sum to 48.
    expected = np.full((4, 6), -math.log(48))
    expected[:, 3:] = math.log(3) - math.log(48)
    for one in bias:
        np.testing.assert_allclose(one.numpy(), expected, rtol=1e-6)
    assert logsumexp(bias[0].double().numpy()) == pytest.approx(0.0, abs=1e-6)


def test_zoom_centerbias_of_a_uniform_template_is_uniform() -> None:
    np.testing.assert_allclose(zoom_centerbias(np.zeros((8, 8)), (5, 7)), -math.log(35))


def test_unknown_predictor_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="deepgaze_iie, spectral_residual, center_bias"):
        build_predictor("deepgaze_iii")


def test_predictors_have_names_and_labels() -> None:
    for name in OFFLINE:
        predictor = build_predictor(name)
        assert predictor.name == name
        assert predictor.label
    assert set(PREDICTORS) == {"deepgaze_iie", *OFFLINE}


def test_deepgaze_missing_package_says_how_to_install_and_the_offline_alternative(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setitem(sys.modules, "deepgaze_pytorch", None)  # makes the import fail
    np.save(tmp_path / "cb.npy", np.zeros((8, 8)))
    with pytest.raises(PredictorUnavailable) as info:
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "cb.npy")
    assert isinstance(info.value, HumanSaliencyError)
    message = str(info.value)
    assert "pip install 'human-saliency[deepgaze]'" in message
    assert "git+https://github.com/matthias-k/DeepGaze.git" in message
    assert "fixations.predictor: spectral_residual" in message
    assert "\n" not in message


class _FakeDeepGazeIIE(torch.nn.Module):
    """Stands in for deepgaze_pytorch.DeepGazeIIE: records its inputs, returns a log density."""

    instances: list[_FakeDeepGazeIIE] = []

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        self.pretrained = pretrained
        self.calls: list[tuple[torch.Tensor, torch.Tensor, bool]] = []
        self.instances.append(self)

    def forward(self, images: torch.Tensor, centerbias: torch.Tensor) -> torch.Tensor:
        self.calls.append((images.clone(), centerbias.clone(), torch.is_inference_mode_enabled()))
        logits = images.mean(dim=1) / 50.0 + centerbias
        return (logits - logits.logsumexp(dim=(1, 2), keepdim=True))[:, None]


@pytest.fixture
def fake_deepgaze(monkeypatch: pytest.MonkeyPatch) -> type[_FakeDeepGazeIIE]:
    module = types.ModuleType("deepgaze_pytorch")
    module.DeepGazeIIE = _FakeDeepGazeIIE
    monkeypatch.setitem(sys.modules, "deepgaze_pytorch", module)
    monkeypatch.setattr(_FakeDeepGazeIIE, "instances", [])
    return _FakeDeepGazeIIE


def test_deepgaze_adapter_feeds_0_255_pixels_and_zoomed_centre_bias(
    fake_deepgaze, tmp_path
) -> None:
    np.save(tmp_path / "centerbias_mit1003.npy", _two_valued_template())
    predictor = build_predictor("deepgaze_iie", centerbias_path=tmp_path / "centerbias_mit1003.npy")
    assert (predictor.name, predictor.label) == ("deepgaze_iie", "DeepGaze IIE")
    images = _noise_batch(n=2, height=4, width=6)

    maps = predictor.predict(images)

    (model,) = fake_deepgaze.instances
    assert model.pretrained and not model.training
    (fed_images, fed_bias, inference_mode), = model.calls
    assert inference_mode
    assert fed_images.dtype == torch.float32
    np.testing.assert_array_equal(fed_images.numpy(), images.transpose(0, 3, 1, 2))
    expected_bias = zoom_centerbias(_two_valued_template(), (4, 6))
    for one in fed_bias:
        np.testing.assert_allclose(one.numpy(), expected_bias, rtol=1e-6)
    assert maps.shape == (2, 4, 6) and maps.dtype == np.float32
    logits = images.astype(np.float64).mean(axis=3) / 50.0 + expected_bias
    expected = logits - logsumexp(logits, axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_deepgaze_missing_centre_bias_file_names_it(fake_deepgaze, tmp_path) -> None:
    with pytest.raises(DataError, match="missing.npy"):
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "missing.npy")


def test_deepgaze_offline_weights_fail_with_the_offline_alternative(
    monkeypatch: pytest.MonkeyPatch, fake_deepgaze, tmp_path
) -> None:
    def no_network(self, pretrained: bool = False) -> None:
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(fake_deepgaze, "__init__", no_network)
    np.save(tmp_path / "cb.npy", np.zeros((8, 8)))
    with pytest.raises(PredictorUnavailable, match="fixations.predictor: spectral_residual"):
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "cb.npy")
