"""Tests for the fixation predictors: log-density convention, DeepGaze IIE inputs, the registry."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import math
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
import torch.utils.model_zoo
import torchvision
from scipy.special import logsumexp

from human_saliency.errors import DataError, DownloadError, HumanSaliencyError
from human_saliency.io.weights import fetch_weights
from human_saliency.maps.predictors import (
    DEEPGAZE_COMMIT,
    PREDICTORS,
    PredictorUnavailable,
    build_predictor,
    deepgaze_backbones_offline,
    deepgaze_inputs,
    zoom_centerbias,
)
from human_saliency.params import load_params

OFFLINE = ["spectral_residual", "center_bias"]
ROOT = Path(__file__).resolve().parents[1]


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


def test_deepgaze_missing_package_says_how_to_install_the_pinned_commit_and_the_offline_alternative(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setitem(sys.modules, "deepgaze_pytorch", None)  # makes the import fail
    np.save(tmp_path / "cb.npy", np.zeros((8, 8)))
    with pytest.raises(PredictorUnavailable) as info:
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "cb.npy", weights_path=tmp_path / "w.pth")
    assert isinstance(info.value, HumanSaliencyError)
    message = str(info.value)
    assert "not installed" in message and "pip install -e '.[deepgaze]'" in message
    assert f"git+https://github.com/matthias-k/DeepGaze.git@{DEEPGAZE_COMMIT}" in message
    assert "fixations.predictor: spectral_residual" in message
    assert "\n" not in message


def test_regression_deepgaze_head_that_does_not_import_is_not_reported_as_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """The repository's HEAD imports a model needing clip and einops, which it does not declare: the package is
    there, so the message names the failed import and the pinned commit, not a missing package."""
    package = tmp_path / "site" / "deepgaze_pytorch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .deepgaze3 import DeepGazeIII\n")
    (package / "deepgaze3.py").write_text("import clip_not_installed_here  # stands in for clip\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    _forget_deepgaze(monkeypatch)
    np.save(tmp_path / "cb.npy", np.zeros((8, 8)))
    with pytest.raises(PredictorUnavailable) as info:
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "cb.npy", weights_path=tmp_path / "w.pth")
    message = str(info.value)
    assert "installed but does not import" in message and "clip_not_installed_here" in message
    assert DEEPGAZE_COMMIT in message and "not installed" not in message and "\n" not in message


def _forget_deepgaze(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop any imported deepgaze_pytorch (real or stand-in) for this test; monkeypatch restores them after."""
    for name in [name for name in sys.modules if name == "deepgaze_pytorch" or name.startswith("deepgaze_pytorch.")]:
        monkeypatch.delitem(sys.modules, name)


class _FakeDeepGazeIIE(torch.nn.Module):
    """A small stand-in for deepgaze_pytorch.DeepGazeIIE: records its inputs, returns a log density; its one
    weight ``gain`` comes from the checkpoint the builder loads."""

    instances: list[_FakeDeepGazeIIE] = []

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.pretrained = pretrained
        self.gain = torch.nn.Parameter(torch.tensor(1 / 50))
        self.calls: list[tuple[torch.Tensor, torch.Tensor, bool]] = []
        self.instances.append(self)

    def forward(self, images: torch.Tensor, centerbias: torch.Tensor) -> torch.Tensor:
        self.calls.append((images.clone(), centerbias.clone(), torch.is_inference_mode_enabled()))
        logits = images.mean(dim=1) * self.gain + centerbias
        return (logits - logits.logsumexp(dim=(1, 2), keepdim=True))[:, None]


