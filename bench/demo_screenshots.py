"""Screenshots of the web pages from a real processed visit (``cryolive demo``), at 1440x900.

Run ``cryolive demo --out DIR --no-serve`` first; this serves DIR's database with the demo's
settings, logs in as the demo's user and staff in Debian's Chromium (Playwright) and writes
docs/screenshots/*.png, printing what it wrote. On the staff page no broker is connected (the
demo's embedded broker ended with it) and the demo's workers show as silent: that is what a
facility's staff would see after the pipeline stopped.

    python bench/demo_screenshots.py --demo DIR [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from cryolive.config import load_settings
from cryolive.demo import DEMO_PASSWORD, DEMO_USER, STAFF_PASSWORD, STAFF_USER
from cryolive.web import create_app

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1440, "height": 900}


def _serve(demo: Path) -> tuple[uvicorn.Server, str]:
    settings = load_settings(
        database_url=f"sqlite:///{(demo / 'cryolive.sqlite').resolve()}",
        data_root=demo.resolve(),
        processing_root=(demo / "visit" / "processed").resolve(),
        web={"visit_folder": str((demo / "visit").resolve())},
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _log_in(browser: Any, base: str, login: str, password: str) -> Any:
    page = browser.new_context(viewport=VIEWPORT, base_url=base).new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/visits")
    return page


def _settle(page: Any, expression: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression) and time.monotonic() < deadline:
        page.wait_for_timeout(100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True, help="cryolive demo's --out")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server, base = _serve(args.demo)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []

    def shot(page: Any, name: str) -> None:
        path = args.out / f"{name}.png"
        page.screenshot(path=str(path))
        written.append(path)

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = _log_in(browser, base, DEMO_USER, DEMO_PASSWORD)
            shot(page, "visits")
            page.locator("a[href^='/visits/']").first.click()
            page.locator("a[href^='/collections/']").first.click()
            _settle(page, "document.querySelectorAll('.main-svg').length > 4")
            page.wait_for_timeout(1500)
            shot(page, "collection")
            shot(page, "demo-collection")
            page.evaluate("document.getElementById('charts-h').scrollIntoView()")
            page.locator("#chart-defocus_a .point").nth(2).hover(force=True)
            page.wait_for_selector("#chart-defocus_a .hovertext")
            shot(page, "charts")  # the hover names the movie's file, the value with its unit
            page.evaluate("document.getElementById('movies-h').scrollIntoView()")
            _settle(page, "[...document.querySelectorAll('.images img')].every(i => i.complete)")
            shot(page, "movies")
            # the gallery, with one class chosen by the user (given back afterwards)
            page.locator("#classes").scroll_into_view_if_needed()
            choose = page.locator("#classes li.deselected:not([hidden]) button.choose").first
            chosen = choose.count() > 0
            if chosen:
                choose.click()
                page.wait_for_selector("#classes li.chosen")
            page.evaluate("document.getElementById('class-history').open = true")
            page.locator("#classes h2").scroll_into_view_if_needed()
            _settle(page, "[...document.querySelectorAll('#classes img')].every(i => i.complete)")
            shot(page, "classes")
            if chosen:
                page.locator("#classes li.chosen button.auto").first.click()
                page.wait_for_selector("#classes li.chosen", state="detached")
            page.locator("#jobs").scroll_into_view_if_needed()
            shot(page, "jobs")
            staff = _log_in(browser, base, STAFF_USER, STAFF_PASSWORD)
            staff.goto("/staff?hours=6")
            _settle(staff, "document.body.dataset.throughput === 'drawn'")
            shot(staff, "staff")
            staff.locator("#workers-h").scroll_into_view_if_needed()
            shot(staff, "workers")
            staff.locator("#throughput-chart").scroll_into_view_if_needed()
            shot(staff, "throughput")
            browser.close()
    finally:
        server.should_exit = True
    for path in written:
        print(f"{path}\t{path.stat().st_size} bytes\t1440x900")


if __name__ == "__main__":
    main()
