"""The B-factor plot of Rosenthal & Henderson (2003): resolution against the number of
particles. 1/d² grows linearly with ln N, with slope 2/B."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class BfactorSeries:
    """Resolutions reached with each subset size, and the line fitted to them."""

    counts: NDArray[np.int64]
    resolutions_a: NDArray[np.float64]
    bfactor_a2: float  # 2 / slope
    slope: float  # of 1/d² (Å⁻²) against ln N
    intercept: float  # 1/d² at N = 1


def bfactor_fit(counts: ArrayLike, resolutions_a: ArrayLike) -> tuple[float, float, float]:
    """Fit 1/d² = slope · ln N + intercept; return (B = 2 / slope in Å², slope, intercept).

    Parameters
    ----------
    counts : (n,) numbers of particles, each ≥ 1, at least two different
    resolutions_a : (n,) resolution (Å) each count reached, positive

    References
    ----------
    Rosenthal & Henderson (2003) J. Mol. Biol. 333, 721. doi:10.1016/j.jmb.2003.07.013
    """
    n = np.asarray(counts, dtype=np.float64)
    d = np.asarray(resolutions_a, dtype=np.float64)
    if n.ndim != 1 or n.shape != d.shape:
        raise ValueError(
            f"counts and resolutions_a: must be 1D of one length, got {n.shape} and {d.shape}"
        )
    if np.unique(n).size < 2:
        raise ValueError("counts: need at least two different particle counts")
    if not (np.isfinite(n).all() and (n >= 1).all()):
        raise ValueError("counts: every count must be a finite number ≥ 1")
    if not (np.isfinite(d).all() and (d > 0).all()):
        raise ValueError("resolutions_a: every resolution must be positive and finite")
    slope, intercept = np.polyfit(np.log(n), 1.0 / d**2, 1)
    if slope <= 0:
        raise ValueError(
            "resolutions_a: resolution does not improve with more particles (slope "
            f"{slope:.3g} Å⁻² per ln N), so no B-factor follows"
        )
    return 2.0 / float(slope), float(slope), float(intercept)


def doubling_counts(total: int, *, start: int = 2000) -> list[int]:
    """2k, 4k, 8k … up to ``total`` (``total`` itself last when it is not a doubling)."""
    if total < 1 or start < 1:
        raise ValueError(f"total and start: must be ≥ 1, got {total} and {start}")
    out: list[int] = []
    n = min(start, total)
    while n < total:
        out.append(n)
        n *= 2
    out.append(total)
    return out


def bfactor_series(refine: Callable[[int], float], counts: Sequence[int]) -> BfactorSeries:
    """Call ``refine(subset_size) -> resolution_a`` for each count and fit the B-factor line."""
    sizes = [int(c) for c in counts]
    if len(set(sizes)) < 2:
        raise ValueError(f"counts: need at least two different subset sizes, got {sizes}")
    resolutions = [float(refine(c)) for c in sizes]
    b, slope, intercept = bfactor_fit(sizes, resolutions)
    return BfactorSeries(
        counts=np.asarray(sizes, dtype=np.int64),
        resolutions_a=np.asarray(resolutions, dtype=np.float64),
        bfactor_a2=b,
        slope=slope,
        intercept=intercept,
    )
