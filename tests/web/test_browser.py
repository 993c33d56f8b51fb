"""The pages in headless Chromium (Debian's, driven by Playwright), on a real server.

Logs in, sees only one's own visits, opens the processed collection, sees its charts and
images render, steps through movies with the keyboard, requests a reprocess and sees its status
change live when the test (standing in for the pipeline) records it finished. With
``CRYOLIVE_TEST_SHOTS=DIR`` it saves the main pages, as the test fixtures show them, into DIR (to
look at while working on a page; docs/screenshots/ comes from the real demo: ``make screenshots``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections
from cryolive.messaging import open_transport
from cryolive.web import create_app
from cryolive.web.bundle import partial_bundle

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# where the fixtures' pages are saved when asked; never docs/screenshots/ (the real demo's)
SHOTS = Path(os.environ.get("CRYOLIVE_TEST_SHOTS") or "/nonexistent")
# On SQLite only: the API tests cover MariaDB, and one browser run keeps the suite fast.
pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(world: Any) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(world.settings(), transport=open_transport(world.broker_url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def chromium(need_service: Callable[[str, str], None]) -> Path:
    """Debian's chromium: skip locally when absent, fail in CI (``make test`` installs it)."""
    if not CHROMIUM.exists():
        need_service("chromium", "not installed (make test installs it)")
    return CHROMIUM


def _page(browser: Any, server: str, login: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=server)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/visits")
    assert "/login" in page.url
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(f"password-{login}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/visits")
    return page


def _wait_until(page: Any, expression: str, timeout_s: float = 15.0) -> None:
    """Poll ``expression`` in the page until it is true. (Playwright's wait_for_function
    compiles its predicate with eval, which the pages' Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def _csp_violations(page: Any) -> list[str]:
    """A list that collects the page's Content-Security-Policy violations, as reported on the
    console."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    return found


def _shot(page: Any, name: str) -> None:
    """Save a screenshot of a fixture's page into ``CRYOLIVE_TEST_SHOTS``, only when set."""
    if not os.environ.get("CRYOLIVE_TEST_SHOTS"):
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_login_page(browser: Any, server: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 600})
    page.goto(server + "/login")
    page.get_by_label("Login").fill("alice")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Log in").click()
    assert "Wrong login or password" in page.get_by_role("alert").inner_text()
    _shot(page, "login")
    page.close()


# How many of the collection's 12 charts are drawn the moment the page says it is usable
# (body[data-charts=drawn]), counted before any later task can draw more.
_COUNT_CHARTS_AT_USABLE = """
new MutationObserver((changes, observer) => {
  if (document.body.dataset.charts !== "drawn") return;
  window.chartsAtUsable = document.querySelectorAll(
    "#charts .js-plotly-plot, #histograms .js-plotly-plot").length;
  observer.disconnect();
}).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-charts"] });
"""


