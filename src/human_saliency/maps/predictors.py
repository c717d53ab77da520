"""Predicted eye fixations: one registry of models that map RGB images to log-density maps.

Every predictor returns N×H×W float32 log densities (each map's logsumexp is 0) at the input size.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.utils.model_zoo
import torchvision
from scipy import ndimage
from scipy.special import logsumexp
from torch import nn

from human_saliency.errors import DataError, HumanSaliencyError
from human_saliency.io.weights import load_tensors

logger = logging.getLogger(__name__)

Images = np.ndarray | Sequence[np.ndarray]

# The commit the deepgaze extra pins: it imports (the repository's HEAD needs clip and einops, undeclared) and has
# the batch normaliser fix of 40deace (tags up to v1.1.0 normalise only the first image of a batch).
DEEPGAZE_COMMIT = "874f12e1ee519860f49860638cf7f6375956d45a"
DEEPGAZE_INSTALL = (
    f"pip install -e '.[deepgaze]' (or pip install git+https://github.com/matthias-k/DeepGaze.git@{DEEPGAZE_COMMIT})"
)
DEEPGAZE_HUB_REPO = "pytorch/vision:v0.6.0"
OFFLINE_ALTERNATIVE = "fixations.predictor: spectral_residual"
_LOG_EPS = 1e-12


class PredictorUnavailable(HumanSaliencyError):
    """A fixation predictor cannot be built here (missing package or weights)."""


class FixationPredictor(Protocol):
    """What every registered predictor offers."""

    name: str
    label: str

    def predict(self, images: Images) -> np.ndarray:
        """N×H×W float32 log densities for N RGB uint8 images of one size."""
        ...


def as_batch(images: Images) -> np.ndarray:
    """Stack images into an N×H×W×3 uint8 array, checking shape and dtype."""
    batch = images if isinstance(images, np.ndarray) else np.stack(_same_size(images))
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.shape[0] == 0:
        raise ValueError(f"images must be N×H×W×3 with N >= 1, got shape {batch.shape}")
    if batch.dtype != np.uint8:
        raise ValueError(f"images must be uint8 RGB, got dtype {batch.dtype}")
    return batch


def _same_size(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    shapes = {np.shape(image) for image in images}
    if len(shapes) != 1:
        raise ValueError(f"images must share one working size, got shapes {sorted(shapes)}")
    return list(images)


def log_normalize(log_maps: np.ndarray) -> np.ndarray:
    """Shift each map of an N×H×W stack so that its logsumexp is 0, as float32."""
    log_maps = np.asarray(log_maps, dtype=np.float64)
    return (log_maps - logsumexp(log_maps, axis=(1, 2), keepdims=True)).astype(np.float32)


# --- DeepGaze IIE (Linardos, Kümmerer, Press & Bethge 2021) -------------------------------------


def zoom_centerbias(template: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour zoom of a centre-bias log density to ``shape``, renormalised."""
    factors = (shape[0] / template.shape[0], shape[1] / template.shape[1])
    zoomed = ndimage.zoom(np.asarray(template, dtype=np.float64), factors, order=0, mode="nearest")
    return zoomed - logsumexp(zoomed)


