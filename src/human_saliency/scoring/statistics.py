"""Intervals and comparisons: bootstrap means, paired differences, and which row of a table is best.

Every detector and every arm is scored on the same images, so two rows are compared by the per-image
differences of their scores (a paired bootstrap), which removes the image-to-image spread they share. A row
is called best only when its paired interval against every other row excludes zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

# Bound on bootstrap index cells held in memory at once (8 bytes each: ~32 MB).
_BOOT_CELLS = 4_000_000
CI = 0.95


def bootstrap_means(values: np.ndarray, *, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` means of ``values`` resampled with replacement (deterministic for ``seed``)."""
    n = values.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    # Resample in blocks so memory stays bounded for large n; the block size depends only on n,
    # so the result is still a pure function of (values, n_boot, seed).
    block = max(1, _BOOT_CELLS // n)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def summarize(values: ArrayLike, *, n_boot: int = 1000, ci: float = CI, seed: int = 0) -> dict[str, Any]:
    """Mean with a percentile-bootstrap confidence interval; NaNs are excluded and counted.

    Returns ``mean``, ``ci_low``, ``ci_high`` (floats; NaN when no value is left), ``n`` and
    ``n_excluded``. Deterministic for a given ``seed``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    arr = np.asarray(values, dtype=np.float64).ravel()
    if np.isinf(arr).any():
        raise ValueError("values contain inf; only NaN marks an excluded value")
    missing = np.isnan(arr)
    kept = arr[~missing]
    n = kept.size
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "ci_low": nan, "ci_high": nan, "n": 0, "n_excluded": int(missing.sum())}
    boot_means = bootstrap_means(kept, n_boot=n_boot, seed=seed)
    tail = (1.0 - ci) / 2.0
    low, high = np.quantile(boot_means, [tail, 1.0 - tail])
    return {
        "mean": float(kept.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": int(n),
        "n_excluded": int(missing.sum()),
    }


def paired_difference(
    a: ArrayLike, b: ArrayLike, *, n_boot: int = 1000, ci: float = CI, seed: int = 0
) -> dict[str, Any]:
    """Mean of the per-image differences ``a - b`` with its bootstrap interval, over the images where both
    are scored (NaN in either excludes the image). Same keys as :func:`summarize`."""
    a_arr, b_arr = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired scores must have one length, got {a_arr.size} and {b_arr.size}")
    return summarize(a_arr - b_arr, n_boot=n_boot, ci=ci, seed=seed)


def excludes_zero(interval: Mapping[str, Any]) -> bool:
    """Whether a summary's interval lies wholly on one side of zero (a detectable difference)."""
    return "ci_low" in interval and (interval["ci_low"] > 0 or interval["ci_high"] < 0)


def best_rows(
    means: Mapping[str, float],
    difference: Callable[[str, str], Mapping[str, Any]],
    *,
    higher_is_better: bool,
) -> dict[str, str]:
    """Which rows of one table column are best: ``{row: "best" | "tied" | ""}``.

    ``difference(a, b)`` is the summary (mean, ci_low, ci_high) of row a minus row b, paired by image. The
    row with the best mean is "best" when its interval against every other row excludes zero in its favour;
    otherwise it and every row it does not beat detectably are "tied" (no detectable difference).
    """
    ranked = [row for row, mean in means.items() if not np.isnan(mean)]
    if len(ranked) < 2:
        return dict.fromkeys(means, "")
    sign = 1.0 if higher_is_better else -1.0
    top = max(ranked, key=lambda row: sign * means[row])
    beaten = {row: _favours(difference(top, row), sign) for row in ranked if row != top}
    if all(beaten.values()):
        return {row: "best" if row == top else "" for row in means}
    return {row: "tied" if row == top or beaten.get(row) is False else "" for row in means}


def _favours(interval: Mapping[str, Any], sign: float) -> bool:
    if "ci_low" not in interval or np.isnan(interval["ci_low"]):
        return False
    return interval["ci_low"] > 0 if sign > 0 else interval["ci_high"] < 0


# --- Seeds and images: the main experiment's intervals ---------------------------------------------------


def resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` × ``n`` multiplicities: each row draws the ``n`` items with replacement.

    The same (n, n_boot, seed) gives the same rows: rows scored on the same items are resampled alike
    (paired).
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


def pooled_mean(values: ArrayLike) -> float:
    """The mean of a seeds × images array (or one row of images) over its scored (non-NaN) cells."""
    arr = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def pooled_replicates(values: ArrayLike, image_weights: np.ndarray, seed_weights: np.ndarray) -> np.ndarray:
    """Bootstrap replicates of :func:`pooled_mean` for a seeds × images array, drawing seeds and images.

    Row b of ``image_weights`` (B × images) and of ``seed_weights`` (B × seeds) say how often each image and
    each seed is drawn; an interval from these covers the spread over both. Shared weights pair two arms by
    image (and by seed index).
    """
    arr = np.atleast_2d(np.asarray(values, dtype=np.float64))
    scored = np.isfinite(arr)
    totals = image_weights @ np.where(scored, arr, 0.0).T  # B × seeds
    counts = image_weights @ scored.T.astype(np.float64)
    numerator = (seed_weights * totals).sum(axis=1)
    denominator = (seed_weights * counts).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def replicate_summary(point: float, replicates: ArrayLike, *, ci: float = CI) -> dict[str, float]:
    """A point estimate with the percentile interval of its bootstrap replicates (NaN replicates dropped)."""
    kept = np.asarray(replicates, dtype=np.float64)
    kept = kept[np.isfinite(kept)]
    if kept.size == 0 or np.isnan(point):
        return {"mean": float(point)}
    tail = (1.0 - ci) / 2.0
    low, high = np.quantile(kept, [tail, 1.0 - tail])
    return {"mean": float(point), "ci_low": float(low), "ci_high": float(high)}


def without_nan(tree: Any) -> Any:
    """``tree`` without its NaN leaves (a summary with no usable value keeps its other keys): NaN is not valid JSON
    for a DVC metrics file, and a cue the profile does not plant has no mass to report."""
    if isinstance(tree, Mapping):
        return {key: without_nan(value) for key, value in tree.items() if not _is_nan(value)}
    return tree


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)