def test_member_follows_a_collection(browser: Any, server: str, world: Any) -> None:
    page = _page(browser, server, "alice")
    page.add_init_script(_COUNT_CHARTS_AT_USABLE)
    visits = page.locator("#visits").inner_text()
    assert world.visit in visits and world.other_visit not in visits
    _shot(page, "visits")

    page.get_by_role("link", name=world.visit).click()
    page.get_by_role("link", name="raw", exact=True).click()  # named by its raw folder
    page.wait_for_selector("body[data-charts=drawn]")
    # usable: the charts on the screen and one screen below it drawn at once (those of the
    # first rows), the others after, when the browser is idle
    assert 0 < page.evaluate("window.chartsAtUsable") < 12
    page.wait_for_selector("body[data-all-charts=drawn]")
    assert page.locator("#charts .js-plotly-plot").count() == 7
    assert page.locator("#histograms .js-plotly-plot").count() == 5
    assert page.locator("#chart-defocus_a .point").count() == 12  # one marker per movie
    # readable charts: defocus in µm, as in the summary; hover names the movie and the unit
    assert "Defocus (µm)" in page.locator("#chart-defocus_a .ytitle").text_content()
    page.locator("#chart-defocus_a .point").nth(1).hover(force=True)
    hover = page.locator("#chart-defocus_a .hoverlayer .hovertext").text_content()
    assert "Movie 2" in hover and f"id {world.movie_ids[1]}" in hover, hover
    assert "FoilHole_1.tiff" in hover and "/data/raw" not in hover, hover  # its file name
    assert "Defocus: 1.60 µm" in hover, hover
    assert page.locator("#hist-defocus_a .ytitle").text_content() == "Movies"
    assert page.locator("#chart-particles-defocus .point").count() == 12
    _wait_until(
        page,
        "[...document.querySelectorAll('.images img[src]')].every(i => i.naturalWidth === 96)"
        " && document.querySelectorAll('.images img[src]').length === 4",
    )
    page.wait_for_selector("#drift .scatterlayer .trace")  # the drift plot
    assert page.locator("#drift .ytitle").text_content() == "y (Å)"  # on the same scale as x
    assert page.evaluate("document.getElementById('drift').layout.yaxis.scaleanchor") == "x"
    assert page.locator("#summary dd[data-key=movies]").inner_text() == "12"
    page.wait_for_selector("#live-state[data-updates]")  # the pushed summary is in place
    assert page.locator("#summary dd[data-key=mean_defocus_a]").inner_text() == "2.05"
    _shot(page, "collection")

    ids = world.movie_ids
    page.wait_for_selector(f"body[data-movie='{ids[0]}']")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f"body[data-movie='{ids[1]}']")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f"body[data-movie='{ids[2]}']")
    assert f"/api/movies/{ids[2]}/files/snapshot" in page.locator("#img-snapshot").get_attribute(
        "src"
    )
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f"body[data-movie='{ids[1]}']")
    assert "defocus 1.60 µm" in page.locator("#movie-info").inner_text()
    assert page.locator("#img-snapshot").bounding_box()["width"] > 288  # bigger than before
    page.locator("#img-snapshot").click()  # opens full size in a dialog, no new page
    page.wait_for_selector("#lightbox[open]")
    assert page.locator("#lightbox-img").get_attribute("src") == page.locator(
        "#img-snapshot"
    ).evaluate("i => i.src")
    page.keyboard.press("Escape")
    page.wait_for_selector("#lightbox:not([open])", state="attached")
    page.locator("#browser").scroll_into_view_if_needed()
    _shot(page, "movies")

    page.get_by_label("Dose per frame (e⁻/Å²)").fill("1.1")
    page.get_by_label("Particle diameter, min (Å)").fill("110")
    page.get_by_label("Particle diameter, max (Å)").fill("170")
    page.get_by_label("Box size (px)").fill("192")
    page.get_by_role("button", name="Request reprocessing").click()
    row = page.locator("#jobs-body tr", has_text="Reprocess by alice").first
    assert row.locator(".badge").inner_text() == "requested"
    program = int(row.get_attribute("data-program"))
    page.wait_for_selector("#live-state:has-text('Live:')")

    engine = make_engine(world.url)  # the pipeline's part, played by the test
    with Session(engine) as session, session.begin():
        collections.finish_program(
            session,
            auto_proc_program_id=program,
            success=True,
            message="reprocessed 12 movies",
            when=dt.datetime(2026, 11, 20, 12, 0),
        )
    engine.dispose()
    live_row = page.locator(f"#jobs-body tr[data-program='{program}']")
    live_row.locator(".badge.success").wait_for()  # no reload: server-sent events
    assert "reprocessed 12 movies" in live_row.inner_text()
    page.locator("#jobs").scroll_into_view_if_needed()
    _shot(page, "jobs")
    page.context.close()


def _beat(world: Any, *, service: str, host: str, pid: int, ago_s: float) -> None:
    from cryolive.db.repo import workers

    engine = make_engine(world.url)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Session(engine) as session, session.begin():
        workers.record_beat(
            session,
            service=service,
            queues=[service],
            consumers=1,
            host=host,
            pid=pid,
            started_at=now - dt.timedelta(hours=1),
            at=now - dt.timedelta(seconds=ago_s),
            handled=42,
        )
    engine.dispose()