def deepgaze_inputs(images: Images, centerbias: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepGaze IIE's inputs: B×3×H×W float pixels in 0–255 and the B×H×W centre bias.

    The pixels stay in 0–255 because the model's normaliser divides by 255 itself; the original
    study fed 0–1 pixels, which the model sees as a near-black image.
    """
    batch = as_batch(images)
    n, height, width, _ = batch.shape
    image_tensor = torch.tensor(batch).permute(0, 3, 1, 2).to(torch.float32)
    bias = torch.from_numpy(zoom_centerbias(centerbias, (height, width))).to(torch.float32)
    return image_tensor, bias.expand(n, height, width).contiguous()


class DeepGazeIIE:
    """The pretrained DeepGaze IIE ensemble with the MIT1003 centre bias."""

    name = "deepgaze_iie"
    label = "DeepGaze IIE"

    def __init__(self, model: torch.nn.Module, centerbias: np.ndarray, device: str) -> None:
        self.model = model.to(device).eval()
        self.centerbias = centerbias
        self.device = torch.device(device)

    def predict(self, images: Images) -> np.ndarray:
        """One batched forward pass; the model already returns B×1×H×W log densities."""
        image_tensor, centerbias_tensor = deepgaze_inputs(images, self.centerbias)
        with torch.inference_mode():
            out = self.model(image_tensor.to(self.device), centerbias_tensor.to(self.device))
        # Renormalise in float64: the model's float32 logsumexp drifts slightly at large H×W.
        return log_normalize(out[:, 0].double().cpu().numpy())


def load_centerbias(path: Path) -> np.ndarray:
    """Read a 2-D centre-bias log density (``centerbias_mit1003.npy``)."""
    try:
        template = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        msg = f"{path}: centre-bias file not found (the fixations stage fetches it)"
        raise DataError(msg) from None
    except ValueError as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if template.ndim != 2 or not np.all(np.isfinite(template)):
        raise DataError(f"{path}: expected a finite 2-D log density, got shape {template.shape}")
    return template


class _UnexpectedDownload(RuntimeError):
    """Building DeepGaze IIE tried to fetch something the pinned build never fetches."""


@contextmanager
def _patched(target: object, name: str, value: object) -> Iterator[None]:
    previous = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, previous)


def _refuse_download(url: str, *args: object, **kwargs: object) -> None:
    raise _UnexpectedDownload(f"it tried to download {url}")


def _torchvision_without_weights(repo_or_dir: str, model: str, *args: object, **kwargs: object) -> nn.Module:
    """``torch.hub.load('pytorch/vision:v0.6.0', name, pretrained=True)`` as torchvision's own ``name`` without
    weights: the same architecture and parameter names, no GitHub API call, no download."""
    if repo_or_dir != DEEPGAZE_HUB_REPO or not hasattr(torchvision.models, model):
        raise _UnexpectedDownload(f"it called torch.hub.load({repo_or_dir!r}, {model!r})")
    kwargs.pop("pretrained", None)
    return getattr(torchvision.models, model)(*args, weights=None, **kwargs)


def _shapenet_without_weights(model_name: str) -> nn.Module:
    """What ``deepgaze_pytorch.features.shapenet.load_model`` builds for ShapeNet-C, a torchvision ResNet-50 under a
    DataParallel-like ``module`` name, without its Bitbucket checkpoint."""
    if "resnet50" not in model_name:
        raise _UnexpectedDownload(f"it asked for the ShapeNet model {model_name!r}")
    return nn.Sequential(OrderedDict([("module", torchvision.models.resnet50(weights=None))]))


def _no_weights(*args: object, **kwargs: object) -> None:
    """Stands in for efficientnet_pytorch's ``load_pretrained_weights`` (a GitHub release download)."""


@contextmanager
def deepgaze_backbones_offline() -> Iterator[None]:
    """While the block runs, ``deepgaze_pytorch.DeepGazeIIE(pretrained=False)`` builds its four backbones without
    their pretrained weights, which the strict load of deepgaze2e.pth replaces anyway.

    At the pinned commit each backbone fetches its weights in its constructor, whatever ``pretrained`` says:
    ShapeNet-C's ResNet-50 from Bitbucket (``features.shapenet.load_model``), EfficientNet-B5 from GitHub releases
    (``features.efficientnet_pytorch.model.load_pretrained_weights``), DenseNet-201 and ResNeXt-50 through
    ``torch.hub.load('pytorch/vision:v0.6.0', ...)``, which pages GitHub's API on a cold cache. Those three entry
    points are replaced by the same architectures without weights, and any other download through torch.hub or
    ``torch.utils.model_zoo`` is refused, so a package that fetches more fails here instead of going online.
    """
    shapenet = importlib.import_module("deepgaze_pytorch.features.shapenet")
    efficientnet = importlib.import_module("deepgaze_pytorch.features.efficientnet_pytorch.model")
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(shapenet, "load_model", _shapenet_without_weights))
        stack.enter_context(_patched(efficientnet, "load_pretrained_weights", _no_weights))
        stack.enter_context(_patched(torch.hub, "load", _torchvision_without_weights))
        stack.enter_context(_patched(torch.hub, "load_state_dict_from_url", _refuse_download))
        stack.enter_context(_patched(torch.utils.model_zoo, "load_url", _refuse_download))
        yield


def _import_deepgaze() -> ModuleType:
    """The installed deepgaze_pytorch; PredictorUnavailable when it is missing or does not import."""
    try:
        return importlib.import_module("deepgaze_pytorch")
    except ModuleNotFoundError as exc:
        if exc.name == "deepgaze_pytorch":
            raise PredictorUnavailable(
                f"deepgaze_iie needs the optional package deepgaze_pytorch, which is not installed: install it "
                f"with {DEEPGAZE_INSTALL}, or set {OFFLINE_ALTERNATIVE} to use the offline predictor"
            ) from None
        cause = exc
    except Exception as exc:  # an import can fail any way: it is reported, never swallowed
        cause = exc
    raise PredictorUnavailable(
        f"deepgaze_iie: deepgaze_pytorch is installed but does not import ({_one_line(cause)}), as at the "
        f"repository's HEAD: install the pinned commit with {DEEPGAZE_INSTALL}, or set {OFFLINE_ALTERNATIVE}"
    ) from None


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


def _build_deepgaze_iie(*, centerbias_path: Path | None, weights_path: Path | None, device: str) -> DeepGazeIIE:
    """DeepGaze IIE from the pinned deepgaze2e.pth alone: the four backbones are built without weights (no
    Bitbucket, no GitHub API, no unpinned download) and the checkpoint is loaded strictly with weights_only."""
    if centerbias_path is None or weights_path is None:
        raise ValueError("deepgaze_iie needs centerbias_path (centerbias_mit1003.npy), weights_path (deepgaze2e.pth)")
    module = _import_deepgaze()
    centerbias = load_centerbias(Path(centerbias_path))
    try:
        state = load_tensors(weights_path)
        with deepgaze_backbones_offline():
            model = module.DeepGazeIIE(pretrained=False)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # any failure is one line naming its cause (ImportError, RuntimeError, OSError, ...)
        raise PredictorUnavailable(
            f"deepgaze_iie could not be built from {Path(weights_path).name} ({_one_line(exc)}): it needs "
            f"deepgaze_pytorch at the pinned commit ({DEEPGAZE_INSTALL}) and the deepgaze2e.pth that "
            f"fixations.checkpoint names, or set {OFFLINE_ALTERNATIVE} to use the offline predictor"
        ) from None
    return DeepGazeIIE(model, centerbias, device)


