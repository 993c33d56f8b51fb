"""The movie browser's CTF profile in headless Chromium (Debian's, through Playwright): drawn
with its fit resolution line for a processed movie; "not processed yet" for a movie that is not,
never empty axes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, results
from cryolive.records import MovieRecord, MovieRef
from tests.web.conftest import ctf_files
from tests.web.test_browser import _page, _wait_until, browser, chromium, server
from tests.web.test_ctf_profile import motion_only

__all__ = ["browser", "chromium", "server"]  # fixtures shared with test_browser
pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)
FIGURE = "document.getElementById('ctf-profile-figure').dataset.state"


def test_a_processed_movie_shows_its_profile_with_the_fit_resolution(
    browser: Any, server: str, world: Any
) -> None:
    page = _page(browser, server, "alice")
    movie = world.movie_ids[3]
    page.goto(f"/collections/{world.data_collection_id}#movie={movie}")
    _wait_until(page, f"document.body.dataset.movie === '{movie}'")
    page.locator("#ctf-profile").scroll_into_view_if_needed()
    _wait_until(page, f"{FIGURE} === 'drawn'")
    chart = page.locator("#ctf-profile")
    assert chart.locator(".scatterlayer .trace").count() == 3  # data, fit, local correlation
    assert chart.locator(".shapelayer path").count() == 1  # the fit resolution's line
    assert chart.locator(".annotation-text").text_content() == "fit resolution 3.75 Å"
    ticks = chart.locator(".xtick text").all_text_contents()
    assert "10 Å" in ticks and "4 Å" in ticks  # frequency axis read as resolution
    assert "1/Å" in (chart.locator(".g-xtitle").text_content() or "")
    assert page.locator("#ctf-profile-state").inner_text() == ""
    page.context.close()


def test_a_movie_not_processed_yet_says_so_instead_of_an_empty_chart(
    browser: Any, server: str, world: Any
) -> None:
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():
        folder = uuid.uuid4().hex[:8]
        spec = collections.DataCollectionSpec(
            session_id=world.session_id,
            image_directory=f"{world.root}/{world.visit}/{folder}/",
            file_template="*.tiff",
        )
        dc = collections.register_data_collection(db, spec=spec)[1]
        ref = MovieRef(data_collection_id=dc, movie_full_path=f"/d/{folder}/0.tiff")
        results.write_result_sets(db, movies=[MovieRecord(movie=ref, movie_number=1)])
    engine.dispose()
    page = _page(browser, server, "alice")
    page.goto(f"/collections/{dc}")
    _wait_until(page, f"{FIGURE} === 'not-processed'")
    assert page.locator("#ctf-profile").is_hidden()
    assert page.locator("#ctf-profile .main-svg").count() == 0  # no axes drawn
    assert "Not processed yet" in page.locator("#ctf-profile-state").inner_text()
    page.context.close()


def test_a_fit_not_trusted_is_drawn_as_such(browser: Any, server: str, world: Any) -> None:
    project = world.root / world.visit / "processed" / "raw"
    stem = f"FoilHole_{uuid.uuid4().hex[:6]}_fractions"
    program, (movie,) = motion_only(world, [f"{project}/MotionCorr/{{job}}/{stem}.mrc"])
    reason = "no Thon rings beyond 12 Å"
    ctf_dir = project / "CtfFind" / f"job{program * 10 + 2:03d}"
    ctf_files(ctf_dir, stem, defocus_a=30_000.0, resolution_a=12.0, reason=reason)
    page = _page(browser, server, "alice")
    page.goto(f"/collections/{world.data_collection_id}")
    dc = page.evaluate(f"fetch('/api/movies/{movie}').then(r => r.json())")["data_collection_id"]
    page.goto(f"/collections/{dc}")
    page.locator("#ctf-profile-figure").scroll_into_view_if_needed()
    _wait_until(page, f"{FIGURE} === 'not-trusted'")
    chart = page.locator("#ctf-profile")
    assert f"NOT TRUSTED (best guess, not used) — {reason}" in (
        chart.locator(".gtitle").text_content() or ""
    )
    label = chart.locator(".annotation-text").text_content()
    assert label == "fit resolution 12.00 Å (not trusted)"
    assert "Best guess (not trusted)" in chart.locator(".legend").text_content()
    page.context.close()
