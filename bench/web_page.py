"""The data-collection page in a browser: bytes over the wire and time until its charts are drawn.

Fills a fresh SQLite database with one collection of ``--movies`` movies (``bench/web.py``'s
``fill``), serves it on 127.0.0.1 and opens the page in headless Chromium (Debian's, through
Playwright) with an empty cache, ``--runs`` times per network: unthrottled (local) and throttled
to ``--mbit`` Mbit/s down and up with ``--latency-ms`` of latency (Chrome DevTools'
Network.emulateNetworkConditions). Prints, per network, the bytes transferred (encoded, as on
the wire) and the time from asking for the page to ``body[data-charts=drawn]`` (usable: since
``charts.js``, the charts on the screen and one screen below it drawn), median and best, and
to ``body[data-all-charts=drawn]`` (every chart, the Curation panel's too).
Then a warm visit: the same page again with the cache kept.

Besides the wall time, each load records the browser's own CPU work for the page, from DevTools'
``Performance.getMetrics`` taken just before asking for the page and again once its charts are
drawn, on a fresh tab: ``TaskDuration`` (the renderer main thread's CPU time in tasks, counted
in thread ticks), ``ScriptDuration`` (of which running JavaScript) and ``ThreadTime`` (the main
thread's CPU time). These move much less than the wall time when other processes load the
machine: compare pages by them.

    .venv/bin/python bench/web_page.py [--movies 2000] [--runs 5] [--mbit 20]

``PYTHONPATH`` picks the cryolive measured: run it with ``PYTHONPATH=/path/to/other/src`` to
measure another checkout (the "before" of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]


@dataclass(frozen=True)
class PageLoad:
    seconds: float  # asking for the page -> its charts drawn
    transferred: int  # bytes on the wire (encoded), every request of the page
    requests: int
    task_s: float = 0.0  # renderer main thread busy in tasks (DevTools TaskDuration)
    script_s: float = 0.0  # of which JavaScript (ScriptDuration)
    thread_s: float = 0.0  # the main thread's CPU time (ThreadTime)
    all_seconds: float | None = None  # asking for the page -> every chart drawn (charts.js)


def metrics(cdp: Any) -> dict[str, float]:
    """The page's cumulative DevTools performance counters (seconds for the durations)."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def spent(before: dict[str, float], after: dict[str, float], name: str) -> float:
    """``name``'s growth between two readings; the whole reading when the page moved to a new
    renderer in between (its counters start again from zero)."""
    grown = after.get(name, 0.0) - before.get(name, 0.0)
    return grown if grown >= 0 else after.get(name, 0.0)


def throttle(
    page: Any, mbit: float | None, latency_ms: float = 20.0, *, clear_cache: bool = True
) -> Any:
    """A DevTools session on ``page`` with the network limited to ``mbit`` Mbit/s each way
    (None: unlimited) and ``latency_ms`` added; the browser cache cleared unless
    ``clear_cache`` is false. Its performance counters count the main thread's CPU time."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    if clear_cache:
        cdp.send("Network.clearBrowserCache")
    rate = -1 if mbit is None else mbit * 1_000_000 / 8  # bytes per second
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0 if mbit is None else latency_ms,
            "downloadThroughput": rate,
            "uploadThroughput": rate,
        },
    )
    return cdp


def load_collection(page: Any, url: str, cdp: Any, timeout_s: float = 60.0) -> PageLoad:
    """Open ``url`` (a collection page) and wait for its charts; what went over the wire."""
    sizes: dict[str, float] = {}
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]),
    )
    before = metrics(cdp)
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector("body[data-charts=drawn]", state="attached", timeout=timeout_s * 1000)
    seconds = time.perf_counter() - start
    after = metrics(cdp)
    all_seconds = None
    if page.evaluate("!!window.cryoliveCharts"):  # charts away from the screen drawn later
        page.wait_for_selector("body[data-all-charts=drawn]", state="attached")
        all_seconds = time.perf_counter() - start
    page.wait_for_load_state("load")
    page.wait_for_timeout(200)  # the last loadingFinished events
    return PageLoad(
        seconds,
        int(sum(sizes.values())),
        len(sizes),
        task_s=spent(before, after, "TaskDuration"),
        script_s=spent(before, after, "ScriptDuration"),
        thread_s=spent(before, after, "ThreadTime"),
        all_seconds=all_seconds,
    )


def log_in(page: Any, login: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/visits")


def cold_load(
    browser: Any, server: str, path: str, login: str, password: str, mbit: float | None
) -> PageLoad:
    """A fresh browser context (nothing cached), logged in, then the page throttled."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=server)
    try:
        log_in(context.new_page(), login, password)
        page = context.new_page()  # a fresh document: its counters start from nothing
        return load_collection(page, server + path, throttle(page, mbit))
    finally:
        context.close()


def cpu(loads: list[PageLoad]) -> str:
    """The browser's main-thread work until the charts were drawn, medians of ``loads``."""

    def median(name: str) -> float:
        return statistics.median(getattr(load, name) for load in loads)

    return (
        f"tasks {median('task_s'):.2f} s, script {median('script_s'):.2f} s, "
        f"thread CPU {median('thread_s'):.2f} s"
    )


def every_chart(loads: list[PageLoad]) -> str:
    """The median time until every chart was drawn, where the page says (charts.js)."""
    times = [load.all_seconds for load in loads if load.all_seconds is not None]
    return f"; every chart {statistics.median(times):.2f} s median" if times else ""


@contextmanager
def serve(app: Any) -> Iterator[str]:
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main() -> None:
    from playwright.sync_api import sync_playwright

    from cryolive.config import Settings, WebSettings
    from cryolive.web import create_app

    sys.path.insert(0, str(Path(__file__).parent))
    from web import fill  # bench/web.py

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mbit", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    import cryolive

    commit = subprocess.run(
        ["git", "-C", str(Path(cryolive.__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"cryolive from {Path(cryolive.__file__).parent} (commit {commit})")
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        dc = fill(url, args.movies, 2_000)
        settings = Settings(
            database_url=url,
            processing_root=Path(tmp),
            data_root=Path(tmp),
            web=WebSettings(secret=secrets.token_urlsafe(48)),  # type: ignore[arg-type]
        )
        app = create_app(settings)
        with serve(app) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            path = f"/collections/{dc}"
            cold_load(browser, server, path, "bench", "bench-password", None)  # server warm-up
            for label, mbit in (("local", None), (f"{args.mbit:g} Mbit/s", args.mbit)):
                loads = [
                    cold_load(browser, server, path, "bench", "bench-password", mbit)
                    for _ in range(args.runs)
                ]
                times = [load.seconds for load in loads]
                print(
                    f"  cold, {label:12} {statistics.median(times):6.2f} s median, "
                    f"{min(times):6.2f} s best of {args.runs}; "
                    f"{loads[0].transferred / 1e6:6.2f} MB in {loads[0].requests} requests; "
                    f"{cpu(loads)}{every_chart(loads)}"
                )
            context = browser.new_context(base_url=server)
            page = context.new_page()
            log_in(page, "bench", "bench-password")
            load_collection(page, server + path, throttle(page, args.mbit))
            page = context.new_page()  # the cache kept, the page's counters fresh
            cdp = throttle(page, args.mbit, args.latency_ms, clear_cache=False)
            again = load_collection(page, server + path, cdp)
            print(
                f"  warm, {args.mbit:g} Mbit/s   {again.seconds:6.2f} s; "
                f"{again.transferred / 1e6:6.2f} MB in {again.requests} requests; "
                f"{cpu([again])}"
            )
            context.close()
            browser.close()
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