def test_staff_area(browser: Any, server: str, world: Any) -> None:
    kept, sent_back = world.dead_letter(key="movie-kept"), world.dead_letter(key="movie-retry")
    _beat(world, service="ctf", host="node-a", pid=4242, ago_s=10)
    _beat(world, service="pick", host="node-b", pid=4343, ago_s=600)
    page = _page(browser, server, "carol")
    page.get_by_role("link", name="Staff").click()
    assert "no gain reference found" in page.locator("#failures").inner_text()
    assert page.get_by_role("heading", name="m02").is_visible()
    rate = page.locator('p.rate[data-microscope="m02"]').inner_text()
    assert "movies/h now" in rate and "last movie" in rate
    healthy = page.locator('#worker-table tr[data-service="ctf"][data-host="node-a"]')
    assert "alive" in healthy.inner_text() and "42" in healthy.inner_text()
    silent = page.locator('#worker-table tr[data-service="pick"][data-host="node-b"]')
    assert "silent" in silent.inner_text() and "10 min ago" in silent.inner_text()
    assert "ctf: FoilHole_11.tiff: blank" in page.locator("#collection-failures").inner_text()
    row = page.locator("#queue-table tr[data-queue=motioncorr]")
    dead_before = int(row.locator("td").nth(3).inner_text())
    page.get_by_role("button", name="Reinject movie-retry").click()
    page.wait_for_url("**/staff#queues")
    assert page.locator(f"#dead-letters tr[data-message='{sent_back}']").count() == 0
    assert page.locator(f"#dead-letters tr[data-message='{kept}']").count() == 1
    assert int(row.locator("td").nth(3).inner_text()) == dead_before - 1

    page.goto("/staff?until=2026-11-20T10:00:00&hours=6")
    page.wait_for_selector("body[data-throughput=drawn]")
    assert page.locator("#throughput-chart .trace.bars").count() >= 1
    assert page.locator("#throughput-microscopes .legendtext", has_text="m02").count() == 1
    legends = page.locator("#throughput-chart .legendtext").all_text_contents()
    assert "bi10001-1 raw (m02)" in legends and not any("/" in t for t in legends)
    page.locator("#queues").scroll_into_view_if_needed()
    _shot(page, "staff")
    page.locator("#throughput-chart").scroll_into_view_if_needed()
    _shot(page, "throughput")
    page.context.close()


def test_register_a_collection_by_hand(browser: Any, server: str, world: Any) -> None:
    page = _page(browser, server, "alice")
    page.goto(f"/visits/{world.visit}")
    assert page.locator("#register").is_hidden()  # folded away: the visit has collections
    page.locator("#register-by-hand summary").click()
    page.get_by_label("Raw folder").fill("raw9")
    page.get_by_label("Software").select_option("SerialEM")
    page.get_by_label("Movie files").select_option("mrc")
    page.get_by_label("Pixel size (Å)").fill("1.1")
    page.get_by_label("Dose per frame (e⁻/Å²)").fill("1.25")
    page.get_by_label("Frames (optional)").fill("40")
    page.locator("#register").scroll_into_view_if_needed()
    _shot(page, "register")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url("**/collections/*")
    assert page.get_by_role("heading", name="raw9", exact=True).is_visible()  # not its path
    assert "1.1 Å/px · 50.0 e⁻/Å² · Frames/*.mrc" in page.locator(".optics").inner_text()
    page.goto(f"/visits/{world.visit}")
    page.locator("#register-by-hand summary").click()
    page.get_by_label("Raw folder").fill("../bi10002-1/raw")
    page.get_by_label("Pixel size (Å)").fill("1.1")
    page.get_by_label("Dose per frame (e⁻/Å²)").fill("1.25")
    page.get_by_role("button", name="Register").click()
    assert "'..' is not allowed" in page.content()
    page.context.close()


def test_class_gallery_sorts(browser: Any, server: str, world: Any) -> None:
    page = _page(browser, server, "alice")
    page.goto(f"/collections/{world.data_collection_id}")
    cards = page.locator("#classes li.class-card")

    def order(key: str) -> list[str]:
        return [cards.nth(i).get_attribute(f"data-{key}") for i in range(cards.count())]

    assert order("particles") == ["600", "400", "300", "240"]
    page.locator("#classes").scroll_into_view_if_needed()  # the images load lazily
    _wait_until(
        page,  # class 4's image lies outside its visit: refused
        "[...document.querySelectorAll('#classes li:not([data-class=\"4\"]) img')]"
        ".every(i => i.complete && i.naturalWidth === 96)",
    )
    assert page.locator("#classes li.selected").count() == 2
    by_resolution = page.get_by_role("button", name="Resolution")
    by_resolution.focus()
    page.keyboard.press("Enter")  # the keyboard sorts as the mouse does
    page.wait_for_selector("body[data-class-sort=resolution]")
    assert order("resolution") == ["8.5", "12.0", "15.0", "20.0"]
    assert by_resolution.get_attribute("aria-pressed") == "true"
    page.locator("#classes").scroll_into_view_if_needed()
    _shot(page, "classes")
    page.get_by_role("button", name="Particles").press("Space")
    page.wait_for_selector("body[data-class-sort=particles]")
    assert order("particles") == ["600", "400", "300", "240"]
    page.context.close()


