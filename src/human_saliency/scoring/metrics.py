"""Every score the pipeline reports: saliency-map agreement, fixation and localisation metrics.

Conventions shared by every metric here:

* Inputs are array-likes of any shape, computed in float64. Paired inputs must have the same
  shape, else ``ValueError`` naming both shapes. NaN or inf anywhere is a ``ValueError``: a
  broken map must fail loudly, not become a silent NaN in an average. Use :func:`is_degenerate`
  to find (and count) unusable maps before scoring.
* Pair metrics take ``(pred, ref)``: the detector's map first, the human or fixation-predictor
  map second. Only ``kld`` is asymmetric.
* Maps that must lie in [0, 1] (``mae``, human masks) or be non-negative (``sim``, ``kld``,
  ``relevance_mass``) are checked with a tolerance of ``RANGE_TOL``; values inside the tolerance
  are clipped, values outside it raise. This makes the original study's bug (MAE against a 0–255
  mask) impossible.
* A constant map never yields NaN. Each metric's value for it is chosen to be that metric's
  "no information" level: ``cc`` and ``nss`` → 0.0; ``auc_judd`` → 0.5; ``sim``/``kld`` treat it
  (including all zeros) as the uniform distribution; ``iou_top_study`` selects every pixel (ties at the
  threshold are all selected); the localisation metrics return the mask's area fraction, i.e.
  the expected score of a random tie-break. ``minmax`` maps it to all zeros. The exception is
  ``iou_top``: a constant map has no top region, a ValueError; scoring excludes such maps (counted).
* Human masks are binarised by :func:`binarize_mask` (``mask >= 0.5`` by default: at least half
  of the annotators' weight); an empty binarised mask is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from human_saliency.maps.normalization import as_finite_map, is_constant, is_degenerate, minmax

__all__ = [
    "EPS",
    "FIXATION_METRICS",
    "HIGHER_IS_BETTER",
    "MASK_METRICS",
    "PAIR_METRICS",
    "RANGE_TOL",
    "auc_judd",
    "binarize_mask",
    "cc",
    "iou_top",
    "iou_top_study",
    "is_degenerate",
    "kld",
    "mae",
    "minmax",
    "nss",
    "pointing_game",
    "region_mass",
    "relevance_mass",
    "relevance_rank",
    "sim",
    "top_region",
    "top_region_is_tied",
]

# The MIT benchmark's KLdiv.m uses MATLAB's eps; keeping it makes our KL comparable to theirs.
EPS = 2.2204e-16
# Slack for interpolation round-off (e.g. a resized map at 1 + 1e-9); far below one 0–255 grey level.
RANGE_TOL = 1e-6


def _as_pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"shape mismatch: {names[0]} {a_arr.shape} vs {names[1]} {b_arr.shape}")
    return as_finite_map(a_arr, names[0]), as_finite_map(b_arr, names[1])


def _check_range(x: np.ndarray, name: str, low: float, high: float | None) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if lo < low - RANGE_TOL or (high is not None and hi > high + RANGE_TOL):
        want = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be in {want}, got values in [{lo:g}, {hi:g}]")
    if lo < low or (high is not None and hi > high):
        return np.clip(x, low, high)
    return x


def _as_distribution(x: np.ndarray, name: str) -> np.ndarray:
    x = _check_range(x, name, 0.0, None)
    if is_constant(x):
        return np.full(x.shape, 1.0 / x.size)
    return x / x.sum()


def _as_points(fixations: ArrayLike, shape: tuple[int, ...], *, need_negatives: bool) -> np.ndarray:
    pts = np.asarray(fixations)
    if pts.shape != shape:
        raise ValueError(f"shape mismatch: saliency {shape} vs fixations {pts.shape}")
    if pts.dtype != bool:
        # A JPEG `_fixPts` map holds compression noise; the caller must threshold it explicitly.
        if not np.isin(pts, (0, 1)).all():
            raise ValueError("fixations must be a boolean map (or only 0/1); threshold the _fixPts image first")
        pts = pts.astype(bool)
    if not pts.any():
        raise ValueError("fixations map has no fixated pixel")
    if need_negatives and pts.all():
        raise ValueError("fixations map has no non-fixated pixel")
    return pts


def binarize_mask(mask: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """Binarise a human attention mask in [0, 1] as ``mask >= threshold``.

    Masks are annotator-weighted (the benchmark's grayscale JPEG read as L / 255); the default
    0.5 keeps pixels that at least half of the annotation weight marked.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"mask threshold must be in (0, 1], got {threshold}")
    arr = _check_range(as_finite_map(mask, "mask"), "mask", 0.0, 1.0)
    return arr >= threshold


