"""EigenCAM (Muhammad & Yeasin 2020, arXiv:2008.00299) on the model's device, from captured activations.

EigenCAM needs no gradients and no target: the map is the activations' first principal component.
The study passed a detection box "target" to grad-cam's EigenCAM; it had no effect, so none is taken here.

The projection is grad-cam's ``get_2d_projection_with_sign_correction``: centre the h·w × C activation matrix
A, project it on its first right singular vector, and flip when |min| > |max| (Seg-Eigen-CAM, Chung & Ying 2025,
eq. 13) so that ReLU keeps the object and not the background. grad-cam takes that vector from a float64 full SVD
on the CPU, per image; here the same projection A·v₁ = σ₁u₁ comes from the top eigenvector u₁ of the smaller
Gram matrix A·Aᵀ (h·w × h·w), found by a block Krylov iteration batched over the images in float32 on the
model's device, so only the finished maps leave it. ``tests/test_cam.py`` checks the maps against grad-cam's
projection; ``benchmarks/saliency_cost.py`` measures the cost.

Why block Krylov: the candidates, measured on the activations of every registry detector (random init, 512 px,
paper profile; 32 images) and timed on one 2048 × 25 × 25 ResNet-50 C5 (this CPU, one thread, median):

======================================================  =============================  ==========
float32 on the device unless said                        max per-pixel |Δ| vs grad-cam  ms / image
======================================================  =============================  ==========
float64 thin SVD on the CPU (this module until now)      2e-7                           302
eigh of the 625 × 625 Gram matrix A·Aᵀ                   5e-6                           38
torch.svd_lowrank (q=6, niter=2)                         0.2                            6.3
power iteration, 30 / 100 steps                          5e-2 / 1e-4                    16 / 47
subspace iteration, 16 vectors, 3 steps                  6e-3                           6.6
block Krylov, 8 vectors × 4 blocks, certified (kept)     6e-6 (3e-3 uncertified)        6.8
======================================================  =============================  ==========

Forming the Gram matrix alone (1.6 GFLOP) costs more than the iteration; power and subspace iteration stall on
the detectors whose leading eigenvalues are close (random-init SSDlite: λ₂/λ₁ = 0.92). A Krylov space converges
fastest per product with A, and a product with 8 vectors costs barely more than with one. No fixed number of
steps suits every spectrum, so each image's result is certified: its residual bounds the component's error
(Davis–Kahan, with the Ritz values' gap), which bounds the map's per-pixel error; an image whose bound exceeds
3e-4 (a third of the tolerance the tests hold the maps to) is redone exactly with the eigendecomposition of the
Gram matrix: 4 of the 20 images above with grids larger than 10 × 10 (grids up to 10 × 10 go there directly).

Maps are cropped at the right pixel. Each grid cell covers stride × stride input pixels, so a grid spans its
input padded to a multiple of the stride (by the detector or by its strided convolutions), and the detector
reports which of those pixels hold the image. The projection is computed over the cells that hold any image
pixel (a wholly padded cell would add a direction of variance that is not the image's), resized to the
pixels those cells span, cropped to the image's pixels, and only then resized to the working size. Keeping a
partly padded cell whole and stretching it over the image put features 12 % off at a 200 px input.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

BLOCK = 8  # vectors per Krylov block
DEPTH = 4  # Krylov blocks: the basis holds BLOCK·DEPTH vectors
CERTIFIED = 3e-4  # the largest bound on a map's per-pixel error accepted from the iteration
# Up to this many cells (SSD's, SSDlite's and the MobileNet R-CNN's 10 × 10 grids) the exact eigendecomposition
# costs no more than the iteration (2-3 ms for two images of 480-960 channels on one CPU thread).
EXACT_CELLS = 128
SEED = 0  # the iteration starts from a fixed Gaussian block, so the maps do not vary between runs


@torch.inference_mode()
def eigencam(
    activations: torch.Tensor,
    size: tuple[int, int],
    *,
    image_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """B×C×h×w activations → B×H×W float32 saliency maps in [0, 1] at ``size`` = (H, W), on their device.

    ``input_size``: the (rows, cols) of model input pixels the activations' grid spans (the padded input);
    ``image_size``: the top-left (rows, cols) of it that hold the image. None for both: the grid covers the
    image exactly. Steps: projection on each image's first principal component over the cells that hold the
    image, sign correction, ReLU, bilinear resize to the input pixels and crop to the image (when there is
    something to crop), bilinear resize to ``size``, min-max (a constant map becomes all zeros). An image
    whose activations hold inf gives a map of NaN (NaN activations count as 0, as in grad-cam).
    """
    if (image_size is None) != (input_size is None):
        raise ValueError("eigencam: give both image_size and input_size, or neither")
    if image_size is None or input_size is None:
        image_size = input_size = size
    (image_h, image_w), (input_h, input_w) = image_size, input_size
    if not (0 < image_h <= input_h and 0 < image_w <= input_w):
        raise ValueError(f"eigencam: image size {tuple(image_size)} does not fit in input size {tuple(input_size)}")
    grid_h, grid_w = activations.shape[-2:]
    rows, cols = -(-image_h * grid_h // input_h), -(-image_w * grid_w // input_w)  # cells holding any image pixel
    maps = first_component_projection(activations[..., :rows, :cols]).relu_().unsqueeze(1)
    # The input pixels the kept cells span: the padded input itself unless whole cells were padding.
    spanned = (round(rows * input_h / grid_h), round(cols * input_w / grid_w))
    if spanned != (image_h, image_w):  # else nothing to crop, and one resize is the same map less blurred
        maps = _resize(maps, spanned)[..., :image_h, :image_w]
    return _unit_range(_resize(maps, size).squeeze(1))


@torch.inference_mode()
def first_component_projection(activations: torch.Tensor) -> torch.Tensor:
    """B×C×h×w activations → B×h×w float32 projections on each image's first principal component, sign-corrected.

    The value of grad-cam's ``get_2d_projection_with_sign_correction``, computed on the activations' device.
    """
    batch, channels, height, width = activations.shape
    matrix = activations.reshape(batch, channels, height * width).float()  # Aᵀ: C × h·w for each image
    finite = torch.ones(batch, dtype=torch.bool, device=matrix.device)
    means = matrix.mean(-1, keepdim=True)
    if not means.isfinite().all():  # rare: NaN counts as 0 (as in grad-cam), inf spoils the image's map
        matrix = torch.nan_to_num(matrix, nan=0.0, posinf=math.inf, neginf=-math.inf)
        finite = matrix.isfinite().flatten(1).all(1)
        matrix = torch.where(finite[:, None, None], matrix, 0.0)
        means = matrix.mean(-1, keepdim=True)
    matrix = matrix - means
    if matrix.shape[-1] <= EXACT_CELLS:
        projections = _exact(matrix)
    else:
        projections, certified = _block_krylov(matrix)
        if not certified.all():  # a host synchronisation, as the finite check: two a batch, none per step
            redo = (~certified).nonzero().squeeze(1)
            projections[redo] = _exact(matrix[redo])
    low, high = projections.amin(-1), projections.amax(-1)
    projections = torch.where((low.abs() > high.abs())[:, None], -projections, projections)
    # Centred, a projection has mean zero, so its spread is at least its magnitude. One that is nearly a constant
    # offset is what constant activations leave (their mean's rounding error): zero, which min-max makes all zeros.
    constant = high - low <= 1e-4 * torch.maximum(high, -low)
    projections[constant] = 0.0
    projections[~finite] = math.nan
    return projections.reshape(batch, height, width)


def _exact(matrix: torch.Tensor) -> torch.Tensor:
    """A·v₁ for each B×C×n Aᵀ, from the eigendecomposition of the smaller of A·Aᵀ (n×n) and Aᵀ·A (C×C)."""
    channels, cells = matrix.shape[-2:]
    scale = torch.linalg.vector_norm(matrix, ord=math.inf, dim=(-2, -1), keepdim=True)
    scale = torch.where(scale > 0, scale, 1.0)
    matrix = matrix / scale  # entries of order 1: their squares' squares must not underflow (see _block_krylov)
    if cells <= channels:
        values, vectors = torch.linalg.eigh(matrix.mT @ matrix)
        return vectors[..., -1] * (values[..., -1:].clamp_min(0).sqrt() * scale[:, 0])
    _, vectors = torch.linalg.eigh(matrix @ matrix.mT)
    return (vectors[..., -1:].mT @ matrix).squeeze(1) * scale[:, 0]


def _block_krylov(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A·v₁ = σ₁u₁ for each B×C×n Aᵀ by block Lanczos on A·Aᵀ, and whether each one is certified (module doc).

    The basis spans A·Ω, (A·Aᵀ)·A·Ω, … (Ω a fixed C × BLOCK Gaussian), each block orthogonalised against the
    earlier ones twice (classical Gram–Schmidt, "twice is enough") and then by QR. Rayleigh–Ritz reuses the
    products Aᵀ·basis, through the basis' own Gram matrix, so that directions that lost orthogonality (the
    space exhausted: a rank below the basis size) are dropped instead of trusted. Every product is divided by
    the scale of A·Ω, which puts the iteration at unit scale without a pass over A: random-init layers reach
    1e-15, whose fourth power (a squared norm of A·Aᵀ·u) underflows in float32.
    """
    block = _start(matrix.shape[-2], matrix.device).mT @ matrix  # (A·Ω)ᵀ: BLOCK × n
    scale = block.abs().amax((-2, -1), keepdim=True) / math.sqrt(matrix.shape[-2])
    inverse = 1 / torch.where(scale > 0, scale, 1.0)
    block = torch.linalg.qr((block * inverse).mT).Q  # B × n × BLOCK
    basis, products = block, [(matrix @ block) * inverse]  # Ãᵀ·block, C × BLOCK, with Ã = A / scale
    for _ in range(DEPTH - 1):
        block = ((products[-1].mT @ matrix) * inverse).mT  # Ã·Ãᵀ·block: the products with A cost the most
        for _ in range(2):
            block = block - basis @ (basis.mT @ block)
        block = torch.linalg.qr(block).Q
        basis = torch.cat([basis, block], -1)
        products.append((matrix @ block) * inverse)
    products = torch.cat(products, -1)
    overlap, rotation = torch.linalg.eigh(basis.mT @ basis)
    kept = overlap > 1e-4 * overlap[..., -1:]
    orthonormal = rotation * torch.where(kept, overlap.clamp_min(1e-30).rsqrt(), 0.0).unsqueeze(-2)
    reduced = products @ orthonormal
    ritz, vectors = torch.linalg.eigh(reduced.mT @ reduced)
    coefficients = orthonormal @ vectors[..., -1:]
    top = basis @ coefficients  # u: unit norm, B × n × 1
    image = (((products @ coefficients).mT @ matrix) * inverse).mT  # Ã·Ãᵀ·u
    residual = (image - ritz[..., -1:, None] * top).norm(dim=(-2, -1))
    top = top.squeeze(-1)
    # sin∠(u, u₁) ≤ ‖r‖ / gap (Davis–Kahan); u then moves by at most √2·sin∠ in any cell, which ReLU and the
    # resize (convex combinations) keep and min-max (low, high and the value each moving) multiplies by 4 / range.
    gap = (ritz[..., -1] - ritz[..., -2]).clamp_min(1e-30)
    shown = torch.where((top.amin(-1).abs() > top.amax(-1).abs())[:, None], -top, top).relu()
    span = (shown.amax(-1) - shown.amin(-1)).clamp_min(1e-30)
    certified = (4 * math.sqrt(2) * residual / gap / span <= CERTIFIED) | (ritz[..., -1] <= 0)
    return top * (ritz[..., -1:].clamp_min(0).sqrt() * scale[:, 0]), certified


@functools.cache
def _start(channels: int, device: torch.device) -> torch.Tensor:
    """Ω: the fixed C × BLOCK Gaussian the iteration starts from, made once per channel count and device."""
    return torch.randn(channels, BLOCK, generator=torch.Generator().manual_seed(SEED)).to(device)


def _resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of B×1×h×w maps, pixel centres aligned (as cv2's INTER_LINEAR, no antialiasing)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def _unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Each B×H×W map min-max normalised to [0, 1]: normalization.minmax's rule (a constant map becomes all
    zeros), on the device; a map holding NaN stays NaN, for the caller to count as degenerate."""
    low = maps.amin((-2, -1), keepdim=True)
    span = maps.amax((-2, -1), keepdim=True) - low
    return torch.where(span == 0, 0.0, (maps - low) / span)