# --- Spectral residual (Hou & Zhang, CVPR 2007) -------------------------------------------------


class SpectralResidual:
    """Spectral residual saliency: no weights, so it runs anywhere.

    The gray image is shrunk to ``width`` pixels wide; the residual of its log amplitude spectrum
    (minus its 3×3 mean) is recombined with the phase, and the squared magnitude of the inverse
    transform is blurred with a Gaussian of ``sigma`` pixels (of the shrunk map) and resized back.
    Amplitudes are floored at ``floor`` times the largest one: flat synthetic backgrounds give exact
    spectral zeros whose log would otherwise dominate the residual and put the peak on noise.
    """

    name = "spectral_residual"
    label = "spectral residual (Hou & Zhang 2007)"

    def __init__(self, width: int = 64, sigma: float = 3.0, floor: float = 1e-3) -> None:
        self.width = width
        self.sigma = sigma
        self.floor = floor

    def density(self, image: np.ndarray) -> np.ndarray:
        """The H×W saliency of one RGB uint8 image as a density summing to 1."""
        height, width = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
        if np.ptp(gray) == 0:  # no structure at all: every location is equally likely
            return np.full((height, width), 1.0 / (height * width))
        small_h = max(1, round(self.width * height / width))
        small = cv2.resize(gray, (self.width, small_h), interpolation=cv2.INTER_AREA)
        spectrum = np.fft.fft2(small)
        amplitude = np.abs(spectrum)
        log_amplitude = np.log(np.maximum(amplitude, self.floor * amplitude.max()))
        # The spectrum is periodic, so the 3×3 mean filter wraps around its edges.
        residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="wrap")
        saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
        saliency = ndimage.gaussian_filter(saliency, self.sigma, mode="nearest")
        saliency = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)
        return saliency / saliency.sum()

    def predict(self, images: Images) -> np.ndarray:
        """N×H×W float32 log densities."""
        batch = as_batch(images)
        # _LOG_EPS keeps log finite where the map underflows to 0; log_normalize re-closes the sum.
        return log_normalize(np.stack([np.log(self.density(image) + _LOG_EPS) for image in batch]))


def _build_spectral_residual(
    *, centerbias_path: Path | None, weights_path: Path | None, device: str
) -> SpectralResidual:
    return SpectralResidual()


# --- Centre bias (the floor baseline) -----------------------------------------------------------


class CenterBias:
    """One centred anisotropic Gaussian for every image; sigma = ``sigma_fraction`` of each side."""

    name = "center_bias"
    label = "centre-bias Gaussian"

    def __init__(self, sigma_fraction: float = 0.25) -> None:
        self.sigma_fraction = sigma_fraction

    def log_density(self, height: int, width: int) -> np.ndarray:
        """The H×W log density, up to normalisation."""
        ys = (np.arange(height) - (height - 1) / 2) / (self.sigma_fraction * height)
        xs = (np.arange(width) - (width - 1) / 2) / (self.sigma_fraction * width)
        return -0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2)

    def predict(self, images: Images) -> np.ndarray:
        """N×H×W float32 log densities, identical across the batch."""
        n, height, width, _ = as_batch(images).shape
        one = log_normalize(self.log_density(height, width)[None])
        return np.repeat(one, n, axis=0)


def _build_center_bias(*, centerbias_path: Path | None, weights_path: Path | None, device: str) -> CenterBias:
    return CenterBias()


PREDICTORS: dict[str, Callable[..., FixationPredictor]] = {
    "deepgaze_iie": _build_deepgaze_iie,
    "spectral_residual": _build_spectral_residual,
    "center_bias": _build_center_bias,
}


def build_predictor(
    name: str,
    *,
    centerbias_path: Path | None = None,
    weights_path: Path | None = None,
    device: str = "cpu",
) -> FixationPredictor:
    """Build the fixation predictor registered under ``name``.

    ``centerbias_path`` and ``weights_path``: the fetched files a predictor needs (DeepGaze IIE: the MIT1003 centre
    bias and deepgaze2e.pth; the others need none). Building never downloads anything.
    """
    if name not in PREDICTORS:
        raise ValueError(f"unknown fixation predictor {name!r}; known: {', '.join(PREDICTORS)}")
    predictor = PREDICTORS[name](centerbias_path=centerbias_path, weights_path=weights_path, device=device)
    logger.info("fixation predictor: %s on %s", predictor.label, device)
    return predictor