def test_choosing_a_class_persists(browser: Any, server: str, world: Any) -> None:
    """A click selects a class the engine left out; the choice survives a reload, is marked
    as the user's, changes the particles that go on, and "automatic" gives it back."""
    page = _page(browser, server, "alice")
    page.goto(f"/collections/{world.data_collection_id}")
    one = page.locator('#classes li[data-class="1"]')
    button = page.get_by_role("button", name="Class 1", exact=True)
    assert button.get_attribute("aria-pressed") == "false"
    assert page.locator("#selected-particles").inner_text() == "700"
    try:
        button.click()
        page.wait_for_selector('#classes li[data-class="1"].selected.chosen')
        assert "✓ chosen by you" in one.inner_text()
        assert page.locator("#selected-particles").inner_text() == "1300"
        # the gallery rebuilt by the script keeps when the classification ran
        assert "ran 2026-11-20 09:40 UTC, took 2 min" in page.locator("#classes h3").inner_text()
        page.reload()
        assert (
            page.get_by_role("button", name="Class 1", exact=True).get_attribute("aria-pressed")
            == "true"
        )
        assert "✓ chosen by you" in one.inner_text()
        assert page.locator("#classes li.selected").count() == 3
        # a class the engine selected, deselected by a click
        page.get_by_role("button", name="Class 2", exact=True).click()
        page.wait_for_selector('#classes li[data-class="2"].deselected.chosen')
        assert "✗ deselected by you" in page.locator('#classes li[data-class="2"]').inner_text()
        assert page.locator("#selected-particles").inner_text() == "900"
        page.get_by_role("button", name="Class 2: automatic selection").click()
        page.wait_for_selector('#classes li[data-class="2"].selected:not(.chosen)')
        page.get_by_role("button", name="Class 1: automatic selection").click()
        page.wait_for_selector('#classes li[data-class="1"].deselected:not(.chosen)')
        assert page.locator("#selected-particles").inner_text() == "700"
        page.reload()
        assert page.locator("#classes li.chosen").count() == 0
    finally:
        for class_id in world.class_ids:
            page.evaluate(
                "([id, csrf]) => fetch(`/api/classes/${id}/choice`, {method: 'POST', "
                "headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}, "
                "body: JSON.stringify({selected: null})})",
                [class_id, page.locator("#collection").get_attribute("data-csrf")],
            )
        page.context.close()


def test_a_new_classification_appears_live(browser: Any, server: str, world: Any) -> None:
    """raw2 has no 2D classes; one recorded while its page is open appears without a reload
    (the rows are removed afterwards: the world is shared)."""
    from ispyb.sqlalchemy import (
        AutoProcProgram,
        MotionCorrection,
        ParticleClassification,
        ParticleClassificationGroup,
        ParticlePicker,
        ProcessingJob,
    )
    from sqlalchemy import delete, select

    from cryolive.db.repo import classes

    dc = world.outside_collection_id
    page = _page(browser, server, "alice")
    page.goto(f"/collections/{dc}")
    page.wait_for_selector("#live-state[data-updates]")
    assert page.locator("#gallery").inner_text() == "No 2D classification yet."
    assert page.locator("#classes .sort-controls").is_hidden()

    engine = make_engine(world.url)
    image = world.processed / "class_1_1.png"  # a real 96-px PNG
    try:
        with Session(engine) as session, session.begin():
            motion = session.scalar(
                select(MotionCorrection.motionCorrectionId).where(
                    MotionCorrection.dataCollectionId == dc
                )
            )
            _, picker_program = collections.register_processing_job(
                session, data_collection_id=dc, recipe="picker", request_key="auto", parameters={}
            )
            picker = ParticlePicker(
                programId=picker_program, firstMotionCorrectionId=motion, numberOfParticles=90
            )
            session.add(picker)
            session.flush()
            picker_id = int(picker.particlePickerId)
            job, class2d = collections.register_processing_job(
                session, data_collection_id=dc, recipe="class2d", request_key="live", parameters={}
            )
            group = classes.write_classification(
                session,
                program_id=class2d,
                particle_picker_id=picker_id,
                batch_number=1,
                particles_in_batch=90,
                classes_in_batch=2,
                binned_pixel_size_a=3.32,
                classes=[
                    classes.ClassValues(
                        class_number=n,
                        image_full_path=str(image),
                        particles=30 * n,
                        distribution=n / 3,
                        resolution_a=10.0 * n,
                        selected=n == 2,
                    )
                    for n in (1, 2)
                ],
            )
        page.wait_for_selector("#gallery li.class-card")  # pushed, no reload
        cards = page.locator("#gallery li.class-card")
        assert cards.count() == 2
        assert [cards.nth(i).get_attribute("data-particles") for i in range(2)] == ["60", "30"]
        assert page.locator("#gallery li.selected").count() == 1
        assert "Batch 1" in page.locator("#gallery h3").inner_text()
        assert page.locator("#classes .sort-controls").is_visible()
        page.locator("#classes").scroll_into_view_if_needed()
        _wait_until(
            page,
            "[...document.querySelectorAll('#gallery img')]"
            ".every(i => i.complete && i.naturalWidth === 96)",
        )
    finally:
        with Session(engine) as session, session.begin():
            groups = select(ParticleClassificationGroup.particleClassificationGroupId).where(
                ParticleClassificationGroup.programId == class2d
            )
            session.execute(
                delete(ParticleClassification).where(
                    ParticleClassification.particleClassificationGroupId.in_(groups)
                )
            )
            session.execute(
                delete(ParticleClassificationGroup).where(
                    ParticleClassificationGroup.particleClassificationGroupId == group
                )
            )
            session.execute(
                delete(ParticlePicker).where(ParticlePicker.particlePickerId == picker_id)
            )
            session.execute(
                delete(AutoProcProgram).where(AutoProcProgram.autoProcProgramId == class2d)
            )
            session.execute(delete(ProcessingJob).where(ProcessingJob.processingJobId == job))
        engine.dispose()
        page.context.close()


