"""Predicted eye fixations: one registry of models that map RGB images to log-density maps.

Every predictor returns N×H×W float32 log densities (each map's logsumexp is 0) at the input size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from scipy import ndimage
from scipy.special import logsumexp

from human_saliency.errors import DataError, HumanSaliencyError

logger = logging.getLogger(__name__)

Images = np.ndarray | Sequence[np.ndarray]

DEEPGAZE_INSTALL = (
    "pip install 'human-saliency[deepgaze]' (or pip install git+https://github.com/matthias-k/DeepGaze.git)"
)
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
        msg = f"{path}: centre-bias file not found (the download stage fetches it)"
        raise DataError(msg) from None
    except ValueError as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if template.ndim != 2 or not np.all(np.isfinite(template)):
        raise DataError(f"{path}: expected a finite 2-D log density, got shape {template.shape}")
    return template


@contextmanager
def torch_hub_dir(path: Path) -> Iterator[None]:
    """Point torch.hub's cache (where ``load_state_dict_from_url`` and ``torch.hub.load`` save) at ``path``."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(path)
    try:
        yield
    finally:
        torch.hub.set_dir(previous)


def _build_deepgaze_iie(*, centerbias_path: Path | None, device: str, cache_dir: Path | None) -> DeepGazeIIE:
    try:
        import deepgaze_pytorch
    except ImportError as exc:
        raise PredictorUnavailable(
            f"deepgaze_iie needs the optional package deepgaze_pytorch ({exc}): install it with "
            f"{DEEPGAZE_INSTALL}, or set {OFFLINE_ALTERNATIVE} to use the offline predictor"
        ) from None
    if centerbias_path is None:
        raise ValueError("deepgaze_iie needs centerbias_path (centerbias_mit1003.npy)")
    centerbias = load_centerbias(Path(centerbias_path))
    try:
        # Its weights and backbones download through torch.hub: keep them with the other weights.
        hub = Path(cache_dir) / "torch_hub" if cache_dir is not None else Path(torch.hub.get_dir())
        with torch_hub_dir(hub):
            model = deepgaze_pytorch.DeepGazeIIE(pretrained=True)
    except OSError as exc:  # the weights download once from GitHub releases and the torch hubs
        raise PredictorUnavailable(
            f"deepgaze_iie could not fetch its pretrained weights ({exc}): it needs the internet "
            f"once, or set {OFFLINE_ALTERNATIVE} to use the offline predictor"
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


def _build_spectral_residual(*, centerbias_path: Path | None, device: str, cache_dir: Path | None) -> SpectralResidual:
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


def _build_center_bias(*, centerbias_path: Path | None, device: str, cache_dir: Path | None) -> CenterBias:
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
    device: str = "cpu",
    cache_dir: Path | None = None,
) -> FixationPredictor:
    """Build the fixation predictor registered under ``name``.

    ``cache_dir``: the weights cache; DeepGaze IIE's pretrained weights download once into its ``torch_hub``
    (None: torch.hub's own cache).
    """
    if name not in PREDICTORS:
        raise ValueError(f"unknown fixation predictor {name!r}; known: {', '.join(PREDICTORS)}")
    predictor = PREDICTORS[name](centerbias_path=centerbias_path, device=device, cache_dir=cache_dir)
    logger.info("fixation predictor: %s on %s", predictor.label, device)
    return predictor