@pytest.fixture
def fake_deepgaze(monkeypatch: pytest.MonkeyPatch) -> type[_FakeDeepGazeIIE]:
    """deepgaze_pytorch as the small fake, with the modules whose downloads the builder switches off."""
    _forget_deepgaze(monkeypatch)
    names = ["", ".features", ".features.shapenet", ".features.efficientnet_pytorch"]
    names.append(".features.efficientnet_pytorch.model")
    modules = {name: types.ModuleType(f"deepgaze_pytorch{name}") for name in names}
    modules[""].DeepGazeIIE = _FakeDeepGazeIIE
    modules[".features.shapenet"].load_model = lambda name: pytest.fail("downloads from Bitbucket")
    modules[".features.efficientnet_pytorch.model"].load_pretrained_weights = lambda *a: pytest.fail("downloads")
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, f"deepgaze_pytorch{name}", module)
    monkeypatch.setattr(_FakeDeepGazeIIE, "instances", [])
    return _FakeDeepGazeIIE


def _checkpoint(path: Path, gain: float = 1 / 50) -> Path:
    torch.save({"gain": torch.tensor(gain)}, path)
    return path


def test_deepgaze_adapter_feeds_0_255_pixels_and_zoomed_centre_bias(fake_deepgaze, tmp_path) -> None:
    np.save(tmp_path / "centerbias_mit1003.npy", _two_valued_template())
    predictor = build_predictor(
        "deepgaze_iie",
        centerbias_path=tmp_path / "centerbias_mit1003.npy",
        weights_path=_checkpoint(tmp_path / "deepgaze2e.pth", gain=0.05),
    )
    assert (predictor.name, predictor.label) == ("deepgaze_iie", "DeepGaze IIE")
    images = _noise_batch(n=2, height=4, width=6)

    maps = predictor.predict(images)

    (model,) = fake_deepgaze.instances
    assert not model.pretrained and not model.training  # built without weights, then the checkpoint loaded
    ((fed_images, fed_bias, inference_mode),) = model.calls
    assert inference_mode
    assert fed_images.dtype == torch.float32
    np.testing.assert_array_equal(fed_images.numpy(), images.transpose(0, 3, 1, 2))
    expected_bias = zoom_centerbias(_two_valued_template(), (4, 6))
    for one in fed_bias:
        np.testing.assert_allclose(one.numpy(), expected_bias, rtol=1e-6)
    assert maps.shape == (2, 4, 6) and maps.dtype == np.float32
    logits = images.astype(np.float64).mean(axis=3) * 0.05 + expected_bias  # the checkpoint's gain
    expected = logits - logsumexp(logits, axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_deepgaze_missing_centre_bias_file_names_it(fake_deepgaze, tmp_path) -> None:
    with pytest.raises(DataError, match="missing.npy"):
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "missing.npy", weights_path=tmp_path / "w.pth")


def _raises(exc: BaseException):
    def constructor(self, pretrained: bool = True) -> None:
        raise exc

    return constructor


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        # torch.hub pages GitHub's API on a cold cache; rate-limited, its reply lacks the key it reads.
        (_raises(KeyError("tree")), "KeyError: 'tree'"),
        (_raises(OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")), "OSError: <urlopen"),
        (_raises(ModuleNotFoundError("No module named 'einops'")), "ModuleNotFoundError: No module named 'einops'"),
        ("missing key", "RuntimeError: Error(s) in loading state_dict"),
        ("not a checkpoint", "not a readable weight file"),
    ],
)
def test_every_failure_while_building_deepgaze_is_one_line_naming_its_cause(
    monkeypatch: pytest.MonkeyPatch, fake_deepgaze, tmp_path, failure, cause
) -> None:
    weights = _checkpoint(tmp_path / "deepgaze2e.pth")
    if failure == "missing key":
        torch.save({}, weights)
    elif failure == "not a checkpoint":
        weights.write_bytes(b"<html>rate limited</html>")
    else:
        monkeypatch.setattr(fake_deepgaze, "__init__", failure)
    np.save(tmp_path / "cb.npy", np.zeros((8, 8)))
    hub_load = torch.hub.load
    with pytest.raises(PredictorUnavailable) as info:
        build_predictor("deepgaze_iie", centerbias_path=tmp_path / "cb.npy", weights_path=weights)
    message = str(info.value)
    assert cause in message and "deepgaze2e.pth" in message and "\n" not in message
    assert "fixations.predictor: spectral_residual" in message and DEEPGAZE_COMMIT in message
    assert torch.hub.load is hub_load  # the download switches are undone