def test_pages_break_no_content_security_policy(browser: Any, server: str, world: Any) -> None:
    """Every page, /docs (Swagger UI from the installed package) included, runs under the
    Content-Security-Policy with no violation on the console."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=server)
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations = _csp_violations(page)
    page.goto("/login")
    page.get_by_label("Login").fill("carol")
    page.get_by_label("Password").fill("password-carol")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/visits")
    page.goto(f"/visits/{world.visit}")
    page.goto(f"/collections/{world.data_collection_id}")
    page.wait_for_selector("body[data-charts=drawn]")
    page.wait_for_selector("#live-state[data-updates]")
    page.goto("/staff")
    page.wait_for_selector("body[data-throughput=drawn]")
    response = page.goto("/docs")
    assert (
        "'unsafe-inline'"
        not in response.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    )
    page.wait_for_selector(".swagger-ui .opblock")  # Swagger UI ran and read /openapi.json
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.reload()
    page.wait_for_selector(".swagger-ui .opblock")
    assert requested and all(url.startswith(server) for url in requested), requested
    page.goto("/nowhere")  # the error page
    assert violations == []
    context.close()


def _fill_of(page: Any, selector: str) -> str:
    return str(page.locator(selector).get_attribute("fill"))


def test_atlas_and_grid_square_views(browser: Any, server: str, world: Any) -> None:
    """The atlas draws its squares over its image, coloured by the chosen measure (changing it
    recolours them); a square opens its view, whose holes are coloured the same way and list
    their movies, which open in the collection's movie browser."""
    page = _page(browser, server, "alice")
    violations = _csp_violations(page)
    page.goto(f"/collections/{world.data_collection_id}")
    page.get_by_role("link", name="Atlas: where on the grid").click()
    page.wait_for_selector("body[data-grid=drawn]")
    _wait_until(page, "document.getElementById('grid-image').naturalWidth === 200")
    assert page.locator("#grid-overlay .spot").count() == 2
    seven = f"#grid-overlay .spot[data-id='{world.grid_square_id}']"
    eight = f"#grid-overlay .spot:not([data-id='{world.grid_square_id}'])"
    # resolution: square 7's movies (3.875 Å on average) below square 8's (5.375 Å)
    low, high = _fill_of(page, seven), _fill_of(page, eight)
    assert low == "rgb(68, 1, 84)" and high == "rgb(253, 231, 37)"
    page.get_by_label("Colour by").select_option("movies")  # square 7: 8 movies, square 8: 4
    page.wait_for_selector("body[data-measure=movies]")
    assert (_fill_of(page, seven), _fill_of(page, eight)) == (high, low)
    _shot(page, "atlas")

    page.locator(seven).click()
    page.wait_for_url(f"**/grid-squares/{world.grid_square_id}")
    page.wait_for_selector("body[data-grid=drawn]")
    assert page.locator("#grid-overlay .spot").count() == 2
    hole = f"#grid-overlay .spot[data-id='{world.foil_hole_id}']"
    other = f"#grid-overlay .spot:not([data-id='{world.foil_hole_id}'])"
    before = (_fill_of(page, hole), _fill_of(page, other))
    assert before == ("rgb(68, 1, 84)", "rgb(253, 231, 37)")  # resolution: hole 71 the better
    page.get_by_label("Colour by").select_option("movies")  # 4 movies each: one colour
    page.wait_for_selector("body[data-measure=movies]")
    assert _fill_of(page, hole) == _fill_of(page, other) != before[0]
    page.locator(hole).click()
    page.wait_for_selector(f"body[data-hole='{world.foil_hole_id}']")
    links = page.locator("#hole-movies a")
    assert links.count() == 4
    _shot(page, "grid-square")
    links.nth(2).click()
    page.wait_for_selector(f"body[data-movie='{world.movie_ids[2]}']")
    assert violations == []
    page.context.close()


