"""The pages tell the truth about state, in headless Chromium (Debian's, through Playwright):
a run after the pipeline stopped and after Stop, a movie not processed yet, an empty
collection, the login page while logged in."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, results
from cryolive.messaging import open_transport
from cryolive.records import MovieRecord, MovieRef
from cryolive.web import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
T0 = dt.datetime(2026, 11, 21, 10, 0, 0)
pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def chromium(need_service: Callable[[str, str], None]) -> Path:
    if not CHROMIUM.exists():
        need_service("chromium", "not installed (make test installs it)")
    return CHROMIUM


@pytest.fixture(scope="module")
def server(world: Any) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(world.settings(), transport=open_transport(world.broker_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
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


def _logged_in(browser: Any, server: str, login: str = "alice") -> Any:
    page = browser.new_context(base_url=server).new_page()
    page.set_default_timeout(15_000)
    page.goto("/login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(f"password-{login}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/visits")
    return page


def _collection(world: Any, *, movies: int, run: bool) -> tuple[int, int]:
    """A new collection of the world's visit with ``movies`` unprocessed movies (at T0) and,
    with ``run``, an automatic run started at T0: (data collection id, program id or 0)."""
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():
        folder = uuid.uuid4().hex[:8]
        spec = collections.DataCollectionSpec(
            session_id=world.session_id,
            image_directory=f"{world.root}/{world.visit}/{folder}/",
            file_template="*.tiff",
        )
        dc = collections.register_data_collection(db, spec=spec)[1]
        program = 0
        if run:
            program = collections.register_processing_job(
                db, data_collection_id=dc, recipe="motioncorr", request_key="auto", parameters={}
            )[1]
            collections.start_program(db, auto_proc_program_id=program, when=T0)
        refs = [
            MovieRef(data_collection_id=dc, movie_full_path=f"/d/{folder}/{i}.tiff")
            for i in range(movies)
        ]
        records = [MovieRecord(movie=r, movie_number=i + 1, created=T0) for i, r in enumerate(refs)]
        results.write_result_sets(db, movies=records)
    engine.dispose()
    return dc, program


def test_run_after_the_pipeline_stopped_and_after_stop(
    browser: Any, server: str, world: Any
) -> None:
    dc, program = _collection(world, movies=1, run=True)
    page = _logged_in(browser, server)
    page.goto(f"/collections/{dc}")
    row = page.locator(f'#jobs-body tr[data-program="{program}"]')
    assert row.locator(".badge").inner_text() == "idle"  # nothing in flight, no movie lately
    row.get_by_role("button", name="Stop").click()
    page.wait_for_url(f"**/collections/{dc}#jobs")
    row = page.locator(f'#jobs-body tr[data-program="{program}"]')
    assert row.locator(".badge").inner_text() == "stopped"
    assert row.get_by_role("button", name="Stop").count() == 0
    page.context.close()


def test_a_movie_not_processed_yet(browser: Any, server: str, world: Any) -> None:
    dc, _ = _collection(world, movies=2, run=False)
    page = _logged_in(browser, server)
    page.goto(f"/collections/{dc}")
    deadline = time.monotonic() + 15
    while page.locator("#movie-info").get_attribute("data-processed") is None:
        assert time.monotonic() < deadline
        page.wait_for_timeout(50)
    info = page.locator("#movie-info").inner_text()
    assert "not processed yet" in info and "defocus" not in info
    assert page.locator("#browser img:visible").count() == 0  # no blank image frames
    assert page.locator("#no-movies").is_hidden()
    motion = page.locator('#progress tr[data-stage="motion_corrected"] td')
    assert motion.all_inner_texts() == ["0", "2"]  # none done, both waiting
    assert "2 movies behind" in page.locator("#eta").inner_text()
    page.context.close()


def test_an_empty_collection_says_so(browser: Any, server: str, world: Any) -> None:
    dc, _ = _collection(world, movies=0, run=False)
    page = _logged_in(browser, server)
    page.goto(f"/collections/{dc}")
    page.wait_for_timeout(500)  # the scripts have run
    assert "No movies yet" in page.locator("#no-movies").inner_text()
    assert page.locator("#charts").is_hidden() and page.locator("#browser").is_hidden()
    assert "of 0" not in page.locator("main").inner_text()
    page.context.close()


def test_the_login_page_in_a_second_tab_keeps_the_session(
    browser: Any, server: str, world: Any
) -> None:
    page = _logged_in(browser, server)
    second = page.context.new_page()
    second.goto("/login")
    assert "You are logged in as alice" in second.locator("#logged-in").inner_text()
    second.get_by_role("link", name="Continue").click()
    second.wait_for_url("**/visits")
    page.goto(f"/visits/{world.visit}")
    assert "/login" not in page.url  # the first tab is still logged in
    page.context.close()


def _classified(world: Any) -> int:
    """A new collection with one 2D classification: 3 particles in class 1, 1 in class 2,
    none in class 3."""
    from ispyb.sqlalchemy import ParticlePicker

    from cryolive.db.repo import classes
    from cryolive.records import ClassValues

    dc, _ = _collection(world, movies=1, run=False)
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():
        program = collections.register_processing_job(
            db, data_collection_id=dc, recipe="class2d", request_key="auto", parameters={}
        )[1]
        picker = ParticlePicker(programId=program, numberOfParticles=4)
        db.add(picker)
        db.flush()
        counts = {1: 3, 2: 1, 3: 0}
        classes.write_classification(
            db,
            program_id=program,
            particle_picker_id=int(picker.particlePickerId),
            batch_number=1,
            particles_in_batch=4,
            classes_in_batch=3,
            binned_pixel_size_a=3.0,
            classes=[
                ClassValues(
                    class_number=n,
                    image_full_path=f"{world.root}/none_{n}.png",
                    particles=p,
                    distribution=p / 4,
                )
                for n, p in counts.items()
            ],
        )
    engine.dispose()
    return dc


def test_empty_classes_are_hidden_and_one_particle_is_singular(
    browser: Any, server: str, world: Any
) -> None:
    dc = _classified(world)
    page = _logged_in(browser, server)
    page.goto(f"/collections/{dc}")
    cards = page.locator("#gallery li.class-card")
    assert cards.count() == 3
    assert page.locator('#gallery li[data-class="3"]').is_hidden()  # no particles: hidden
    assert "1 particle\n" in page.locator('#gallery li[data-class="2"]').inner_text() + "\n"
    assert "1 particles" not in page.locator("#gallery").inner_text()
    page.get_by_label("Show empty classes").check()
    assert page.locator('#gallery li[data-class="3"]').is_visible()
    page.context.close()


def test_staff_choose_the_throughput_window_and_see_visit_state(
    browser: Any, server: str, world: Any
) -> None:
    page = _logged_in(browser, server, "carol")
    page.goto("/staff")
    assert "last 24 hours" in page.locator("main").inner_text()
    page.get_by_label("Window").select_option("168")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/staff?hours=168*")
    assert "last 168 hours" in page.locator("main").inner_text()
    assert page.get_by_label("Window").input_value() == "168"
    item = page.locator(f'li[data-visit="{world.visit}"]')
    assert "last movie" in item.inner_text() and "UTC" in item.inner_text()
    assert item.locator(".badge", has_text="live").count() == 0  # no consumers: never live
    page.context.close()


def test_staff_worker_health_flags_a_queue_without_worker(
    browser: Any, server: str, world: Any
) -> None:
    page = _logged_in(browser, server, "carol")
    page.goto("/staff")
    rows = page.locator("#queue-table tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):  # the test broker has no consumer on any queue
        assert rows.nth(i).locator(".worker-health").inner_text().startswith("no worker")
    page.context.close()
