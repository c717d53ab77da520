"""What every map goes through: a check for maps that carry no information, and min-max to [0, 1]."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_finite_map(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a float64 array; ValueError naming ``name`` if it is empty or holds NaN or inf."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    # NaN and inf propagate into the sum, so one reduction clears the common case; only a
    # non-finite sum (or a finite-value overflow) needs the element-wise check.
    if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def is_constant(x: np.ndarray) -> bool:
    """Whether every value of ``x`` is the same."""
    # Compare extremes, not std: the mean of a constant float array can be off by an ulp,
    # which would make a "zero" std tiny but non-zero and the ratio garbage.
    return bool(x.max() == x.min())


def minmax(x: ArrayLike) -> np.ndarray:
    """Min-max normalise ``x`` to [0, 1] (float64); a constant map becomes all zeros.

    The original study divided by ``max - min`` unguarded, turning a constant map into NaNs.
    """
    arr = as_finite_map(x, "map")
    lo, hi = arr.min(), arr.max()
    if hi == lo:
        return np.zeros_like(arr)
    return (arr - lo) / (hi - lo)


def is_degenerate(x: ArrayLike) -> str | None:
    """Why ``x`` is unusable as a saliency map ("empty", "nan", "inf", "constant"), or None if it is usable."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        return "empty"
    if np.isnan(arr).any():
        return "nan"
    if np.isinf(arr).any():
        return "inf"
    if is_constant(arr):
        return "constant"
    return None
