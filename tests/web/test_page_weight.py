"""The collection page's weight and cold load time in headless Chromium (issue #24's goal:
charts drawn within 1 s locally and 2 s at 20 Mbit/s, from an empty cache).

The measuring is bench/web_page.py's (the figures in BENCHMARKS.md come from it). On a busy
machine the browser's own CPU time swamps the network's, so the tests check the bytes on the
wire, cold and warm; the times are measured by the benchmark, not by a timed test.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cryolive.messaging import open_transport
from cryolive.web import create_app
from cryolive.web.bundle import partial_bundle

_spec = importlib.util.spec_from_file_location(
    "bench_web_page", Path(__file__).resolve().parents[2] / "bench" / "web_page.py"
)
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclass looks itself up there
_spec.loader.exec_module(bench)

pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)
MB = 1_000_000


@pytest.fixture(scope="module")
def server(world: Any) -> Iterator[str]:
    app = create_app(world.settings(), transport=open_transport(world.broker_url))
    with bench.serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser(need_service: Callable[[str, str], None]) -> Iterator[Any]:
    if not bench.CHROMIUM.exists():
        need_service("chromium", "not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(bench.CHROMIUM), args=bench.ARGS)
        yield browser
        browser.close()


def _cold(browser: Any, server: str, world: Any, mbit: float | None) -> Any:
    path = f"/collections/{world.data_collection_id}"
    return bench.cold_load(browser, server, path, "alice", "password-alice", mbit)


def _warm(browser: Any, server: str, world: Any, mbit: float) -> Any:
    context = browser.new_context(base_url=server)
    try:
        page = context.new_page()
        bench.log_in(page, "alice", "password-alice")
        cdp = bench.throttle(page, mbit)
        bench.load_collection(page, f"{server}/collections/{world.data_collection_id}", cdp)
        return bench.load_collection(page, f"{server}/collections/{world.data_collection_id}", cdp)
    finally:
        context.close()


def test_the_cold_page_is_light_and_the_network_adds_little(
    browser: Any, server: str, world: Any
) -> None:
    _cold(browser, server, world, None)  # the server compresses its assets once
    cold = _cold(browser, server, world, 20)
    warm = _warm(browser, server, world, 20)
    # plotly.min.js alone is 4.8 MB uncompressed: 1.9 s of wire at 20 Mbit/s
    assert cold.transferred < 2.0 * MB, f"{cold.transferred / MB:.2f} MB on the wire"
    if partial_bundle(None):  # installed (in CI it must be: test_assets.py): 0.5 MB of plotly
        assert cold.transferred < 0.8 * MB, f"{cold.transferred / MB:.2f} MB on the wire"
    # a second visit asks for no script again (hashed names, cached for good)
    assert warm.transferred < 0.1 * MB, f"{warm.transferred / MB:.2f} MB on a warm visit"
    # the wire time at 20 Mbit/s leaves the goal (2 s) more than half for the browser's own work
    assert cold.transferred * 8 / 20e6 < 0.8, "over 0.8 s of transfer at 20 Mbit/s"
