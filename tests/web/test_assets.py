"""Scripts and the style sheet under content-hashed names: compressed, cached for good; pages
and API answers compressed on the fly, the live event stream left alone."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cryolive.messaging import open_transport
from cryolive.web import create_app
from cryolive.web.assets import IMMUTABLE, Assets
from cryolive.web.bundle import partial_bundle, pinned_sha256, plotly_js

STATIC = Path(__file__).resolve().parents[2] / "src" / "cryolive" / "web" / "static"


def _assets_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)


def _plain(url: str) -> str:
    return re.sub(r"\.[0-9a-f]{12}\.", ".", url.removeprefix("/assets/"))


def test_the_collection_page_loads_hashed_assets(
    clients: Any, world: Any, chart_bundle: Path
) -> None:
    client, _ = clients["member"]
    html = client.get(f"/collections/{world.data_collection_id}").text
    urls = _assets_of(html)
    assert {_plain(u) for u in urls} == {
        "cryolive.css",
        "plotly-cartesian.min.js",  # the partial bundle, not the full plotly.min.js
        "charts.js",
        "collection.js",
        "gallery.js",
        "curation.js",
        "recon3d.js",
    }
    assert "/vendor/plotly.min.js" not in html and "/static/" not in html
    # deferred scripts run in order: charts.js first, plotly last, so that the page's scripts
    # ask for their data while plotly is still on its way
    scripts = [_plain(u) for u in re.findall(r'<script src="([^"]+)"', html)]
    assert scripts[0] == "charts.js" and scripts[-1] == "plotly-cartesian.min.js", scripts
    # the full bundle is only named, for the 3D panel to fetch when it is drawn
    full = re.search(r'data-full="(/assets/plotly\.min\.[0-9a-f]{12}\.js)"', html)
    assert full and full.group(1) == client.app.state.assets.url("plotly.min.js")
    paths = {"plotly-cartesian.min.js": chart_bundle, "plotly.min.js": plotly_js()}
    for url in [*urls, full.group(1)]:
        name = url.removeprefix("/assets/")
        digest = name.split(".")[-2]
        path = paths.get(_plain(url), STATIC / _plain(url))
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        response = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
        assert response.status_code == 200
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in response.headers["vary"].lower()
        assert response.content == path.read_bytes()  # httpx undoes the gzip
        assert int(response.headers["content-length"]) < 0.45 * path.stat().st_size


def test_the_staff_page_loads_the_partial_bundle(clients: Any, chart_bundle: Path) -> None:
    client, _ = clients["staff"]
    names = [_plain(u) for u in _assets_of(client.get("/staff").text)]
    assert "plotly-cartesian.min.js" in names and "plotly.min.js" not in names


def test_the_partial_bundle_is_the_pinned_one_of_the_full_ones_version(
    chart_bundle: Path,
) -> None:
    assert hashlib.sha256(chart_bundle.read_bytes()).hexdigest() == pinned_sha256()
    version = re.compile(rb"\* plotly\.js (?:\(cartesian - minified\) )?(v\d+\.\d+\.\d+)")
    partial = version.search(chart_bundle.read_bytes()[:300])
    full = version.search(plotly_js().read_bytes()[:300])
    assert partial and full and partial.group(1) == full.group(1)
    # a third of the full bundle's size: what the browser reads and evaluates
    assert chart_bundle.stat().st_size < plotly_js().stat().st_size / 3
    # what ``make`` fetches is pinned next to the digest it checks
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert f"plotly.js-cartesian-dist-min@{partial.group(1).decode()[1:]}" in makefile


def _page_scripts(world: Any, **web: object) -> list[str]:
    app = create_app(world.settings(**web), transport=open_transport(world.broker_url))
    with TestClient(app, follow_redirects=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token
        form = {"login": "alice", "password": "password-alice", "csrf_token": token.group(1)}
        assert client.post("/login", data=form).status_code == 303
        html = client.get(f"/collections/{world.data_collection_id}").text
    return [_plain(u) for u in re.findall(r'<script src="([^"]+)"', html)]


def test_without_the_partial_bundle_the_pages_load_the_full_one(
    world: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    absent = tmp_path / "plotly-cartesian.min.js"
    with caplog.at_level(logging.WARNING, logger="cryolive.web.bundle"):
        for _ in range(2):  # warned once per process, not per app
            assert _page_scripts(world, chart_bundle=absent)[-1] == "plotly.min.js"
    warnings = [r.getMessage() for r in caplog.records if r.name == "cryolive.web.bundle"]
    assert len(warnings) == 1 and str(absent) in warnings[0], warnings


def test_a_bundle_that_is_not_the_pinned_one_is_not_served(
    world: Any, tmp_path: Path, chart_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    altered = tmp_path / "plotly-cartesian.min.js"
    altered.write_bytes(chart_bundle.read_bytes().replace(b"v4.", b"v9.", 1))
    with caplog.at_level(logging.WARNING, logger="cryolive.web.bundle"):
        assert partial_bundle(altered) is None
        assert _page_scripts(world, chart_bundle=altered)[-1] == "plotly.min.js"
    assert any("is not the pinned" in r.getMessage() for r in caplog.records)
    # a copy of the pinned file elsewhere, named by the setting, is served
    copy = tmp_path / "copy.js"
    copy.write_bytes(chart_bundle.read_bytes())
    assert _page_scripts(world, chart_bundle=copy)[-1] == "plotly-cartesian.min.js"


def test_plotly_travels_compressed_below_a_third(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    html = client.get(f"/collections/{world.data_collection_id}").text
    url = next(u for u in _assets_of(html) if "plotly" in u)
    path = {"plotly.min.js": plotly_js()}.get(_plain(url)) or partial_bundle(None)
    assert path is not None
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert len(raw) < path.stat().st_size / 3
    assert gzip.decompress(raw) == path.read_bytes()


def test_without_gzip_the_plain_file_comes(clients: Any) -> None:
    client, _ = clients["anonymous"]
    url = client.app.state.assets.url("collection.js")
    for accept in ("identity", ""):
        response = client.get(url, headers={"Accept-Encoding": accept})
        assert "content-encoding" not in response.headers
        assert response.content == (STATIC / "collection.js").read_bytes()


@pytest.mark.parametrize(
    "name",
    ["collection.000000000000.js", "collection.js", "../app.py", "pyproject.toml", "x.css.gz"],
)
def test_unknown_or_stale_asset_names_are_not_found(clients: Any, name: str) -> None:
    client, _ = clients["anonymous"]
    response = client.get(f"/assets/{name}")
    assert response.status_code == 404
    assert "immutable" not in response.headers.get("cache-control", "")


def test_only_scripts_and_style_sheets_are_assets(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("print()")
    with pytest.raises(ValueError, match=r"only \.js and \.css"):
        Assets({"x.py": tmp_path / "x.py"})


def test_a_changed_file_gets_a_new_name(tmp_path: Path) -> None:
    path = tmp_path / "a.js"
    path.write_text("let a = 1;")
    before = Assets({"a.js": path}).url("a.js")
    path.write_text("let a = 2;")
    after = Assets({"a.js": path}).url("a.js")
    assert before != after and re.fullmatch(r"/assets/a\.[0-9a-f]{12}\.js", after)


def test_pages_and_api_answers_are_compressed(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    for url in (f"/collections/{world.data_collection_id}", "/openapi.json"):  # both over 1 KiB
        response = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == "gzip", url


def test_the_event_stream_is_not_compressed(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    response = client.get(
        f"/api/collections/{world.data_collection_id}/events",
        params={"limit": 1},
        headers={"Accept-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in response.headers
    assert "event: update" in response.text