def test_building_deepgaze_refuses_any_download_and_restores_torch_hub(fake_deepgaze) -> None:
    originals = (torch.hub.load, torch.hub.load_state_dict_from_url, torch.utils.model_zoo.load_url)
    with deepgaze_backbones_offline():
        with pytest.raises(RuntimeError, match="rwightman/gen-efficientnet-pytorch"):
            torch.hub.load("rwightman/gen-efficientnet-pytorch", "efficientnet_b5")
        with pytest.raises(RuntimeError, match="download https://example.org/w.pth"):
            torch.utils.model_zoo.load_url("https://example.org/w.pth")
        densenet = torch.hub.load("pytorch/vision:v0.6.0", "densenet121", pretrained=True)
        assert isinstance(densenet, torchvision.models.DenseNet)  # the architecture, random weights, no download
    assert (torch.hub.load, torch.hub.load_state_dict_from_url, torch.utils.model_zoo.load_url) == originals


# --- The stand-in package with the real module layout and checkpoint keys (tests/standins) ----------------


STANDINS = ROOT / "tests" / "standins"


@pytest.fixture(scope="module")
def standin_checkpoint(tmp_path_factory) -> Iterator[Path]:
    """deepgaze2e.pth as the stand-in package's model saves it: the real keys and shapes, random weights."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.syspath_prepend(str(STANDINS))
        _forget_deepgaze(monkeypatch)
        deepgaze_pytorch = importlib.import_module("deepgaze_pytorch")
        torch.manual_seed(0)
        with deepgaze_backbones_offline():
            model = deepgaze_pytorch.DeepGazeIIE(pretrained=False)
        path = tmp_path_factory.mktemp("deepgaze") / "deepgaze2e.pth"
        torch.save(model.state_dict(), path)
        yield path


@pytest.fixture
def standin_deepgaze(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(STANDINS))
    _forget_deepgaze(monkeypatch)
    return importlib.import_module("deepgaze_pytorch")


def test_deepgaze_iie_is_built_from_its_checkpoint_alone_without_downloads(
    standin_deepgaze, standin_checkpoint, tmp_path, one_thread
) -> None:
    np.save(tmp_path / "cb.npy", _standin_centerbias())
    predictor = build_predictor("deepgaze_iie", centerbias_path=tmp_path / "cb.npy", weights_path=standin_checkpoint)
    expected = torch.load(standin_checkpoint, weights_only=True)
    loaded = predictor.model.state_dict()
    assert list(loaded) == list(expected)
    assert all(torch.equal(loaded[key], value) for key, value in expected.items())  # every backbone weight too
    maps = predictor.predict(_noise_batch(n=2, height=64, width=64))
    assert maps.shape == (2, 64, 64) and np.all(np.isfinite(maps))
    np.testing.assert_allclose(logsumexp(maps.astype(np.float64), axis=(1, 2)), 0.0, atol=1e-4)


def test_the_stand_in_checkpoint_has_deepgaze2e_keys(standin_checkpoint) -> None:
    state = torch.load(standin_checkpoint, weights_only=True)
    assert len(state) == 5461 and sum(value.numel() for value in state.values()) == 104_572_367
    assert "models.0.features.features.1.module.layer4.2.conv2.weight" in state  # ShapeNet-C's ResNet-50
    assert "models.1.features.features.1._blocks.35._project_conv.weight" in state  # EfficientNet-B5
    assert "models.3.finalizers.29.gauss.sigma" in state  # 30 readouts per backbone


def _real_deepgaze() -> str | None:
    """Where a real deepgaze_pytorch is installed (not this stand-in), or None."""
    found = [Path(entry) / "deepgaze_pytorch" for entry in sys.path if entry and Path(entry).resolve() != STANDINS]
    return next((str(path.parent) for path in found if (path / "deepgaze2e.py").is_file()), None)


@pytest.mark.skipif(_real_deepgaze() is None, reason="the real deepgaze_pytorch is not installed (not on PyPI)")
def test_the_real_package_builds_offline_with_the_stand_ins_keys(standin_checkpoint, tmp_path) -> None:
    """Where the pinned deepgaze_pytorch is installed: the builder's download switches fit it, and its model has
    exactly the stand-in's keys and shapes, so the stand-in checkpoint loads strictly into the real model."""
    script = (
        "import json, sys, numpy as np, torch\n"
        "from human_saliency.maps.predictors import build_predictor\n"
        "import deepgaze_pytorch\n"
        "assert 'standins' not in deepgaze_pytorch.__file__, deepgaze_pytorch.__file__\n"
        "np.save(sys.argv[2], np.zeros((16, 16)))\n"
        "p = build_predictor('deepgaze_iie', centerbias_path=sys.argv[2], weights_path=sys.argv[1])\n"
        "maps = p.predict(np.random.default_rng(0).integers(0, 256, (1, 128, 128, 3), dtype=np.uint8))\n"
        "print(json.dumps([float(np.exp(maps.astype(float)).sum()), deepgaze_pytorch.__file__]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), _real_deepgaze()])}
    result = subprocess.run(
        [sys.executable, "-c", script, str(standin_checkpoint), str(tmp_path / "cb.npy")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    total, where = json.loads(result.stdout.strip().splitlines()[-1])
    assert total == pytest.approx(1.0, abs=1e-4) and "standins" not in where


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


def test_paper_deepgaze_files_are_fetched_recorded_and_verified(
    fake_deepgaze, http_server, tmp_path, downloads_lock
) -> None:
    fixations = load_params(ROOT / "configs" / "paper.yaml").fixations
    template = _standin_centerbias()
    data = {"centerbias": _npy_bytes(template), "checkpoint": _torch_bytes({"gain": torch.tensor(0.05)})}
    urls = {name: _served(http_server, getattr(fixations, name).url, data[name]) for name in data}
    assert urlsplit(urls["checkpoint"]).path == "/matthias-k/DeepGaze/releases/download/v1.0.0/deepgaze2e.pth"
    cache = tmp_path / "weights"

    def fetch_and_build():  # as stages/fixations.py does
        paths = {
            name: fetch_weights(urls[name], getattr(fixations, name).filename, cache, getattr(fixations, name).sha256)
            for name in data
        }
        return build_predictor("deepgaze_iie", centerbias_path=paths["centerbias"], weights_path=paths["checkpoint"])

    maps = fetch_and_build().predict(_noise_batch(n=2))
    assert [seen.path for seen in http_server.requests] == [urlsplit(urls[name]).path for name in data]
    recorded = json.loads(downloads_lock.read_text())["files"]  # no SHA-256 is published for either
    assert {recorded[urls[name]]["sha256"] for name in data} == {hashlib.sha256(b).hexdigest() for b in data.values()}
    logits = _noise_batch(n=2).astype(np.float64).mean(axis=3) * 0.05 + zoom_centerbias(template, (48, 64))
    np.testing.assert_allclose(maps, logits - logsumexp(logits, axis=(1, 2), keepdims=True), atol=1e-5)

    fetch_and_build()  # a second run finds both files in the cache
    assert len(http_server.requests) == 2


def test_centerbias_sha256_mismatch_names_the_file_and_deletes_it(http_server, tmp_path) -> None:
    centerbias = load_params(ROOT / "configs" / "paper.yaml").fixations.centerbias
    url = _served(http_server, centerbias.url, _npy_bytes(_standin_centerbias()))
    with pytest.raises(DownloadError, match=r"centerbias_mit1003\.npy: SHA-256 mismatch"):
        fetch_weights(url, centerbias.filename, tmp_path / "weights", sha256="0" * 64)
    assert not (tmp_path / "weights" / "centerbias_mit1003.npy").exists()
