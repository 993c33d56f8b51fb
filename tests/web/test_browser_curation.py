"""Curation in headless Chromium (Debian's, through Playwright): drag a threshold line on a
histogram, see the accepted count change at once, save, reload: the threshold is still there,
and the movie browser says why a movie is rejected. With ``CRYOLIVE_TEST_SHOTS=DIR`` it saves
the Curation panel, as the test fixtures fill it, as DIR/curation.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cryolive.config import CurationThresholds
from cryolive.db import make_engine
from cryolive.db.repo import curation
from tests.web.test_browser import SHOTS, _page, _wait_until, browser, chromium, server

__all__ = ["browser", "chromium", "server"]  # the fixtures, shared with the page tests
pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)


@pytest.fixture
def restored(world: Any) -> Iterator[None]:
    """The shared world as it was: no thresholds of its own that filter anything."""
    yield
    engine = make_engine(world.url)
    with Session(engine) as session, session.begin():
        curation.set_thresholds(
            session,
            data_collection_id=world.data_collection_id,
            limits=CurationThresholds(),
            changed_by=None,
            defaults=CurationThresholds(),
        )
    engine.dispose()


def _accepted(page: Any) -> int:
    return int(page.locator("#curation-count").get_attribute("data-accepted"))


def test_drag_a_threshold_see_the_count_save_and_find_it_after_reload(
    browser: Any, server: str, world: Any, restored: None
) -> None:
    page = _page(browser, server, "alice")
    page.goto(f"/collections/{world.data_collection_id}")
    page.wait_for_selector("body[data-curation=loaded]")
    line = page.locator("#cur-total_motion .shapelayer path").first
    line.wait_for(state="attached")  # a vertical line: no width, so never "visible"
    assert page.locator("#curation-count").inner_text() == "12 of 12 movies accepted, 0 rejected"
    assert page.locator("#curation-save").is_disabled()

    # total motion is 10 + i Å for movie i: drag the (unset, grey) upper bound to the middle
    page.locator("#curation").scroll_into_view_if_needed()
    box = line.evaluate(
        "p => { const r = p.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; }"
    )
    plot = page.locator("#cur-total_motion .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] * 0.5, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    _wait_until(page, "document.getElementById('curation-count').dataset.accepted !== '12'")
    bound = float(page.locator("#bound-total_motion_max_a").input_value())
    expected = sum(10.0 + i <= bound for i in range(12))
    assert 0 < expected < 12 and _accepted(page) == expected, (bound, _accepted(page))
    assert f"{expected} of 12 movies accepted" in page.locator("#curation-count").inner_text()

    # a typed bound counts too, and the count follows at once
    page.locator("#bound-ctf_resolution_max_a").fill("3.3")  # resolution 3 + 0.25 i Å
    page.locator("#bound-ctf_resolution_max_a").press("Enter")
    _wait_until(page, "document.getElementById('curation-count').dataset.accepted === '2'")

    page.get_by_role("button", name="Save thresholds").click()
    page.wait_for_selector("#curation-status:has-text('Saved')")
    page.reload()
    page.wait_for_selector("body[data-curation=loaded]")
    line.wait_for(state="attached")  # drawn when near the screen or idle (charts.js)
    assert float(page.locator("#bound-total_motion_max_a").input_value()) == bound
    assert page.locator("#bound-ctf_resolution_max_a").input_value() == "3.3"
    assert _accepted(page) == 2
    drawn = page.evaluate("document.getElementById('cur-total_motion').layout.shapes[0].x0")
    assert drawn == pytest.approx(bound)
    assert "set by alice" in page.locator("#curation-origin").inner_text()

    # the movie browser says why the movie it shows is rejected
    page.locator("#movie-index").fill("12")
    page.locator("#movie-index").press("Enter")
    page.wait_for_selector(f"body[data-movie='{world.movie_ids[11]}']")
    verdict = page.locator("#movie-verdict").inner_text()
    assert verdict == "Rejected: total motion, ctf fit resolution", verdict
    page.locator("#movie-index").fill("1")
    page.locator("#movie-index").press("Enter")
    page.wait_for_selector(f"body[data-movie='{world.movie_ids[0]}']")
    assert page.locator("#movie-verdict").inner_text() == "Accepted"

    if os.environ.get("CRYOLIVE_TEST_SHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 1400})
        page.locator("#curation").screenshot(path=str(SHOTS / "curation.png"))
    page.close()
