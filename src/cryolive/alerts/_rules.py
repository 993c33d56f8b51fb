"""The alert rules, pure: numbers in, a verdict out (True: the alert holds; False: it does not;
None: too little to tell, which leaves an open alert as it is)."""

from __future__ import annotations

from collections.abc import Sequence

WINDOW = 25
MIN_WITHIN = 0.25


def out_of_bounds(
    values: Sequence[float],
    low: float,
    high: float,
    *,
    window: int = WINDOW,
    min_within: float = MIN_WITHIN,
) -> bool | None:
    """Diamond's rule: fewer than ``min_within`` (25%) of the last ``window`` (25) values lie
    within [``low``, ``high``]. ``values`` newest last; None until there are ``window``."""
    if window < 1:
        raise ValueError(f"window: must be at least 1, not {window}")
    if not low < high:
        raise ValueError(f"low: {low} must be below high {high}")
    if len(values) < window:
        return None
    recent = values[-window:]
    within = sum(1 for v in recent if low <= v <= high)
    return within < min_within * window


def stalled(last_movie_s: float | None, now_s: float, *, after_s: float) -> bool | None:
    """No new movie for ``after_s`` seconds (times in s since the epoch). None before the
    first movie: a collection that has not begun is not stalled."""
    if after_s <= 0:
        raise ValueError(f"after_s: must be positive, not {after_s}")
    if last_movie_s is None:
        return None
    return now_s - last_movie_s > after_s


def failing(failed: int, closed: int, *, max_rate: float, min_closed: int = 10) -> bool | None:
    """More than ``max_rate`` (a fraction) of the closed work failed; None below
    ``min_closed`` closed items."""
    if not 0 <= max_rate <= 1:
        raise ValueError(f"max_rate: must lie in [0, 1], not {max_rate}")
    if failed < 0 or closed < failed:
        raise ValueError(f"failed: {failed} must lie in [0, closed={closed}]")
    if closed < min_closed:
        return None
    return failed / closed > max_rate


def backlogged(oldest_open_s: float | None, now_s: float, *, max_s: float) -> bool:
    """The oldest unfinished work was sent more than ``max_s`` seconds ago."""
    return oldest_open_s is not None and now_s - oldest_open_s > max_s


def unconsumed(consumers: int) -> bool:
    """A queue that nobody consumes."""
    return consumers < 1
