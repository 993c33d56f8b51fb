"""The web server's cache of encoded series: a hit only at the same version, young enough."""

from __future__ import annotations

import pytest

from cryolive.web.series_cache import SeriesCache


def test_a_stored_body_is_served_only_at_its_version_and_age() -> None:
    cache = SeriesCache(entries=2, max_age_s=10)
    cache.put(1, ("v", 1), b"one", now=0)
    assert cache.get(1, ("v", 1), now=5) == b"one"
    assert cache.get(1, ("v", 2), now=5) is None  # a result landed since
    assert cache.get(1, ("v", 1), now=11) is None  # too old
    assert cache.get(2, ("v", 1), now=5) is None


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = SeriesCache(entries=2)
    cache.put(1, 0, b"one", now=0)
    cache.put(2, 0, b"two", now=0)
    assert cache.get(1, 0, now=1) == b"one"  # 1 is now the most recently used
    cache.put(3, 0, b"three", now=1)
    assert cache.get(2, 0, now=1) is None
    assert cache.get(1, 0, now=1) == b"one"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="entries"):
        SeriesCache(entries=0)
    with pytest.raises(ValueError, match="max_age_s"):
        SeriesCache(max_age_s=0)
