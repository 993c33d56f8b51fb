"""Thinning a collection's series for a chart: the extremes of every bucket of movies kept.

A chart of 50,000 movies cannot show more than a few thousand points side by side; what a user
looks for in it are outliers (a drift spike, a bad fit). Dropping movies at random or averaging
buckets would hide exactly those, so each bucket keeps the movies that hold its smallest and its
largest value of every measure (and the collection's first and last movie): every global
extreme survives. Exact values of a stretch of movies come from asking for that stretch
(``from_movie_id``/``to_movie_id``), not from thinning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def extremes_kept(
    columns: Mapping[str, list[Any]], *, measures: Sequence[str], points: int
) -> list[int]:
    """Positions (sorted) of the rows to keep so that at most about ``points`` remain.

    ``columns``: equal-length lists (one row per movie, in acquisition order); ``measures``: the
    numeric columns whose per-bucket minimum and maximum are kept (None values are skipped).
    All positions when there are no more rows than ``points``.
    """
    if points < 2:
        raise ValueError(f"points: must be >= 2, got {points}")
    n = len(next(iter(columns.values()), []))
    if n <= points:
        return list(range(n))
    present = [name for name in measures if any(v is not None for v in columns[name])]
    per_bucket = 2 * max(1, len(present))  # at most a minimum and a maximum per measure
    size = -(-n // max(1, (points - 2) // per_bucket))  # movies per bucket (ceiling division)
    buckets = -(-n // size)
    kept = {0, n - 1}
    padded = buckets * size
    for name in present:
        # (buckets, size) float64, NaN where there is no value (or past the last movie)
        values = np.full(padded, np.nan)
        values[:n] = np.array(columns[name], dtype=np.float64)
        grid = values.reshape(buckets, size)
        has = ~np.isnan(grid).all(axis=1)
        rows = np.flatnonzero(has)
        low = np.argmin(np.where(np.isnan(grid), np.inf, grid), axis=1)
        high = np.argmax(np.where(np.isnan(grid), -np.inf, grid), axis=1)
        kept.update((rows * size + low[rows]).tolist())
        kept.update((rows * size + high[rows]).tolist())
    return sorted(kept)


def take(columns: Mapping[str, Any], positions: Sequence[int]) -> dict[str, Any]:
    """``columns`` with only the rows at ``positions`` (other entries, not lists, as they are)."""
    return {
        name: [values[i] for i in positions] if isinstance(values, list) else values
        for name, values in columns.items()
    }
