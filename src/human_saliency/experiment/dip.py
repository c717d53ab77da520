"""Deep Image Prior inpainting (Ulyanov et al., CVPR 2018) with the study's settings, several images at once.

Each image gets its own randomly initialised ResNet generator fitted to its known pixels only, as
in the study; :class:`GroupedResNet` runs B such generators in one forward pass as grouped
convolutions, so batching changes the speed and never an image's result.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

logger = logging.getLogger(__name__)

# The study's generator and optimisation settings (DIP's inpainting notebook, ResNet variant).
INPUT_DEPTH = 32
CHANNELS = 32
BLOCKS = 8
ITERATIONS = 4001
LR = 0.001
REG_NOISE_STD = 0.03
# DIP draws its fixed input from U(0, 1) scaled by 1/10.
NOISE_SCALE = 0.1


def _conv(n: int, c_in: int, c_out: int, *, reflect: bool = False, bias: bool = True) -> nn.Conv2d:
    """3×3 convolution for n independent generators: groups=n keeps each generator to its own channels."""
    return nn.Conv2d(
        n * c_in, n * c_out, 3, padding=1, padding_mode="reflect" if reflect else "zeros", groups=n, bias=bias
    )


class _Residual(nn.Module):
    """x + conv-BN-LeakyReLU-conv-BN(x), DIP's residual block (zero padding, no conv bias before BN)."""

    def __init__(self, n: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(n, channels, channels, bias=False),
            nn.BatchNorm2d(n * channels),
            nn.LeakyReLU(0.2),
            _conv(n, channels, channels, bias=False),
            nn.BatchNorm2d(n * channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GroupedResNet(nn.Module):
    """``n`` independent DIP ResNet generators side by side, mapping 1×(n·D)×H×W noise to 1×(n·3)×H×W images.

    Each is DIP's ResNet: a reflection-padded conv and LeakyReLU(0.2), ``blocks`` residual blocks,
    conv and BatchNorm, a reflection-padded conv to RGB and a sigmoid.
    Generator b owns channels [b·C, (b+1)·C) of every layer. Grouped convolutions keep its weights
    to those channels, and BatchNorm's per-channel statistics over (1, H, W) are exactly those a
    lone generator sees with a batch of one image, so each generator computes what it would alone.
    """

    def __init__(
        self,
        n: int,
        *,
        input_depth: int = INPUT_DEPTH,
        channels: int = CHANNELS,
        blocks: int = BLOCKS,
        out_channels: int = 3,
    ) -> None:
        super().__init__()
        self.n = n
        self.net = nn.Sequential(
            _conv(n, input_depth, channels, reflect=True),
            nn.LeakyReLU(0.2),
            *[_Residual(n, channels) for _ in range(blocks)],
            _conv(n, channels, channels),
            nn.BatchNorm2d(n * channels),
            _conv(n, channels, out_channels, reflect=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def init_weights(self, generators: Sequence[torch.Generator]) -> None:
        """Draw generator b's conv weights from ``generators[b]`` only (PyTorch's default U(±1/√fan_in))."""
        if len(generators) != self.n:
            raise ValueError(f"need one torch.Generator per generator ({self.n}), got {len(generators)}")
        for module in self.net.modules():
            if not isinstance(module, nn.Conv2d):
                continue
            bound = 1.0 / (module.in_channels // self.n * 9) ** 0.5
            params = [p.view(self.n, -1) for p in (module.weight, module.bias) if p is not None]
            for b, gen in enumerate(generators):
                for param in (p[b] for p in params):
                    drawn = torch.rand(param.shape, generator=gen, device=param.device)
                    param.copy_(drawn.mul_(2 * bound).sub_(bound))


def _per_image(
    draw: Callable[..., torch.Tensor],
    generators: Sequence[torch.Generator],
    shape: tuple[int, ...],
    device: torch.device,
) -> torch.Tensor:
    """One ``draw`` (torch.rand / torch.randn) of ``shape`` per generator, stacked into channels-last 1×(n·D)×H×W."""
    stacked = torch.cat([draw(shape, generator=g, device=device) for g in generators]).unsqueeze(0)
    return stacked.contiguous(memory_format=torch.channels_last)


def fit(
    images: torch.Tensor,
    known: torch.Tensor,
    *,
    seeds: Sequence[int],
    iterations: int = ITERATIONS,
    lr: float = LR,
    reg_noise_std: float = REG_NOISE_STD,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit one DIP generator per image to its known pixels; returns (B×3×H×W output in [0,1], iterations×B losses).

    ``images`` is B×3×H×W float in [0, 1], ``known`` B×1×H×W bool (True = pixel kept); both on the
    device to run on. The loss of image b is the MSE over its known pixels only. Image b's
    randomness (weights, fixed input, per-iteration input jitter) comes from ``seeds[b]`` alone.
    """
    n, _, height, width = images.shape
    if len(seeds) != n:
        raise ValueError(f"need one seed per image ({n}), got {len(seeds)}")
    device = images.device
    generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    net = GroupedResNet(n).to(device)
    net.init_weights(generators)
    # Channels-last: oneDNN's grouped convolutions and BatchNorm run faster in it (cuDNN's too).
    net = net.to(memory_format=torch.channels_last)
    shape = (INPUT_DEPTH, height, width)
    fixed_input = NOISE_SCALE * _per_image(torch.rand, generators, shape, device)
    weight = known.to(images.dtype)
    n_known = (weight.sum(dim=(1, 2, 3)) * images.shape[1]).clamp_min(1.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    losses = torch.empty(iterations, n, device=device)  # kept on the device: no sync per iteration
    for step in tqdm(range(iterations), desc="DIP iterations", leave=False):
        net_input = fixed_input
        if reg_noise_std > 0:  # DIP's "reg noise": a fresh perturbation of the input every iteration
            net_input = fixed_input + reg_noise_std * _per_image(torch.randn, generators, shape, device)
        out = net(net_input).reshape(n, -1, height, width)
        per_image = ((out - images) ** 2 * weight).sum(dim=(1, 2, 3)) / n_known
        optimizer.zero_grad(set_to_none=True)
        # A sum, not a mean: generator b's gradient is then exactly that of its own image's loss.
        per_image.sum().backward()
        optimizer.step()
        losses[step] = per_image.detach()
    with torch.no_grad():
        output = net(fixed_input).reshape(n, -1, height, width)
    return output, losses.cpu()


def image_seeds(seed: int | Sequence[int], count: int) -> list[int]:
    """Per-image seeds: given as a sequence, or derived from (seed, position) so batching never changes them."""
    if isinstance(seed, numbers.Integral):
        return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(count)]
    if len(seed) != count:
        raise ValueError(f"need one seed per image ({count}), got {len(seed)}")
    return [int(s) for s in seed]


def _check_pair(index: int, image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image {index} must be H×W×3 uint8, got shape {image.shape} dtype {image.dtype}")
    if mask.shape != image.shape[:2] or mask.dtype != bool:
        raise ValueError(f"mask {index} must be bool {image.shape[:2]}, got shape {mask.shape} dtype {mask.dtype}")
    if mask.all():
        raise ValueError(f"mask {index} covers the whole image: DIP has no known pixel to fit")


def dip_inpaint_batch(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    iterations: int = ITERATIONS,
    lr: float = LR,
    seed: int | Sequence[int] = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    reg_noise_std: float = REG_NOISE_STD,
) -> list[np.ndarray]:
    """Inpaint the True pixels of each mask with DIP, ``batch_size`` images per pass; returns H×W×3 uint8 images.

    Images are grouped by size (no padding, so no pixel outside an image enters its loss or its
    BatchNorm statistics). Pixels outside the mask are returned unchanged. ``seed`` (or one seed
    per image) fixes each image's randomness whatever batch it lands in, so an image's result is
    mathematically independent of its companions; on CPU it is bit-identical in any batch of two
    or more. A lone image (or another device) runs other convolution kernels whose last-bit
    round-off DIP's long optimisation amplifies, so keep ``batch_size`` fixed for bit-reproducible outputs.
    """
    if len(images) != len(masks):
        raise ValueError(f"got {len(images)} images but {len(masks)} masks")
    if batch_size < 1 or iterations < 0:
        raise ValueError(f"batch_size must be >= 1 and iterations >= 0, got {batch_size} and {iterations}")
    images = [np.asarray(image) for image in images]
    masks = [np.asarray(mask) for mask in masks]
    for index, (image, mask) in enumerate(zip(images, masks, strict=True)):
        _check_pair(index, image, mask)
    seeds = image_seeds(seed, len(images))
    device = torch.device(device)
    results = [image.copy() for image in images]  # an empty mask needs no fitting
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, (image, mask) in enumerate(zip(images, masks, strict=True)):
        if mask.any():
            by_size.setdefault(image.shape, []).append(index)
    with tqdm(total=sum(map(len, by_size.values())), desc="DIP inpainting", unit="image") as bar:
        for group in by_size.values():
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                pixels = torch.from_numpy(np.stack([images[i] for i in chunk])).permute(0, 3, 1, 2)
                known = torch.from_numpy(~np.stack([masks[i] for i in chunk])).unsqueeze(1)
                output, losses = fit(
                    pixels.to(device, torch.float32) / 255.0,
                    known.to(device),
                    seeds=[seeds[i] for i in chunk],
                    iterations=iterations,
                    lr=lr,
                    reg_noise_std=reg_noise_std,
                )
                if iterations:
                    logger.debug("DIP images %s: final known-pixel MSE %s", chunk, losses[-1].tolist())
                filled = (output * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for j, i in enumerate(chunk):
                    results[i][masks[i]] = filled[j][masks[i]]
                bar.update(len(chunk))
    return results
