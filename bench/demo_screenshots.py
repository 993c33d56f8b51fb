"""Screenshots of the web pages from a real processed visit (``cryolive demo``), at 1440x900.

Run ``cryolive demo --out DIR --no-serve`` first (``--class3d-particles 60`` for the 3D
panel: the facility default is more particles than a demo has); this serves DIR's database
with the demo's settings, logs in as the demo's user and staff in Debian's Chromium
(Playwright) and writes docs/screenshots/*.png, printing what it wrote: every screenshot the
README and docs show, the first page of the session report's collection pages included
(through ``pdftoppm``). ``make screenshots`` does both steps. On the staff page no broker is
connected (the demo's embedded broker ended with it) and the demo's workers show as silent:
that is what a facility's staff would see after the pipeline stopped.

    python bench/demo_screenshots.py --demo DIR [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import struct
import subprocess
import tempfile
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


def _log_in(browser: Any, base: str, login: str, password: str, shot: Any = None) -> Any:
    page = browser.new_context(viewport=VIEWPORT, base_url=base).new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    if shot is not None:
        shot(page, "login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/visits")
    return page


def _settle(page: Any, expression: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression) and time.monotonic() < deadline:
        page.wait_for_timeout(100)


def _report(page: Any, visit_url: str, out: Path, written: list[Path]) -> None:
    """report.png: the first collection page of the visit's session report (page 2)."""
    if shutil.which("pdftoppm") is None:
        print("pdftoppm not found (poppler-utils): report.png not written")
        return
    response = page.request.get(f"{visit_url.rstrip('/')}/report.pdf")
    if not response.ok:
        raise SystemExit(f"the session report: {response.status} {response.text()[:200]}")
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "report.pdf"
        pdf.write_bytes(response.body())
        prefix = Path(folder) / "page"
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-f",
                "2",
                "-l",
                "2",
                "-singlefile",
                "-scale-to-x",
                "936",
                "-scale-to-y",
                "-1",
                str(pdf),
                str(prefix),
            ],
            check=True,
        )
        path = out / "report.png"
        shutil.copyfile(prefix.with_suffix(".png"), path)
    written.append(path)


def _recon3d(page: Any, collections: list[str | None], shot: Any) -> None:
    """recon3d.png: the 3D panel of the first collection that has a refinement (a demo run
    with ``--class3d-particles``), else that of one with 3D classes; none: said, not shot."""
    drawn = []
    for href in collections:
        page.goto(f"{href}#recon3d")
        page.locator("#recon3d").scroll_into_view_if_needed()
        state = "document.getElementById('recon3d').dataset.state"
        _settle(page, f"['drawn', 'empty', 'failed'].includes({state})", timeout_s=60)
        if page.evaluate(state) != "drawn":
            continue
        if page.locator("#refinement-charts").is_visible():
            drawn.insert(0, href)
            break
        drawn.append(href)
    if not drawn:
        print("the demo did not reach 3D (run it with --class3d-particles): recon3d.png kept")
        return
    page.goto(f"{drawn[0]}#recon3d")
    page.locator("#recon3d").scroll_into_view_if_needed()
    _settle(page, "document.getElementById('recon3d').dataset.state === 'drawn'", 60)
    page.wait_for_timeout(1500)
    page.locator("#recon3d-h").scroll_into_view_if_needed()
    page.evaluate("document.getElementById('recon3d-h').scrollIntoView()")
    shot(page, "recon3d")


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
            page = _log_in(browser, base, DEMO_USER, DEMO_PASSWORD, shot)
            shot(page, "visits")
            page.locator("a[href^='/visits/']").first.click()
            visit_url = page.url
            # the hand registration form, filled in (not sent)
            page.locator("#register-by-hand summary").click()
            page.get_by_label("Raw folder").fill("raw3")
            page.get_by_label("Pixel size (Å)").fill("1.0")
            page.get_by_label("Dose per frame (e⁻/Å²)").fill("1.25")
            page.locator("#register").scroll_into_view_if_needed()
            shot(page, "register")
            _report(page, visit_url, args.out, written)
            page.goto(visit_url)
            collections = [
                a.get_attribute("href") for a in page.locator("a[href^='/collections/']").all()
            ]
            page.goto(collections[0])
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
            # the CTF profile of the movie shown, a point of the fit hovered
            page.locator("#ctf-profile-figure").scroll_into_view_if_needed()
            profile = "document.getElementById('ctf-profile-figure').dataset.state"
            _settle(page, f"['drawn', 'not-trusted'].includes({profile})")
            page.evaluate(
                "document.getElementById('ctf-profile-figure').scrollIntoView({block: 'center'})"
            )
            box = page.locator("#ctf-profile .nsewdrag").first.bounding_box()
            page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.5 * box["height"])
            page.wait_for_selector("#ctf-profile .hovertext")
            shot(page, "ctf-profile")
            # curation: its histograms with their thresholds, the section alone
            page.set_viewport_size({"width": 1440, "height": 1400})
            page.mouse.move(1, 1)  # no chart hovered: no plotly tool bar in the picture
            page.locator("#curation").scroll_into_view_if_needed()
            _settle(page, "document.querySelectorAll('#curation-charts .main-svg').length > 2")
            page.wait_for_timeout(500)
            path = args.out / "curation.png"
            page.locator("#curation").screenshot(path=str(path))
            written.append(path)
            page.set_viewport_size(VIEWPORT)
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
            _recon3d(page, collections, shot)
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
        width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the PNG's IHDR
        print(f"{path}\t{path.stat().st_size} bytes\t{width}x{height}")


if __name__ == "__main__":
    main()