def _mask_for(saliency: ArrayLike, mask: ArrayLike, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    s, m = _as_pair(saliency, mask, ("saliency", "mask"))
    binary = binarize_mask(m, threshold)
    if not binary.any():
        raise ValueError(f"mask is empty after binarising at {threshold}")
    return s, binary


def mae(a: ArrayLike, b: ArrayLike) -> float:
    """Mean absolute error, mean |a − b| over pixels; both maps must be in [0, 1] (study write-up)."""
    a_arr, b_arr = _as_pair(a, b, ("a", "b"))
    a_arr = _check_range(a_arr, "a", 0.0, 1.0)
    b_arr = _check_range(b_arr, "b", 0.0, 1.0)
    return float(np.mean(np.abs(a_arr - b_arr)))


def top_region(x: ArrayLike, percentile: float = 90.0) -> np.ndarray:
    """A map's top region: its pixels ``>=`` its ``percentile`` (numpy's linear interpolation; 90 → the top 10 %).

    When more than (100 − percentile) % of the pixels share the map's minimum (a ReLU'd CAM that is mostly
    zero, a human mask covering less than 10 % of the image), that threshold *is* the minimum and ``>=`` would
    select every pixel, so that the region no longer depends on where the map points. The top region is then
    the pixels above the minimum: fewer than (100 − percentile) %, and exactly where the map points
    (:func:`top_region_is_tied` tells when). A constant map has no top region: ValueError.
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    arr = as_finite_map(x, "map")
    if is_constant(arr):
        raise ValueError("a constant map has no top region")
    threshold = np.percentile(arr, percentile)
    return arr > arr.min() if threshold == arr.min() else arr >= threshold


def top_region_is_tied(x: ArrayLike, percentile: float = 90.0) -> bool:
    """Whether :func:`top_region` fell back to the pixels above the minimum (the study's rule selects all)."""
    arr = as_finite_map(x, "map")
    return not is_constant(arr) and bool(np.percentile(arr, percentile) == arr.min())


def iou_top(a: ArrayLike, b: ArrayLike, percentile: float = 90.0) -> float:
    """IoU of the two maps' top regions (:func:`top_region`), each at its own ``percentile`` (study write-up).

    Unlike the study's rule (:func:`iou_top_study`), a map whose bottom value fills more than
    (100 − percentile) % of it keeps a top region that depends on where it points. ValueError if a map is constant.
    """
    a_arr, b_arr = _as_pair(a, b, ("a", "b"))
    top_a, top_b = top_region(a_arr, percentile), top_region(b_arr, percentile)
    return float(np.count_nonzero(top_a & top_b) / np.count_nonzero(top_a | top_b))


def iou_top_study(a: ArrayLike, b: ArrayLike, percentile: float = 90.0) -> float:
    """The study's IoU, kept for comparison: each map binarised as ``x >= percentile(x)``, ties all selected.

    On a map whose minimum fills more than (100 − percentile) % of it this selects every pixel, and the IoU
    then reads that map's partner's area share (about 0.1) whatever either map points at; :func:`iou_top`
    is the corrected form. A constant map selects every pixel.
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    a_arr, b_arr = _as_pair(a, b, ("a", "b"))
    top_a = a_arr >= np.percentile(a_arr, percentile)
    top_b = b_arr >= np.percentile(b_arr, percentile)
    # Never empty: each map's maximum is always >= its own percentile.
    return float(np.count_nonzero(top_a & top_b) / np.count_nonzero(top_a | top_b))


def cc(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation of the two maps (Bylinskii et al. 2019, CC); 0.0 if either map is constant."""
    a_arr, b_arr = _as_pair(a, b, ("a", "b"))
    if is_constant(a_arr) or is_constant(b_arr):
        return 0.0
    a0 = a_arr - a_arr.mean()
    b0 = b_arr - b_arr.mean()
    r = np.sum(a0 * b0) / np.sqrt(np.sum(a0 * a0) * np.sum(b0 * b0))
    return float(np.clip(r, -1.0, 1.0))


def sim(a: ArrayLike, b: ArrayLike) -> float:
    """Similarity (histogram intersection): Σ min(P, Q) after each map sums to 1 (Bylinskii et al. 2019, SIM).

    Maps must be non-negative; no min-max is applied first (unlike MIT's similarity.m), so a
    probability map such as DeepGaze's exp(log density) is used as the distribution it is.
    """
    a_arr, b_arr = _as_pair(a, b, ("a", "b"))
    return float(np.minimum(_as_distribution(a_arr, "a"), _as_distribution(b_arr, "b")).sum())


def kld(pred: ArrayLike, ref: ArrayLike) -> float:
    """KL divergence Σ Q·log(ε + Q/(P + ε)), P = pred and Q = ref each summed to 1, ε = 2.2204e-16.

    As in the MIT saliency benchmark's KLdiv.m (Bylinskii et al. 2019); asymmetric, 0 for identical maps.
    """
    p_arr, q_arr = _as_pair(pred, ref, ("pred", "ref"))
    p = _as_distribution(p_arr, "pred")
    q = _as_distribution(q_arr, "ref")
    return float(np.sum(q * np.log(EPS + q / (p + EPS))))


def nss(saliency: ArrayLike, fixations: ArrayLike) -> float:
    """Normalized scanpath saliency: mean z-scored saliency at fixated pixels (Bylinskii et al. 2019, NSS).

    Uses the population std (as pysaliency; MIT's NSS.m uses the sample std, a relative
    difference below 1e-5 at 512×512). A constant map scores 0.0.
    """
    s = as_finite_map(saliency, "saliency")
    pts = _as_points(fixations, s.shape, need_negatives=False)
    if is_constant(s):
        return 0.0
    return float(np.mean((s[pts] - s.mean()) / s.std()))


def auc_judd(saliency: ArrayLike, fixations: ArrayLike) -> float:
    """AUC-Judd: ROC area with thresholds at the fixated pixels' saliency values (MIT benchmark AUC_Judd.m).

    True positives are fixated pixels at or above a threshold, false positives the non-fixated
    ones. Tied values are handled exactly instead of with MIT's random jitter, so the result is
    deterministic; a constant map scores 0.5.
    """
    s = as_finite_map(saliency, "saliency")
    pts = _as_points(fixations, s.shape, need_negatives=True)
    fix_vals = np.sort(s[pts])
    non_vals = np.sort(s[~pts])
    thresholds = np.unique(fix_vals)[::-1]
    tp = (fix_vals.size - np.searchsorted(fix_vals, thresholds, side="left")) / fix_vals.size
    fp = (non_vals.size - np.searchsorted(non_vals, thresholds, side="left")) / non_vals.size
    tp = np.concatenate(([0.0], tp, [1.0]))
    fp = np.concatenate(([0.0], fp, [1.0]))
    return float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2.0))


