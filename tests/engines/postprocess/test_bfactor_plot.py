"""The Rosenthal-Henderson B-factor plot: a known B is recovered exactly from resolutions that
follow 1/d² = (2/B) ln N + c, the series driver calls refine on each subset size, and the PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import starfile

from cryolive.engines.postprocess import bfactor_fit, bfactor_series, doubling_counts
from cryolive.io.outputs.postprocess import write_bfactor_plot


def _resolution(count: float, bfactor: float, intercept: float) -> float:
    return float(1.0 / np.sqrt(2.0 / bfactor * np.log(count) + intercept))


@pytest.mark.parametrize("bfactor", [40.0, 120.0, 300.0])
def test_known_bfactor_recovered_exactly(bfactor: float) -> None:
    counts = [2000, 4000, 8000, 16000, 32000]
    res = [_resolution(n, bfactor, -0.05) for n in counts]
    b, slope, intercept = bfactor_fit(counts, res)
    assert b == pytest.approx(bfactor, rel=1e-9)
    assert slope == pytest.approx(2.0 / bfactor, rel=1e-9)
    assert intercept == pytest.approx(-0.05, abs=1e-12)


def test_series_calls_refine_on_each_subset_and_plots(tmp_path: Path) -> None:
    asked: list[int] = []

    def refine(n: int) -> float:
        asked.append(n)
        return _resolution(n, 80.0, -0.02)

    counts = doubling_counts(20000)
    assert counts == [2000, 4000, 8000, 16000, 20000]
    series = bfactor_series(refine, counts)
    assert asked == counts
    assert series.bfactor_a2 == pytest.approx(80.0, rel=1e-9)
    np.testing.assert_array_equal(series.counts, counts)
    png, star = write_bfactor_plot(tmp_path, series)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    table = starfile.read(star, always_dict=True)
    assert float(table["general"]["bfactor_a2"]) == pytest.approx(80.0, rel=1e-4)
    assert list(table["bfactor"]["particles"]) == counts


def test_bad_series_is_refused() -> None:
    with pytest.raises(ValueError, match="two different"):
        bfactor_fit([1000, 1000], [5.0, 4.0])
    with pytest.raises(ValueError, match="one length"):
        bfactor_fit([1000, 2000], [5.0])
    with pytest.raises(ValueError, match="resolutions_a"):
        bfactor_fit([1000, 2000], [5.0, -4.0])
    with pytest.raises(ValueError, match="does not improve"):
        bfactor_fit([1000, 2000, 4000], [4.0, 5.0, 6.0])
    with pytest.raises(ValueError, match="counts"):
        bfactor_series(lambda n: 4.0, [2000])