def test_the_3d_panel_draws_the_map_and_the_fsc(browser: Any, server: str, world: Any) -> None:
    """The 3D panel: the refined map as a WebGL isosurface whose threshold slider redraws it,
    three central sections, the FSC curves with the 0.143 line, the angular distribution, the
    B-factor plot, the 3D classes and the downloads, under the Content-Security-Policy."""
    page = _page(browser, server, "alice")
    violations = _csp_violations(page)
    bundles: list[str] = []  # the plotly.js bundles the page fetches, in order
    page.on(
        "request",
        lambda r: bundles.append(r.url.split("/")[-1].split(".")[0]) if "plotly" in r.url else None,
    )
    page.goto(f"/collections/{world.data_collection_id}")
    page.wait_for_selector("body[data-charts=drawn]")
    assert page.evaluate("document.getElementById('recon3d').dataset.state") is None  # lazy
    # the page's charts come from the partial bundle where it is installed (in CI it must be:
    # test_assets.py); the full one, for the isosurface, only once the panel is drawn
    page_bundle = "plotly-cartesian" if partial_bundle(None) else "plotly"
    assert bundles == [page_bundle]
    page.locator("#recon3d").scroll_into_view_if_needed()
    page.wait_for_selector("#recon3d[data-state=drawn]", timeout=30_000)
    assert bundles == [page_bundle, "plotly"] if page_bundle != "plotly" else [page_bundle]
    # the page's charts are still drawn by the page's bundle, the 3D panel by the full one
    assert page.evaluate("!!window.Plotly.PlotSchema.get().traces.isosurface") == (
        page_bundle == "plotly"
    )
    assert page.locator("#map3d .gl-container canvas").count() >= 1  # a WebGL scene
    isosurface = "document.getElementById('map3d').data[0]"
    assert page.evaluate(f"{isosurface}.type") == "isosurface"
    assert page.evaluate(f"{isosurface}.value.length") == 24**3
    before = page.evaluate(f"{isosurface}.isomin")
    page.locator("#map-threshold").fill("3.5")
    _wait_until(page, f"{isosurface}.isomin > {before}")
    assert page.locator("#recon3d [id^=map-slice-] .heatmaplayer").count() == 3
    assert page.locator("#chart-fsc .scatterlayer .trace").count() == 4  # 3 curves and 0.143
    assert "9.50 Å" in page.locator("#chart-fsc .gtitle").text_content()
    assert page.locator("#chart-angles .heatmaplayer").count() == 1
    assert page.locator("#chart-bfactor .scatterlayer .trace").count() == 2  # points and fit
    assert page.locator("#classes3d .class3d-card").count() == 2
    assert page.locator("#classes3d .class3d-card.selected").count() == 1
    # class 2's map is recorded outside the visit: refused, and said so on its card only
    assert page.locator("#classes3d .class3d-card .heatmaplayer").count() == 1
    assert "map not available" in page.locator("#classes3d .class3d-card").nth(1).inner_text()
    links = page.locator("#downloads3d a")
    assert links.count() == 7  # the refinement's 5 files, the run's 2 classes
    assert page.locator("#history3d tbody tr").count() == 2
    _shot(page, "recon3d")
    assert violations == []
