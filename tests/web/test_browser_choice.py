"""A person's class choice in the gallery feeds what comes next (issue #24), in headless
Chromium (Debian's, through Playwright): deselecting a class the 2D engine selected changes the
particles that go on to 3D on the page, in the classification history, and in what live 3D
reads for its next run (:func:`cryolive.services.class3d.chosen_in`, the same database)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import ParticleClassification, ParticleClassificationGroup

from cryolive.db import make_engine
from cryolive.services.class3d import chosen_in
from cryolive.services.messages import Class3DMessage
from tests.web.test_browser import _page, browser, chromium, server

__all__ = ["browser", "chromium", "server"]  # the fixtures, shared with the page tests
pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)


def _next_3d_input(world: Any) -> dict[tuple[int, str], tuple[set[int], int]]:
    """What live 3D's next message would read: each classification's selected classes and
    particles, for the world's 2D run."""
    engine = make_engine(world.url)
    with engine.connect() as connection:
        program = connection.scalar(
            sa.select(ParticleClassificationGroup.programId)
            .join(
                ParticleClassification,
                ParticleClassification.particleClassificationGroupId
                == ParticleClassificationGroup.particleClassificationGroupId,
            )
            .where(ParticleClassification.particleClassificationId == world.class_ids[0])
        )
    engine.dispose()
    message = Class3DMessage.model_validate(
        {
            "data_collection_id": world.data_collection_id,
            "program_id": program,
            "project_dir": str(world.processed),
            "movie_path": "/m.tiff",
            "batch_number": 1,
            "particles_in_batch": 1,
            "selected_star": "/run_selected_data.star",
            "selected_particles": 0,
            "particle_diameter_a": 100.0,
            "class3d": {},
            "refine3d": {},
        }
    )
    found = chosen_in(world.url)(message)
    return {k: (set(s.selected), s.selected_particles) for k, s in found.items()}


def test_deselecting_a_class_changes_what_goes_on_to_3d(
    browser: Any, server: str, world: Any
) -> None:
    page = _page(browser, server, "alice")
    page.goto(f"/collections/{world.data_collection_id}")
    before = _next_3d_input(world)
    # batch 1's newest classification (1200 particles): the engine selected classes 2 and 3
    (newest,) = [k for k, (classes, n) in before.items() if (classes, n) == ({2, 3}, 700)]
    assert page.locator("#selected-particles").inner_text() == "700"
    history = page.locator("#class-history tr", has_text="(shown)")
    try:
        page.get_by_role("button", name="Class 2", exact=True).click()
        page.wait_for_selector('#classes li[data-class="2"].deselected.chosen')
        assert page.locator("#selected-particles").inner_text() == "300"  # 700 - class 2's 400
        after = _next_3d_input(world)
        assert after[newest] == ({3}, 300)
        assert {k: v for k, v in after.items() if k != newest} == {
            k: v for k, v in before.items() if k != newest
        }  # the older classification of batch 1 keeps its own selection
        page.reload()
        assert page.locator("#selected-particles").inner_text() == "300"
        page.locator("#class-history summary").click()  # the history, opened
        cells = history.locator("td").all_inner_texts()
        assert cells[4:6] == ["1", "300"], cells  # classes selected, particles selected
    finally:
        page.evaluate(
            "([id, csrf]) => fetch(`/api/classes/${id}/choice`, {method: 'POST', "
            "headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}, "
            "body: JSON.stringify({selected: null})})",
            [world.class_ids[1], page.locator("#collection").get_attribute("data-csrf")],
        )
        page.context.close()
    assert _next_3d_input(world) == before
