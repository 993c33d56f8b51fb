"""The alert rules on constructed series, with the answers known by construction."""

from __future__ import annotations

import pytest

from cryolive.alerts import backlogged, failing, out_of_bounds, stalled, unconsumed


def _series(inside: int, outside: int) -> list[float]:
    """25 defocus values (µm) against bounds [0.5, 3.0]: ``inside`` within, the rest not."""
    return [1.5] * inside + [5.0] * outside


def test_out_of_bounds_fires_below_a_quarter_within_and_clears_at_a_quarter() -> None:
    # 6 of 25 within (24%): fewer than 25% -> fires; 7 of 25 (28%) -> does not
    assert out_of_bounds(_series(6, 19), 0.5, 3.0) is True
    assert out_of_bounds(_series(7, 18), 0.5, 3.0) is False
    # a drift: good values, then bad ones arrive; the rule looks at the last 25 only
    drifting = [1.5] * 30
    verdicts = []
    for _ in range(30):
        drifting.append(5.0)
        verdicts.append(out_of_bounds(drifting, 0.5, 3.0))
    # 25 - 7 = 18 bad in a row leave 7 good (28%): no alert; the 19th leaves 6: alert
    assert verdicts.index(True) == 18
    assert not any(verdicts[:18]) and all(verdicts[18:])
    # recovery: good values come back; the alert clears once 7 of the last 25 are good
    recovering = drifting + [1.5] * 7
    assert out_of_bounds(recovering[:-1], 0.5, 3.0) is True
    assert out_of_bounds(recovering, 0.5, 3.0) is False


def test_out_of_bounds_needs_a_full_window_and_counts_the_edges_as_within() -> None:
    assert out_of_bounds([5.0] * 24, 0.5, 3.0) is None
    assert out_of_bounds([0.5] * 3 + [3.0] * 4 + [9.0] * 18, 0.5, 3.0) is False


def test_out_of_bounds_refuses_bad_bounds_and_windows() -> None:
    with pytest.raises(ValueError, match="low"):
        out_of_bounds([1.0] * 25, 3.0, 0.5)
    with pytest.raises(ValueError, match="window"):
        out_of_bounds([1.0] * 25, 0.5, 3.0, window=0)


def test_stalled_failing_backlogged_and_unconsumed() -> None:
    assert stalled(None, 1000.0, after_s=60) is None
    assert stalled(900.0, 1000.0, after_s=60) is True
    assert stalled(950.0, 1000.0, after_s=60) is False
    assert failing(3, 9, max_rate=0.2) is None  # too few to tell
    assert failing(3, 10, max_rate=0.2) is True
    assert failing(2, 10, max_rate=0.2) is False
    assert backlogged(None, 1000.0, max_s=60) is False
    assert backlogged(900.0, 1000.0, max_s=60) is True
    assert unconsumed(0) and not unconsumed(2)
    with pytest.raises(ValueError, match="max_rate"):
        failing(1, 10, max_rate=1.5)
    with pytest.raises(ValueError, match="after_s"):
        stalled(1.0, 2.0, after_s=0)
