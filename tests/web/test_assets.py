"""Scripts and the style sheet under content-hashed names: compressed, cached for good; pages
and API answers compressed on the fly, the live event stream left alone."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from cryolive.web.app import plotly_js
from cryolive.web.assets import IMMUTABLE, Assets

STATIC = Path(__file__).resolve().parents[2] / "src" / "cryolive" / "web" / "static"


def _assets_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)


def test_the_collection_page_loads_hashed_assets(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    html = client.get(f"/collections/{world.data_collection_id}").text
    urls = _assets_of(html)
    names = {re.sub(r"\.[0-9a-f]{12}\.", ".", u.removeprefix("/assets/")) for u in urls}
    assert names == {
        "cryolive.css",
        "plotly.min.js",
        "charts.js",
        "collection.js",
        "gallery.js",
        "curation.js",
        "recon3d.js",
    }
    assert "/vendor/plotly.min.js" not in html and "/static/" not in html
    # deferred scripts run in order: charts.js first, plotly last, so that the page's scripts
    # ask for their data while plotly is still on its way
    scripts = [
        re.sub(r"\.[0-9a-f]{12}\.", ".", u) for u in re.findall(r'<script src="([^"]+)"', html)
    ]
    assert scripts[0] == "/assets/charts.js" and scripts[-1] == "/assets/plotly.min.js", scripts
    for url in urls:
        name = url.removeprefix("/assets/")
        digest = name.split(".")[-2]
        plain = re.sub(r"\.[0-9a-f]{12}\.", ".", name)
        path = plotly_js() if plain == "plotly.min.js" else STATIC / plain
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        response = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
        assert response.status_code == 200
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in response.headers["vary"].lower()
        assert response.content == path.read_bytes()  # httpx undoes the gzip
        assert int(response.headers["content-length"]) < 0.45 * path.stat().st_size


def test_plotly_travels_compressed_below_a_third(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    html = client.get(f"/collections/{world.data_collection_id}").text
    url = next(u for u in _assets_of(html) if "plotly" in u)
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert len(raw) < plotly_js().stat().st_size / 3
    assert gzip.decompress(raw) == plotly_js().read_bytes()


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
