"""Tests for the fixation predictors: log-density convention, DeepGaze IIE inputs, the registry."""

from __future__ import annotations

import hashlib
import io
import math
import sys
import types
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from human_saliency.errors import DataError, DownloadError, HumanSaliencyError
from human_saliency.io.weights import fetch_weights
from human_saliency.maps.predictors import (
    PREDICTORS,
    PredictorUnavailable,
    build_predictor,
    deepgaze_inputs,
    zoom_centerbias,
)
from human_saliency.params import load_params

OFFLINE = ["spectral_residual", "center_bias"]
ROOT = Path(__file__).resolve().parents[1]
# Where deepgaze_pytorch.DeepGazeIIE(pretrained=True) loads its weights from (torch.utils.model_zoo.load_url).
DEEPGAZE_WEIGHTS_URL = "https://github.com/matthias-k/DeepGaze/releases/download/v1.0.0/deepgaze2e.pth"


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
    """Stands in for deepgaze_pytorch.DeepGazeIIE: records its inputs, returns a log density.

    Pretrained, it loads its one weight (``gain``) as the real one does, with torch.utils.model_zoo.load_url,
    from ``weights_url`` when a test serves one.
    """

    instances: list[_FakeDeepGazeIIE] = []
    weights_url: str | None = None

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        self.pretrained = pretrained
        self.gain = torch.nn.Parameter(torch.tensor(1 / 50))
        if pretrained and self.weights_url is not None:
            self.load_state_dict(torch.utils.model_zoo.load_url(self.weights_url, map_location="cpu"))
        self.calls: list[tuple[torch.Tensor, torch.Tensor, bool]] = []
        self.instances.append(self)

    def forward(self, images: torch.Tensor, centerbias: torch.Tensor) -> torch.Tensor:
        self.calls.append((images.clone(), centerbias.clone(), torch.is_inference_mode_enabled()))
        logits = images.mean(dim=1) * self.gain + centerbias
        return (logits - logits.logsumexp(dim=(1, 2), keepdim=True))[:, None]


@pytest.fixture
def fake_deepgaze(monkeypatch: pytest.MonkeyPatch) -> type[_FakeDeepGazeIIE]:
    module = types.ModuleType("deepgaze_pytorch")
    module.DeepGazeIIE = _FakeDeepGazeIIE
    monkeypatch.setitem(sys.modules, "deepgaze_pytorch", module)
    monkeypatch.setattr(_FakeDeepGazeIIE, "instances", [])
    monkeypatch.setattr(_FakeDeepGazeIIE, "weights_url", None)
    return _FakeDeepGazeIIE


def test_deepgaze_adapter_feeds_0_255_pixels_and_zoomed_centre_bias(fake_deepgaze, tmp_path) -> None:
    np.save(tmp_path / "centerbias_mit1003.npy", _two_valued_template())
    predictor = build_predictor("deepgaze_iie", centerbias_path=tmp_path / "centerbias_mit1003.npy")
    assert (predictor.name, predictor.label) == ("deepgaze_iie", "DeepGaze IIE")
    images = _noise_batch(n=2, height=4, width=6)

    maps = predictor.predict(images)

    (model,) = fake_deepgaze.instances
    assert model.pretrained and not model.training
    ((fed_images, fed_bias, inference_mode),) = model.calls
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
    hub_dir = torch.hub.get_dir()
    with pytest.raises(PredictorUnavailable, match="fixations.predictor: spectral_residual"):
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "cb.npy")
    assert torch.hub.get_dir() == hub_dir


# --- The paper profile's DeepGaze path against loopback stand-ins of its downloads -----------------


def _standin_centerbias(size: int = 64) -> np.ndarray:
    """Like centerbias_mit1003.npy (1024×1024 float64, a log density peaking mid-image), but small."""
    ys, xs = np.mgrid[:size, :size] - (size - 1) / 2
    log_density = -0.5 * (ys**2 / (size / 4) ** 2 + xs**2 / (size / 3) ** 2)
    return log_density - logsumexp(log_density)


def _served(server, real_url: str, data: bytes) -> str:
    """Serve ``data`` on the loopback server at the path of ``real_url``; its loopback URL."""
    return server.add(urlsplit(real_url).path.lstrip("/"), data)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("pinned", [True, False])
def test_paper_deepgaze_path_runs_on_loopback_stand_ins(fake_deepgaze, http_server, tmp_path, pinned) -> None:
    centerbias = load_params(ROOT / "configs" / "paper.yaml").fixations.centerbias
    template = _standin_centerbias()
    data = _npy_bytes(template)
    url = _served(http_server, centerbias.url, data)
    weights_url = _served(http_server, DEEPGAZE_WEIGHTS_URL, _torch_bytes({"gain": torch.tensor(0.05)}))
    fake_deepgaze.weights_url = weights_url
    cache = tmp_path / "weights"
    pin = hashlib.sha256(data).hexdigest() if pinned else None

    # As stages/fixations.py: the centre bias into the weights cache, DeepGaze's own weights via torch.hub.
    path = fetch_weights(url, centerbias.filename, cache, sha256=pin)
    hub_dir = torch.hub.get_dir()
    predictor = build_predictor("deepgaze_iie", centerbias_path=path, cache_dir=cache)
    images = _noise_batch(n=2)
    maps = predictor.predict(images)

    assert path == cache / "centerbias_mit1003.npy"
    assert (cache / "torch_hub" / "checkpoints" / "deepgaze2e.pth").is_file()
    assert torch.hub.get_dir() == hub_dir
    assert [seen.path for seen in http_server.requests] == [urlsplit(url).path, urlsplit(weights_url).path]
    (model,) = fake_deepgaze.instances
    ((_, fed_bias, _),) = model.calls
    expected_bias = zoom_centerbias(template, (48, 64))
    np.testing.assert_allclose(fed_bias.numpy(), np.broadcast_to(expected_bias, (2, 48, 64)), rtol=1e-6)
    logits = images.astype(np.float64).mean(axis=3) * 0.05 + expected_bias  # the served gain, not the default
    np.testing.assert_allclose(maps, logits - logsumexp(logits, axis=(1, 2), keepdims=True), atol=1e-5)

    # A second run finds both files in the cache.
    again = fetch_weights(url, centerbias.filename, cache, sha256=pin)
    build_predictor("deepgaze_iie", centerbias_path=again, cache_dir=cache)
    assert len(http_server.requests) == 2


def test_centerbias_sha256_mismatch_names_the_file_and_deletes_it(http_server, tmp_path) -> None:
    centerbias = load_params(ROOT / "configs" / "paper.yaml").fixations.centerbias
    url = _served(http_server, centerbias.url, _npy_bytes(_standin_centerbias()))
    with pytest.raises(DownloadError, match=r"centerbias_mit1003\.npy: SHA-256 mismatch"):
        fetch_weights(url, centerbias.filename, tmp_path / "weights", sha256="0" * 64)
    assert not (tmp_path / "weights" / "centerbias_mit1003.npy").exists()