def pointing_game(saliency: ArrayLike, mask: ArrayLike, mask_threshold: float = 0.5) -> float:
    """Pointing game: 1.0 if the saliency maximum lies in the binarised mask, else 0.0 (Zhang et al. 2018; Quantus).

    With several maxima it returns the fraction of them inside the mask, i.e. the hit rate of a
    random tie-break (a constant map scores the mask's area fraction).
    """
    s, m = _mask_for(saliency, mask, mask_threshold)
    peak = s == s.max()
    return float(np.count_nonzero(peak & m) / np.count_nonzero(peak))


def relevance_mass(saliency: ArrayLike, mask: ArrayLike, mask_threshold: float = 0.5) -> float:
    """Relevance mass accuracy: share of the saliency's total mass inside the mask (Arras et al. 2022; Quantus).

    Saliency must be non-negative; a constant (or all-zero) map scores the mask's area fraction.
    """
    return region_mass(*_mask_for(saliency, mask, mask_threshold))


def region_mass(saliency: ArrayLike, region: ArrayLike) -> float:
    """Share of the saliency's total mass on a boolean ``region``: the cue metric on a planted cue's pixels.

    Read it against the region's area share, ``region.mean()``: what a map that ignores the region puts
    there (a constant map scores exactly that). Saliency must be non-negative; ``region`` boolean (or only
    0/1), of the saliency's shape, and not empty (ValueError; count such images, do not average them).
    """
    s = as_finite_map(saliency, "saliency")
    r = np.asarray(region)
    if r.shape != s.shape:
        raise ValueError(f"shape mismatch: saliency {s.shape} vs region {r.shape}")
    if r.dtype != bool:
        if not np.isin(r, (0, 1)).all():
            raise ValueError("region must be a boolean map (or only 0/1)")
        r = r.astype(bool)
    if not r.any():
        raise ValueError("region is empty")
    s = _check_range(s, "saliency", 0.0, None)
    if is_constant(s):
        return float(np.mean(r))
    return float(s[r].sum() / s.sum())


def relevance_rank(saliency: ArrayLike, mask: ArrayLike, mask_threshold: float = 0.5) -> float:
    """Relevance rank accuracy: of the K most salient pixels (K = mask size), the share inside the mask.

    Arras et al. 2022, as in Quantus. Pixels tied at the K-th value share the remaining slots
    pro rata (the expected score of a random tie-break), so a constant map scores the mask's area fraction.
    """
    s, m = _mask_for(saliency, mask, mask_threshold)
    flat, inside = s.ravel(), m.ravel()
    k = int(np.count_nonzero(inside))
    kth = np.partition(flat, flat.size - k)[flat.size - k]
    above = flat > kth
    tied = flat == kth
    n_above = int(np.count_nonzero(above))
    hits = np.count_nonzero(above & inside) + (k - n_above) * np.count_nonzero(tied & inside) / np.count_nonzero(tied)
    return float(hits / k)


PAIR_METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "mae": mae,
    "iou": iou_top,
    "iou_study": iou_top_study,
    "cc": cc,
    "sim": sim,
    "kld": kld,
}
FIXATION_METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "nss": nss,
    "auc_judd": auc_judd,
}
MASK_METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "pointing_game": pointing_game,
    "relevance_mass": relevance_mass,
    "relevance_rank": relevance_rank,
}
HIGHER_IS_BETTER: dict[str, bool] = {
    "mae": False,
    "iou": True,
    "iou_study": True,
    "cc": True,
    "sim": True,
    "kld": False,
    "nss": True,
    "auc_judd": True,
    "pointing_game": True,
    "relevance_mass": True,
    "relevance_rank": True,
}
