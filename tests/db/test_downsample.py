"""Thinning a series for a chart keeps every bucket's extremes, hence every outlier."""

from __future__ import annotations

import numpy as np
import pytest

from cryolive.db.repo._downsample import extremes_kept, take


def test_planted_outliers_survive_thinning_50000_movies_to_2000_points() -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    columns: dict[str, list[float | None]] = {
        "motion": [float(v) for v in rng.normal(10.0, 1.0, n)],
        "defocus": [None if rng.random() < 0.1 else float(v) for v in rng.normal(2e4, 1e3, n)],
        "empty": [None] * n,  # a measure without any value costs no budget
    }
    columns["motion"][12_345] = 80.0  # a drift spike
    columns["motion"][40_001] = -5.0
    columns["defocus"][777] = 9e4  # a failed fit
    kept = extremes_kept(columns, measures=["motion", "defocus", "empty"], points=2_000)
    assert 1_000 < len(kept) <= 2_000
    assert kept == sorted(set(kept)) and kept[0] == 0 and kept[-1] == n - 1
    assert {12_345, 40_001, 777} <= set(kept)
    thin = take(columns | {"programs": {"motion": 1}}, kept)
    assert thin["programs"] == {"motion": 1}
    for name in ("motion", "defocus"):  # the chart's range is the series' range
        values = [v for v in columns[name] if v is not None]
        shown = [v for v in thin[name] if v is not None]
        assert (min(shown), max(shown)) == (min(values), max(values))
    # every bucket of movies keeps its own extremes, not only the global ones
    size = -(-n // ((2_000 - 2) // 4))
    for start in range(0, n, size):
        stretch = columns["motion"][start : start + size]
        best = start + int(np.argmax(stretch))
        assert best in kept


def test_short_series_are_left_whole_and_bad_points_refused() -> None:
    columns = {"a": [1.0, None, 3.0]}
    assert extremes_kept(columns, measures=["a"], points=3) == [0, 1, 2]
    with pytest.raises(ValueError, match="points"):
        extremes_kept(columns, measures=["a"], points=1)
